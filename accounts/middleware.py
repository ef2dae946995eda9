"""Idle session timeout: a session unused for longer than SESSION_IDLE_SECONDS is signed out.

Why a last-seen stamp rather than SESSION_SAVE_EVERY_REQUEST: saving on every request writes the
session row and resends the cookie on every page, fragment and test-button call. The stamp is
rewritten at most once a minute (SESSION_TOUCH_SECONDS), and the check runs on the server, so a
copied cookie replayed after the idle limit is refused too. SESSION_COOKIE_AGE is set just above
the idle limit as a backstop: the stored row and the cookie expire on their own as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

LAST_SEEN_KEY = "signin_last_seen"

# The clock, as a module attribute so tests can move time forward without sleeping.
clock: Callable[[], float] = time.time


def _duration(seconds: int) -> str:
    """A readable length of time: "8 hours", "30 minutes", "45 seconds"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


class IdleSessionTimeoutMiddleware:
    """Signs out a user whose previous request is older than SESSION_IDLE_SECONDS.

    Must come after AuthenticationMiddleware and MessageMiddleware. LoginRequiredMiddleware then
    sends the now anonymous request to the login page, which shows why.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            self._check(request)
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> None:
        now = clock()
        idle_limit = settings.SESSION_IDLE_SECONDS
        last_seen = request.session.get(LAST_SEEN_KEY)
        if isinstance(last_seen, int | float) and now - last_seen > idle_limit:
            request.signin_idle_timeout = True  # type: ignore[attr-defined]
            logout(request)
            messages.info(
                request,
                f"You were signed out after {_duration(idle_limit)} without activity. "
                "Please sign in again.",
            )
            return
        touch = settings.SESSION_TOUCH_SECONDS
        if not isinstance(last_seen, int | float) or now - last_seen >= touch:
            request.session[LAST_SEEN_KEY] = now


def stamp_on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Start the idle clock at sign-in, so the first page after it writes no session."""
    session = getattr(request, "session", None)
    if session is not None:
        session[LAST_SEEN_KEY] = clock()
