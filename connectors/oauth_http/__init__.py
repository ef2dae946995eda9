"""The HTTP core: token requests, API test requests and the outbound client, with no Django.

Every outbound exchange goes through one transport (`transport.open_transport`, or
`outbound_session` for code that wants a requests session) with the same guarantees: the outbound
policy is checked on the resolved addresses and the connection is pinned to the checked address;
one total deadline covers every attempt, even against a server that drips a byte a second;
redirects are refused instead of followed (following would resend credentials); response bodies
are read up to a cap; TLS verification is always on. Secrets never leave the core unmasked except
in `TokenResult.access_token`.

Results name an `Outcome` and carry the facts behind it; turning those into advice is the Django
side's work (`connectors.explain`).

Modules: `vocabulary` (the enums and their labels), `types`, `policy`, `deadline`, `pinning`,
`transport`, `client`, `token_request`, `token_response`, `response_text`, `api_request`, `curl`,
`redaction`.
"""

from __future__ import annotations

from connectors.oauth_http.api_request import api_request_perform
from connectors.oauth_http.assertions import JwtSigning, SigningError
from connectors.oauth_http.client import (
    OutboundError,
    OutboundSession,
    ResponseTooLarge,
    outbound_check,
    outbound_session,
    url_origin,
)
from connectors.oauth_http.curl import token_request_as_curl
from connectors.oauth_http.policy import BLOCKED_MESSAGE, OutboundPolicy
from connectors.oauth_http.token_request import token_request_perform
from connectors.oauth_http.transport import HEADER_NAME
from connectors.oauth_http.types import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TIMEOUT,
    DEFAULT_USER_AGENT,
    ApiRequest,
    ApiResult,
    Attempt,
    Facts,
    FieldLabels,
    Param,
    PolicyDecision,
    Resolver,
    TokenInfo,
    TokenRequest,
    TokenResult,
)
from connectors.oauth_http.vocabulary import (
    CLIENT_AUTH_LABELS,
    CONFIGURABLE_CLIENT_AUTHENTICATION,
    GRANT_LABELS,
    ClientAuthentication,
    ExpiryFormat,
    Grant,
    Outcome,
    ResponseFormat,
)

# Every outcome code, in the vocabulary's order.
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)

__all__ = [
    "BLOCKED_MESSAGE",
    "CLIENT_AUTH_LABELS",
    "CONFIGURABLE_CLIENT_AUTHENTICATION",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_USER_AGENT",
    "GRANT_LABELS",
    "HEADER_NAME",
    "OUTCOMES",
    "JwtSigning",
    "SigningError",
    "ApiRequest",
    "ApiResult",
    "Attempt",
    "ClientAuthentication",
    "ExpiryFormat",
    "Facts",
    "FieldLabels",
    "Grant",
    "OutboundError",
    "OutboundPolicy",
    "OutboundSession",
    "Outcome",
    "Param",
    "PolicyDecision",
    "ResponseFormat",
    "ResponseTooLarge",
    "Resolver",
    "TokenInfo",
    "TokenRequest",
    "TokenResult",
    "api_request_perform",
    "outbound_check",
    "outbound_session",
    "token_request_as_curl",
    "token_request_perform",
    "url_origin",
]
