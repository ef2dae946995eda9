"""Personal API tokens: knox's hashed tokens, each use noted, each refused use audited."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.models import get_token_model
from rest_framework import exceptions

from audit.services import AuditWriteError, audit_record
from audit.views import refusal_text
from connectors.api.models import ApiToken

# last_used_at is rewritten at most this often: one write a minute, not one per request.
LAST_USED_EVERY = dt.timedelta(seconds=60)


def token_refusal_record(
    *, action: str, summary: str, user: Any = None, details: dict[str, Any] | None = None
) -> None:
    """A refused token in the audit log; the refusal stands even if it cannot be recorded."""
    with contextlib.suppress(AuditWriteError):  # audit_record logged it loudly
        audit_record(kind="denial", action=action, user=user, summary=summary, details=details)


class AuditedTokenAuthentication(TokenAuthentication):
    """knox's check, plus: an unknown, expired or inactive token is recorded as a refusal."""

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        try:
            result = super().authenticate(request)
        except exceptions.AuthenticationFailed as exc:
            path = refusal_text(getattr(request, "path", ""))
            token_refusal_record(
                action="api_token_refused",
                summary=refusal_text(f"API token refused for {request.method} {path}: {exc}"),
                details={"path": path, "reason": str(exc.detail)},
            )
            raise
        if result is not None:
            _note_use(result[1])
        return result

    def _cleanup_token(self, auth_token: Any) -> bool:
        # knox deletes an expired token when it is presented; the refusal names its owner.
        expired = auth_token.expiry is not None and auth_token.expiry < timezone.now()
        if expired:
            token_refusal_record(
                action="api_token_expired",
                user=auth_token.user,
                summary=f"Expired API token {auth_token.name or '(unnamed)'} was presented",
                details={
                    "api_client": auth_token.name,
                    "expired_at": auth_token.expiry.isoformat(),
                },
            )
        return bool(super()._cleanup_token(auth_token))


def _note_use(token: ApiToken) -> None:
    """Stamp the token's last use (at most once a minute)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
        get_token_model().objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def token_of(request: HttpRequest | Any) -> ApiToken | None:
    """The API token the request authenticated with, or None for the session."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiToken) else None
