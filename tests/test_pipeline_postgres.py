"""audit.pipeline: statements in one libpq pipeline, on the PostgreSQL the suite runs on."""

from __future__ import annotations

import datetime as dt
import time

import psycopg
import pytest
from django.db import connection

from audit import pipeline
from tests.test_audit_support import postgres_only

pytestmark = [pytest.mark.postgres, postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def raw():
    connection.ensure_connection()
    raw = connection.connection
    raw.execute("CREATE TEMPORARY TABLE piped (id serial PRIMARY KEY, note text UNIQUE)")
    raw.commit()
    threshold = raw.prepare_threshold
    yield raw
    if raw.closed:  # a test that lost it: Django's wrapper opens another
        return
    raw.prepare_threshold = threshold  # the connection serves the tests after this one
    raw.rollback()
    raw.execute("DROP TABLE IF EXISTS piped")
    raw.commit()


def prepared(raw) -> list[str]:
    return [row[0] for row in raw.execute("SELECT statement FROM pg_prepared_statements")]


def test_each_statement_gives_its_row_count_and_rows_in_order(raw):
    results = pipeline.run(
        raw,
        [
            ("INSERT INTO piped (note) VALUES (%s), (%s) RETURNING id, note", ["a", "b"]),
            ("UPDATE piped SET note = note || %s WHERE note = %s", ["!", "a"]),
            ("SELECT note, now() FROM piped ORDER BY id", []),
        ],
    )
    assert [count for count, _ in results] == [2, 1, 2]
    assert [note for _, note in results[0][1]] == ["a", "b"]
    (first, at), (second, _) = results[2][1]
    assert (first, second) == ("a!", "b")
    assert isinstance(at, dt.datetime) and at.tzinfo is not None  # the connection's loaders
    assert raw.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF


def test_an_error_skips_what_follows_and_raises_psycopgs_error_for_it(raw):
    raw.execute("BEGIN")
    with pytest.raises(psycopg.errors.UniqueViolation):
        pipeline.run(
            raw,
            [
                ("INSERT INTO piped (note) VALUES (%s)", ["same"]),
                ("INSERT INTO piped (note) VALUES (%s)", ["same"]),
                ("INSERT INTO piped (note) VALUES (%s)", ["after"]),
            ],
        )
    assert raw.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF
    assert raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    raw.rollback()
    assert raw.execute("SELECT count(*) FROM piped").fetchone() == (0,)


def test_a_statement_is_prepared_once_it_has_run_threshold_times(raw):
    raw.prepare_threshold = 2
    statement = ("SELECT note FROM piped WHERE note = %s", ["x"])
    for runs in range(1, 6):
        pipeline.run(raw, [statement])
        mine = [s for s in prepared(raw) if s.startswith("SELECT note FROM piped")]
        # The third run prepares it; later runs use that one.
        assert len(mine) == (1 if runs >= 3 else 0), runs
    assert mine == ["SELECT note FROM piped WHERE note = $1"]


def test_nothing_is_prepared_with_the_threshold_off(raw):
    raw.prepare_threshold = None
    for _ in range(8):
        pipeline.run(raw, [("SELECT note FROM piped WHERE id = %s", [1])])
    assert not any(s.startswith("SELECT note FROM piped") for s in prepared(raw))


def test_a_parse_that_failed_is_not_taken_for_prepared(raw):
    raw.prepare_threshold = 0
    with pytest.raises(psycopg.errors.UndefinedColumn):
        pipeline.run(raw, [("SELECT missing FROM piped WHERE id = %s", [1])])
    raw.rollback()
    raw.execute("ALTER TABLE piped ADD COLUMN missing int")
    raw.commit()
    # Had its failed Parse been counted as prepared, this would name a statement that is not.
    assert pipeline.run(raw, [("SELECT missing FROM piped WHERE id = %s", [1])]) == [(0, [])]


def test_a_connection_stops_preparing_new_statements_past_the_cap(raw, monkeypatch):
    raw.prepare_threshold = 0
    pipeline.run(raw, [("SELECT 0 FROM piped WHERE id = %s", [1])])  # the connection's first
    monkeypatch.setattr(pipeline, "MAX_PREPARED", len(pipeline._PREPARED[raw].names) + 1)
    pipeline.run(raw, [("SELECT 1 FROM piped WHERE id = %s", [1])])
    pipeline.run(raw, [("SELECT 2 FROM piped WHERE id = %s", [1])])  # past the cap: as is
    assert pipeline.run(raw, [("SELECT 2 FROM piped WHERE id = %s", [1])]) == [(0, [])]
    mine = sorted(s for s in prepared(raw) if "FROM piped WHERE id" in s)
    assert mine == ["SELECT 0 FROM piped WHERE id = $1", "SELECT 1 FROM piped WHERE id = $1"]


def test_outside_a_transaction_with_autocommit_off_it_opens_one_as_psycopg_would(raw):
    raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    raw.autocommit = False  # as Django's connection is within an atomic block
    try:
        assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        pipeline.run(raw, [("INSERT INTO piped (note) VALUES (%s)", ["kept?"])])
        assert raw.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert raw.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
        raw.rollback()  # so it was in that transaction, not committed on its own
    finally:
        raw.isolation_level = None
        raw.autocommit = True
    assert raw.execute("SELECT count(*) FROM piped").fetchone() == (0,)


def test_with_autocommit_on_each_round_trip_is_its_own(raw):
    assert raw.autocommit  # Django's connection outside an atomic block
    pipeline.run(raw, [("INSERT INTO piped (note) VALUES (%s)", ["alone"])])
    assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert raw.execute("SELECT note FROM piped").fetchall() == [("alone",)]


def test_a_value_that_cannot_be_adapted_sends_nothing(raw):
    with pytest.raises(psycopg.ProgrammingError):
        pipeline.run(
            raw,
            [
                ("INSERT INTO piped (note) VALUES (%s)", ["first"]),
                ("INSERT INTO piped (note) VALUES (%s)", [object()]),
            ],
        )
    assert raw.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF
    assert raw.execute("SELECT count(*) FROM piped").fetchone() == (0,)  # autocommit: none ran


def test_a_connection_lost_mid_pipeline_is_closed_not_left_half_read(raw):
    pid = raw.info.backend_pid
    with psycopg.connect(raw.info.dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    with pytest.raises(psycopg.OperationalError):
        pipeline.run(raw, [("SELECT note FROM piped WHERE id = %s", [1])])
    assert raw.closed
    connection.close()  # Django's wrapper opens a new one for the next test


@pytest.fixture
def shared(raw):
    """A table other sessions see (a temporary one is its session's alone), with one row."""
    raw.execute("CREATE TABLE piped_shared (id serial PRIMARY KEY, note text UNIQUE)")
    raw.execute("INSERT INTO piped_shared (note) VALUES ('locked later')")
    raw.commit()
    yield "piped_shared"
    raw.rollback()
    raw.execute("DROP TABLE piped_shared")
    raw.commit()


def locks_on(other, pid: int, table: str) -> int:
    query = (
        "SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'relation' "
        "AND relation = %s::regclass"
    )
    return other.execute(query, [pid, table]).fetchone()[0]


def test_meanwhile_runs_once_the_statements_ahead_are_sent_and_before_the_rest(raw, shared):
    pid = raw.info.backend_pid
    seen: list[tuple[int, bool]] = []
    raw.autocommit = False  # the pipeline opens the transaction; the row lock lasts to its end
    with psycopg.connect(raw.info.dsn, autocommit=True) as other:

        def free() -> bool:
            try:
                other.execute(
                    "SELECT id FROM piped_shared WHERE note = 'locked later' FOR UPDATE NOWAIT"
                )
            except psycopg.errors.LockNotAvailable:
                return False
            return True

        def meanwhile() -> None:
            # The INSERT ahead reached the server, and holds its table lock (polled: it was
            # only just flushed); the row lock of the statement after it is not taken yet.
            for _ in range(500):
                if locks_on(other, pid, shared):
                    break
                time.sleep(0.01)
            seen.append((locks_on(other, pid, shared), free()))

        results = pipeline.run(
            raw,
            [
                ("INSERT INTO piped_shared (note) VALUES (%s) RETURNING note", ["ahead"]),
                ("SELECT note FROM piped_shared WHERE note = %s FOR UPDATE", ["locked later"]),
            ],
            meanwhile=meanwhile,
            ahead=1,
        )
        assert seen == [(1, True)]
        assert [rows for _, rows in results] == [[("ahead",)], [("locked later",)]]
        assert not free()  # taken now, by the pipeline's transaction
        raw.rollback()
        assert free()
    raw.autocommit = True


def fail() -> None:
    raise RuntimeError("the record could not be made")


def test_a_fault_in_meanwhile_outside_a_transaction_commits_nothing(raw):
    with pytest.raises(RuntimeError):
        pipeline.run(
            raw,
            [
                ("INSERT INTO piped (note) VALUES (%s)", ["ahead"]),
                ("INSERT INTO piped (note) VALUES (%s)", ["never sent"]),
            ],
            meanwhile=fail,
            ahead=1,
        )
    assert not raw.closed
    assert raw.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF
    assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    # Without a transaction the Sync would have committed the INSERT ahead: it was rolled back.
    assert raw.execute("SELECT count(*) FROM piped").fetchone() == (0,)


@pytest.mark.parametrize("opened_by", ["its owner", "a BEGIN ahead"])
def test_a_fault_in_meanwhile_in_a_transaction_leaves_it_to_be_rolled_back(raw, opened_by):
    ahead = [("INSERT INTO piped (note) VALUES (%s)", ["ahead"])]
    if opened_by == "its owner":
        raw.autocommit = False
        raw.execute("SELECT 1")  # psycopg opens the transaction
    else:
        ahead.insert(0, ("BEGIN", []))  # as audit.round_trips opens a transaction of its own
    with pytest.raises(RuntimeError):
        pipeline.run(
            raw,
            [*ahead, ("INSERT INTO piped (note) VALUES (%s)", ["never sent"])],
            meanwhile=fail,
            ahead=len(ahead),
        )
    assert not raw.closed
    assert raw.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF
    if opened_by == "its owner":  # left open, with what went ahead, for its owner to roll back
        assert raw.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert raw.execute("SELECT note FROM piped").fetchall() == [("ahead",)]
        raw.rollback()
        raw.autocommit = True
    else:  # no transaction was open when the round trip began: nothing is left of it
        assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert raw.execute("SELECT count(*) FROM piped").fetchone() == (0,)
