"""The dashboard: who may see it, its counts, chart, lists and token endpoint p95s."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import TestAttempt, TestRun
from connectors.models import Connector
from connectors.selectors import failures_per_day, slowest_token_endpoints
from tests.conftest import make_user
from tests.test_health import fake_run

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_login_is_required_and_viewers_and_up_may_see_it(db):
    response = Client().get("/dashboard/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client_for(make_user("nobody", "nobody")).get("/dashboard/").status_code == 403
    for role in ("viewer", "operator", "admin"):
        page = client_for(make_user(role)).get("/dashboard/")
        assert page.status_code == 200
        assert 'href="/dashboard/"' in page.content.decode()  # in the navbar


def add_run(connector, *, ok: bool, ago: dt.timedelta, url: str = "", ms: int = 0):
    run = fake_run(connector, ok=ok, ago=ago)
    if url:
        TestAttempt.objects.create(
            run=run, position=1, step="token", method="POST", url=url, duration_ms=ms, outcome="x"
        )
    return run


def test_failures_per_day_counts_failed_saved_runs_per_day(make_connector):
    connector = make_connector("crm")
    today = timezone.localdate()
    now = timezone.now()
    # At noon (local) of a few days, so the day does not depend on when the test runs.
    noon = timezone.make_aware(dt.datetime.combine(today, dt.time(12)))
    for days_ago, count in ((0, 2), (3, 1), (29, 4), (30, 9)):
        for _ in range(count):
            add_run(connector, ok=False, ago=now - noon + dt.timedelta(days=days_ago))
    add_run(connector, ok=True, ago=now - noon)
    TestRun.objects.create(
        connector_id=connector.pk, connector_name="crm", source="form",
        started_at=noon, ok=False, outcome="timeout",
    )  # fmt: skip
    days = failures_per_day(days=30, today=today)
    assert len(days) == 30 and days[0].day == today - dt.timedelta(days=29)
    by_day = {d.day: d.count for d in days}
    assert by_day[today] == 2
    assert by_day[today - dt.timedelta(days=3)] == 1
    assert by_day[today - dt.timedelta(days=29)] == 4
    assert sum(by_day.values()) == 7  # the 31st day back and the form test are left out


def test_the_p95_of_token_requests_per_origin_over_seven_days(make_connector):
    connector = make_connector("crm")
    for ms in range(1, 101):  # 1..100 ms: the nearest-rank p95 is 95
        add_run(
            connector,
            ok=True,
            ago=dt.timedelta(hours=1),
            url=f"https://login.example.com/tenant-{ms % 3}/oauth2/token?x=1",
            ms=ms,
        )
    add_run(
        connector, ok=True, ago=dt.timedelta(hours=2), url="http://idp.example.org:8443/t", ms=7
    )
    add_run(connector, ok=True, ago=dt.timedelta(days=8), url="https://old.example.net/t", ms=9999)
    rows = slowest_token_endpoints(days=7)
    assert [(r.origin, r.p95_ms, r.requests) for r in rows] == [
        ("https://login.example.com", 95, 100),
        ("http://idp.example.org:8443", 7, 1),
    ]


def test_the_dashboard_shows_each_panel_in_a_constant_number_of_queries(make_connector, settings):
    settings.CONNECTORS_STALE_DAYS = 7
    viewer = client_for(make_user("viewer"))

    def render() -> tuple[str, int]:
        with CaptureQueriesContext(connection) as queries:
            response = viewer.get("/dashboard/")
        assert response.status_code == 200
        return response.content.decode(), len(queries)

    first = make_connector("first")
    add_run(first, ok=False, ago=dt.timedelta(days=1), url="https://a.example.com/t", ms=5)
    Connector.objects.filter(pk=first.pk).update(
        client_secret_expires_on=timezone.localdate() + dt.timedelta(days=3)
    )
    _, few = render()
    for index in range(15):
        connector = make_connector(f"c{index:02d}", auth_config="none")
        add_run(connector, ok=index % 3 != 0, ago=dt.timedelta(days=index % 5, hours=1),
                url=f"https://idp{index}.example.com/token", ms=100 + index)  # fmt: skip
        Connector.objects.filter(pk=connector.pk).update(
            client_secret_expires_on=timezone.localdate() + dt.timedelta(days=index * 10)
        )
    page, many = render()
    assert many == few
    # The chart: an SVG with a title (accessible name) and the table fallback, no script.
    svg = re.search(r"<svg[^>]*>.*?</svg>", page, re.S).group(0)
    assert 'role="img"' in svg and "<title" in svg and "<script" not in svg
    assert svg.count("<rect") == 30
    assert "The same figures as a table" in page
    # Failing longest first (c09: 4 days, ..., c00: an hour); expiring soonest: c00 (today).
    failing = page[page.index("Failing longest") : page.index("Client Secrets expiring")]
    order = ["c09", "c03", "c12", "c06", "first", "c00"]
    assert sorted(order, key=failing.index) == order
    expiring = page[page.index("Client Secrets expiring") : page.index("Slowest token")]
    assert expiring.index("c00") < expiring.index("first") < expiring.index("c01")
    assert "expires today" in expiring and "expires in 3 days" in expiring
    assert "https://idp14.example.com" in page
    assert re.search(r'data-cc-count="failing"[^>]*>[^<]*<span class="badge[^"]*">6</span>', page)
