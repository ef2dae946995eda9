"""`make run`: the web server, a Celery worker and the scheduler in one command, stopped together.

    python -m config.serve [--host 127.0.0.1] [--port 8000]

Each program runs in its own process group, so Ctrl-C reaches only this supervisor, which then
stops all three in order (SIGTERM to each group, SIGKILL to what is left after a grace period).
When any one of them exits or is killed, the other two are stopped too, and this command exits
with a non-zero status: a half-running console (pages up, no worker) is never left behind.

Development only: production runs gunicorn, `celery worker` and `celery beat` as separate
services (README "Production").
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

BASE_DIR = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 10.0
POLL_SECONDS = 0.2
BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


def programs(host: str, port: int) -> dict[str, list[str]]:
    """The three command lines, by name."""
    python = sys.executable
    return {
        "web": [python, "manage.py", "runserver", f"{host}:{port}"],
        "worker": [python, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO"],
        "scheduler": [
            python, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO", "-S", BEAT_SCHEDULER,
        ],
    }  # fmt: skip


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this supervisor is killed outright (kill -9)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _start(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own fixed command lines
        list(argv),
        cwd=BASE_DIR,
        start_new_session=True,  # its own process group: killpg reaches its children too
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
    )


def _signal_groups(children: dict[str, subprocess.Popen[bytes]], signum: int) -> None:
    for process in children.values():
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass  # the whole group is gone already


def stop_all(children: dict[str, subprocess.Popen[bytes]], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM each program, wait up to `grace` seconds, then SIGKILL whatever is left."""
    for process in children.values():
        if process.poll() is None:
            # The leader only: Celery's worker then stops its own pool processes in order.
            process.terminate()
    deadline = time.monotonic() + grace
    for process in children.values():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    # Also reaps grandchildren whose leader has exited (the reloader's server, pool processes).
    _signal_groups(children, signal.SIGKILL)
    for process in children.values():
        process.wait()


class _StopRequested(Exception):
    pass


def _request_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested


def supervise(commands: dict[str, list[str]]) -> int:
    """Run `commands` until a signal or the first exit; stop them all; 0 only after a signal."""
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, _request_stop) for signum in stop_signals}
    children: dict[str, subprocess.Popen[bytes]] = {}
    status = 0
    try:
        for name, argv in commands.items():
            children[name] = _start(argv)
        print(f"serve: started {', '.join(children)}; Ctrl-C stops all", flush=True)
        while True:
            exited = [(name, p.returncode) for name, p in children.items() if p.poll() is not None]
            if exited:
                name, code = exited[0]
                print(f"serve: {name} exited with status {code}; stopping the others", flush=True)
                status = 1
                break
            time.sleep(POLL_SECONDS)
    except _StopRequested:
        print("serve: stopping", flush=True)
    finally:
        for signum in stop_signals:
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup
        stop_all(children)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    options = parser.parse_args(argv)
    return supervise(programs(options.host, options.port))


if __name__ == "__main__":
    sys.exit(main())
