"""/healthz for load balancers: is this process up, and can it reach what it needs?

`GET /healthz` (readiness) checks the database, the cache and the task broker and answers 200
when all are ok, else 503, with one short reason per failed check. `GET /healthz/live`
(liveness) only proves the process answers; it checks nothing, so a dead broker never gets a
healthy web process restarted. Neither needs a login, and neither says anything about
connectors, hosts or credentials: reasons are short fixed phrases, never exception texts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import broker_check, broker_failure_reason

CACHE_KEY = "healthz:probe"

# Shared and small: if checks hang (a silent cache or broker), probes queue here and time out
# instead of each probe starting yet another thread.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="healthz")


def _database() -> str:
    """One round trip on this thread's connection (a worker thread would leak connections)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 - any failure is "failed"; the text may name the host
        return "query failed"
    return ""


def _cache() -> str:
    """A write and a read back."""
    token = str(time.monotonic_ns())
    cache.set(CACHE_KEY, token, 10)
    return "" if cache.get(CACHE_KEY) == token else "value not stored"


def _broker() -> str:
    return broker_check(timeout=settings.HEALTHZ_TIMEOUT)


def _timed(check: Callable[[], str]) -> tuple[str, float]:
    """The check's reason ("" when ok) and how long it took, in milliseconds."""
    started = time.monotonic()
    try:
        reason = check()
    except Exception as exc:  # noqa: BLE001 - reported, not raised: the probe must answer
        reason = broker_failure_reason(exc)
    return reason, round((time.monotonic() - started) * 1000, 1)


def _outcome(
    future: Future[tuple[str, float]], deadline: float, timeout: float
) -> dict[str, object]:
    try:
        reason, elapsed_ms = future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        reason, elapsed_ms = "timed out", round(timeout * 1000, 1)
    if reason:
        return {"status": "failed", "reason": reason, "ms": elapsed_ms}
    return {"status": "ok", "ms": elapsed_ms}


def health_checks() -> dict[str, dict[str, object]]:
    """Each dependency's {"status": "ok"|"failed", "reason"?, "ms"}; all three overlap in time."""
    timeout = settings.HEALTHZ_TIMEOUT
    # A little over the broker's own timeout, so its precise reason wins when it has one.
    deadline = time.monotonic() + timeout + 0.25
    pending = {"cache": _pool.submit(_timed, _cache), "broker": _pool.submit(_timed, _broker)}
    database: Future[tuple[str, float]] = Future()
    database.set_result(_timed(_database))
    checks = {"database": _outcome(database, deadline, timeout)}
    for name, future in pending.items():
        checks[name] = _outcome(future, deadline, timeout)
    return checks


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database, the cache and the broker all answer, else 503."""
    checks = health_checks()
    ok = all(check["status"] == "ok" for check in checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "failed", "checks": checks}, status=200 if ok else 503
    )


@login_not_required
@never_cache
@require_GET
def healthz_live(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers requests; nothing else is checked."""
    return JsonResponse({"status": "ok"})
