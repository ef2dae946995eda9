"""A test run's transaction on PostgreSQL (audit.writer).

It commits without waiting for the disk when it records only test runs, durably as soon as it
records anything else, and durably everywhere with AUDIT_DURABLE_TEST_RUNS. The rows that go
with a run (health, notice claim, batch item) ride with its next round trip. A recording in a
transaction of its own sends BEGIN and COMMIT with its two round trips.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit import round_trips, services, writer
from audit.chain import chain_verify
from audit.lock_timing import chain_lock_timing
from audit.models import AuditEvent, TestRun
from audit.services import (
    AuditWriteError,
    audit_group,
    audit_group_flush,
    audit_record,
)
from connectors import recording
from connectors.models import ConnectorHealth
from tests.test_audit_support import postgres_only
from tests.test_recording_groups import job, record_as_one_group

# Each test opens the transaction it inspects: the connectors' creation (itself audited, so
# durable) commits before it.
pytestmark = [
    pytest.mark.postgres,
    postgres_only,
    pytest.mark.django_db(transaction=True),
]


def commit_setting() -> str:
    """What the open transaction's COMMIT will do (the test's transaction stands for it)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def record_a_test_run(connector, **kwargs):
    return job(connector, **kwargs)()  # the recording connector_test makes after its exchange


def test_a_transaction_that_records_only_test_runs_does_not_wait_for_the_disk(make_connector):
    connector = make_connector("relaxed")
    with transaction.atomic():
        assert commit_setting() == "on"
        record_a_test_run(connector)
        record_a_test_run(connector, ok=False)
        assert commit_setting() == "off"
    assert commit_setting() == "on"  # SET LOCAL: that transaction only


def test_a_group_of_test_runs_commits_without_waiting(make_connector):
    connectors = [make_connector(f"grouped_{n}") for n in range(2)]
    with transaction.atomic(), audit_group():
        for each in connectors:
            job(each)()
        audit_group_flush()
        assert commit_setting() == "off"


def test_any_other_record_in_the_transaction_makes_it_durable_again(make_connector):
    connector = make_connector("mixed")
    with transaction.atomic():
        record_a_test_run(connector)
        assert commit_setting() == "off"
        # A refusal (a blocked test), a change, anything that is not a test run:
        audit_record(kind="denial", action="blocked", connector=connector, summary="refused")
        assert commit_setting() == "on"
        record_a_test_run(connector)  # a later test run does not relax it again
        assert commit_setting() == "on"


def test_a_change_recorded_first_keeps_the_transaction_durable(make_connector):
    connector = make_connector("changed_first")
    with transaction.atomic():
        audit_record(kind="change", action="edit", connector=connector, summary="edited")
        record_a_test_run(connector)
        assert commit_setting() == "on"


def test_a_group_with_a_refusal_commits_durably(make_connector):
    connectors = [make_connector(f"group_refused_{n}") for n in range(2)]
    with transaction.atomic(), audit_group():
        job(connectors[0])()
        audit_record(kind="denial", action="blocked", connector=connectors[0], summary="no")
        job(connectors[1])()
        audit_group_flush()
        assert commit_setting() == "on"


def test_with_audit_durable_test_runs_every_test_run_waits_for_the_disk(make_connector, settings):
    settings.AUDIT_DURABLE_TEST_RUNS = True
    connectors = [make_connector("durable"), make_connector("durable_group")]
    with transaction.atomic():
        record_a_test_run(connectors[0])
        assert commit_setting() == "on"
    with transaction.atomic():
        results = record_as_one_group([job(connectors[1]), job(connectors[1])])
        assert results[0].result()[0].pk is not None
        assert commit_setting() == "on"


def test_a_batch_recording_outside_a_group_is_relaxed_too(make_connector):
    connector = make_connector("batch_alone")
    with transaction.atomic():
        recording.record(job(connector), batch=True)  # no grouped_recording(): at once
        assert commit_setting() == "off"


def writes(queries: CaptureQueriesContext) -> list[str]:
    """The round trips that write or lock (not savepoints, reads of params, or the COMMIT and
    ROLLBACK Django logs whether or not the driver sends them); BEGIN when one rides along."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"]
        .removeprefix("BEGIN; ")
        .startswith(("INSERT", "UPDATE", "SET", "SELECT last_event_id"))
    ]


def test_the_rows_that_go_with_a_run_ride_with_the_head_lock(make_connector):
    connector = make_connector("riding")
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        record_a_test_run(connector)
    trips = writes(queries)
    # The run (and attempts); then its health row, notice claim and the head lock in one trip
    # (three before); then the record and the head's move.
    assert len(trips) == 3, trips
    assert trips[0].startswith('INSERT INTO "connectors_testrun"')
    assert trips[1].startswith('INSERT INTO "connectors_connectorhealth"')
    assert 'UPDATE "connectors_notificationstate"' in trips[1]
    assert trips[1].endswith("FOR UPDATE")
    assert 'INSERT INTO "audit_auditevent"' in trips[2]


def test_in_a_group_a_runs_rows_ride_with_the_next_runs_insert(make_connector):
    connectors = [make_connector(f"group_riding_{n}") for n in range(3)]
    with CaptureQueriesContext(connection) as queries:
        results = record_as_one_group([job(each) for each in connectors])
    assert all(done.result()[0].pk for done in results)
    trips = writes(queries)
    assert len(trips) == 5, trips  # three runs, the head lock, the records (was 3 more per run)
    assert trips[0].startswith('INSERT INTO "connectors_testrun"')
    for trip in trips[1:3]:  # the previous run's rows, then this run's INSERT
        assert trip.startswith('INSERT INTO "connectors_connectorhealth"')
        assert 'INSERT INTO "connectors_testrun"' in trip
    assert trips[3].startswith('INSERT INTO "connectors_connectorhealth"')
    assert trips[3].endswith("FOR UPDATE")  # the last run's rows ride with the group's lock
    assert trips[4].count('INSERT INTO "audit_auditevent"') == 3


# --- a recording in a transaction of its own: BEGIN and COMMIT ride too ---------------------


def test_a_recording_alone_is_two_round_trips_with_begin_and_commit_riding(make_connector):
    connector = make_connector("own")
    warnings: list[str] = []

    def warned(notice) -> None:
        warnings.append(notice.message_primary)

    raw = connection.connection
    raw.add_notice_handler(warned)
    try:
        with CaptureQueriesContext(connection) as queries, chain_lock_timing() as holds:
            run, _ = record_a_test_run(connector)
    finally:
        raw.remove_notice_handler(warned)
    trips = writes(queries)
    assert len(trips) == 2, trips
    # BEGIN, the run (and attempts), its health row and notice claim, and the head lock; then
    # the relaxed commit setting, the record, the head's move and COMMIT.
    assert trips[0].startswith('BEGIN; INSERT INTO "connectors_testrun"')
    assert 'INSERT INTO "connectors_connectorhealth"' in trips[0]
    assert 'UPDATE "connectors_notificationstate"' in trips[0]
    assert trips[0].endswith("FOR UPDATE")
    assert trips[1].startswith("SET LOCAL synchronous_commit TO off; ")
    assert 'INSERT INTO "audit_auditevent"' in trips[1]
    assert trips[1].endswith("; COMMIT")
    # psycopg sent no BEGIN or COMMIT of its own (PostgreSQL warns of a BEGIN inside a
    # transaction and of a COMMIT outside one; Django logs a "COMMIT" either way)...
    assert warnings == []
    # ...and the atomic block still ended as one: its on_commit hooks ran, autocommit is back.
    assert len(holds) == 1
    assert connection.get_autocommit() and raw.autocommit
    assert not connection.in_atomic_block
    stored = TestRun.objects.get(pk=run.pk)
    assert AuditEvent.objects.get(test_run_id=stored.pk).hash == run.audit_event.hash
    assert ConnectorHealth.objects.get(pk=connector.pk).last_run_id == run.pk
    assert list(chain_verify())[-1].ok


def test_the_record_is_made_while_the_runs_rows_are_written_and_before_the_lock(
    make_connector, monkeypatch
):
    connector = make_connector("own_meanwhile")
    seen: list[tuple[bool, bool]] = []
    made = services._run_event
    pid = connection.connection.info.backend_pid
    with psycopg.connect(connection.connection.info.dsn, autocommit=True) as other:

        def run_written() -> bool:
            query = (
                "SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'relation' "
                "AND relation = 'connectors_testrun'::regclass"
            )
            for _ in range(500):  # the first round trip was only just flushed
                if other.execute(query, [pid]).fetchone()[0]:
                    return True
                time.sleep(0.01)
            return False

        def head_free() -> bool:
            try:
                other.execute("SELECT 1 FROM audit_auditchainhead WHERE id = 1 FOR UPDATE NOWAIT")
            except psycopg.errors.LockNotAvailable:
                return False
            return True

        def observed(*args, **kwargs):
            seen.append((run_written(), head_free()))
            return made(*args, **kwargs)

        monkeypatch.setattr(services, "_run_event", observed)
        with CaptureQueriesContext(connection) as queries:
            run, _ = record_a_test_run(connector)
    # Made once, while the server wrote the run (its INSERT had arrived), before the head lock.
    assert seen == [(True, True)]
    assert len(writes(queries)) == 2
    assert AuditEvent.objects.get(test_run_id=run.pk).hash == run.audit_event.hash
    assert list(chain_verify())[-1].ok


def test_a_record_that_cannot_be_made_mid_trip_leaves_a_minimal_one(make_connector, monkeypatch):
    connector = make_connector("own_meanwhile_fault")
    made = services._run_event
    calls: list[int] = []

    def first_fails(run, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("not today")
        return made(run, *args, **kwargs)

    monkeypatch.setattr(services, "_run_event", first_fails)
    runs = TestRun.objects.count()
    run, _ = record_a_test_run(connector)
    assert len(calls) == 2  # the full record, which failed mid-trip; then the minimal one
    assert TestRun.objects.count() == runs + 1  # the first run's rows were rolled back
    assert "could not be stored (ValueError)" in TestRun.objects.get(pk=run.pk).message
    raw = connection.connection
    assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert connection.get_autocommit() and raw.autocommit
    assert list(chain_verify())[-1].ok


def test_a_fault_in_the_commit_trip_rolls_everything_back(make_connector, monkeypatch):
    connector = make_connector("own_fault")
    runs, events = TestRun.objects.count(), AuditEvent.objects.count()
    # The head's move names a record that is not the newest: its guard trigger refuses it, in
    # the round trip that would have committed.
    monkeypatch.setattr(writer, "CURRENT_EVENT_ID", "0")
    with pytest.raises(AuditWriteError):
        record_a_test_run(connector)  # and its minimal record, refused alike
    assert (TestRun.objects.count(), AuditEvent.objects.count()) == (runs, events)
    assert not ConnectorHealth.objects.filter(pk=connector.pk).exists()
    raw = connection.connection
    assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert connection.get_autocommit() and raw.autocommit
    monkeypatch.undo()
    run, _ = record_a_test_run(connector)  # the connection is fine for the next one
    assert TestRun.objects.filter(pk=run.pk).exists()
    assert list(chain_verify())[-1].ok


def test_a_rider_that_refuses_rolls_the_recording_back_before_anything_commits(make_connector):
    connector = make_connector("own_refusal")
    seen: list[int] = []

    def lost(count: int) -> None:  # as a batch item whose claim was taken by another runner
        seen.append(count)
        raise RuntimeError("not ours any more")

    def on_recorded(run) -> None:
        round_trips.ride("UPDATE connectors_connector SET name = name WHERE id = %s", [-1], lost)

    runs = TestRun.objects.count()
    with CaptureQueriesContext(connection) as queries, pytest.raises(AuditWriteError):
        record_a_test_run(connector, on_recorded=on_recorded)
    assert seen == [0, 0]  # the run, then its minimal record: both refused before a commit
    assert not any(trip.endswith("COMMIT") for trip in writes(queries))
    assert TestRun.objects.count() == runs


def test_a_riders_then_runs_in_the_transaction_and_its_on_commit_hooks_after_it(
    make_connector,
):
    connector = make_connector("own_hook")
    order: list[str] = []

    def counted(count: int) -> None:
        order.append(f"then {count} in {connection.connection.info.transaction_status.name}")
        transaction.on_commit(lambda: order.append("on_commit"))

    def on_recorded(run) -> None:
        round_trips.ride(
            "UPDATE connectors_connector SET name = name WHERE id = %s", [connector.pk], counted
        )

    record_a_test_run(connector, on_recorded=on_recorded)
    assert order == ["then 1 in INTRANS", "on_commit"]


def test_a_transaction_opened_by_the_caller_is_left_to_the_caller(make_connector):
    connector = make_connector("callers")
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        record_a_test_run(connector)
        assert connection.connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    assert not any("BEGIN" in trip or "COMMIT" in trip for trip in writes(queries))


def test_a_configured_isolation_level_leaves_begin_to_the_driver(make_connector):
    connector = make_connector("isolated")
    connection.ensure_connection()
    raw = connection.connection
    raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        with CaptureQueriesContext(connection) as queries:
            run, _ = record_a_test_run(connector)
    finally:
        raw.isolation_level = None
    assert not any("BEGIN" in trip or "COMMIT" in trip for trip in writes(queries))
    assert TestRun.objects.filter(pk=run.pk).exists()


def test_a_caller_that_turned_autocommit_off_keeps_its_transaction(make_connector):
    connector = make_connector("manual")
    runs = TestRun.objects.count()
    transaction.set_autocommit(False)
    try:
        with CaptureQueriesContext(connection) as queries:
            record_a_test_run(connector)
        assert not any("BEGIN" in trip or "COMMIT" in trip for trip in writes(queries))
        transaction.rollback()  # the caller's to end: nothing of it was committed
    finally:
        transaction.set_autocommit(True)
    assert TestRun.objects.count() == runs


def test_rows_that_ride_with_the_runs_insert_name_that_run(make_connector, settings):
    # The health row and a batch item take the run's id in the round trip that inserts it. The
    # session has drawn ids before (earlier runs), so an id taken too early would be one of
    # theirs; and a failure past the threshold reads and writes before the head lock.
    settings.CONNECTORS_FAIL_THRESHOLD = 2
    connector = make_connector("named")
    seen: dict[str, object] = {}

    def on_recorded(run) -> None:
        seen["pk while riding"] = run.pk
        # A read of the ORM's: the run's INSERT and its health row go first, so it sees them.
        seen["health"] = ConnectorHealth.objects.get(pk=connector.pk).last_run_id
        seen["pk after the read"] = run.pk

    first = record_a_test_run(connector)[0]
    failures = [record_a_test_run(connector, ok=False)[0] for _ in range(3)]
    health = ConnectorHealth.objects.get(pk=connector.pk)
    assert (health.last_run_id, health.consecutive_failures) == (failures[-1].pk, 3)
    passed = record_a_test_run(connector, on_recorded=on_recorded)[0]
    assert seen == {
        "pk while riding": round_trips.NEW_RUN_ID,  # a pass: nothing sent before the hook
        "health": passed.pk,
        "pk after the read": passed.pk,
    }
    assert len({run.pk for run in [first, *failures, passed]}) == 5
    health = ConnectorHealth.objects.get(pk=connector.pk)
    assert (health.last_run_id, health.consecutive_failures) == (passed.pk, 0)
    assert AuditEvent.objects.get(test_run_id=passed.pk).test_run_id == passed.pk
    assert list(chain_verify())[-1].ok


def test_a_run_that_never_got_written_keeps_no_stand_in_id(make_connector):
    connector = make_connector("unwritten")

    def refuse(run) -> None:
        raise RuntimeError("refused before anything was sent")

    run_before = TestRun.objects.count()
    job_ = job(connector, on_recorded=refuse)
    with pytest.raises(AuditWriteError):
        job_()
    assert TestRun.objects.count() == run_before


# --- a round trip's statements go as one pipeline, prepared after repeated use ---------------


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def test_a_round_trips_statements_are_prepared_once_run_often_enough(make_connector):
    connector = make_connector("prepared")
    raw = connection.connection
    assert raw.prepare_threshold == 5  # config.settings: DATABASE_PREPARE_THRESHOLD's default
    record_a_test_run(connector)
    assert not any("connectors_testrun" in s for s in prepared_statements())
    for _ in range(5):
        record_a_test_run(connector)
    prepared = prepared_statements()
    assert any(s.startswith('INSERT INTO "connectors_testrun"') for s in prepared), prepared
    assert any(s.startswith('INSERT INTO "audit_auditevent"') for s in prepared), prepared
    # Only the round trips' statements: the ORM's cursor binds its values on the client.
    assert not any("auth_user" in s or 'connectors_connector"' in s for s in prepared)
    assert list(chain_verify())[-1].ok


def test_with_prepared_statements_off_for_a_pooler_nothing_is_prepared(make_connector):
    connector = make_connector("unprepared")
    raw = connection.connection
    threshold = raw.prepare_threshold
    raw.prepare_threshold = None  # DATABASE_PREPARE_THRESHOLD=off
    try:
        runs = [record_a_test_run(connector)[0] for _ in range(7)]
        assert not any("connectors_testrun" in s for s in prepared_statements())
    finally:
        raw.prepare_threshold = threshold
    assert TestRun.objects.filter(pk__in=[run.pk for run in runs]).count() == 7
    assert list(chain_verify())[-1].ok


def test_without_pipelines_the_statements_go_as_one_text(make_connector, monkeypatch):
    # libpq before 14 has no pipeline mode: the same round trips, the values written in.
    monkeypatch.setattr(round_trips, "_pipelines", lambda db: False)
    connector = make_connector("one_text")
    with CaptureQueriesContext(connection) as queries:
        run, _ = record_a_test_run(connector)
    trips = writes(queries)
    assert len(trips) == 2, trips
    assert f"VALUES ({connector.pk}, 'one_text'" in trips[0]  # values in the text, as sent
    assert trips[1].endswith("; COMMIT")
    assert AuditEvent.objects.get(test_run_id=run.pk).hash == run.audit_event.hash
    assert ConnectorHealth.objects.get(pk=connector.pk).last_run_id == run.pk
    assert list(chain_verify())[-1].ok


def test_a_pipelined_trip_is_logged_as_its_statements_with_placeholders(make_connector):
    connector = make_connector("logged")
    with CaptureQueriesContext(connection) as queries:
        record_a_test_run(connector)
    trips = writes(queries)
    # Django's query log (DEBUG) shows what was sent: the statements, values bound apart.
    assert trips[0].startswith('BEGIN; INSERT INTO "connectors_testrun"'), trips
    assert "VALUES (%s, %s" in trips[0]
    assert "'logged'" not in trips[0]
