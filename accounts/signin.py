"""Audit of sign-ins (success, failure, lock-out) and the client address django-axes counts by.

Every record names the user name that was typed, the address and the page; never a password
(Django hands the failure signal its credentials already cleansed, and only the user name is
read from them).
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audit.services import AuditWriteError, audit_record

# Long enough for any real user name; an attacker's megabyte of "user name" is not kept whole.
_TYPED_NAME_MAX = 150


def client_ip(request: HttpRequest) -> str:
    """The address lock-outs count by: REMOTE_ADDR, or behind a trusted proxy the address it saw.

    The proxy appends the address it received the request from to X-Forwarded-For, so the
    right-most entry is the only one a client cannot forge; left-hand entries are the client's own
    claims and would let an attacker pick a fresh address for every guess.
    """
    remote = str(request.META.get("REMOTE_ADDR", "") or "")
    if not getattr(settings, "SIGNIN_BEHIND_PROXY", False):
        return remote
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", "") or "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-1] if hops else remote


def _source(request: HttpRequest | None) -> str:
    path = getattr(request, "path", "") or ""
    return "admin" if path.startswith("/admin/") else "web"


def _typed_name(credentials: dict[str, Any] | None) -> str:
    value = (credentials or {}).get("username", "")
    return str(value or "")[:_TYPED_NAME_MAX]


def _details(request: HttpRequest | None, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"path": getattr(request, "path", "")[:200]}
    if request is not None:
        details["address"] = client_ip(request)
    details.update(extra)
    return details


def _record(**fields: Any) -> None:
    # Signing in must not fail (or answer 500 to a guesser) because the audit log is down;
    # audit_record has already logged the failure loudly.
    with contextlib.suppress(AuditWriteError):
        audit_record(**fields)


def _from_http(request: HttpRequest | None) -> bool:
    """True for a request that came over HTTP; False for a programmatic login or logout.

    Code that signs a user in without any request behind it (the test client's force_login and
    logout build a bare HttpRequest with no method) is not a sign-in anyone made.
    """
    return request is not None and bool(getattr(request, "method", None))


def on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """A successful sign-in."""
    if not _from_http(request):
        return
    _record(
        kind="system",
        action="login",
        user=user,
        outcome="ok",
        source=_source(request),
        summary=f"{user.get_username()} signed in",
        details=_details(request),
    )


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """A refused sign-in: wrong credentials, or any attempt while the user or address is locked.

    django-axes' receiver runs first and marks the request when the attempt locked it out (or
    arrived while locked), so one record says which it was.
    """
    typed = _typed_name(credentials)
    locked = bool(getattr(request, "axes_locked_out", False))
    failures = getattr(request, "axes_failures_since_start", None)
    if locked:
        action, outcome = "login_locked_out", "locked_out"
        summary = f"Sign-in refused for {typed!r}: too many failed attempts (locked out)"
    else:
        action, outcome = "login_failed", "login_failed"
        summary = f"Sign-in failed for {typed!r}"
    _record(
        kind="denial",
        action=action,
        outcome=outcome,
        source=_source(request),
        summary=summary,
        details=_details(request, username_typed=typed, failures=failures),
    )


def on_logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """A sign-out, by the user or by the idle timeout (the middleware marks the request)."""
    if user is None or not _from_http(request):
        return
    idle = bool(getattr(request, "signin_idle_timeout", False))
    _record(
        kind="system",
        action="logout_idle" if idle else "logout",
        user=user,
        outcome="ok",
        source=_source(request),
        summary=f"{user.get_username()} signed out" + (" (idle timeout)" if idle else ""),
        details=_details(request),
    )


def connect() -> None:
    """Connect the receivers (idempotent: dispatch_uid)."""
    user_logged_in.connect(on_logged_in, dispatch_uid="accounts.audit.logged_in")
    user_login_failed.connect(on_login_failed, dispatch_uid="accounts.audit.login_failed")
    user_logged_out.connect(on_logged_out, dispatch_uid="accounts.audit.logged_out")


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """The lock-out page, inside the console's layout (AXES_LOCKOUT_CALLABLE), answered 429."""
    from axes.helpers import get_cool_off, get_failure_limit

    cool_off = get_cool_off(request)
    context = {
        "failure_limit": get_failure_limit(request, credentials),
        "cooloff_timedelta": cool_off,
        "cooloff_minutes": max(1, round(cool_off.total_seconds() / 60)) if cool_off else 0,
    }
    return render(request, "registration/locked_out.html", context, status=429)
