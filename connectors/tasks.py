"""Celery tasks of the connector app: the connection tests of a batch, a chunk per task."""

from __future__ import annotations

from collections import Counter
from typing import Any

from celery import shared_task

# A task may run before the transaction that created its item commits (the messages are sent
# inside it, so a dead broker rolls the batch back): it waits for the item this long.
_MISSING_RETRIES = 20
_MISSING_COUNTDOWN = 0.25


# Both batch tasks: acknowledged after the tests, so a worker killed mid-task leaves the message
# to be delivered again (the items' claims, pending -> running, make a redelivery a no-op for
# finished items and a requeue for those left running); retried while their items are not
# committed yet; no stored result (the outcome is in the batch's own tables, never read back).
_BATCH_TASK: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": _MISSING_RETRIES,
    "ignore_result": True,
}


@shared_task(name="connectors.tasks.connector_test_task", **_BATCH_TASK)
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


@shared_task(name="connectors.tasks.connector_tests_task", **_BATCH_TASK)
def connector_tests_task(self: Any, batch_item_ids: list[int]) -> dict[str, int]:
    """Test the connectors of some batch items at once, on this worker process's item threads
    (connectors.batch_local.batch_items_run); retry those whose rows are not committed yet."""
    from connectors.batch_local import batch_items_run

    statuses = batch_items_run(item_ids=batch_item_ids)
    missing = [item_id for item_id, status in statuses.items() if status == "missing"]
    if missing and self.request.retries < _MISSING_RETRIES:
        raise self.retry(args=(missing,), countdown=_MISSING_COUNTDOWN)
    return dict(Counter(statuses.values()))


@shared_task(name="connectors.tasks.batches_reap")
def batches_reap() -> int:
    """Reap every running batch (for beat, every minute): requeues or reports lost tests."""
    from connectors.batches import batch_reap
    from connectors.models_batch import Batch

    requeued = 0
    for batch_id in Batch.objects.filter(state=Batch.State.RUNNING).values_list("pk", flat=True):
        requeued += len(batch_reap(batch_id=batch_id))
    return requeued
