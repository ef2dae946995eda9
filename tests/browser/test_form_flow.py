"""Issue 9 in Chromium: typed secrets survive a failed submit (never in the HTML), the error
summary takes the focus and links to fields, a stale edit shows who saved and a diff, and the
sticky action bar never covers a field, at 1280 and 390 px, with and without JavaScript."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from connectors.forms import connector_forms
from connectors.models import Connector
from connectors.services import connector_update
from tests.conftest import USER_PASSWORD, form_data, make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

CLIENT_SECRET = "browser-client-secret-9Qx"
PASSWORD = "browser-password-7Kp"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _fill_oauth2_with_a_typo(page: Page, base: str) -> None:
    page.goto(f"{base}/connectors/new/")
    page.fill("#id_name", "hr_portal")
    page.fill("#id_base_url", "https://api.example.com")
    page.select_option("#id_auth_config", "oauth2")
    page.fill("#id_oauth2_client_id", "console-client")
    page.fill("#id_oauth2_client_secret", CLIENT_SECRET)
    page.fill("#id_oauth2_username", "svc.user")
    page.fill("#id_oauth2_password", PASSWORD)
    page.fill("#id_oauth2_token_url", "htps://login.example.com/oauth2/token")


def _assert_no_secret_in_html(page: Page) -> None:
    html = page.content()
    assert CLIENT_SECRET not in html and PASSWORD not in html


def test_a_failed_submit_keeps_typed_secrets_and_focuses_the_summary(
    logged_in_page, live_server, artifacts_dir
):
    page = logged_in_page
    page.set_viewport_size(DESKTOP)
    _fill_oauth2_with_a_typo(page, live_server.url)
    page.fill("#id_base_url", "not a url")
    page.click("button[type=submit]:has-text('Save')")

    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("2 problems to fix before saving")
    expect(page.locator('[data-cc-kept="oauth2_client_secret"]')).to_be_visible()
    expect(page.locator('[data-cc-kept="oauth2_password"]')).to_be_visible()
    expect(page.locator("#id_oauth2_client_secret")).to_have_value("")
    _assert_no_secret_in_html(page)
    page.emulate_media(reduced_motion="reduce")
    page.screenshot(path=str(artifacts_dir / "form-error-summary-1280.png"))
    page.locator("#id_oauth2_client_id").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "form-carried-secrets-1280.png"))
    page.set_viewport_size(PHONE)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / "form-error-summary-390.png"))
    page.locator("#id_oauth2_client_secret").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(artifacts_dir / "form-carried-secrets-390.png"))
    page.set_viewport_size(DESKTOP)

    # A link of the summary moves the focus to its field.
    summary.locator('a[href="#id_oauth2_token_url"]').click()
    expect(page.locator("#id_oauth2_token_url")).to_be_focused()
    expect(page.locator("#id_oauth2_token_url")).to_be_in_viewport()

    # Fix both fields and save, leaving the secret boxes blank: the kept values are saved.
    page.fill("#id_base_url", "https://api.example.com")
    page.fill("#id_oauth2_token_url", "https://login.example.com/oauth2/token")
    page.click("button[type=submit]:has-text('Save')")
    page.wait_for_url(f"{live_server.url}/connectors/hr_portal/")
    connector = Connector.objects.get(name="hr_portal")
    assert connector.oauth2_client_secret == CLIENT_SECRET
    assert connector.oauth2_password == PASSWORD


def test_clearing_a_kept_secret_works_without_javascript(browser, live_server):
    make_user("admin", username="nojs_admin")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "nojs_admin")
    page.fill("#id_password", USER_PASSWORD)
    page.click("button[type=submit]")
    _fill_oauth2_with_a_typo(page, live_server.url)
    page.click("button[type=submit]:has-text('Save')")
    expect(page.locator("#error-summary")).to_be_visible()
    _assert_no_secret_in_html(page)
    # The password is kept; the Client Secret is cleared with its box (optional: it may be).
    page.check("#id_oauth2_client_secret_forget")
    page.fill("#id_oauth2_token_url", "https://login.example.com/oauth2/token")
    page.click("button[type=submit]:has-text('Save')")
    page.wait_for_url(f"{live_server.url}/connectors/hr_portal/")
    connector = Connector.objects.get(name="hr_portal")
    assert connector.oauth2_password == PASSWORD
    assert connector.oauth2_client_secret == ""
    context.close()


def test_a_stale_edit_shows_who_saved_and_a_diff(logged_in_page, live_server, artifacts_dir):
    alice = make_user("admin", username="alice")
    values = {
        "name": "hr_portal",
        "base_url": "https://api.example.com",
        "enabled": True,
        "auth_config": "oauth2",
        "oauth2_grant_type": "password",
        "oauth2_client_id": "client-1",
        "oauth2_client_secret": "stored-client-secret",
        "oauth2_username": "svc.user",
        "oauth2_password": "stored-password",
        "oauth2_token_url": "https://login.example.com/oauth2/token",
    }
    bundle = connector_forms(data=form_data(values))
    assert bundle.is_valid()
    from connectors.services import connector_create

    connector = connector_create(connector=bundle.form.instance, rows=[], user=alice)

    page = logged_in_page
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/connectors/hr_portal/edit/")
    # Meanwhile alice changes the display name, the username and the Client Secret.
    theirs = connector_forms(
        data=form_data(
            {
                **values,
                "version": 1,
                "display_name": "HR (alice)",
                "oauth2_username": "svc.alice",
                "oauth2_client_secret": "alice-new-secret",
            }
        ),
        instance=Connector.objects.get(pk=connector.pk),
    )
    assert theirs.is_valid()
    connector_update(
        connector=theirs.form.instance, rows=theirs.rows(), user=alice, expected_version=1
    )

    page.fill("#id_display_name", "HR (mine)")
    page.fill("#id_oauth2_password", PASSWORD)
    page.click("button[type=submit]:has-text('Save')")
    conflict = page.locator("#conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_be_focused()
    expect(conflict).to_contain_text("by alice (version 2)")
    expect(page.locator("#error-summary")).to_have_count(0)
    table = conflict.locator("table")
    expect(table).to_contain_text("HR (alice)")
    expect(table).to_contain_text("HR (mine)")
    expect(table).to_contain_text("svc.alice")
    _assert_no_secret_in_html(page)
    html = page.content()
    assert "alice-new-secret" not in html and "stored-password" not in html
    page.screenshot(path=str(artifacts_dir / "form-conflict-diff-1280.png"))
    page.set_viewport_size({"width": 390, "height": 1100})
    page.screenshot(path=str(artifacts_dir / "form-conflict-diff-390.png"))
    page.set_viewport_size(DESKTOP)

    # Enter in a text field saves as usual (refused again), never "Save mine over theirs".
    with page.expect_navigation():
        page.press("#id_display_name", "Enter")
    expect(page.locator("#conflict")).to_contain_text("by alice (version 2)")
    expect(page.locator('[data-cc-kept="oauth2_password"]')).to_be_visible()
    page.click("button:has-text('Save mine over theirs')")
    page.wait_for_url(f"{live_server.url}/connectors/hr_portal/")
    saved = Connector.objects.get(pk=connector.pk)
    assert saved.display_name == "HR (mine)"
    assert saved.oauth2_password == PASSWORD  # the typed secret was carried across the 409
    assert saved.oauth2_client_secret == "alice-new-secret"


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1280"])
def test_the_sticky_action_bar_stays_in_reach_and_covers_no_field(
    logged_in_page, live_server, viewport
):
    page = logged_in_page
    # Bootstrap scrolls smoothly unless motion is reduced; positions are read after a scroll.
    page.emulate_media(reduced_motion="reduce")
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/connectors/new/")
    page.select_option("#id_auth_config", "oauth2")
    page.click("#oauth2-additional > summary")
    bar = page.locator("[data-cc-action-bar]")
    # Mid-form, the bar sits at the bottom of the viewport with Save and Test connection.
    page.locator("#id_oauth2_client_id").scroll_into_view_if_needed()
    box = bar.bounding_box()
    assert box is not None
    assert abs(box["y"] + box["height"] - viewport["height"]) <= 1
    assert box["height"] <= 70, box  # one row of buttons, also at 390 px
    expect(bar.get_by_role("button", name="Save")).to_be_in_viewport()
    expect(bar.get_by_role("button", name="Test connection")).to_be_in_viewport()
    # A focused field is scrolled clear of the bar.
    page.focus("#id_test_request_path")
    field = page.locator("#id_test_request_path").bounding_box()
    box = bar.bounding_box()
    assert field is not None and box is not None
    assert field["y"] + field["height"] <= box["y"]
    # At the end of the form the bar takes its own room below the last field.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    last = page.locator("#test-help").bounding_box()
    box = bar.bounding_box()
    assert last is not None and box is not None
    assert last["y"] + last["height"] <= box["y"] + 0.5


def test_an_empty_optional_client_secret_is_flagged_where_it_is_optional(
    logged_in_page, live_server, artifacts_dir
):
    page = logged_in_page
    page.emulate_media(reduced_motion="reduce")
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/connectors/new/")
    page.select_option("#id_auth_config", "oauth2")
    note = page.locator('[data-cc-unset="oauth2_client_secret"]')
    expect(note).to_be_visible()
    expect(note).to_have_text("Not set — the test will fail if the server needs it.")
    # The field's own description includes the note, for screen readers.
    described = page.locator("#id_oauth2_client_secret").get_attribute("aria-describedby") or ""
    assert "id_oauth2_client_secret_state" in described.split()
    page.locator("#id_oauth2_client_secret").evaluate("e => e.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(artifacts_dir / "form-unset-client-secret-390.png"))
    # Under Client Credentials Grant the secret is required: the rules say so, not this note.
    page.select_option("#id_oauth2_grant_type", "client_credentials")
    expect(note).to_be_hidden()
    page.select_option("#id_oauth2_grant_type", "refresh_token")
    expect(note).to_be_visible()
