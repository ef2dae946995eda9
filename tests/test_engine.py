"""The background runner: Celery on Redis and on the embedded default, a dead broker, make run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from config.celery import RunnerUnreachable, broker_check, broker_reachable, task_send
from config.tasks import ping

BASE_DIR = Path(__file__).resolve().parent.parent


# --- A real worker process -------------------------------------------------------------------


def test_a_task_runs_on_a_real_worker_over_redis(celery_redis, celery_redis_worker):
    result = task_send(task=ping, args=("over redis",))
    assert result.get(timeout=20) == "over redis"
    assert celery_redis_worker.logged(f"Task config.tasks.ping[{result.id}] succeeded")
    assert broker_reachable(timeout=1)


def test_a_task_runs_on_the_embedded_default(celery_embedded, celery_embedded_worker):
    result = task_send(task=ping, args=("embedded",))
    assert result.get(timeout=20) == "embedded"
    assert celery_embedded_worker.logged(f"Task config.tasks.ping[{result.id}] succeeded")
    # The message went through the worker's folder, which is empty again once it is consumed.
    queue = Path(celery_embedded_worker.broker.transport_options["data_folder_in"])
    assert queue.is_dir() and not list(queue.glob("*.msg"))
    assert broker_reachable(timeout=1)


def test_a_task_runs_on_a_real_worker_over_rabbitmq(celery_amqp, celery_amqp_worker):
    result = task_send(task=ping, args=("over amqp",))
    assert result.get(timeout=20) == "over amqp"
    assert celery_amqp_worker.logged(f"Task config.tasks.ping[{result.id}] succeeded")


def test_a_wrong_rabbitmq_password_is_an_authentication_failure(celery_amqp_worker):
    from tests.peers.celery_worker import amqp_broker, app_on_broker

    with app_on_broker(amqp_broker("amqp://guest:hunter2-wrong@127.0.0.1:5672//")):
        assert broker_check(timeout=2) == "authentication failed"
        with pytest.raises(RunnerUnreachable) as caught:
            task_send(task=ping)
    assert caught.value.reason == "authentication failed"
    assert "hunter2" not in repr(caught.value)


def test_the_embedded_default_is_what_settings_give_without_a_broker():
    """No CELERY_BROKER_URL: the filesystem transport under .local/celery/, beat on the DB."""
    code = textwrap.dedent(
        """
        import django, json
        django.setup()
        from config.celery import app
        print(json.dumps([app.conf.broker_url, app.conf.broker_transport_options,
                          app.conf.result_backend, app.conf.beat_scheduler]))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", PYTHONPATH=str(BASE_DIR))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd="/", capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    import json

    url, options, backend, scheduler = json.loads(out.stdout.strip().splitlines()[-1])
    local = BASE_DIR / ".local" / "celery"
    assert url == "filesystem://localhost//"
    assert options["data_folder_in"] == options["data_folder_out"] == str(local / "queue")
    assert backend == f"file://{local / 'results'}"
    assert scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


def test_check_deploy_warns_about_the_embedded_broker(settings):
    from django.core.checks import registry

    from config.celery import embedded_broker_check

    assert embedded_broker_check in registry.registry.get_checks(include_deployment_checks=True)
    assert embedded_broker_check not in registry.registry.get_checks()
    assert [message.id for message in embedded_broker_check()] == ["config.I001"]
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    assert embedded_broker_check() == []


@pytest.mark.django_db
def test_schedules_are_stored_in_the_database():
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    assert "django_celery_beat" in settings.INSTALLED_APPS
    every = IntervalSchedule.objects.create(every=6, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(name="ping", task="config.tasks.ping", interval=every)
    assert PeriodicTask.objects.get(name="ping").task == "config.tasks.ping"


# --- A broker that is down -------------------------------------------------------------------


def test_a_closed_broker_port_is_reported_unreachable_quickly(celery_broker_down):
    started = time.monotonic()
    assert broker_reachable(timeout=1) is False
    assert broker_check(timeout=1) == "connection refused"
    assert time.monotonic() - started < 3


def test_sending_to_a_dead_broker_says_the_runner_is_not_reachable(celery_broker_down):
    started = time.monotonic()
    with pytest.raises(RunnerUnreachable) as caught:
        task_send(task=ping)
    assert time.monotonic() - started < 3
    assert str(caught.value) == "The background runner is not reachable."
    assert caught.value.reason == "connection refused"
    # Neither the broker's address nor its password leaks through the exception.
    assert caught.value.__cause__ is None
    assert "hunter2" not in repr(caught.value) and "127.0.0.1" not in str(caught.value)


@pytest.mark.django_db(transaction=True)
def test_a_dead_broker_inside_a_transaction_leaves_nothing_half_created(celery_broker_down):
    """The pattern for callers: create the rows and send in one transaction."""
    with pytest.raises(RunnerUnreachable), transaction.atomic():
        User.objects.create_user(username="made-before-the-send")
        task_send(task=ping)
    assert not User.objects.filter(username="made-before-the-send").exists()


def test_a_broker_that_accepts_and_never_answers_times_out(celery_broker_down):
    from tests.peers.celery_worker import app_on_broker, redis_broker

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with app_on_broker(redis_broker(f"redis://127.0.0.1:{port}/0", results=False)):
            started = time.monotonic()
            assert broker_check(timeout=1) == "timed out"
            assert time.monotonic() - started < 3


def test_sending_to_a_broker_that_never_answers_gives_up(celery_broker_down):
    """Redis's socket_timeout (5 s in settings, 0.5 s here) bounds a send to a silent broker."""
    from tests.peers.celery_worker import Broker, app_on_broker

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
        with app_on_broker(Broker(url, "", "celery", options)):
            started = time.monotonic()
            with pytest.raises(RunnerUnreachable) as caught:
                task_send(task=ping)
            assert time.monotonic() - started < 5
    assert caught.value.reason == "timed out"


# --- make run's supervisor -------------------------------------------------------------------

SLEEPER = "import time; time.sleep(120)"


def _spawner(pid_file: Path) -> str:
    """A program that starts a grandchild, writes the grandchild's pid, and sleeps."""
    return (
        "import subprocess, sys, time, pathlib; "
        f"p = subprocess.Popen([sys.executable, '-c', {SLEEPER!r}]); "
        f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid)); time.sleep(120)"
    )


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # An orphan reparented to init may linger as a zombie for a moment.
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"):
            return True
        time.sleep(0.05)
    return False


def _wait_for(path: Path, within: float = 20.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise TimeoutError(path)


def _run_supervisor(commands: dict[str, list[str]]) -> subprocess.Popen[str]:
    code = f"import sys; from config.serve import supervise; sys.exit(supervise({commands!r}))"
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**os.environ, "PYTHONPATH": str(BASE_DIR)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_one_program_exiting_stops_the_others(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    supervisor = _run_supervisor(
        {
            "web": [sys.executable, "-c", _spawner(pid_file)],
            "worker": [sys.executable, "-c", f"import time; time.sleep(1.5); {SLEEPER}"],
            "scheduler": [
                sys.executable,
                "-c",
                f"import pathlib, time\nwhile not pathlib.Path({str(pid_file)!r}).exists(): "
                "time.sleep(0.05)\nraise SystemExit(3)",
            ],
        }
    )
    grandchild = _wait_for(pid_file)
    output, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 1
    assert "scheduler exited with status 3; stopping the others" in output
    assert _gone(grandchild)


def test_ctrl_c_stops_all_of_them(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    supervisor = _run_supervisor(
        {
            "web": [sys.executable, "-c", _spawner(pid_file)],
            "worker": [sys.executable, "-c", SLEEPER],
        }
    )
    grandchild = _wait_for(pid_file)
    supervisor.send_signal(signal.SIGINT)
    output, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 0, output
    assert "serve: stopping" in output
    assert _gone(grandchild)


def test_make_run_starts_the_web_server_a_worker_and_the_scheduler():
    from config.serve import programs

    commands = programs("127.0.0.1", 8765)
    assert commands["web"][-2:] == ["runserver", "127.0.0.1:8765"]
    assert commands["worker"][2:6] == ["celery", "-A", "config", "worker"]
    assert commands["scheduler"][2:6] == ["celery", "-A", "config", "beat"]
    assert "django_celery_beat.schedulers:DatabaseScheduler" in commands["scheduler"]
    makefile = (BASE_DIR / "Makefile").read_text()
    assert "python -m config.serve --host $(HOST) --port $(PORT)" in makefile


# --- The scheduler ---------------------------------------------------------------------------

MAKE_SCHEDULE = """
import json, django
django.setup()
from django_celery_beat.models import IntervalSchedule, PeriodicTask
every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
PeriodicTask.objects.create(
    name="ping every second", task="config.tasks.ping", interval=every,
    args=json.dumps(["from the scheduler"]), queue={queue!r},
)
"""


def test_the_scheduler_fires_a_schedule_stored_in_the_database(celery_redis_worker, tmp_path):
    """beat reads a PeriodicTask from the database and the worker runs it.

    beat and the worker are other processes, so the schedule lives in a file database that all
    of them open (DATABASE_URL), not in pytest-django's in-memory one.
    """
    from tests.peers.celery_worker import beat_until

    broker = celery_redis_worker.broker
    env = {
        **os.environ,
        **broker.env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'beat.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(BASE_DIR),
    }
    for argv in (
        [sys.executable, "manage.py", "migrate", "--noinput"],
        [sys.executable, "-c", MAKE_SCHEDULE.format(queue=broker.queue)],
    ):
        done = subprocess.run(argv, cwd=BASE_DIR, env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    beat_log = beat_until(
        env,
        tmp_path / "beat.log",
        lambda: "succeeded"
        in _ping_lines(celery_redis_worker.log_text(), "from the scheduler"),
    )
    assert "Scheduler: Sending due task ping every second (config.tasks.ping)" in beat_log


def _ping_lines(log: str, value: str) -> str:
    return "\n".join(line for line in log.splitlines() if repr(value) in line)


def test_a_worker_can_be_given_the_test_database():
    from tests.peers.celery_worker import database_url

    pg = {"ENGINE": "django.db.backends.postgresql", "NAME": "test_test", "USER": "postgres",
          "PASSWORD": "", "HOST": "127.0.0.1", "PORT": "5432"}  # fmt: skip
    assert database_url(pg) == "postgres://postgres@127.0.0.1:5432/test_test"
    assert database_url({**pg, "PASSWORD": "p@ss"}) == (
        "postgres://postgres:p%40ss@127.0.0.1:5432/test_test"
    )
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/t.sqlite3"}
    assert database_url(sqlite) == "sqlite:////tmp/t.sqlite3"
    with pytest.raises(RuntimeError, match="in-memory"):
        database_url({**sqlite, "NAME": "file:memorydb_default?mode=memory&cache=shared"})
