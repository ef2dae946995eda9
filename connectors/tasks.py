"""Celery tasks of the connector app: the connection tests of a batch, a chunk per task."""

from __future__ import annotations

from typing import Any

from celery import shared_task

# A task may run before the transaction that created its item commits (the messages are sent
# inside it, so a dead broker rolls the batch back): it waits for the item this long.
_MISSING_RETRIES = 20
_MISSING_COUNTDOWN = 0.25


@shared_task(
    bind=True,
    name="connectors.tasks.connector_test_task",
    # Acknowledged after the test: a worker killed mid-test leaves the message to be delivered
    # again; the item's claim (pending -> running) makes the redelivery a no-op or a requeue.
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=_MISSING_RETRIES,
    # The outcome is recorded in the batch's own tables; a stored task result is never read.
    ignore_result=True,
)
def connector_test_task(self: Any, batch_item_id: int) -> str:
    """Test the connector of one batch item and record it (connectors.batches.batch_item_run).

    Batches now queue connector_tests_task; this one still runs the messages an earlier
    version queued.
    """
    import threading

    from connectors import recording
    from connectors.batches import batch_item_run

    if threading.current_thread() is not threading.main_thread():
        # A threaded pool (--pool=threads) runs several tests at once in this process: their
        # recordings are committed in groups, as the command line's own runner does.
        recording.group_in_this_process()
    status = batch_item_run(item_id=batch_item_id)
    if status == "missing":
        if self.request.retries >= _MISSING_RETRIES:
            return status
        raise self.retry(countdown=_MISSING_COUNTDOWN)
    return status


@shared_task(
    bind=True,
    name="connectors.tasks.connector_tests_task",
    # As connector_test_task: a worker killed mid-chunk leaves the message to be delivered
    # again; the items it finished are not claimed again, those it left running are requeued.
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=_MISSING_RETRIES,
    ignore_result=True,
)
def connector_tests_task(self: Any, batch_item_ids: list[int]) -> dict[str, int]:
    """Test the connectors of some batch items at once, on threads of this task's own."""
    from connectors.batch_local import batch_items_run

    statuses = batch_items_run(item_ids=batch_item_ids)
    missing = [item_id for item_id, status in statuses.items() if status == "missing"]
    if missing and self.request.retries < _MISSING_RETRIES:
        raise self.retry(args=(missing,), countdown=_MISSING_COUNTDOWN)
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    return counts


@shared_task(name="connectors.tasks.batches_reap")
def batches_reap() -> int:
    """Reap every running batch (for beat, every minute): requeues or reports lost tests."""
    from connectors.batches import batch_reap
    from connectors.models_batch import Batch

    requeued = 0
    for batch_id in Batch.objects.filter(state=Batch.State.RUNNING).values_list("pk", flat=True):
        requeued += len(batch_reap(batch_id=batch_id))
    return requeued
