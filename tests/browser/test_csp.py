"""The main pages run in Chromium under the Content-Security-Policy with no violation."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from playwright.sync_api import expect

from audit.models import AuditEvent

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls(__name__),
]


def inline_script_page(request: HttpRequest) -> HttpResponse:
    """A page the policy must stop: proves the listener below sees a violation."""
    return HttpResponse(
        "<!doctype html><title>before</title><p>canary</p>"
        "<script>document.title = 'inline ran';</script>"
    )


urlpatterns = [
    path("csp-canary/", inline_script_page),
    path("", include("config.urls")),
]

# Chromium reports each blocked inline script, style, handler or load on the console.
REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (event) => {
  console.error('CSP violation: ' + event.violatedDirective + ' ' + event.blockedURI);
});
"""


@pytest.fixture
def violations(page) -> list[str]:
    """Console errors about the policy, collected from the first page on (the login page too)."""
    seen: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)

    def on_console(message) -> None:
        text = message.text
        if message.type == "error" and (
            "Content Security Policy" in text or "CSP violation" in text or "Refused to" in text
        ):
            seen.append(f"{page.url}: {text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.append(f"{page.url}: page error {error}"))
    return seen


def test_the_listener_sees_a_blocked_inline_script(violations, logged_in_page, live_server):
    page = logged_in_page
    page.goto(f"{live_server.url}/csp-canary/")
    expect(page.locator("p")).to_have_text("canary")
    page.wait_for_timeout(200)
    assert page.title() == "before"
    # Chromium words it "Refused to execute inline script" or "Executing inline script violates".
    assert any("inline script" in line for line in violations), violations
    assert any("CSP violation: script-src" in line for line in violations), violations


def test_main_pages_run_with_no_csp_violation(
    violations, logged_in_page, live_server, make_connector
):
    page = logged_in_page
    connector = make_connector("hr_portal")
    event = AuditEvent.objects.order_by("-id").first()
    base = live_server.url

    page.goto(f"{base}/connectors/")
    expect(page.locator("text=hr_portal").first).to_be_visible()

    page.goto(f"{base}/connectors/new/")
    page.select_option("#id_auth_config", "oauth2")  # connector_form.js shows the OAuth2 group
    expect(page.locator("#id_oauth2_client_id")).to_be_visible()
    page.select_option("#id_auth_config", "api_key")
    expect(page.locator("#id_oauth2_client_id")).to_be_hidden()

    page.goto(f"{base}/connectors/{connector.name}/")
    page.click("#tab-history")  # Bootstrap's tabs, from the bundle
    expect(page.locator("#pane-history")).to_be_visible()

    page.goto(f"{base}/connectors/{connector.name}/edit/")
    expect(page.locator("#id_name")).to_be_visible()

    page.goto(f"{base}/audit/")
    page.goto(f"{base}/audit/{event.pk}/")

    page.goto(f"{base}/connectors/import/")
    page.goto(f"{base}/connectors/export/")

    page.set_viewport_size({"width": 500, "height": 800})  # the collapsed navbar's toggler
    page.goto(f"{base}/connectors/")
    page.click(".navbar-toggler")
    expect(page.locator("#main-nav")).to_be_visible()
    page.wait_for_timeout(300)

    assert violations == []


def test_admin_and_lockout_pages_run_with_no_csp_violation(
    violations, page, live_server, django_user_model
):
    from tests.conftest import USER_PASSWORD

    django_user_model.objects.create_superuser("root", password=USER_PASSWORD)
    base = live_server.url
    page.set_default_timeout(10_000)
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", USER_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    page.goto(f"{base}/admin/auth/user/")
    page.goto(f"{base}/admin/auth/user/add/")
    page.goto(f"{base}/admin/connectors/connector/")

    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    for _ in range(5):
        page.fill("#id_username", "root")
        page.fill("#id_password", "not-the-password")
        page.click("button[type=submit]")
        page.wait_for_load_state()
    expect(page.locator("[data-signin-locked]")).to_be_visible()
    page.wait_for_timeout(300)

    assert violations == []
