"""The connection test's rate limit per user.

Counted in the shared cache, or per process while the cache is unreachable.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache

from connectors.identities import is_system_user

logger = logging.getLogger(__name__)


class TestRateLimited(Exception):
    """The user ran too many tests in the current window."""

    __test__ = False

    def __init__(self, limit: int, window: int, retry_after: int) -> None:
        self.limit, self.window, self.retry_after = limit, window, retry_after
        super().__init__(
            f"You can run {limit} connection tests every {window} seconds. "
            f"Try again in {retry_after} seconds."
        )


def _rate_limit() -> tuple[int, int]:
    limit, _, window = settings.CONNECTORS_TEST_RATE_LIMIT.partition("/")
    return int(limit), int(window or 60)


# Counts tests while the shared cache is unreachable: per process, so the limit still holds
# for each worker instead of not at all.
_LOCAL_RATE_COUNTS = LocMemCache("connector-test-rate-fallback", {"MAX_ENTRIES": 10_000})

CACHE_DOWN_NOTICE = (
    "Note: the shared cache is unreachable, so the test rate limit was counted by this server "
    "process alone. Tell an administrator to check REDIS_URL."
)


def _count_test(store: BaseCache, key: str, window: int) -> int:
    store.add(key, 0, timeout=window + 5)
    try:
        return store.incr(key)
    except ValueError:  # evicted between add and incr
        store.set(key, 1, timeout=window + 5)
        return 1


def connector_test_rate_check(*, user: Any) -> str:
    """Count one test against the user's window; raise TestRateLimited past the limit.

    Returns a notice for the user when the count could not use the shared cache (e.g. Redis is
    down): the test is then counted in this process, with a logged warning, never a crash.
    """
    if user is None or not getattr(user, "is_authenticated", False) or is_system_user(user):
        return ""  # the scheduler is no person: its runs are spread by the schedule instead
    limit, window = _rate_limit()
    if limit <= 0:
        return ""
    now = int(time.time())
    window_start = now - now % window
    key = f"connector-test-rate:{user.pk}:{window_start}"
    notice = ""
    try:
        count = _count_test(cache, key, window)
    except Exception as exc:  # noqa: BLE001 - any cache failure: degrade, do not fail the test
        logger.warning(
            "The connection-test rate limit cannot reach the cache (%s); counting in this "
            "process only until it is back. Check REDIS_URL.",
            type(exc).__name__,
        )
        count = _count_test(_LOCAL_RATE_COUNTS, key, window)
        notice = CACHE_DOWN_NOTICE
    if count > limit:
        raise TestRateLimited(limit, window, window_start + window - now)
    return notice


def _rate_check_unless_batch(actor: Any, batch_id: int | None) -> str:
    """A batch's tests are not counted one by one: starting the batch counted once."""
    return "" if batch_id is not None else connector_test_rate_check(user=actor)
