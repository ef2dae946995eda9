"""A batch on a real worker process, killed with SIGKILL in the middle of the batch.

The worker, the batch's starter and the reaper are separate processes on one file SQLite
database (tests/peers/batch_scenario.py) and the embedded filesystem broker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.peers.celery_worker import BASE_DIR, celery_worker, filesystem_broker

COUNT = 8


def _step(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "tests.peers.batch_scenario", *args],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def _scenario_env(tmp_path: Path, broker_env: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **broker_env}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'batch.sqlite3'}",
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONPATH=str(BASE_DIR),
        CONNECTORS_OUTBOUND_ALLOW_LOOPBACK="1",
        # A killed worker's items are found seconds later instead of two minutes (yet longer than
        # one test takes on a loaded machine: a live test whose lease ran out would be run twice).
        CONNECTORS_BATCH_LEASE_SECONDS="10",
        REDIS_URL="",
    )
    return env


def _running(env: dict[str, str], batch_id: str) -> int:
    code = (
        "import django; django.setup(); from connectors.models import BatchItem; "
        f"print(BatchItem.objects.filter(batch_id={batch_id}, state='running').count(), "
        f"BatchItem.objects.filter(batch_id={batch_id}, state='done').count())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    running, _done = out.stdout.split()
    return int(running)


def test_a_worker_killed_mid_batch_loses_no_test_and_records_none_twice(tmp_path):
    from tests.peers.slow_token_server import SlowTokenServer

    broker = filesystem_broker(tmp_path / "celery")
    env = _scenario_env(tmp_path, broker.env)
    env["CELERY_DATA_DIR"] = str(tmp_path / "celery")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env,
                   check=True, timeout=180)  # fmt: skip
    with SlowTokenServer(delay=3.0) as server:
        _step(env, "setup", str(COUNT), server.url("/token"))
        names = ("DATABASE_URL", "CONNECTORS_OUTBOUND_ALLOW_LOOPBACK",
                 "CONNECTORS_BATCH_LEASE_SECONDS", "REDIS_URL")  # fmt: skip
        worker_env = {k: env[k] for k in names}
        with celery_worker(broker, tmp_path, pool="threads", extra_env=worker_env) as first:
            batch_id = _step(env, "start")
            deadline = time.monotonic() + 60
            while _running(env, batch_id) == 0:
                assert time.monotonic() < deadline, first.log_text()[-2000:]
                time.sleep(0.2)
            # In the middle of a test: its token request is still waiting for the server.
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait()
        assert _running(env, batch_id) >= 1
        # A new worker, and someone looking at the batch (the reaper), finish it.
        second_dir = tmp_path / "second"
        second_dir.mkdir()
        with celery_worker(broker, second_dir, pool="threads", extra_env=worker_env):
            _step(env, "wait", batch_id, "120", timeout=180)
        report = json.loads(_step(env, "report", batch_id))
    assert report["recorded_twice"] == []
    states = report["states"]
    assert sum(states.values()) == COUNT
    # Every test either ran exactly once, or is reported lost; none is left waiting.
    assert set(states) <= {"done", "lost"}
    assert report["runs"] == states.get("done", 0)
    assert states.get("done", 0) == COUNT, states  # the killed one was requeued once and ran
    assert report["chain"] == "ok"


def test_the_cli_runs_on_the_workers_when_one_answers(tmp_path):
    from tests.peers.slow_token_server import SlowTokenServer

    broker = filesystem_broker(tmp_path / "celery")
    env = _scenario_env(tmp_path, broker.env)
    env["CELERY_DATA_DIR"] = str(tmp_path / "celery")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env,
                   check=True, timeout=180)  # fmt: skip
    with SlowTokenServer(delay=0.05) as server:
        _step(env, "setup", "4", server.url("/token"))
        names = ("DATABASE_URL", "CONNECTORS_OUTBOUND_ALLOW_LOOPBACK", "REDIS_URL")
        with celery_worker(broker, tmp_path, extra_env={k: env[k] for k in names}) as worker:
            out = subprocess.run(
                [sys.executable, "manage.py", "connectors_test_all", "--json"],
                cwd=BASE_DIR, env=env,
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            worker_log = worker.log_text()
    assert out.returncode == 0, out.stderr[-2000:]
    assert "on the background workers" in out.stderr
    document = json.loads(out.stdout)
    assert (document["total"], document["ok"], document["failed"]) == (4, 4, 0)
    assert "connectors.tasks.connector_tests_task" in worker_log
