"""Signed checkpoints of the audit log, kept outside the database.

A checkpoint is one line: the time, how many records the log held, the newest record's id and
hash, and an HMAC over them with the chain key. Kept where a database user cannot rewrite it (an
append-only file, another host, a ticket), it lets `audit_verify --checkpoint` show what the
chain alone cannot: that records at the end were deleted (and the head moved back), that the
whole log was wiped, or that it was rewritten from some point on, even without the key.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.db.models import Count, Max
from django.utils import timezone

from audit.chain import PRUNE_ACTION, canonical_json, consistent_snapshot
from audit.keys import ChainKeys, current_chain_keys, mac, macs_equal
from audit.models import AuditEvent

VERSION = 1
_DOMAIN = b"audit-checkpoint\n"  # never the start of a chained record (that is a 64-hex hash)


class CheckpointError(ValueError):
    """A checkpoint line that cannot be trusted, or a log that does not match it."""


@dataclass(frozen=True)
class Checkpoint:
    time: str
    count: int
    last_id: int | None
    head: str
    key_id: str
    v: int = VERSION

    def fields(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return f"the checkpoint of {self.time} ({self.count} records up to #{self.last_id})"


def _signature(checkpoint: Checkpoint, key: bytes) -> str:
    return mac(key, _DOMAIN + canonical_json(checkpoint.fields()).encode("utf-8"))


def checkpoint_take(*, keys: ChainKeys | None = None) -> Checkpoint:
    """The log as it stands now: count and newest record, read in one snapshot."""
    keys = keys or current_chain_keys()
    if keys.signing_key is None:
        raise CheckpointError("Checkpoints are signed with AUDIT_CHAIN_KEY, which is not set.")
    with consistent_snapshot():
        newest = AuditEvent.objects.order_by("-id").values("id", "hash").first()
        count = AuditEvent.objects.count()
    return Checkpoint(
        time=timezone.now().astimezone(dt.UTC).isoformat(timespec="seconds"),
        count=count,
        last_id=newest["id"] if newest else None,
        head=newest["hash"] if newest else "",
        key_id=keys.signing_key_id,
    )


def checkpoint_line(checkpoint: Checkpoint, *, keys: ChainKeys | None = None) -> str:
    """One signed line (JSON), without the newline."""
    keys = keys or current_chain_keys()
    key = keys.by_id.get(checkpoint.key_id)
    if key is None:
        raise CheckpointError("The checkpoint's key is not in AUDIT_CHAIN_KEY.")
    return canonical_json({**checkpoint.fields(), "mac": _signature(checkpoint, key)})


def checkpoint_parse(line: str, *, keys: ChainKeys | None = None) -> Checkpoint:
    """The checkpoint of a signed line; refuses one that no configured key signed."""
    keys = keys or current_chain_keys()
    try:
        data = json.loads(line)
        signature = str(data.pop("mac"))
        checkpoint = Checkpoint(
            time=str(data["time"]),
            count=int(data["count"]),
            last_id=None if data["last_id"] is None else int(data["last_id"]),
            head=str(data["head"]),
            key_id=str(data["key_id"]),
            v=int(data["v"]),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        raise CheckpointError("The checkpoint line is not one audit_checkpoint wrote.") from None
    key = keys.by_id.get(checkpoint.key_id)
    if key is None:
        raise CheckpointError(
            f"The checkpoint is signed with a key AUDIT_CHAIN_KEY does not list (key id "
            f"{checkpoint.key_id}): add that key back, or the checkpoint was forged."
        )
    if checkpoint.v != VERSION or not macs_equal(signature, _signature(checkpoint, key)):
        raise CheckpointError("The checkpoint's signature does not match: it was altered.")
    return checkpoint


def checkpoint_newest(lines: Iterable[str], *, keys: ChainKeys | None = None) -> Checkpoint:
    """The last checkpoint in a file's lines (older lines are history, not checked)."""
    last = ""
    for line in lines:
        if line.strip():
            last = line.strip()
    if not last:
        raise CheckpointError("The checkpoint file holds no checkpoint.")
    return checkpoint_parse(last, keys=keys)


def checkpoint_read(path: Path) -> Checkpoint:
    try:
        with path.open(encoding="utf-8") as handle:
            return checkpoint_newest(handle)
    except OSError as exc:
        raise CheckpointError(f"Cannot read {path}: {exc.strerror}.") from None


def _removed_since(checkpoint: Checkpoint) -> tuple[int, int]:
    """(records removed by prunes after the checkpoint, highest id those prunes removed)."""
    removed, highest = 0, 0
    prunes = AuditEvent.objects.filter(
        kind=AuditEvent.Kind.SYSTEM, action=PRUNE_ACTION, id__gt=checkpoint.last_id or 0
    ).values_list("details", flat=True)
    for details in prunes:
        if isinstance(details, dict):
            removed += int(details.get("count") or 0)
            highest = max(highest, int(details.get("last_id") or 0))
    return removed, highest


def _gone_problem(checkpoint: Checkpoint, highest_pruned: int) -> str:
    """The checkpoint's newest record is no longer in the log: pruned, or removed."""
    if highest_pruned >= (checkpoint.last_id or 0):
        return ""  # a (chained, signed) prune took it away
    stats = AuditEvent.objects.aggregate(count=Count("id"), last=Max("id"))
    if not stats["count"]:
        return f"The log is empty, but {checkpoint.describe()} shows it was not: it was wiped."
    if stats["last"] < (checkpoint.last_id or 0):
        return (
            f"The log ends at #{stats['last']}, but {checkpoint.describe()} shows later "
            "records: records at the end were deleted (the log was rolled back)."
        )
    return f"Record #{checkpoint.last_id} of {checkpoint.describe()} is missing: it was deleted."


def checkpoint_problem(checkpoint: Checkpoint) -> str:
    """What is wrong with the log compared with the checkpoint ("" when it matches).

    Run it after the chain verified: the chain shows the records still link up; the checkpoint
    shows that the end the chain links up to is the one that existed when it was written.
    """
    if checkpoint.last_id is None:
        return ""  # the log was empty then; anything since is covered by the chain
    removed, highest_pruned = _removed_since(checkpoint)
    record = AuditEvent.objects.filter(pk=checkpoint.last_id).values("hash").first()
    if record is None:
        return _gone_problem(checkpoint, highest_pruned)
    if not macs_equal(record["hash"], checkpoint.head):
        return (
            f"Record #{checkpoint.last_id} no longer has the hash in {checkpoint.describe()}: "
            "the log was rewritten up to it (its hashes recomputed)."
        )
    present = AuditEvent.objects.filter(pk__lte=checkpoint.last_id).count()
    if present + removed != checkpoint.count:
        return (
            f"{checkpoint.count - removed - present} records up to #{checkpoint.last_id} "
            f"are missing compared with {checkpoint.describe()}."
        )
    return ""
