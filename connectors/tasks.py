"""Celery tasks of the connector app: one connection test of a batch per task."""

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
)
def connector_test_task(self: Any, batch_item_id: int) -> str:
    """Test the connector of one batch item and record it (connectors.batches.batch_item_run)."""
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


@shared_task(name="connectors.tasks.batches_reap")
def batches_reap() -> int:
    """Reap every running batch (for beat, every minute): requeues or reports lost tests."""
    from connectors.batches import batch_reap
    from connectors.models_batch import Batch

    requeued = 0
    for batch_id in Batch.objects.filter(state=Batch.State.RUNNING).values_list("pk", flat=True):
        requeued += len(batch_reap(batch_id=batch_id))
    return requeued
