"""Several statements in one libpq pipeline: one round trip, values bound apart, prepared when
run often enough. For a recording's own transaction (audit.round_trips).

psycopg's own pipeline (`Connection.pipeline()` with a cursor per statement) sends the same
messages, but waits on the socket after every statement and builds a cursor for each: replayed,
one recording's two round trips cost 0.56 ms of the client's CPU that way against 0.31 ms here
(0.74 ms as one text with the values written in by psycopg, whose server-side parsing and
planning made it 1.35-1.66 ms of wall time). Here every statement is queued in libpq, one Sync
follows, the socket is flushed once and the replies read as they come.

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
from collections.abc import Sequence
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
    """libpq 14 or later: pipeline mode."""
    return bool(psycopg.Pipeline.is_supported())


def run(connection: psycopg.Connection[Any], given: Sequence[Statement]) -> list[Result]:
    """Run the statements in one round trip; each one's (row count, rows).

    Where psycopg would open a transaction before them (autocommit off, none open), BEGIN goes
    first, as psycopg writes it: statements sent past psycopg would otherwise each commit alone.
    """
    pgconn = connection.pgconn
    prepared = _PREPARED.setdefault(connection, _Prepared())
    statements = [*_begin(connection), *given]
    begins = len(statements) - len(given)
    # In the order sent, what reads each reply: a statement's transformer, or None for a Parse.
    readers: list[abc.Transformer | None] = []
    parsed = []
    pgconn.enter_pipeline_mode()
    try:
        for sql, values in statements:
            transformer = Transformer(connection)
            dumped = transformer.dump_sequence(values, [PyFormat.AUTO] * len(values))
            query = _numbered(sql)
            key = (query, tuple(transformer.types or ()))
            name = prepared.names.get(key)
            if name is None and _ripe(prepared, key, connection.prepare_threshold):
                name = f"cc_{next(_NAMES)}".encode()
                pgconn.send_prepare(name, query, param_types=transformer.types)
                parsed.append((key, name))
                readers.append(None)
            if name is None:
                pgconn.send_query_params(
                    query, dumped, param_types=transformer.types, param_formats=transformer.formats
                )
            else:
                pgconn.send_query_prepared(name, dumped, param_formats=transformer.formats)
            readers.append(transformer)
        pgconn.pipeline_sync()
        _flush(pgconn)
        replies = _replies(pgconn)
    finally:
        _leave_pipeline(pgconn)
    failed = next((r for r in replies if r.status == pq.ExecStatus.FATAL_ERROR), None)
    if failed is not None:
        raise errors.error_from_result(failed, encoding=connection.info.encoding)
    prepared.names.update(parsed)  # each Parse has succeeded
    results = [_result(t, r) for t, r in zip(readers, replies, strict=True) if t is not None]
    return results[begins:]


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


def _flush(pgconn: Any) -> None:
    """Send all that is queued, reading what comes meanwhile so the server never waits on us."""
    while pgconn.flush():
        readable, _, _ = select.select([pgconn.socket], [pgconn.socket], [])
        if readable:
            pgconn.consume_input()


def _replies(pgconn: Any) -> list[Any]:
    """Every reply up to the Sync, in the order sent: one for each Parse and each statement
    (PIPELINE_ABORTED for those the server skipped after an error)."""
    replies: list[Any] = []
    while True:
        while pgconn.is_busy():
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        reply = pgconn.get_result()
        if reply is None:  # the end of one statement's results
            continue
        if reply.status == pq.ExecStatus.PIPELINE_SYNC:
            return replies
        replies.append(reply)


def _leave_pipeline(pgconn: Any) -> None:
    try:
        pgconn.exit_pipeline_mode()
    except psycopg.OperationalError:  # results left unread (a broken connection): drop them
        while pgconn.get_result() is not None:
            pass


def _result(transformer: abc.Transformer, reply: Any) -> Result:
    count = reply.command_tuples
    if reply.status != pq.ExecStatus.TUPLES_OK:
        return (-1 if count is None else count, [])
    transformer.set_pgresult(reply)
    return (reply.ntuples, transformer.load_rows(0, reply.ntuples, tuple))


__all__ = ["MAX_PREPARED", "run", "supported"]
