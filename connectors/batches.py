"""Batches of connection tests: start, claim, run, cancel, reap, and read progress.

One code path runs an item wherever it runs: `batch_item_run` is what the Celery task
(connectors.tasks.connector_tests_task, through connectors.batch_local) calls on a worker, and
what the CLI's own runner calls when no worker is reachable. An item is claimed with a
conditional UPDATE (pending -> running), and finished by the same transaction that records its
test run, so no test is recorded twice; an item whose worker died is found by its expired lease
(`batch_reap`) and requeued once, then reported lost.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent, TestRun
from audit.services import AuditWriteError, audit_record
from connectors import lean_sql
from connectors.connection_test import (
    connector_test,
    connector_test_rate_check,
    params_preloaded,
)
from connectors.explain import outcome_label
from connectors.health import HealthState
from connectors.models import Connector, TokenRequestParam
from connectors.models_batch import Batch, BatchItem
from connectors.rules.testing import TestRefused
from connectors.selectors import ConnectorListFilters, connector_list
from connectors.services import acting_user

logger = logging.getLogger(__name__)

# An item is requeued once after its worker vanished; a second loss is reported, not retried.
MAX_CLAIMS = 2
OPEN_STATES = (BatchItem.State.PENDING, BatchItem.State.RUNNING)
RUNNER_UNREACHABLE_TEXT = (
    "Nothing was started: the background runner is not reachable. Try again in a minute; if it "
    "keeps failing, tell an administrator (the worker or its broker is down)."
)
HEALTH_CHOICES = tuple(state.value for state in HealthState)


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.CONNECTORS_BATCH_LEASE_SECONDS)


class StaleClaim(Exception):
    """A runner finished an item that was requeued after its lease expired."""


def _send_items(item_ids: Sequence[int]) -> None:
    """Queue a task per CONNECTORS_BATCH_CHUNK items (RunnerUnreachable if the broker is down).

    A message costs a worker more than a test's recording (and the embedded queue lists its
    folder for each); a worker runs a message's items at once, on its kept item threads.
    """
    from config.celery import task_send
    from connectors.tasks import connector_tests_task

    size = settings.CONNECTORS_BATCH_CHUNK
    for start in range(0, len(item_ids), size):
        task_send(task=connector_tests_task, args=(list(item_ids[start : start + size]),))


def batch_start(
    *,
    user_or_system: Any,
    connector_ids: Sequence[int],
    filter_description: str = "",
    source: str = Batch.Source.UI,
    dispatch: bool = True,
) -> Batch:
    """Create a batch of tests of `connector_ids` and queue them on the workers.

    `user_or_system`: the user who asked, or None for the scheduler / command line. All rows and
    the batch's audit record are written, and every task queued, in one transaction: when the
    broker is down RunnerUnreachable is raised and nothing is left behind. `dispatch=False` only
    creates the batch, for a runner in this process (`batch_run_local`). A user's batch counts as
    one action against the test rate limit (TestRateLimited).
    """
    actor = acting_user(user_or_system)
    connectors = list(
        Connector.objects.filter(pk__in=list(connector_ids))
        .order_by("name")
        .values_list("pk", "name")
    )
    if actor is not None:
        connector_test_rate_check(user=actor)
    with transaction.atomic():
        batch = Batch.objects.create(
            created_by=cast(Any, actor),
            created_by_name=actor.get_username() if actor else "",
            source=source,
            filter_description=filter_description[:500],
            total=len(connectors),
            runner=Batch.Runner.WORKERS if dispatch else Batch.Runner.LOCAL,
        )
        # A waiting item's deadline for a runner to claim it: one still unclaimed after it (its
        # message lost with a killed worker) is queued again by the reaper (batch_reap).
        claim_by = timezone.now() + _lease() if dispatch else None
        items = BatchItem.objects.bulk_create(
            BatchItem(batch=batch, connector_id=pk, connector_name=name, lease_until=claim_by)
            for pk, name in connectors
        )
        if not connectors:
            batch_finish_if_done(batch.pk)
        if dispatch:
            # Inside the transaction: a dead broker rolls every row back. A task that runs
            # before the commit finds no item yet and retries (connectors.tasks).
            _send_items([item.pk for item in items])
        # Last: the audit append locks the chain head until the commit, so nothing slow (like
        # queueing 1,000 messages) may come after it.
        event = audit_record(
            kind=AuditEvent.Kind.SYSTEM,
            action="batch_test",
            user=actor,
            source=source,
            summary=f"Started a batch test of {len(connectors)} connectors"
            + (f" ({filter_description[:200]})" if filter_description else "")
            + ".",
            details={"batch": batch.pk, "total": len(connectors), "filter": filter_description},
        )
        Batch.objects.filter(pk=batch.pk).update(audit_event_id=event.pk)
        batch.audit_event_id = event.pk
    return batch


def batch_item_claim(*, item_id: int) -> int | None:
    """Claim a pending item for this runner; returns the claim number, or None if not ours.

    One conditional UPDATE: of two runners (a redelivered message, a requeue) only one matches.
    Cancelling turns pending items into skipped ones in its own UPDATE, so a cancelled batch's
    items can't be claimed either.
    """
    rows = lean_sql.fetch(_claim_sql(lean_sql.vendor()), _claim_params(item_id))
    return rows[0][0] if rows else None


def _claim_params(item_id: int) -> list[Any]:
    now = timezone.now()
    values = _item_values(state=BatchItem.State.RUNNING, lease_until=now + _lease(), started_at=now)
    return [*values, item_id, BatchItem.State.PENDING]


@functools.cache
def _connector_of_item_sql(vendor: str) -> str:
    """The connector an item names, as a subquery (built once, as every item runs it)."""
    return (
        f"SELECT {lean_sql.column(BatchItem, 'connector_id')} "  # noqa: S608
        f"FROM {lean_sql.table(BatchItem)} WHERE {lean_sql.column(BatchItem, 'id')} = %s"
    )


@dataclass(frozen=True)
class _Claimed:
    claim: int
    batch_id: int
    created_by_id: int | None
    connector: Connector | None  # None: deleted since the batch started


def _claim_and_load(item_id: int) -> _Claimed | None:
    """batch_item_claim, and the item's connector with its params, in one round trip
    (PostgreSQL); None if the item is not ours to run."""
    vendor = lean_sql.vendor()
    connector_of_item = _connector_of_item_sql(vendor)
    rows, (connectors, params) = lean_sql.fetch_and_load(
        _claim_sql(vendor),
        _claim_params(item_id),
        [
            lean_sql.Load(Connector, "pk", connector_of_item, [item_id]),
            lean_sql.Load(TokenRequestParam, "connector", connector_of_item, [item_id]),
        ],
    )
    if not rows:
        return None
    claim, batch_id, created_by_id = rows[0]
    connector = connectors[0] if connectors else None
    if connector is not None:
        params_preloaded(connector, params)
    return _Claimed(claim, batch_id, created_by_id, connector)


# The statements every item runs, built once (connectors.lean_sql): through the ORM they cost
# more Python than the rest of recording a test.
_CLAIM_SETS = ("state", "lease_until", "started_at")
_FINISH_SETS = (
    "state", "test_run_id", "ok", "outcome", "duration_ms", "finished_at", "lease_until",
)  # fmt: skip


def _item_values(**values: Any) -> list[Any]:
    return lean_sql.prep_all(BatchItem, values)


def _item_update_sql(sets: Sequence[str], where: Sequence[str]) -> str:
    column = functools.partial(lean_sql.column, BatchItem)
    assignments = ", ".join(f"{column(name)} = %s" for name in sets)
    conditions = " AND ".join(f"{column(name)} = %s" for name in where)
    # Identifiers come from the model's metadata; every value is a query parameter.
    return f"UPDATE {lean_sql.table(BatchItem)} SET {assignments} WHERE {conditions}"  # noqa: S608


@functools.cache
def _claim_sql(vendor: str) -> str:
    """The claim: pending -> running, claims + 1; it returns the claim, the batch, and who
    started the batch."""
    column = functools.partial(lean_sql.column, BatchItem)
    item, batch = lean_sql.table(BatchItem), lean_sql.table(Batch)
    update = _item_update_sql(_CLAIM_SETS, ("id", "state"))
    claims = column("claims")
    started_by = (
        f"(SELECT {lean_sql.column(Batch, 'created_by')} FROM {batch} "  # noqa: S608
        f"WHERE {batch}.{lean_sql.column(Batch, 'id')} = {item}.{column('batch')})"
    )
    return update.replace(" SET ", f" SET {claims} = {claims} + 1, ", 1) + (
        f" RETURNING {claims}, {column('batch')}, {started_by}"
    )


@functools.cache
def _finish_sql(vendor: str) -> str:
    return _item_update_sql(_FINISH_SETS, ("id", "claims", "state"))


def _batch_creator(user_id: int | None) -> Any:
    """Who started the batch (read fresh for each item: an id names one user only for now)."""
    if user_id is None:
        return None
    found = lean_sql.load(get_user_model(), "pk", user_id)
    return found[0] if found else None


def _item_finish(item_id: int, claim: int, run: TestRun, then: Callable[[int], Any]) -> None:
    """Mark a running item done with its run's result, riding with the recording's next round
    trip; then(0) when the claim is no longer ours."""
    values = _item_values(
        state=BatchItem.State.DONE,
        test_run_id=run.pk,
        ok=run.ok,
        outcome=run.outcome,
        duration_ms=run.duration_ms,
        finished_at=timezone.now(),
        lease_until=None,
    )
    params = [*values, item_id, claim, BatchItem.State.RUNNING]
    lean_sql.ride(_finish_sql(lean_sql.vendor()), params, then)


def batch_item_run(*, item_id: int, finish_batch: bool = True) -> str:
    """Claim and run one item: "done", "not-claimed" (taken, cancelled, gone) or "missing".

    With finish_batch, the batch is marked finished if this was its last open item; a runner
    that finishes the batch itself once all its items are run passes False.
    """
    claimed = _claim_and_load(item_id)
    if claimed is None:
        # Still pending: the claim ran before the batch's transaction committed (its messages
        # go out inside it), like an item not there yet. Otherwise another runner has it.
        state = BatchItem.objects.filter(pk=item_id).values_list("state", flat=True).first()
        return "missing" if state in (None, BatchItem.State.PENDING) else "not-claimed"
    claim, batch_id, connector = claimed.claim, claimed.batch_id, claimed.connector
    if connector is None:
        BatchItem.objects.filter(pk=item_id, claims=claim).update(
            state=BatchItem.State.DONE, ok=False, outcome="deleted", finished_at=timezone.now()
        )
        batch_finish_if_done(batch_id)
        return "done"

    def finished(count: int) -> None:
        if not count:
            # Our lease ran out and the item was requeued: the other claim records it. Raising
            # rolls this recording back, so the test is never recorded twice.
            raise StaleClaim(item_id)

    def finish(run: TestRun) -> None:
        # In the recording transaction: the item is done exactly when its run is stored.
        _item_finish(item_id, claim, run, finished)

    try:
        connector_test(
            connector=connector,
            user=_batch_creator(claimed.created_by_id),
            source=TestRun.Source.BACKGROUND,
            batch_id=batch_id,
            on_recorded=finish,
        )
    except AuditWriteError as exc:
        if exc.reason != StaleClaim.__name__:
            raise
        logger.warning("Batch item %s outlived its lease; its later claim records it", item_id)
        return "stale"
    except TestRefused as exc:  # e.g. a disabled connector: recorded as a refusal already
        BatchItem.objects.filter(pk=item_id, claims=claim).update(
            state=BatchItem.State.DONE, ok=False, outcome=exc.action, finished_at=timezone.now()
        )
    if finish_batch:
        batch_finish_if_done(batch_id)
    return "done"


def workers_reachable(*, timeout: float = 1.0) -> bool:
    """A broker answers AND a worker consumes our queue (a ping task, or a control ping)."""
    from config.celery import app, broker_check, task_send
    from config.tasks import ping

    if broker_check(timeout=timeout):
        return False
    try:
        if app.conf.result_backend:
            # Expires: a ping no worker took must not wait in the queue for a later one.
            result = task_send(task=ping, args=("batch",), expires=timeout * 3)
            return bool(result.get(timeout=timeout * 2) == "batch")
        return bool(app.control.ping(timeout=timeout))
    except Exception:  # noqa: BLE001 - no answer in time means no worker
        return False


def batch_wait(*, batch: Batch, poll: float = 0.2, timeout: float | None = None) -> Batch:
    """Wait until no item of the batch waits or runs (reaping lost ones); returns it fresh."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        batch_reap(batch_id=batch.pk)
        batch.refresh_from_db()
        if not BatchItem.objects.filter(batch=batch, state__in=OPEN_STATES).exists():
            return batch
        if deadline is not None and time.monotonic() > deadline:
            return batch
        time.sleep(poll)


@functools.cache
def _open_item_sql(vendor: str) -> str:
    """Whether a batch still has an item waiting or running (uses the (batch, state) index)."""
    column = functools.partial(lean_sql.column, BatchItem)
    return (
        f"SELECT 1 FROM {lean_sql.table(BatchItem)} WHERE {column('batch')} = %s "  # noqa: S608
        f"AND {column('state')} IN (%s, %s) LIMIT 1"
    )


def batch_finish_if_done(batch_id: int) -> None:
    """Mark a running batch finished once no item is waiting or running."""
    if lean_sql.fetch(_open_item_sql(lean_sql.vendor()), [batch_id, *OPEN_STATES]):
        return
    Batch.objects.filter(pk=batch_id, state=Batch.State.RUNNING).update(
        state=Batch.State.FINISHED, finished_at=timezone.now()
    )


def batch_cancel(*, batch: Batch, user: Any) -> int:
    """Skip every waiting item (running ones finish); returns how many were skipped."""
    actor = acting_user(user)
    with transaction.atomic():
        skipped = BatchItem.objects.filter(batch=batch, state=BatchItem.State.PENDING).update(
            state=BatchItem.State.SKIPPED, finished_at=timezone.now()
        )
        changed = Batch.objects.filter(pk=batch.pk, state=Batch.State.RUNNING).update(
            state=Batch.State.CANCELLED,
            cancelled_by_name=actor.get_username() if actor else "",
            finished_at=timezone.now(),
        )
        if changed:
            audit_record(
                kind=AuditEvent.Kind.SYSTEM,
                action="batch_cancel",
                user=actor,
                summary=f"Cancelled batch #{batch.pk}: {skipped} waiting tests skipped.",
                details={"batch": batch.pk, "skipped": skipped},
            )
    batch.refresh_from_db()
    return skipped


def batch_reap(*, batch_id: int, requeue: bool = True) -> list[int]:
    """Items whose lease expired (their worker died): requeue once, else mark them lost.

    Returns the ids requeued. Called when the batch page or the CLI looks at the batch, so a
    batch whose worker was killed still finishes, or says which tests were lost.

    A queued or requeued item waits with a deadline (`lease_until`, one lease) for a runner to
    claim it.
    Marking it waiting and queueing its message cannot be one transaction (a runner may take
    the message before the mark commits, find the item still running and drop it), so the mark
    comes first, and an item still unclaimed past its deadline is queued again by a later reap:
    when the broker is down (RunnerUnreachable) or a message is lost, no item is left waiting
    for a message that never comes. A second message is harmless: only one claim matches.
    """
    now = timezone.now()
    expired = BatchItem.objects.filter(
        batch_id=batch_id, state=BatchItem.State.RUNNING, lease_until__lt=now
    )
    lost = expired.filter(Q(claims__gte=MAX_CLAIMS) | Q(batch__state=Batch.State.CANCELLED))
    lost.update(state=BatchItem.State.LOST, finished_at=now, lease_until=None)
    again = list(expired.filter(claims__lt=MAX_CLAIMS).values_list("pk", flat=True))
    requeued: list[int] = []
    for item_id in again:
        if BatchItem.objects.filter(
            pk=item_id, state=BatchItem.State.RUNNING, lease_until__lt=now
        ).update(state=BatchItem.State.PENDING, lease_until=now + _lease()):
            requeued.append(item_id)
    if requeue and Batch.objects.filter(pk=batch_id, runner=Batch.Runner.WORKERS).exists():
        _send_unclaimed(batch_id, requeued, now)
    batch_finish_if_done(batch_id)
    return requeued


def _send_unclaimed(batch_id: int, requeued: list[int], now: dt.datetime) -> None:
    """Queue the items just requeued, and those queued earlier that no runner claimed."""
    waiting = BatchItem.objects.filter(batch_id=batch_id, state=BatchItem.State.PENDING)
    unclaimed = list(waiting.filter(lease_until__lt=now).values_list("pk", flat=True))
    if not (requeued or unclaimed):
        return
    BatchItem.objects.filter(pk__in=unclaimed, state=BatchItem.State.PENDING).update(
        lease_until=now + _lease()
    )
    try:
        _send_items([*requeued, *unclaimed])
    except Exception:
        # Not queued (the broker is down): due again at once, so the next reap retries them.
        waiting.filter(pk__in=[*requeued, *unclaimed]).update(lease_until=now)
        raise


@dataclass
class BatchProgress:
    """What the batch page and the JSON endpoint show."""

    batch: Batch
    counts: dict[str, int] = field(default_factory=dict)
    ok: int = 0
    failed: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)

    @property
    def finished_count(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("done", "skipped", "lost"))

    @property
    def percent(self) -> int:
        total = self.batch.total
        return 100 if not total else int(100 * self.finished_count / total)


def batch_progress(*, batch: Batch) -> BatchProgress:
    """Counts per item state, passed/failed, and outcomes, in two queries."""
    rows = BatchItem.objects.filter(batch=batch).values("state").annotate(n=Count("id"))
    counts = {row["state"]: row["n"] for row in rows}
    outcomes = (
        BatchItem.objects.filter(batch=batch, state=BatchItem.State.DONE)
        .values("outcome", "ok")
        .annotate(n=Count("id"))
    )
    by_outcome: Counter[str] = Counter()
    ok = failed = 0
    for row in outcomes:
        by_outcome[row["outcome"]] += row["n"]
        if row["ok"]:
            ok += row["n"]
        else:
            failed += row["n"]
    return BatchProgress(
        batch=batch, counts=counts, ok=ok, failed=failed, by_outcome=dict(by_outcome)
    )


def batch_items(*, batch: Batch, after: int = 0) -> list[BatchItem]:
    """Items of a batch in order (those after id `after` only, for polling)."""
    return list(BatchItem.objects.filter(batch=batch, pk__gt=after).order_by("id"))


def batch_list(*, limit: int = 20) -> list[Batch]:
    """The most recent batches."""
    return list(Batch.objects.order_by("-id")[:limit])


# --- Choosing connectors: connectors_test_all's filter, shared with POST /api/v1/batches/ -----


class BatchSelectionError(ValueError):
    """The filter names unknown connectors, or matches none; the message says which."""

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(message)


def batch_connector_ids(*, names: Sequence[str], health: str | None, search: str) -> list[int]:
    """Connectors matching the list filter (search, health), limited to `names` when given."""
    filters = ConnectorListFilters(query=search.strip(), health=health or "")
    queryset = connector_list(filters=filters)
    if names:
        known = set(Connector.objects.filter(name__in=names).values_list("name", flat=True))
        unknown = sorted(set(names) - known)
        if unknown:
            raise BatchSelectionError(
                f"No connector named {', '.join(unknown)}.", field="connector"
            )
        wanted = set(names)
        ids = [c.pk for c in queryset if c.name in wanted]
    else:
        ids = [c.pk for c in queryset]
    if not ids:
        raise BatchSelectionError("No connector matches.", field="request")
    return ids


def batch_filter_description(*, names: Sequence[str], health: str | None, search: str) -> str:
    """The selection in words, stored on the batch."""
    parts = [f"connector={name}" for name in names]
    if health:
        parts.append(f"health={health}")
    if search:
        parts.append(f"q={search}")
    return ", ".join(parts) or "all connectors"


# --- The progress document: the batch page polls it, GET /api/v1/batches/{id}/ returns it ----


def batch_item_json(item: BatchItem) -> dict[str, Any]:
    """One item of the progress document."""
    return {
        "id": item.pk,
        "connector": item.connector_name,
        "url": reverse("connectors:detail", args=[item.connector_name]),
        "state": item.state,
        "state_label": item.get_state_display(),
        "ok": item.ok,
        "outcome": item.outcome,
        "outcome_label": outcome_label(item.outcome) if item.outcome else "",
        "duration_ms": item.duration_ms,
    }


def progress_json(progress: BatchProgress) -> dict[str, Any]:
    """The counts of the JSON document the batch page polls."""
    batch = progress.batch
    return {
        "batch": batch.pk,
        "state": batch.state,
        "state_label": batch.get_state_display(),
        "total": batch.total,
        "finished": progress.finished_count,
        "percent": progress.percent,
        "ok": progress.ok,
        "failed": progress.failed,
        "counts": progress.counts,
        "by_outcome": progress.by_outcome,
    }


def batch_progress_document(*, batch: Batch) -> dict[str, Any]:
    """Reap lost tests, then the batch's counts and every item (the page's progress JSON).

    Looking at a batch finds tests whose worker died, so the batch can still finish; requeueing
    them raises RunnerUnreachable when the broker is down.
    """
    batch_reap(batch_id=batch.pk)
    batch.refresh_from_db()
    document = progress_json(batch_progress(batch=batch))
    document["items"] = [batch_item_json(item) for item in batch_items(batch=batch)]
    return document
