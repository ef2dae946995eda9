"""Politeness: at most CONNECTORS_PER_HOST_CONCURRENCY token requests at once to one origin.

Across every worker, so a batch of 500 connectors on one identity provider can't hammer it.

- With REDIS_URL (production): a Redis sorted set per origin whose members are leases scored by
  their expiry. Taking a slot drops expired leases, then adds ours if fewer than the limit are
  held, in one Lua script (atomic). A worker killed while holding a slot leaks it only until its
  lease expires (a test can't outlast CONNECTORS_TOKEN_TIMEOUT, the lease is longer).
- Without Redis (the embedded default, one machine): N lock files per origin under
  CELERY_DATA_DIR/slots/, taken with flock(2). The kernel frees the lock of a process that dies,
  so nothing leaks, and flock excludes threads of one process as well as other processes.
- If Redis is configured but unreachable, the lock files take over (with a logged warning):
  still a limit per machine, never none.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.01
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""

_redis_clients: dict[str, Any] = {}


def origin_of(url: str) -> str:
    """scheme://host:port of a URL, the unit the limit counts (default ports made explicit)."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "https").lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = 0
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def per_host_limit() -> int:
    return max(1, int(getattr(settings, "CONNECTORS_PER_HOST_CONCURRENCY", 8)))


def limiter_backend() -> str:
    """ "redis" when the slots are shared through REDIS_URL, else "flock" (this machine)."""
    return "redis" if getattr(settings, "REDIS_URL", "") else "flock"


def _lease_seconds() -> int:
    # Longer than any one request can take, so a live holder never loses its slot.
    return int(settings.CONNECTORS_TOKEN_TIMEOUT * 2) + 30


def _redis() -> Any:
    import redis

    url = settings.REDIS_URL
    client = _redis_clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        _redis_clients[url] = client
    return client


@contextmanager
def _redis_slot(origin: str, limit: int, deadline: float) -> Iterator[None]:
    client = _redis()
    key = "connector-host-slots:" + hashlib.sha256(origin.encode()).hexdigest()[:32]
    token = uuid.uuid4().hex
    lease = _lease_seconds()
    script = client.register_script(_ACQUIRE)
    while True:
        now = time.time()
        if script(keys=[key], args=[now, limit, now + lease, token, lease + 60]):
            break
        if time.monotonic() > deadline:
            raise TimeoutError("no free slot for this origin")
        time.sleep(_POLL_SECONDS)
    try:
        yield
    finally:
        try:
            client.zrem(key, token)
        except Exception:  # noqa: BLE001 - the lease expires by itself
            logger.warning("Could not release a per-host slot; its lease will expire")


def _slot_dir() -> Path:
    folder = Path(settings.CELERY_DATA_DIR) / "slots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def _flock_slot(origin: str, limit: int, deadline: float) -> Iterator[None]:
    stem = hashlib.sha256(origin.encode()).hexdigest()[:24]
    folder = _slot_dir()
    while True:
        for index in range(limit):
            fd = os.open(folder / f"{stem}-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if time.monotonic() > deadline:
            raise TimeoutError("no free slot for this origin")
        time.sleep(_POLL_SECONDS)


@contextmanager
def host_slot(url: str, *, wait: float | None = None) -> Iterator[None]:
    """Hold one of the origin's slots around a token request; waits for a free one.

    `wait` bounds the wait (default: the lease, after which every slot held by a dead worker has
    expired); past it TimeoutError is raised and the request is not sent.
    """
    origin = origin_of(url)
    limit = per_host_limit()
    deadline = time.monotonic() + (wait if wait is not None else _lease_seconds())
    if limiter_backend() == "redis":
        try:
            _redis().ping()
        except Exception as exc:  # noqa: BLE001 - degrade to this machine's limit, never none
            logger.warning(
                "The per-host limit cannot reach Redis (%s); limiting on this machine only.",
                type(exc).__name__,
            )
        else:
            with _redis_slot(origin, limit, deadline):
                yield
            return
    with _flock_slot(origin, limit, deadline):
        yield
