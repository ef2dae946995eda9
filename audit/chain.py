"""The hash chain: canonical serialisation of a record, its hash, and the verifier.

hash = HMAC-SHA256( key, prev_hash + "\\n" + canonical JSON of the record )

The key is the newest AUDIT_CHAIN_KEY when the record is written, named by the record's key_id.
Records written before a key existed carry no key_id and hash with plain SHA-256; they stay
verifiable, but only as the oldest stretch of the log: an unkeyed record after a keyed one is a
forgery or a rewrite. Without the key, nobody can edit a keyed record (or append one) and
recompute hashes that verify.

The canonical JSON is sorted-key, compact, with datetimes as UTC ISO 8601 (microseconds). For a
test run it includes every column of the run and of each attempt, in position order, so an edit
made directly in the database to any of those rows changes the hash and the verifier names it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import hmac
import json
import uuid
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection, models, transaction
from django.db.models import Prefetch

from audit.chain_stream import (
    _stream,
)
from audit.keys import ChainKeys, current_chain_keys
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent, TestAttempt, TestRun

# The columns of an audit record that its hash covers (everything but id and the hashes).
EVENT_FIELDS: tuple[str, ...] = (
    "created_at",
    "kind",
    "action",
    "user_id",
    "username",
    "connector_id",
    "connector_name",
    "source",
    "outcome",
    "summary",
    "details",
    "test_run_id",
)

PRUNE_ACTION = "prune"


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat(timespec="microseconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"cannot serialise {type(value).__name__} for the audit chain")


# What json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
# default=_default) builds on every call, built once: the verifier encodes a million records.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
).encode


def canonical_json(value: Any) -> str:
    """Sorted-key compact JSON: the same input always gives the same bytes."""
    return _CANONICAL(value)


def row_dict(instance: models.Model) -> dict[str, Any]:
    """Every concrete column of a row, by column attribute name."""
    return {f.attname: f.value_from_object(instance) for f in instance._meta.concrete_fields}


def event_payload(
    event: AuditEvent, run: models.Model | None, attempts: Iterable[models.Model]
) -> dict[str, Any]:
    payload: dict[str, Any] = {name: getattr(event, name) for name in EVENT_FIELDS}
    if event.test_run_id is not None:
        payload["test_run"] = row_dict(run) if run is not None else None
        payload["attempts"] = [row_dict(a) for a in attempts]
    return payload


class UnknownChainKey(LookupError):
    """A record names a key that AUDIT_CHAIN_KEY does not list."""


def chain_hash(prev_hash: str, payload: dict[str, Any], key: bytes | None = None) -> str:
    return text_hash(prev_hash, _CANONICAL(payload), key)


def text_hash(prev_hash: str, text: str, key: bytes | None = None) -> str:
    """chain_hash of the payload whose canonical JSON is `text`."""
    return _digest((prev_hash + "\n" + text).encode("utf-8"), key)


def _digest(data: bytes, key: bytes | None) -> str:
    if key is None:  # written before AUDIT_CHAIN_KEY existed
        return hashlib.sha256(data).hexdigest()
    # audit.keys.mac in one C call (hmac.digest): same HMAC-SHA256, without the Python object.
    return hmac.digest(key, data, "sha256").hex()


# The verifier's encoder: orjson writes the same compact, sorted-key, UTF-8 JSON as _CANONICAL
# in C without a Python call per container. Where the two could differ, the fast bytes simply do
# not match the stored hash and the record is hashed again with _CANONICAL (fast_chain_hash), so
# a difference costs time, never a wrong verdict:
# - small-exponent floats (orjson writes 0.00001, json 1e-05): a mismatch, hashed again;
# - a str with a lone surrogate, an int beyond 64 bits, a key that is not a str: orjson raises;
# - a datetime: orjson writes it itself, as _default does for UTC with microseconds; on a whole
#   second it leaves out ".000000" (a mismatch, hashed again), and only timestamptz columns hold
#   datetimes, which PostgreSQL hands over in UTC;
# - NaN and Infinity (orjson writes null): jsonb refuses them and no hashed column is a float,
#   so they cannot come from PostgreSQL, the only database fast_chain_hash is used for.
# Two JSON texts that are byte-equal decode to equal values, so a fast match means the stored
# values are the ones that were hashed, as a _CANONICAL match does.
_FAST_OPTIONS = orjson.OPT_SORT_KEYS


def fast_canonical_json(value: Any) -> bytes:
    """canonical_json(value) encoded as UTF-8, or a TypeError (orjson.JSONEncodeError)."""
    return orjson.dumps(value, default=_default, option=_FAST_OPTIONS)


def fast_chain_hash(prev_hash: str, payload: dict[str, Any], key: bytes | None, stored: str) -> str:
    """chain_hash(prev_hash, payload, key), computed the fast way when that gives `stored`."""
    try:
        data = prev_hash.encode("ascii") + b"\n" + fast_canonical_json(payload)
    except (TypeError, UnicodeEncodeError):
        return chain_hash(prev_hash, payload, key)
    digest = _digest(data, key)
    return digest if digest == stored else chain_hash(prev_hash, payload, key)


def event_hash(
    event: AuditEvent,
    run: models.Model | None,
    attempts: Iterable[models.Model],
    *,
    keys: ChainKeys | None = None,
    payload_text: str | None = None,
) -> str:
    """The hash the record must carry, under the key its key_id names.

    `payload_text`: the payload's canonical JSON, when the caller has it (audit.run_text).
    """
    key = None
    if event.key_id:
        key = (keys or current_chain_keys()).by_id.get(event.key_id)
        if key is None:
            raise UnknownChainKey(event.key_id)
    if payload_text is None:
        payload_text = _CANONICAL(event_payload(event, run, attempts))
    return text_hash(event.prev_hash, payload_text, key)


def attempts_prefetch() -> Prefetch:
    return Prefetch(
        "test_run__attempts", queryset=TestAttempt._default_manager.order_by("position", "id")
    )


def run_and_attempts(event: AuditEvent) -> tuple[TestRun | None, list[TestAttempt]]:
    run = event.test_run if event.test_run_id is not None else None
    attempts = list(run.attempts.all()) if run is not None else []
    return run, attempts


@dataclass(frozen=True)
class PruneBoundary:
    """Where the chain starts after retention pruning: the hash of the last removed record."""

    last_removed_id: int
    end_hash: str


def prune_boundary() -> PruneBoundary | None:
    """The boundary named by the newest prune record (itself covered by the chain)."""
    record = (
        AuditEvent.objects.filter(kind=AuditEvent.Kind.SYSTEM, action=PRUNE_ACTION)
        .order_by("-id")
        .only("details")
        .first()
    )
    if record is None:
        return None
    details = record.details or {}
    return PruneBoundary(int(details.get("last_id", 0)), str(details.get("end_hash", "")))


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_id: int | None = None
    last_id: int | None = None
    bad_id: int | None = None
    problem: str = ""


# The verifier reads tuples, not model instances: the record's own columns and its run's in
# one query ordered by record id, and the attempts in a second one ordered by run id, merged
# as both stream through server-side cursors. Memory stays one chunk of each (and a few held
# attempts, see _AttemptMerge).
RUN_FIELDS: tuple[str, ...] = tuple(f.attname for f in TestRun._meta.concrete_fields)
ATTEMPT_FIELDS: tuple[str, ...] = tuple(f.attname for f in TestAttempt._meta.concrete_fields)
_HEAD_COLUMNS = ("id", "prev_hash", "hash", "key_id")
_FIELDS_AT = len(_HEAD_COLUMNS)
_RUN_AT = _FIELDS_AT + len(EVENT_FIELDS)
_TEST_RUN_ID_AT = _FIELDS_AT + EVENT_FIELDS.index("test_run_id")


_RUN_ID_AT = ATTEMPT_FIELDS.index("run_id")
HELD_ATTEMPTS = 10_000  # attempts held for runs recorded later than runs created after them


@dataclass(frozen=True)
class IdRange:
    """The records with after < id <= up_to (None: unbounded on that side)."""

    after: int | None = None
    up_to: int | None = None

    def filter(self, qs: models.QuerySet[Any]) -> models.QuerySet[Any]:
        if self.after is not None:
            qs = qs.filter(id__gt=self.after)
        if self.up_to is not None:
            qs = qs.filter(id__lte=self.up_to)
        return qs


WHOLE_LOG = IdRange()


def _event_rows(chunk_size: int, ids: IdRange = WHOLE_LOG) -> Iterator[tuple[Any, ...]]:
    """(id, prev_hash, hash, key_id, *EVENT_FIELDS, *the run's columns or Nones), oldest first."""
    columns = (*_HEAD_COLUMNS, *EVENT_FIELDS, *(f"test_run__{name}" for name in RUN_FIELDS))
    qs = ids.filter(AuditEvent.objects.order_by("id"))
    return _stream(qs.values_list(*columns), chunk_size)


def _attempts_by_run() -> models.QuerySet[Any]:
    # (run, position) is unique: this order is the old per-run ("position", "id") order.
    return TestAttempt._default_manager.order_by("run_id", "position").values_list(*ATTEMPT_FIELDS)


class _AttemptMerge:
    """The attempts, read in run order, handed out in the records' order (a merge join).

    Runs are recorded in about the order they were created, so the stream usually reaches a
    run just as its record comes. Attempts passed on the way (a run recorded later than runs
    created after it) are held until their record comes; past HELD_ATTEMPTS the oldest held
    are dropped, and read again alone if their record ever comes. Memory stays bounded.
    """

    def __init__(self, chunk_size: int, *, from_first_run: bool = False) -> None:
        # from_first_run: a stretch of the log starts the stream at the first run it asks for
        # rather than at the oldest attempt; older runs it asks for are read alone.
        self._chunk_size = chunk_size
        self._rows: Iterator[tuple[Any, ...]] | None = None
        self._next: tuple[Any, ...] | None = None
        if not from_first_run:
            self._start(_attempts_by_run())
        self._held: dict[int, list[dict[str, Any]]] = {}
        self._held_count = 0
        self._dropped_up_to = 0  # the highest run id whose held attempts were dropped

    def _start(self, qs: models.QuerySet[Any]) -> None:
        self._rows = _stream(qs, self._chunk_size)
        self._next = next(self._rows, None)

    def take(self, run_id: int) -> list[dict[str, Any]]:
        """The attempts of run `run_id`, in position order."""
        if self._rows is None:
            self._start(_attempts_by_run().filter(run_id__gte=run_id))
            self._dropped_up_to = run_id - 1
        held = self._held.pop(run_id, None)
        if held is not None:
            self._held_count -= len(held)
            return held
        row = self._next
        if row is None or row[_RUN_ID_AT] > run_id:
            return self._read_alone(run_id) if run_id <= self._dropped_up_to else []
        found: list[dict[str, Any]] = []
        rows = self._rows
        assert rows is not None
        while row is not None and row[_RUN_ID_AT] <= run_id:
            attempt = dict(zip(ATTEMPT_FIELDS, row, strict=True))
            if row[_RUN_ID_AT] == run_id:
                found.append(attempt)
            else:
                self._hold(row[_RUN_ID_AT], attempt)
            row = next(rows, None)
        self._next = row
        return found

    def _hold(self, run_id: int, attempt: dict[str, Any]) -> None:
        self._held.setdefault(run_id, []).append(attempt)
        self._held_count += 1
        while self._held_count > HELD_ATTEMPTS:  # held in run order: the oldest go first
            oldest = next(iter(self._held))
            self._held_count -= len(self._held.pop(oldest))
            self._dropped_up_to = max(self._dropped_up_to, oldest)

    @staticmethod
    def _read_alone(run_id: int) -> list[dict[str, Any]]:
        rows = _attempts_by_run().filter(run_id=run_id)
        return [dict(zip(ATTEMPT_FIELDS, row, strict=True)) for row in rows]


def _row_payload(row: tuple[Any, ...], attempts: _AttemptMerge) -> dict[str, Any]:
    """event_payload() of a streamed row: the same keys and values, so the same bytes."""
    payload = dict(zip(EVENT_FIELDS, row[_FIELDS_AT:_RUN_AT], strict=True))
    if row[_TEST_RUN_ID_AT] is not None:
        run = row[_RUN_AT:]
        payload["test_run"] = (
            dict(zip(RUN_FIELDS, run, strict=True)) if run[0] is not None else None
        )
        payload["attempts"] = attempts.take(row[_TEST_RUN_ID_AT])
    return payload


@dataclass(frozen=True)
class _Record:
    """What the checks and messages need of one streamed record."""

    pk: int
    prev_hash: str
    hash: str
    key_id: str
    kind: str
    action: str
    connector_name: str
    created_at: Any
    test_run_id: int | None
    computed: str  # the hash it must carry ("" when its key is unknown)

    @classmethod
    def of(cls, row: tuple[Any, ...], computed: str) -> _Record:
        fields = dict(zip(EVENT_FIELDS, row[_FIELDS_AT:_RUN_AT], strict=True))
        return cls(
            pk=row[0],
            prev_hash=row[1],
            hash=row[2],
            key_id=row[3],
            kind=fields["kind"],
            action=fields["action"],
            connector_name=fields["connector_name"],
            created_at=fields["created_at"],
            test_run_id=fields["test_run_id"],
            computed=computed,
        )


def _describe(event: _Record) -> str:
    when = _default(event.created_at) if event.created_at else "?"
    return f"#{event.pk} ({event.kind}/{event.action} {event.connector_name or '-'} at {when})"


def chain_verify(*, chunk_size: int = 2000, workers: int = 1) -> Iterator[VerifyResult]:
    """Walk the chain oldest first in constant memory; yield progress, then the result.

    Every yielded value but the last has ok=True and is progress. On PostgreSQL the walk reads
    one snapshot, so appends made meanwhile cannot confuse it; there, `workers` > 1 checks
    stretches of the log in that many processes at once (audit.chain_parallel), each from its
    preceding record's stored hash, with the same verdict as one walk.
    """
    if workers > 1 and connection.vendor == "postgresql" and not connection.in_atomic_block:
        from audit.chain_parallel import parallel_verify

        yield from parallel_verify(chunk_size=chunk_size, workers=workers)
        return
    with consistent_snapshot():
        yield from _walk(chunk_size)


@contextlib.contextmanager
def consistent_snapshot() -> Iterator[None]:
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


@dataclass
class _Position:
    """How far the walk got: what the next record must link to, and what was seen."""

    expected_prev: str
    boundary: PruneBoundary | None
    keys: ChainKeys
    checked: int = 0
    first_id: int | None = None
    last_id: int | None = None
    keyed_seen: bool = False


def _start_problem(event: _Record, at: _Position) -> str:
    if at.boundary is not None and event.pk <= at.boundary.last_removed_id:
        return (
            f"Record {_describe(event)} should have been removed by the last prune "
            f"(it removed up to #{at.boundary.last_removed_id})."
        )
    return ""


def _link_problem(event: _Record, at: _Position) -> str:
    if event.prev_hash == at.expected_prev:
        return ""
    where = "the start of the log" if at.last_id is None else f"record #{at.last_id}"
    return (
        f"Record {_describe(event)} does not follow {where}: its previous-hash link is "
        "broken (a record before it was removed, inserted or changed)."
    )


def _key_problem(event: _Record, at: _Position) -> str:
    if not event.key_id:
        if at.keyed_seen:
            return (
                f"Record {_describe(event)} is not signed with the chain key although records "
                "before it are: it was forged or rewritten by someone without the key."
            )
        return ""
    if event.key_id not in at.keys.by_id:
        return (
            f"Record {_describe(event)} is signed with a key that AUDIT_CHAIN_KEY does not "
            f"list (key id {event.key_id}): add that key back, or the record was forged."
        )
    return ""


def _hash_problem(event: _Record, at: _Position) -> str:
    if event.computed == event.hash:
        return ""
    what = " or its test run/attempts" if event.test_run_id is not None else ""
    keyed = " (or it was re-hashed without the key)" if event.key_id else ""
    return (
        f"Record {_describe(event)} does not match its hash: the record{what} was "
        f"changed after it was written{keyed}."
    )


RECORD_CHECKS = (_link_problem, _key_problem, _hash_problem)


def chain_head_row() -> tuple[int | None, str] | None:
    """(last_event_id, last_hash) of the chain head, or None when there is none."""
    return AuditChainHead.objects.filter(pk=1).values_list("last_event_id", "last_hash").first()


def _head_problem(
    at: _Position, head: tuple[int | None, str] | None = None, *, read: bool = True
) -> tuple[int | None, str]:
    """(bad id, problem) when the chain head disagrees with the last record."""
    if read:
        head = chain_head_row()
    last_id = at.last_id
    if head is not None and (head[0] != last_id or head[1] != at.expected_prev):
        return head[0], (
            f"The log ends at #{last_id} but the chain head records #{head[0]}: "
            "records at the end of the log were removed."
        )
    if head is None and last_id is not None:
        return last_id, "The chain head is missing: the log cannot be shown to be complete."
    return None, ""


def _computed_hash(
    row: tuple[Any, ...], attempts: _AttemptMerge, keys: ChainKeys, *, fast: bool = False
) -> str:
    """The hash the row must carry under the key it names ("" for a key not configured)."""
    key_name = row[3]
    key = keys.by_id.get(key_name) if key_name else None
    if key_name and key is None:
        return ""
    if fast:
        return fast_chain_hash(row[1], _row_payload(row, attempts), key, row[2])
    return chain_hash(row[1], _row_payload(row, attempts), key)


def _row_problem(row: tuple[Any, ...], computed: str, at: _Position, first: bool) -> str:
    """The first check the row fails, in the order the checks were always made ("" if none)."""
    record = _Record.of(row, computed)
    checks = (_start_problem, *RECORD_CHECKS) if first else RECORD_CHECKS
    return next((p for p in (check(record, at) for check in checks) if p), "")


def _walk(chunk_size: int) -> Iterator[VerifyResult]:
    boundary = prune_boundary()
    at = _Position(boundary.end_hash if boundary else GENESIS_HASH, boundary, current_chain_keys())
    failed = yield from walk_rows(
        _event_rows(chunk_size), _AttemptMerge(chunk_size), at, chunk_size=chunk_size
    )
    if failed is not None:
        yield failed
        return
    bad_id, problem = _head_problem(at)
    if problem:
        yield VerifyResult(False, at.checked, at.first_id, at.last_id, bad_id, problem)
        return
    yield VerifyResult(True, at.checked, at.first_id, at.last_id)


def walk_rows(
    rows: Iterable[tuple[Any, ...]],
    attempts: _AttemptMerge,
    at: _Position,
    *,
    chunk_size: int,
    progress: bool = True,
) -> Generator[VerifyResult, None, VerifyResult | None]:
    """Check streamed records from the position `at`; yield progress, return the failure."""
    by_id = at.keys.by_id
    fast = connection.vendor == "postgresql"  # see fast_chain_hash: jsonb holds no NaN
    for row in rows:
        pk, prev_hash, stored_hash, key_name = row[:_FIELDS_AT]
        computed = _computed_hash(row, attempts, at.keys, fast=fast)
        # The common case in one test; any doubt goes through the checks for the message.
        sound = (
            at.first_id is not None
            and prev_hash == at.expected_prev
            and (key_name in by_id if key_name else not at.keyed_seen)
            and computed == stored_hash
        )
        if not sound:
            first = at.first_id is None
            if first:
                at.first_id = pk
            problem = _row_problem(row, computed, at, first)
            if problem:
                return VerifyResult(False, at.checked, at.first_id, pk, pk, problem)
        at.expected_prev, at.last_id = stored_hash, pk
        at.keyed_seen = at.keyed_seen or bool(key_name)
        at.checked += 1
        if progress and at.checked % chunk_size == 0:
            yield VerifyResult(True, at.checked, at.first_id, pk)
    return None
