"""The dashboard and the list's summary strip in Chromium: they draw, link, and break no CSP.

Screenshots at desktop width go to artifacts/ (dashboard.png, connector_list_health.png).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import TestAttempt
from connectors.models import Connector
from tests.conftest import OAUTH2_PASSWORD
from tests.test_health import fake_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}


def fleet(make_connector) -> None:
    """A dozen connectors: passing, failing for a while, stale, never tested, secrets expiring."""
    today = timezone.localdate()
    teams = ("HR", "Finance", "Sales", "IT")
    for index in range(12):
        connector = make_connector(
            f"conn_{index:02d}", owner_team=teams[index % 4], **OAUTH2_PASSWORD
        )
        profile = index % 6
        if profile == 5:
            continue  # never tested
        days_back = 20 if profile == 4 else 0
        for day in range(days_back + 14, days_back, -1):
            failing = (profile in (1, 2) and day <= 2 + index % 3) or (day * index + 3) % 17 == 0
            run = fake_run(
                connector,
                ok=not failing,
                outcome="success"
                if not failing
                else ("timeout" if index % 2 else "invalid_client"),
                ago=dt.timedelta(days=day - 1, hours=index),
            )
            TestAttempt.objects.create(
                run=run,
                position=1,
                step="token",
                method="POST",
                url=f"https://login{index % 4}.example.com/tenant/oauth2/token",
                duration_ms=80 + (index % 4) * 150 + (day * 37) % 90,
                outcome=run.outcome,
            )
        if index % 3 == 0:
            Connector.objects.filter(pk=connector.pk).update(
                client_secret_expires_on=today + dt.timedelta(days=index * 4 - 6)
            )


def collect_errors(page) -> list[str]:
    seen: list[str] = []
    page.on(
        "console",
        lambda message: seen.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


def test_dashboard_and_list_strip(logged_in_page, live_server, make_connector, artifacts_dir):
    fleet(make_connector)
    page = logged_in_page
    errors = collect_errors(page)
    page.set_viewport_size(DESKTOP)

    page.click("nav >> text=Dashboard")
    page.wait_for_url(f"{live_server.url}/dashboard/")
    expect(page.locator("svg[data-cc-chart=failures] rect")).to_have_count(30)
    expect(page.get_by_role("img", name="Failures per day, last 30 days")).to_be_visible()
    expect(page.locator("#failing-title")).to_be_visible()
    expect(page.locator("text=https://login3.example.com")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "dashboard.png"), full_page=True)

    page.goto(f"{live_server.url}/connectors/")
    strip = page.locator("nav.cc-health-strip")
    expect(strip).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "connector_list_health.png"), full_page=True)

    strip.locator("[data-cc-count=failing]").click()
    page.wait_for_url("**/connectors/?health=failing*")
    expect(page.locator("tbody [data-cc-health]").first).to_have_attribute(
        "data-cc-health", "failing"
    )
    expect(page.locator("tbody [data-cc-health=passing]")).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "connector_list_failing.png"), full_page=True)
    assert errors == []


def test_the_form_offers_a_date_for_the_client_secret_expiry(logged_in_page, live_server):
    page = logged_in_page
    page.goto(f"{live_server.url}/connectors/new/")
    date = page.locator("#id_client_secret_expires_on")
    expect(date).to_be_hidden()  # the Oauth2 group is closed until Oauth2 is chosen
    page.select_option("#id_auth_config", "oauth2")
    expect(date).to_be_visible()
    expect(date).to_have_attribute("type", "date")
