"""The audit log's type-ahead filters in Chromium: suggestions arrive as you type, and apply.

A screenshot of the suggestions goes to artifacts/audit_type_ahead.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (event) => {
  console.error('CSP violation: ' + event.violatedDirective + ' ' + event.blockedURI);
});
"""


def test_connector_type_ahead_suggests_and_the_filter_applies(
    logged_in_page, live_server, make_connector, artifacts_dir
):
    # Each connector is created through the service, which records it in the audit log.
    for name in ("hr_portal", "hr_payroll", "erp_sync", *(f"bulk_{i:02d}" for i in range(30))):
        make_connector(name)
    page = logged_in_page
    problems: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/audit/")
    # The page carries no list of connectors: the suggestions come as you type.
    expect(page.locator("#audit-connector-names option")).to_have_count(0)

    field = page.locator("#id_connector")
    field.click()
    field.press_sequentially("hr_p", delay=40)
    suggestions = page.locator("#audit-connector-names option")
    expect(suggestions).to_have_count(2)
    expect(page.locator("#audit-connector-names option[value='hr_portal']")).to_have_count(1)
    page.screenshot(path=str(artifacts_dir / "audit_type_ahead.png"))

    # Pick the suggestion (what choosing it from the list puts in the field) and filter.
    field.fill("hr_portal")
    field.press("Enter")
    page.wait_for_url(re.compile(r".*/audit/\?.*connector=hr_portal.*"))
    rows = page.locator("tbody tr")
    expect(rows).not_to_have_count(0)
    for text in rows.all_inner_texts():
        assert "hr_portal" in text and "hr_payroll" not in text
    expect(page.locator("#id_connector")).to_have_value("hr_portal")
    assert not problems, problems


def test_an_old_id_link_still_filters_and_reads_as_a_name(
    logged_in_page, live_server, make_connector
):
    kept = make_connector("hr_portal")
    make_connector("erp_sync")
    page = logged_in_page
    page.goto(f"{live_server.url}/audit/?connector={kept.pk}")
    expect(page.locator("#id_connector")).to_have_value("hr_portal")
    for text in page.locator("tbody tr").all_inner_texts():
        assert "hr_portal" in text and "erp_sync" not in text
