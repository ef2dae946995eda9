"""What the API answers: connectors (secrets only as {"stored": true}), runs, audit records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from audit.models import AuditEvent, TestAttempt, TestRun
from connectors.domain import ALL_SECRET_FIELDS, CONNECTOR_FIELDS
from connectors.health import health_state
from connectors.models import Connector, ConnectorHealth
from connectors.rules.check import ROW_PLACES
from connectors.selectors import connector_health_of

STORED = {"stored": True}


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def secret_json(stored: bool) -> dict[str, bool] | None:
    """A secret as a response may show it: that one is stored, never what it is."""
    return dict(STORED) if stored else None


def health_json(health: ConnectorHealth | None, *, now: dt.datetime) -> dict[str, Any]:
    return {
        "state": health_state(health, now=now),
        "last_tested_at": _plain(health.last_tested_at) if health else None,
        "last_ok": health.last_ok if health else None,
        "last_outcome": (health.last_outcome or None) if health else None,
        "failing_since": _plain(health.failing_since) if health else None,
        "consecutive_failures": health.consecutive_failures if health else 0,
    }


def connector_summary_json(connector: Connector, *, now: dt.datetime) -> dict[str, Any]:
    """One row of the list: the list page's columns and health, no secrets read at all."""
    return {
        "name": connector.name,
        "display_name": connector.display_name,
        "base_url": connector.base_url,
        "enabled": connector.enabled,
        "auth_config": connector.auth_config,
        "owner_team": connector.owner_team,
        "client_secret_expires_on": _plain(connector.client_secret_expires_on),
        "updated_at": _plain(connector.updated_at),
        "health": health_json(connector_health_of(connector), now=now),
    }


def connector_json(connector: Connector) -> dict[str, Any]:
    """A whole connector: every field, secrets as {"stored": true} (or null), and its rows."""
    data: dict[str, Any] = {}
    for name in CONNECTOR_FIELDS:
        value = getattr(connector, name)
        data[name] = secret_json(bool(value)) if name in ALL_SECRET_FIELDS else _plain(value)
    params = list(connector.params.all())
    for kind, (_, json_key) in ROW_PLACES.items():
        data[json_key] = [
            {
                "key": p.key,
                "value": secret_json(bool(p.value)) if p.sensitive else p.value,
                "sensitive": p.sensitive,
            }
            for p in params
            if p.kind == kind
        ]
    data["connection"] = connection_json(connector)
    data["version"] = connector.version
    data["created_at"] = _plain(connector.created_at)
    data["updated_at"] = _plain(connector.updated_at)
    data["health"] = health_json(connector_health_of(connector), now=timezone.now())
    return data


def connection_json(connector: Connector) -> dict[str, Any] | None:
    """The Authorization Code Grant connection made by Connect (read-only), or null."""
    token = connector.oauth2_authorization_code_refresh_token
    if not token and connector.oauth2_connected_at is None:
        return None
    by = connector.oauth2_connected_by
    return {
        "refresh_token": secret_json(bool(token)),
        "connected_at": _plain(connector.oauth2_connected_at),
        "connected_by": by.get_username() if by is not None else None,
    }


def attempt_json(attempt: TestAttempt) -> dict[str, Any]:
    """One exchange of a run, as stored (already masked and redacted when recorded)."""
    return {
        "position": attempt.position,
        "step": attempt.step,
        "client_authentication": attempt.client_authentication,
        "method": attempt.method,
        "url": attempt.url,
        "status_code": attempt.status_code,
        "outcome": attempt.outcome,
        "message": attempt.message,
        "duration_ms": attempt.duration_ms,
    }


def run_json(run: TestRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "connector": run.connector_name,
        "source": run.source,
        "username": run.username,
        "started_at": _plain(run.started_at),
        "duration_ms": run.duration_ms,
        "ok": run.ok,
        "outcome": run.outcome,
        "message": run.message,
        "hint": run.hint,
        "client_authentication_used": run.client_authentication_used or None,
        "attempts": [attempt_json(a) for a in run.attempts.all()],
    }


def event_json(event: AuditEvent, *, details: Any = None, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": event.pk,
        "created_at": _plain(event.created_at),
        "kind": event.kind,
        "action": event.action,
        "user_id": event.user_id,
        "username": event.username,
        "connector_id": event.connector_id,
        "connector_name": event.connector_name,
        "source": event.source,
        "outcome": event.outcome,
        "summary": event.summary,
    }
    if full:
        data["details"] = details
        data["test_run_id"] = event.test_run_id
        data["hash"] = event.hash
    return data
