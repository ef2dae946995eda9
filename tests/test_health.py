"""Fleet health: the row a recorded run updates, its states, the backfill, the list's filters,
sorts and summary strip, and Client Secret Expires On."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import TestRun
from audit.services import AuditWriteError
from connectors.connection_test import connector_test
from connectors.health import (
    HealthState,
    connector_health_backfill,
    connector_health_record,
    health_state,
)
from connectors.models import Connector, ConnectorHealth
from tests.conftest import OAUTH2_PASSWORD, form_data

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def fake_run(
    connector, *, ok: bool, outcome: str = "", ago: dt.timedelta, source="saved", token=None
):
    """A run row as connector_test writes it (no network), folded into health like it."""
    run = TestRun.objects.create(
        connector_id=connector.pk,
        connector_name=connector.name,
        source=source,
        started_at=NOW - ago,
        ok=ok,
        outcome=outcome or ("success" if ok else "invalid_client"),
        token=token,
    )
    connector_health_record(connector_id=connector.pk, run=run)
    return run


def health_of(connector) -> ConnectorHealth | None:
    return ConnectorHealth.objects.filter(pk=connector.pk).first()


@pytest.fixture
def ok_connector(make_connector, fault_server, settings):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    return make_connector(
        "hr_portal",
        **{
            **OAUTH2_PASSWORD,
            "oauth2_client_id": fault_server.client_id,
            "oauth2_client_secret": fault_server.client_secret,
            "oauth2_token_url": fault_server.url("/ok"),
        },
    )


def point_to(connector: Connector, url: str) -> Connector:
    Connector.objects.filter(pk=connector.pk).update(oauth2_token_url=url)
    return Connector.objects.get(pk=connector.pk)


def test_a_saved_test_moves_the_health_row_and_counts_the_streak(ok_connector, fault_server):
    first = connector_test(connector=ok_connector).run
    health = health_of(ok_connector)
    assert first.ok and health is not None
    assert health.last_ok is True and health.last_outcome == "success"
    assert health.state_since == first.started_at == health.last_success_at
    assert health.failing_since is None and health.consecutive_failures == 0
    # The token expiry the successful test saw (expires_in 3600 from the server).
    assert health.token_expires_at is not None
    assert abs((health.token_expires_at - first.started_at).total_seconds() - 3600) < 60
    assert health_state(health) == HealthState.PASSING

    broken = point_to(ok_connector, fault_server.url("/error200"))
    second = connector_test(connector=broken).run
    third = connector_test(connector=broken).run
    health = health_of(ok_connector)
    assert not second.ok and not third.ok
    assert health.last_ok is False and health.last_outcome == third.outcome
    assert health.failing_since == second.started_at == health.state_since
    assert health.consecutive_failures == 2
    assert health.last_success_at == first.started_at  # kept while failing
    assert health_state(health) == HealthState.FAILING

    fixed = point_to(ok_connector, fault_server.url("/ok"))
    fourth = connector_test(connector=fixed).run
    health = health_of(ok_connector)
    assert health.last_ok is True and health.state_since == fourth.started_at
    assert health.failing_since is None and health.consecutive_failures == 0


def test_a_test_of_unsaved_form_values_does_not_count(ok_connector):
    connector_test(connector=ok_connector, source=TestRun.Source.FORM)
    assert health_of(ok_connector) is None
    assert TestRun.objects.count() == 1


def test_the_health_row_is_written_in_the_runs_transaction(ok_connector):
    # The audit append fails (full and minimal record alike): the run and its health go too.
    with mock.patch("audit.services._append_written", side_effect=AuditWriteError()):
        with pytest.raises(AuditWriteError):
            connector_test(connector=ok_connector)
    assert TestRun.objects.count() == 0
    assert health_of(ok_connector) is None


def test_an_older_run_recorded_late_changes_nothing(make_connector):
    connector = make_connector("crm")
    newer = fake_run(connector, ok=True, ago=dt.timedelta(minutes=1))
    assert health_of(connector).last_run_id == newer.pk
    # Two tests at once: the one written first (lower id) reaches the health row second.
    stale_run = mock.Mock(pk=newer.pk - 1, source="saved", ok=False, outcome="timeout")
    stale_run.started_at = NOW - dt.timedelta(minutes=5)
    connector_health_record(connector_id=connector.pk, run=stale_run)
    assert health_of(connector).last_ok is True


def test_each_run_moves_the_health_row_in_one_statement(make_connector):
    # On every test's path (issue 10): the first run inserts the row, the next ones update it,
    # one statement each and nothing read first.
    connector = make_connector("crm")
    runs = [
        TestRun.objects.create(
            connector_id=connector.pk, connector_name=connector.name, source="saved",
            started_at=NOW - dt.timedelta(minutes=10 - index), ok=ok, outcome="x",
        )  # fmt: skip
        for index, ok in enumerate((False, False, True))
    ]
    for run in runs:
        with CaptureQueriesContext(connection) as queries:
            connector_health_record(connector_id=connector.pk, run=run)
        assert len(queries) == 1, [q["sql"] for q in queries]
    health = health_of(connector)
    assert health.last_run_id == runs[-1].pk and health.state_since == runs[-1].started_at
    assert health.consecutive_failures == 0 and health.last_success_at == runs[-1].started_at


def test_stale_and_never_are_decided_when_read(make_connector, settings):
    settings.CONNECTORS_STALE_DAYS = 7
    fresh, old, never = make_connector("fresh"), make_connector("old"), make_connector("never")
    fake_run(fresh, ok=False, ago=dt.timedelta(days=6))
    fake_run(old, ok=True, ago=dt.timedelta(days=8))
    assert health_state(health_of(fresh)) == HealthState.FAILING
    assert health_state(health_of(old)) == HealthState.STALE
    assert health_state(health_of(never)) == HealthState.NEVER
    settings.CONNECTORS_STALE_DAYS = 30
    assert health_state(health_of(old)) == HealthState.PASSING


def test_the_backfill_rebuilds_the_same_rows_and_is_idempotent(make_connector):
    a, b, c = make_connector("a_conn"), make_connector("b_conn"), make_connector("c_conn")
    token = {"expires_at": (NOW + dt.timedelta(hours=1)).timestamp()}
    for minutes, ok in ((50, True), (40, False), (30, False), (20, True), (10, False)):
        fake_run(a, ok=ok, ago=dt.timedelta(minutes=minutes), token=token if ok else None)
    fake_run(b, ok=True, ago=dt.timedelta(minutes=5), token=token)
    fake_run(c, ok=False, ago=dt.timedelta(minutes=1), source="form")  # does not count
    recorded = {h.pk: _values(h) for h in ConnectorHealth.objects.all()}
    assert set(recorded) == {a.pk, b.pk}
    ConnectorHealth.objects.all().delete()
    assert connector_health_backfill() == 2
    assert {h.pk: _values(h) for h in ConnectorHealth.objects.all()} == recorded
    out = io.StringIO()
    call_command("connectors_health_backfill", stdout=out)
    assert "2 tested connectors" in out.getvalue()
    assert {h.pk: _values(h) for h in ConnectorHealth.objects.all()} == recorded


def _values(health: ConnectorHealth) -> dict:
    return {
        f.attname: getattr(health, f.attname)
        for f in ConnectorHealth._meta.concrete_fields
        if f.attname != "connector_id"
    }


# --------------------------------------------------------------------------------------------
# The list


@pytest.fixture
def fleet(make_connector, settings):
    settings.CONNECTORS_STALE_DAYS = 7
    today = timezone.localdate()
    passing = make_connector("passing_one")
    long_failing = make_connector("failing_long")
    new_failing = make_connector("failing_new")
    stale = make_connector("stale_one")
    never = make_connector("never_one")
    fake_run(passing, ok=True, ago=dt.timedelta(hours=1))
    fake_run(long_failing, ok=False, outcome="timeout", ago=dt.timedelta(days=3))
    fake_run(long_failing, ok=False, outcome="timeout", ago=dt.timedelta(hours=2))
    fake_run(new_failing, ok=True, ago=dt.timedelta(days=2))
    fake_run(new_failing, ok=False, outcome="invalid_client", ago=dt.timedelta(hours=3))
    fake_run(stale, ok=True, ago=dt.timedelta(days=9))
    Connector.objects.filter(pk=passing.pk).update(
        client_secret_expires_on=today + dt.timedelta(days=12)
    )
    Connector.objects.filter(pk=never.pk).update(
        client_secret_expires_on=today + dt.timedelta(days=90)
    )
    return {"passing": passing, "failing": long_failing, "stale": stale, "never": never}


def names(client, query: str) -> list[str]:
    response = client.get(f"/connectors/?{query}")
    assert response.status_code == 200
    return [c.name for c in response.context["connectors"]]


def test_the_list_filters_on_health_outcome_and_expiring_secrets(admin_client, fleet):
    assert names(admin_client, "health=failing") == ["failing_long", "failing_new"]
    assert names(admin_client, "health=passing") == ["passing_one"]
    assert names(admin_client, "health=stale") == ["stale_one"]
    assert names(admin_client, "health=never") == ["never_one"]
    assert names(admin_client, "outcome=timeout") == ["failing_long"]
    assert names(admin_client, "expiring=30") == ["passing_one"]
    assert names(admin_client, "expiring=100") == ["never_one", "passing_one"]
    # Unknown values are ignored, as the page always did.
    assert len(names(admin_client, "health=bogus&outcome=bogus&expiring=x")) == 5


def test_the_list_sorts_by_failing_since_and_last_test(admin_client, fleet):
    assert names(admin_client, "sort=failing")[:2] == ["failing_long", "failing_new"]
    assert names(admin_client, "sort=-failing")[:2] == ["failing_new", "failing_long"]
    # Never tested last either way.
    assert names(admin_client, "sort=-tested") == [
        "passing_one",
        "failing_long",
        "failing_new",
        "stale_one",
        "never_one",
    ]
    assert names(admin_client, "sort=tested")[-1] == "never_one"


def test_the_summary_strip_counts_and_links_to_each_filter(admin_client, fleet):
    page = admin_client.get("/connectors/").content.decode()
    counts = dict(
        re.findall(r'data-cc-count="(\w+)"[^>]*>[^<]*<span class="badge[^"]*">(\d+)</span>', page)
    )
    assert counts == {"failing": "2", "passing": "1", "stale": "1", "never": "1", "expiring": "1"}
    for link in ("health=failing", "health=passing", "health=stale", "health=never", "expiring=30"):
        assert f"/connectors/?{link}" in page
    # The readable label of the last outcome, and the secret's countdown.
    assert "Client rejected" in page
    assert "Client Secret expires in 12 days" in page


def test_the_lists_query_count_does_not_grow_with_health_rows(admin_client, make_connector):
    # One of each, so no filter starts from an empty page (which skips the page's query).
    fake_run(make_connector("first"), ok=False, ago=dt.timedelta(minutes=1))
    fake_run(make_connector("second"), ok=True, ago=dt.timedelta(minutes=1))

    def count(query: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(f"/connectors/?{query}").status_code == 200
        return len(queries)

    before = {q: count(q) for q in ("", "sort=failing", "health=failing", "sort=-tested")}
    for index in range(20):
        connector = make_connector(f"c{index:03d}", auth_config="none")
        fake_run(connector, ok=index % 2 == 0, ago=dt.timedelta(minutes=index))
    assert {q: count(q) for q in before} == before


# --------------------------------------------------------------------------------------------
# Client Secret Expires On


def test_the_form_stores_the_expiry_and_the_detail_page_counts_down(admin_client):
    on = timezone.localdate() + dt.timedelta(days=5)
    data = form_data(
        {
            **OAUTH2_PASSWORD,
            "name": "azure_hr",
            "enabled": True,
            "client_secret_expires_on": on.isoformat(),
        }
    )
    assert admin_client.post("/connectors/new/", data).status_code == 302
    connector = Connector.objects.get(name="azure_hr")
    assert connector.client_secret_expires_on == on
    page = admin_client.get("/connectors/azure_hr/").content.decode()
    assert "Client Secret expires in 5 days" in page
    assert on.isoformat() in page
    form_page = admin_client.get("/connectors/azure_hr/edit/").content.decode()
    assert f'type="date" name="client_secret_expires_on" value="{on.isoformat()}"' in form_page


def test_the_expiry_belongs_to_oauth2_and_is_cleared_with_it(admin_client, make_connector):
    connector = make_connector(
        "wiki",
        client_secret_expires_on="2031-01-31",
        auth_config="basic",
        basic_username="u",
        basic_password="p",
    )
    assert connector.client_secret_expires_on is None


def test_export_and_import_carry_the_expiry(make_connector, tmp_path):
    make_connector("hr_portal", client_secret_expires_on="2031-01-31", **OAUTH2_PASSWORD)
    out = io.StringIO()
    call_command("connectors_export", stdout=out)
    exported = json.loads(out.getvalue())["connectors"][0]
    assert exported["client_secret_expires_on"] == "2031-01-31"
    exported["client_secret_expires_on"] = "2032-02-29"
    exported["oauth2"]["password"] = ""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"connectors": [exported]}))
    call_command("connectors_import", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert Connector.objects.get().client_secret_expires_on == dt.date(2032, 2, 29)


def test_a_test_run_records_the_expiry_in_its_configuration(ok_connector):
    Connector.objects.filter(pk=ok_connector.pk).update(
        client_secret_expires_on=dt.date(2031, 1, 31)
    )
    run = connector_test(connector=Connector.objects.get(pk=ok_connector.pk)).run
    assert TestRun.objects.get(pk=run.pk).config["client_secret_expires_on"] == "2031-01-31"


def test_pages_of_a_health_sort_run_on_from_tested_to_never_tested(
    admin_client, make_connector, settings
):
    settings.CONNECTORS_PAGE_SIZE = 3
    for name in ("a_never", "b_never", "c_never"):
        make_connector(name)
    fake_run(make_connector("z_old"), ok=True, ago=dt.timedelta(hours=5))
    fake_run(make_connector("y_new"), ok=False, ago=dt.timedelta(hours=1))

    def pages(query: str) -> list[list[str]]:
        first = admin_client.get(f"/connectors/?{query}")
        second = admin_client.get(f"/connectors/?{query}&page=2")
        assert first.context["paginator"].count == second.context["paginator"].count
        return [[c.name for c in response.context["connectors"]] for response in (first, second)]

    assert pages("sort=-tested") == [["y_new", "z_old", "a_never"], ["b_never", "c_never"]]
    assert pages("sort=tested") == [["z_old", "y_new", "a_never"], ["b_never", "c_never"]]
    assert pages("sort=failing") == [["y_new", "a_never", "b_never"], ["c_never", "z_old"]]
    # Filtered (the counts then go through the join): the same split.
    assert pages("sort=-tested&q=_") == [["y_new", "z_old", "a_never"], ["b_never", "c_never"]]
