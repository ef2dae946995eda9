"""The token request: building it, planning the client authentication, sending the attempts.

`token_request_perform` sends one token request the way a connector would (RFC 6749 §4.3
password grant, §4.4 client credentials, §6 refresh) and tries the client authentication methods
in automatic mode. It never raises for network or protocol faults: the result names an outcome
and carries the facts behind it; `connectors.explain` turns those into advice.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote_plus, urlencode

from connectors.oauth_http.assertions import SigningError, unsigned_view
from connectors.oauth_http.policy import OutboundPolicy
from connectors.oauth_http.redaction import (
    MASK,
    redact_headers,
    redact_pairs,
    redact_text,
    redact_url,
)
from connectors.oauth_http.response_text import excerpt, response_headers
from connectors.oauth_http.token_response import FORM_CONTENT_TYPE, Reading, read_token_response
from connectors.oauth_http.transport import (
    Failure,
    Transport,
    check_ca_bundle,
    check_headers,
    check_limits,
    config_error,
    open_transport,
    parse_target,
)
from connectors.oauth_http.types import (
    DEFAULT_USER_AGENT,
    NEUTRAL_LABELS,
    Attempt,
    Facts,
    FieldLabels,
    Param,
    Resolver,
    TokenRequest,
    TokenResult,
)
from connectors.oauth_http.vocabulary import (
    CLIENT_ACCEPTED_ERRORS,
    CLIENT_ASSERTION_TYPE_JWT,
    CONFIGURABLE_CLIENT_AUTHENTICATION,
    ClientAuthentication,
    Grant,
    Outcome,
)

Pairs = list[tuple[str, str]]
Auth = ClientAuthentication

UNENCODED_NOTE = (
    " This only worked with the client credentials sent in the Basic header without "
    "the form-urlencoding RFC 6749 §2.3.1 requires: the server skips the §2.3.1 decoding."
)
# After a refusal of these, Basic is tried once more without the §2.3.1 encoding when the
# encoding changed the credentials: automatic mode once both methods failed, pinned Basic at
# once (a pinned method must work against both kinds of server).
_RETRY_UNENCODED_AFTER: dict[str, Auth] = {
    Auth.AUTO: Auth.REQUEST_BODY,
    Auth.BASIC_CLIENT: Auth.BASIC_CLIENT,
}


# --------------------------------------------------------------------------------------------
# Building


def basic_value(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def basic_client_value(client_id: str, client_secret: str) -> str:
    # RFC 6749 §2.3.1: form-urlencode each value before the Basic scheme joins them with ":".
    return basic_value(quote_plus(client_id), quote_plus(client_secret))


# The Authorization header value each Basic method sends.
_AUTHORIZATION: dict[str, Callable[[TokenRequest], str]] = {
    Auth.BASIC_CLIENT: lambda r: basic_client_value(r.client_id, r.client_secret),
    Auth.BASIC_CLIENT_UNENCODED: lambda r: basic_value(r.client_id, r.client_secret),
    # RFC 7617 Basic, as the "username and password" option means: no §2.3.1 encoding.
    Auth.BASIC_USER: lambda r: basic_value(r.username, r.password),
}
# The body fields each grant adds after grant_type.
_GRANT_FIELDS: dict[str, Callable[[TokenRequest], Pairs]] = {
    Grant.PASSWORD: lambda r: [("username", r.username), ("password", r.password)],
    Grant.REFRESH_TOKEN: lambda r: [("refresh_token", r.refresh_token)],
    Grant.JWT_BEARER: lambda r: [("assertion", r.assertion)],
}
# Body fields that carry a JWT the console signed: stored and shown without the signature.
ASSERTION_FIELDS = frozenset({"assertion", "client_assertion"})


def client_auth_plan(request: TokenRequest, labels: FieldLabels = NEUTRAL_LABELS) -> list[Auth]:
    """The methods to try, in order; Failure for a method the console does not know."""
    mode = request.client_authentication
    if mode not in CONFIGURABLE_CLIENT_AUTHENTICATION:
        raise config_error(f"{labels.client_authentication} {mode!r} is not supported.")
    if mode == Auth.BASIC_USER:
        return [Auth.BASIC_USER]
    if mode == Auth.PRIVATE_KEY_JWT:
        if not request.client_id or request.signing is None:
            raise config_error(
                f"{labels.client_authentication} private_key_jwt needs the Client ID and the "
                "Private Key."
            )
        return [Auth.PRIVATE_KEY_JWT]
    if not request.client_id:
        return [Auth.NONE]  # a client without an id has nothing to authenticate with
    if mode == Auth.AUTO:
        return [Auth.BASIC_CLIENT, Auth.REQUEST_BODY]
    return [Auth(mode)]


def replace_header(headers: Pairs, name: str, value: str) -> Pairs:
    """A configured header replaces a default of the same name instead of doubling it."""
    return [(key, old) for key, old in headers if key.lower() != name.lower()] + [(name, value)]


def _headers(request: TokenRequest, label: str) -> Pairs:
    headers: Pairs = [
        ("User-Agent", request.user_agent or DEFAULT_USER_AGENT),
        ("Accept", "application/json"),
        ("Content-Type", FORM_CONTENT_TYPE),
    ]
    if label in _AUTHORIZATION:
        headers.append(("Authorization", f"Basic {_AUTHORIZATION[label](request)}"))
    for param in request.additional_headers:
        headers = replace_header(headers, param.key, param.value)
    return headers


def _body(request: TokenRequest, label: str) -> Pairs:
    body: Pairs = [("grant_type", request.grant_type_sent)]
    body += _GRANT_FIELDS.get(request.grant_type, lambda r: [])(request)
    if request.scope:
        body.append(("scope", request.scope))
    body += [(param.key, param.value) for param in request.additional_request_data]
    if label == Auth.REQUEST_BODY or (label == Auth.BASIC_USER and request.client_id):
        body.append(("client_id", request.client_id))
        if request.client_secret:  # a public client has none (RFC 6749 §2.1)
            body.append(("client_secret", request.client_secret))
    elif label == Auth.PRIVATE_KEY_JWT:
        # RFC 7521 §4.2: client_id may accompany the assertion; servers that route by it
        # (Keycloak, Okta) need it, and RFC 7523 servers accept it.
        body += [
            ("client_id", request.client_id),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE_JWT),
            ("client_assertion", request.client_assertion),
        ]
    return body


def with_assertions(request: TokenRequest, label: str) -> TokenRequest:
    """The request with freshly signed assertions for this attempt (a new jti each time).

    The JWT Bearer grant's assertion states the configured issuer and subject (RFC 7523 §3);
    a private_key_jwt client assertion states the client id as both (§3, §2.2). Both are for
    the token URL unless an audience is configured. A key that cannot sign is a config error.
    """
    signing = request.signing
    wants_grant = request.grant_type == Grant.JWT_BEARER
    wants_client = label == Auth.PRIVATE_KEY_JWT
    if signing is None or not (wants_grant or wants_client):
        if wants_grant or wants_client:
            raise config_error("There is no Private Key to sign the assertion with.")
        return request
    audience = request.token_url.strip()
    try:
        assertion = signing.sign(default_audience=audience) if wants_grant else ""
        client_assertion = (
            signing.sign(
                default_audience=audience, issuer=request.client_id, subject=request.client_id
            )
            if wants_client
            else ""
        )
    except SigningError as error:
        raise config_error(f"The assertion cannot be signed: {error}") from None
    return replace(request, assertion=assertion, client_assertion=client_assertion)


def token_request_parts(request: TokenRequest, label: str) -> tuple[Pairs, Pairs]:
    """Headers and body fields, in the order sent, for one client authentication label."""
    return _headers(request, label), _body(request, label)


def exchange_secrets(request: TokenRequest) -> tuple[str, ...]:
    """The request's secrets plus the Basic credentials as they appear on the wire."""
    extra = []
    if request.client_id or request.client_secret:
        extra += [
            basic_client_value(request.client_id, request.client_secret),
            basic_value(request.client_id, request.client_secret),
        ]
    if request.password:
        extra.append(basic_value(request.username, request.password))
    return (*request.secrets(), *extra)


def _masked_request(
    request: TokenRequest, label: str, secrets: Sequence[str]
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    headers, body = token_request_parts(request, label)
    params: tuple[Param, ...] = (*request.additional_headers, *request.additional_request_data)
    sensitive = [param.key for param in params if param.sensitive]
    masked_headers = redact_headers(headers, sensitive_keys=sensitive)
    masked_body = redact_pairs(body, sensitive_keys=sensitive)
    custom = {param.key for param in request.additional_request_data}
    # The console's own assertions keep their header and claims (what a result step shows);
    # only the signature is masked. A configured row of the same name stays masked whole.
    shown_body = [
        (key, unsigned_view(sent, MASK) if key in ASSERTION_FIELDS - custom and sent else masked)
        for (key, sent), (_, masked) in zip(body, masked_body, strict=True)
    ]
    return (
        tuple((name, redact_text(value, secrets=secrets)) for name, value in masked_headers),
        tuple((key, redact_text(value, secrets=secrets)) for key, value in shown_body),
    )


# --------------------------------------------------------------------------------------------
# Attempts


@dataclass(frozen=True, slots=True)
class _Answer:
    """What the server sent back for one attempt, already masked."""

    status_code: int | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    response_excerpt: str = ""


def _attempt(
    request: TokenRequest,
    label: str,
    url: str,
    reading: Reading,
    secrets: Sequence[str],
    answer: _Answer = _Answer(),
    duration_ms: int = 0,
) -> Attempt:
    """The attempt record, masked; `answer` is empty when the server never answered."""
    masked_headers, masked_body = _masked_request(request, label, secrets)
    return Attempt(
        client_authentication=label,
        method="POST",
        url=redact_text(redact_url(url), secrets=secrets),
        request_headers=masked_headers,
        request_body=masked_body,
        status_code=answer.status_code,
        response_headers=answer.response_headers,
        response_excerpt=answer.response_excerpt,
        duration_ms=duration_ms,
        outcome=reading.outcome,
        message=redact_text(reading.message, secrets=secrets),
    )


def _token_attempt(
    transport: Transport,
    request: TokenRequest,
    label: str,
    secrets: Sequence[str],
    labels: FieldLabels,
) -> tuple[Attempt, Reading]:
    request = with_assertions(request, label)
    secrets = (*secrets, *request.secrets())
    headers, body = token_request_parts(request, label)
    started = time.monotonic()
    answer = _Answer()
    try:
        raw = transport.send("POST", transport.target.url, headers, urlencode(body).encode())
    except Failure as failure:
        reading = Reading(failure.outcome, failure.message)
    else:
        reading = read_token_response(raw, request, transport.target, secrets, labels)
        token_secrets = (*secrets, reading.access_token) if reading.access_token else secrets
        answer = _Answer(
            status_code=raw.status,
            response_headers=response_headers(raw, secrets),
            response_excerpt=(
                "" if raw.too_large else excerpt(raw, token_secrets, token_response=True)
            ),
        )
    duration_ms = round((time.monotonic() - started) * 1000)
    attempt = _attempt(request, label, transport.target.url, reading, secrets, answer, duration_ms)
    return attempt, reading


def _encoding_matters(request: TokenRequest) -> bool:
    return (
        quote_plus(request.client_id) != request.client_id
        or quote_plus(request.client_secret) != request.client_secret
    )


def _run_plan(
    transport: Transport,
    request: TokenRequest,
    plan: list[Auth],
    secrets: Sequence[str],
    labels: FieldLabels,
) -> tuple[list[Attempt], list[Reading]]:
    """Send the planned attempts until one gets the client authenticated (automatic mode)."""
    attempts: list[Attempt] = []
    readings: list[Reading] = []
    pending = list(plan)
    while pending:
        label = pending.pop(0)
        attempt, reading = _token_attempt(transport, request, label, secrets, labels)
        attempts.append(attempt)
        readings.append(reading)
        if not reading.client_rejected or request.client_authentication not in (
            _RETRY_UNENCODED_AFTER
        ):
            break
        if (
            not pending
            and label == _RETRY_UNENCODED_AFTER[request.client_authentication]
            and all(item.client_rejected for item in readings)
            and _encoding_matters(request)
        ):
            pending.append(Auth.BASIC_CLIENT_UNENCODED)
    return attempts, readings


def _open(
    request: TokenRequest,
    plan: list[Auth],
    policy: OutboundPolicy,
    resolver: Resolver,
    labels: FieldLabels,
) -> Transport:
    """The transport for the token URL, after every check that needs no network."""
    target = parse_target(request.token_url, labels.token_url)
    check_limits(request.timeout, request.max_body_bytes)
    if not request.grant_type_sent:
        raise config_error(f"{labels.grant_type} is empty.")
    check_headers(token_request_parts(request, plan[0])[0])
    check_ca_bundle(request.ca_bundle, labels.ca_bundle)
    return open_transport(
        target,
        policy=policy,
        resolver=resolver,
        ca_bundle=request.ca_bundle,
        timeout=request.timeout,
        max_body_bytes=request.max_body_bytes,
    )


def token_request_perform(
    request: TokenRequest,
    *,
    policy: OutboundPolicy,
    resolver: Resolver = socket.getaddrinfo,
    labels: FieldLabels = NEUTRAL_LABELS,
) -> TokenResult:
    """Request a token as configured and report what happened. Never raises for network faults.

    `labels` names the configuration fields in messages (the console passes its form's).

    In automatic client authentication the Basic header is tried first, then the request body,
    never both in one request; when both are refused and the §2.3.1 urlencoding changed the
    credentials, Basic is tried once more without it. Pinned Basic (client id and secret) does
    the same at once when its encoded form is refused, so it works against servers that undo
    the encoding and those that don't. The first attempt that gets the client authenticated (a
    token, or an error about the grant or scope) ends the sequence; `client_authentication_used`
    names its method, `basic_client_unencoded` when the unencoded form is what worked.
    """
    started = time.monotonic()
    secrets = exchange_secrets(request)
    plan = [Auth.NONE]
    try:
        plan = client_auth_plan(request, labels)
        with_assertions(request, plan[0])  # a key that cannot sign stops here, before the network
        transport = _open(request, plan, policy, resolver, labels)
    except Failure as failure:
        reading = Reading(failure.outcome, failure.message)
        attempt = _attempt(request, plan[0], request.token_url, reading, secrets)
        return _token_result(request, [attempt], [reading], started)
    try:
        attempts, readings = _run_plan(transport, request, plan, secrets, labels)
    except Failure as failure:  # signing failed on a later attempt (it worked on the first)
        reading = Reading(failure.outcome, failure.message)
        attempt = _attempt(request, plan[0], request.token_url, reading, secrets)
        return _token_result(request, [attempt], [reading], started)
    finally:
        transport.close()
    return _token_result(request, attempts, readings, started)


# --------------------------------------------------------------------------------------------
# The result


def _proven(attempt: Attempt, reading: Reading) -> bool:
    """Only an answer produced by the server proves the client authentication worked."""
    answered_2xx = attempt.status_code is not None and 200 <= attempt.status_code < 300
    return (
        reading.outcome == Outcome.SUCCESS
        or reading.oauth_error in CLIENT_ACCEPTED_ERRORS
        or (reading.outcome in (Outcome.NO_TOKEN, Outcome.INVALID_RESPONSE) and answered_2xx)
    )


def _used_client_authentication(attempt: Attempt, reading: Reading) -> str | None:
    if reading.client_rejected or not attempt.client_authentication:
        return None
    if not _proven(attempt, reading):
        return None
    return attempt.client_authentication


def _facts(request: TokenRequest, attempt: Attempt, reading: Reading) -> Facts:
    return Facts(
        status=attempt.status_code,
        oauth_error=reading.oauth_error,
        client_rejected=reading.client_rejected,
        keys_found=reading.keys_found,
        suggested_key=reading.suggested_key,
        redirect_host=reading.redirect_host,
        too_large=reading.too_large,
        html_page=reading.html_page,
        client_authentication=request.client_authentication,
        grant_type=request.grant_type,
        grant_type_sent=request.grant_type_sent,
        scope=request.scope,
        response_type=request.response_type,
        timeout=request.timeout,
        max_body_bytes=request.max_body_bytes,
    )


def _token_result(
    request: TokenRequest,
    attempts: list[Attempt],
    readings: list[Reading],
    started: float,
) -> TokenResult:
    last_attempt, last = attempts[-1], readings[-1]
    used = _used_client_authentication(last_attempt, last)
    message = last_attempt.message
    if (
        last_attempt.client_authentication == Auth.BASIC_CLIENT_UNENCODED
        and used
        and len(attempts) > 1
    ):
        message += UNENCODED_NOTE
    return TokenResult(
        ok=last.outcome == Outcome.SUCCESS,
        outcome=last.outcome,
        message=redact_text(message, secrets=exchange_secrets(request)),
        attempts=tuple(attempts),
        client_authentication_used=used,
        token=last.token,
        duration_ms=round((time.monotonic() - started) * 1000),
        facts=_facts(request, last_attempt, last),
        access_token=last.access_token,
    )


__all__ = [
    "ASSERTION_FIELDS",
    "basic_client_value",
    "basic_value",
    "client_auth_plan",
    "exchange_secrets",
    "token_request_parts",
    "token_request_perform",
    "with_assertions",
]
