"""Audit log entry points used by the rest of the app: append a record, prune old ones."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from audit.append_only import pruning
from audit.chain import PRUNE_ACTION, event_hash
from audit.keys import current_chain_keys
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent, TestAttempt, TestRun
from audit.permits import PrunePermitError, permit_close, permit_use
from audit.sanitize import NO_SECRETS, Secrets, connector_secrets, details_redact

logger = logging.getLogger("audit")

KINDS = frozenset(AuditEvent.Kind.values)


class AuditWriteError(RuntimeError):
    """The audit record could not be written; the action it describes must not pass silently."""

    def __init__(self, message: str = "", *, reason: str = "") -> None:
        self.reason = reason
        super().__init__(
            message
            or "The audit log could not record this action, so it was not completed. "
            "Try again; if it keeps failing, tell an administrator."
        )


def _lock_head() -> AuditChainHead:
    """Lock the chain head for this transaction (every append and prune takes it, one at a time).

    On SQLite the IMMEDIATE transaction mode already serialises writers; on PostgreSQL the row
    lock does. If the row is missing it is created from the newest record, never from scratch,
    so the chain cannot restart in the middle.
    """
    locked = AuditChainHead.objects.select_for_update()
    head = locked.filter(pk=1).first()
    if head is not None:
        return head
    last = AuditEvent.objects.order_by("-id").values("id", "hash").first()
    try:
        with transaction.atomic():
            return AuditChainHead.objects.create(
                pk=1,
                last_event_id=last["id"] if last else None,
                last_hash=last["hash"] if last else GENESIS_HASH,
            )
    except IntegrityError:  # another writer created it first: wait for and lock theirs
        return locked.get(pk=1)


def _load_run(test_run: Any) -> tuple[Any, list[Any]]:
    """The run and its attempts as stored, so the hash covers exactly what the database holds."""
    run = TestRun._default_manager.get(pk=test_run.pk)
    attempts = list(TestAttempt._default_manager.filter(run=run).order_by("position", "id"))
    return run, attempts


def _refuse_unkeyed_after_keyed(head: AuditChainHead) -> None:
    """Once the log is keyed, an unkeyed record would read as a forgery: refuse to write one."""
    if head.last_event_id is None:
        return
    last_key = (
        AuditEvent.objects.filter(pk=head.last_event_id).values_list("key_id", flat=True).first()
    )
    if last_key:
        raise AuditWriteError(
            "AUDIT_CHAIN_KEY is not set, but the audit log is signed with a chain key: set the "
            "key again before recording anything.",
            reason="chain_key_missing",
        )


def _append(event: AuditEvent, *, test_run: Any = None) -> AuditEvent:
    with transaction.atomic():
        head = _lock_head()
        run, attempts = _load_run(test_run) if test_run is not None else (None, [])
        event.created_at = timezone.now()
        event.prev_hash = head.last_hash
        keys = current_chain_keys()
        if keys.signing_key is None:
            _refuse_unkeyed_after_keyed(head)
        event.key_id = keys.signing_key_id
        event.hash = event_hash(event, run, attempts, keys=keys)
        event.save()
        head.last_event_id = event.pk
        head.last_hash = event.hash
        head.save(update_fields=["last_event_id", "last_hash", "updated_at"])
    return event


def _user_fields(user: Any) -> tuple[int | None, str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return None, ""
    return user.pk, user.get_username()


def _fill_from_run(event: AuditEvent, test_run: Any, secrets: Secrets) -> None:
    """Link the run, and take from it whatever the caller left out."""
    if test_run.pk is None:
        raise ValueError("save the test run and its attempts before recording it")
    event.test_run_id = test_run.pk
    if event.connector_id is None:
        event.connector_id = test_run.connector_id
    event.connector_name = event.connector_name or test_run.connector_name
    if event.user_id is None and test_run.user_id is not None:
        event.user_id, event.username = test_run.user_id, test_run.username
    event.source = event.source or test_run.source
    event.outcome = event.outcome or test_run.outcome
    event.summary = event.summary or secrets.text(test_run.message)


def audit_record(
    *,
    kind: str,
    action: str,
    user: Any = None,
    connector: Any = None,
    connector_name: str = "",
    outcome: str = "",
    summary: str = "",
    details: dict | None = None,
    test_run: Any = None,
    connector_id: int | None = None,
    source: str = "",
) -> AuditEvent:
    """Append one record to the audit log, redacted, chained to the previous one.

    Call it inside the transaction of the action it records. `connector_id` names a connector
    that is already deleted (its pk is gone). For a test run, the run and its attempts must be
    saved first; missing user/connector/outcome/summary/source are taken from the run.
    Raises AuditWriteError (after logging to the "audit" logger) if the record is not written.
    """
    name = connector_name or getattr(connector, "name", "") or ""
    secrets: Secrets = NO_SECRETS
    try:
        if kind not in KINDS:
            raise ValueError(f"unknown audit kind {kind!r}")
        if not action:
            raise ValueError("an audit record needs an action")
        secrets = connector_secrets(connector)
        user_id, username = _user_fields(user)
        event = AuditEvent(
            kind=kind,
            action=str(action)[:32],
            user_id=user_id,
            username=username,
            connector_id=connector_id
            if connector_id is not None
            else getattr(connector, "pk", None),
            connector_name=str(name)[:64],
            source=str(source)[:16],
            outcome=str(outcome or "")[:32],
            summary=secrets.text(summary),
            details=details_redact(details, secrets=secrets),
        )
        if test_run is not None:
            _fill_from_run(event, test_run, secrets)
        return _append(event, test_run=test_run)
    except Exception as exc:  # every failure must become loud, never silent
        # The exception text may quote values (SQL parameters, reprs); log only what is safe.
        logger.error(
            "Audit record NOT written: kind=%s action=%s connector=%s user=%s: %s: %s",
            kind,
            action,
            name or "-",
            getattr(user, "pk", None),
            type(exc).__name__,
            secrets.text(str(exc))[:300],
        )
        raise AuditWriteError(reason=type(exc).__name__) from None


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
