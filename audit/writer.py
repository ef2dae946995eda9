"""Lean SQL for the hot path: a test run, its attempts and its audit record, and the chain head.

Recording a test is on every test's path, and with concurrent workers the chain-head lock is
held while its record is appended (issue 10: recording <= 1 ms on PostgreSQL). Through the ORM
that costs a statement's worth of Python per row; here each table gets one INSERT ... RETURNING
built once from the model's own fields, with values adapted by the fields themselves
(`get_db_prep_save`), so the database receives what the ORM would have sent. On PostgreSQL the
run and its attempts go in one statement.

Callers hold the transaction (`audit.services`, an atomic block). Within
`audit.round_trips.own_transaction()` the BEGIN and COMMIT of that block ride with the
writer's first and last round trips; otherwise nothing here opens a transaction or commits.
Statements travel together through `audit.round_trips` (riders, `trip`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent, TestAttempt, TestRun
from audit.round_trips import (
    NEW_RUN_ID,
    ride_first,
    several_statements_per_trip,
    transaction_block,
    trip,
    with_riders,
)


def _db() -> BaseDatabaseWrapper:
    # The wrapper itself, once per call: the `connection` proxy costs a lookup per attribute.
    return connections[DEFAULT_DB_ALIAS]


@functools.cache
def _columns(model: type[models.Model]) -> tuple[models.Field, ...]:
    return tuple(f for f in model._meta.concrete_fields if not f.primary_key)


def _values(db: BaseDatabaseWrapper, obj: models.Model, fields: Sequence[models.Field]) -> list:
    return [f.get_db_prep_save(getattr(obj, f.attname), connection=db) for f in fields]


def _saved(db: BaseDatabaseWrapper, obj: models.Model, pk: int) -> None:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = db.alias


@functools.cache
def _insert_sql(vendor: str, model: type[models.Model], returning: tuple[str, ...]) -> str:
    """INSERT of one row of every non-key column, RETURNING the given columns."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    fields = _columns(model)
    # Identifiers come from the model's own metadata; every value is a query parameter.
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({placeholders}) RETURNING {', '.join(map(quote, returning))}"
    )


@functools.cache
def _attempts_sql(vendor: str, count: int) -> str:
    """INSERT of `count` attempts; on PostgreSQL after the run's INSERT, in one statement."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    run_column = TestAttempt._meta.get_field("run").column
    own = [f for f in _columns(TestAttempt) if f.column != run_column]
    together = vendor == "postgresql"
    run_ref = "(SELECT id FROM new_run)" if together else "%s"
    row = f"({run_ref}, {', '.join(['%s'] * len(own))})"
    columns = ", ".join(quote(c) for c in (run_column, *(f.column for f in own)))
    table = quote(TestAttempt._meta.db_table)
    returning = f"RETURNING id, {quote('position')}, {quote(run_column)}"
    sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * count)} {returning}"  # noqa: S608
    if together:
        sql = f"WITH new_run AS ({_insert_sql(vendor, TestRun, ('id',))}) {sql}"
    return sql


@functools.cache
def _own_attempt_fields() -> tuple[models.Field, ...]:
    run_column = TestAttempt._meta.get_field("run").column
    return tuple(f for f in _columns(TestAttempt) if f.column != run_column)


def lean_writes_supported() -> bool:
    """INSERT ... RETURNING of several rows (PostgreSQL, SQLite 3.35+); else the ORM writes."""
    return bool(_db().features.can_return_rows_from_bulk_insert)


def insert_run(run: TestRun, attempts: Sequence[TestAttempt]) -> None:
    """Insert the run and its attempts; set their ids (and each attempt's run).

    Statements waiting to ride (in a group, the previous run's) go first, in the same trip.
    """
    db = _db()
    if db.vendor == "postgresql":  # the run and its attempts in one statement
        insert, params = _run_insert(db, run, attempts)
        _run_inserted(db, run, attempts, with_riders(db, insert, params))
        return
    insert = _insert_sql(db.vendor, TestRun, ("id",))
    _saved(db, run, with_riders(db, insert, _values(db, run, _columns(TestRun)))[0][0])
    if not attempts:
        return
    own = _own_attempt_fields()
    params = []
    for attempt in attempts:
        params += [run.pk, *_values(db, attempt, own)]
    rows = with_riders(db, _attempts_sql(db.vendor, len(attempts)), params)
    _attach(db, run, attempts, rows)


def _attach(
    db: BaseDatabaseWrapper,
    run: TestRun,
    attempts: Sequence[TestAttempt],
    rows: list[tuple[Any, ...]],
) -> None:
    """Set the ids the attempts' INSERT returned (id, position, run id), and the run's."""
    if run.pk is None:
        _saved(db, run, rows[0][2])
    by_position = {position: attempt_id for attempt_id, position, _ in rows}
    for attempt in attempts:
        attempt.run = run
        _saved(db, attempt, by_position[attempt.position])


HEAD_SQL = "SELECT last_event_id, last_hash FROM audit_auditchainhead WHERE id = 1"
MOVE_HEAD_SQL = (
    "UPDATE audit_auditchainhead SET last_event_id = {event_id}, last_hash = %s, "
    "updated_at = %s WHERE id = 1"
)
# The id the INSERT just before it drew, in the same session (no other writer can change it).
CURRENT_EVENT_ID = "currval(pg_get_serial_sequence('audit_auditevent', 'id'))"


def _head_sql(db: BaseDatabaseWrapper) -> str:
    return HEAD_SQL + (" FOR UPDATE" if db.features.has_select_for_update else "")


def _head(rows: list[tuple[Any, ...]]) -> tuple[int | None, str] | None:
    return (rows[0][0], rows[0][1]) if rows else None


_BEFORE_HEAD_LOCK: ContextVar[Callable[[Any], Any] | None] = ContextVar(
    "audit_before_head_lock", default=None
)


@contextmanager
def before_head_lock(hook: Callable[[Any], Any] | None) -> Iterator[None]:
    """Within: insert_run_and_lock_head calls hook(run) after the inserts, before the lock."""
    token = _BEFORE_HEAD_LOCK.set(hook)
    try:
        yield
    finally:
        _BEFORE_HEAD_LOCK.reset(token)


def insert_run_and_lock_head(
    run: TestRun, attempts: Sequence[TestAttempt]
) -> tuple[int | None, str] | None:
    """Insert the run and its attempts, then lock the chain head and return (last id, hash).

    None when the head row is missing (the caller creates it). On PostgreSQL the inserts and
    the lock travel in one round trip (with BEGIN, in a transaction of our own); the lock comes
    last, so it waits for no insert. On SQLite the transaction already holds the database's
    write lock (IMMEDIATE mode).
    """
    db = _db()
    hook = _BEFORE_HEAD_LOCK.get()
    if hook is not None:
        # Rows that go with the run but not to the chain: written before the lock is taken.
        insert_run(run, attempts)
        hook(run)
        return lock_head()
    if not several_statements_per_trip(db):
        insert_run(run, attempts)
        return _head(_fetch(db, _head_sql(db), []))
    rows, head = trip(db, [_run_insert(db, run, attempts), (_head_sql(db), ())])
    _run_inserted(db, run, attempts, rows)
    return _head(head)


def _run_insert(
    db: BaseDatabaseWrapper, run: TestRun, attempts: Sequence[TestAttempt]
) -> tuple[str, list[Any]]:
    """The one statement that inserts a run and its attempts (PostgreSQL: _attempts_sql puts
    the run's INSERT in front), and its values."""
    params: list[Any] = _values(db, run, _columns(TestRun))
    if not attempts:
        return _insert_sql(db.vendor, TestRun, ("id",)), params
    own = _own_attempt_fields()
    for attempt in attempts:
        params += _values(db, attempt, own)
    return _attempts_sql(db.vendor, len(attempts)), params


def _run_inserted(
    db: BaseDatabaseWrapper,
    run: TestRun,
    attempts: Sequence[TestAttempt],
    rows: list[tuple[Any, ...]],
) -> None:
    """Set the ids _run_insert's statement gave back."""
    if attempts:
        _attach(db, run, attempts, rows)
    else:
        _saved(db, run, rows[0][0])


def insert_run_riding(run: TestRun, attempts: Sequence[TestAttempt]) -> None:
    """In a transaction of our own: the run's and attempts' INSERT rides ahead of everything
    else (see own_transaction), and until it is back the run's id reads NEW_RUN_ID."""
    db = _db()
    insert, params = _run_insert(db, run, attempts)

    def inserted(rows: list[tuple[Any, ...]]) -> None:
        run.pk = None
        _run_inserted(db, run, attempts, rows)

    ride_first(insert, params, inserted)
    run.pk = NEW_RUN_ID


def lock_head(*, meanwhile: Callable[[], object] | None = None) -> tuple[int | None, str] | None:
    """Lock the chain head and return (last id, hash); None when the row is missing.

    The statements waiting to ride (see riders()) go first, in the same round trip;
    `meanwhile()` runs while the server writes them, before the lock is asked for.
    """
    db = _db()
    return _head(with_riders(db, _head_sql(db), [], meanwhile=meanwhile))


# --- How a test run's transaction commits (PostgreSQL) ---------------------------------------
#
# A durable commit waits for the disk to confirm the WAL flush (1.4 ms on this machine when
# idle, 3-7 ms under load): longer than all the rest of a recording. A transaction that records
# only test runs (their rows, health, batch item and audit records) may instead commit with
# synchronous_commit off: PostgreSQL returns once the commit is in the WAL buffers and the WAL
# writer flushes it within 3 x wal_writer_delay (0.6 s by default). A crash of the database
# server (not of the console) can then lose the test runs of those last moments, as if their
# transactions had rolled back; never part of one, and never a record in the middle of the
# chain: WAL is replayed in order and any durable commit flushes everything before it, so the
# chain after a crash is a shorter chain that verifies. Changes, refusals and every other record
# are not test runs: a transaction that appends one (`insist_on_durable_commit`, called by every
# other append) commits durably, whatever it recorded before. AUDIT_DURABLE_TEST_RUNS=1 makes
# test runs wait for the disk too.
RELAXED_COMMIT_SQL = "SET LOCAL synchronous_commit TO off"
DURABLE_COMMIT_SQL = "SET LOCAL synchronous_commit TO on"


def _relax_commit(db: BaseDatabaseWrapper) -> str:
    """RELAXED_COMMIT_SQL when this transaction may commit without waiting, or ""."""
    if db.vendor != "postgresql" or settings.AUDIT_DURABLE_TEST_RUNS:
        return ""
    current = transaction_block(db)
    if current is None or getattr(db, "_audit_durable_transaction", None) is current:
        return ""
    db._audit_relaxed_transaction = current  # type: ignore[attr-defined]
    return RELAXED_COMMIT_SQL


def insist_on_durable_commit() -> None:
    """The current transaction appends a record that is not a test run's: it commits durably."""
    db = _db()
    current = transaction_block(db)
    if current is None:
        return
    db._audit_durable_transaction = current  # type: ignore[attr-defined]
    if getattr(db, "_audit_relaxed_transaction", None) is current:
        with db.cursor() as cursor:
            cursor.execute(DURABLE_COMMIT_SQL)


def append_event(event: AuditEvent, *, last: bool = False) -> None:
    """Insert a test run's (signed) record and move the chain head to it (append_events)."""
    append_events([event], last=last)


def append_events(events: Sequence[AuditEvent], *, last: bool = False) -> None:
    """Insert test runs' (signed) records in chain order and move the head to the last.

    On PostgreSQL all in one round trip: one INSERT per record, in order, so their ids ascend
    in chain order (as the verifier reads them), then the head's UPDATE; the transaction then
    commits without waiting for the disk (see above). With `last` (nothing more is written in
    this transaction), a transaction of our own commits in the same round trip
    (audit.round_trips.own_transaction).
    """
    db = _db()
    if not several_statements_per_trip(db) or not events:
        for event in events:
            insert = _insert_sql(db.vendor, AuditEvent, ("id",))
            _saved(db, event, _fetch(db, insert, _values(db, event, _columns(AuditEvent)))[0][0])
        if events:
            move_head(events[-1].pk, events[-1].hash)
        return
    insert = _insert_sql(db.vendor, AuditEvent, ("id",))
    moved_at = AuditChainHead._meta.get_field("updated_at").get_db_prep_save(
        timezone.now(), connection=db
    )
    move = MOVE_HEAD_SQL.format(event_id=CURRENT_EVENT_ID)
    statements = [(insert, _values(db, event, _columns(AuditEvent))) for event in events]
    statements.append((move, [events[-1].hash, moved_at]))
    rows = trip(db, statements, setting=_relax_commit(db), commit=last)
    for event, inserted in zip(events, rows, strict=False):
        _saved(db, event, inserted[0][0])


def move_head(event_id: int, event_hash: str) -> None:
    db = _db()
    moved_at = AuditChainHead._meta.get_field("updated_at").get_db_prep_save(
        timezone.now(), connection=db
    )
    _fetch(db, MOVE_HEAD_SQL.format(event_id="%s"), [event_id, event_hash, moved_at])


def _fetch(db: BaseDatabaseWrapper, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
