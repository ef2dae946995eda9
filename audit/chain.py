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
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Prefetch

from audit.keys import ChainKeys, current_chain_keys, mac
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


def canonical_json(value: Any) -> str:
    """Sorted-key compact JSON: the same input always gives the same bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


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
    data = (prev_hash + "\n" + canonical_json(payload)).encode("utf-8")
    if key is None:  # written before AUDIT_CHAIN_KEY existed
        return hashlib.sha256(data).hexdigest()
    return mac(key, data)


def event_hash(
    event: AuditEvent,
    run: models.Model | None,
    attempts: Iterable[models.Model],
    *,
    keys: ChainKeys | None = None,
) -> str:
    """The hash the record must carry, under the key its key_id names."""
    key = None
    if event.key_id:
        key = (keys or current_chain_keys()).by_id.get(event.key_id)
        if key is None:
            raise UnknownChainKey(event.key_id)
    return chain_hash(event.prev_hash, event_payload(event, run, attempts), key)


def attempts_prefetch() -> Prefetch:
    return Prefetch(
        "test_run__attempts", queryset=TestAttempt._default_manager.order_by("position", "id")
    )


def events_for_hashing() -> models.QuerySet[AuditEvent]:
    """Records with their run and attempts loaded in bulk, oldest first."""
    return (
        AuditEvent.objects.order_by("id")
        .select_related("test_run")
        .prefetch_related(attempts_prefetch())
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


def _describe(event: AuditEvent) -> str:
    when = _default(event.created_at) if event.created_at else "?"
    return f"#{event.pk} ({event.kind}/{event.action} {event.connector_name or '-'} at {when})"


def chain_verify(*, chunk_size: int = 2000) -> Iterator[VerifyResult]:
    """Walk the chain oldest first in constant memory; yield progress, then the result.

    Every yielded value but the last has ok=True and is progress (one per chunk). On
    PostgreSQL the walk reads one snapshot, so appends made meanwhile cannot confuse it.
    """
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
    last: AuditEvent | None = None
    keyed_seen: bool = False


def _start_problem(event: AuditEvent, at: _Position) -> str:
    if at.boundary is not None and event.pk <= at.boundary.last_removed_id:
        return (
            f"Record {_describe(event)} should have been removed by the last prune "
            f"(it removed up to #{at.boundary.last_removed_id})."
        )
    return ""


def _link_problem(event: AuditEvent, at: _Position) -> str:
    if event.prev_hash == at.expected_prev:
        return ""
    where = "the start of the log" if at.last is None else f"record #{at.last.pk}"
    return (
        f"Record {_describe(event)} does not follow {where}: its previous-hash link is "
        "broken (a record before it was removed, inserted or changed)."
    )


def _key_problem(event: AuditEvent, at: _Position) -> str:
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


def _hash_problem(event: AuditEvent, at: _Position) -> str:
    run, attempts = run_and_attempts(event)
    if event_hash(event, run, attempts, keys=at.keys) == event.hash:
        return ""
    what = " or its test run/attempts" if event.test_run_id is not None else ""
    keyed = " (or it was re-hashed without the key)" if event.key_id else ""
    return (
        f"Record {_describe(event)} does not match its hash: the record{what} was "
        f"changed after it was written{keyed}."
    )


RECORD_CHECKS = (_link_problem, _key_problem, _hash_problem)


def _head_problem(at: _Position) -> tuple[int | None, str]:
    """(bad id, problem) when the chain head disagrees with the last record."""
    head = AuditChainHead.objects.filter(pk=1).first()
    last_id = at.last.pk if at.last is not None else None
    if head is not None and (head.last_event_id != last_id or head.last_hash != at.expected_prev):
        return head.last_event_id, (
            f"The log ends at #{last_id} but the chain head records #{head.last_event_id}: "
            "records at the end of the log were removed."
        )
    if head is None and at.last is not None:
        return last_id, "The chain head is missing: the log cannot be shown to be complete."
    return None, ""


def _walk(chunk_size: int) -> Iterator[VerifyResult]:
    boundary = prune_boundary()
    at = _Position(boundary.end_hash if boundary else GENESIS_HASH, boundary, current_chain_keys())
    for event in events_for_hashing().iterator(chunk_size=chunk_size):
        first = at.first_id is None
        if first:
            at.first_id = event.pk
        checks = (_start_problem, *RECORD_CHECKS) if first else RECORD_CHECKS
        problem = next((p for p in (check(event, at) for check in checks) if p), "")
        if problem:
            yield VerifyResult(False, at.checked, at.first_id, event.pk, event.pk, problem)
            return
        at.expected_prev, at.last = event.hash, event
        at.keyed_seen = at.keyed_seen or bool(event.key_id)
        at.checked += 1
        if at.checked % chunk_size == 0:
            yield VerifyResult(True, at.checked, at.first_id, event.pk)
    last_id = at.last.pk if at.last is not None else None
    bad_id, problem = _head_problem(at)
    if problem:
        yield VerifyResult(False, at.checked, at.first_id, last_id, bad_id, problem)
        return
    yield VerifyResult(True, at.checked, at.first_id, last_id)
