"""Celery task of Jwks Auth's key rotation (loaded through CELERY_IMPORTS).

- connectors.jwks_rotate: beat runs it every hour (entry made by the migration); it rotates the
  console's signing key when due and retires keys whose grace period is over. Idempotent: a
  second run, or two workers at once, change nothing more.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from connectors import jwks


@shared_task(name="connectors.jwks_rotate", acks_late=True)
def jwks_rotate() -> dict[str, Any]:
    result = jwks.jwks_rotate_due()
    return {
        "rotated": result.rotated,
        "kid": result.kid,
        "previous_kid": result.previous_kid,
        "retired": list(result.retired),
        "reason": result.reason,
    }
