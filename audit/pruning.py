"""Pruning the audit log.

Records older than a cutoff are removed, and the removal is itself recorded in the chain, so
verification still passes.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max, Min

from audit.append_only import pruning
from audit.chain import PRUNE_ACTION
from audit.keys import current_chain_keys
from audit.models import AuditEvent, TestAttempt, TestRun
from audit.permits import PrunePermitError, permit_close, permit_use
from audit.services import AuditWriteError, _append, _lock_head, _user_fields

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneResult:
    count: int
    first_id: int | None = None
    last_id: int | None = None
    end_hash: str = ""
    test_runs: int = 0
    attempts: int = 0
    record: AuditEvent | None = None


def _open_for_pruning() -> int | None:
    """On PostgreSQL, use a one-time permit so the triggers let this transaction delete."""
    if connection.vendor != "postgresql":
        return None  # no database triggers here: the ORM refusal and the chain guard history
    try:
        return permit_use(current_chain_keys())
    except PrunePermitError as exc:
        raise AuditWriteError(str(exc), reason="prune_permit") from None


def audit_prune(*, cutoff: dt.datetime, user: Any = None) -> PruneResult:
    """Remove the leading stretch of the chain older than `cutoff`, with its test runs.

    The records removed are those before the first record at or after the cutoff; the removal
    is itself recorded (range, count and the hash it ends on), and that record tells the
    verifier where the chain now starts.
    """
    with transaction.atomic():
        _lock_head()
        keep_from = (
            AuditEvent.objects.filter(created_at__gte=cutoff)
            .order_by("id")
            .values_list("id", flat=True)
            .first()
        )
        doomed = AuditEvent.objects.all()
        if keep_from is not None:
            doomed = doomed.filter(id__lt=keep_from)
        stats = doomed.aggregate(first=Min("id"), last=Max("id"), count=Count("id"))
        if not stats["count"]:
            return PruneResult(count=0)
        doomed = AuditEvent.objects.filter(id__lte=stats["last"])
        end_hash = doomed.filter(pk=stats["last"]).values_list("hash", flat=True).get()
        run_ids = doomed.filter(test_run__isnull=False).values("test_run_id")
        permits_left = _open_for_pruning()
        with pruning():
            attempts = TestAttempt._default_manager.filter(run_id__in=run_ids)._raw_delete(
                TestAttempt._default_manager.db
            )
            runs = TestRun._default_manager.filter(pk__in=run_ids)._raw_delete(
                TestRun._default_manager.db
            )
            removed = doomed.prune_delete()
        if permits_left is not None:
            permit_close()  # these deletes, and no later ones in the same transaction
        record = _append(
            AuditEvent(
                kind=AuditEvent.Kind.SYSTEM,
                action=PRUNE_ACTION,
                user_id=_user_fields(user)[0],
                username=_user_fields(user)[1],
                source="cli",
                outcome="ok",
                summary=f"Removed {removed} audit records #{stats['first']}–#{stats['last']} "
                f"older than {cutoff:%Y-%m-%d %H:%M} UTC, with {runs} test runs",
                details={
                    "first_id": stats["first"],
                    "last_id": stats["last"],
                    "count": removed,
                    "end_hash": end_hash,
                    "cutoff": cutoff.astimezone(dt.UTC).isoformat(),
                    "test_runs": runs,
                    "attempts": attempts,
                    **({"permits_left": permits_left} if permits_left is not None else {}),
                },
            )
        )
    logger.info("Audit log pruned: %s records #%s-#%s", removed, stats["first"], stats["last"])
    return PruneResult(removed, stats["first"], stats["last"], end_hash, runs, attempts, record)
