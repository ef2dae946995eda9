"""Jwks Auth in Chromium: the Signing keys page (Generate JWKS, Rotate now, copy the URL) and
the public JWK Set.

Screenshots go to artifacts/: jwks-keys-empty.png, jwks-keys.png, jwks-json.png.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from connectors.models import JwksKey

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}


def test_generate_rotate_and_the_published_set(logged_in_page, live_server, artifacts_dir):
    page = logged_in_page
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/fleet/jwks/")
    url_box = page.locator("#jwks-url")
    expect(url_box).to_have_value(f"{live_server.url}/.well-known/jwks.json")
    expect(page.locator("[data-cc-jwks-summary]")).to_contain_text("None yet")
    page.screenshot(path=str(artifacts_dir / "jwks-keys-empty.png"), full_page=True)

    page.get_by_role("button", name="Generate JWKS").click()
    expect(page.locator(".alert-success")).to_contain_text("generated")
    first = JwksKey.objects.get().kid
    expect(page.locator("[data-cc-current-kid]")).to_have_text(first)

    page.get_by_role("button", name="Rotate now").click()
    expect(page.locator(".alert-success")).to_contain_text("published now")
    rows = page.locator("[data-cc-jwks-keys] tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator('tr[data-state="next"]')).to_have_count(1)
    expect(page.locator('tr[data-state="current"]')).to_have_attribute("data-kid", first)
    expect(page.get_by_role("button", name="Rotate now")).to_be_disabled()

    # The copy button puts the URL on the clipboard (the label says so).
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "jwks-keys.png"), full_page=True)

    # The document: both keys (the next one is published before it signs), public parts only.
    response = page.goto(f"{live_server.url}/.well-known/jwks.json")
    assert response is not None and response.status == 200
    document = json.loads(response.text())
    assert {jwk["kid"] for jwk in document["keys"]} == set(
        JwksKey.objects.values_list("kid", flat=True)
    )
    assert all(set(jwk) == {"kty", "n", "e", "kid", "alg", "use"} for jwk in document["keys"])
    page.screenshot(path=str(artifacts_dir / "jwks-json.png"), full_page=False)
