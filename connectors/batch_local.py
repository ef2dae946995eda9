"""Running batch items on threads: a worker's chunk, or a whole batch in the command's own
processes when no background worker is reachable.

Each item goes through `batches.batch_item_run`, on threads sharing the items, with the
recordings of each process committed in groups (connectors.recording). A batch test is bound
by Python's CPU, and one interpreter runs Python on one core at a time, so the command spreads a
batch over one forked process per CPU on PostgreSQL (CONNECTORS_BATCH_PROCESSES). The items
are claimed one by one in the database, so no two runners run the same item; a process that
dies leaves its claimed items to the lease and the reaper, as a worker that dies does.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import connections

from audit.lock_timing import chain_lock_holds
from connectors import lean_sql, recording
from connectors.batches import batch_finish_if_done, batch_item_run
from connectors.models_batch import Batch, BatchItem

logger = logging.getLogger(__name__)

# A thread that holds the chain-head lock needs the GIL back after each database round trip;
# at the default 5 ms switch interval, dozens of busy threads made each append wait ~30 ms.
LOCK_FRIENDLY_SWITCH_INTERVAL = 0.0005


class BatchProcessFailed(RuntimeError):
    """A process running part of a batch ended with an error (its log says which)."""


def batch_processes(*, items: int, concurrency: int) -> int:
    """How many processes batch_run_local uses for `items` items, `concurrency` at once."""
    if lean_sql.vendor() != "postgresql" or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    wanted = settings.CONNECTORS_BATCH_PROCESSES or os.cpu_count() or 1
    return max(1, min(wanted, concurrency, items))


def batch_run_local(*, batch: Batch, concurrency: int = 8, processes: int | None = None) -> None:
    """Run a batch's waiting items here, `concurrency` at once, on `processes` processes."""
    pending = list(
        BatchItem.objects.filter(batch=batch, state=BatchItem.State.PENDING).values_list(
            "pk", flat=True
        )
    )
    if processes is None:
        processes = batch_processes(items=len(pending), concurrency=concurrency)
    if processes > 1:
        _run_forked(pending, concurrency, processes)
    else:
        _run_threads(pending, concurrency)
    batch_finish_if_done(batch.pk)


def _run_forked(pending: Sequence[int], concurrency: int, processes: int) -> None:
    # A child must not share the parent's database sockets: each opens its own.
    connections.close_all()
    context = multiprocessing.get_context("fork")
    timings = context.SimpleQueue()
    children = [
        context.Process(
            target=_run_part,
            args=(pending[index::processes], -(-concurrency // processes), timings),
            name=f"batch-runner-{index + 1}",
        )
        for index in range(processes)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
    failed = [child.name for child in children if child.exitcode != 0]
    holds = chain_lock_holds()
    while not timings.empty():
        child_holds = timings.get()
        if holds is not None:
            holds.extend(child_holds)
    if failed:
        raise BatchProcessFailed(f"{', '.join(failed)} ended with an error")


def _run_part(item_ids: Sequence[int], concurrency: int, timings: Any) -> None:
    """A forked process's share of the items (its exit code tells the parent how it went)."""
    try:
        _run_threads(item_ids, concurrency)
    except BaseException:
        logger.exception("A batch runner process stopped")
        sys.exit(1)
    finally:
        holds = chain_lock_holds()
        if holds is not None:  # timed (a benchmark): the parent reports every process's holds
            timings.put(holds)


def batch_items_run(*, item_ids: Sequence[int]) -> dict[int, str]:
    """Run these items at once (a worker's task); each one's status.

    They run on this process's item threads (CONNECTORS_BATCH_CHUNK of them, kept between
    tasks), whatever Celery's pool: a process per CPU running a task at a time, or a threaded
    pool running several, whose tasks then share the item threads (so its database connections
    stay bounded). Their recordings are committed in groups. The batches they belong to are
    marked finished when these were their last open items.
    """
    recording.group_in_this_process()
    with _lock_friendly_switching():
        runs = [(item_id, _item_pool().submit(_run_one, item_id)) for item_id in item_ids]
        statuses = {item_id: run.result() for item_id, run in runs}
    for batch_id in set(
        BatchItem.objects.filter(pk__in=item_ids).values_list("batch_id", flat=True)
    ):
        batch_finish_if_done(batch_id)
    return statuses


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _item_pool() -> ThreadPoolExecutor:
    """This worker process's threads for batch items, kept between tasks with their database
    connections (a connection per item would cost more CPU than the item's recording)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.CONNECTORS_BATCH_CHUNK, thread_name_prefix="batch-item"
            )
        return _pool


def _forget_pool_in_child() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()  # a forked child starts without the threads


os.register_at_fork(after_in_child=_forget_pool_in_child)


def _run_one(item_id: int) -> str:
    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()
    return batch_item_run(item_id=item_id, finish_batch=False)


def _run_threads(item_ids: Sequence[int], concurrency: int) -> dict[int, str]:
    take = _shared(item_ids)
    statuses: dict[int, str] = {}
    threads = max(1, min(concurrency, len(item_ids)))
    # Several at once: their recordings are committed in groups (connectors.recording). One at
    # a time there is nothing to group, and a second writing thread would only contend.
    grouping = recording.grouped_recording() if threads > 1 else contextlib.nullcontext()
    with _lock_friendly_switching(), grouping, ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(_run_items, take, statuses) for _ in range(threads)]:
            future.result()
    return statuses


_switching_lock = threading.Lock()
_switching_users = 0
_switching_before = 0.0


@contextlib.contextmanager
def _lock_friendly_switching() -> Iterator[None]:
    """A short GIL switch interval while any runner in this process runs (see above); the
    first to start sets it, the last to end restores it (a worker runs several at once)."""
    global _switching_users, _switching_before
    with _switching_lock:
        if _switching_users == 0:
            _switching_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_switching_before, LOCK_FRIENDLY_SWITCH_INTERVAL))
        _switching_users += 1
    try:
        yield
    finally:
        with _switching_lock:
            _switching_users -= 1
            if _switching_users == 0:
                sys.setswitchinterval(_switching_before)


def _run_items(take: Callable[[], int | None], statuses: dict[int, str]) -> None:
    """Run items until none is left, on one database connection for them all.

    Opening a connection costs more CPU than a test's recording; between items it is checked
    as Django checks it between requests.
    """
    try:
        while (item_id := take()) is not None:
            # The batch is finished once, by whoever runs these items, when all are done.
            statuses[item_id] = _run_one(item_id)
    finally:
        connections.close_all()  # this thread's own connection, before the thread ends


def _shared(values: Sequence[int]) -> Callable[[], int | None]:
    """A function that hands the values out one by one to any thread; None when none is left."""
    lock = threading.Lock()
    source = iter(values)

    def take() -> int | None:
        with lock:
            return next(source, None)

    return take


__all__ = ["BatchProcessFailed", "batch_items_run", "batch_processes", "batch_run_local"]
