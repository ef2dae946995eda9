"""The connection test: run the real requests for a connector, explain them, record them.

The HTTP work happens in `connectors.oauth_http` (no Django); this module turns a connector into
request descriptions, applies the outbound policy and the rate limit, has `connectors.explain`
word the advice, and records the run.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import TestAttempt, TestRun
from audit.services import audit_record, test_run_record
from connectors import lean_sql, oauth_http, recording
from connectors.connector_requests import (
    RowLike,
    _api_curl_for,
    _curl_for,
    api_request_for,
    outbound_policy,
    token_request_for,
)
from connectors.explain import (
    FIELD_LABELS,
    NOT_CONNECTED_HINT,
    RECONNECT_HINT,
    Advice,
    ConsoleOutcome,
    api_advice,
    jwt_config_hint,
    secret_missing_advice,
    token_advice,
)
from connectors.health import connector_health_record
from connectors.jwks import JWKS_PATH, JwksError, SignedToken, jwks_auth_token
from connectors.models import (
    ALL_SECRET_FIELDS,
    AuthConfig,
    Connector,
    GrantType,
    TokenRequestParam,
)
from connectors.notifications import notify_after_record
from connectors.oauth_http import Outcome
from connectors.oauth_http.redaction import redact_text
from connectors.oauth_http.token_request import exchange_secrets
from connectors.politeness import host_slot
from connectors.rate_limit import (
    TestRateLimited,
    _rate_check_unless_batch,
    connector_test_rate_check,
)
from connectors.rules.testing import TestRefused, connector_test_check_allowed
from connectors.services import TRACKED_FIELDS, acting_user

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestOutcome:
    """What the test panel shows: the recorded run plus what is not stored."""

    __test__ = False

    run: TestRun
    attempts: list[TestAttempt]
    pin_offer: str | None  # client authentication that worked, when not pinned yet
    # The next step for both kinds of reader, and its one-click fix (run.hint is the editor's).
    advice: Advice | None = None


def _saved_params(connector: Connector) -> list[TokenRequestParam]:
    """The connector's stored params, cached on it as prefetch_related would.

    Cached, so the audit record's secret masking reads the same rows without a query; loaded
    through a statement compiled once (connectors.lean_sql), as every test of a batch does it.
    """
    cache: dict[str, Any] = connector.__dict__.setdefault("_prefetched_objects_cache", {})
    if "params" not in cache:
        params_preloaded(connector, lean_sql.load(TokenRequestParam, "connector", connector.pk))
    return list(cache["params"])


def params_preloaded(connector: Connector, params: list[TokenRequestParam]) -> None:
    """Cache the connector's stored params (loaded elsewhere) on it, as prefetch_related does."""
    cache: dict[str, Any] = connector.__dict__.setdefault("_prefetched_objects_cache", {})
    queryset = connector.params.all()
    # What prefetch_related_objects stores: the related queryset with its rows filled in.
    queryset._result_cache = params
    queryset._prefetch_done = True  # type: ignore[attr-defined]
    cache["params"] = queryset


def _config_snapshot(connector: Connector, rows: list[RowLike]) -> dict[str, Any]:
    """The configuration that was tested, with secrets reduced to set / not set."""
    snapshot: dict[str, Any] = {}
    for name in TRACKED_FIELDS:
        value = getattr(connector, name)
        if name in ALL_SECRET_FIELDS:
            snapshot[name] = "set" if value else ""
        elif name != "ca_bundle":
            # A date (Client Secret Expires On) is stored in JSON as its ISO form.
            snapshot[name] = value.isoformat() if isinstance(value, dt.date) else value
    snapshot["ca_bundle"] = "set" if connector.ca_bundle else ""
    snapshot["params"] = [
        {"kind": r.kind, "key": r.key, "value": "[sensitive]" if r.sensitive else r.value}
        for r in rows
    ]
    return snapshot


def _pin_offer(connector: Connector, result: oauth_http.TokenResult) -> str | None:
    if connector.auth_config != AuthConfig.OAUTH2 or connector.oauth2_client_authentication:
        return None
    # The method that worked, `basic_client_unencoded` included: pinning records that form.
    return result.client_authentication_used


def _token_facts(token: oauth_http.TokenInfo | None) -> dict[str, Any] | None:
    if token is None:
        return None
    return {
        "token_type": token.token_type,
        "expires_in": token.expires_in,
        "expires_at": token.expires_at,
        "scope": token.scope,
        "refresh_token_issued": token.refresh_token_issued,
        "token_hash": token.token_hash,
        "jwt_header": token.jwt_header,
        "jwt_claims": token.jwt_claims,
    }


@dataclass
class _Collected:
    """What the run learned so far; enough to record it even if something breaks midway."""

    ok: bool = False
    outcome: str = ConsoleOutcome.INTERNAL_ERROR
    message: str = ""
    hint: str = ""
    client_authentication_used: str = ""
    token: dict[str, Any] | None = None
    attempts: list[tuple[str, oauth_http.Attempt, str]] | None = None  # (step, attempt, curl)
    pin_offer: str | None = None
    advice: Advice | None = None

    def advise(self, advice: Advice) -> None:
        self.advice, self.hint = advice, advice.for_editor()

    def add_note(self, note: str) -> None:
        self.hint = f"{self.hint} {note}".strip()
        self.advice = replace(self.advice or Advice(), note=note)


def _uses_connection(connector: Connector) -> bool:
    return (
        connector.auth_config == AuthConfig.OAUTH2
        and connector.oauth2_grant_type == GrantType.AUTHORIZATION_CODE
    )


def _token_via_connection(
    connector: Connector,
    rows: list[RowLike],
    collected: _Collected,
    source: str,
    actor: Any,
) -> tuple[oauth_http.TokenRequest, oauth_http.TokenResult] | None:
    """The refresh with the connection's stored token; None (collected says why) without one."""
    from connectors.authorization_code import connection_refresh

    policy = outbound_policy()

    def perform(request: oauth_http.TokenRequest) -> oauth_http.TokenResult:
        with host_slot(request.token_url):
            return oauth_http.token_request_perform(request, policy=policy, labels=FIELD_LABELS)

    # Unsaved form values may point elsewhere: the stored refresh token only goes where it was
    # obtained, i.e. with the saved connector's own settings.
    refreshed = (
        connection_refresh(connector=connector, perform=perform, rows=rows, user=actor)
        if source != TestRun.Source.FORM and connector.pk
        else None
    )
    if refreshed is None:
        collected.outcome = ConsoleOutcome.NOT_CONNECTED
        if source == TestRun.Source.FORM:
            collected.message = (
                "The Authorization Code Grant is tested with the connection made by Connect, "
                "which belongs to the saved settings."
            )
            collected.hint = "Save the connector, press Connect, then test the saved connector."
        else:
            collected.message = "This connector is not connected: there is no refresh token yet."
            collected.hint = NOT_CONNECTED_HINT
        return None
    return refreshed.request, refreshed.result


def _token_exchange(
    connector: Connector,
    rows: list[RowLike],
    collected: _Collected,
    source: str,
    actor: Any,
    policy: oauth_http.OutboundPolicy,
) -> tuple[oauth_http.TokenRequest, oauth_http.TokenResult] | None:
    """The token request and its result; None (collected says why) when none could be sent."""
    if _uses_connection(connector):
        return _token_via_connection(connector, rows, collected, source, actor)
    try:
        request = token_request_for(connector, rows=rows)
    except oauth_http.SigningError as error:
        collected.outcome = Outcome.CONFIG_ERROR
        collected.message = f"The assertion cannot be signed: {error}"
        collected.advise(Advice(why=jwt_config_hint(error.code)))
        return None
    # Politeness: a bounded number of requests in flight to one identity provider.
    with host_slot(request.token_url):
        result = oauth_http.token_request_perform(request, policy=policy, labels=FIELD_LABELS)
    return request, result


def _collect_token_result(
    connector: Connector,
    request: oauth_http.TokenRequest,
    result: oauth_http.TokenResult,
    collected: _Collected,
) -> None:
    collected.attempts = [
        *(collected.attempts or []),
        *(("token", attempt, _curl_for(request, attempt)) for attempt in result.attempts),
    ]
    collected.ok, collected.outcome = result.ok, result.outcome
    collected.message = result.message
    advice = token_advice(result, secrets=exchange_secrets(request))
    # A refusal with a secret that was never set says "missing", not "check it".
    empty = [name for name in ALL_SECRET_FIELDS if not getattr(connector, name)]
    collected.advise(secret_missing_advice(result, empty=empty) or advice)
    if _uses_connection(connector) and result.outcome == Outcome.INVALID_GRANT:
        collected.outcome = ConsoleOutcome.RECONNECT_NEEDED
        collected.advise(Advice(why=RECONNECT_HINT))
    collected.client_authentication_used = result.client_authentication_used or ""
    collected.token = _token_facts(result.token)
    collected.pin_offer = _pin_offer(connector, result) if result.ok else None


def _api_without_token(
    connector: Connector, collected: _Collected, policy: oauth_http.OutboundPolicy
) -> tuple[oauth_http.ApiRequest, oauth_http.ApiResult] | None:
    """The API request of an Auth Config without a token step; None when it cannot be sent."""
    if not connector.base_url:
        collected.outcome = Outcome.CONFIG_ERROR
        collected.message = "There is nothing to request: this connector has no Base URL."
        collected.advise(Advice(change="enter the Base URL and, optionally, a Test request path"))
        return None
    prepared = _api_request_prepared(connector, collected)
    if prepared is None:
        return None
    api_request, signed = prepared
    api = oauth_http.api_request_perform(api_request, policy=policy, labels=FIELD_LABELS)
    collected.message = api.message
    collected.advise(api_advice(api, auth_config=connector.auth_config))
    refused = _jwks_refused_hint(connector, signed, api) if signed is not None else ""
    if refused:
        collected.advise(Advice(why=refused))
    return api_request, api


def _run_requests(
    connector: Connector,
    rows: list[RowLike],
    collected: _Collected,
    source: str = TestRun.Source.SAVED,
    actor: Any = None,
) -> None:
    policy = outbound_policy()
    collected.attempts = []
    access_token = ""
    if connector.auth_config == AuthConfig.OAUTH2:
        started = time.monotonic()
        exchanged = _token_exchange(connector, rows, collected, source, actor, policy)
        if exchanged is None:
            return
        request, result = exchanged
        _collect_token_result(connector, request, result, collected)
        if not result.ok or not connector.test_request_path or not connector.base_url:
            return
        remaining = settings.CONNECTORS_TOKEN_TIMEOUT - (time.monotonic() - started)
        access_token = result.access_token
        api_request = api_request_for(
            connector, access_token=access_token, timeout=max(remaining, 1.0)
        )
        api = oauth_http.api_request_perform(api_request, policy=policy, labels=FIELD_LABELS)
    else:
        sent = _api_without_token(connector, collected, policy)
        if sent is None:
            return
        api_request, api = sent
    curl = _api_curl_for(connector, api_request, access_token)
    collected.attempts.append(("api", api.attempt, curl))
    collected.ok, collected.outcome = api.ok, api.outcome
    if connector.auth_config == AuthConfig.OAUTH2:
        if api.ok:
            collected.message = f"{collected.message} {api.message}".strip()
        else:
            collected.message = (
                f"The token request worked, but the API request failed: {api.message}"
            )
            collected.advise(api_advice(api, auth_config=connector.auth_config))


def _api_request_prepared(
    connector: Connector, collected: _Collected
) -> tuple[oauth_http.ApiRequest, SignedToken | None] | None:
    """The API request of a non-OAuth2 test, and the Jwks Auth token it carries; None (with the
    outcome set) when the JWT that is the credential cannot be signed."""
    signed = None
    if connector.auth_config == AuthConfig.JWKS_AUTH:
        signed = _jwks_sign(connector, collected)
        if signed is None:
            return None
    try:
        return api_request_for(connector, signed=signed), signed
    except oauth_http.SigningError as error:
        collected.outcome = Outcome.CONFIG_ERROR
        collected.message = f"The JWT cannot be signed: {error}"
        collected.advise(Advice(why=jwt_config_hint(error.code)))
        return None


def _jwks_sign(connector: Connector, collected: _Collected) -> SignedToken | None:
    """Sign the Jwks Auth token for the test; None (with the outcome set) when it cannot be."""
    try:
        signed = jwks_auth_token(connector=connector)
    except JwksError as exc:
        collected.outcome = Outcome.CONFIG_ERROR
        collected.message = str(exc)
        collected.advise(
            Advice(
                why="The console has no signing key yet.",
                change=(
                    "generate the console's signing key once (Generate JWKS), register the JWKS "
                    "URL with the API and test again"
                ),
            )
        )
        return None
    except oauth_http.SigningError as error:
        collected.outcome = Outcome.CONFIG_ERROR
        collected.message = f"The JWT cannot be signed: {error}"
        collected.advise(Advice(why=jwt_config_hint(error.code)))
        return None
    # The API step shows the token's header and claims (never its signature): ApiRequest's
    # signed_jwt, as for Jwt Auth.
    return signed


def _jwks_refused_hint(connector: Connector, signed: SignedToken, api: oauth_http.ApiResult) -> str:
    """A 401/403 to a signed JWT: say what the API must know to verify it; "" otherwise."""
    if api.ok or api.facts.status not in (401, 403):
        return ""
    url = settings.CONNECTORS_CONSOLE_URL.rstrip("/") + JWKS_PATH
    audience = signed.claims.get("aud", "")
    return (
        f"The API refused the JWT signed with key {signed.kid}. Check that it fetches this "
        f"console's JWKS URL ({url}) and expects iss {connector.jwt_issuer!r}"
        + (f" and aud {audience!r}" if audience else "")
        + ". A key published less than its cache time ago may not be known to it yet."
    )


def connector_test(
    *,
    connector: Connector,
    user: Any = None,
    source: str = TestRun.Source.SAVED,
    rows: list[RowLike] | None = None,
    batch_id: int | None = None,
    on_recorded: Callable[[TestRun], Any] | None = None,
) -> TestOutcome:
    """Run the connection test for a connector (saved, or unsaved form values) and record it.

    The HTTP requests run outside any database transaction; the run, its attempts and the audit
    record are written afterwards in one transaction. Nothing about the connector is saved.
    A test in a batch (`batch_id`) names the batch in its audit record and is not counted against
    the rate limit (the batch counted once); `on_recorded(run)` runs in the recording transaction.
    """
    if transaction.get_connection().in_atomic_block:
        # Holding a transaction open across a 10 s network call would block other writers.
        logger.warning("connector_test called inside a transaction for %s", connector.name)
    actor = acting_user(user)
    try:
        connector_test_check_allowed(connector=connector)
    except TestRefused as exc:
        _record_denial(connector, actor, exc.action, str(exc))
        raise
    try:
        notice = _rate_check_unless_batch(actor, batch_id)
    except TestRateLimited as exc:
        _record_denial(connector, actor, ConsoleOutcome.RATE_LIMITED, str(exc))
        raise
    if rows is None and connector.pk:
        rows = _saved_params(connector)
    rows = rows or []
    started_at = timezone.now()
    clock = time.monotonic()
    collected = _Collected()
    try:
        _run_requests(connector, rows, collected, source, actor)
    except Exception as exc:  # noqa: BLE001 - an unexpected fault is recorded, then reported
        secrets = [getattr(connector, name) for name in ALL_SECRET_FIELDS]
        secrets += [r.value for r in rows if r.sensitive]
        detail = redact_text(
            "".join(traceback.format_exception_only(type(exc), exc)).strip(),
            secrets=[s for s in secrets if s],
        )
        logger.error("Connection test of %s failed unexpectedly: %s", connector.name, detail)
        collected.ok = False
        collected.outcome = ConsoleOutcome.INTERNAL_ERROR
        collected.message = f"The test stopped because of an internal error ({detail[:300]})."
        collected.advise(
            Advice(
                why=(
                    "This is a fault in Connector Console, not in your settings: tell an "
                    "administrator."
                )
            )
        )
    duration_ms = int((time.monotonic() - clock) * 1000)
    if notice:
        collected.add_note(notice)
    run, attempts = recording.record(
        functools.partial(
            _record,
            connector=connector,
            actor=actor,
            source=source,
            rows=rows,
            started_at=started_at,
            duration_ms=duration_ms,
            collected=collected,
            details={"batch": batch_id} if batch_id is not None else None,
            on_recorded=on_recorded,
        ),
        # A batch's tests running in one process are committed in groups (connectors.recording).
        batch=batch_id is not None,
    )
    return TestOutcome(
        run=run, attempts=attempts, pin_offer=collected.pin_offer, advice=collected.advice
    )


def _record(
    *,
    connector: Connector,
    actor: Any,
    source: str,
    rows: list[RowLike],
    started_at: Any,
    duration_ms: int,
    collected: _Collected,
    details: dict[str, Any] | None = None,
    on_recorded: Callable[[TestRun], Any] | None = None,
) -> tuple[TestRun, list[TestAttempt]]:
    """Store the run, its attempts and its audit record (audit.services.test_run_record).

    Everything is built here, before the recording transaction opens, so the transaction (and
    the chain-head lock at its end) lasts only as long as the writes.
    """
    run = TestRun(
        connector_id=connector.pk,
        connector_name=connector.name,
        user_id=actor.pk if actor else None,
        username=actor.get_username() if actor else "",
        source=source,
        started_at=started_at,
        duration_ms=duration_ms,
        ok=collected.ok,
        outcome=collected.outcome,
        message=collected.message,
        hint=collected.hint,
        client_authentication_used=collected.client_authentication_used,
        token=collected.token,
        config=_config_snapshot(connector, rows),
    )
    attempts = [
        TestAttempt(
            position=position,
            step=step,
            client_authentication=attempt.client_authentication,
            method=attempt.method,
            url=attempt.url,
            request_headers=[list(pair) for pair in attempt.request_headers],
            request_body=[list(pair) for pair in attempt.request_body],
            status_code=attempt.status_code,
            response_headers=[list(pair) for pair in attempt.response_headers],
            response_excerpt=attempt.response_excerpt,
            duration_ms=attempt.duration_ms,
            outcome=attempt.outcome,
            message=attempt.message,
            curl=curl,
        )
        for position, (step, attempt, curl) in enumerate(collected.attempts or [], start=1)
    ]

    def before_append(stored: TestRun) -> None:
        # Before the chain-head lock, in the same transaction: the connector's health row moves
        # with the run (form tests skip), and a batch marks its item done.
        connector_health_record(connector_id=connector.pk, run=stored)
        # A change of state claims its notice here; the notice goes out after the commit.
        notify_after_record(connector_id=connector.pk, run=stored)
        if on_recorded is not None:
            on_recorded(stored)

    def refused(stored: TestRun) -> None:
        _record_denial(
            connector,
            actor,
            Outcome.BLOCKED,
            "A connection test was refused by the outbound policy.",
            details={"test_run": stored.pk},
        )

    stored = test_run_record(
        run=run,
        attempts=attempts,
        user=actor,
        connector=connector,
        # Only a refusal writes more in the run's transaction; without it the COMMIT may ride
        # with the record's append (audit.round_trips.own_transaction).
        then=refused if run.outcome == Outcome.BLOCKED else None,
        details=details,
        before_append=before_append,
    )
    # A minimal record (details not storable) has no attempts: show what is stored.
    return stored, attempts if stored is run else []


def _record_denial(
    connector: Connector, actor: Any, action: str, summary: str, details: dict | None = None
) -> None:
    """A test refused before or by the network: by the rate limit or the outbound policy."""
    audit_record(
        kind="denial",
        action=action,
        user=actor,
        connector=connector,
        connector_name=connector.name,
        outcome=action,
        summary=summary,
        details=details,
    )


__all__ = [
    "TestOutcome",
    "TestRateLimited",
    "api_request_for",
    "connector_test",
    "connector_test_rate_check",
    "outbound_policy",
    "token_request_for",
]
