"""Test selected from the list, and the batch page filling in live, in Chromium.

Screenshots at desktop width go to artifacts/ (batch_in_progress.png, batch_finished.png,
connector_list_batch_selection.png). No worker reads the queue here: the test runs the batch's
items itself (what a worker does), while the page polls.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from connectors.batches import batch_item_run
from connectors.models import Batch, BatchItem
from tests.conftest import OAUTH2_PASSWORD
from tests.peers.slow_token_server import SlowTokenServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}


def test_test_selected_and_watch_the_batch(
    logged_in_page, live_server, make_connector, loopback_allowed, celery_no_worker, artifacts_dir
):
    page = logged_in_page
    page.set_viewport_size(DESKTOP)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    with SlowTokenServer(delay=0.05) as server:
        for index in range(8):
            path = "/fail" if index % 4 == 3 else "/token"
            make_connector(
                f"hr_{index:02d}", **{**OAUTH2_PASSWORD, "oauth2_token_url": server.url(path)}
            )
        page.goto(f"{live_server.url}/connectors/?q=hr_")
        expect(page.get_by_text("All 8 matching this filter")).to_be_visible()
        page.get_by_label("Select hr_00").check()
        page.get_by_label("Select hr_01").check()
        page.screenshot(path=str(artifacts_dir / "connector_list_batch_selection.png"))
        page.get_by_label("All 8 matching this filter").check()
        page.get_by_role("button", name="Test selected").click()
        page.wait_for_url(f"{live_server.url}/connectors/batch/*/")
        batch = Batch.objects.get()
        assert batch.total == 8 and batch.filter_description == "q=hr_"
        expect(page.locator("progress")).to_have_attribute("value", "0")
        items = list(BatchItem.objects.filter(batch=batch).order_by("id"))
        for item in items[:3]:
            batch_item_run(item_id=item.pk)
        # The page picks the results up by itself (no reload).
        expect(page.locator('[data-cc-batch-field="finished"]')).to_have_text("3")
        expect(page.locator("progress")).to_have_attribute("value", "3")
        page.screenshot(path=str(artifacts_dir / "batch_in_progress.png"), full_page=True)
        for item in items[3:]:
            batch_item_run(item_id=item.pk)
        expect(page.locator('[data-cc-batch-field="state_label"]')).to_have_text("Finished")
        expect(page.locator('[data-cc-batch-field="failed"]')).to_have_text("2")
        expect(page.get_by_role("button", name="Cancel waiting tests")).to_have_count(0)
        page.screenshot(path=str(artifacts_dir / "batch_finished.png"), full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_cancel_from_the_batch_page(logged_in_page, live_server, make_connector, celery_no_worker):
    page = logged_in_page
    for index in range(3):
        make_connector(f"fin_{index}")
    page.goto(f"{live_server.url}/connectors/?q=fin_")
    page.get_by_label("All 3 matching this filter").check()
    page.get_by_role("button", name="Test selected").click()
    page.wait_for_url(f"{live_server.url}/connectors/batch/*/")
    page.get_by_role("button", name="Cancel waiting tests").click()
    expect(page.get_by_text("Batch cancelled: 3 waiting tests skipped.")).to_be_visible()
    expect(page.locator('[data-cc-batch-field="state_label"]')).to_have_text("Cancelled")
