"""Scheduled re-validation: which connectors are due, spread over their interval, and the run.

Each enabled connector is re-tested every interval (the global default, stored in
ScheduleSettings, or its own override, or never). Its slots sit at a fixed phase inside the
interval, taken from a hash of its id, so 500 connectors on a 6-hour schedule are spread over the
6 hours instead of all falling due together; the dispatcher (every minute, from beat) queues each
due one with a further random delay inside that minute. A connector tested by anyone since its
slot began is not tested again for that slot. The runs are made by the scheduler identity.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import zlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import TestRun
from audit.services import audit_record
from connectors.connection_test import connector_test
from connectors.identities import scheduler_user
from connectors.models import Connector, ConnectorSchedule, ScheduleSettings
from connectors.rules.testing import TestRefused

logger = logging.getLogger(__name__)

# The dispatcher runs every minute: the random part of the jitter stays inside one run's minute.
DISPATCH_PERIOD_SECONDS = 60
SCHEDULE_SETTINGS_PK = 1


def schedule_default_minutes() -> int:
    """The global interval in minutes (0: off): the stored one, else the setting."""
    stored = (
        ScheduleSettings.objects.filter(pk=SCHEDULE_SETTINGS_PK)
        .values_list("default_interval_minutes", flat=True)
        .first()
    )
    if stored is not None:
        return int(stored)
    return int(getattr(settings, "CONNECTORS_SCHEDULE_DEFAULT_MINUTES", 360))


def schedule_default_set(*, minutes: int, user: Any) -> None:
    """Store the global interval and audit the change."""
    with transaction.atomic():
        before = schedule_default_minutes()
        ScheduleSettings.objects.update_or_create(
            pk=SCHEDULE_SETTINGS_PK,
            defaults={"default_interval_minutes": minutes, "updated_at": timezone.now()},
        )
        audit_record(
            kind="change",
            action="schedule_default",
            user=user,
            summary=f"Default re-test interval: {_describe(before)} → {_describe(minutes)}.",
            details={"before_minutes": before, "after_minutes": minutes},
        )


def connector_schedule_set(
    *, connector: Connector, mode: str, interval_minutes: int | None, user: Any
) -> ConnectorSchedule:
    """Set one connector's override (default, its own interval, or off) and audit it."""
    if mode != ConnectorSchedule.Mode.EVERY:
        interval_minutes = None
    with transaction.atomic():
        row, _ = ConnectorSchedule.objects.get_or_create(connector=connector)
        before = _override_text(row.mode, row.interval_minutes)
        row.mode, row.interval_minutes = mode, interval_minutes
        row.save(update_fields=["mode", "interval_minutes"])
        audit_record(
            kind="change",
            action="schedule_connector",
            user=user,
            connector=connector,
            summary=f"Re-test schedule: {before} → {_override_text(mode, interval_minutes)}.",
            details={"mode": mode, "interval_minutes": interval_minutes},
        )
    return row


def _describe(minutes: int) -> str:
    if minutes <= 0:
        return "off"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"every {hours} hour{'s' if hours != 1 else ''}"
    return f"every {minutes} minutes"


def _override_text(mode: str, minutes: int | None) -> str:
    if mode == ConnectorSchedule.Mode.OFF:
        return "off"
    if mode == ConnectorSchedule.Mode.EVERY and minutes:
        return _describe(minutes)
    return "the default"


def interval_seconds(mode: str | None, minutes: int | None, default_minutes: int) -> int:
    """A connector's interval in seconds; 0 when it is not scheduled."""
    if mode == ConnectorSchedule.Mode.OFF:
        return 0
    if mode == ConnectorSchedule.Mode.EVERY and minutes:
        return int(minutes) * 60
    return max(default_minutes, 0) * 60


def schedule_phase(connector_id: int, interval: int) -> int:
    """Where inside each interval this connector's slot starts: stable, spread by a hash."""
    return zlib.crc32(f"connector-schedule:{connector_id}".encode()) % interval


def slot_start(connector_id: int, interval: int, now: dt.datetime) -> dt.datetime:
    """The start of the slot `now` falls in."""
    epoch = int(now.timestamp())
    phase = schedule_phase(connector_id, interval)
    start = epoch - ((epoch - phase) % interval)
    return dt.datetime.fromtimestamp(start, tz=dt.UTC)


@dataclass(frozen=True)
class Due:
    connector_id: int
    countdown: float  # seconds to wait before the test: the jitter inside the minute


def schedule_due(*, now: dt.datetime | None = None, rng: random.Random | None = None) -> list[Due]:
    """The connectors due now, each claimed for its slot (so it is queued once per slot).

    A connector seen for the first time is claimed for its current slot without a test: its
    first scheduled test comes at its next slot, so switching the schedule on does not test the
    whole fleet at once.
    """
    now = now or timezone.now()
    rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
    default_minutes = schedule_default_minutes()
    rows = Connector.objects.filter(enabled=True).values_list(
        "pk",
        "schedule__mode",
        "schedule__interval_minutes",
        "schedule__last_slot_at",
        "health__last_tested_at",
    )
    due: list[Due] = []
    new_rows: list[ConnectorSchedule] = []
    for pk, mode, minutes, last_slot, last_tested in rows.iterator(chunk_size=2000):
        interval = interval_seconds(mode, minutes, default_minutes)
        if not interval:
            continue
        slot = slot_start(pk, interval, now)
        if mode is None:
            new_rows.append(ConnectorSchedule(connector_id=pk, last_slot_at=slot))
            continue
        if last_slot is not None and last_slot >= slot:
            continue
        # Claim the slot; a concurrent dispatcher that claimed it first wins.
        claimed = ConnectorSchedule.objects.filter(pk=pk, last_slot_at=last_slot).update(
            last_slot_at=slot,
            **({} if last_tested is not None and last_tested >= slot else {"last_queued_at": now}),
        )
        if claimed and (last_tested is None or last_tested < slot):
            due.append(Due(pk, round(rng.uniform(0, DISPATCH_PERIOD_SECONDS), 3)))
    ConnectorSchedule.objects.bulk_create(new_rows, ignore_conflicts=True)
    return due


def schedule_run(*, connector_id: int) -> dict[str, Any]:
    """One scheduled test of one connector, recorded as made by the scheduler."""
    connector = Connector.objects.filter(pk=connector_id, enabled=True).first()
    if connector is None:
        return {"connector_id": connector_id, "skipped": "deleted or disabled"}
    try:
        outcome = connector_test(
            connector=connector, user=scheduler_user(), source=TestRun.Source.BACKGROUND
        )
    except TestRefused as exc:
        # Already in the audit log as a denial; the schedule moves on.
        logger.warning("Scheduled test of %s refused: %s", connector.name, exc.action)
        return {"connector": connector.name, "refused": exc.action}
    return {"connector": connector.name, "ok": outcome.run.ok, "outcome": outcome.run.outcome}


__all__ = [
    "Due",
    "connector_schedule_set",
    "interval_seconds",
    "schedule_default_minutes",
    "schedule_default_set",
    "schedule_due",
    "schedule_phase",
    "schedule_run",
    "slot_start",
]
