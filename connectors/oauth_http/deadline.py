"""One total deadline per exchange: a watchdog that ends every socket of it when time is up.

Per-read socket timeouts restart with every byte, so a server that drips one byte a second would
hold a request open indefinitely; the watchdog shuts the sockets down from a timer thread, which
wakes any blocked read at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlinePassed(Exception):
    """A bounded piece of work did not finish in time."""


class Watchdog:
    """Enforces the total deadline by shutting down every socket of the exchange when it passes.

    Per-read socket timeouts restart with every byte, so a server that drips one byte a second
    would hold a request open indefinitely; shutting the socket down from this timer thread wakes
    any blocked read at once. It keeps a duplicate of each socket because TLS wrapping detaches
    the original, and shutdown on the duplicate reaches the same connection.
    """

    def __init__(self, seconds: float) -> None:
        self._started = time.monotonic()
        self._deadline = self._started + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._fired = False
        self._closed = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    @property
    def fired(self) -> bool:
        return self._fired or self.remaining() <= 0

    def remaining(self) -> float:
        return self._deadline - time.monotonic()

    def start(self) -> None:
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        duplicate = sock.dup()
        with self._lock:
            if not (self._fired or self._closed):
                self._sockets.append(duplicate)
                return
        with contextlib.suppress(OSError):
            duplicate.shutdown(socket.SHUT_RDWR)
        duplicate.close()

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


def run_within(seconds: float, work: Callable[[], T]) -> T:
    """Run `work` in a helper thread with a bound: getaddrinfo itself cannot be interrupted.

    Raises DeadlinePassed when it does not finish in time (the thread is left to end on its
    own); re-raises whatever `work` raised.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # re-raised in the calling thread below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="outbound-policy-check", daemon=True)
    worker.start()
    worker.join(max(seconds, 0.0))
    if worker.is_alive():
        raise DeadlinePassed
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


__all__ = ["DeadlinePassed", "Watchdog", "run_within"]
