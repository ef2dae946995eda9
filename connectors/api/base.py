"""What every API view shares: the audit channel, NUL refusal, and the service errors' answers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework import status
from rest_framework.views import APIView

from audit.services import AuditWriteError, audit_via, audit_via_note
from connectors.api.auth import token_of
from connectors.api.permissions import record_refusal
from connectors.api.problems import Problem
from connectors.fields import SecretDecryptionError

AUDIT_FAILED = (
    "Nothing was saved: the change could not be recorded in the audit log. Try again; if it "
    "keeps failing, tell an administrator (the server log has the details)."
)


class ApiView(APIView):
    """An endpoint: each audit record it causes says it came through the API, and which token."""

    required_permissions: dict[str, tuple[str, ...]] = {}

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with audit_via(channel="api"):
            return super().dispatch(request, *args, **kwargs)

    def perform_authentication(self, request: Any) -> None:
        # Before the permission check, so a refusal's record names the token too.
        super().perform_authentication(request)
        token = token_of(request)
        if token is not None:
            audit_via_note(api_client=token.name or "(unnamed)")

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        # Runs the authentication, then the permission check, then the throttles.
        super().initial(request, *args, **kwargs)
        if any("\x00" in str(v) for v in (*kwargs.values(), *request.query_params.values())):
            raise Problem(
                status_code=status.HTTP_400_BAD_REQUEST,
                title="Bad request",
                detail="The address contains a NUL character (%00); nothing was looked up.",
            )

    def throttled(self, request: Any, wait: float | None) -> None:
        """Over the token's rate: recorded like every other refusal, then 429 + Retry-After."""
        record_refusal(request, self, (), action="rate_limited")
        super().throttled(request, wait)

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, AuditWriteError):
            exc = Problem(status_code=503, title="Not recorded", detail=AUDIT_FAILED)
        elif isinstance(exc, SecretDecryptionError):
            exc = Problem(
                status_code=503,
                title="Stored secrets cannot be read",
                detail=f"{exc} This is the server's configuration: tell an administrator.",
            )
        return super().handle_exception(exc)
