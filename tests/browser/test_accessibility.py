"""Every page of the console in Chromium: axe-core finds no serious or critical violation.

axe-core is vendored through PyPI (axe-playwright-python ships axe.min.js; no CDN), injected
into each page by Playwright, and run on the whole document.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from playwright.sync_api import Page, expect

from audit.models import AuditEvent
from connectors.batches import batch_start
from connectors.connection_test import connector_test
from tests.conftest import OAUTH2_PASSWORD, USER_PASSWORD, make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls(__name__),
]


def broken_view(request: HttpRequest) -> HttpResponse:
    """A view that fails, so the live server answers with the 500 page."""
    raise RuntimeError("boom (test)")


urlpatterns = [
    path("broken-for-test/", broken_view),
    path("", include("config.urls")),
]
handler500 = "config.errors.server_error"  # a test's URLconf names its own handlers

AXE = Axe()
SERIOUS = ("serious", "critical")


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page, one line per element."""
    results = AXE.run(page)
    lines = []
    for violation in results.response["violations"]:
        if violation["impact"] not in SERIOUS:
            continue
        for node in violation["nodes"]:
            lines.append(
                f"{page.url} {violation['id']} ({violation['impact']}): "
                f"{', '.join(node['target'])}: {node.get('failureSummary', '')}"
            )
    return lines


def login(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", USER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/connectors/")


def sample_data(make_connector, fault_server, user):
    """Connectors with rows and real recorded tests (a pass and a failure) on a loopback server."""
    oauth2 = {
        **OAUTH2_PASSWORD,
        "oauth2_client_id": fault_server.client_id,
        "oauth2_client_secret": fault_server.client_secret,
        "oauth2_token_url": fault_server.url("/ok"),
    }
    connector = make_connector(
        "hr_portal",
        rows={
            "headers": [{"key": "Client-Id", "value": "abc"}],
            "data": [{"key": "resource", "value": "https://api.example.com"}],
        },
        owner_team="HR",
        **oauth2,
    )
    failing = make_connector(
        "payroll", **{**oauth2, "oauth2_token_url": fault_server.url("/html500")}
    )
    make_connector("finance_api", auth_config="bearer", bearer_token="t0ken-value")
    connector_test(connector=connector, user=user, source="saved")
    connector_test(connector=failing, user=user, source="saved")
    return connector


def issue12_connectors(make_connector, fault_server) -> list[str]:
    """A Jwt Auth, a Jwks Auth and an Authorization Code Grant connector, made through the form."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    api = fault_server.url("/")
    make_connector(
        "signed_api",
        auth_config="jwt_auth",
        base_url=api,
        jwt_private_key=pem,
        jwt_algorithm="ES256",
        jwt_issuer="console",
        jwt_ttl_seconds="300",
    )
    make_connector(
        "jwks_api",
        auth_config="jwks_auth",
        base_url=api,
        jwt_issuer="console",
        jwt_ttl_seconds="300",
    )
    make_connector(
        "authcode_api",
        auth_config="oauth2",
        oauth2_grant_type="authorization_code",
        oauth2_client_id="authcode-client",
        oauth2_authorization_url=fault_server.url("/authorize"),
        oauth2_token_url=fault_server.url("/ok"),
    )
    return ["signed_api", "jwks_api", "authcode_api"]


PHONE_WIDTH = 390


@pytest.mark.parametrize("width", [1366, PHONE_WIDTH])
def test_every_page_has_no_serious_axe_violation(
    page, live_server, make_connector, fault_server, loopback_allowed, width
):
    user = make_user("admin", username="a11y_admin")
    connector = sample_data(make_connector, fault_server, user)
    batch = batch_start(user_or_system=user, connector_ids=[connector.pk], dispatch=False)
    event = AuditEvent.objects.filter(test_run__isnull=False).order_by("-id").first()
    base = live_server.url
    page.set_viewport_size({"width": width, "height": 900})
    page.set_default_timeout(10_000)
    found: list[str] = []

    page.goto(f"{base}/accounts/login/")
    found += serious_violations(page)
    login(page, base, "a11y_admin")
    # At phone width the pages whose layout changes there (about 1.8 s of axe per page).
    phone_pages = {"/connectors/", f"/connectors/{connector.name}/", "/audit/", "/dashboard/"}
    for url in (
        "/connectors/",
        f"/connectors/{connector.name}/",
        "/connectors/new/",
        f"/connectors/{connector.name}/edit/",
        f"/connectors/{connector.name}/clone/",
        "/dashboard/",
        f"/connectors/batch/{batch.pk}/",
        "/audit/",
        f"/audit/{event.pk}/",
        "/api/tokens/",
        "/connectors/import/",
        "/connectors/export/",
        "/fleet/schedule/",
        "/fleet/notifications/",
        "/fleet/notifications/new/",
        "/fleet/jwks/",
        "/connectors/no_such_connector/",
        "/broken-for-test/",
    ):
        if width == PHONE_WIDTH and url not in phone_pages:
            continue
        page.goto(f"{base}{url}")
        found += serious_violations(page)
    # The form with Oauth2 chosen and its Additional info open (the key/value rows).
    page.goto(f"{base}/connectors/new/")
    page.select_option("#id_auth_config", "oauth2")
    page.locator("#oauth2-additional > summary").click()
    found += serious_violations(page)
    if width != PHONE_WIDTH:
        # The Auth Configs and grants of the signed JWTs and the Authorization Code Grant.
        for auth_config, grant in (
            ("jwt_auth", ""),
            ("jwks_auth", ""),
            ("oauth2", "authorization_code"),
            ("oauth2", "jwt_bearer"),
        ):
            page.goto(f"{base}/connectors/new/")
            page.select_option("#id_auth_config", auth_config)
            if grant:
                page.select_option("#id_oauth2_grant_type", grant)
            found += serious_violations(page)
        page.goto(f"{base}/connectors/new/")
        page.select_option("#id_auth_config", "oauth2")
        page.locator("#oauth2-additional > summary").click()
        # The same form refused with errors.
        page.get_by_role("button", name="Save").click()
        page.wait_for_load_state()
        found += serious_violations(page)
    # The detail page with a test result shown in place, and its other tabs.
    page.goto(f"{base}/connectors/{connector.name}/")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result [data-cc-test-result]")).to_have_count(1)
    found += serious_violations(page)
    for tab in ("Recent tests", "History"):
        page.get_by_role("tab", name=tab).click()
        # Once its fade has ended: mid-fade axe measures half-transparent text.
        expect(page.locator(".tab-pane.active.show")).to_have_css("opacity", "1")
        found += serious_violations(page)

    if width != PHONE_WIDTH:
        # The detail pages of the auth types issue 12 added: key help, Connect, the JWKS panel.
        for name in issue12_connectors(make_connector, fault_server):
            page.goto(f"{base}/connectors/{name}/")
            found += serious_violations(page)

    make_user("viewer", username="a11y_viewer")
    page.context.clear_cookies()
    login(page, base, "a11y_viewer")
    page.goto(f"{base}/connectors/{connector.name}/edit/")
    found += serious_violations(page)
    assert found == [], "\n".join(found)
