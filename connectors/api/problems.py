"""RFC 9457 problem details (application/problem+json) for every API error."""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

PROBLEM_TYPE = "application/problem+json"
# Problem types are relative URIs under the API docs; "about:blank" for plain HTTP statuses.
TYPE_BASE = "/api/docs/#problem-"


class Problem(exceptions.APIException):
    """An error answered as problem details, with optional field errors and headers."""

    def __init__(
        self,
        *,
        status_code: int,
        title: str,
        detail: str = "",
        kind: str = "",
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = status_code
        self.title = title
        self.kind = kind
        self.errors = errors
        self.headers = headers or {}
        super().__init__(detail or title)


def validation_problem(errors: list[dict[str, str]]) -> Problem:
    """400: the refusal of a body's values; each error names its field, label and message."""
    return Problem(
        status_code=status.HTTP_400_BAD_REQUEST,
        title="The request's values were refused",
        detail="; ".join(f"{e['label']}: {e['message']}" for e in errors[:5]),
        kind="validation",
        errors=errors,
    )


def problem_response(
    *,
    status_code: int,
    title: str,
    detail: str,
    instance: str,
    kind: str = "",
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"{TYPE_BASE}{kind}" if kind else "about:blank",
        "title": title,
        "status": status_code,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_TYPE)


def _titles(exc: exceptions.APIException) -> tuple[str, str]:
    """(title, kind) for DRF's own exceptions."""
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return "Authentication required", "unauthenticated"
    if isinstance(exc, exceptions.PermissionDenied):
        return "Permission denied", "forbidden"
    if isinstance(exc, exceptions.NotFound):
        return "Not found", ""
    if isinstance(exc, exceptions.Throttled):
        return "Too many requests", "rate-limited"
    if isinstance(exc, exceptions.ParseError):
        return "The body is not valid JSON", "parse"
    return str(exc.default_detail), ""


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested ValidationError detail as a flat list of field errors."""
    if isinstance(detail, dict):
        return [e for key, value in detail.items() for e in _flatten(value, f"{prefix}{key}.")]
    if isinstance(detail, list):
        return [e for value in detail for e in _flatten(value, prefix)]
    field = prefix.rstrip(".") or "request"
    return [{"field": field, "label": field, "message": str(detail)}]


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error as problem details, with the usual headers."""
    request = context.get("request")
    instance = request.get_full_path() if request is not None else ""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = str(getattr(exc, "auth_header", ""))
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
    set_rollback()
    if isinstance(exc, Problem):
        return problem_response(
            status_code=exc.status_code,
            title=exc.title,
            detail=str(exc.detail),
            instance=instance,
            kind=exc.kind,
            errors=exc.errors,
            headers={**headers, **exc.headers},
        )
    title, kind = _titles(exc)
    errors = _flatten(exc.detail) if isinstance(exc, exceptions.ValidationError) else None
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(
        status_code=exc.status_code,
        title=title,
        detail=str(detail),
        instance=instance,
        kind=kind or ("validation" if errors else ""),
        errors=errors,
        headers=headers,
    )
