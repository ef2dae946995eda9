"""Group commit for the tests of a batch that run in one process.

Every recording appends to the audit chain, and the chain-head lock is held until the commit
(the next record links to this one's hash, so it must not read the head before this commit).
Recordings one at a time each pay their round trips and a commit with the lock held (a commit
that waits for the disk costs 1-7 ms here; test runs no longer wait, see audit.writer, but a
commit is still a round trip), so 1,000 of them queue behind one another for the lock.

Inside `grouped_recording()` (a batch runner's process), the recording of each test of a batch
is handed to a few recorder threads; each writes whatever recordings are waiting, up to
`GROUP_MAX`, in one transaction: each with its own run, attempts, health row, batch item and
audit record, exactly as alone, but the records are appended together at the end
(audit.services.audit_group): one chain-head lock, held from one round trip to the commit, and
one commit for the group. A test's `connector_test` returns once its group has committed, so a
returned test is recorded, as before.

If anything in a group fails (e.g. a test whose lease ran out, which must not be recorded),
the group is rolled back and each of its recordings is written again alone, in its own
transaction, with exactly the behaviour of a test recorded outside a group.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import connections, transaction

from audit.services import audit_group, audit_group_flush

logger = logging.getLogger(__name__)

T = TypeVar("T")
GROUP_MAX = 16
# Recorder threads, each with its own connection and group: the rows of a run are written by
# several at once, and only their appends (a round trip and the commit each) take turns.
RECORDERS = 4

_Job = tuple[Callable[[], Any], "Future[Any]"]


class _GroupBroken(Exception):
    """The group's transaction was marked for rollback without an exception reaching us."""


class _GroupRecorder:
    def __init__(self, group_max: int, recorders: int) -> None:
        self._group_max = group_max
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"batch-recorder-{n}", daemon=True)
            for n in range(recorders)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[], T]) -> T:
        done: Future[T] = Future()
        self._jobs.put((job, done))
        return done.result()

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)  # one each
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        try:
            while True:
                first = self._jobs.get()
                if first is None:
                    return
                group, stop = [first], False
                while len(group) < self._group_max:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    group.append(more)
                for connection in connections.all(initialized_only=True):
                    # As Django does per request: a broken or aged connection is reopened.
                    connection.close_if_unusable_or_obsolete()
                self._record(group)
                if stop:
                    return
        finally:
            connections.close_all()  # this thread's own database connection

    def _record(self, group: list[_Job]) -> None:
        if len(group) > 1:
            try:
                with transaction.atomic(), audit_group():
                    results = [job() for job, _ in group]
                    audit_group_flush()
                    if transaction.get_rollback():  # a fault something swallowed: not committed
                        raise _GroupBroken
            except Exception:  # noqa: BLE001 - rolled back whole: each is recorded alone below
                logger.info("A group of %s recordings is written one by one", len(group))
            except BaseException as exc:  # the tests waiting for this group hear of it
                for _, done in group:
                    done.set_exception(exc)
                return
            else:
                for (_, done), result in zip(group, results, strict=True):
                    done.set_result(result)
                return
        for job, done in group:
            try:
                done.set_result(job())
            except BaseException as exc:  # handed to the test that waits for it
                done.set_exception(exc)


_active: _GroupRecorder | None = None


@contextmanager
def grouped_recording(group_max: int = GROUP_MAX, recorders: int = RECORDERS) -> Iterator[None]:
    """Within: the recordings of batch tests in this process are committed in groups."""
    global _active
    recorder = _GroupRecorder(group_max, recorders)
    previous, _active = _active, recorder
    try:
        yield
    finally:
        _active = previous
        recorder.stop()


_process_lock = threading.Lock()


def group_in_this_process() -> None:
    """Group the batch recordings of this process from now on (a threaded Celery worker).

    Its threads run several batch tests at once, like batch_run_local's; the recorder threads
    live as long as the process (a forked child starts without them).
    """
    global _active
    with _process_lock:
        if _active is None:
            _active = _GroupRecorder(GROUP_MAX, RECORDERS)


def _forget_in_child() -> None:
    global _active, _process_lock
    _active, _process_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


def record(job: Callable[[], T], *, batch: bool) -> T:
    """Run a recording: in the current group when a batch test runs in grouped_recording()."""
    recorder = _active
    if recorder is None or not batch:
        return job()
    return recorder.submit(job)


__all__ = ["GROUP_MAX", "RECORDERS", "group_in_this_process", "grouped_recording", "record"]
