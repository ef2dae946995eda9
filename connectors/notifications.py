"""Telling the owners: notices on a change of state, and their delivery by email and webhook.

Events:
- connector.failing: after CONNECTORS_FAIL_THRESHOLD consecutive failures (the health state
  turned failing at the first; the notice waits so that one blip is not a page);
- connector.recovered: the next pass, only when a failing notice was sent;
- secret.expiring: a Client Secret expiring in 30, 7 and 1 days, each once per date.

Transitions are claimed in the recording transaction, right after the health row moves
(`notify_after_record`, called from the recording hook), and sent once it commits: a
rolled-back run claims and notifies nothing, and a pass costs no commit of its own.
Which people hear about a connector: the rule of its owner team, else the default rule (team "").
Deliveries run as Celery tasks (connectors.tasks_notify); each delivery and each failure is
an audit record naming the webhook's host only, never its URL (the URL is a secret).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from audit.services import AuditWriteError, audit_record
from connectors import lean_sql, oauth_http
from connectors.explain import outcome_label
from connectors.health import UNSAVED_SOURCE, secret_expires_in_days
from connectors.models import (
    Connector,
    ConnectorHealth,
    NotificationRule,
    NotificationState,
    SecretExpiryNotice,
)

logger = logging.getLogger(__name__)

FAILING = "connector.failing"
RECOVERED = "connector.recovered"
SECRET_EXPIRING = "secret.expiring"
EXPIRY_DAYS = (30, 7, 1)
# An answer to a webhook is read only this far: only its status matters.
WEBHOOK_MAX_BODY = 64 * 1024


def fail_threshold() -> int:
    return max(int(getattr(settings, "CONNECTORS_FAIL_THRESHOLD", 2)), 1)


# --- detecting transitions ------------------------------------------------------------------


def notify_after_record(*, connector_id: int | None, run: Any) -> None:
    """From the recording transaction: claim the notice a transition calls for, send it after.

    The claim (a conditional UPDATE) rides in the transaction that records the run, so a pass
    costs no commit of its own and a rolled-back run claims nothing; the notice itself is sent
    only once that transaction has committed.
    """
    if connector_id is None or getattr(run, "source", "") == UNSAVED_SOURCE:
        return
    if run.ok:
        # A pass, the common case: its one claim rides with the recording's next round trip.
        def claimed(count: int) -> None:
            if count:
                transaction.on_commit(lambda: _send_safely(connector_id, RECOVERED))

        lean_sql.ride(_recovery_claim_sql(lean_sql.vendor()), [connector_id], claimed)
        return
    event = _transition_claim(connector_id=connector_id, ok=False)
    if event:
        transaction.on_commit(lambda: _send_safely(connector_id, event))


def _send_safely(connector_id: int, event: str) -> None:
    # After the commit the run is recorded; a notification fault must not turn it into an error.
    try:
        connector = Connector.objects.get(pk=connector_id)
        health = ConnectorHealth.objects.get(pk=connector_id)
        notice_send(connector=connector, payload=state_payload(connector, health, event))
    except Exception:  # noqa: BLE001 - logged; the test result stands
        logger.exception("Notification of connector #%s failed", connector_id)


def connector_notify_transition(*, connector_id: int, ok: bool) -> str:
    """Claim and send the notice a connector's new run calls for; returns its event, or ""."""
    event = _transition_claim(connector_id=connector_id, ok=ok)
    if event:
        _send_safely(connector_id, event)
    return event


# The two statements of every recorded run, built once (connectors.lean_sql): a pass clears a
# sent failing notice (claiming the recovery notice), a failure reads its streak.
@functools.cache
def _recovery_claim_sql(vendor: str) -> str:
    column = functools.partial(lean_sql.column, NotificationState)
    notified = column("failing_notified_at")
    return (
        f"UPDATE {lean_sql.table(NotificationState)} SET {notified} = NULL "  # noqa: S608
        f"WHERE {column('connector')} = %s AND {notified} IS NOT NULL"
    )


@functools.cache
def _failures_sql(vendor: str) -> str:
    column = functools.partial(lean_sql.column, ConnectorHealth)
    return (
        f"SELECT {column('consecutive_failures')} FROM {lean_sql.table(ConnectorHealth)} "  # noqa: S608
        f"WHERE {column('connector')} = %s AND NOT {column('last_ok')}"
    )


def _transition_claim(*, connector_id: int, ok: bool) -> str:
    """The event a run's outcome calls for, claimed so that it is sent once; or "".

    Cheap on the common path: a pass costs one UPDATE (clearing a sent failing notice, which
    is what claims the recovery notice); a failure below the threshold costs one read. The
    conditional UPDATEs make two workers finishing together send one notice, not two.
    """
    vendor = lean_sql.vendor()
    if ok:
        claimed = lean_sql.execute(_recovery_claim_sql(vendor), [connector_id])
        return RECOVERED if claimed else ""
    found = lean_sql.fetch(_failures_sql(vendor), [connector_id])
    failures = found[0][0] if found else None
    if failures is None or failures < fail_threshold():
        return ""
    NotificationState.objects.get_or_create(connector_id=connector_id)
    claimed = NotificationState.objects.filter(
        pk=connector_id, failing_notified_at__isnull=True
    ).update(failing_notified_at=timezone.now())
    return FAILING if claimed else ""


# --- payloads -------------------------------------------------------------------------------


def console_link(connector: Connector) -> str:
    base = str(getattr(settings, "CONNECTORS_CONSOLE_URL", "")).rstrip("/")
    return base + reverse("connectors:detail", kwargs={"name": connector.name})


def _label(outcome: str) -> str:
    return outcome_label(outcome)


def state_payload(connector: Connector, health: ConnectorHealth, event: str) -> dict[str, Any]:
    """The documented JSON document (README "Notifications") for a change of state."""
    failing = event == FAILING
    label = _label(health.last_outcome)
    since = health.state_since.isoformat() if health.state_since else None
    if failing:
        text = (
            f"{connector.name} is failing: {label} ({health.consecutive_failures} consecutive "
            f"failures, since {since})."
        )
    else:
        text = f"{connector.name} is passing again ({label})."
    return {
        "event": event,
        "connector": connector.name,
        "display_name": connector.display_name,
        "owner_team": connector.owner_team,
        "state": "failing" if failing else "passing",
        "since": since,
        "outcome": health.last_outcome,
        "outcome_label": label,
        "consecutive_failures": health.consecutive_failures,
        "url": console_link(connector),
        "text": text,
    }


def expiry_payload(connector: Connector, days: int) -> dict[str, Any]:
    expires_on = connector.client_secret_expires_on
    when = "tomorrow" if days == 1 else f"in {days} days"
    return {
        "event": SECRET_EXPIRING,
        "connector": connector.name,
        "display_name": connector.display_name,
        "owner_team": connector.owner_team,
        "expires_on": expires_on.isoformat() if expires_on else None,
        "days_left": days,
        "url": console_link(connector),
        "text": f"The Client Secret of {connector.name} expires {when} ({expires_on}).",
    }


# --- rules and sending ------------------------------------------------------------------------


def rule_for(connector: Connector) -> NotificationRule | None:
    """The owner team's enabled rule, else the enabled default rule (team "")."""
    rules = NotificationRule.objects.filter(
        Q(owner_team=connector.owner_team) | Q(owner_team=""), enabled=True
    )
    by_team = {rule.owner_team: rule for rule in rules}
    return by_team.get(connector.owner_team) or by_team.get("")


def notice_send(*, connector: Connector, payload: dict[str, Any]) -> int:
    """Queue the deliveries the connector's rule asks for; returns how many were queued."""
    rule = rule_for(connector)
    if rule is None:
        return 0
    from config.celery import RunnerUnreachable, task_send
    from connectors import tasks_notify

    jobs: list[tuple[Any, str]] = []
    if rule.email_list:
        jobs.append((tasks_notify.notify_email, "email"))
    if rule.webhook_url:
        jobs.append((tasks_notify.notify_webhook, "webhook"))
    for task, channel in jobs:
        try:
            task_send(task=task, args=(rule.pk, connector.pk, payload))
        except RunnerUnreachable as exc:
            delivery_audit(
                connector=connector,
                payload=payload,
                channel=channel,
                ok=False,
                detail=f"not queued: {exc} ({exc.reason})",
            )
    return len(jobs)


def webhook_host(url: str) -> str:
    """The host of a webhook URL: all that an audit record or a log line may name."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


@dataclass(frozen=True)
class Delivery:
    ok: bool
    status: int | None
    detail: str


def webhook_post(
    *,
    url: str,
    payload: dict[str, Any],
    resolver: Callable[..., Any] = socket.getaddrinfo,
) -> Delivery:
    """POST the payload as JSON through the outbound client: policy, no redirects, deadline."""
    from connectors.connection_test import outbound_policy

    session = oauth_http.outbound_session(
        policy=outbound_policy(),
        timeout=settings.CONNECTORS_TOKEN_TIMEOUT,
        max_body_bytes=WEBHOOK_MAX_BODY,
        resolver=resolver,
    )
    try:
        response = session.post(url, json=payload, allow_redirects=False)
    except oauth_http.OutboundError as exc:
        return Delivery(False, None, _without_url(f"{exc.outcome}: {exc.message}", url))
    except Exception as exc:  # noqa: BLE001 - any transport fault is a failed delivery
        return Delivery(False, None, type(exc).__name__)
    finally:
        session.close()
    if 200 <= response.status_code < 300:
        return Delivery(True, response.status_code, f"HTTP {response.status_code}")
    # A redirect is a failure too: following it would post the notice somewhere unchecked.
    return Delivery(False, response.status_code, f"HTTP {response.status_code}")


def _without_url(text: str, url: str) -> str:
    """The client's messages name the host only; make sure no path or query slips through."""
    parts = urlsplit(url)
    for piece in (url, parts.path, parts.query):
        if len(piece) > 1:
            text = text.replace(piece, "[…]")
    return text


def email_post(*, rule: NotificationRule, payload: dict[str, Any]) -> Delivery:
    """Send the notice by email through Django's email backend."""
    subject = f"[Connector Console] {payload['text']}"[:200]
    lines = [payload["text"], "", f"Open it: {payload['url']}", "", "Details:"]
    lines += [f"  {key}: {value}" for key, value in payload.items() if key not in {"text"}]
    try:
        sent = send_mail(
            subject,
            "\n".join(lines),
            settings.DEFAULT_FROM_EMAIL,
            rule.email_list,
            fail_silently=False,
        )
    except Exception as exc:  # noqa: BLE001 - SMTP faults become a failed delivery
        return Delivery(False, None, type(exc).__name__)
    return Delivery(bool(sent), None, f"{len(rule.email_list)} recipient(s)")


def delivery_audit(
    *,
    connector: Connector | None,
    payload: dict[str, Any],
    channel: str,
    ok: bool,
    detail: str,
    host: str = "",
    attempt: int = 1,
) -> None:
    """One audit record per delivery or failed delivery; a webhook is named by its host only."""
    where = f" to {host}" if host else ""
    verdict = "delivered" if ok else "failed"
    try:
        audit_record(
            kind="system",
            action="notify_delivered" if ok else "notify_failed",
            connector=connector,
            connector_name=str(payload.get("connector", "")),
            outcome=verdict,
            summary=f"{payload.get('event')} notice by {channel}{where} {verdict} ({detail}).",
            details={
                "event": payload.get("event"),
                "channel": channel,
                "host": host,
                "attempt": attempt,
                "detail": detail[:300],
            },
        )
    except AuditWriteError:
        pass  # logged loudly by audit_record; a notice is not undone for it


# --- Client Secret expiry ---------------------------------------------------------------------


def _threshold(days: int) -> int | None:
    """The smallest of 30/7/1 that `days` has reached (so a missed day still notifies)."""
    reached = [t for t in EXPIRY_DAYS if 0 <= days <= t]
    return min(reached) if reached else None


def secret_expiry_check(*, today: dt.date | None = None) -> list[tuple[str, int]]:
    """Send the 30/7/1-day notices due today; each (connector, date, days) once."""
    today = today or timezone.localdate()
    horizon = today + dt.timedelta(days=max(EXPIRY_DAYS))
    connectors = Connector.objects.filter(
        enabled=True,
        client_secret_expires_on__isnull=False,
        client_secret_expires_on__gte=today,
        client_secret_expires_on__lte=horizon,
    )
    sent: list[tuple[str, int]] = []
    for connector in connectors:
        expires_on = connector.client_secret_expires_on
        days = secret_expires_in_days(expires_on, today=today)
        threshold = _threshold(days) if days is not None else None
        if threshold is None or expires_on is None:
            continue
        _, created = SecretExpiryNotice.objects.get_or_create(
            connector=connector, expires_on=expires_on, days_before=threshold
        )
        if created:
            notice_send(connector=connector, payload=expiry_payload(connector, days or 0))
            sent.append((connector.name, threshold))
    return sent


__all__ = [
    "EXPIRY_DAYS",
    "FAILING",
    "RECOVERED",
    "SECRET_EXPIRING",
    "Delivery",
    "connector_notify_transition",
    "delivery_audit",
    "email_post",
    "notice_send",
    "notification_rule_delete",
    "notification_rule_save",
    "notify_after_record",
    "rule_for",
    "secret_expiry_check",
    "state_payload",
    "webhook_host",
    "webhook_post",
]


# --- rules (the settings page) ----------------------------------------------------------------


def _webhook_change(before: str, after: str) -> str:
    if before == after:
        return "unchanged"
    if not after:
        return "cleared"
    return "set" if not before else "changed"


def notification_rule_save(
    *, rule: NotificationRule, webhook_before: str, user: Any, created: bool
) -> NotificationRule:
    """Save a rule (from its form) and audit it; the webhook is named only as set/changed."""
    with transaction.atomic():
        rule.updated_at = timezone.now()
        rule.save()
        audit_record(
            kind="change",
            action="notify_rule_created" if created else "notify_rule_changed",
            user=user,
            summary=f"Notification rule for {rule}: {len(rule.email_list)} email address(es), "
            f"webhook {_webhook_change(webhook_before, rule.webhook_url)}, "
            f"{'enabled' if rule.enabled else 'disabled'}.",
            details={
                "owner_team": rule.owner_team,
                "emails": rule.email_list,
                "webhook": _webhook_change(webhook_before, rule.webhook_url),
                "webhook_host": webhook_host(rule.webhook_url),
                "enabled": rule.enabled,
            },
        )
    return rule


def notification_rule_delete(*, rule: NotificationRule, user: Any) -> None:
    """Delete a rule and audit it."""
    with transaction.atomic():
        name = str(rule)
        rule.delete()
        audit_record(
            kind="change",
            action="notify_rule_deleted",
            user=user,
            summary=f"Notification rule for {name} deleted.",
        )
