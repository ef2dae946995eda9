"""Tasks of the project itself; the connector and audit apps keep theirs in their own tasks.py."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="config.tasks.ping")
def ping(value: str = "pong") -> str:
    """Answer with `value`: proves a worker is consuming this broker's queue."""
    return value
