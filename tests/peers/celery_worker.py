"""A real Celery worker in a subprocess, and the in-process app pointed at the same broker.

    with celery_worker(broker, tmp_dir) as worker:      # starts `celery -A config worker`
        with app_on_broker(broker):                      # config.celery.app now sends there
            task_send(task=ping).get(timeout=10)

`Broker` says which broker both sides use: Redis (a dedicated database number and a queue named
for this test session, so concurrent runs on one Redis never take each other's messages) or the
embedded filesystem transport in a temporary folder.

Tasks that need the database: the worker is another process, so it cannot see pytest-django's
in-memory SQLite database nor an uncommitted test transaction. Such tests use `transactional_db`
and start their worker with `extra_env={"DATABASE_URL": database_url(connection.settings_dict)}`:
on PostgreSQL that is pytest-django's `test_<name>` database; on SQLite it needs a file test
database (DATABASES["default"]["TEST"]["NAME"]). The scheduler test in tests/test_engine.py
shares a file database with beat that way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Broker:
    """What both the worker and the in-process app are told: URL, options, queue."""

    url: str
    result_backend: str
    queue: str
    transport_options: dict[str, Any] = field(default_factory=dict)
    # Environment for the worker process, which reads config/settings.py like production.
    env: dict[str, str] = field(default_factory=dict)


def redis_broker(url: str = "redis://127.0.0.1:6379/15", *, results: bool = True) -> Broker:
    """Redis as broker and, with `results`, as result backend (the product needs none)."""
    queue = f"tests-{os.getpid()}-{time.monotonic_ns()}"
    return Broker(
        url=url,
        result_backend=url if results else "",
        queue=queue,
        transport_options={"socket_connect_timeout": 2, "socket_timeout": 5},
        env={"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url},
    )


def amqp_broker(url: str = "amqp://guest:guest@127.0.0.1:5672//") -> Broker:
    """RabbitMQ, with results sent back over AMQP itself (rpc://)."""
    queue = f"tests-{os.getpid()}-{time.monotonic_ns()}"
    return Broker(
        url=url,
        result_backend="rpc://",
        queue=queue,
        env={"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": "rpc://"},
    )


def queue_delete(broker: Broker) -> None:
    """Remove this session's queue (RabbitMQ keeps it; Redis keeps its binding)."""
    with app_on_broker(broker) as app, app.connection_for_write() as connection:
        connection.default_channel.queue_delete(broker.queue)
    if broker.url.startswith("redis:"):
        import redis

        client = redis.Redis.from_url(broker.url)
        # kombu's exchange bindings of this session's queue outlive queue_delete.
        stale = list(client.scan_iter(match=f"*{broker.queue}*"))
        if stale:
            client.delete(*stale)


def filesystem_broker(data_dir: Path) -> Broker:
    """The embedded default, as config/settings.py builds it when CELERY_BROKER_URL is unset."""
    return Broker(
        url="filesystem://localhost//",
        result_backend=f"file://{data_dir / 'results'}",
        queue="celery",
        transport_options={
            "data_folder_in": str(data_dir / "queue"),
            "data_folder_out": str(data_dir / "queue"),
            "control_folder": str(data_dir / "control"),
        },
        env={
            "CELERY_BROKER_URL": "",
            "CELERY_RESULT_BACKEND": "",
            "CELERY_DATA_DIR": str(data_dir),
        },
    )


def database_url(settings_dict: dict[str, Any]) -> str:
    """DATABASE_URL for a worker process that must see the test database (transactional_db).

    Pass `connection.settings_dict` once pytest-django has set the test database up. SQLite's
    default test database lives in memory, which no other process can open: such a test needs
    DATABASES["default"]["TEST"]["NAME"] set to a file.
    """
    from urllib.parse import quote

    engine, name = settings_dict["ENGINE"], str(settings_dict["NAME"])
    if engine.endswith("sqlite3"):
        if name == ":memory:" or name.startswith("file:memorydb") or "mode=memory" in name:
            raise RuntimeError("an in-memory SQLite test database is invisible to a worker")
        return f"sqlite:///{name}"
    if engine.endswith("postgresql"):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{quote(name, safe='')}"
    raise RuntimeError(f"no DATABASE_URL form for {engine}")


def _reset_connections(app: Any) -> None:
    """Drop the app's cached broker pools and result backend so the next use reads app.conf."""
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


@contextmanager
def app_on_broker(broker: Broker) -> Iterator[Any]:
    """Point config.celery.app (what task_send uses) at `broker`, and back afterwards."""
    from config.celery import app

    keys = ("broker_url", "result_backend", "broker_transport_options", "task_default_queue")
    saved = {key: app.conf[key] for key in keys}
    for folder in ("data_folder_in", "control_folder"):
        if folder in broker.transport_options:
            Path(broker.transport_options[folder]).mkdir(parents=True, exist_ok=True)
    if broker.result_backend.startswith("file://"):
        Path(broker.result_backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    app.conf.update(
        broker_url=broker.url,
        result_backend=broker.result_backend or None,
        broker_transport_options=broker.transport_options,
        task_default_queue=broker.queue,
    )
    _reset_connections(app)
    try:
        yield app
    finally:
        app.conf.update(saved)
        _reset_connections(app)


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    broker: Broker

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def logged(self, text: str, timeout: float = 10.0) -> bool:
        """Whether `text` appears in the log within `timeout` (the result may come first)."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


def _wait_until_ready(worker: Worker, timeout: float) -> None:
    """A ping answered through the broker: the worker is consuming our queue."""
    from config.celery import task_send
    from config.tasks import ping

    deadline = time.monotonic() + timeout
    with app_on_broker(worker.broker):
        result = task_send(task=ping, args=("ready",))
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{worker.log_text()[-3000:]}")
            if result.ready():
                assert result.get(timeout=1) == "ready"
                return
            time.sleep(0.1)
    raise TimeoutError(
        f"the worker did not answer within {timeout} s:\n{worker.log_text()[-3000:]}"
    )


@contextmanager
def celery_worker(
    broker: Broker,
    tmp_dir: Path,
    *,
    pool: str = "solo",
    extra_env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Iterator[Worker]:
    """Start `celery -A config worker` on `broker`'s queue; stop it (and wait) at the end."""
    log = tmp_dir / "worker.log"
    env = {**os.environ, **broker.env, **(extra_env or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BASE_DIR), env.get("PYTHONPATH")]))
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    argv = [
        sys.executable, "-m", "celery", "-A", "config", "worker", f"--pool={pool}",
        "--loglevel=INFO", "-Q", broker.queue, "-n", f"{broker.queue}@%h",
        # A test worker needs neither the start-up handshake with other workers nor heartbeats.
        "--without-mingle", "--without-gossip", "--without-heartbeat",
    ]  # fmt: skip
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            argv, cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    worker = Worker(process=process, log=log, broker=broker)
    try:
        _wait_until_ready(worker, timeout)
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def beat_until(
    env: dict[str, str], log: Path, done: Any, *, explain: Any = str, timeout: float = 30
) -> str:
    """Run `celery beat` (database scheduler, 1 s ticks) until `done()` is true; return its log.

    `explain()` adds to the failure message what the caller's own side logged.
    """
    with log.open("wb") as log_file:
        beat = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
                "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--max-interval=1",
            ],
            cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not done():
            assert beat.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, log.read_text()[-2000:] + explain()
            time.sleep(0.2)
    finally:
        beat.terminate()
        beat.wait(timeout=15)
    return log.read_text()
