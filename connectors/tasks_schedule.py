"""Celery tasks of the schedule (loaded through CELERY_IMPORTS; connectors/tasks.py is the
batches').

- connectors.schedule_dispatch: beat runs it every minute; it queues each due connector's test
  with its jitter (a countdown inside the minute).
- connectors.schedule_run: one scheduled test, recorded as made by the scheduler.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from config.celery import task_send
from connectors import schedules


@shared_task(name="connectors.schedule_dispatch")
def schedule_dispatch() -> dict[str, int]:
    """Queue the connectors due now, each after its jitter."""
    due = schedules.schedule_due()
    for item in due:
        task_send(task=schedule_run, args=(item.connector_id,), countdown=item.countdown)
    return {"queued": len(due)}


@shared_task(name="connectors.schedule_run", acks_late=True)
def schedule_run(connector_id: int) -> dict[str, Any]:
    """One scheduled test of one connector."""
    return schedules.schedule_run(connector_id=connector_id)
