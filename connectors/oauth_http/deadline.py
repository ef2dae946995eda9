"""One total deadline per exchange: a watchdog that ends every socket of it when time is up.

Per-read socket timeouts restart with every byte, so a server that drips one byte a second would
hold a request open indefinitely; the watchdog shuts the sockets down from a timer thread, which
wakes any blocked read at once.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
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

    @property
    def fired(self) -> bool:
        return self._fired or self.remaining() <= 0

    def remaining(self) -> float:
        return self._deadline - time.monotonic()

    def start(self) -> None:
        _TIMERS.add(self._deadline, self)

    @property
    def closed(self) -> bool:
        return self._closed

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
        # Left in the timer thread's heap: it is dropped, unfired, when its deadline comes.
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


class _Timers:
    """One timer thread for every watchdog of the process, instead of a thread per exchange.

    Starting (and then cancelling) a threading.Timer for each test cost a thread's creation,
    and under a busy interpreter the wait for it to start, on every exchange of a batch. Here
    the deadlines wait in a heap that one daemon thread sleeps on; a closed watchdog is dropped
    when its deadline comes. The thread starts on first use (again in a forked child).
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Watchdog]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: float, watchdog: Watchdog) -> None:
        with self._condition:
            heapq.heappush(self._heap, (deadline, next(self._order), watchdog))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="outbound-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is watchdog:
                self._condition.notify()  # sooner than what the thread sleeps for

    def _next_due(self) -> Watchdog:
        """Wait for the earliest deadline of a watchdog still open, and take it."""
        with self._condition:
            while True:
                while self._heap and self._heap[0][2].closed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._condition.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay <= 0:
                    return heapq.heappop(self._heap)[2]
                self._condition.wait(delay)

    def _run(self) -> None:
        while True:
            self._next_due()._fire()  # outside the heap's lock: shutting sockets down

    def after_fork(self) -> None:
        # The parent's thread does not exist in a child, and its lock may have been held.
        self.__init__()  # type: ignore[misc]


_TIMERS = _Timers()
os.register_at_fork(after_in_child=_TIMERS.after_fork)


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
