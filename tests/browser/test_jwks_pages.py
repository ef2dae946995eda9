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


@pytest.mark.usefixtures("loopback_allowed")
def test_jwks_auth_form_detail_and_a_test_verified_by_the_api(
    logged_in_page, live_server, artifacts_dir
):
    from connectors.jwks import jwks_generate
    from connectors.models import Connector
    from tests.peers.jwks_api import JwksApi

    key = jwks_generate(user=None)
    page = logged_in_page
    page.set_viewport_size(DESKTOP)
    with JwksApi(
        f"{live_server.url}/.well-known/jwks.json", issuer="connector-console", audience=""
    ) as api:
        api.audience = api.url("")
        page.goto(f"{live_server.url}/connectors/new/")
        panel = page.locator("[data-cc-jwks-panel]")
        expect(panel).to_be_hidden()
        page.select_option("#id_auth_config", "jwks_auth")
        expect(panel).to_be_visible()
        expect(panel.locator("#jwks-url")).to_have_value(f"{live_server.url}/.well-known/jwks.json")
        expect(panel.locator("[data-cc-current-kid]")).to_have_text(key.kid)
        # The console's key signs: no private key, algorithm or kid of the connector's own.
        expect(page.locator("#id_jwt_private_key")).to_be_hidden()
        expect(page.locator("#id_jwt_algorithm")).to_be_hidden()
        expect(page.locator("#id_jwt_issuer")).to_be_visible()
        page.fill("#id_name", "hr_jwks")
        page.fill("#id_base_url", api.url(""))
        page.fill("#id_test_request_path", "/v1/me")
        page.fill("#id_jwt_issuer", "connector-console")
        page.fill("#id_jwt_subject", "svc-hr")
        page.screenshot(path=str(artifacts_dir / "jwks-auth-form.png"), full_page=True)

        page.click("[data-cc-test]")
        result = page.locator("#test-result [data-cc-test-result]")
        expect(result).to_have_attribute("data-cc-outcome", "success")
        assert api.results[-1].ok and api.results[-1].kid == key.kid
        page.screenshot(path=str(artifacts_dir / "jwks-auth-form-test.png"), full_page=True)
        signature = api.tokens[-1].split(".")[2]
        assert signature not in page.content()

        page.get_by_role("button", name="Save").click()
        page.wait_for_url(f"{live_server.url}/connectors/hr_jwks/")
        assert Connector.objects.get(name="hr_jwks").auth_config == "jwks_auth"
        detail_panel = page.locator("[data-cc-jwks-panel]")
        expect(detail_panel.locator("[data-cc-current-kid]")).to_have_text(key.kid)
        expect(detail_panel.locator("[data-cc-next-rotation]")).to_contain_text("UTC")
        page.click("[data-cc-test]")
        expect(page.locator("#test-result [data-cc-test-result]")).to_have_attribute(
            "data-cc-outcome", "success"
        )
        page.screenshot(path=str(artifacts_dir / "jwks-auth-detail.png"), full_page=True)
