"""Several statements in one libpq pipeline: one round trip, values bound apart, prepared when
run often enough. For the round trips of a recording (audit.round_trips).

psycopg's own pipeline (`Connection.pipeline()` with a cursor per statement) sends the same
messages, but waits on the socket after every statement and builds a cursor for each: replayed,
one recording's two round trips cost 0.56 ms of the client's CPU that way against 0.31 ms here
(0.74 ms as one text with the values written in by psycopg, which the server then parsed and
planned every time: 1.35-1.66 ms of wall time, against 0.58-0.69 ms here). Here every
statement is queued in libpq, one Sync follows, the socket is flushed once and the replies are
read as they come.

What psycopg would do is kept: values are dumped by the connection's adapters (Django's
included), rows loaded by its loaders, errors raised as psycopg's exception for the SQLSTATE
(Django maps them as for any statement), and a statement is prepared once it has run
`prepare_threshold` times on this connection (None: never, as behind a pooler that cannot hold
prepared statements). Statements run in order; an error makes the server skip those after it
up to the Sync, as in one text, and the transaction is then failed for its owner to roll back.
"""

from __future__ import annotations

import functools
import itertools
import select
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import abc, errors, pq
from psycopg.adapt import PyFormat, Transformer

Statement = tuple[str, Sequence[Any]]
Result = tuple[int, list[tuple[Any, ...]]]

# A connection stops preparing new statements past this many (the server keeps them until the
# connection closes; ours are a few dozen: each statement, by the types of its values).
MAX_PREPARED = 200


@dataclass
class _Prepared:
    """The statements run on one connection: times run, and the name of those prepared."""

    runs: dict[tuple[bytes, tuple[int, ...]], int] = field(default_factory=dict)
    names: dict[tuple[bytes, tuple[int, ...]], bytes] = field(default_factory=dict)


_PREPARED: weakref.WeakKeyDictionary[Any, _Prepared] = weakref.WeakKeyDictionary()
_NAMES = itertools.count()


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> bytes:
    """The statement with "$1", "$2"... for its "%s" (ours hold "%s" only as placeholders)."""
    pieces = sql.split("%s")
    numbered = [pieces[0]]
    for number, piece in enumerate(pieces[1:], start=1):
        numbered += (f"${number}", piece)
    return "".join(numbered).encode()


def supported() -> bool:
    """libpq 14 or later (pipeline mode), where select.poll exists (not on Windows)."""
    return bool(psycopg.Pipeline.is_supported()) and hasattr(select, "poll")


@dataclass(frozen=True)
class _Send:
    """One statement, ready to go: its text, values as dumped, and its prepared name."""

    query: bytes
    transformer: abc.Transformer
    dumped: Sequence[Any]
    key: tuple[bytes, tuple[int, ...]]
    name: bytes | None  # run as the statement prepared under this name; None: unprepared
    parse: bytes | None  # prepared in this round trip, under this name (then also `name`)


def run(
    connection: psycopg.Connection[Any],
    given: Sequence[Statement],
    *,
    meanwhile: Callable[[], object] | None = None,
    ahead: int = 0,
) -> list[Result]:
    """Run the statements in one round trip; each one's (row count, rows).

    Where psycopg would open a transaction before them (autocommit off, none open), BEGIN goes
    first, as psycopg writes it: statements sent past psycopg would otherwise each commit alone.
    Every value is dumped before anything is sent, so a value that cannot be adapted sends
    nothing. A fault while the pipeline is open (a broken connection, an interrupt) reads what
    is left or, failing that, closes the connection: it is never left half-read.

    `meanwhile()`: work of the caller's that needs none of the results. It runs once the first
    `ahead` statements are on their way, while the server runs them, and the others are sent
    after it: so a lock taken by a later statement is not held while it runs.
    """
    statements = [*_begin(connection), *given]
    begins = len(statements) - len(given)
    prepared = _PREPARED.setdefault(connection, _Prepared())
    sends = [_ready(connection, prepared, sql, values) for sql, values in statements]
    pgconn = connection.pgconn
    # Outside any transaction, a Sync would commit what was sent before a fault: roll it back.
    undo = connection.autocommit and pgconn.transaction_status == pq.TransactionStatus.IDLE
    pgconn.enter_pipeline_mode()
    synced = False
    try:
        if meanwhile is not None:
            _send(pgconn, sends[: begins + ahead])
            _flush(pgconn)
            meanwhile()
            _send(pgconn, sends[begins + ahead :])
        else:
            _send(pgconn, sends)
        pgconn.pipeline_sync()
        synced = True
        _flush(pgconn)
        replies = _replies(pgconn)
    except BaseException:
        _abandon(connection, synced, undo=undo)
        raise
    pgconn.exit_pipeline_mode()
    failed = next((r for r in replies if r.status == pq.ExecStatus.FATAL_ERROR), None)
    if failed is not None:
        # Those prepared in this round trip are not counted as prepared (a Parse after the
        # error was skipped); one before it stays on the server, unnamed here, until the
        # connection closes.
        raise errors.error_from_result(failed, encoding=connection.info.encoding)
    results = iter(replies)
    read = []
    for send in sends:
        if send.parse is not None:
            next(results)  # the Parse's reply
            prepared.names[send.key] = send.parse
        read.append(_result(send.transformer, next(results)))
    return read[begins:]


def _send(pgconn: Any, sends: Sequence[_Send]) -> None:
    """Queue the statements in libpq (nothing goes out before a flush)."""
    for send in sends:
        if send.parse is not None:
            pgconn.send_prepare(send.parse, send.query, param_types=send.transformer.types)
        formats = send.transformer.formats
        if send.name is None:
            types = send.transformer.types
            pgconn.send_query_params(
                send.query, send.dumped, param_types=types, param_formats=formats
            )
        else:
            pgconn.send_query_prepared(send.name, send.dumped, param_formats=formats)


def _ready(
    connection: psycopg.Connection[Any], prepared: _Prepared, sql: str, values: Sequence[Any]
) -> _Send:
    transformer = Transformer(connection)
    dumped = transformer.dump_sequence(values, [PyFormat.AUTO] * len(values))
    query = _numbered(sql)
    key = (query, tuple(transformer.types or ()))
    name = prepared.names.get(key)
    parse = None
    if name is None and _ripe(prepared, key, connection.prepare_threshold):
        name = parse = f"cc_{next(_NAMES)}".encode()
    return _Send(query, transformer, dumped, key, name, parse)


def _abandon(connection: psycopg.Connection[Any], synced: bool, *, undo: bool) -> None:
    """Read what a faulted pipeline has left and leave it; else close the connection.

    Before its Sync, with `undo` (no transaction was open: the statements sent so far run in
    an implicit one, or in one a BEGIN among them opened), a ROLLBACK goes first, so a half-sent
    round trip commits nothing. In a transaction that was open, its owner rolls back.
    """
    pgconn = connection.pgconn
    try:
        if not synced:
            if undo:
                pgconn.send_query_params(b"ROLLBACK", None)
            pgconn.pipeline_sync()
        _flush(pgconn)
        _replies(pgconn)
        pgconn.exit_pipeline_mode()
    except BaseException:  # noqa: BLE001 - the connection cannot be trusted any more
        connection.close()


def _begin(connection: psycopg.Connection[Any]) -> list[Statement]:
    """[BEGIN ...] where psycopg would send one before a statement, else []."""
    if connection.autocommit or connection.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return []
    begin = ["BEGIN"]
    if connection.isolation_level is not None:
        begin.append(f"ISOLATION LEVEL {connection.isolation_level.name.replace('_', ' ')}")
    if connection.read_only is not None:
        begin.append("READ ONLY" if connection.read_only else "READ WRITE")
    if connection.deferrable is not None:
        begin.append("DEFERRABLE" if connection.deferrable else "NOT DEFERRABLE")
    return [(" ".join(begin), ())]


def _ripe(prepared: _Prepared, key: tuple[bytes, tuple[int, ...]], threshold: int | None) -> bool:
    """Whether the statement is prepared now: it has run `threshold` times before."""
    if threshold is None or len(prepared.names) >= MAX_PREPARED:
        return False
    runs = prepared.runs.get(key, 0)
    prepared.runs[key] = runs + 1
    return runs >= threshold


def _wait(pgconn: Any, *, write: bool) -> bool:
    """Wait until the socket is readable (or, with `write`, writable); whether it is readable.

    poll, not select: select cannot watch a descriptor numbered 1024 or more, which a worker
    with many connections and files open may well hold.
    """
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN | (select.POLLOUT if write else 0))
    events = 0
    for _, happened in poller.poll():
        events |= happened
    return bool(events & (select.POLLIN | select.POLLERR | select.POLLHUP))


def _flush(pgconn: Any) -> None:
    """Send all that is queued, reading what comes meanwhile so the server never waits on us."""
    while pgconn.flush():
        if _wait(pgconn, write=True):
            pgconn.consume_input()


def _replies(pgconn: Any) -> list[Any]:
    """Every reply up to the Sync, in the order sent: one for each Parse and each statement
    (PIPELINE_ABORTED for those the server skipped after an error)."""
    replies: list[Any] = []
    while True:
        while pgconn.is_busy():
            _wait(pgconn, write=False)
            pgconn.consume_input()
        reply = pgconn.get_result()
        if reply is None:  # the end of one statement's results
            continue
        if reply.status == pq.ExecStatus.PIPELINE_SYNC:
            return replies
        replies.append(reply)


def _result(transformer: abc.Transformer, reply: Any) -> Result:
    count = reply.command_tuples
    if reply.status != pq.ExecStatus.TUPLES_OK:
        return (-1 if count is None else count, [])
    transformer.set_pgresult(reply)
    return (reply.ntuples, transformer.load_rows(0, reply.ntuples, tuple))


__all__ = ["MAX_PREPARED", "run", "supported"]
