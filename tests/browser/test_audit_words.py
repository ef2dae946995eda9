"""The audit log for people, in Chromium: an import as one entry that expands (also without
JavaScript), a refusal named in words, and the connector's recent tests linked to their stored
attempts and curl.

Screenshots: artifacts/audit_grouped_import.png, audit_refusal_detail.png,
connector_recent_tests.png, audit_attempt_curl.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from connectors.transfer import connectors_import
from tests.conftest import USER_PASSWORD, make_user
from tests.test_audit_support import make_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _entry(name: str) -> dict:
    return {
        "name": name,
        "base_url": "https://api.example.com",
        "auth_config": "basic",
        "basic": {"username": "svc", "password": "pw"},
    }


def test_an_import_is_one_entry_that_expands(logged_in_page, live_server, artifacts_dir):
    admin = make_user("admin", username="importer")
    names = ["hr_portal", "hr_payroll", "erp_sync", "crm_api", "billing", "ticketing"]
    assert not connectors_import(
        payload={"connectors": [_entry(n) for n in names]}, user=admin
    ).errors
    page = logged_in_page
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/audit/")
    group = page.locator("tr.audit-group")
    expect(group).to_have_count(1)
    summary = group.locator("summary")
    expect(summary).to_contain_text("Import")
    expect(summary).to_contain_text(
        "6 connectors: hr_portal, hr_payroll, erp_sync, crm_api, billing and 1 more"
    )
    members = group.locator("tbody tr")
    expect(members.first).to_be_hidden()
    summary.click()
    expect(members).to_have_count(6)
    expect(members.first).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "audit_grouped_import.png"), full_page=True)


def test_the_group_expands_without_javascript(browser, live_server, artifacts_dir):
    admin = make_user("admin", username="nojs_admin")
    connectors_import(payload={"connectors": [_entry("a_one"), _entry("a_two")]}, user=admin)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "nojs_admin")
    page.fill("#id_password", USER_PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/audit/")
    page.locator("tr.audit-group summary").click()
    expect(page.locator("tr.audit-group tbody tr")).to_have_count(2)
    expect(page.locator("tr.audit-group tbody tr").first).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "audit_grouped_import_390_nojs.png"), full_page=True)
    context.close()


def test_a_refusal_reads_as_the_action_refused(
    browser, logged_in_page, live_server, make_connector, artifacts_dir
):
    make_connector("hr_portal")
    make_user("viewer", username="vic")
    context = browser.new_context()
    other = context.new_page()
    other.goto(f"{live_server.url}/accounts/login/")
    other.fill("#id_username", "vic")
    other.fill("#id_password", USER_PASSWORD)
    other.click("button[type=submit]")
    response = other.goto(f"{live_server.url}/connectors/hr_portal/edit/")
    assert response is not None and response.status == 403
    context.close()

    page = logged_in_page
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/audit/?kind=denial")
    row = page.locator("tbody tr", has_text="vic may not open the edit form of hr_portal")
    expect(row).to_have_count(1)
    row.locator("a").first.click()
    expect(page.locator("h1")).to_have_text("Refused: open the edit form of hr_portal")
    page.screenshot(path=str(artifacts_dir / "audit_refusal_detail.png"), full_page=True)


def test_recent_tests_link_to_the_stored_attempts_and_curl(
    logged_in_page, live_server, make_connector, artifacts_dir
):
    connector = make_connector("hr_portal")
    make_run(connector, outcome="success", message="Token received.")
    make_run(connector)
    page = logged_in_page
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/connectors/hr_portal/")
    page.locator("#tab-tests").click()
    expect(page.locator("#pane-tests")).to_have_class(re.compile(r"\bshow\b"))
    table = page.locator("[data-recent-runs]")
    expect(table).to_be_visible()
    page.wait_for_timeout(300)  # Bootstrap's fade: the screenshot shows the pane, not its fade
    expect(table.locator("tbody tr").first).to_contain_text(
        re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
    )
    page.screenshot(path=str(artifacts_dir / "connector_recent_tests.png"), full_page=True)
    table.locator("tbody tr").first.get_by_role(
        "link", name=re.compile("^curl of test run")
    ).click()
    page.wait_for_url(re.compile(r".*/audit/\d+/#audit-curl-\d+$"))
    curl = page.locator("pre[id^=audit-curl-]").last
    expect(curl).to_contain_text("curl -X POST")
    expect(curl).to_be_in_viewport()
    page.screenshot(path=str(artifacts_dir / "audit_attempt_curl.png"))
