"""Telling the owners: transitions after commit (threshold, recovery), Client Secret expiry
30/7/1 once each, the webhook payload (Slack's "text"), the outbound policy, retries with
backoff, audit records of deliveries and failures, email, rules per team, the settings page."""

from __future__ import annotations

import datetime as dt
import socket

import pytest
from celery.app.task import Task
from django.core import mail
from django.db import connection

from audit.models import AuditEvent
from connectors.connection_test import connector_test
from connectors.models import Connector, NotificationRule, SecretExpiryNotice
from connectors.notifications import (
    FAILING,
    RECOVERED,
    SECRET_EXPIRING,
    secret_expiry_check,
    state_payload,
    webhook_post,
)
from connectors.tasks_notify import notify_webhook, retry_countdown
from tests.conftest import OAUTH2_PASSWORD
from tests.peers.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.django_db

HOOK_PATH = "/hooks/T000/B000/slack-like-secret-token"
PAYLOAD_KEYS = {
    "event",
    "connector",
    "display_name",
    "owner_team",
    "state",
    "since",
    "outcome",
    "outcome_label",
    "consecutive_failures",
    "url",
    "text",
}


@pytest.fixture
def eager():
    """Tasks run in this process when queued (retries too, without their countdown).

    Not propagating: an eager retry is raised as an exception when propagating.
    """
    from config.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def watched(make_connector, fault_server, settings, eager, hook):
    """A connector whose token URL can be switched between passing and failing, a default rule
    posting to the loopback receiver, and the default threshold of 2."""
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    settings.CONNECTORS_FAIL_THRESHOLD = 2
    settings.CONNECTORS_TEST_RATE_LIMIT = "1000/60"
    connector = make_connector(
        "hr_portal",
        **{
            **OAUTH2_PASSWORD,
            "oauth2_client_id": fault_server.client_id,
            "oauth2_client_secret": fault_server.client_secret,
            "oauth2_token_url": fault_server.url("/ok"),
        },
    )
    NotificationRule.objects.create(owner_team="", webhook_url=hook.url(HOOK_PATH))
    return connector


def run_test(connector: Connector, path: str, capture) -> bool:
    """One saved-configuration test against the fault server's `path`, commit hooks run."""
    from tests.test_health import point_to

    from_db = point_to(connector, connector.oauth2_token_url.rsplit("/", 1)[0] + path)
    with capture(execute=True):
        return connector_test(connector=from_db).run.ok


def test_failing_waits_for_the_threshold_and_recovery_follows_a_sent_notice(
    watched, hook, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    assert run_test(watched, "/ok", capture) is True
    assert hook.events() == []  # never failed: nothing to say
    assert run_test(watched, "/error200", capture) is False
    assert hook.events() == []  # one blip is not a page (the health state is failing already)
    assert run_test(watched, "/error200", capture) is False
    assert hook.events() == [FAILING]
    assert run_test(watched, "/error200", capture) is False
    assert hook.events() == [FAILING]  # still failing: once per streak
    assert run_test(watched, "/ok", capture) is True
    assert hook.events() == [FAILING, RECOVERED]
    assert run_test(watched, "/ok", capture) is True
    assert hook.events() == [FAILING, RECOVERED]


def test_no_recovery_notice_when_no_failing_notice_was_sent(
    watched, hook, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    assert run_test(watched, "/error200", capture) is False
    assert run_test(watched, "/ok", capture) is True
    assert hook.events() == []


def test_the_threshold_is_a_setting(watched, hook, settings, django_capture_on_commit_callbacks):
    settings.CONNECTORS_FAIL_THRESHOLD = 3
    for _ in range(2):
        run_test(watched, "/error200", django_capture_on_commit_callbacks)
    assert hook.events() == []
    run_test(watched, "/error200", django_capture_on_commit_callbacks)
    assert hook.events() == [FAILING]


def test_nothing_is_sent_before_the_recording_commits(watched, hook):
    """Inside the test's transaction the hooks wait for a commit that never comes."""
    from tests.test_health import point_to

    broken = point_to(watched, watched.oauth2_token_url.rsplit("/", 1)[0] + "/error200")
    for _ in range(3):
        connector_test(connector=broken)
    assert hook.events() == []


def test_the_payload_shape_and_slacks_text_key(watched, hook, django_capture_on_commit_callbacks):
    for _ in range(2):
        run_test(watched, "/error200", django_capture_on_commit_callbacks)
    path, headers, body = hook.posts[0]
    assert path == HOOK_PATH
    assert headers["Content-Type"] == "application/json"
    assert set(body) == PAYLOAD_KEYS
    assert body["event"] == "connector.failing" and body["state"] == "failing"
    assert body["connector"] == "hr_portal" and body["consecutive_failures"] == 2
    assert body["outcome"] and body["outcome_label"] and body["outcome_label"] != body["outcome"]
    assert body["url"].endswith("/connectors/hr_portal/")
    dt.datetime.fromisoformat(body["since"])
    # Slack-compatible incoming webhooks show the "text" key: one human line.
    assert body["text"].startswith("hr_portal is failing: ")
    assert "2 consecutive failures" in body["text"] and "\n" not in body["text"]


def test_rules_follow_the_owner_team_with_a_default_for_the_rest(make_connector, eager, settings):
    from connectors.models import ConnectorHealth
    from connectors.notifications import notice_send

    with WebhookReceiver() as team_hook, WebhookReceiver() as default_hook:
        settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
        NotificationRule.objects.create(owner_team="HR", webhook_url=team_hook.url())
        NotificationRule.objects.create(owner_team="", webhook_url=default_hook.url())
        NotificationRule.objects.create(
            owner_team="Finance", webhook_url=team_hook.url(), enabled=False
        )
        for name, team in (("hr_one", "HR"), ("no_team", ""), ("finance_one", "Finance")):
            connector = make_connector(name, owner_team=team, **OAUTH2_PASSWORD)
            health = ConnectorHealth(connector=connector, last_ok=False, last_outcome="timeout")
            notice_send(connector=connector, payload=state_payload(connector, health, FAILING))
        assert [body["connector"] for _, _, body in team_hook.posts] == ["hr_one"]
        # No team, and a team whose rule is disabled: the default rule.
        assert [body["connector"] for _, _, body in default_hook.posts] == [
            "no_team",
            "finance_one",
        ]


def test_email_goes_through_djangos_backend(
    watched, hook, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    NotificationRule.objects.filter(owner_team="").update(
        emails="oncall@example.com\nhr-team@example.com"
    )
    for _ in range(2):
        run_test(watched, "/error200", django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["oncall@example.com", "hr-team@example.com"]
    assert "hr_portal is failing" in message.subject
    assert "/connectors/hr_portal/" in message.body
    assert hook.events() == [FAILING]  # both channels of the rule
    delivered = AuditEvent.objects.filter(action="notify_delivered")
    assert sorted(delivered.values_list("details__channel", flat=True)) == ["email", "webhook"]


def test_the_console_email_backend_in_debug():
    import os
    import subprocess
    import sys

    from tests.peers.celery_worker import BASE_DIR

    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.EMAIL_BACKEND)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_EMAIL_BACKEND"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", PYTHONPATH=str(BASE_DIR), DJANGO_DEBUG="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip().endswith("console.EmailBackend"), out.stderr


# --- delivery: policy, retries, audit ---------------------------------------------------------


def test_the_outbound_policy_refuses_a_blocked_address(hook, settings):
    """The name resolves (stubbed: nothing is looked up) to a link-local metadata address."""
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True

    def resolver(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    result = webhook_post(
        url=f"http://localhost:{hook.port}/hook", payload={"text": "hi"}, resolver=resolver
    )
    assert result.ok is False and result.status is None
    assert "blocked" in result.detail.lower()
    assert hook.posts == []


def test_loopback_is_refused_unless_allowed(hook, settings):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = False
    assert webhook_post(url=hook.url(), payload={"text": "hi"}).ok is False
    assert hook.posts == []
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    assert webhook_post(url=hook.url(), payload={"text": "hi"}).ok is True


def test_a_failure_names_the_host_only(closed_port, settings):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    result = webhook_post(url=f"http://127.0.0.1:{closed_port}{HOOK_PATH}?k=v1", payload={})
    assert result.ok is False and "refused" in result.detail
    assert "slack-like-secret-token" not in result.detail and "k=v1" not in result.detail


def test_a_redirect_is_not_followed(settings):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    with WebhookReceiver(statuses=[302]) as hook:
        result = webhook_post(url=hook.url(), payload={"text": "hi"})
    assert result.ok is False and result.status == 302
    assert len(hook.posts) == 1


@pytest.fixture
def countdowns(monkeypatch):
    """The countdown of each retry the delivery task asks for."""
    seen: list[int] = []
    real = Task.retry

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("countdown"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Task, "retry", spy)
    return seen


def _delivery_args(make_connector, url):
    connector = make_connector("hr_portal", **OAUTH2_PASSWORD)
    rule = NotificationRule.objects.create(owner_team="", webhook_url=url)
    from connectors.models import ConnectorHealth

    health = ConnectorHealth(connector=connector, last_ok=False, last_outcome="timeout")
    return rule.pk, connector.pk, state_payload(connector, health, FAILING)


def test_a_failing_webhook_is_retried_with_backoff_and_each_try_audited(
    make_connector, settings, eager, countdowns
):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    settings.CONNECTORS_WEBHOOK_RETRIES = 3
    with WebhookReceiver(statuses=[500] * 10) as hook:
        args = _delivery_args(make_connector, hook.url(HOOK_PATH))
        result = notify_webhook.apply(args=args)
    assert result.get() is False
    assert len(hook.posts) == 4  # the first try and three retries
    assert countdowns == [2, 4, 8]
    assert [retry_countdown(n) for n in range(5)] == [2, 4, 8, 16, 32]
    failed = AuditEvent.objects.filter(action="notify_failed").order_by("pk")
    assert [e.details["attempt"] for e in failed] == [1, 2, 3, 4]
    assert all(e.details["host"] == "127.0.0.1" and e.kind == "system" for e in failed)
    assert failed[0].connector_name == "hr_portal" and "HTTP 500" in failed[0].summary


def test_a_retry_that_succeeds_is_audited_as_delivered(make_connector, settings, eager, countdowns):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    with WebhookReceiver(statuses=[500, 200]) as hook:
        args = _delivery_args(make_connector, hook.url(HOOK_PATH))
        assert notify_webhook.apply(args=args).get() is True
    assert len(hook.posts) == 2 and countdowns == [2]
    actions = list(
        AuditEvent.objects.filter(kind="system").order_by("pk").values_list("action", flat=True)
    )
    assert actions == ["notify_failed", "notify_delivered"]


def test_no_audit_record_holds_the_webhook_url_beyond_its_host(
    make_connector, settings, eager, admin_client
):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    with WebhookReceiver(statuses=[500, 200]) as hook:
        notify_webhook.apply(args=_delivery_args(make_connector, hook.url(HOOK_PATH)))
    events = AuditEvent.objects.all()
    assert events.exists()
    for event in events:
        text = f"{event.summary} {event.details}"
        assert "slack-like-secret-token" not in text and HOOK_PATH not in text


# --- Client Secret expiry ---------------------------------------------------------------------


def test_secret_expiry_notices_at_30_7_and_1_days_each_once(make_connector, eager, hook, settings):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    NotificationRule.objects.create(owner_team="", webhook_url=hook.url())
    today = dt.date(2026, 12, 1)
    expires = today + dt.timedelta(days=30)
    make_connector(
        "azure_app", **{**OAUTH2_PASSWORD, "client_secret_expires_on": expires.isoformat()}
    )
    make_connector("later", **{**OAUTH2_PASSWORD, "client_secret_expires_on": "2027-06-01"})
    sent = []
    for offset in range(0, 32):
        day = today + dt.timedelta(days=offset)
        sent += [(day, n) for n in secret_expiry_check(today=day)]
        secret_expiry_check(today=day)  # twice a day: still once each
    assert [(d - today).days for d, _ in sent] == [0, 23, 29]
    assert [n for _, n in sent] == [("azure_app", 30), ("azure_app", 7), ("azure_app", 1)]
    assert hook.events() == [SECRET_EXPIRING] * 3
    assert [body["days_left"] for _, _, body in hook.posts] == [30, 7, 1]
    assert hook.posts[2][2]["text"] == (
        f"The Client Secret of azure_app expires tomorrow ({expires.isoformat()})."
    )
    assert SecretExpiryNotice.objects.count() == 3


def test_a_missed_day_still_sends_the_notice_it_reached(make_connector, eager, hook, settings):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    NotificationRule.objects.create(owner_team="", webhook_url=hook.url())
    today = dt.date(2026, 12, 1)
    make_connector(
        "azure_app",
        **{
            **OAUTH2_PASSWORD,
            "client_secret_expires_on": (today + dt.timedelta(days=5)).isoformat(),
        },
    )
    assert secret_expiry_check(today=today) == [("azure_app", 7)]
    assert secret_expiry_check(today=today) == []


# --- the settings page ------------------------------------------------------------------------


def test_the_webhook_url_is_encrypted_and_never_rendered_back(admin_client):
    url = f"https://127.0.0.1:9{HOOK_PATH}"
    response = admin_client.post(
        "/fleet/notifications/new/",
        {"owner_team": "HR", "emails": "a@example.com", "webhook_url": url, "enabled": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = NotificationRule.objects.get(owner_team="HR")
    assert rule.webhook_url == url
    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_url FROM connectors_notificationrule")
        (stored,) = cursor.fetchone()
    assert "slack-like-secret-token" not in stored
    for page in ("/fleet/notifications/", f"/fleet/notifications/{rule.pk}/"):
        html = admin_client.get(page).content.decode()
        assert "slack-like-secret-token" not in html and "Stored" in html
    # Blank keeps it; "Clear it" removes it.
    data = {"owner_team": "HR", "emails": "a@example.com", "enabled": "on"}
    assert admin_client.post(f"/fleet/notifications/{rule.pk}/", data).status_code == 302
    assert NotificationRule.objects.get(pk=rule.pk).webhook_url == url
    data["webhook_url_clear"] = "on"
    assert admin_client.post(f"/fleet/notifications/{rule.pk}/", data).status_code == 302
    assert NotificationRule.objects.get(pk=rule.pk).webhook_url == ""
    changes = AuditEvent.objects.filter(action__startswith="notify_rule")
    assert [e.details["webhook"] for e in changes.order_by("pk")] == ["set", "unchanged", "cleared"]
    assert all("slack-like-secret-token" not in f"{e.summary}{e.details}" for e in changes)


def test_a_rule_needs_a_channel_and_valid_addresses(admin_client):
    response = admin_client.post("/fleet/notifications/new/", {"owner_team": "HR"})
    assert response.status_code == 400
    assert "Give email addresses, a webhook URL, or both." in response.content.decode()
    response = admin_client.post(
        "/fleet/notifications/new/", {"owner_team": "HR", "emails": "not-an-address"}
    )
    assert "not-an-address is not an email address." in response.content.decode()
    assert not NotificationRule.objects.exists()


def test_only_admins_manage_notifications(client, operator):
    client.force_login(operator)
    assert client.get("/fleet/notifications/").status_code == 403
    assert client.post("/fleet/notifications/new/", {"emails": "a@example.com"}).status_code == 403
    assert not NotificationRule.objects.exists()
