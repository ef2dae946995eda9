"""The connector form in Chromium: groups follow the choices, rows come and go, values persist."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from connectors.models import Connector

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_fields_follow_auth_config_and_grant_type(logged_in_page, live_server, artifacts_dir):
    page = logged_in_page
    page.goto(f"{live_server.url}/connectors/new/")
    basic_username = page.locator("#id_basic_username")
    client_id = page.locator("#id_oauth2_client_id")
    grant_username = page.locator("#id_oauth2_username")
    cc_scope = page.locator("#id_oauth2_client_credentials_scope")
    refresh = page.locator("#id_oauth2_refresh_token")
    rfc_note = page.locator("[data-cc-rfc9700]")

    expect(basic_username).to_be_hidden()
    expect(client_id).to_be_hidden()

    page.select_option("#id_auth_config", "basic")
    expect(basic_username).to_be_visible()
    expect(client_id).to_be_hidden()

    page.select_option("#id_auth_config", "api_key")
    expect(page.locator("#id_api_key_header_auth_key")).to_be_visible()
    expect(page.locator("#id_api_key_param_name")).to_be_hidden()
    page.select_option("#id_api_key_location", "param")
    expect(page.locator("#id_api_key_param_name")).to_be_visible()
    expect(page.locator("#id_api_key_header_auth_key")).to_be_hidden()

    page.select_option("#id_auth_config", "oauth2")
    expect(basic_username).to_be_hidden()
    expect(client_id).to_be_visible()
    expect(grant_username).to_be_visible()
    expect(rfc_note).to_be_visible()
    # The scopes are optional: they wait under the collapsed "Additional info".
    expect(page.locator("#id_oauth2_password_scope")).to_be_hidden()
    page.click("#oauth2-additional > summary")
    expect(page.locator("#id_oauth2_password_scope")).to_be_visible()
    expect(cc_scope).to_be_hidden()

    page.select_option("#id_oauth2_grant_type", "client_credentials")
    expect(grant_username).to_be_hidden()
    expect(rfc_note).to_be_hidden()
    expect(cc_scope).to_be_visible()

    page.select_option("#id_oauth2_grant_type", "refresh_token")
    expect(refresh).to_be_visible()
    expect(cc_scope).to_be_hidden()


def test_fill_oauth2_form_with_rows_save_and_reload(logged_in_page, live_server, artifacts_dir):
    page = logged_in_page
    page.goto(f"{live_server.url}/connectors/new/")
    page.fill("#id_name", "hr_portal")
    page.fill("#id_base_url", "https://api.example.com")
    page.select_option("#id_auth_config", "oauth2")
    page.fill("#id_oauth2_client_id", "console-client")
    page.fill("#id_oauth2_client_secret", "browser-client-secret")
    page.fill("#id_oauth2_username", "svc.user")
    page.fill("#id_oauth2_password", "browser-password")
    page.fill("#id_oauth2_token_url", "https://login.example.com/oauth2/token")
    page.click("#oauth2-additional > summary")

    headers = page.locator('[data-cc-formset="headers"]')
    # One blank row is there already; add two more, fill all three, remove the middle one.
    headers.locator("[data-cc-add-row]").click()
    headers.locator("[data-cc-add-row]").click()
    rows = headers.locator("[data-cc-rows] [data-cc-row]")
    expect(rows).to_have_count(3)
    rows.nth(0).locator("[data-cc-key]").fill("Client-Id")
    rows.nth(0).locator("input[name$='-value']").fill("console-client")
    rows.nth(1).locator("[data-cc-key]").fill("X-Remove-Me")
    rows.nth(1).locator("input[name$='-value']").fill("gone")
    rows.nth(2).locator("[data-cc-key]").fill("X-Api-Token")
    # A key that looks secret ticks Sensitive by itself.
    expect(rows.nth(2).locator("[data-cc-sensitive]")).to_be_checked()
    expect(rows.nth(0).locator("[data-cc-sensitive]")).not_to_be_checked()
    rows.nth(2).locator("input[name$='-value']").fill("header-secret-value")
    rows.nth(1).locator("[data-cc-remove-row]").click()
    expect(rows.nth(1)).to_be_hidden()

    data = page.locator('[data-cc-formset="data"]')
    data.locator("[data-cc-rows] [data-cc-row]").nth(0).locator("[data-cc-key]").fill("resource")
    data.locator("[data-cc-rows] [data-cc-row]").nth(0).locator("input[name$='-value']").fill(
        "https://graph.example.com"
    )

    page.screenshot(path=str(artifacts_dir / "oauth2-password-form.png"), full_page=True)
    page.click("button[type=submit]:has-text('Save')")
    page.wait_for_url(f"{live_server.url}/connectors/hr_portal/")

    connector = Connector.objects.get(name="hr_portal")
    assert [(p.kind, p.key, p.sensitive) for p in connector.params.all()] == [
        ("data", "resource", False),
        ("header", "Client-Id", False),
        ("header", "X-Api-Token", True),
    ]

    page.goto(f"{live_server.url}/connectors/hr_portal/edit/")
    expect(page.locator("#id_oauth2_client_id")).to_have_value("console-client")
    expect(page.locator("#id_oauth2_username")).to_have_value("svc.user")
    expect(page.locator("#id_oauth2_password")).to_have_value("")
    expect(page.locator('[data-cc-stored="oauth2_password"]')).to_be_visible()
    expect(page.locator('[data-cc-stored="oauth2_client_secret"]')).to_be_visible()
    html = page.content()
    assert "browser-password" not in html and "browser-client-secret" not in html
    assert "header-secret-value" not in html
    header_rows = page.locator('[data-cc-formset="headers"] [data-cc-rows] [data-cc-row]')
    expect(header_rows.nth(0).locator("[data-cc-key]")).to_have_value("Client-Id")
    expect(header_rows.nth(1).locator("[data-cc-key]")).to_have_value("X-Api-Token")
    expect(header_rows.nth(1).locator("input[name$='-value']")).to_have_value("")

    # Saving again with blank secrets keeps every stored one.
    page.click("button[type=submit]:has-text('Save')")
    page.wait_for_url(f"{live_server.url}/connectors/hr_portal/")
    connector.refresh_from_db()
    assert connector.oauth2_password == "browser-password"
    assert connector.params.get(key="X-Api-Token").value == "header-secret-value"


def test_form_works_without_javascript(browser, live_server):
    from tests.conftest import USER_PASSWORD, make_user

    make_user("admin", username="nojs_admin")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "nojs_admin")
    page.fill("#id_password", USER_PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/connectors/new/")
    # Every group is visible, so the form can be filled and submitted as is.
    expect(page.locator("#id_basic_username")).to_be_visible()
    page.fill("#id_name", "nojs")
    page.select_option("#id_auth_config", "bearer")
    page.fill("#id_bearer_token", "nojs-token")
    page.click("button[type=submit]:has-text('Save')")
    page.wait_for_url(f"{live_server.url}/connectors/nojs/")
    assert Connector.objects.get(name="nojs").bearer_token == "nojs-token"
    context.close()


def test_a_name_the_server_newly_counts_as_sensitive_is_ticked(
    logged_in_page, live_server, monkeypatch
):
    """The script applies the server's pattern: widen it, and the page follows without a copy."""
    import re

    from connectors.oauth_http import redaction

    widened = re.compile(redaction.SENSITIVE_KEY_PATTERN.pattern + "|zebra", re.IGNORECASE)
    monkeypatch.setattr(redaction, "SENSITIVE_KEY_PATTERN", widened)
    page = logged_in_page
    page.goto(f"{live_server.url}/connectors/new/")
    page.select_option("#id_auth_config", "oauth2")
    page.click("#oauth2-additional > summary")
    headers = page.locator('[data-cc-formset="headers"]')
    headers.locator("[data-cc-add-row]").click()
    rows = headers.locator("[data-cc-rows] [data-cc-row]")
    rows.nth(0).locator("[data-cc-key]").fill("X-Zebra-Id")
    expect(rows.nth(0).locator("[data-cc-sensitive]")).to_be_checked()
    # A harmless name the server names keeps the box clear, as the server stores it.
    rows.nth(1).locator("[data-cc-key]").fill("token_type")
    expect(rows.nth(1).locator("[data-cc-sensitive]")).not_to_be_checked()
    rows.nth(1).locator("[data-cc-key]").fill("X-Plain")
    expect(rows.nth(1).locator("[data-cc-sensitive]")).not_to_be_checked()
