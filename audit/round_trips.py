"""Statements that share a round trip on PostgreSQL: riders, and a transaction of our own.

A recording's statements cost a round trip each to the database (about 0.13 ms here, more
under load) while the recording as a whole has a budget of about one millisecond (issue 10).
Two mechanisms put them together, for audit.writer and the lean SQL of the connectors app:
- riders: statements that go with a run but not to the audit chain wait and travel with the
  recording's next statement of its own;
- own_transaction: a recording that opens its own transaction sends BEGIN with its first
  round trip and COMMIT with its last.
Elsewhere (SQLite, psycopg 2, a transaction someone else opened) each statement runs as before.
A round trip's statements go as one libpq pipeline, each with its values bound apart and
prepared once it has run often enough (audit.pipeline).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from audit import pipeline
from audit.models import TestRun
from audit.pipeline import Result, Statement


def _db() -> BaseDatabaseWrapper:
    # The wrapper itself, once per call: the `connection` proxy costs a lookup per attribute.
    return connections[DEFAULT_DB_ALIAS]


def several_statements_per_trip(db: BaseDatabaseWrapper) -> bool:
    """Whether several statements may share a round trip: on psycopg 3 as a pipeline (libpq
    14+), else joined by "; " through its client-side binding cursor (Django's default on
    PostgreSQL) by the simple query protocol. Either way each statement is its own command, in
    order, so triggers see what the statements before them wrote."""
    if db.vendor != "postgresql":
        return False
    try:
        import psycopg
    except ImportError:  # psycopg2: one statement per round trip
        return False
    return issubclass(getattr(db.connection, "cursor_factory", type), psycopg.ClientCursor)


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
    token = _RIDERS.set([] if several_statements_per_trip(_db()) else None)
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
        trip(_db(), [])


def ride_first(
    sql: str, params: Sequence[Any], rows: Callable[[list[tuple[Any, ...]]], Any]
) -> None:
    """Queue the statement every waiting one depends on (a run's INSERT), ahead of them all;
    `rows(what it returned)` once its round trip is back."""
    waiting = _RIDERS.get()
    assert waiting is not None and not waiting, "it goes first"
    waiting.append(_Rider(sql, tuple(params), None, rows))


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


def with_riders(
    db: BaseDatabaseWrapper,
    sql: str,
    params: Sequence[Any],
    *,
    meanwhile: Callable[[], object] | None = None,
) -> list[tuple]:
    """Run the waiting statements and then `sql` in one round trip; `sql`'s rows. `meanwhile()`
    runs once, while the riders are on their way (see trip)."""
    if not several_statements_per_trip(db):  # nothing waits there: riders run at once (riders())
        if meanwhile is not None:
            meanwhile()
        with db.cursor() as cursor:
            cursor.execute(sql, list(params))
            return list(cursor.fetchall())
    return trip(db, [(sql, params)], meanwhile=meanwhile)[0]


def trip(
    db: BaseDatabaseWrapper,
    statements: Sequence[Statement],
    *,
    setting: str = "",
    commit: bool = False,
    meanwhile: Callable[[], object] | None = None,
) -> list[list[tuple[Any, ...]]]:
    """One round trip (PostgreSQL): BEGIN when this is the first of a transaction of our own
    (own_transaction), the waiting riders, `setting` (a SET LOCAL), `statements` (each with its
    values), and COMMIT when asked for and allowed; the rows of each of `statements`, then the
    riders' `then`.

    `meanwhile()`, work that needs none of the results, runs once during the trip: in a
    pipeline after BEGIN, the riders and `setting` are sent, while the server runs them, and
    before `statements` are (a lock they take is not held while it runs); else before it.
    """
    sent = _take_riders()
    if not sent and not statements:
        if meanwhile is not None:
            meanwhile()
        return []
    begin = _begin(db)
    commit = commit and _may_commit(db, sent)
    leading = [*((sql, ()) for sql in begin), *map(_bind_new_run_id, sent)]
    if setting:
        leading.append((setting, ()))
    results = _execute(
        db,
        [*leading, *statements, *([("COMMIT", ())] if commit else [])],
        len(leading) + len(statements),
        meanwhile=meanwhile,
        ahead=len(leading),
    )
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
    db: BaseDatabaseWrapper,
    statements: Sequence[Statement],
    results: int,
    *,
    meanwhile: Callable[[], object] | None = None,
    ahead: int = 0,
) -> list[Result]:
    """Run several statements in one round trip; the first `results` ones' (row count, rows).

    Through Django's cursor wrapper either way, so execute wrappers, query logging and error
    mapping see one execution: the statements joined by "; " with all their values.
    `meanwhile()` runs once the first `ahead` are sent (in a pipeline), else before.
    """
    sql = "; ".join(sql for sql, _ in statements)
    values = [value for _, values in statements for value in values]
    if not _pipelines(db):
        if meanwhile is not None:
            meanwhile()
        return _execute_text(db, sql, values, results)
    db.ensure_connection()
    db.validate_thread_sharing()  # what db.cursor() checks before it makes a cursor
    # As a driver's cursor, to the wrapper.
    piped: Any = _Pipelined(db.connection, statements, meanwhile, ahead)
    with db.make_debug_cursor(piped) if db.queries_logged else db.make_cursor(piped) as cursor:
        cursor.execute(sql, values)
    return piped.results[:results]


def _execute_text(
    db: BaseDatabaseWrapper, sql: str, values: Sequence[Any], results: int
) -> list[Result]:
    """The statements as one text, values written in by psycopg (the simple query protocol)."""
    found: list[Result] = []
    with db.cursor() as cursor:
        cursor.execute(sql, values)
        for position in range(results):
            if position:
                cursor.nextset()
            rows = list(cursor.fetchall()) if cursor.description else []
            found.append((int(cursor.rowcount), rows))
    return found


def _pipelines(db: BaseDatabaseWrapper) -> bool:
    """Whether a round trip's statements go as a pipeline (libpq 14+), not as one text."""
    return pipeline.supported()


class _Pipelined:
    """A cursor for Django's wrapper that runs statements in one pipeline (audit.pipeline).

    Joined into one text, the statements went by the simple query protocol: psycopg wrote every
    value into the text (0.3-0.5 ms of Python for a recording's rows, its JSON included) and
    PostgreSQL parsed and planned each statement every time. In a pipeline each statement is
    its own extended-protocol query with its values bound apart, prepared once it has run often
    enough, so the server reuses its plan. One recording's statements, replayed: 1.35-1.66 ms
    as one text, values written in by psycopg; 0.58-0.69 ms pipelined and prepared.
    """

    def __init__(
        self,
        connection: Any,
        statements: Sequence[Statement],
        meanwhile: Callable[[], object] | None,
        ahead: int,
    ) -> None:
        self._connection = connection
        self._statements = statements
        self._meanwhile, self._ahead = meanwhile, ahead
        self.results: list[Result] = []
        self._query: _Sent | None = None  # what Django's query log reads back (DEBUG)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run the statements given at creation; `sql` and `params` are their joined form."""
        self._query = _Sent(sql.encode())
        self.results = pipeline.run(
            self._connection, self._statements, meanwhile=self._meanwhile, ahead=self._ahead
        )

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class _Sent:
    """As psycopg's cursor._query, which Django's PostgreSQL query log reads."""

    query: bytes


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
# second alone. The atomic block still stands for the transaction: on_commit hooks run when it
# ends, and an error rolls back as before (psycopg's rollback() sends ROLLBACK whenever a
# transaction is open, and its commit() sends nothing once ours has committed; Django puts
# autocommit back as it leaves).


def transaction_block(db: BaseDatabaseWrapper) -> object | None:
    """The outermost atomic block: it stands for the transaction while it is open."""
    return db.atomic_blocks[0] if db.in_atomic_block and db.atomic_blocks else None


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
    block = transaction_block(db)
    raw = db.connection
    outermost = block is not None and len(db.atomic_blocks) == 1
    if not (alone and outermost and several_statements_per_trip(db)):
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
    if own is None or own.block is not transaction_block(db):
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


__all__ = [
    "NEW_RUN_ID", "flush_riders", "own_transaction", "ride", "ride_first", "riders",
    "riders_before_every_statement", "several_statements_per_trip", "transaction_block", "trip",
    "with_riders",
]  # fmt: skip
