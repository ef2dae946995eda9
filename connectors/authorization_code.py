"""Authorization Code Grant with PKCE: "Connect", its callback, and the refreshes after it.

    url = connector_connect_start(connector=c, user=u, session=s, redirect_uri=r)  # redirect there
    outcome = connector_connect_callback(session=s, user=u, params=request.GET)    # the answer
    result = connection_refresh(connector=c, perform=...)                          # later, often

An admin's "Connect" sends the browser to the Oauth2 Authorization Url (RFC 6749 §4.1.1) with a
random `state` and a PKCE S256 challenge (RFC 7636 §4.2). Both, with the user, the connector and
its version, wait in the admin's session for at most STATE_TTL_SECONDS; the callback takes them
out before anything else (so an answer is used once), refuses one that another session or user
started, and exchanges the code at the token URL through the HTTP core. The refresh token it gets
is stored encrypted with who connected and when; tests and ConnectorAuth then use it with the
refresh grant. A rotated refresh token replaces the stored one by compare-and-swap on the old
token's hash, so two workers refreshing at once keep the newest one (see `connection_refresh`).

Nothing here writes the code, the verifier or a token to a page, a log or an audit record.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from audit.services import audit_record
from connectors import oauth_http
from connectors.connection_refresh import (
    Refreshed,
    connection_refresh,
    refresh_outcome,
    token_hash,
)
from connectors.connection_refresh import (
    _swap as _swap,  # re-exported: the rotation's compare-and-swap, tested directly
)
from connectors.explain import FIELD_LABELS, token_hint
from connectors.models import AuthConfig, Connector, GrantType, TokenRequestParam
from connectors.oauth_http.token_request import exchange_secrets
from connectors.rules.rows import RESERVED_AUTHORIZE_KEYS
from connectors.services import acting_user

logger = logging.getLogger(__name__)

# Where the admin's browser comes back to (connectors.urls names it); the README documents it.
CALLBACK_PATH = "/connectors/oauth2/callback/"
SESSION_KEY = "connectors_oauth2_pending"
STATE_TTL_SECONDS = 600
# Pending connects kept per session: enough for a few tabs, never an unbounded session.
MAX_PENDING = 5
VERIFIER_BYTES = 48  # 64 characters once base64url-encoded: within RFC 7636's 43 to 128


class ConnectRefused(Exception):
    """Connect cannot start for this connector; the message says what to fix."""


# --------------------------------------------------------------------------------------------
# PKCE (RFC 7636)


def pkce_verifier() -> str:
    """A fresh code verifier: 64 unreserved characters (RFC 7636 §4.1), 384 random bits."""
    return secrets.token_urlsafe(VERIFIER_BYTES)


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge: BASE64URL(SHA256(ASCII(verifier))), unpadded (§4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------------------------
# Connect


def connect_ready(connector: Connector) -> str | None:
    """Why Connect cannot start for `connector`, or None when it can."""
    if connector.auth_config != AuthConfig.OAUTH2 or (
        connector.oauth2_grant_type != GrantType.AUTHORIZATION_CODE
    ):
        return "Connect is for connectors with the Oauth2 Authorization Code Grant."
    if not connector.enabled:
        return "The connector is disabled: enable it before connecting it."
    missing = [
        label
        for name, label in (
            ("oauth2_client_id", "Client ID"),
            ("oauth2_authorization_url", "Oauth2 Authorization Url"),
            ("oauth2_token_url", "Oauth2 Token Url"),
        )
        if not getattr(connector, name)
    ]
    if missing:
        return f"Fill in {' and '.join(missing)} before connecting."
    return None


def authorization_url(
    connector: Connector, *, redirect_uri: str, state: str, challenge: str
) -> str:
    """The authorization request (RFC 6749 §4.1.1 with RFC 7636 §4.3) the browser is sent to.

    A query the Oauth2 Authorization Url already has is kept (some providers put the tenant
    there); the console's own parameters come last and win.
    """
    parts = urlsplit(connector.oauth2_authorization_url)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in RESERVED_AUTHORIZE_KEYS
    ]
    query += [
        (row.key, row.value)
        for row in connector.params.all()
        if row.kind == TokenRequestParam.Kind.AUTHORIZE and row.key not in RESERVED_AUTHORIZE_KEYS
    ]
    query += [("response_type", "code"), ("client_id", connector.oauth2_client_id)]
    query += [("redirect_uri", redirect_uri)]
    if connector.oauth2_authorization_code_scope:
        query.append(("scope", connector.oauth2_authorization_code_scope))
    query += [("state", state), ("code_challenge", challenge), ("code_challenge_method", "S256")]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _pending(session: Any) -> dict[str, dict[str, Any]]:
    """The session's pending connects by state, without the expired ones."""
    now = time.time()
    stored = session.get(SESSION_KEY) or {}
    return {
        state: item
        for state, item in stored.items()
        if isinstance(item, dict) and item.get("expires_at", 0) > now
    }


def connector_connect_start(
    *, connector: Connector, user: Any, session: Any, redirect_uri: str
) -> str:
    """Remember a new state and PKCE verifier in `session`; return the URL to send the browser.

    Raises ConnectRefused when the connector cannot be connected (its message says why).
    """
    problem = connect_ready(connector)
    if problem:
        raise ConnectRefused(problem)
    state = secrets.token_urlsafe(32)
    verifier = pkce_verifier()
    pending = _pending(session)
    while len(pending) >= MAX_PENDING:
        pending.pop(min(pending, key=lambda key: pending[key]["expires_at"]))
    pending[state] = {
        "verifier": verifier,
        "user_id": getattr(user, "pk", None),
        "connector_id": connector.pk,
        "version": connector.version,
        "redirect_uri": redirect_uri,
        "expires_at": time.time() + STATE_TTL_SECONDS,
    }
    session[SESSION_KEY] = pending
    url = authorization_url(
        connector, redirect_uri=redirect_uri, state=state, challenge=pkce_challenge(verifier)
    )
    audit_record(
        kind="system",
        action="oauth2_connect",
        user=acting_user(user),
        connector=connector,
        summary=f"Started connecting {connector.name}: sent to its Oauth2 Authorization Url",
        details={
            "authorization_host": urlsplit(connector.oauth2_authorization_url).hostname,
            "redirect_uri": redirect_uri,
            "scope": connector.oauth2_authorization_code_scope,
            "pkce": "S256",
        },
    )
    return url


# --------------------------------------------------------------------------------------------
# The callback


@dataclass(frozen=True)
class CallbackOutcome:
    """What the callback page says. `reason` is a code for the audit record and the tests."""

    ok: bool
    reason: str
    title: str
    message: str
    what_to_do: str = ""
    connector: Connector | None = None


# Refusals before any exchange: (title, message, what to do).
REFUSALS: dict[str, tuple[str, str, str]] = {
    "unknown_state": (
        "Connection refused: unknown or used answer",
        "This answer from the authorization server does not match a Connect started in this "
        "browser session, or it was already used. Nothing was exchanged or stored.",
        "Start again with Connect on the connector's page. An answer can be used once, only "
        "in the session that started it.",
    ),
    "foreign_user": (
        "Connection refused: started by someone else",
        "This answer belongs to a Connect that another user started. Nothing was exchanged "
        "or stored.",
        "Press Connect on the connector's page yourself.",
    ),
    "expired": (
        "Connection refused: too late",
        f"The sign-in took longer than {STATE_TTL_SECONDS // 60} minutes, so its answer is no "
        "longer accepted. Nothing was exchanged or stored.",
        f"Press Connect again and finish signing in within {STATE_TTL_SECONDS // 60} minutes.",
    ),
    "connector_gone": (
        "Connection refused: the connector is gone",
        "The connector this sign-in was for no longer exists. Nothing was stored.",
        "",
    ),
    "connector_changed": (
        "Connection refused: the connector changed",
        "Someone saved the connector while you were signing in, so the answer may not match "
        "its settings any more. Nothing was exchanged or stored.",
        "Check the connector's settings, then press Connect again.",
    ),
    "access_denied": (
        "Connection refused by the authorization server",
        "The authorization server answered access_denied: the sign-in or the consent was "
        "declined. Nothing was stored, and the connector keeps its previous connection, if any.",
        "Press Connect again and approve the access, or ask the identity provider's "
        "administrator whether this application may be granted it.",
    ),
    "error": (
        "Connection refused by the authorization server",
        "The authorization server answered with an error instead of a code. Nothing was stored.",
        "Check the Client ID, the Oauth2 Authorization Url, the scope and the Redirect URI "
        "registered with the provider, then press Connect again.",
    ),
    "no_code": (
        "Connection refused: no code",
        "The authorization server's answer has no code. Nothing was stored.",
        "Press Connect again.",
    ),
    "not_ready": (
        "Connection refused: the connector cannot be connected",
        "The connector is no longer set up for the Authorization Code Grant.",
        "Check its settings, then press Connect again.",
    ),
}


def _refusal(
    reason: str, connector: Connector | None, detail: str = "", what_to_do: str = ""
) -> CallbackOutcome:
    title, message, default_next = REFUSALS[reason]
    return CallbackOutcome(
        ok=False,
        reason=reason,
        title=title,
        message=f"{message} {detail}".strip(),
        what_to_do=what_to_do or default_next,
        connector=connector,
    )


def _printable(text: str, limit: int = 200) -> str:
    """A server-supplied error text, cut and stripped of control characters."""
    return "".join(char for char in text[:limit] if char.isprintable())


def _checked_pending(
    session: Any, user: Any, state: str
) -> tuple[dict[str, Any] | None, CallbackOutcome | None]:
    """The pending connect `state` names, taken out of the session (single use), or a refusal."""
    stored = session.get(SESSION_KEY) or {}
    item = stored.pop(state, None) if state else None
    session[SESSION_KEY] = {
        key: value
        for key, value in stored.items()
        if isinstance(value, dict) and value.get("expires_at", 0) > time.time()
    }
    if not isinstance(item, dict):
        return None, _refusal("unknown_state", None)
    if item.get("user_id") != getattr(user, "pk", None):
        return None, _refusal("foreign_user", None)
    if item.get("expires_at", 0) <= time.time():
        return None, _refusal("expired", None)
    return item, None


def connector_connect_callback(
    *,
    session: Any,
    user: Any,
    params: Mapping[str, str],
    resolver: oauth_http.Resolver | None = None,
) -> CallbackOutcome:
    """Check the authorization server's answer, exchange its code and store the refresh token.

    Every outcome is audited: a refusal as a denial, the exchange (masked) and the connection.
    """
    actor = acting_user(user)
    item, refused = _checked_pending(session, user, params.get("state", ""))
    connector: Connector | None = None
    if item is not None:
        connector = Connector.objects.filter(pk=item["connector_id"]).first()
        refused = _callback_refusal(item, connector, params)
    if refused is not None or item is None or connector is None:
        assert refused is not None
        _audit_refusal(refused, actor, connector)
        return refused
    return _exchange(connector, item, params["code"], actor, resolver)


def _callback_refusal(
    item: dict[str, Any], connector: Connector | None, params: Mapping[str, str]
) -> CallbackOutcome | None:
    if connector is None:
        return _refusal("connector_gone", None)
    if connector.version != item.get("version"):
        return _refusal("connector_changed", connector)
    if connect_ready(connector):
        return _refusal("not_ready", connector, connect_ready(connector) or "")
    error = params.get("error", "")
    if error == "access_denied":
        return _refusal("access_denied", connector)
    if error:
        description = _printable(params.get("error_description", ""))
        detail = f"Its error: {_printable(error, 64)}" + (
            f" ({description})." if description else "."
        )
        return _refusal("error", connector, detail)
    if not params.get("code"):
        return _refusal("no_code", connector)
    return None


def _audit_refusal(refused: CallbackOutcome, actor: Any, connector: Connector | None) -> None:
    audit_record(
        kind="denial",
        action="oauth2_callback_refused",
        user=actor,
        connector=connector,
        outcome=refused.reason,
        summary=refused.title,
        details={"reason": refused.reason},
    )


def code_exchange_request(
    connector: Connector, *, code: str, redirect_uri: str, code_verifier: str
) -> oauth_http.TokenRequest:
    """The token request that exchanges a code (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
    from connectors.connection_test import token_request_for

    configured = token_request_for(connector)
    return oauth_http.TokenRequest(
        token_url=configured.token_url,
        grant_type=GrantType.AUTHORIZATION_CODE,
        client_id=configured.client_id,
        client_secret=configured.client_secret,
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=code_verifier,
        client_authentication=configured.client_authentication,
        additional_headers=configured.additional_headers,
        additional_request_data=configured.additional_request_data,
        response_type=configured.response_type,
        access_token_key=configured.access_token_key,
        expires_in_key=configured.expires_in_key,
        expires_in_format=configured.expires_in_format,
        ca_bundle=configured.ca_bundle,
        timeout=configured.timeout,
    )


def _perform(
    request: oauth_http.TokenRequest, resolver: oauth_http.Resolver | None
) -> oauth_http.TokenResult:
    from connectors.connection_test import outbound_policy

    kwargs: dict[str, Any] = {"resolver": resolver} if resolver is not None else {}
    return oauth_http.token_request_perform(
        request, policy=outbound_policy(), labels=FIELD_LABELS, **kwargs
    )


def exchange_details(result: oauth_http.TokenResult) -> dict[str, Any]:
    """What the audit keeps of a token exchange: the masked attempts, never a value sent."""
    return {
        "outcome": str(result.outcome),
        "client_authentication_used": result.client_authentication_used or "",
        "duration_ms": result.duration_ms,
        "refresh_token_issued": bool(result.refresh_token),
        "attempts": [
            {
                "url": attempt.url,
                "status": attempt.status_code,
                "outcome": str(attempt.outcome),
                # Keys only: the values (the code, the verifier) are masked anyway, and the
                # record needs no value to show what was sent.
                "body_keys": [key for key, _value in attempt.request_body],
            }
            for attempt in result.attempts
        ],
    }


def _exchange(
    connector: Connector,
    item: dict[str, Any],
    code: str,
    actor: Any,
    resolver: oauth_http.Resolver | None,
) -> CallbackOutcome:
    request = code_exchange_request(
        connector,
        code=code,
        redirect_uri=item["redirect_uri"],
        code_verifier=item["verifier"],
    )
    result = _perform(request, resolver)
    audit_record(
        kind="system",
        action="oauth2_code_exchange",
        user=actor,
        connector=connector,
        outcome=str(result.outcome),
        summary=f"Exchanged an authorization code for {connector.name}: {result.outcome}",
        details=exchange_details(result),
    )
    if not result.ok:
        return CallbackOutcome(
            ok=False,
            reason=str(result.outcome),
            title="Connection failed: the code exchange was refused",
            message=result.message,
            what_to_do=token_hint(result, secrets=exchange_secrets(request)),
            connector=connector,
        )
    if not result.refresh_token:
        return CallbackOutcome(
            ok=False,
            reason="no_refresh_token",
            title="Connection failed: no refresh token",
            message="The authorization server issued an access token but no refresh token, so "
            "the console could not use this connection later. Nothing was stored.",
            what_to_do="Many providers issue one only when asked: add access_type=offline (and "
            "prompt=consent) to Additional Authorization Parameters, or the offline_access "
            "scope, then press Connect again.",
            connector=connector,
        )
    connection_store(connector=connector, refresh_token=result.refresh_token, user=actor)
    return CallbackOutcome(
        ok=True,
        reason="connected",
        title="Connected",
        message=f"{connector.name} is connected: its refresh token is stored encrypted, and "
        "tests and API calls now use it.",
        connector=connector,
    )


def connection_store(*, connector: Connector, refresh_token: str, user: Any) -> None:
    """Store a new connection's refresh token, who connected and when; audit it."""
    actor = acting_user(user)
    with transaction.atomic():
        current = Connector.objects.select_for_update(of=("self",)).get(pk=connector.pk)
        state = "changed" if current.oauth2_authorization_code_refresh_token else "set"
        now = timezone.now()
        Connector.objects.filter(pk=connector.pk).update(
            oauth2_authorization_code_refresh_token=refresh_token,
            oauth2_connection_token_hash=token_hash(refresh_token),
            oauth2_connected_at=now,
            oauth2_connected_by=actor,
        )
        connector.oauth2_authorization_code_refresh_token = refresh_token  # type: ignore[assignment]
        connector.oauth2_connection_token_hash = token_hash(refresh_token)
        connector.oauth2_connected_at = now
        connector.oauth2_connected_by = actor  # type: ignore[assignment]
        audit_record(
            kind="change",
            action="oauth2_connected",
            user=actor,
            connector=connector,
            outcome="success",
            summary=f"Connected {connector.name} (Authorization Code Grant refresh token {state})",
            details={
                "changes": [
                    {
                        "field": "oauth2_authorization_code_refresh_token",
                        "label": "Authorization Code Grant Refresh Token",
                        "before": None,
                        "after": state,
                    }
                ]
            },
        )
    _forget_cached_token(connector)


def _forget_cached_token(connector: Connector) -> None:
    """A new connection starts with a new access token."""
    from connectors.auth import ConnectorAuth

    try:
        from django.core.cache import cache

        cache.delete(ConnectorAuth(connector).cache_key)
    except Exception:  # noqa: BLE001 - a stale cached token expires on its own
        logger.warning("Could not drop the cached token of %s", connector.name)


def redirect_uri_for(request: Any) -> str:
    """The Redirect URI to register: the console's callback, absolute, as this request reached
    it (behind a proxy, DJANGO_BEHIND_PROXY makes the scheme and host the public ones)."""
    return str(request.build_absolute_uri(reverse("connectors:oauth2-callback")))


__all__ = [
    "CALLBACK_PATH",
    "REFUSALS",
    "RESERVED_AUTHORIZE_KEYS",
    "STATE_TTL_SECONDS",
    "CallbackOutcome",
    "ConnectRefused",
    "Refreshed",
    "authorization_url",
    "code_exchange_request",
    "connect_ready",
    "connection_refresh",
    "connection_store",
    "connector_connect_callback",
    "connector_connect_start",
    "exchange_details",
    "pkce_challenge",
    "pkce_verifier",
    "redirect_uri_for",
    "refresh_outcome",
    "token_hash",
]
