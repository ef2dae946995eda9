"""The audit log: one append-only, hash-chained table, and the single-row head of the chain."""

from __future__ import annotations

from django.db import models
from django.urls import reverse
from django.utils import timezone

from audit.append_only import AppendOnlyModel

GENESIS_HASH = "0" * 64


class AuditEvent(AppendOnlyModel):
    """One thing that happened to a connector: a test run, a change, or a refused action.

    Users and connectors are named by id and name rather than foreign keys: the record must
    outlive them, and a delete must never cascade into (or rewrite) history.
    """

    class Kind(models.TextChoices):
        TEST_RUN = "test_run", "Test run"
        CHANGE = "change", "Change"
        DENIAL = "denial", "Denial"
        SYSTEM = "system", "System"

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    action = models.CharField(max_length=32)
    user_id = models.BigIntegerField(null=True, blank=True)
    username = models.CharField(max_length=150, blank=True)
    connector_id = models.BigIntegerField(null=True, blank=True)
    connector_name = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=16, blank=True)
    outcome = models.CharField(max_length=32, blank=True)
    summary = models.TextField(blank=True)
    # Already redacted when written: diffs carry only set/changed/cleared for secrets.
    details = models.JSONField(default=dict, blank=True)
    test_run = models.OneToOneField(
        "connectors.TestRun",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_event",
    )
    # SHA-256 of the previous record's hash and this record's canonical form (see audit.chain).
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["-id"]
        default_permissions = ("view",)
        verbose_name = "audit record"
        indexes = [
            models.Index(fields=["connector_id", "-id"], name="audit_connector_latest"),
            # Name search resolves to exact names first (see selectors); also deleted connectors.
            models.Index(fields=["connector_name", "-id"], name="audit_connector_name_latest"),
            models.Index(fields=["kind", "-id"], name="audit_kind_latest"),
            models.Index(fields=["outcome", "-id"], name="audit_outcome_latest"),
            models.Index(fields=["user_id", "-id"], name="audit_user_latest"),
            models.Index(fields=["created_at"], name="audit_created_at"),
        ]

    def __str__(self) -> str:
        # Deliberately no summary or details: __str__ ends up in logs and admin messages.
        return f"#{self.pk} {self.kind} {self.action} {self.connector_name}".rstrip()

    def __repr__(self) -> str:
        return f"<AuditEvent #{self.pk} {self.kind}/{self.action}>"

    def get_absolute_url(self) -> str:
        return reverse("audit:detail", kwargs={"pk": self.pk})


class AuditChainHead(models.Model):
    """The end of the chain, one row: appends lock it so two writers never fork the chain."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_event_id = models.BigIntegerField(null=True, blank=True)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"audit chain head at #{self.last_event_id}"
