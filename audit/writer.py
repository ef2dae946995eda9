"""Lean SQL for the hot path: a test run, its attempts and its audit record, and the chain head.

Recording a test is on every test's path, and with concurrent workers the chain-head lock is
held while its record is appended (issue 10: recording <= 1 ms on PostgreSQL). Through the ORM
that costs a statement's worth of Python per row; here each table gets one INSERT ... RETURNING
built once from the model's own fields, with values adapted by the fields themselves
(`get_db_prep_save`), so the database receives what the ORM would have sent. On PostgreSQL the
run and its attempts go in one statement.

Callers hold the transaction (`audit.services`, an atomic block). Within `own_transaction()`
the BEGIN and COMMIT of that block ride with the writer's first and last round trips;
otherwise nothing here opens a transaction or commits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent, TestAttempt, TestRun


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
    run_values = _values(db, run, _columns(TestRun))
    together = db.vendor == "postgresql" and bool(attempts)
    if not together:
        insert = _insert_sql(db.vendor, TestRun, ("id",))
        _saved(db, run, _with_riders(db, insert, run_values)[0][0])
        if not attempts:
            return
    own = _own_attempt_fields()
    params: list[Any] = list(run_values) if together else []
    for attempt in attempts:
        params += ([] if together else [run.pk]) + _values(db, attempt, own)
    rows = _with_riders(db, _attempts_sql(db.vendor, len(attempts)), params)
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


def _batches(db: BaseDatabaseWrapper) -> bool:
    """Whether several statements may go in one round trip: psycopg 3's client-side binding
    cursor (Django's default on PostgreSQL) sends them with the simple query protocol, each
    statement its own command, so triggers see what the statements before them wrote."""
    if db.vendor != "postgresql":
        return False
    try:
        import psycopg
    except ImportError:  # psycopg2: one statement per round trip
        return False
    return issubclass(getattr(db.connection, "cursor_factory", type), psycopg.ClientCursor)


def several_statements_per_trip(db: BaseDatabaseWrapper) -> bool:
    """Whether statements joined by "; " may be sent in one round trip (see _batches)."""
    return _batches(db)


def _head_sql(db: BaseDatabaseWrapper) -> str:
    return HEAD_SQL + (" FOR UPDATE" if db.features.has_select_for_update else "")


def _head(rows: list[tuple[Any, ...]]) -> tuple[int | None, str] | None:
    return (rows[0][0], rows[0][1]) if rows else None


# --- Statements that ride with the recording's round trips (PostgreSQL) ----------------------
#
# What goes with a run but not to the chain (its connector's health row, a notice's claim, its
# batch item) used to cost a round trip each, between the run's INSERT and the chain-head lock.
# Inside `riders()` (a recording's transaction) those statements wait and travel with the
# recording's next statement of its own: the head lock (in a transaction of its own, behind the
# run's INSERT, which rides too: insert_run_riding), or in a group the next run's INSERT, in the
# order they were made. Each one's row count is handed to its `then`, in order, once the round
# trip is back; one that raises (a batch item whose claim was lost) fails the recording as it
# did when the statement ran at once, so a COMMIT never rides with a rider that has a `then`. A
# statement that must see what they wrote (any `flush_riders()` caller) sends them first.
# Elsewhere (no recording open, or a database that takes one statement per round trip) `ride`
# runs the statement at once.


@dataclass(frozen=True)
class _Rider:
    sql: str
    params: tuple[Any, ...]
    then: Callable[[int], Any] | None
    rows: Callable[[list[tuple[Any, ...]]], Any] | None = None  # what RETURNING gave back


class _NewRunId:
    """Stands for the id of the run whose INSERT rides ahead of it (own_transaction)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<the new run's id>"


# A value that a rider may hold for the run's id before the run's INSERT is back: the statement
# gets the id from the INSERT before it, in the same round trip (PostgreSQL's currval: this
# session's last value of the sequence, which that INSERT has just drawn).
NEW_RUN_ID: Any = _NewRunId()


@functools.cache
def _new_run_id_sql() -> str:
    return f"currval(pg_get_serial_sequence('{TestRun._meta.db_table}', 'id'))"


def _bind_new_run_id(rider: _Rider) -> tuple[str, Sequence[Any]]:
    """The rider's statement and values, NEW_RUN_ID in the text, not among the values."""
    if not any(value is NEW_RUN_ID for value in rider.params):
        return rider.sql, rider.params
    # Our statements' only "%s" are their placeholders (identifiers come from models).
    pieces = rider.sql.split("%s")
    assert len(pieces) == len(rider.params) + 1, rider.sql
    text, values = [pieces[0]], []
    for value, piece in zip(rider.params, pieces[1:], strict=True):
        if value is NEW_RUN_ID:
            text.append(_new_run_id_sql())
        else:
            text.append("%s")
            values.append(value)
        text.append(piece)
    return "".join(text), values


_RIDERS: ContextVar[list[_Rider] | None] = ContextVar("audit_riders", default=None)


@contextmanager
def riders() -> Iterator[None]:
    """Within: statements passed to `ride` travel with the recording's next round trip."""
    token = _RIDERS.set([] if _batches(_db()) else None)
    try:
        yield
    finally:
        _RIDERS.reset(token)


def ride(sql: str, params: Sequence[Any], then: Callable[[int], Any] | None = None) -> None:
    """Run a statement of the recording's transaction, now or with its next round trip; then
    `then(row count)`, before the transaction commits (`then` may refuse the recording)."""
    waiting = _RIDERS.get()
    if waiting is None:
        db = _db()
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            count = int(cursor.rowcount)
        if then is not None:
            then(count)
        return
    waiting.append(_Rider(sql, tuple(params), then))


def flush_riders() -> None:
    """Send the waiting statements now (for a statement that must see what they write)."""
    if _RIDERS.get():
        _trip(_db(), [], [])


def _with_riders(db: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> list[tuple]:
    """Run the waiting statements and then `sql` in one round trip; `sql`'s rows."""
    if not _batches(db):  # nothing waits there: riders run at once (riders())
        return _fetch(db, sql, list(params))
    return _trip(db, [sql], params)[0]


def _trip(
    db: BaseDatabaseWrapper,
    statements: Sequence[str],
    params: Sequence[Any],
    *,
    setting: str = "",
    commit: bool = False,
) -> list[list[tuple[Any, ...]]]:
    """One round trip (PostgreSQL): BEGIN when this is the first of a transaction of our own
    (own_transaction), the waiting riders, `setting` (a SET LOCAL), `statements`, and COMMIT
    when asked for and allowed; the rows of each of `statements`, then the riders' `then`."""
    sent = _take_riders()
    if not sent and not statements:
        return []
    begin = _begin(db)
    commit = commit and _may_commit(db, sent)
    bound = [_bind_new_run_id(rider) for rider in sent]
    leading = [*begin, *(sql for sql, _ in bound), *([setting] if setting else [])]
    texts = [*leading, *statements, *(["COMMIT"] if commit else [])]
    values = [*(value for _, values in bound for value in values), *params]
    results = _execute(db, "; ".join(texts), values, len(leading) + len(statements))
    if commit:
        _committed(db)
    ridden = results[len(begin) : len(begin) + len(sent)]
    for rider, (count, rows) in zip(sent, ridden, strict=True):
        if rider.rows is not None:
            rider.rows(rows)
        if rider.then is not None:
            rider.then(count)
    return [rows for _, rows in results[len(leading) :]]


def _take_riders() -> list[_Rider]:
    waiting = _RIDERS.get()
    if not waiting:
        return []
    sent = list(waiting)
    waiting.clear()
    return sent


def _execute(
    db: BaseDatabaseWrapper, sql: str, values: Sequence[Any], results: int
) -> list[tuple[int, list[tuple[Any, ...]]]]:
    """Run several statements in one round trip; the first `results` ones' (row count, rows)."""
    found: list[tuple[int, list[tuple[Any, ...]]]] = []
    with db.cursor() as cursor:
        cursor.execute(sql, values)
        for position in range(results):
            if position:
                cursor.nextset()
            rows = list(cursor.fetchall()) if cursor.description else []
            found.append((int(cursor.rowcount), rows))
    return found


# --- A recording's own transaction (PostgreSQL): BEGIN and COMMIT ride too -------------------
#
# A test recorded outside any transaction (connector_test's usual case) opens one of its own,
# an atomic block. Through it psycopg sends BEGIN as a round trip of its own before the first
# statement, and COMMIT as another at the end: two of a recording's round trips. Within
# `own_transaction()`, entered first thing in that block, the first round trip the writer makes
# carries BEGIN (psycopg is set to send none of its own: the connection is idle, so it may be),
# and the record's append carries COMMIT when nothing else is left to write. The run's INSERT
# rides in the first, ahead of the rows that go with the run (which name it by currval:
# NEW_RUN_ID) and the head lock, so a recording is two round trips and the lock is held for the
# second alone. The atomic block
# still stands for the transaction: on_commit hooks run when it ends, and an error rolls back
# as before (psycopg's rollback() sends ROLLBACK whenever a transaction is open, and its
# commit() sends nothing once ours has committed; Django puts autocommit back as it leaves).


@dataclass
class _Own:
    block: object  # the atomic block that stands for the transaction
    begun: bool = False
    committed: bool = False


_OWN: ContextVar[_Own | None] = ContextVar("audit_own_transaction", default=None)


@contextmanager
def own_transaction(alone: bool) -> Iterator[bool]:
    """Entered first thing in an outermost atomic block (`alone`: the caller opened none before
    it): the writer's first round trip carries BEGIN and a final append may carry COMMIT.

    Yields whether it does: only on PostgreSQL with psycopg 3, for a plain BEGIN (a configured
    isolation level or read-only mode is the driver's to send), before any statement was sent.
    """
    db = _db()
    block = _transaction(db)
    raw = db.connection
    if not (alone and _batches(db) and block is not None and len(db.atomic_blocks) == 1):
        yield False
        return
    import psycopg

    plain = raw.isolation_level is None and raw.read_only is None and raw.deferrable is None
    if not plain or raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        yield False
        return
    token = _OWN.set(_Own(block))
    try:
        yield True
    finally:
        _OWN.reset(token)


def _ours(db: BaseDatabaseWrapper) -> _Own | None:
    own = _OWN.get()
    if own is None or own.block is not _transaction(db):
        return None
    if own.committed:  # nothing may follow a COMMIT that rode: it would run outside
        raise RuntimeError("this transaction has committed; nothing more can be written in it")
    return own


def _begin(db: BaseDatabaseWrapper) -> list[str]:
    """["BEGIN"] when this round trip opens our own transaction (psycopg then sends none)."""
    own = _ours(db)
    if own is None or own.begun:
        return []
    own.begun = True
    import psycopg

    raw = db.connection
    if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return []  # a statement went first, and psycopg opened the transaction then
    raw.autocommit = True
    return ["BEGIN"]


def _may_commit(db: BaseDatabaseWrapper, sent: Sequence[_Rider]) -> bool:
    """Whether COMMIT may ride now: our own transaction, begun, nothing to roll back, no
    savepoint open, and no rider whose `then` could still refuse the recording."""
    own = _ours(db)
    return (
        own is not None
        and own.begun
        and not db.needs_rollback
        and not db.savepoint_ids
        and not any(rider.then is not None for rider in sent)
    )


def _committed(db: BaseDatabaseWrapper) -> None:
    own = _ours(db)
    assert own is not None
    own.committed = True


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
    if not _batches(db):
        insert_run(run, attempts)
        return _head(_fetch(db, _head_sql(db), []))
    insert, params = _run_insert(db, run, attempts)
    rows, head = _trip(db, [insert, _head_sql(db)], params)
    _run_inserted(db, run, attempts, rows)
    return _head(head)


def _run_insert(
    db: BaseDatabaseWrapper, run: TestRun, attempts: Sequence[TestAttempt]
) -> tuple[str, list[Any]]:
    """The one statement that inserts a run and its attempts (PostgreSQL), and its values."""
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

    waiting = _RIDERS.get()
    assert waiting is not None and not waiting, "the run's INSERT goes first"
    waiting.append(_Rider(insert, tuple(params), None, inserted))
    run.pk = NEW_RUN_ID


@contextmanager
def riders_before_every_statement() -> Iterator[None]:
    """Within: any statement (the ORM's too) sends the waiting riders first, so that it sees
    the run they insert (for code that goes with a run but does not ride, e.g. a read)."""
    db = _db()

    def flush_first(execute: Callable[..., Any], *args: Any) -> Any:
        flush_riders()  # the riders' own round trip comes through here with none waiting
        return execute(*args)

    with db.execute_wrapper(flush_first):
        yield


def lock_head() -> tuple[int | None, str] | None:
    """Lock the chain head and return (last id, hash); None when the row is missing.

    The statements waiting to ride (see riders()) go first, in the same round trip.
    """
    db = _db()
    return _head(_with_riders(db, _head_sql(db), []))


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


def _transaction(db: BaseDatabaseWrapper) -> object | None:
    """The outermost atomic block: it stands for the transaction while it is open."""
    return db.atomic_blocks[0] if db.in_atomic_block and db.atomic_blocks else None


def _relax_commit(db: BaseDatabaseWrapper) -> str:
    """RELAXED_COMMIT_SQL when this transaction may commit without waiting, or ""."""
    if db.vendor != "postgresql" or settings.AUDIT_DURABLE_TEST_RUNS:
        return ""
    current = _transaction(db)
    if current is None or getattr(db, "_audit_durable_transaction", None) is current:
        return ""
    db._audit_relaxed_transaction = current  # type: ignore[attr-defined]
    return RELAXED_COMMIT_SQL


def insist_on_durable_commit() -> None:
    """The current transaction appends a record that is not a test run's: it commits durably."""
    db = _db()
    current = _transaction(db)
    if current is None:
        return
    db._audit_durable_transaction = current  # type: ignore[attr-defined]
    if getattr(db, "_audit_relaxed_transaction", None) is current:
        with db.cursor() as cursor:
            cursor.execute(DURABLE_COMMIT_SQL)


def append_event(event: AuditEvent, *, last: bool = False) -> None:
    """Insert a test run's (signed) record and move the chain head to it, in one round trip on
    PostgreSQL, where the transaction then commits without waiting for the disk (see above).

    With `last` (nothing more is written in this transaction), a transaction of our own
    commits in the same round trip (own_transaction).
    """
    db = _db()
    insert = _insert_sql(db.vendor, AuditEvent, ("id",))
    values = _values(db, event, _columns(AuditEvent))
    moved_at = AuditChainHead._meta.get_field("updated_at").get_db_prep_save(
        timezone.now(), connection=db
    )
    if not _batches(db):
        _saved(db, event, _fetch(db, insert, values)[0][0])
        _fetch(db, MOVE_HEAD_SQL.format(event_id="%s"), [event.pk, event.hash, moved_at])
        return
    rows, _ = _trip(
        db,
        [insert, MOVE_HEAD_SQL.format(event_id=CURRENT_EVENT_ID)],
        [*values, event.hash, moved_at],
        setting=_relax_commit(db),
        commit=last,
    )
    _saved(db, event, rows[0][0])


def append_events(events: Sequence[AuditEvent]) -> None:
    """Insert test runs' (signed) records in chain order and move the head to the last.

    On PostgreSQL all in one round trip: one INSERT per record, in order, so their ids ascend
    in chain order (as the verifier reads them), then the head's UPDATE; the transaction then
    commits as append_event's does.
    """
    db = _db()
    if not _batches(db) or not events:
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
    params: list[Any] = []
    for event in events:
        params += _values(db, event, _columns(AuditEvent))
    statements = [insert] * len(events) + [MOVE_HEAD_SQL.format(event_id=CURRENT_EVENT_ID)]
    rows = _trip(db, statements, [*params, events[-1].hash, moved_at], setting=_relax_commit(db))
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
