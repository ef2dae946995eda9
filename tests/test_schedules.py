"""Scheduled re-validation: the default and per-connector intervals, the dispatcher's spread and
jitter, the scheduler identity (in runs and the audit log, never signing in), the beat entries,
and beat firing the dispatcher on a real worker."""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent, TestRun
from connectors.identities import SCHEDULER_USERNAME, is_system_user, scheduler_user
from connectors.models import Connector, ConnectorHealth, ConnectorSchedule, ScheduleSettings
from connectors.schedules import (
    connector_schedule_set,
    schedule_default_minutes,
    schedule_default_set,
    schedule_due,
    schedule_phase,
    schedule_run,
)
from tests.conftest import OAUTH2_PASSWORD

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC)


def fleet(count: int, **values) -> list[Connector]:
    Connector.objects.bulk_create(
        [
            Connector(
                name=f"c{i:04d}", auth_config="none", base_url="https://api.example.com", **values
            )
            for i in range(count)
        ]
    )
    return list(Connector.objects.order_by("pk"))


def run_minutes(minutes: int, start: dt.datetime = START) -> list[tuple[int, list]]:
    """The dispatcher once a minute: (minute, its due list) for each minute."""
    rng = random.Random(7)
    return [(m, schedule_due(now=start + dt.timedelta(minutes=m), rng=rng)) for m in range(minutes)]


def test_the_default_comes_from_the_setting_until_an_admin_stores_one(settings, admin_user):
    settings.CONNECTORS_SCHEDULE_DEFAULT_MINUTES = 360
    assert schedule_default_minutes() == 360
    schedule_default_set(minutes=120, user=admin_user)
    assert (
        schedule_default_minutes() == 120 == ScheduleSettings.objects.get().default_interval_minutes
    )
    event = AuditEvent.objects.get(action="schedule_default")
    assert event.username == "admin" and "every 6 hours → every 2 hours" in event.summary


def test_500_connectors_are_spread_over_the_interval(settings):
    settings.CONNECTORS_SCHEDULE_DEFAULT_MINUTES = 60
    connectors = fleet(500)
    first = schedule_due(now=START - dt.timedelta(minutes=1))
    assert first == []  # switching the schedule on tests nobody at once
    per_minute = run_minutes(60)
    queued = [due for _, dues in per_minute for due in dues]
    # Each connector exactly once in its interval...
    assert sorted(d.connector_id for d in queued) == [c.pk for c in connectors]
    # ... spread by the hash of its id (about 8 a minute, never a burst)...
    counts = [len(dues) for _, dues in per_minute]
    assert max(counts) <= 25 and sum(1 for n in counts if n) >= 55
    # ... and by a random delay inside the minute.
    delays = [d.countdown for d in queued]
    assert all(0 <= d <= 60 for d in delays) and len(set(delays)) > 400
    assert 20 < sum(delays) / len(delays) < 40
    # The next interval repeats the same phases: again once each.
    again = [
        d.connector_id for _, dues in run_minutes(60, START + dt.timedelta(hours=1)) for d in dues
    ]
    assert Counter(again) == Counter(c.pk for c in connectors)


def test_phases_are_stable_and_inside_the_interval():
    phases = [schedule_phase(pk, 3600) for pk in range(1, 1001)]
    assert phases == [schedule_phase(pk, 3600) for pk in range(1, 1001)]
    assert all(0 <= p < 3600 for p in phases)
    # Every 6-minute tenth of the hour gets its share (expected 100 each).
    assert all(60 <= n <= 140 for n in Counter(p // 360 for p in phases).values())


def test_overrides_disabled_connectors_and_off(settings, admin_user):
    settings.CONNECTORS_SCHEDULE_DEFAULT_MINUTES = 60
    often, off, default, disabled = fleet(4)
    Connector.objects.filter(pk=disabled.pk).update(enabled=False)
    connector_schedule_set(connector=often, mode="every", interval_minutes=10, user=admin_user)
    connector_schedule_set(connector=off, mode="off", interval_minutes=None, user=admin_user)
    schedule_due(now=START - dt.timedelta(minutes=1))
    queued = Counter(d.connector_id for _, dues in run_minutes(60) for d in dues)
    assert queued == {often.pk: 6, default.pk: 1}
    assert AuditEvent.objects.filter(action="schedule_connector").count() == 2


def test_the_default_off_schedules_nothing(settings):
    settings.CONNECTORS_SCHEDULE_DEFAULT_MINUTES = 0
    fleet(5)
    assert [d for _, dues in run_minutes(30) for d in dues] == []


def test_a_connector_tested_since_its_slot_began_is_not_tested_again(settings, monkeypatch):
    from connectors import schedules

    settings.CONNECTORS_SCHEDULE_DEFAULT_MINUTES = 60
    # Its slots begin 10 minutes into each hour. The hash of its id would put them anywhere,
    # and one in an hour's last minute falls between the whole minutes this dispatcher runs at
    # (it failed so whenever the database handed out such an id).
    monkeypatch.setattr(schedules, "schedule_phase", lambda connector_id, interval: 600)
    (connector,) = fleet(1)
    schedule_due(now=START - dt.timedelta(minutes=1))
    hour = dt.timedelta(hours=1)
    assert len([d for _, dues in run_minutes(60) for d in dues]) == 1
    # Someone tests it just after its slot in the second hour began: that slot is done.
    slot = START + hour + dt.timedelta(seconds=schedules.schedule_phase(connector.pk, 3600))
    ConnectorHealth.objects.create(
        connector=connector, last_tested_at=slot + dt.timedelta(seconds=1), last_ok=True
    )
    assert [d for _, dues in run_minutes(60, START + hour) for d in dues] == []
    assert len([d for _, dues in run_minutes(60, START + 2 * hour) for d in dues]) == 1


def test_the_scheduler_runs_tests_in_its_own_name(make_connector, fault_server, settings, client):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    settings.CONNECTORS_TEST_RATE_LIMIT = "1/60"  # a person's limit; the scheduler is none
    connector = make_connector(
        "hr_portal",
        **{
            **OAUTH2_PASSWORD,
            "oauth2_client_id": fault_server.client_id,
            "oauth2_client_secret": fault_server.client_secret,
            "oauth2_token_url": fault_server.url("/ok"),
        },
    )
    for _ in range(3):
        assert schedule_run(connector_id=connector.pk)["ok"] is True
    runs = TestRun.objects.filter(connector_id=connector.pk)
    assert runs.count() == 3
    assert set(runs.values_list("username", "source")) == {(SCHEDULER_USERNAME, "background")}
    events = AuditEvent.objects.filter(kind="test_run", connector_id=connector.pk)
    assert set(events.values_list("username", flat=True)) == {SCHEDULER_USERNAME}
    # The audit log shows it as a system identity.
    admin = get_user_model().objects.create_superuser("root", password="pw-for-tests-7f3a")
    client.force_login(admin)
    page = client.get(f"/audit/{events.first().pk}/").content.decode()
    assert "Scheduler (system)" in page
    history = client.get(f"/connectors/{connector.name}/").content.decode()
    assert "Scheduler (system)" in history


def test_the_scheduler_can_never_sign_in():
    user = scheduler_user()
    assert scheduler_user().pk == user.pk  # made once
    assert not user.is_active and not user.has_usable_password()
    assert is_system_user(user)
    response = Client().post(
        "/accounts/login/", {"username": SCHEDULER_USERNAME, "password": "anything"}
    )
    assert response.status_code == 200  # the form again, not a redirect into the console


def test_an_account_made_by_hand_under_its_name_is_closed():
    person = get_user_model().objects.create_user(SCHEDULER_USERNAME, password="pw-for-tests-1")
    assert not is_system_user(person)
    assert scheduler_user().pk == person.pk
    person.refresh_from_db()
    assert not person.is_active and not person.has_usable_password()


def test_a_disabled_or_deleted_connector_is_skipped():
    (connector,) = fleet(1, enabled=False)
    assert schedule_run(connector_id=connector.pk) == {
        "connector_id": connector.pk,
        "skipped": "deleted or disabled",
    }
    assert not TestRun.objects.exists()


def test_the_dispatcher_task_queues_the_due_tests(settings, monkeypatch):
    from connectors import tasks_schedule

    settings.CONNECTORS_SCHEDULE_DEFAULT_MINUTES = 60
    fleet(3)
    schedule_due(now=timezone.now() - dt.timedelta(hours=2))
    sent = []
    monkeypatch.setattr(tasks_schedule, "task_send", lambda **kw: sent.append(kw))
    assert tasks_schedule.schedule_dispatch() == {"queued": 3}
    assert {s["task"].name for s in sent} == {"connectors.schedule_run"}
    assert all(0 <= s["countdown"] <= 60 for s in sent)
    assert tasks_schedule.schedule_dispatch() == {"queued": 0}  # claimed for this slot


def test_the_beat_entries_are_made_by_the_migration():
    from django_celery_beat.models import PeriodicTask

    dispatcher = PeriodicTask.objects.get(task="connectors.schedule_dispatch")
    assert (dispatcher.interval.every, dispatcher.interval.period) == (1, "minutes")
    expiry = PeriodicTask.objects.get(task="connectors.secret_expiry_check")
    assert (expiry.crontab.hour, expiry.crontab.minute) == ("6", "0")


def test_the_tasks_are_registered_for_workers():
    from config.celery import app

    app.loader.import_default_modules()
    for name in (
        "connectors.schedule_dispatch",
        "connectors.schedule_run",
        "connectors.secret_expiry_check",
        "connectors.notify_webhook",
        "connectors.notify_email",
    ):
        assert name in app.tasks


def test_the_schedule_page(admin_client, make_connector):
    connector = make_connector("hr_portal", **OAUTH2_PASSWORD)
    page = admin_client.get("/fleet/schedule/").content.decode()
    assert "Scheduled re-validation" in page
    response = admin_client.post(
        "/fleet/schedule/", {"form": "default", "default_interval_minutes": "2"}
    )
    assert response.status_code == 400 and "at least 5 minutes" in response.content.decode()
    admin_client.post("/fleet/schedule/", {"form": "default", "default_interval_minutes": "360"})
    assert schedule_default_minutes() == 360
    response = admin_client.post(
        "/fleet/schedule/", {"form": "connector", "connector": "hr_portal", "mode": "every"}
    )
    assert "Enter the interval for this connector." in response.content.decode()
    response = admin_client.post(
        "/fleet/schedule/", {"form": "connector", "connector": "nope", "mode": "off"}
    )
    assert "There is no connector with this name." in response.content.decode()
    admin_client.post(
        "/fleet/schedule/",
        {"form": "connector", "connector": "hr_portal", "mode": "every", "interval_minutes": "15"},
    )
    row = ConnectorSchedule.objects.get(connector=connector)
    assert (row.mode, row.interval_minutes) == ("every", 15)
    assert "Every 15 minutes" in admin_client.get("/fleet/schedule/").content.decode()


def test_only_admins_set_the_schedule(client, operator):
    client.force_login(operator)
    assert client.get("/fleet/schedule/").status_code == 403
    response = client.post("/fleet/schedule/", {"form": "default", "default_interval_minutes": "5"})
    assert response.status_code == 403
    assert not ScheduleSettings.objects.exists()


# --- beat fires the dispatcher on a real worker -----------------------------------------------

MAKE_FAST = """
import django
django.setup()
from django_celery_beat.models import IntervalSchedule, PeriodicTask
every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
PeriodicTask.objects.filter(task="connectors.schedule_dispatch").update(
    interval=every, queue={queue!r}
)
PeriodicTask.objects.exclude(task="connectors.schedule_dispatch").update(enabled=False)
"""


def test_beat_fires_the_dispatcher_from_the_migrated_entry(celery_redis_worker, tmp_path):
    """The entry the migration made, sped up to every second, run by a worker of its own.

    beat, the worker and the migration share a file database (DATABASE_URL): the dispatcher
    reads the connectors there, not in pytest-django's in-memory database.
    """
    from tests.peers.celery_worker import BASE_DIR, celery_worker, queue_delete, redis_broker

    broker = redis_broker(celery_redis_worker.broker.url)
    database = f"sqlite:///{tmp_path / 'beat.sqlite3'}"
    env = {
        **os.environ,
        **broker.env,
        "DATABASE_URL": database,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(BASE_DIR),
    }
    for argv in (
        [sys.executable, "manage.py", "migrate", "--noinput"],
        [sys.executable, "-c", MAKE_FAST.format(queue=broker.queue)],
    ):
        done = subprocess.run(argv, cwd=BASE_DIR, env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    try:
        with celery_worker(broker, worker_dir, extra_env={"DATABASE_URL": database}) as worker:
            _beat_until_dispatched(env, tmp_path, worker)
    finally:
        queue_delete(broker)


def _beat_until_dispatched(env: dict[str, str], tmp_path, worker) -> None:
    from tests.peers.celery_worker import beat_until

    beat_log = beat_until(
        env,
        tmp_path / "beat.log",
        lambda: _dispatched(worker.log_text()),
        explain=lambda: worker.log_text()[-2000:],
    )
    assert "(connectors.schedule_dispatch)" in beat_log


def _dispatched(log: str) -> bool:
    return any(
        "connectors.schedule_dispatch" in line and "succeeded" in line and "'queued': 0" in line
        for line in log.splitlines()
    )
