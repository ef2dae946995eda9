"""audit.pipeline: statements in one libpq pipeline, on the PostgreSQL the suite runs on."""

from __future__ import annotations

import datetime as dt

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
