"""Fleet health: each connector's state, derived from its saved-configuration test runs.

One row per connector (`ConnectorHealth`) is updated in the transaction that records a run,
by `connector_health_record`; pages read the row, never the runs. Passing and failing are
stored; "never tested" and "stale" are decided when read, because stale depends on today
(`CONNECTORS_STALE_DAYS`). Tests of unsaved form values say nothing about the saved connector
and are left out.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db.models import Model, Q
from django.utils import timezone

from connectors import lean_sql
from connectors.models import Connector, ConnectorHealth

# The run source whose results do not count: a test of unsaved form values.
UNSAVED_SOURCE = "form"


class HealthState(StrEnum):
    PASSING = "passing"
    FAILING = "failing"
    NEVER = "never"
    STALE = "stale"


HEALTH_LABELS: dict[HealthState, str] = {
    HealthState.PASSING: "Passing",
    HealthState.FAILING: "Failing",
    HealthState.NEVER: "Never tested",
    HealthState.STALE: "Stale",
}


def stale_days() -> int:
    return int(getattr(settings, "CONNECTORS_STALE_DAYS", 7))


def stale_cutoff(now: dt.datetime | None = None) -> dt.datetime:
    """Tests that started before this are too old to say anything about today."""
    return (now or timezone.now()) - dt.timedelta(days=stale_days())


def health_state(health: ConnectorHealth | None, *, now: dt.datetime | None = None) -> str:
    """The state of one connector from its health row (None: no row, never tested)."""
    if health is None or health.last_tested_at is None:
        return HealthState.NEVER
    if health.last_tested_at < stale_cutoff(now):
        return HealthState.STALE
    return HealthState.PASSING if health.last_ok else HealthState.FAILING


def health_state_q(state: str, *, now: dt.datetime | None = None, prefix: str = "health__") -> Q:
    """A filter for connectors (prefix "health__") or health rows (prefix "") in a state.

    Each branch reads indexed columns: last_tested_at, and (last_ok, last_tested_at).
    """
    cutoff = stale_cutoff(now)
    tested = f"{prefix}last_tested_at"
    if state == HealthState.NEVER:
        return Q(**{f"{tested}__isnull": True})
    if state == HealthState.STALE:
        return Q(**{f"{tested}__lt": cutoff})
    if state in (HealthState.PASSING, HealthState.FAILING):
        return Q(**{f"{prefix}last_ok": state == HealthState.PASSING, f"{tested}__gte": cutoff})
    return Q()


def _aware(moment: Any) -> dt.datetime | None:
    """A token expiry (epoch seconds, as the run's token facts hold it) as a datetime."""
    if isinstance(moment, int | float) and not isinstance(moment, bool):
        try:
            return dt.datetime.fromtimestamp(float(moment), tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def token_expiry_of(run: Any) -> dt.datetime | None:
    """The access token's expiry that a run saw, if it got one."""
    token = getattr(run, "token", None)
    return _aware(token.get("expires_at")) if isinstance(token, dict) else None


def connector_health_record(*, connector_id: int | None, run: Any) -> None:
    """Fold one recorded run into its connector's health row; call inside the run's transaction.

    One statement, nothing read first: the first test inserts the row, later ones update it
    (INSERT ... ON CONFLICT DO UPDATE, the streak logic in SQL). A run older than the one the
    row already holds (two tests finishing out of order) changes nothing.
    """
    if connector_id is None or run.source == UNSAVED_SOURCE:
        return
    first = HealthFold()
    first.add(run)
    values = {"connector_id": connector_id, **first.values()}
    params = lean_sql.prep_all(ConnectorHealth, values)
    # It rides with the recording's next round trip (audit.round_trips.ride).
    lean_sql.ride(_upsert_sql(lean_sql.vendor(), bool(run.ok)), params)


# What a run changes in an existing row. "new" is the row the run alone would make (the
# INSERT's values); the existing row's columns are named by the table. A SQL UPDATE reads old
# values on every right-hand side, so the streak is decided by the row before this run.
_PASS_SINCE = "CASE WHEN {old}.{last_ok} THEN {old}.{state_since} ELSE {new}.{state_since} END"
_PASS_SETS = {
    "state_since": _PASS_SINCE,
    "failing_since": "NULL",
    "consecutive_failures": "0",
    "last_success_at": "{new}.{last_success_at}",
    "token_expires_at": "{new}.{token_expires_at}",
}
_FAIL_SINCE = "CASE WHEN NOT {old}.{last_ok} THEN {old}.{state_since} ELSE {new}.{state_since} END"
_FAIL_SETS = {
    "state_since": _FAIL_SINCE,
    "failing_since": _FAIL_SINCE,
    "consecutive_failures": (
        "CASE WHEN NOT {old}.{last_ok} THEN {old}.{consecutive_failures} + 1 ELSE 1 END"
    ),
}


@functools.cache
def _upsert_sql(vendor: str, ok: bool) -> str:
    """The health row's upsert for a passing (ok) or failing run, built once per vendor."""
    names = ["connector_id", *HealthFold().values()]
    cols = {name: lean_sql.column(ConnectorHealth, name) for name in names}
    old, new = lean_sql.table(ConnectorHealth), "excluded"
    sets = {name: f"{new}.{cols[name]}" for name in ("last_run_id", "last_tested_at")}
    sets |= {name: f"{new}.{cols[name]}" for name in ("last_ok", "last_outcome")}
    for name, template in (_PASS_SETS if ok else _FAIL_SETS).items():
        sets[name] = template.format(old=old, new=new, **cols)
    assignments = ", ".join(f"{cols[name]} = {value}" for name, value in sets.items())
    run_id = cols["last_run_id"]
    # Identifiers come from the model's metadata; every value is a query parameter.
    return (
        f"INSERT INTO {old} ({', '.join(cols.values())}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(cols))}) "
        f"ON CONFLICT ({cols['connector_id']}) DO UPDATE SET {assignments} "
        f"WHERE {old}.{run_id} IS NULL OR {old}.{run_id} < {new}.{run_id}"
    )


@dataclass
class HealthFold:
    """The same rules as connector_health_record, applied to runs in order, in Python.

    Used to rebuild rows from history (the backfill); a test checks both agree.
    """

    last_run_id: int | None = None
    last_tested_at: dt.datetime | None = None
    last_ok: bool | None = None
    last_outcome: str = ""
    state_since: dt.datetime | None = None
    consecutive_failures: int = 0
    last_success_at: dt.datetime | None = None
    token_expires_at: dt.datetime | None = None

    def add(self, run: Any) -> None:
        ok = bool(run.ok)
        if self.last_ok is not ok:
            self.state_since = run.started_at
        if ok:
            self.consecutive_failures = 0
            self.last_success_at = run.started_at
            self.token_expires_at = token_expiry_of(run)
        else:
            self.consecutive_failures += 1
        self.last_run_id, self.last_tested_at = run.pk, run.started_at
        self.last_ok, self.last_outcome = ok, run.outcome

    def values(self) -> dict[str, Any]:
        return {
            "last_run_id": self.last_run_id,
            "last_tested_at": self.last_tested_at,
            "last_ok": self.last_ok,
            "last_outcome": self.last_outcome,
            "state_since": self.state_since,
            "failing_since": None if self.last_ok else self.state_since,
            "consecutive_failures": self.consecutive_failures,
            "last_success_at": self.last_success_at,
            "token_expires_at": self.token_expires_at,
        }


@dataclass(frozen=True)
class _RunFacts:
    pk: int
    ok: bool
    outcome: str
    started_at: dt.datetime
    token: Any


def connector_health_backfill(
    *,
    run_model: type[Model] | None = None,
    connector_model: type[Model] | None = None,
    health_model: type[Model] | None = None,
    batch_size: int = 2000,
) -> int:
    """Rebuild every connector's health row from its recorded runs; returns the rows written.

    Idempotent: rows are recomputed from the whole history each time, so running it twice
    (or after a partial run) gives the same rows. The models can be a migration's historical
    ones.
    """
    from audit.models import TestRun

    runs_model: Any = run_model or TestRun
    connectors: Any = connector_model or Connector
    healths: Any = health_model or ConnectorHealth
    existing = set(connectors.objects.values_list("pk", flat=True))
    # Runs of deleted connectors stay in the audit history; they have no row to update.
    runs = (
        runs_model.objects.filter(connector_id__isnull=False)
        .exclude(source=UNSAVED_SOURCE)
        .order_by("connector_id", "id")
        .values_list("connector_id", "id", "ok", "outcome", "started_at", "token")
    )
    folds: dict[int, HealthFold] = {}
    for connector_id, pk, ok, outcome, started_at, token in runs.iterator(chunk_size=5000):
        if connector_id in existing:
            fold = folds.setdefault(connector_id, HealthFold())
            fold.add(_RunFacts(pk, ok, outcome, started_at, token))
    untested = sorted(set(healths.objects.values_list("pk", flat=True)) - set(folds))
    for start in range(0, len(untested), batch_size):
        healths.objects.filter(pk__in=untested[start : start + batch_size]).delete()
    rows = [healths(connector_id=cid, **fold.values()) for cid, fold in folds.items()]
    healths.objects.bulk_create(
        rows,
        batch_size=batch_size,
        update_conflicts=True,
        unique_fields=["connector"],
        update_fields=list(HealthFold().values()),
    )
    return len(rows)


def secret_expires_in_days(
    expires_on: dt.date | None, *, today: dt.date | None = None
) -> int | None:
    """Days until a Client Secret expires (negative once expired), or None without a date."""
    if expires_on is None:
        return None
    return (expires_on - (today or timezone.localdate())).days


__all__ = [
    "HEALTH_LABELS",
    "HealthFold",
    "HealthState",
    "connector_health_backfill",
    "connector_health_record",
    "health_state",
    "health_state_q",
    "secret_expires_in_days",
    "stale_cutoff",
    "stale_days",
    "token_expiry_of",
]
