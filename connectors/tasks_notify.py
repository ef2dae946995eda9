"""Celery tasks of the notifications (loaded through CELERY_IMPORTS).

- connectors.secret_expiry_check: beat runs it daily; the 30/7/1-day Client Secret notices.
- connectors.notify_webhook / connectors.notify_email: one delivery; a failed one is retried
  after 2, 4, 8 ... seconds (CONNECTORS_WEBHOOK_RETRIES more tries), each try audited.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings

from connectors import notifications
from connectors.models import Connector, NotificationRule


@shared_task(name="connectors.secret_expiry_check")
def secret_expiry_check() -> int:
    """Send today's Client Secret expiry notices; returns how many."""
    return len(notifications.secret_expiry_check())


def retry_countdown(retries: int) -> int:
    """Backoff before try number retries + 2: 2, 4, 8, 16 ... seconds."""
    return int(2 ** (retries + 1))


def _deliver(
    task: Task[Any, Any], channel: str, rule_id: int, connector_id: int, payload: dict[str, Any]
) -> bool:
    rule = NotificationRule.objects.filter(pk=rule_id).first()
    connector = Connector.objects.filter(pk=connector_id).first()
    if rule is None:
        return False  # the rule was deleted meanwhile: nobody to tell
    if channel == "webhook":
        host = notifications.webhook_host(rule.webhook_url)
        result = notifications.webhook_post(url=rule.webhook_url, payload=payload)
    else:
        host = ""
        result = notifications.email_post(rule=rule, payload=payload)
    attempt = task.request.retries + 1
    notifications.delivery_audit(
        connector=connector,
        payload=payload,
        channel=channel,
        ok=result.ok,
        detail=result.detail,
        host=host,
        attempt=attempt,
    )
    if not result.ok and task.request.retries < settings.CONNECTORS_WEBHOOK_RETRIES:
        raise task.retry(
            countdown=retry_countdown(task.request.retries),
            max_retries=settings.CONNECTORS_WEBHOOK_RETRIES,
        )
    return result.ok


@shared_task(name="connectors.notify_webhook", bind=True)
def notify_webhook(
    self: Task[Any, Any], rule_id: int, connector_id: int, payload: dict[str, Any]
) -> bool:
    """POST one notice to the rule's webhook; retried with backoff when it fails."""
    return _deliver(self, "webhook", rule_id, connector_id, payload)


@shared_task(name="connectors.notify_email", bind=True)
def notify_email(
    self: Task[Any, Any], rule_id: int, connector_id: int, payload: dict[str, Any]
) -> bool:
    """Email one notice to the rule's addresses; retried with backoff when it fails."""
    return _deliver(self, "email", rule_id, connector_id, payload)
