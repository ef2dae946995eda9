"""How long the chain head stays locked: from the append that locks it to the commit.

For benchmarks and tests (issue 10 asks for the figure); off otherwise, and then free.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from django.db import transaction

_lock_holds: list[float] | None = None


@contextlib.contextmanager
def chain_lock_timing() -> Iterator[list[float]]:
    """Collect, in seconds, how long each append held the chain-head lock (lock to commit).

    Only appends that commit are counted (a record written inside a test's rolled-back
    transaction never releases the lock by committing).
    """
    global _lock_holds
    holds: list[float] = []
    previous, _lock_holds = _lock_holds, holds
    try:
        yield holds
    finally:
        _lock_holds = previous


def chain_lock_holds() -> list[float] | None:
    """The list chain_lock_timing() is collecting into, or None when timing is off.

    A process forked inside chain_lock_timing() collects into its own copy; the parent adds
    what its children hand back.
    """
    return _lock_holds


def time_lock_hold() -> None:
    """Count, once this transaction commits, how long the chain-head lock taken now is held."""
    holds = _lock_holds
    if holds is None:
        return
    locked_at = time.perf_counter()
    transaction.on_commit(lambda: holds.append(time.perf_counter() - locked_at))
