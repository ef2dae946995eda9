"""Issue 9 in Chromium: a result panel per Auth Config, hints per role, a one-click fix, the
screen-reader summary and "Copy as curl" on every step."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from connectors.explain import RESULT_WORDING
from connectors.models import Connector
from tests.conftest import USER_PASSWORD, make_user
from tests.test_result_wording import auth_values

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("loopback_allowed"),
]

AUTH_CONFIGS = ("none", "basic", "api_key", "bearer", "oauth2")


@pytest.fixture(autouse=True)
def short_deadline(settings):
    settings.CONNECTORS_TOKEN_TIMEOUT = 3
    settings.CONNECTORS_TEST_RATE_LIMIT = "100/60"


def login(page: Page, live_server, role: str) -> Page:
    make_user(role, username=f"panel_{role}")
    page.set_default_timeout(10_000)
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", f"panel_{role}")
    page.fill("#id_password", USER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/connectors/")
    return page


def run_test(page: Page, live_server, name: str, expected_outcome: str):
    page.goto(f"{live_server.url}/connectors/{name}/")
    page.click("[data-cc-test]")
    result = page.locator("#test-result [data-cc-test-result]")
    expect(result).to_have_attribute("data-cc-outcome", expected_outcome)
    return result


def test_each_auth_config_passes_and_fails_in_its_own_words(
    page, live_server, fault_server, make_connector, artifacts_dir
):
    login(page, live_server, "admin")
    for auth_config in AUTH_CONFIGS:
        for ok in (True, False):
            name = f"{auth_config}_{'pass' if ok else 'fail'}"
            make_connector(name, **auth_values(auth_config, fault_server, ok=ok))
            outcome = (
                "success" if ok else ("invalid_grant" if auth_config == "oauth2" else "http_error")
            )
            result = run_test(page, live_server, name, outcome)
            wording = RESULT_WORDING[auth_config]
            expect(result.locator("[data-cc-result-summary]")).to_have_text(
                wording.passed if ok else wording.failed
            )
            text = result.inner_text()
            if auth_config != "oauth2":
                assert "Token received" not in text and "issued an access token" not in text
            assert "Save the connector" not in text
            # The badge: the label, with the code beside it.
            badge = result.locator(".cc-outcome").first
            expect(badge.locator(".badge")).not_to_have_text(outcome)
            expect(badge.locator("code")).to_have_text(outcome)
            # Every step offers "Copy as curl", the API step of every Auth Config included.
            steps = result.locator("[data-audit-attempt]")
            for index in range(steps.count()):
                expect(steps.nth(index).locator("[data-audit-copy]")).to_be_visible()
            # Screen readers hear one sentence, not the panel.
            assert page.locator("#test-result").get_attribute("aria-live") is None
            status = page.locator("[data-cc-test-announcement]")
            expect(status).to_have_attribute("aria-live", "polite")
            expect(status).to_have_text(result.get_attribute("data-cc-summary") or "")
            sentence = status.inner_text()
            assert sentence.startswith("Connection works: " if ok else "Connection failed: ")
            assert sentence.count(". ") == 0 and sentence.endswith(".")
            page.locator("#test-result").screenshot(
                path=str(artifacts_dir / f"result-{auth_config}-{'pass' if ok else 'fail'}.png")
            )


def test_operator_is_told_what_to_ask_for(
    page, live_server, fault_server, make_connector, artifacts_dir
):
    values = {
        **auth_values("oauth2", fault_server, ok=True),
        "oauth2_token_url": fault_server.url("/nested-token"),
    }
    make_connector("nested_op", **values)
    login(page, live_server, "operator")
    result = run_test(page, live_server, "nested_op", "no_token")
    hint = result.locator("[data-cc-hint]")
    expect(hint).to_contain_text(
        "Ask a Connector admin to set Json Access Token Key to 'data.token'"
    )
    expect(result.locator("[data-cc-fix]")).to_have_count(0)
    page.locator("#test-result").screenshot(path=str(artifacts_dir / "result-hint-operator.png"))


def test_admin_applies_the_one_click_fix(
    page, live_server, fault_server, make_connector, artifacts_dir
):
    values = {
        **auth_values("oauth2", fault_server, ok=True),
        "oauth2_token_url": fault_server.url("/nested-token"),
    }
    make_connector("nested_admin", **values)
    login(page, live_server, "admin")
    result = run_test(page, live_server, "nested_admin", "no_token")
    expect(result.locator("[data-cc-hint]")).to_contain_text(
        "Set Json Access Token Key to 'data.token'."
    )
    expect(result.locator("[data-cc-hint]")).not_to_contain_text("Ask a Connector admin")
    button = result.locator('[data-cc-fix="oauth2_access_token_key"]')
    expect(button).to_have_text("Set Json Access Token Key to “data.token”")
    page.locator("#test-result").screenshot(path=str(artifacts_dir / "result-hint-admin.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#test-result").screenshot(path=str(artifacts_dir / "result-hint-admin-390.png"))
    page.set_viewport_size({"width": 1200, "height": 900})
    button.click()
    page.wait_for_url(f"{live_server.url}/connectors/nested_admin/")
    expect(page.locator(".alert-success")).to_contain_text(
        "Json Access Token Key is now “data.token”"
    )
    page.screenshot(path=str(artifacts_dir / "result-fix-applied.png"))
    connector = Connector.objects.get(name="nested_admin")
    assert connector.oauth2_access_token_key == "data.token" and connector.version == 2
    run_test(page, live_server, "nested_admin", "success")
    page.locator("#test-result").screenshot(path=str(artifacts_dir / "result-fix-retested.png"))


def test_a_redirect_fix_on_the_form_sets_the_field(page, live_server, fault_server, artifacts_dir):
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/connectors/new/")
    page.fill("#id_name", "redirect_form")
    page.select_option("#id_auth_config", "oauth2")
    page.fill("#id_oauth2_client_id", fault_server.client_id)
    page.fill("#id_oauth2_client_secret", fault_server.client_secret)
    page.fill("#id_oauth2_username", "svc.user")
    page.fill("#id_oauth2_password", "pw")
    page.fill("#id_oauth2_token_url", fault_server.url("/redirect-here"))
    page.click("[data-cc-test]")
    result = page.locator("#test-result [data-cc-test-result]")
    expect(result).to_have_attribute("data-cc-outcome", "redirect_refused")
    expect(result).to_contain_text(f"a redirect to {fault_server.url('/ok')}")
    use = result.locator('[data-cc-use-field="id_oauth2_token_url"]')
    expect(use).to_be_visible()
    page.locator("#test-result").screenshot(path=str(artifacts_dir / "result-redirect-form.png"))
    use.click()
    expect(page.locator("#id_oauth2_token_url")).to_have_value(fault_server.url("/ok"))
    page.click("[data-cc-test]")
    expect(result).to_have_attribute("data-cc-outcome", "success")
    expect(result).to_contain_text("Save the connector to keep these values")
