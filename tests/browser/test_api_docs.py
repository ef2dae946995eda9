"""/api/docs/ (Swagger UI from drf-spectacular-sidecar's files) works in Chromium under the CSP,
and the token page shows a new token once."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_csp import violations  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_docs_render_under_the_csp(violations, logged_in_page, live_server) -> None:  # noqa: F811
    page = logged_in_page
    external: list[str] = []
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith(live_server.url) or request.url.startswith("data:")
            else external.append(request.url)
        ),
    )
    page.goto(f"{live_server.url}/api/docs/")
    # Swagger UI drew the operations from /api/schema/: its script ran, from a file.
    expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=15_000)
    expect(page.get_by_text("/api/v1/connectors/").first).to_be_visible()
    assert violations == []
    assert external == []  # no CDN


def test_token_page_shows_the_token_once(logged_in_page, live_server) -> None:
    page = logged_in_page
    page.goto(f"{live_server.url}/api/tokens/")
    page.fill("#id_name", "browser")
    page.click("text=Create token")
    token = page.locator("[data-token]").inner_text()
    assert token.startswith("cc_")
    page.goto(f"{live_server.url}/api/tokens/")
    expect(page.locator("[data-token]")).to_have_count(0)
    expect(page.get_by_role("cell", name="browser", exact=True)).to_be_visible()
