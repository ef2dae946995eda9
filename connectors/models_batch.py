"""A batch of connection tests started together (from the list, the CLI or a schedule).

A Batch says who started it, when, from which filter and how many; each BatchItem is one
connector's test, claimed by exactly one runner (a conditional UPDATE pending -> running) and
finished in the same transaction that records its run, so a test is never recorded twice.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Batch(models.Model):
    """Who started which tests, from which filter, and where they ran."""

    class Source(models.TextChoices):
        UI = "ui", "Connector list"
        CLI = "cli", "Command line"
        SCHEDULE = "schedule", "Schedule"
        API = "api", "API"

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        CANCELLED = "cancelled", "Cancelled"
        FINISHED = "finished", "Finished"

    class Runner(models.TextChoices):
        WORKERS = "workers", "Background workers"
        LOCAL = "local", "The command's own process"

    created_at = models.DateTimeField(default=timezone.now)
    # SET_NULL: a batch is history and outlives the account that started it.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    filter_description = models.CharField(max_length=500, blank=True)
    total = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    runner = models.CharField(max_length=16, choices=Runner.choices, default=Runner.WORKERS)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_by_name = models.CharField(max_length=150, blank=True)
    audit_event_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        default_permissions = ("view",)
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch #{self.pk} of {self.total}"


class BatchItem(models.Model):
    """One connector's test within a batch."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped (cancelled)"
        LOST = "lost", "Lost (worker stopped)"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    # By id and name, not a foreign key: the batch is history and outlives a deleted connector.
    connector_id = models.BigIntegerField()
    connector_name = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    claims = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    test_run_id = models.BigIntegerField(null=True, blank=True)
    ok = models.BooleanField(null=True)
    outcome = models.CharField(max_length=32, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        default_permissions = ()
        indexes = [models.Index(fields=["batch", "state"], name="batchitem_batch_state")]

    def __str__(self) -> str:
        return f"{self.connector_name} in batch #{self.batch_id}: {self.state}"
