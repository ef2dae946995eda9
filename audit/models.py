"""The audit log: one append-only, hash-chained table, the single-row head of the chain, and the
connection-test runs and attempts that the log's records hash."""

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
        "audit.TestRun",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_event",
    )
    # HMAC-SHA256 (or, for records written before AUDIT_CHAIN_KEY existed, plain SHA-256) of the
    # previous record's hash and this record's canonical form (see audit.chain).
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)
    # Which AUDIT_CHAIN_KEY signed the hash (audit.keys.key_id); blank: unkeyed SHA-256.
    # The database default keeps bulk loads that predate the column (benchmarks, COPY) working.
    key_id = models.CharField(max_length=16, blank=True, default="", db_default="", editable=False)

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


class AuditPrunePermit(models.Model):
    """One-time permits that let audit_prune delete history on PostgreSQL, one row.

    `next_hash` is the end of a hash chain whose start (the seed) is derived from the chain key:
    each prune reveals the previous link, and a database trigger accepts the change only if its
    SHA-256 is the stored value, then lets deletes through in that transaction alone. Whoever
    lacks the key cannot produce the next link, whatever they set in their session.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    key_id = models.CharField(max_length=16)
    remaining = models.PositiveIntegerField()
    next_hash = models.CharField(max_length=64)
    used_txid = models.BigIntegerField(null=True, blank=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"audit prune permits ({self.remaining} left)"


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


class TestRun(AppendOnlyModel):
    """One press of "Test connection" (or its command-line twin) and what came of it.

    Runs outlive their connector: they are audit history, so they name the connector by id and
    name instead of a foreign key that a delete would cascade through or rewrite.
    """

    class Source(models.TextChoices):
        SAVED = "saved", "Saved configuration"
        FORM = "form", "Unsaved form values"
        CLI = "cli", "Command line"
        BACKGROUND = "background", "Background"

    __test__ = False  # not a pytest test class, despite the name

    # Null for a test of a connector that was never saved (the New connector form). Indexed
    # by testrun_connector_latest; the name is never looked up here (the audit log's is), and
    # every index is written by every recording.
    connector_id = models.BigIntegerField(null=True, blank=True)
    connector_name = models.CharField(max_length=64)
    user_id = models.BigIntegerField(null=True, blank=True)
    username = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=False)
    outcome = models.CharField(max_length=32)
    message = models.TextField(blank=True)
    hint = models.TextField(blank=True)
    client_authentication_used = models.CharField(max_length=32, blank=True)
    # Token facts only (type, expiry, scope, hash, JWT claims): never the token itself.
    token = models.JSONField(null=True, blank=True)
    # The configuration that was tested, secrets reduced to "set"/"not set".
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        # Moved from the connectors app without moving data: the table keeps its name.
        db_table = "connectors_testrun"
        indexes = [models.Index(fields=["connector_id", "-id"], name="testrun_connector_latest")]

    def __str__(self) -> str:
        return f"{self.connector_name} {self.outcome} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class TestAttempt(AppendOnlyModel):
    """One HTTP exchange within a test run, stored already masked and redacted."""

    class Step(models.TextChoices):
        TOKEN = "token", "Token request"
        API = "api", "API request"

    __test__ = False

    # Indexed by attempt_position_unique (run, position), which a lookup by run uses.
    run = models.ForeignKey(
        TestRun, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    position = models.PositiveSmallIntegerField()
    step = models.CharField(max_length=8, choices=Step.choices, default=Step.TOKEN)
    client_authentication = models.CharField(max_length=32, blank=True)
    method = models.CharField(max_length=8)
    url = models.CharField(max_length=2048)
    request_headers = models.JSONField(default=list)
    request_body = models.JSONField(default=list)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=list)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=32)
    message = models.TextField(blank=True)
    curl = models.TextField(blank=True)

    class Meta:
        db_table = "connectors_testattempt"
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="attempt_position_unique")
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.client_authentication or self.step} {self.outcome}"
