"""Models of the fleet: each connector's health, the re-validation schedule, notifying owners.

Imported by connectors.models, so Django finds them in the connectors app. Foreign keys name
the connector as "connectors.Connector" to keep this module free of an import cycle.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from connectors.fields import SecretCharField

# The global default interval when nothing is stored yet (CONNECTORS_SCHEDULE_DEFAULT_MINUTES).
SCHEDULE_OFF = 0


class ScheduleSettings(models.Model):
    """The one row (pk 1) with the global schedule: every N minutes, or 0 for off."""

    default_interval_minutes = models.PositiveIntegerField(
        help_text="Re-test every connector this often, unless it has its own schedule. "
        "0 turns scheduled tests off."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"every {self.default_interval_minutes} minutes"


class ConnectorSchedule(models.Model):
    """One connector's override of the default schedule, and the dispatcher's bookkeeping."""

    class Mode(models.TextChoices):
        DEFAULT = "default", "Use the default"
        EVERY = "every", "Its own interval"
        OFF = "off", "Off"

    connector = models.OneToOneField(
        "connectors.Connector", on_delete=models.CASCADE, primary_key=True, related_name="schedule"
    )
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.DEFAULT)
    interval_minutes = models.PositiveIntegerField(null=True, blank=True)
    # The start of the last slot the dispatcher handled (queued, or found tested already).
    last_slot_at = models.DateTimeField(null=True, blank=True)
    last_queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"schedule of connector #{self.connector_id}"


class NotificationRule(models.Model):
    """Who hears about one owner team's connectors ("" is the default for the rest)."""

    owner_team = models.CharField(max_length=128, unique=True, blank=True)
    emails = models.TextField(blank=True, help_text="One address a line (or comma-separated).")
    # A secret: webhook URLs (Slack's especially) carry their own credential in the path.
    webhook_url = SecretCharField(max_length=2000, blank=True)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        default_permissions = ()
        ordering = ["owner_team"]

    def __str__(self) -> str:
        return self.owner_team or "(default rule)"

    @property
    def email_list(self) -> list[str]:
        return [e.strip() for e in self.emails.replace(",", "\n").splitlines() if e.strip()]


class NotificationState(models.Model):
    """Whether a "failing" notice was sent for a connector's current failing streak."""

    connector = models.OneToOneField(
        "connectors.Connector",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="notification_state",
    )
    failing_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"notification state of connector #{self.connector_id}"


class SecretExpiryNotice(models.Model):
    """A Client Secret expiry notice that was sent: each (date, days before) once."""

    connector = models.ForeignKey(
        "connectors.Connector", on_delete=models.CASCADE, related_name="secret_expiry_notices"
    )
    expires_on = models.DateField()
    days_before = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "expires_on", "days_before"], name="secret_expiry_notice_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.days_before} days before {self.expires_on}"


class ConnectorHealth(models.Model):
    """A connector's health, derived from its saved-configuration test runs, one row each.

    Written in the transaction that records a run (connectors.health), so reading it costs a
    join, never a scan of the runs. Only passing or failing is stored: "never tested" is a
    missing row (or no test yet) and "stale" depends on today, so both are decided when read,
    on the indexed last_tested_at.
    """

    connector = models.OneToOneField(
        "connectors.Connector", on_delete=models.CASCADE, primary_key=True, related_name="health"
    )
    last_run_id = models.BigIntegerField(null=True, blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_ok = models.BooleanField(null=True, blank=True)
    last_outcome = models.CharField(max_length=32, blank=True)
    # When the current passing or failing streak began (its first run's start).
    state_since = models.DateTimeField(null=True, blank=True)
    # state_since while failing, else null: its own column so "failing since" sorts on an index.
    failing_since = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # The access token's expiry as the last successful test saw it.
    token_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()
        verbose_name_plural = "connector health"
        indexes = [
            models.Index(fields=["last_tested_at"], name="health_last_tested"),
            models.Index(fields=["last_ok", "last_tested_at"], name="health_ok_tested"),
            models.Index(fields=["failing_since"], name="health_failing_since"),
            models.Index(fields=["last_outcome"], name="health_outcome"),
        ]

    def __str__(self) -> str:
        return f"health of connector #{self.pk}"
