"""The background runner: one Celery app for batches, schedules and notifications.

Production points CELERY_BROKER_URL at Redis or RabbitMQ and runs any number of
`celery -A config worker` machines plus one `celery -A config beat` (README "Production").
With no broker configured the app uses kombu's filesystem transport under .local/celery/, so
`make run` needs no extra server (README "Background runner").

Code that queues work calls `task_send`, never `.delay()` directly: a dead broker then raises
RunnerUnreachable ("the background runner is not reachable") quickly, inside the caller's
transaction, so nothing is left half-created.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.result import AsyncResult
from celery.signals import task_postrun, task_prerun
from django.core import checks
from kombu.exceptions import OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
# Every setting named CELERY_<NAME> in config/settings.py becomes Celery's <name>.
app.config_from_object("django.conf:settings", namespace="CELERY")
# tasks.py of each installed app, and config/tasks.py (config is not an installed app).
app.autodiscover_tasks()
app.autodiscover_tasks(["config"])


# Celery's Django fixup closes the database connection before and after every task unless
# CELERY_DB_REUSE_MAX is set, and then only every 2 x that many tasks: a new connection for each
# test of a batch costs a worker more CPU than recording the test. So the fixup never closes it
# (a count no worker reaches), and between tasks Django's own rule applies, as between requests:
# a connection that is broken or older than CONN_MAX_AGE is closed (_database_between_tasks).
app.conf.CELERY_DB_REUSE_MAX = 2**62


@task_prerun.connect
@task_postrun.connect
def _database_between_tasks(sender: Any = None, **_: Any) -> None:
    # As the fixup does: a task run eagerly (in the caller's thread) is part of the caller's
    # work, whose transaction may be open.
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()


@app.on_after_configure.connect
def _make_embedded_folders(sender: Celery, **_: Any) -> None:
    """kombu's filesystem transport and Celery's file result backend need existing folders."""
    options = sender.conf.broker_transport_options or {}
    folders = [
        options.get(name) for name in ("data_folder_in", "data_folder_out", "control_folder")
    ]
    backend = str(sender.conf.result_backend or "")
    if backend.startswith("file://"):
        folders.append(backend.removeprefix("file://"))
    for folder in folders:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)


UNREACHABLE_MESSAGE = "The background runner is not reachable."

# One quick retry, then give up: a request waits a second at most for a dead broker, instead
# of Celery's default publish retries.
_SEND_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


class RunnerUnreachable(Exception):
    """The broker refused or did not answer; the message names no host and no credential."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(UNREACHABLE_MESSAGE)


def broker_failure_reason(exc: BaseException) -> str:
    """A short reason for a broker failure that never repeats the URL or its password."""
    for error in (exc, exc.__cause__, exc.__context__):
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, TimeoutError):
            return "timed out"
        if isinstance(error, PermissionError):
            return "permission denied"
    text = str(exc).lower()
    for needle, reason in (
        # Before "refused": RabbitMQ says ACCESS_REFUSED for a wrong password.
        ("access_refused", "authentication failed"),
        ("auth", "authentication failed"),
        ("refused", "connection refused"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
    ):
        if needle in text:
            return reason
    return type(exc).__name__


def broker_reachable(*, timeout: float = 1.0, celery_app: Celery | None = None) -> bool:
    """True when a connection to the broker opens within `timeout` seconds."""
    return broker_check(timeout=timeout, celery_app=celery_app) == ""


def broker_check(*, timeout: float = 1.0, celery_app: Celery | None = None) -> str:
    """Open and close one broker connection: "" when it worked, else a short safe reason."""
    celery_app = celery_app or app
    # Bound every socket wait, not only the connect: a server that accepts and never answers
    # would otherwise hold a health probe forever.
    limits = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    redis = str(celery_app.conf.broker_url).startswith(("redis:", "rediss:"))
    connection = celery_app.connection_for_write(
        connect_timeout=timeout, transport_options=limits if redis else None
    )
    try:
        # One attempt, no retry loop: the caller (a health probe, a page) must not wait.
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=math.ceil(timeout))
        connection.default_channel  # noqa: B018 - opens a channel, as sending would
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return broker_failure_reason(exc)
    finally:
        connection.release()
    return _queue_folder_problem(celery_app)


def _queue_folder_problem(celery_app: Celery) -> str:
    """The embedded queue "connects" without touching its folder: check it can take a message."""
    if not str(celery_app.conf.broker_url).startswith("filesystem:"):
        return ""
    folder = (celery_app.conf.broker_transport_options or {}).get("data_folder_out", "")
    if not (os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)):
        return "queue folder not writable"
    return ""


def task_send(
    *,
    task: Task[Any, Any],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncResult[Any]:
    """Queue `task`; raises RunnerUnreachable at once when the broker is down."""
    try:
        return task.apply_async(
            args=args, kwargs=kwargs or {}, retry=True, retry_policy=_SEND_RETRY_POLICY, **options
        )
    except Exception as exc:
        errors: tuple[type[BaseException], ...] = (OperationalError, ConnectionError, TimeoutError)
        if isinstance(exc, errors + _broker_errors(task.app)):
            raise RunnerUnreachable(broker_failure_reason(exc)) from None
        raise


def _broker_errors(celery_app: Celery) -> tuple[type[BaseException], ...]:
    """The transport's own connection and channel errors (amqp's AccessRefused, redis's...)."""
    connection = celery_app.connection_for_write()
    try:
        return (*connection.connection_errors, *connection.channel_errors)
    finally:
        connection.release()


@checks.register(deploy=True)
def embedded_broker_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """`check --deploy`: the embedded queue works on one machine only.

    Info, not Warning: a single-machine installation is legitimate, and `check --deploy
    --fail-level WARNING` must keep passing for it.
    """
    from django.conf import settings

    if not str(settings.CELERY_BROKER_URL).startswith("filesystem:"):
        return []
    return [
        checks.Info(
            "CELERY_BROKER_URL is not set: background tasks go through the embedded queue in "
            f"{settings.CELERY_DATA_DIR}, which only a worker on this machine can read.",
            hint="Set CELERY_BROKER_URL=redis://... or amqp://..., the same on the web server "
            'and every worker (README "Production").',
            id="config.I001",
        )
    ]
