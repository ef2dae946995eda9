"""Append-only at every layer, the hash chain, its verifier, retention and concurrent appends."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction
from django.test import RequestFactory
from django.utils import timezone

from audit.append_only import AppendOnlyError, AppendOnlyModel
from audit.chain import chain_verify, prune_boundary
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent, TestAttempt, TestRun
from audit.pruning import audit_prune
from audit.services import AuditWriteError, audit_record
from tests.test_audit_support import (
    make_connector,
    make_run,
    make_user,
    postgres_only,
    raw_sql,
    record_change,
)

pytestmark = pytest.mark.django_db


def verify_result():
    results = list(chain_verify(chunk_size=3))
    return results[-1]


def test_records_chain_each_to_the_previous_one():
    connector = make_connector()
    first = record_change(connector)
    run = make_run(connector)
    third = audit_record(kind="denial", action="rate_limited", connector=connector)
    second = run.audit_event
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert len({first.hash, second.hash, third.hash}) == 3
    head = AuditChainHead.objects.get()
    assert (head.last_event_id, head.last_hash) == (third.pk, third.hash)
    assert verify_result().ok


def test_record_takes_who_and_what_from_the_run():
    user = make_user("olga")
    connector = make_connector()
    run = make_run(connector, user=user)
    event = run.audit_event
    assert event.kind == "test_run"
    assert (event.user_id, event.username) == (user.pk, "olga")
    assert (event.connector_id, event.connector_name) == (connector.pk, "crm_api")
    assert (event.source, event.outcome) == ("saved", "invalid_client")


def test_unknown_kind_and_unsaved_run_are_loud(caplog):
    caplog.set_level(logging.ERROR, logger="audit")
    with pytest.raises(AuditWriteError):
        audit_record(kind="gossip", action="x")
    with pytest.raises(AuditWriteError):
        audit_record(kind="test_run", action="test", test_run=TestRun(connector_id=1))
    assert AuditEvent.objects.count() == 0
    assert "Audit record NOT written" in caplog.text


def test_database_failure_is_loud_and_leaves_the_caller_usable(caplog):
    caplog.set_level(logging.ERROR, logger="audit")
    connector = make_connector()
    with mock.patch("audit.models.AuditEvent.save", side_effect=DatabaseError("disk full")):
        with pytest.raises(AuditWriteError) as excinfo:
            record_change(connector)
    assert "could not record" in str(excinfo.value)
    assert excinfo.value.__cause__ is None  # the database's text could quote values
    assert "DatabaseError" in caplog.text
    # The savepoint rolled back: the chain head did not move and the next write succeeds.
    assert record_change(connector).prev_hash == GENESIS_HASH


# --- append-only, layer by layer ---------------------------------------------------------


def test_saving_an_existing_record_is_refused():
    event = record_change(make_connector())
    event.summary = "rewritten"
    with pytest.raises(AppendOnlyError, match="append-only"):
        event.save()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.get(pk=event.pk).save(update_fields=["summary"])
    assert AuditEvent.objects.get(pk=event.pk).summary != "rewritten"


def test_deleting_a_record_is_refused():
    event = record_change(make_connector())
    with pytest.raises(AppendOnlyError):
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_queryset_update_and_delete_are_refused():
    event = record_change(make_connector())
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(summary="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_update([event], ["summary"])
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk)._raw_delete(connection.alias)
    assert AuditEvent.objects.count() == 1


def test_admin_is_read_only():
    superuser = make_user("root", superuser=True)
    event = record_change(make_connector())
    model_admin = admin.site._registry[AuditEvent]
    request = RequestFactory().get("/admin/")
    request.user = superuser
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, event)
    assert not model_admin.has_delete_permission(request, event)
    assert model_admin.has_view_permission(request, event)
    assert set(model_admin.get_readonly_fields(request, event)) >= {"summary", "details", "hash"}
    assert not model_admin.get_actions(request)


def test_admin_pages_show_but_never_change(client):
    client.force_login(make_user("root", superuser=True))
    event = record_change(make_connector())
    assert client.get("/admin/audit/auditevent/").status_code == 200
    assert client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200
    assert (
        client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"summary": "x"}).status_code
        == 403
    )
    assert (
        client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).summary == event.summary


@pytest.mark.skipif(
    not issubclass(TestRun, AppendOnlyModel),
    reason="connectors.TestRun/TestAttempt do not inherit audit.append_only.AppendOnlyModel yet",
)
def test_test_runs_and_attempts_are_append_only_too():
    run = make_run(make_connector())
    run.outcome = "success"
    with pytest.raises(AppendOnlyError):
        run.save()
    with pytest.raises(AppendOnlyError):
        run.delete()
    with pytest.raises(AppendOnlyError):
        TestRun.objects.filter(pk=run.pk).update(outcome="success")
    with pytest.raises(AppendOnlyError):
        run.attempts.update(status_code=200)
    with pytest.raises(AppendOnlyError):
        run.attempts.all().delete()
    with pytest.raises(AppendOnlyError):
        run.attempts.first().delete()
    assert TestRun.objects.get(pk=run.pk).outcome == "invalid_client"
    assert verify_result().ok


@pytest.mark.postgres
@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET summary = 'x'",
        "DELETE FROM audit_auditevent",
        "UPDATE connectors_testrun SET outcome = 'success'",
        "DELETE FROM connectors_testrun",
        "UPDATE connectors_testattempt SET status_code = 200",
        "DELETE FROM connectors_testattempt",
    ],
)
def test_postgres_trigger_refuses_raw_update_and_delete(sql):
    make_run(make_connector())
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.count() == 1
    assert TestAttempt.objects.count() == 2


# --- the verifier ------------------------------------------------------------------------


def test_verify_passes_on_an_untouched_log(capsys):
    connector = make_connector()
    for _ in range(4):
        record_change(connector)
        make_run(connector)
    call_command("audit_verify", "--chunk-size", "3")
    assert "Audit chain intact: 8 records verified" in capsys.readouterr().out


def test_verify_on_an_empty_log(capsys):
    call_command("audit_verify")
    assert "empty" in capsys.readouterr().out


@pytest.mark.parametrize(
    "target",
    ["event_summary", "event_details", "event_created_at", "run_outcome", "attempt_excerpt"],
)
def test_verify_names_the_record_changed_with_raw_sql(target):
    connector = make_connector()
    record_change(connector)
    run = make_run(connector)
    record_change(connector)
    victim = run.audit_event
    sql = {
        "event_summary": (
            "UPDATE audit_auditevent SET summary = %s WHERE id = %s",
            ["ok", victim.pk],
        ),
        "event_details": (
            "UPDATE audit_auditevent SET details = %s WHERE id = %s",
            ['{"changes": []}', victim.pk],
        ),
        "event_created_at": (
            "UPDATE audit_auditevent SET created_at = %s WHERE id = %s",
            [timezone.now() - dt.timedelta(days=400), victim.pk],
        ),
        "run_outcome": (
            "UPDATE connectors_testrun SET outcome = %s WHERE id = %s",
            ["success", run.pk],
        ),
        "attempt_excerpt": (
            "UPDATE connectors_testattempt SET response_excerpt = %s "
            "WHERE run_id = %s AND position = 2",
            ['{"access_token": "x"}', run.pk],
        ),
    }[target]
    raw_sql(*sql)
    result = verify_result()
    assert not result.ok
    assert result.bad_id == victim.pk
    with pytest.raises(CommandError, match=rf"record #{victim.pk}\b.*does not match its hash"):
        call_command("audit_verify")


def test_verify_catches_a_removed_attempt_and_a_removed_record():
    connector = make_connector()
    run = make_run(connector)
    last = record_change(connector)
    raw_sql("DELETE FROM connectors_testattempt WHERE run_id = %s AND position = 1", [run.pk])
    assert verify_result().bad_id == run.audit_event.pk
    # A removed record breaks the link of the one after it.
    raw_sql("DELETE FROM connectors_testattempt WHERE run_id = %s", [run.pk])
    raw_sql("DELETE FROM audit_auditevent WHERE id = %s", [run.audit_event.pk])
    result = verify_result()
    assert (result.ok, result.bad_id) == (False, last.pk)
    assert "previous-hash link is broken" in result.problem


def test_verify_catches_records_cut_from_the_end():
    connector = make_connector()
    record_change(connector)
    last = record_change(connector)
    raw_sql("DELETE FROM audit_auditevent WHERE id = %s", [last.pk])
    result = verify_result()
    assert not result.ok and "chain head" in result.problem


def test_verify_catches_records_cut_from_the_start():
    connector = make_connector()
    first = record_change(connector)
    record_change(connector)
    raw_sql("DELETE FROM audit_auditevent WHERE id = %s", [first.pk])
    assert "start of the log" in verify_result().problem


# --- retention ---------------------------------------------------------------------------


def _records_at(when: dt.datetime, count: int, connector) -> list[AuditEvent]:
    with mock.patch("audit.services.timezone.now", return_value=when):
        return [
            record_change(connector) if i % 2 else make_run(connector).audit_event
            for i in range(count)
        ]


def test_prune_removes_the_old_stretch_and_keeps_the_chain_verifiable():
    connector = make_connector()
    old = _records_at(timezone.now() - dt.timedelta(days=400), 4, connector)
    recent = _records_at(timezone.now() - dt.timedelta(days=2), 3, connector)
    result = audit_prune(cutoff=timezone.now() - dt.timedelta(days=365))
    assert (result.count, result.first_id, result.last_id) == (4, old[0].pk, old[-1].pk)
    assert result.end_hash == old[-1].hash
    assert result.test_runs == 2 and result.attempts == 4
    assert list(AuditEvent.objects.order_by("id").values_list("id", flat=True)) == [
        *(e.pk for e in recent),
        result.record.pk,
    ]
    assert not TestRun.objects.filter(pk__in=[e.test_run_id for e in old if e.test_run_id]).exists()
    assert TestRun.objects.count() == 2
    record = result.record
    assert (record.kind, record.action) == ("system", "prune")
    assert record.details["first_id"] == old[0].pk and record.details["last_id"] == old[-1].pk
    assert record.details["count"] == 4 and record.details["end_hash"] == old[-1].hash
    assert prune_boundary().end_hash == old[-1].hash
    assert verify_result().ok
    # The log goes on from there, and a second prune chains the same way.
    record_change(connector)
    assert audit_prune(cutoff=timezone.now() - dt.timedelta(days=1)).count == 3
    assert verify_result().ok


def test_prune_boundary_still_catches_tampering():
    connector = make_connector()
    _records_at(timezone.now() - dt.timedelta(days=40), 2, connector)
    kept = _records_at(timezone.now() - dt.timedelta(days=1), 2, connector)
    audit_prune(cutoff=timezone.now() - dt.timedelta(days=30))
    raw_sql("DELETE FROM audit_auditevent WHERE id = %s", [kept[0].pk])
    result = verify_result()
    assert not result.ok and result.bad_id == kept[1].pk


def test_prune_with_nothing_old_changes_nothing():
    record_change(make_connector())
    assert audit_prune(cutoff=timezone.now() - dt.timedelta(days=30)).count == 0
    assert AuditEvent.objects.count() == 1


def test_prune_command(capsys):
    connector = make_connector()
    _records_at(timezone.now() - dt.timedelta(days=100), 3, connector)
    _records_at(timezone.now(), 1, connector)
    call_command("audit_prune", "--older-than", "90")
    assert "Removed 3 audit records" in capsys.readouterr().out
    call_command("audit_verify")
    with pytest.raises(CommandError):
        call_command("audit_prune", "--older-than", "0")


@pytest.mark.postgres
@postgres_only
def test_postgres_trigger_lets_only_the_prune_delete():
    connector = make_connector()
    _records_at(timezone.now() - dt.timedelta(days=100), 2, connector)
    assert audit_prune(cutoff=timezone.now() - dt.timedelta(days=90)).count == 2
    # The permit is closed once the prune is done: a later raw delete is refused.
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent")


# --- concurrency -------------------------------------------------------------------------


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_appends_never_fork_the_chain():
    connector = make_connector()
    user = make_user("concurrent")
    start = threading.Barrier(10)

    def append(index: int) -> int:
        try:
            if index < 10:
                start.wait(timeout=10)
            with transaction.atomic():
                if index % 5 == 0:
                    return make_run(connector, user=user).audit_event.pk
                return audit_record(
                    kind="change",
                    action="edit",
                    user=user,
                    connector=connector,
                    summary=f"change {index}",
                    details={
                        "changes": [{"field": "description", "before": "", "after": str(index)}]
                    },
                ).pk
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=10) as pool:
        ids = list(pool.map(append, range(50)))
    assert len(set(ids)) == 50
    assert AuditEvent.objects.count() == 50
    prev_hashes = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(set(prev_hashes)) == 50  # no two records claim the same predecessor
    result = verify_result()
    assert result.ok and result.checked == 50


# --- recording a test run: hash what is written, lock only for the append ------------------


def _unsaved_run(connector, *, message: str = "The server refused the client.", attempts: int = 2):
    run = TestRun(
        connector_id=connector.pk,
        connector_name=connector.name,
        source="saved",
        started_at=timezone.now(),
        duration_ms=12,
        ok=False,
        outcome="invalid_client",
        message=message,
        hint="Check the client secret.",
        token={"jwt_claims": {"exp": 1e300, "aud": -0.0, "iat": float("nan")}, "n": (1, 2)},
        config={"auth_config": "oauth2", "oauth2_client_secret": "set"},
    )
    rows = [
        TestAttempt(
            position=position,
            step="token",
            client_authentication="basic_client",
            method="POST",
            url=connector.oauth2_token_url,
            request_headers=[["Accept", "application/json"]],
            request_body=[["grant_type", "client_credentials"]],
            status_code=401,
            response_headers=[["Content-Type", "application/json"]],
            response_excerpt='{"error": "invalid_client", "x": "a\x00b"}',
            duration_ms=5,
            outcome="invalid_client",
            message="invalid_client\ud800",
            curl="curl -X POST https://auth.example.com/oauth/token",
        )
        for position in range(1, attempts + 1)
    ]
    return run, rows


def test_a_recorded_run_is_hashed_as_written_without_reading_it_back():
    from django.db.models import prefetch_related_objects
    from django.test.utils import CaptureQueriesContext

    from audit.services import test_run_record

    connector = make_connector()
    record_change(connector)
    prefetch_related_objects([connector], "params")  # as connector_test does, for the masking
    run, attempts = _unsaved_run(connector)
    with CaptureQueriesContext(connection) as queries:
        stored = test_run_record(run=run, attempts=attempts, connector=connector)
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    # The run and its attempts (one statement on PostgreSQL), the head lock, the record, the
    # head: nothing of what was just written is read again.
    assert len(statements) <= 5, statements
    assert not [s for s in statements if s.lstrip().upper().startswith("SELECT") and "testrun" in s]
    assert not [s for s in statements if "connectors_testattempt" in s and "SELECT" in s[:10]]
    assert (
        stored is run
        and stored.pk
        and [a.pk for a in attempts]
        == [a.pk for a in TestAttempt.objects.filter(run=run).order_by("position")]
    )
    assert run.audit_event.test_run_id == run.pk
    assert TestRun.objects.get(pk=run.pk).token == run.token  # as written is as read back
    assert verify_result().ok


def test_a_lean_written_run_still_shows_tampering():
    from audit.services import test_run_record

    connector = make_connector()
    run, attempts = _unsaved_run(connector)
    test_run_record(run=run, attempts=attempts, connector=connector)
    assert verify_result().ok
    raw_sql("UPDATE connectors_testattempt SET status_code = 200 WHERE id = %s", [attempts[1].pk])
    result = verify_result()
    assert not result.ok and result.bad_id == run.audit_event.pk


def test_a_record_with_nul_in_its_summary_and_details_is_stored_clean():
    connector = make_connector()
    event = audit_record(
        kind="denial",
        action="refused",
        connector=connector,
        summary="path /x\x00y refused",
        details={"path": "/x\x00y", "n\x00": float("inf")},
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert "\x00" not in stored.summary and "\x00" not in repr(stored.details)
    assert stored.details == event.details == {"path": "/x\ufffdy", "n\ufffd": "Infinity"}
    assert verify_result().ok


@pytest.mark.django_db(transaction=True)
def test_the_chain_lock_is_held_for_the_append_not_the_exchange(make_connector, fault_server):
    """Record after the exchange: a slow token server must not keep the head locked."""
    from audit.lock_timing import chain_lock_timing
    from connectors.connection_test import connector_test

    settings_override = {"CONNECTORS_OUTBOUND_ALLOW_LOOPBACK": True}
    previous = fault_server.drip_interval
    fault_server.drip_interval = 0.005  # ~70 bytes: the exchange takes about 0.35 s
    try:
        from django.test import override_settings

        with override_settings(**settings_override):
            connector = make_connector(
                "slow_token",
                auth_config="oauth2",
                oauth2_grant_type="client_credentials",
                oauth2_client_id="c",
                oauth2_client_secret="s",
                oauth2_token_url=fault_server.url("/drip-body"),
                oauth2_client_authentication="request_body",
            )
            with chain_lock_timing() as holds:
                run = connector_test(connector=connector).run
    finally:
        fault_server.drip_interval = previous
    assert run.ok and run.duration_ms >= 250
    assert len(holds) == 1
    assert holds[0] < 0.1, f"the chain head stayed locked {holds[0]:.3f} s"


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgres_records_a_run_in_two_round_trips_and_it_verifies():
    """Run + attempts + head lock in one round trip, record + head move in another."""
    from django.db.models import prefetch_related_objects
    from django.test.utils import CaptureQueriesContext

    from audit.services import test_run_record

    connector = make_connector()
    record_change(connector)
    prefetch_related_objects([connector], "params")
    run, attempts = _unsaved_run(connector, attempts=3)
    with CaptureQueriesContext(connection) as queries:
        test_run_record(run=run, attempts=attempts, connector=connector)
    logged = [q["sql"] for q in queries.captured_queries]
    trips = [sql for sql in logged if sql not in ("BEGIN", "COMMIT")]
    assert len(logged) == 4 and len(trips) == 2, logged  # BEGIN, the two, COMMIT
    assert "FOR UPDATE" in trips[0] and "audit_auditchainhead" in trips[1]
    stored = TestRun.objects.get(pk=run.pk)
    assert stored.token == run.token and stored.attempts.count() == 3
    assert "\x00" not in stored.attempts.first().response_excerpt
    assert verify_result().ok


# --- the streaming verifier (issue 10: a million records in constant memory) --------------


def _bare_run(connector, attempts: int) -> TestRun:
    """A run and its attempts, not yet recorded (as a worker holds it before the append)."""
    run = TestRun.objects.create(
        connector_id=connector.pk,
        connector_name=connector.name,
        source="saved",
        started_at=timezone.now(),
        outcome="invalid_client",
        token={"é": "ü\u2028", "at": 1.5},
        config={"auth_config": "oauth2"},
    )
    for position in range(1, attempts + 1):
        TestAttempt.objects.create(
            run=run, position=position, method="POST", url="https://a.example/t", outcome="x"
        )
    return run


def _record(run: TestRun, connector) -> AuditEvent:
    return audit_record(kind="test_run", action="test", test_run=run, connector=connector)


def test_runs_recorded_out_of_order_with_any_number_of_attempts_verify():
    """Workers finish in any order: a later run can be recorded before an earlier one."""
    connector = make_connector()
    runs = [_bare_run(connector, attempts) for attempts in (3, 0, 1, 2, 4)]
    for run in (runs[3], runs[0], runs[4]):
        _record(run, connector)
        record_change(connector)
    for run in (runs[2], runs[1]):
        _record(run, connector)
    for chunk_size in (1, 2, 3, 1000):
        result = list(chain_verify(chunk_size=chunk_size))[-1]
        assert result.ok and result.checked == 8, (chunk_size, result.problem)


def test_a_changed_attempt_names_its_own_record_when_runs_are_out_of_order():
    connector = make_connector()
    early, late = _bare_run(connector, 2), _bare_run(connector, 2)
    late_event = _record(late, connector)
    early_event = _record(early, connector)
    record_change(connector)
    attempt = early.attempts.order_by("position").last()
    raw_sql("UPDATE connectors_testattempt SET outcome = 'success' WHERE id = %s", [attempt.pk])
    result = verify_result()
    assert not result.ok and result.bad_id == early_event.pk != late_event.pk
    assert "or its test run/attempts" in result.problem


def test_the_walk_reads_a_fixed_number_of_queries_whatever_the_size(
    django_assert_max_num_queries,
):
    connector = make_connector()
    for index in range(40):
        if index % 2:
            make_run(connector)
        else:
            record_change(connector)
    # The prune boundary, the records with their runs, the attempts, the head: not one query
    # per record or per chunk of records (chunks are fetches from the same two cursors).
    with django_assert_max_num_queries(4):
        results = list(chain_verify(chunk_size=3))
    assert results[-1].ok and results[-1].checked == 40
    assert [r.checked for r in results[:-1]] == list(range(3, 40, 3))


def test_the_fast_hashing_is_the_keyed_hmac_and_the_canonical_json_as_written():
    import json

    from audit.chain import canonical_json, chain_hash
    from audit.keys import mac

    payload = {
        "b": [1, 2.5, None, True],
        "a": {"z": "é\u2028\x00", "y": dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)},
        "when": dt.date(2026, 1, 2),
    }
    expected = json.dumps(
        payload,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=lambda v: (
            v.isoformat(timespec="microseconds") if isinstance(v, dt.datetime) else v.isoformat()
        ),
    )
    assert canonical_json(payload) == expected
    key = b"k" * 32
    data = ("0" * 64 + "\n" + expected).encode("utf-8")
    assert chain_hash("0" * 64, payload, key) == mac(key, data)


def test_held_attempts_past_the_limit_are_read_again_alone():
    from audit import chain

    connector = make_connector()
    runs = [_bare_run(connector, 2) for _ in range(5)]
    for run in (runs[4], runs[3], runs[0], runs[2], runs[1]):
        _record(run, connector)
    with mock.patch.object(chain, "HELD_ATTEMPTS", 1):
        assert verify_result().ok
        raw_sql("UPDATE connectors_testattempt SET url = 'x' WHERE run_id = %s", [runs[1].pk])
        result = verify_result()
    assert not result.ok and result.bad_id == runs[1].audit_event.pk
