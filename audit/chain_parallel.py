"""audit_verify in several processes: stretches of the log by id, all in one snapshot.

The chain is checked link by link, so a stretch can be checked on its own from the stored hash
of the record before it: its first record must link to that hash, and every record must match
its own hash. The stretch before checks that the record before is itself sound, so the whole
log is checked exactly once, and at each seam the link is checked on both sides. The first
problem of the earliest failing stretch is the one a single walk would have stopped at, with
the same message.

All processes read one PostgreSQL snapshot: the coordinator exports it from a connection of its
own (`pg_export_snapshot()`) and keeps that transaction open while each stretch imports it
(`SET TRANSACTION SNAPSHOT`), so appends and prunes made meanwhile are seen by none of them.
Workers are forked after Django's own connection is closed and open their own.
"""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, connections, transaction

from audit.chain import (
    IdRange,
    VerifyResult,
    _AttemptMerge,
    _event_rows,
    _head_problem,
    _Position,
    prune_boundary,
    walk_rows,
)
from audit.keys import current_chain_keys
from audit.models import GENESIS_HASH, AuditEvent

STRETCHES_PER_WORKER = 4  # smaller stretches even out the workers' shares
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+-[0-9]+$")


@dataclass(frozen=True)
class StretchResult:
    """What one stretch found (picklable, to cross from the worker)."""

    ids: IdRange
    ok: bool
    checked: int
    first_id: int | None
    last_id: int | None  # the last record checked (the bad one when not ok)
    last_hash: str
    start_after: tuple[int, str] | None  # (id, stored hash) of the record before the stretch
    bad_id: int | None = None
    problem: str = ""


def stretches(first_id: int, last_id: int, count: int) -> list[IdRange]:
    """`count` consecutive id ranges covering first_id..last_id (the last one unbounded above)."""
    span = last_id - first_id + 1
    count = max(1, min(count, span))
    edges = [first_id - 1 + span * i // count for i in range(count + 1)]
    ranges = [IdRange(edges[i], edges[i + 1]) for i in range(count)]
    ranges[0] = IdRange(None, ranges[0].up_to)
    return ranges


def _start_position(ids: IdRange) -> tuple[_Position, tuple[int, str] | None]:
    """Where a single walk would stand on reaching this stretch, from the stored records."""
    boundary = prune_boundary()
    at = _Position(boundary.end_hash if boundary else GENESIS_HASH, boundary, current_chain_keys())
    before = None
    if ids.after is not None:
        earlier = AuditEvent.objects.filter(id__lte=ids.after)
        before = earlier.order_by("-id").values_list("id", "hash").first()
        if before is not None:
            at.expected_prev, at.last_id = before[1], before[0]
            # A stretch of unsigned records may not follow a signed one, as in one walk.
            at.keyed_seen = earlier.exclude(key_id="").exists()
    return at, before


def stretch_verify(ids: IdRange, *, chunk_size: int, snapshot: str = "") -> StretchResult:
    """Check one stretch (in the snapshot `snapshot`, when given)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if snapshot:
                if not _SNAPSHOT_ID.match(snapshot):
                    raise ValueError(f"not a snapshot id: {snapshot!r}")
                cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        at, before = _start_position(ids)
        walk = walk_rows(
            _event_rows(chunk_size, ids),
            _AttemptMerge(chunk_size, from_first_run=True),
            at,
            chunk_size=chunk_size,
            progress=False,
        )
        failed = _to_the_end(walk)
    if failed is not None:
        return StretchResult(
            ids,
            False,
            failed.checked,
            at.first_id,
            failed.bad_id,
            "",
            before,
            failed.bad_id,
            failed.problem,
        )
    return StretchResult(ids, True, at.checked, at.first_id, at.last_id, at.expected_prev, before)


def _to_the_end(walk: Generator[VerifyResult, None, VerifyResult | None]) -> VerifyResult | None:
    """Run a walk without progress to its end; what it returns (its failure, or None)."""
    while True:
        try:
            next(walk)
        except StopIteration as stop:
            return stop.value


def _forget_inherited_connections() -> None:
    """Pool initializer: drop, unclosed, every database connection the fork copied.

    The parent's sockets are shared with it: closing one here would end the parent's session,
    and using one would interleave two processes on one session. The parent closes its own
    before forking, but it cannot close one held open by a transaction or by another thread.
    """
    for wrapper in connections.all(initialized_only=True):
        wrapper.connection = None
        wrapper.in_atomic_block = False
        wrapper.needs_rollback = False
        wrapper.closed_in_transaction = False
        wrapper.savepoint_ids = []


def _run_stretch(task: tuple[IdRange, int, str]) -> StretchResult:
    ids, chunk_size, snapshot = task
    try:
        return stretch_verify(ids, chunk_size=chunk_size, snapshot=snapshot)
    finally:
        connection.close()


def _seam_problem(result: StretchResult, previous: StretchResult | None) -> str:
    """The stretch must start where the one before ended (a belt to the links' braces)."""
    if previous is None or previous.last_id is None:
        return ""
    if result.start_after != (previous.last_id, previous.last_hash):
        return (
            f"The stretch after #{previous.last_id} did not start from it: the log changed "
            "under the verifier; run it again."
        )
    return ""


class _Snapshot:
    """A connection of the coordinator's own, holding the exported snapshot open."""

    def __enter__(self) -> _Snapshot:
        self.raw = connection.get_new_connection(connection.get_connection_params())
        self.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self.id = str(self.raw.execute("SELECT pg_export_snapshot()").fetchone()[0])
        return self

    def one(self, sql: str) -> Any:
        return self.raw.execute(sql).fetchone()

    def __exit__(self, *exc: object) -> None:
        self.raw.close()


def parallel_verify(*, chunk_size: int, workers: int) -> Iterator[VerifyResult]:
    """chain_verify over `workers` processes; yields progress per stretch, then the result."""
    connection.close()  # the workers are forked: none may inherit this connection's socket
    with _Snapshot() as snapshot:
        low, high = snapshot.one("SELECT min(id), max(id) FROM audit_auditevent")
        head = snapshot.one(
            "SELECT last_event_id, last_hash FROM audit_auditchainhead WHERE id = 1"
        )
        ranges = (
            [IdRange()] if low is None else stretches(low, high, workers * STRETCHES_PER_WORKER)
        )
        tasks = [(ids, chunk_size, snapshot.id) for ids in ranges]
        context = multiprocessing.get_context("fork")
        with context.Pool(
            min(workers, len(tasks)), initializer=_forget_inherited_connections
        ) as pool:
            yield from _merge(pool.imap(_run_stretch, tasks), head)


def _merge(
    results: Iterator[StretchResult], head: tuple[int | None, str] | None
) -> Iterator[VerifyResult]:
    """The stretches' findings, in log order, as one walk would report them."""
    checked, first_id, previous = 0, None, None
    for result in results:
        problem = result.problem or _seam_problem(result, previous)
        first_id = first_id if first_id is not None else result.first_id
        if problem:
            bad = result.bad_id if result.problem else result.first_id
            yield VerifyResult(False, checked + result.checked, first_id, bad, bad, problem)
            return
        checked += result.checked
        if result.last_id is not None:
            previous = result
        yield VerifyResult(True, checked, first_id, previous.last_id if previous else None)
    at = _Position(previous.last_hash if previous else GENESIS_HASH, None, current_chain_keys())
    at.last_id = previous.last_id if previous else None
    if previous is None:  # an empty log (or every record pruned): the head's own start
        boundary = prune_boundary()
        at.expected_prev = boundary.end_hash if boundary else GENESIS_HASH
    bad_id, problem = _head_problem(at, head, read=False)
    if problem:
        yield VerifyResult(False, checked, first_id, at.last_id, bad_id, problem)
        return
    yield VerifyResult(True, checked, first_id, at.last_id)
