"""The console's layout in Chromium: error pages, phone widths, and pages without JavaScript.

Screenshots (desktop and 390 px) go to artifacts/: layout_<page>_<width>.png.
"""

from __future__ import annotations

import re

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from playwright.sync_api import Page, expect

from connectors.models import Connector
from tests.conftest import OAUTH2_PASSWORD, USER_PASSWORD, make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls(__name__),
]


def broken_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom (test)")


urlpatterns = [
    path("broken-for-test/", broken_view),
    path("", include("config.urls")),
]
handler500 = "config.errors.server_error"  # a test's URLconf names its own handlers

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def login(page: Page, base: str, username: str) -> None:
    page.set_default_timeout(10_000)
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", USER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/connectors/")


def shoot(page: Page, artifacts_dir, name: str) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(artifacts_dir / f"layout_{name}_{width}.png"), full_page=True)


def open_additional_info(page: Page) -> None:
    """Open the form's Oauth2 "Additional info" (already open when rows are stored)."""
    details = page.locator("#oauth2-additional")
    if details.get_attribute("open") is None:
        details.locator("> summary").click()
    expect(details).to_have_attribute("open", "")


def no_horizontal_scroll(page: Page) -> None:
    """Nothing on the page is wider than the window (the phone layout's first rule)."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def assert_landmarks(page: Page, heading: str | re.Pattern[str], back: str) -> None:
    """The console's layout: the main navigation, one main region, its h1, a way back."""
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_role("main")).to_have_count(1)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.get_by_role("link", name=back)).to_be_visible()
    expect(page.get_by_role("link", name="Skip to main content")).to_have_count(1)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_403_page_names_the_refusal_and_the_role(
    page, live_server, make_connector, artifacts_dir, viewport
):
    make_connector("hr_portal")
    make_user("viewer", username="layout_viewer")
    page.set_viewport_size(viewport)
    login(page, live_server.url, "layout_viewer")
    response = page.goto(f"{live_server.url}/connectors/hr_portal/edit/")
    assert response is not None and response.status == 403
    assert_landmarks(page, "You may not do this", "Back to hr_portal")
    refused = page.locator("[data-cc-refused]")
    expect(refused).to_contain_text("GET /connectors/hr_portal/edit/")
    expect(refused).to_contain_text("Can change connector")
    expect(page.locator("[data-cc-roles]")).to_contain_text("Connector admins")
    expect(page.locator("main")).to_contain_text("Your roles: Connector viewers")
    shoot(page, artifacts_dir, "403")
    no_horizontal_scroll(page)
    page.get_by_role("link", name="Back to hr_portal").click()
    page.wait_for_url(f"{live_server.url}/connectors/hr_portal/")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_missing_connector_shows_our_404_with_debug_on(
    page, live_server, settings, artifacts_dir, viewport
):
    settings.DEBUG = True  # as `make run` serves: Django would show its debug page
    make_user("viewer", username="layout_viewer")
    page.set_viewport_size(viewport)
    login(page, live_server.url, "layout_viewer")
    response = page.goto(f"{live_server.url}/connectors/no_such_thing/")
    assert response is not None and response.status == 404
    assert_landmarks(page, "No connector named “no_such_thing”", "Back to the connectors")
    expect(
        page.get_by_role("link", name="Search the connectors for “no_such_thing”")
    ).to_be_visible()
    assert "Technical" not in page.content() and "URLconf" not in page.content()
    shoot(page, artifacts_dir, "404")
    no_horizontal_scroll(page)


def test_500_page_keeps_the_layout(page, live_server, artifacts_dir):
    make_user("viewer", username="layout_viewer")
    page.set_viewport_size(DESKTOP)
    login(page, live_server.url, "layout_viewer")
    response = page.goto(f"{live_server.url}/broken-for-test/")
    assert response is not None and response.status == 500
    assert_landmarks(page, "Something went wrong on the server", "Back to the connectors")
    assert "boom" not in page.content()
    shoot(page, artifacts_dir, "500")


def test_phone_layouts(page, live_server, make_connector, artifacts_dir):
    """390 px: rows stack, the list is cards, filters fold, the audit log reads; screenshots."""
    for index in range(4):
        make_connector(
            f"hr_portal_{index}",
            display_name=f"HR portal {index}",
            rows={"headers": [{"key": "Client-Id", "value": f"client-{index}"}]},
            **OAUTH2_PASSWORD,
        )
    make_user("admin", username="layout_admin")
    page.set_viewport_size(PHONE)
    login(page, live_server.url, "layout_admin")
    base = live_server.url

    # The list: filters folded behind a button, rows as cards with labelled cells.
    page.goto(f"{base}/connectors/")
    filters = page.get_by_text("Filters", exact=True)
    expect(filters).to_be_visible()
    expect(page.locator("#q")).to_be_hidden()
    first = page.locator("table.cc-cards tbody tr").first
    expect(first.locator("thead")).to_have_count(0)
    cells = first.locator("td[data-label]")
    box_row = first.bounding_box()
    assert box_row is not None and box_row["width"] <= PHONE["width"]
    # Cells stack: each labelled cell starts below the previous one.
    tops = [cells.nth(i).bounding_box()["y"] for i in range(cells.count())]  # type: ignore[index]
    assert tops == sorted(tops) and len(set(tops)) == len(tops), tops
    no_horizontal_scroll(page)
    # The card's select box is on top (Playwright's check() fails on a covered box).
    page.get_by_label("Select hr_portal_0").check()
    shoot(page, artifacts_dir, "list")
    filters.click()
    expect(page.locator("#q")).to_be_visible()
    shoot(page, artifacts_dir, "list_filters_open")

    # The detail page.
    page.goto(f"{base}/connectors/hr_portal_0/")
    no_horizontal_scroll(page)
    shoot(page, artifacts_dir, "detail")

    # The form: the key/value row's name sits above its value, both full width.
    page.goto(f"{base}/connectors/hr_portal_0/edit/")
    open_additional_info(page)
    name = page.get_by_label("Additional Headers row 1 name")
    value = page.get_by_label("Additional Headers row 1 value")
    name_box, value_box = name.bounding_box(), value.bounding_box()
    assert name_box is not None and value_box is not None
    assert value_box["y"] >= name_box["y"] + name_box["height"], (name_box, value_box)
    assert (
        abs(name_box["x"] - value_box["x"]) < 1 and abs(name_box["width"] - value_box["width"]) < 1
    )
    assert name_box["width"] > PHONE["width"] * 0.7, name_box
    no_horizontal_scroll(page)
    shoot(page, artifacts_dir, "form")
    page.locator("#oauth2-additional").screenshot(
        path=str(artifacts_dir / "layout_form_rows_390.png")
    )

    # The audit log: every record's cells inside the window, the summary on its own line.
    page.goto(f"{base}/audit/")
    no_horizontal_scroll(page)
    row = page.locator("table.cc-audit-table tbody tr").first
    summary = row.locator("td").last.bounding_box()
    assert summary is not None and summary["width"] > PHONE["width"] * 0.7, summary
    shoot(page, artifacts_dir, "audit")


def test_desktop_screenshots(page, live_server, make_connector, artifacts_dir):
    """The same pages at desktop width: filters shown without the fold button, a real table."""
    make_connector(
        "hr_portal",
        display_name="HR portal",
        rows={"headers": [{"key": "Client-Id", "value": "client-1"}]},
        **OAUTH2_PASSWORD,
    )
    make_user("admin", username="layout_admin")
    page.set_viewport_size(DESKTOP)
    login(page, live_server.url, "layout_admin")
    base = live_server.url
    page.goto(f"{base}/connectors/")
    expect(page.locator("#q")).to_be_visible()
    expect(page.get_by_text("Filters", exact=True)).to_be_hidden()
    expect(page.locator("table.cc-cards thead")).to_be_visible()
    shoot(page, artifacts_dir, "list")
    page.goto(f"{base}/connectors/hr_portal/")
    shoot(page, artifacts_dir, "detail")
    page.goto(f"{base}/connectors/hr_portal/edit/")
    open_additional_info(page)
    shoot(page, artifacts_dir, "form")
    page.locator("#oauth2-additional").screenshot(
        path=str(artifacts_dir / "layout_form_rows_1366.png")
    )
    page.goto(f"{base}/audit/")
    shoot(page, artifacts_dir, "audit")


def test_skip_link_moves_focus_to_main(logged_in_page, live_server):
    page = logged_in_page
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def contrast_ratio(page: Page, selector: str) -> float:
    """WCAG contrast of an element's text against the nearest opaque background behind it."""
    return page.evaluate(
        """(selector) => {
          const parse = (c) => c.match(/[\\d.]+/g).map(Number);
          const channel = (v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
          };
          const lum = ([r, g, b]) =>
            0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
          const el = document.querySelector(selector);
          const fg = parse(getComputedStyle(el).color);
          let node = el;
          let bg = [255, 255, 255];
          while (node && node.nodeType === 1) {
            const c = parse(getComputedStyle(node).backgroundColor);
            const transparent = c.length === 4 && c[3] === 0;
            if (!transparent) { bg = c; break; }
            node = node.parentElement;
          }
          const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
          return (a + 0.05) / (b + 0.05);
        }""",
        selector,
    )


def test_log_out_contrast_is_at_least_4_5(logged_in_page):
    ratio = contrast_ratio(logged_in_page, "nav form[action$='/logout/'] button")
    print(f"Log out contrast: {ratio:.2f}:1")
    assert ratio >= 4.5, ratio


def test_key_value_inputs_have_unique_names(logged_in_page, live_server, make_connector):
    make_connector(
        "hr_portal",
        rows={
            "headers": [{"key": "Client-Id", "value": "a"}, {"key": "X-Tenant", "value": "b"}],
            "data": [{"key": "resource", "value": "r"}],
        },
        **OAUTH2_PASSWORD,
    )
    page = logged_in_page
    page.goto(f"{live_server.url}/connectors/hr_portal/edit/")
    expect(page.get_by_label("Additional Headers row 2 name")).to_have_value("X-Tenant")
    expect(page.get_by_label("Additional Request Data row 1 name")).to_have_value("resource")
    open_additional_info(page)
    page.locator("[data-cc-formset=headers] [data-cc-add-row]").click()
    expect(page.get_by_label("Additional Headers row 4 name")).to_be_focused()
    names = page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-cc-rows] input:not([type=hidden])'))
              .map((i) => i.getAttribute('aria-label'))"""
    )
    assert len(names) == len(set(names)), names
    assert all(names), names


def test_pre_blocks_are_focusable(
    logged_in_page, live_server, make_connector, fault_server, loopback_allowed
):
    from audit.models import AuditEvent
    from connectors.connection_test import connector_test

    connector = make_connector(
        "hr_portal",
        **{
            **OAUTH2_PASSWORD,
            "oauth2_client_id": fault_server.client_id,
            "oauth2_client_secret": fault_server.client_secret,
            "oauth2_token_url": fault_server.url("/html500"),
        },
    )
    connector_test(connector=connector, user=None, source="saved")
    event = AuditEvent.objects.filter(test_run__isnull=False).latest("id")
    page = logged_in_page
    page.goto(f"{live_server.url}/audit/{event.pk}/")
    pres = page.locator("pre")
    assert pres.count() > 0
    for index in range(pres.count()):
        pre = pres.nth(index)
        if pre.evaluate("(el) => getComputedStyle(el).overflow.includes('auto')"):
            expect(pre).to_have_attribute("tabindex", "0")
            assert pre.get_attribute("aria-label"), pre.inner_html()[:80]


# ---- JavaScript off ------------------------------------------------------------------------


@pytest.fixture
def no_js_page(browser, live_server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_without_javascript_every_detail_section_is_reachable(
    no_js_page, live_server, make_connector, artifacts_dir
):
    make_connector("hr_portal", **OAUTH2_PASSWORD)
    make_user("admin", username="layout_admin")
    page = no_js_page
    page.set_viewport_size(DESKTOP)
    login(page, live_server.url, "layout_admin")
    page.goto(f"{live_server.url}/connectors/hr_portal/")
    for pane, heading in (
        ("#pane-settings", "Settings"),
        ("#pane-tests", "Recent tests"),
        ("#pane-history", "History"),
    ):
        expect(page.locator(pane)).to_be_visible()
        expect(page.locator(pane).get_by_role("heading", name=heading)).to_be_visible()
    page.get_by_role("tab", name="History").click()
    assert page.url.endswith("#pane-history")
    shoot(page, artifacts_dir, "detail_nojs")


def test_with_javascript_one_section_at_a_time(logged_in_page, live_server, make_connector):
    make_connector("hr_portal", **OAUTH2_PASSWORD)
    page = logged_in_page
    page.goto(f"{live_server.url}/connectors/hr_portal/")
    expect(page.locator("#pane-history")).to_be_hidden()
    expect(page.locator("#pane-settings h2")).to_be_hidden()  # the no-script heading
    page.get_by_role("tab", name="History").click()
    expect(page.locator("#pane-history")).to_be_visible()
    expect(page.locator("#pane-settings")).to_be_hidden()


def test_without_javascript_several_rows_are_added_in_one_save(
    no_js_page, live_server, make_connector, artifacts_dir
):
    make_connector("hr_portal", **OAUTH2_PASSWORD)
    make_user("admin", username="layout_admin")
    page = no_js_page
    login(page, live_server.url, "layout_admin")
    page.goto(f"{live_server.url}/connectors/hr_portal/edit/")
    open_additional_info(page)
    expect(page.locator("[data-cc-add-row]").first).to_be_hidden()  # needs JavaScript
    for number, (key, value) in enumerate(
        [("X-Tenant", "t1"), ("X-Region", "eu"), ("X-Team", "hr")], start=1
    ):
        page.get_by_label(f"Additional Headers row {number} name").fill(key)
        page.get_by_label(f"Additional Headers row {number} value").fill(value)
    page.locator("[data-cc-formset=headers]").screenshot(
        path=str(artifacts_dir / "layout_form_rows_nojs.png")
    )
    page.get_by_label("Password Grant Password").fill("user-password-1")
    page.get_by_label("Client Secret", exact=True).fill("client-secret-1")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{live_server.url}/connectors/hr_portal/")
    connector = Connector.objects.get(name="hr_portal")
    assert [(p.key, p.value) for p in connector.params.order_by("position")] == [
        ("X-Tenant", "t1"),
        ("X-Region", "eu"),
        ("X-Team", "hr"),
    ]


def test_with_javascript_spare_rows_are_dropped(logged_in_page, live_server, make_connector):
    make_connector(
        "hr_portal", rows={"headers": [{"key": "Client-Id", "value": "a"}]}, **OAUTH2_PASSWORD
    )
    page = logged_in_page
    page.goto(f"{live_server.url}/connectors/hr_portal/edit/")
    headers = page.locator("[data-cc-formset=headers]")
    expect(headers.locator("[data-cc-row]")).to_have_count(2)  # the stored row and one spare
    expect(page.locator("input[name=headers-TOTAL_FORMS]")).to_have_value("2")


def test_without_javascript_copy_buttons_are_hidden_and_the_form_test_links_back(
    no_js_page, live_server, make_connector, fault_server, loopback_allowed, artifacts_dir
):
    make_connector(
        "hr_portal",
        **{
            **OAUTH2_PASSWORD,
            "oauth2_client_id": fault_server.client_id,
            "oauth2_client_secret": fault_server.client_secret,
            "oauth2_token_url": fault_server.url("/ok"),
        },
    )
    make_user("admin", username="layout_admin")
    page = no_js_page
    login(page, live_server.url, "layout_admin")
    page.goto(f"{live_server.url}/connectors/hr_portal/edit/")
    page.get_by_role("button", name="Test connection").click()
    page.wait_for_url(f"{live_server.url}/connectors/hr_portal/edit/test/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Connection test")
    expect(page.get_by_role("heading", name="Copy as curl").first).to_be_visible()
    expect(page.locator("[data-audit-copy]").first).to_be_hidden()
    shoot(page, artifacts_dir, "form_test_nojs")
    page.get_by_role("link", name="Back to the form").click()
    page.wait_for_url(f"{live_server.url}/connectors/hr_portal/edit/")


def test_with_javascript_copy_buttons_show(
    logged_in_page, live_server, make_connector, fault_server, loopback_allowed
):
    from audit.models import AuditEvent
    from connectors.connection_test import connector_test

    connector = make_connector(
        "hr_portal",
        **{
            **OAUTH2_PASSWORD,
            "oauth2_client_id": fault_server.client_id,
            "oauth2_client_secret": fault_server.client_secret,
            "oauth2_token_url": fault_server.url("/ok"),
        },
    )
    connector_test(connector=connector, user=None, source="saved")
    event = AuditEvent.objects.filter(test_run__isnull=False).latest("id")
    page = logged_in_page
    page.goto(f"{live_server.url}/audit/{event.pk}/")
    expect(page.locator("[data-audit-copy]").first).to_be_visible()
