"""The one outbound client: a requests session whose every request goes through the transport.

    session = outbound_session(policy=policy, timeout=10, max_body_bytes=1_048_576)
    response = session.get("https://api.example.com/v1/me", auth=...)

Each request is checked against the outbound policy, dialled on the checked addresses, bounded by
one total deadline and read up to the size cap; redirects are returned, never followed (following
would resend the credentials); proxies, netrc and CA settings from the environment are ignored.
Faults raise `OutboundError` (a `requests.RequestException`) carrying the outcome.
"""

from __future__ import annotations

import io
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from connectors.oauth_http.policy import OutboundPolicy, normalise_host
from connectors.oauth_http.response_text import size_text
from connectors.oauth_http.transport import (
    Failure,
    RawResponse,
    check_ca_bundle,
    open_transport,
    parse_target,
)
from connectors.oauth_http.types import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TIMEOUT,
    NEUTRAL_LABELS,
    Resolver,
)
from connectors.oauth_http.vocabulary import Outcome

URL_LABEL = "The URL"


class OutboundError(requests.RequestException):
    """An outbound request ended without a usable answer; `outcome` says how."""

    def __init__(self, outcome: Outcome, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.outcome = outcome
        self.message = message


class ResponseTooLarge(OutboundError):
    """The answer is larger than the size cap; reading stopped there."""


def url_origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, host normalised and port filled in; else None."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
        host = normalise_host(parts.hostname or "")
    except (ValueError, UnicodeError):
        return None
    if not host or port is None:
        return None
    return scheme, host, port


class OutboundAdapter(HTTPAdapter):
    """Sends each request through its own transport: policy, pinning, deadline, size cap.

    It never uses HTTPAdapter's own pool; every request's transport is closed when it ends.
    """

    def __init__(
        self,
        *,
        policy: OutboundPolicy,
        resolver: Resolver,
        timeout: float,
        max_body_bytes: int,
        ca_bundle: str,
    ) -> None:
        super().__init__()
        self.policy = policy
        self.resolver = resolver
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.ca_bundle = ca_bundle

    def _deadline(self, timeout: Any) -> float:
        """The total deadline: the session's, or a shorter one the call asks for."""
        parts = timeout if isinstance(timeout, tuple) else (timeout,)
        asked = [float(part) for part in parts if isinstance(part, (int, float))]
        return min([self.timeout, *([max(asked)] if asked else [])])

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, timeout: Any = None, **kwargs: Any
    ) -> requests.Response:
        try:
            target = parse_target(request.url or "", URL_LABEL)
            check_ca_bundle(self.ca_bundle, NEUTRAL_LABELS.ca_bundle)
            transport = open_transport(
                target,
                policy=self.policy,
                resolver=self.resolver,
                ca_bundle=self.ca_bundle,
                timeout=self._deadline(timeout),
                max_body_bytes=self.max_body_bytes,
            )
        except Failure as failure:
            raise OutboundError(failure.outcome, failure.message, request=request) from None
        try:
            headers = list(request.headers.items())
            raw = transport.send(request.method or "GET", target.url, headers, request.body)
        except Failure as failure:
            raise OutboundError(failure.outcome, failure.message, request=request) from None
        finally:
            transport.close()
        if raw.too_large:
            raise ResponseTooLarge(
                Outcome.INVALID_RESPONSE,
                f"The response from {target.host} is larger than "
                f"{size_text(self.max_body_bytes)}; reading stopped there.",
                request=request,
            )
        return self._response(request, raw)

    def _response(self, request: requests.PreparedRequest, raw: RawResponse) -> requests.Response:
        response = requests.Response()
        response.status_code = raw.status
        response.reason = raw.reason
        response.headers = CaseInsensitiveDict(raw.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = io.BytesIO(raw.body)
        response.url = request.url or ""
        response.request = request
        response.connection = self  # lets an auth hook resend (a 401 retry) the same way
        return response


class OutboundSession(requests.Session):
    """A session that sends only through an OutboundAdapter and never follows redirects."""

    def __init__(self, adapter: OutboundAdapter) -> None:
        super().__init__()
        self.trust_env = False  # no proxies, netrc or CA bundle from the environment
        self.adapters.clear()
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False  # following would resend the credentials
        return super().send(request, **kwargs)


def outbound_session(
    *,
    policy: OutboundPolicy,
    timeout: float = DEFAULT_TIMEOUT,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ca_bundle: str = "",
    resolver: Resolver = socket.getaddrinfo,
) -> OutboundSession:
    """The factory for outbound HTTP: policy, pinning, deadline and size cap on every request."""
    adapter = OutboundAdapter(
        policy=policy,
        resolver=resolver,
        timeout=timeout,
        max_body_bytes=max_body_bytes,
        ca_bundle=ca_bundle,
    )
    return OutboundSession(adapter)


def outbound_check(
    url: str,
    *,
    policy: OutboundPolicy,
    resolver: Resolver = socket.getaddrinfo,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Raise OutboundError unless the policy allows the URL's host (a check, not a pin)."""
    try:
        transport = open_transport(
            parse_target(url, URL_LABEL),
            policy=policy,
            resolver=resolver,
            ca_bundle="",
            timeout=timeout,
            max_body_bytes=1,
        )
    except Failure as failure:
        raise OutboundError(failure.outcome, failure.message) from None
    transport.close()


__all__ = [
    "OutboundAdapter",
    "OutboundError",
    "OutboundSession",
    "ResponseTooLarge",
    "outbound_check",
    "outbound_session",
    "url_origin",
]
