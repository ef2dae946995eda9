"""Refreshing an Authorization Code Grant connection with its stored refresh token.

One refresh per connection at a time (a lease), and a rotated token stored by compare-and-swap,
so two workers refreshing at once never lose the newest token.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from connectors import oauth_http
from connectors.explain import ConsoleOutcome
from connectors.models import Connector
from connectors.oauth_http import Outcome
from connectors.services import acting_user

# --------------------------------------------------------------------------------------------
# Refreshing with the stored token


# The refresh lease lasts one token request's deadline plus this; waiters poll this often.
LEASE_MARGIN_SECONDS = 5
LEASE_POLL_SECONDS = 0.05


def token_hash(token: str) -> str:
    """What the compare-and-swap compares: the SHA-256 of a refresh token ("" for none)."""
    return hashlib.sha256(token.encode()).hexdigest() if token else ""


def _stored_token(connector_id: int) -> tuple[str, str]:
    row = (
        Connector.objects.filter(pk=connector_id)
        .values_list("oauth2_authorization_code_refresh_token", "oauth2_connection_token_hash")
        .first()
    )
    return (row[0] or "", row[1] or "") if row else ("", "")


def _swap(connector_id: int, *, old_hash: str, new_token: str) -> bool:
    """Replace the stored refresh token only if it is still the one used (compare-and-swap)."""
    updated = Connector.objects.filter(
        pk=connector_id, oauth2_connection_token_hash=old_hash
    ).update(
        oauth2_authorization_code_refresh_token=new_token,
        oauth2_connection_token_hash=token_hash(new_token),
    )
    return updated == 1


@dataclass(frozen=True)
class Refreshed:
    """A refresh with the stored token: the core's result and the console's outcome."""

    result: oauth_http.TokenResult
    request: oauth_http.TokenRequest
    outcome: str  # the result's outcome, or reconnect_needed / not_connected
    rotated: bool = False


def refresh_outcome(result: oauth_http.TokenResult) -> str:
    """invalid_grant on a refresh of a connection means only a new Connect can help."""
    if result.outcome == Outcome.INVALID_GRANT:
        return ConsoleOutcome.RECONNECT_NEEDED
    return str(result.outcome)


def connection_refresh(
    *,
    connector: Connector,
    perform: Callable[[oauth_http.TokenRequest], oauth_http.TokenResult],
    rows: list[Any] | None = None,
    user: Any = None,
    audit: bool = True,
) -> Refreshed | None:
    """Get an access token with the stored refresh token; None when there is none to use.

    The stored token is read fresh from the database (never from a possibly older instance).
    A rotated refresh token in the answer replaces the stored one only where the stored hash
    still names the token used; when the server refuses the token because another worker
    rotated it meanwhile, the refresh is tried once more with the new one.
    """
    with _refresh_lease(connector.pk):
        return _refresh(connector, perform, rows, user, audit)


@contextlib.contextmanager
def _refresh_lease(connector_id: int) -> Iterator[None]:
    """Wait until no other worker refreshes this connection, then hold the lease meanwhile.

    A lease left by a worker that died lapses after LEASE_SECONDS; waiting stops then too and
    the refresh goes ahead (the compare-and-swap still keeps the stored token right).
    """
    lease = settings.CONNECTORS_TOKEN_TIMEOUT + LEASE_MARGIN_SECONDS
    deadline = time.monotonic() + lease
    rows = Connector.objects.filter(pk=connector_id)
    held = False
    while True:
        now = timezone.now()
        free = Q(oauth2_refresh_lease_until__isnull=True) | Q(oauth2_refresh_lease_until__lt=now)
        held = bool(
            rows.filter(free).update(oauth2_refresh_lease_until=now + dt.timedelta(seconds=lease))
        )
        if held or time.monotonic() > deadline:
            break
        time.sleep(LEASE_POLL_SECONDS)
    try:
        yield
    finally:
        if held:
            rows.update(oauth2_refresh_lease_until=None)


def _refresh(
    connector: Connector,
    perform: Callable[[oauth_http.TokenRequest], oauth_http.TokenResult],
    rows: list[Any] | None,
    user: Any,
    audit: bool,
) -> Refreshed | None:
    from connectors.connection_test import token_request_for

    for attempt in range(2):
        token, old_hash = _stored_token(connector.pk)
        if not token:
            return None
        connector.oauth2_authorization_code_refresh_token = token  # type: ignore[assignment]
        connector.oauth2_connection_token_hash = old_hash
        request = token_request_for(connector, rows=rows)
        result = perform(request)
        rotated = False
        if result.ok and result.refresh_token and result.refresh_token != token:
            rotated = _swap(connector.pk, old_hash=old_hash, new_token=result.refresh_token)
            if rotated:
                connector.oauth2_authorization_code_refresh_token = result.refresh_token  # type: ignore[assignment]
                connector.oauth2_connection_token_hash = token_hash(result.refresh_token)
        if (
            attempt == 0
            and result.outcome == Outcome.INVALID_GRANT
            and _stored_token(connector.pk)[1] not in ("", old_hash)
        ):
            continue  # another worker rotated the token while this one used the old one
        refreshed = Refreshed(result, request, refresh_outcome(result), rotated)
        if audit:
            _audit_refresh(connector, refreshed, user)
        return refreshed
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns


def _audit_refresh(connector: Connector, refreshed: Refreshed, user: Any) -> None:
    result = refreshed.result
    what = "rotated its refresh token" if refreshed.rotated else "kept its refresh token"
    summary = (
        f"Refreshed the access token of {connector.name} ({what})"
        if result.ok
        else f"Refresh of {connector.name} failed: {refreshed.outcome}"
    )
    audit_record(
        kind="system",
        action="oauth2_refresh",
        user=acting_user(user),
        connector=connector,
        outcome=refreshed.outcome if not result.ok else "success",
        summary=summary,
        details={
            "rotated": refreshed.rotated,
            "status": result.attempts[-1].status_code if result.attempts else None,
            "duration_ms": result.duration_ms,
        },
    )
