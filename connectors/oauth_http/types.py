"""The frozen request and result types of the HTTP core.

Secrets sit in fields with `repr=False`; `secrets()` lists every value redaction must mask.
A result carries an outcome and the facts behind it, never advice: the Django side explains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.oauth_http.assertions import JwtSigning, signature_of
from connectors.oauth_http.redaction import key_looks_sensitive
from connectors.oauth_http.vocabulary import GRANT_WIRE_VALUES, ClientAuthentication, Outcome

DEFAULT_USER_AGENT = "ConnectorConsole/0.1"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BODY_BYTES = 1_048_576

# socket.getaddrinfo's shape; tests pass a stub so nothing is looked up for real.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]


def _secret_values(fixed: Iterable[str], params: Iterable[Param]) -> tuple[str, ...]:
    """The non-empty secrets: the fixed ones plus the values of sensitive-looking params."""
    values = [*fixed, *(p.value for p in params if p.sensitive or key_looks_sensitive(p.key))]
    return tuple(value for value in values if value)


@dataclass(frozen=True, slots=True)
class Param:
    key: str
    value: str = field(repr=False)
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class TokenRequest:
    token_url: str
    grant_type: str
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    scope: str = ""
    client_authentication: str = ClientAuthentication.AUTO
    request_custom_grant_type: str = ""
    additional_headers: tuple[Param, ...] = ()
    additional_request_data: tuple[Param, ...] = ()
    response_type: str = "json"
    access_token_key: str = "access_token"
    expires_in_key: str = "expires_in"
    expires_in_format: str = "seconds"
    ca_bundle: str = ""
    timeout: float = DEFAULT_TIMEOUT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    user_agent: str = DEFAULT_USER_AGENT
    # The signing key and claims of the JWT Bearer grant's assertion and of a private_key_jwt
    # client assertion (RFC 7523 §2.1, §2.2); the core signs them afresh for each attempt.
    signing: JwtSigning | None = None
    assertion: str = field(default="", repr=False)
    client_assertion: str = field(default="", repr=False)

    @property
    def grant_type_sent(self) -> str:
        """The grant_type value on the wire: the custom one when set."""
        return self.request_custom_grant_type or GRANT_WIRE_VALUES.get(
            self.grant_type, self.grant_type
        )

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, including sensitive params, for redaction.

        A signed JWT is a credential for its lifetime; its signature alone is listed too, so
        an answer that quotes only part of the token is masked as well.
        """
        jwts = (self.assertion, self.client_assertion)
        return _secret_values(
            (
                self.client_secret,
                self.password,
                self.refresh_token,
                *jwts,
                *(signature_of(token) for token in jwts if token),
                self.signing.private_key_pem if self.signing else "",
            ),
            (*self.additional_headers, *self.additional_request_data),
        )


@dataclass(frozen=True, slots=True)
class ApiRequest:
    url: str
    headers: tuple[Param, ...] = ()
    params: tuple[Param, ...] = ()
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    ca_bundle: str = ""
    timeout: float = DEFAULT_TIMEOUT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    user_agent: str = DEFAULT_USER_AGENT
    # Bare credentials inside composed header values (the token in "Bearer <token>"), so an
    # API that echoes just the credential is masked too.
    secret_values: tuple[str, ...] = field(default=(), repr=False)
    # A JWT the console signed for this request (Jwt Auth): the step shows its header and claims.
    signed_jwt: str = field(default="", repr=False)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value (Basic password, sensitive headers and params), for redaction."""
        basic_password = (self.basic_auth[1],) if self.basic_auth else ()
        jwt_parts = (self.signed_jwt, signature_of(self.signed_jwt)) if self.signed_jwt else ()
        return _secret_values(
            (*basic_password, *self.secret_values, *jwt_parts), (*self.headers, *self.params)
        )


@dataclass(frozen=True, slots=True)
class FieldLabels:
    """How messages name the configuration fields they are about.

    The core knows the fields by role only; the console passes its form's labels
    (`connectors.explain.FIELD_LABELS`), so a message names the field the user sees.
    """

    token_url: str = "The token URL"
    grant_type: str = "The grant type"
    client_authentication: str = "The client authentication"
    ca_bundle: str = "The CA bundle"
    access_token_key: str = "the access token key"
    expires_in_key: str = "the expiry key"
    api_url: str = "The API URL"


NEUTRAL_LABELS = FieldLabels()


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    allowed: bool
    addresses: tuple[str, ...]
    reason: str  # for logs only; users always see BLOCKED_MESSAGE


@dataclass(frozen=True, slots=True)
class Attempt:
    client_authentication: str
    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: tuple[tuple[str, str], ...]
    status_code: int | None
    response_headers: tuple[tuple[str, str], ...]
    response_excerpt: str
    duration_ms: int
    outcome: Outcome
    message: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_type: str
    expires_in: int | None
    expires_at: float | None
    scope: str
    refresh_token_issued: bool
    token_hash: str
    jwt_header: dict[str, Any] | None
    jwt_claims: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Facts:
    """What an explanation of the outcome may draw on, besides the outcome and the attempts.

    The first group describes the last answer; the second repeats the parts of the request an
    explanation names (the grant, the scope, the limits), so a result explains on its own.
    """

    status: int | None = None
    oauth_error: str = ""
    client_rejected: bool = False
    keys_found: tuple[str, ...] = ()
    suggested_key: str = ""
    redirect_host: str = ""
    too_large: bool = False
    html_page: bool = False

    client_authentication: str = ""  # as configured; the attempts say what was tried
    grant_type: str = ""
    grant_type_sent: str = ""
    scope: str = ""
    response_type: str = ""
    timeout: float = 0.0
    max_body_bytes: int = 0


@dataclass(frozen=True, slots=True)
class TokenResult:
    ok: bool
    outcome: Outcome
    message: str
    attempts: tuple[Attempt, ...]
    client_authentication_used: str | None
    token: TokenInfo | None
    duration_ms: int
    facts: Facts = Facts()
    access_token: str = field(default="", repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ApiResult:
    ok: bool
    outcome: Outcome
    message: str
    attempt: Attempt
    facts: Facts = Facts()


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_USER_AGENT",
    "ApiRequest",
    "ApiResult",
    "Attempt",
    "Facts",
    "FieldLabels",
    "NEUTRAL_LABELS",
    "PolicyDecision",
    "Param",
    "Resolver",
    "TokenInfo",
    "TokenRequest",
    "TokenResult",
]
