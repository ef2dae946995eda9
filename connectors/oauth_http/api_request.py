"""The API test request: a GET against the connector's API with its credentials applied."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from connectors.oauth_http.assertions import unsigned_view
from connectors.oauth_http.policy import OutboundPolicy
from connectors.oauth_http.redaction import MASK, redact_headers, redact_text, redact_url
from connectors.oauth_http.response_text import (
    content_type,
    decode,
    excerpt,
    http_error_message,
    location_host,
    response_headers,
    size_text,
)
from connectors.oauth_http.token_request import basic_value, replace_header
from connectors.oauth_http.transport import (
    Failure,
    RawResponse,
    Target,
    check_ca_bundle,
    check_headers,
    check_limits,
    open_transport,
    parse_target,
)
from connectors.oauth_http.types import (
    DEFAULT_USER_AGENT,
    NEUTRAL_LABELS,
    ApiRequest,
    ApiResult,
    Attempt,
    Facts,
    FieldLabels,
    Resolver,
)
from connectors.oauth_http.vocabulary import Outcome


def _api_secrets(request: ApiRequest) -> tuple[str, ...]:
    extra = [basic_value(*request.basic_auth)] if request.basic_auth else []
    return (*request.secrets(), *extra)


def _headers(request: ApiRequest) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = [
        ("User-Agent", request.user_agent or DEFAULT_USER_AGENT),
        ("Accept", "application/json, */*;q=0.8"),
    ]
    if request.basic_auth is not None:
        user, password = request.basic_auth
        headers.append(("Authorization", f"Basic {basic_value(user, password)}"))
    for param in request.headers:
        headers = replace_header(headers, param.key, param.value)
    return headers


def _url(request: ApiRequest) -> str:
    url = request.url.strip()
    if request.params:
        query = urlencode([(param.key, param.value) for param in request.params])
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    return url


def _shown_header(sent: str, masked: str, signed_jwt: str, secrets: Sequence[str]) -> str:
    """The header as stored: masked, except that the console's own signed JWT keeps its header
    and claims readable (only its signature is masked) for the result step to decode."""
    if signed_jwt and sent == f"Bearer {signed_jwt}":
        # Not passed through redact_text: its Bearer rule would mask the readable part too,
        # and nothing secret is left in it.
        return f"Bearer {unsigned_view(signed_jwt, MASK)}"
    return redact_text(masked, secrets=secrets)


class _Recorder:
    """Builds the result: one masked attempt record and the facts behind the outcome."""

    def __init__(self, request: ApiRequest, headers: list[tuple[str, str]], url: str) -> None:
        self.request = request
        self.secrets = _api_secrets(request)
        params = (*request.headers, *request.params)
        sensitive = [param.key for param in params if param.sensitive]
        self.masked_headers = tuple(
            (name, _shown_header(sent, masked, request.signed_jwt, self.secrets))
            for (_, sent), (name, masked) in zip(
                headers, redact_headers(headers, sensitive_keys=sensitive), strict=True
            )
        )
        self.shown_url = redact_text(redact_url(url), secrets=self.secrets)

    def result(
        self, outcome: Outcome, message: str, facts: Facts | None = None, **answer: Any
    ) -> ApiResult:
        values: dict[str, Any] = {
            "status_code": None,
            "response_headers": (),
            "response_excerpt": "",
            "duration_ms": 0,
            **answer,
        }
        message = redact_text(message, secrets=self.secrets)
        attempt = Attempt(
            client_authentication="",
            method="GET",
            url=self.shown_url,
            request_headers=self.masked_headers,
            request_body=(),
            outcome=outcome,
            message=message,
            **values,
        )
        facts = facts or Facts(status=values["status_code"])
        return ApiResult(outcome == Outcome.SUCCESS, outcome, message, attempt, facts)


def _read(
    raw: RawResponse, target: Target, request: ApiRequest, secrets: Sequence[str]
) -> tuple[Outcome, str, Facts]:
    """(outcome, message, facts) of the API's answer."""
    if 300 <= raw.status < 400:
        host = location_host(raw, target)
        where = f" to {host}" if host else ""
        message = (
            f"The API answered HTTP {raw.status} (a redirect{where}). Redirects are not followed "
            "because that would send the credentials again to the new address."
        )
        return Outcome.REDIRECT_REFUSED, message, Facts(status=raw.status, redirect_host=host)
    if 200 <= raw.status < 300:
        size = (
            f"{len(raw.body)} bytes"
            if not raw.too_large
            else (f"more than {size_text(request.max_body_bytes)}; reading stopped there")
        )
        media_type = content_type(raw.headers) or "no Content-Type"
        message = f"The API answered HTTP {raw.status} ({media_type}, {size})."
        return Outcome.SUCCESS, message, Facts(status=raw.status, too_large=raw.too_large)
    message = http_error_message(raw, decode(raw.body, raw.headers), secrets)
    return Outcome.HTTP_ERROR, message, Facts(status=raw.status)


def api_request_perform(
    request: ApiRequest,
    *,
    policy: OutboundPolicy,
    resolver: Resolver = socket.getaddrinfo,
    labels: FieldLabels = NEUTRAL_LABELS,
) -> ApiResult:
    """GET the connector's API with its credentials; ok on 2xx. Never raises for network faults.

    `labels` names the configuration fields in messages (the console passes its form's).
    """
    headers = _headers(request)
    url = _url(request)
    recorder = _Recorder(request, headers, url)
    try:
        target = parse_target(url, labels.api_url)
        check_limits(request.timeout, request.max_body_bytes)
        check_headers(headers)
        check_ca_bundle(request.ca_bundle, labels.ca_bundle)
        transport = open_transport(
            target,
            policy=policy,
            resolver=resolver,
            ca_bundle=request.ca_bundle,
            timeout=request.timeout,
            max_body_bytes=request.max_body_bytes,
        )
    except Failure as failure:
        return recorder.result(failure.outcome, failure.message)

    started = time.monotonic()
    try:
        raw = transport.send("GET", target.url, headers, None)
    except Failure as failure:
        duration_ms = round((time.monotonic() - started) * 1000)
        return recorder.result(failure.outcome, failure.message, duration_ms=duration_ms)
    finally:
        transport.close()

    outcome, message, facts = _read(raw, target, request, recorder.secrets)
    return recorder.result(
        outcome,
        message,
        facts,
        status_code=raw.status,
        response_headers=response_headers(raw, recorder.secrets),
        response_excerpt=excerpt(raw, recorder.secrets),
        duration_ms=round((time.monotonic() - started) * 1000),
    )


__all__ = ["api_request_perform"]
