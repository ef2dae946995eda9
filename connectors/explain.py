"""Explanations: an outcome plus its facts, in words, naming the form's own fields.

The HTTP core (`connectors.oauth_http`) says what happened: an `Outcome` and the facts behind it.
This module says what it means and what to do next, through tables keyed by outcome. Field names
come from the model's verbose names, the one place the form's labels are defined, so renaming a
field renames it in every hint. A later step can make hints depend on the Auth Config and on the
user's role here without touching the core.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from django.db.models import Field
from django.utils.text import capfirst

from connectors.models import (
    SCOPE_FIELD_BY_GRANT,
    Connector,
    ResponseType,
    TokenRequestParam,
)
from connectors.oauth_http import (
    CLIENT_AUTH_LABELS,
    ApiResult,
    ClientAuthentication,
    Facts,
    FieldLabels,
    Grant,
    Outcome,
    TokenResult,
)
from connectors.oauth_http.redaction import redact_text
from connectors.oauth_http.response_text import size_text

Auth = ClientAuthentication


class ConsoleOutcome(StrEnum):
    """Outcomes the console records around the core's: its own fault, and refusals."""

    INTERNAL_ERROR = "internal_error"
    RATE_LIMITED = "rate_limited"


@cache
def label(field_name: str) -> str:
    """The form label of a Connector field: its verbose name, as the form shows it."""
    field = Connector._meta.get_field(field_name)
    assert isinstance(field, Field), field_name  # a concrete column, never a relation
    return str(capfirst(field.verbose_name))


def scope_label(grant_type: str) -> str:
    field_name = SCOPE_FIELD_BY_GRANT.get(grant_type)
    return label(field_name) if field_name else "the scope field"


def client_auth_name(method: str) -> str:
    """The one name of a client authentication method (or the code, for an unknown one)."""
    try:
        return CLIENT_AUTH_LABELS[Auth(method)]
    except ValueError:
        return method


# How the core's messages name the fields: by the form's labels.
FIELD_LABELS = FieldLabels(
    token_url=label("oauth2_token_url"),
    grant_type=label("oauth2_grant_type"),
    client_authentication=label("oauth2_client_authentication"),
    ca_bundle=label("ca_bundle"),
    access_token_key=label("oauth2_access_token_key"),
    expires_in_key=label("oauth2_expires_in_key"),
    api_url=f"The API URL ({label('base_url')} and {label('test_request_path')})",
)


# --------------------------------------------------------------------------------------------
# What each outcome means, in general


@dataclass(frozen=True, slots=True)
class OutcomeText:
    code: str
    label: str
    explanation: str
    next_step: str


def _outcome_texts() -> dict[str, OutcomeText]:
    token_url = label("oauth2_token_url")
    custom_grant = label("oauth2_request_custom_grant_type")
    rows = (
        (
            Outcome.SUCCESS,
            "Token received",
            "The server accepted the client and the grant and issued an access token.",
            "Nothing to fix. Save the connector; a new token is requested whenever one expires.",
        ),
        (
            Outcome.INVALID_CLIENT,
            "Client rejected",
            f"The server did not accept the client credentials: the {label('oauth2_client_id')} "
            f"is unknown, the {label('oauth2_client_secret')} is wrong, or they were sent in a "
            "way this server does not accept.",
            f"Check {label('oauth2_client_id')} and {label('oauth2_client_secret')}, then try the "
            f"other {label('oauth2_client_authentication')} method (Basic Auth header or Request "
            "Body).",
        ),
        (
            Outcome.INVALID_GRANT,
            "Grant rejected",
            "The client was accepted but the grant was not: the username or password is wrong, "
            "the account is locked, the refresh token is expired or revoked, or the server "
            "refused a signed assertion.",
            f"Check {label('oauth2_username')} and {label('oauth2_password')}, or get a new "
            "refresh token.",
        ),
        (
            Outcome.UNAUTHORIZED_CLIENT,
            "Grant type not allowed for this client",
            "The server knows this application but does not allow it to use this grant type.",
            "Enable this grant type for the client on the authorization server, or choose the "
            f"grant type the client is registered for in {label('oauth2_grant_type')}.",
        ),
        (
            Outcome.UNSUPPORTED_GRANT_TYPE,
            "Grant type not supported",
            "The server does not support the grant_type value that was sent.",
            f"Check {label('oauth2_grant_type')}; if the server expects another value, set "
            f"{custom_grant}.",
        ),
        (
            Outcome.INVALID_SCOPE,
            "Scope rejected",
            "The server refused the requested scope: it is unknown, malformed, or more than this "
            "client may request.",
            "Check the scope field: use scopes the provider documents for this client, separated "
            "by spaces, or leave it blank.",
        ),
        (
            Outcome.INVALID_REQUEST,
            "Request malformed",
            "The server says the token request is missing a parameter, repeats one, or is "
            "otherwise malformed.",
            f"Read the server's description in the message; check {token_url}, "
            f"{TokenRequestParam.Kind.DATA.label} and {TokenRequestParam.Kind.HEADER.label}.",
        ),
        (
            Outcome.HTTP_ERROR,
            "HTTP error",
            "The server answered with an HTTP error status instead of a token or an OAuth error.",
            "Check the URL's host and path; for a 5xx status try again later or contact the "
            "provider.",
        ),
        (
            Outcome.INVALID_RESPONSE,
            "Unreadable response",
            "The server answered, but not with a readable token response (not JSON or "
            "form-encoded, or too large).",
            f"Check that {token_url} points at the token endpoint, and that "
            f"{label('oauth2_response_type')} matches what the server sends.",
        ),
        (
            Outcome.NO_TOKEN,
            "No access token in the response",
            "The server answered successfully, but there is no access token where "
            f"{label('oauth2_access_token_key')} says it is.",
            f"Set {label('oauth2_access_token_key')} to the key (or dotted path, e.g. "
            "data.access_token) that holds the token.",
        ),
        (
            Outcome.TIMEOUT,
            "Timed out",
            "The server did not answer completely within the time limit.",
            "The server may be slow, or a firewall may be dropping the traffic: check the URL and "
            "that this server can reach it, then try again.",
        ),
        (
            Outcome.CONNECTION_ERROR,
            "Connection failed",
            "The connection was refused, reset or closed before a complete answer arrived.",
            "Check the host and port in the URL and that the service is running and reachable "
            "from this server.",
        ),
        (
            Outcome.DNS_ERROR,
            "Host not found",
            "The host name in the URL could not be resolved.",
            "Check the host name in the URL for typos; internal names must resolve from this "
            "server.",
        ),
        (
            Outcome.TLS_ERROR,
            "TLS certificate problem",
            "The secure connection could not be established: the certificate is not trusted, "
            "has expired, or was not issued for this host name.",
            "If the server uses a private certificate authority, paste its certificate into "
            f"{label('ca_bundle')}; check that the URL's host name matches the certificate.",
        ),
        (
            Outcome.REDIRECT_REFUSED,
            "Redirect not followed",
            "The server answered with a redirect. Redirects are not followed because that would "
            "send the credentials to another address.",
            "Set the URL to the final address the server redirects to.",
        ),
        (
            Outcome.BLOCKED,
            "Address not allowed",
            "The outbound policy does not allow connections to this address.",
            "If this server is meant to be reachable, ask an administrator to add it to "
            "CONNECTORS_OUTBOUND_ALLOW.",
        ),
        (
            Outcome.CONFIG_ERROR,
            "Configuration error",
            "The configuration cannot be used to make a request, for example a malformed URL.",
            "Fix the field named in the message and try again.",
        ),
    )
    return {str(row[0]): OutcomeText(str(row[0]), *row[1:]) for row in rows}


OUTCOME_TEXTS: dict[str, OutcomeText] = _outcome_texts()


def outcome_text(code: str) -> OutcomeText | None:
    return OUTCOME_TEXTS.get(code)


def _next_step(outcome: str) -> str:
    text = OUTCOME_TEXTS.get(outcome)
    return text.next_step if text else ""


# --------------------------------------------------------------------------------------------
# HTTP errors, by status


def _http_error_hint(status: int | None, url_field: str) -> str:
    status = status or 0
    if status in (404, 405, 410):
        return f"Check {url_field}: the server has nothing that accepts this request at this path."
    if status in (401, 403):
        return (
            "The server refused the credentials: check the credential fields and, for OAuth2, "
            f"{label('oauth2_client_authentication')}."
        )
    if status == 429:
        return "The server is rate limiting: wait a minute and try again."
    if status >= 500:
        return "The server failed: try again later, or contact the provider if it persists."
    return _next_step(Outcome.HTTP_ERROR)


# --------------------------------------------------------------------------------------------
# The token request


def _invalid_grant(facts: Facts) -> str:
    if facts.grant_type == Grant.REFRESH_TOKEN:
        return (
            "The client itself was accepted, but the refresh token is expired, revoked or was "
            f"issued to another client: get a new one and paste it into "
            f"{label('oauth2_refresh_token')}."
        )
    if facts.grant_type == Grant.PASSWORD:
        return (
            f"The client itself was accepted: check {label('oauth2_username')} and "
            f"{label('oauth2_password')} (and that the account is not locked or protected by MFA)."
        )
    return (
        "The client itself was accepted, but the server refused the grant: check "
        f"{label('oauth2_grant_type')} and {label('oauth2_request_custom_grant_type')}."
    )


def _unauthorized_client(facts: Facts) -> str:
    return (
        f"The application is not allowed the {facts.grant_type_sent!r} grant type on the "
        "server: enable it for this client there, or choose the grant type the client is "
        f"registered for in {label('oauth2_grant_type')}."
    )


def _unsupported_grant_type(facts: Facts) -> str:
    return (
        f"The server does not support grant_type {facts.grant_type_sent!r}: check "
        f"{label('oauth2_grant_type')}, or set {label('oauth2_request_custom_grant_type')} to "
        "the value the server documents."
    )


def _invalid_scope(facts: Facts) -> str:
    current = f" (now {facts.scope!r})" if facts.scope else ""
    return (
        f"Check {scope_label(facts.grant_type)}{current}: use scopes this client may request, "
        "separated by spaces, or leave it blank for the default."
    )


def _no_token(facts: Facts) -> str:
    keys = ", ".join(facts.keys_found[:20]) or "none"
    suggested = facts.suggested_key
    suggestion = f" The token seems to be at {suggested!r}." if suggested else ""
    return f"Set {label('oauth2_access_token_key')} to one of the keys found: {keys}.{suggestion}"


def _token_timeout(facts: Facts) -> str:
    return (
        f"The server did not answer within {facts.timeout:g} s: it may be slow, or a firewall "
        f"may be dropping the traffic. Check {label('oauth2_token_url')} and that this server "
        "can reach it."
    )


def _token_redirect(facts: Facts) -> str:
    where = f" on {facts.redirect_host}" if facts.redirect_host else ""
    return (
        f"Set {label('oauth2_token_url')} to the final URL{where}: open the token URL in a "
        "browser or check the provider's documentation for the exact token endpoint."
    )


def _web_page() -> str:
    return (
        f"Check {label('oauth2_token_url')}: it returned a web page, not a token endpoint (often "
        "a login page, or the authorize URL instead of the token URL)."
    )


def _token_invalid_response(facts: Facts) -> str:
    if facts.too_large:
        return (
            f"Check {label('oauth2_token_url')}: it points at something that is not a token "
            f"endpoint (the response is larger than {size_text(facts.max_body_bytes)})."
        )
    if facts.html_page:
        return _web_page()
    if facts.response_type == ResponseType.JSON:
        return (
            f"If the server sends form-encoded responses, set {label('oauth2_response_type')} to "
            f"{ResponseType.FORM.label}; otherwise check {label('oauth2_token_url')}."
        )
    return _next_step(Outcome.INVALID_RESPONSE)


def _token_http_error(facts: Facts) -> str:
    if facts.html_page:
        return _web_page()
    return _http_error_hint(facts.status, label("oauth2_token_url"))


def _invalid_request(facts: Facts) -> str:
    return (
        f"Read the server's description above; check {label('oauth2_token_url')}, "
        f"{TokenRequestParam.Kind.DATA.label} and {TokenRequestParam.Kind.HEADER.label} against "
        "the provider's documentation."
    )


def _token_connection_error(facts: Facts) -> str:
    return (
        f"Check the host and port in {label('oauth2_token_url')}, and that the service is "
        "running and reachable from this server."
    )


def _token_dns_error(facts: Facts) -> str:
    return (
        f"Check the host name in {label('oauth2_token_url')}: it does not resolve from this server."
    )


# The advice for a token request that ended with an outcome (the client was not rejected).
TOKEN_HINTS: dict[str, Callable[[Facts], str]] = {
    Outcome.INVALID_GRANT: _invalid_grant,
    Outcome.UNAUTHORIZED_CLIENT: _unauthorized_client,
    Outcome.UNSUPPORTED_GRANT_TYPE: _unsupported_grant_type,
    Outcome.INVALID_SCOPE: _invalid_scope,
    Outcome.NO_TOKEN: _no_token,
    Outcome.TIMEOUT: _token_timeout,
    Outcome.REDIRECT_REFUSED: _token_redirect,
    Outcome.INVALID_RESPONSE: _token_invalid_response,
    Outcome.HTTP_ERROR: _token_http_error,
    Outcome.INVALID_REQUEST: _invalid_request,
    Outcome.CONNECTION_ERROR: _token_connection_error,
    Outcome.DNS_ERROR: _token_dns_error,
}


def _outcome_hint(result: TokenResult) -> str:
    explain = TOKEN_HINTS.get(result.outcome)
    return explain(result.facts) if explain else _next_step(result.outcome)


def _client_rejected_hint(result: TokenResult) -> str:
    """The client credentials were refused: what to check, for the method(s) tried."""
    mode = result.facts.client_authentication
    client_id, client_secret = label("oauth2_client_id"), label("oauth2_client_secret")
    setting = label("oauth2_client_authentication")
    if result.attempts[0].client_authentication == Auth.NONE:
        return f"The server wants client authentication: fill in {client_id} and {client_secret}."
    if mode == Auth.AUTO:
        return (
            "The server accepted the client credentials neither in the Basic Auth header nor "
            f"in the request body: check {client_id} and {client_secret} (copy them again from "
            "the provider, without spaces around them)."
        )
    if mode == Auth.BASIC_CLIENT:
        return (
            f"Check {client_id} and {client_secret}. If they are right, the server may want them "
            f"in the request body: set {setting} to {CLIENT_AUTH_LABELS[Auth.REQUEST_BODY]} (or "
            "leave it on automatic to try both)."
        )
    if mode == Auth.BASIC_CLIENT_UNENCODED:
        return (
            f"Check {client_id} and {client_secret}. If they are right, the server may decode "
            f"the Basic credentials as RFC 6749 §2.3.1 requires: set {setting} to "
            f"{CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT]} (it tries the unencoded form too), or to "
            f"{CLIENT_AUTH_LABELS[Auth.REQUEST_BODY]}."
        )
    if mode == Auth.REQUEST_BODY:
        return (
            f"Check {client_id} and {client_secret}. If they are right, the server may want them "
            f"in a Basic Auth header: set {setting} to {CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT]} "
            "(or leave it on automatic to try both)."
        )
    return (
        "The server did not accept the Basic Auth header built from "
        f"{label('oauth2_username')} and {label('oauth2_password')}. Most servers want the client "
        f"id and secret there instead: set {setting} to {CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT]}."
    )


def _method_hint(result: TokenResult) -> str | None:
    """Advice about the client authentication that worked, when automatic mode found it."""
    facts, used = result.facts, result.client_authentication_used
    auto = facts.client_authentication == Auth.AUTO
    tried = [attempt.client_authentication for attempt in result.attempts]
    setting = label("oauth2_client_authentication")
    if tried[-1] == Auth.BASIC_CLIENT_UNENCODED and used and len(tried) > 1:
        return (
            "The server does not decode the Basic credentials as RFC 6749 §2.3.1 requires, so "
            "credentials with characters like + / : % spaces or accents only work unencoded. "
            f"Set {setting} to {CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT_UNENCODED]} to skip the "
            "refused attempts, and tell the provider about the bug."
        )
    if auto and used == Auth.REQUEST_BODY and Auth.BASIC_CLIENT in tried:
        prefix = (
            "This server wants the client credentials in the request body: set "
            f"{setting} to {CLIENT_AUTH_LABELS[Auth.REQUEST_BODY]}."
        )
        return prefix if result.ok else f"{prefix} {_outcome_hint(result)}"
    if auto and used == Auth.BASIC_CLIENT and result.ok:
        return (
            f"The Basic Auth header worked. To skip the fallback, set {setting} to "
            f"{CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT]}."
        )
    return None


# --------------------------------------------------------------------------------------------
# Signed assertions (RFC 7523): the JWT Bearer grant and private_key_jwt

# How servers word their refusal of an assertion, first match wins. Authlib/joserfc say "The
# token is expired" and "Invalid claim: 'aud'"; Keycloak, Okta and Entra ID use similar words.
_ASSERTION_PROBLEMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("algorithm", re.compile(r"algorithm|\balg\b", re.I)),
    ("replay", re.compile(r"\bjti\b|jwt id|replay|used before|already used", re.I)),
    ("expired", re.compile(r"expir|\bexp\b|\bnbf\b|\biat\b|not yet valid|too old|clock", re.I)),
    ("audience", re.compile(r"\baud\b|audience", re.I)),
    ("issuer", re.compile(r"\biss\b|\bsub\b|issuer|subject|does not exist", re.I)),
    ("signature", re.compile(r"signature|\bkey\b|\bkid\b|jwk|verif|invalid jwt", re.I)),
)


def assertion_problem(message: str) -> str:
    """What the server's words say was wrong with the assertion: one of the codes above or ""."""
    for code, pattern in _ASSERTION_PROBLEMS:
        if pattern.search(message):
            return code
    return ""


def _assertion_hint(result: TokenResult) -> str | None:
    """Advice when the server refused an assertion the console signed; None otherwise."""
    facts = result.facts
    client_assertion = facts.client_authentication == Auth.PRIVATE_KEY_JWT
    grant_assertion = facts.grant_type == Grant.JWT_BEARER
    if facts.client_rejected and client_assertion:
        which = "client assertion (private_key_jwt)"
    elif result.outcome == Outcome.INVALID_GRANT and grant_assertion:
        which = "assertion of the JWT Bearer Grant"
    else:
        return None
    key, alg, kid = label("jwt_private_key"), label("jwt_algorithm"), label("jwt_key_id")
    # Only the server's own words after "answered ...:" are read, not our field names.
    said = result.message.partition(":")[2] if ":" in result.message else result.message
    problem = assertion_problem(said)
    if problem == "expired":
        return (
            f"The server says the {which} is expired or not yet valid. Check that this "
            "server's clock and the provider's agree (NTP), and that "
            f"{label('jwt_ttl_seconds')} is within what the provider accepts (often 5 minutes "
            "or less)."
        )
    if problem == "audience":
        return (
            f"The server did not accept the audience (aud) of the {which}. Set "
            f"{label('jwt_audience')} to the value the provider documents (its token URL, or "
            f"its issuer URL); blank sends the {label('oauth2_token_url')}."
        )
    if problem == "algorithm":
        return (
            f"The server does not accept the {label('jwt_algorithm')} of the {which}: choose "
            "one the provider allows (RS256 is the most widely accepted) and a key of that type."
        )
    if problem == "replay":
        return (
            f"The server refused the {which} as already used (jti). Each test signs a new one: "
            "if this repeats, another system may be sending the same assertions."
        )
    if problem == "issuer" and not client_assertion:
        return (
            f"The server does not know the issuer or subject of the assertion: check "
            f"{label('jwt_issuer')} (usually the client id or service account) and "
            f"{label('jwt_subject')}."
        )
    if problem == "issuer":
        return (
            f"The server does not know this client: check {label('oauth2_client_id')}; a "
            "client assertion states it as both issuer and subject."
        )
    return (
        f"The server could not verify the {which}: most often it has another public key "
        f"registered for this client. Register the public key (or JWK) shown under {key}, "
        f"check that {alg} is one the provider allows, and that {kid} matches the registered "
        "key's kid."
    )


def jwt_config_hint(code: str) -> str:
    """Advice for a key or claim set that cannot make a JWT (assertions.SigningError codes)."""
    key = label("jwt_private_key")
    if code in {"key_unreadable", "key_encrypted", "key_type", "key_missing"}:
        return f"Paste an unencrypted RSA or EC P-256 private key in PEM form into {key}."
    if code == "algorithm_mismatch":
        return (
            f"Choose the {label('jwt_algorithm')} that matches the key: RS256 or PS256 for "
            "RSA, ES256 for EC P-256."
        )
    if code.startswith("json"):
        return (
            f"Write {label('jwt_extra_claims')} and {label('jwt_extra_headers')} as JSON "
            'objects, e.g. {"typ": "JWT"}, or leave them blank.'
        )
    return _next_step(Outcome.CONFIG_ERROR)


def token_hint(result: TokenResult, *, secrets: Sequence[str] = ()) -> str:
    """What to do next after a token request; "" when nothing needs doing."""
    hint = None if result.ok else _assertion_hint(result)
    if hint is None:
        hint = _method_hint(result)
    if hint is None:
        if result.ok:
            hint = ""
        elif result.facts.client_rejected:
            hint = _client_rejected_hint(result)
        else:
            hint = _outcome_hint(result)
    return redact_text(hint, secrets=secrets)


# --------------------------------------------------------------------------------------------
# The API request


def _api_url_fields() -> str:
    return f"{label('base_url')} / {label('test_request_path')}"


def _api_http_error(facts: Facts) -> str:
    if facts.status in (401, 403):
        return (
            f"The API refused the credentials (HTTP {facts.status}): check "
            f"{label('basic_username')} / {label('basic_password')}, {label('api_key')}, "
            f"{label('bearer_token')} or the OAuth2 token's scope, and "
            f"{label('api_key_header_auth_key')} / {label('api_key_header_auth_value_pattern')}."
        )
    return _http_error_hint(facts.status, f"{label('base_url')} and {label('test_request_path')}")


def _jwt_api_http_error(facts: Facts) -> str:
    if facts.status in (401, 403):
        return (
            f"The API refused the signed JWT (HTTP {facts.status}). Check that the API has the "
            f"public key shown under {label('jwt_private_key')} registered, that "
            f"{label('jwt_issuer')}, {label('jwt_subject')} and {label('jwt_audience')} (blank: "
            f"the {label('base_url')}) are what it expects, and that this server's clock is right."
        )
    return _http_error_hint(facts.status, f"{label('base_url')} and {label('test_request_path')}")


def _api_redirect(facts: Facts) -> str:
    host = facts.redirect_host
    return f"Use the final URL{(' on ' + host) if host else ''} in {_api_url_fields()}."


API_HINTS: dict[str, Callable[[Facts], str]] = {
    Outcome.SUCCESS: lambda facts: "",
    Outcome.REDIRECT_REFUSED: _api_redirect,
    Outcome.HTTP_ERROR: _api_http_error,
    Outcome.TIMEOUT: lambda facts: (
        "The API did not answer in time: it may be slow, or a firewall may be dropping the "
        f"traffic. Check {_api_url_fields()}."
    ),
    Outcome.CONNECTION_ERROR: lambda facts: f"Check the host and port in {_api_url_fields()}.",
    Outcome.DNS_ERROR: lambda facts: (
        f"Check the host name in {_api_url_fields()}: it does not resolve from this server."
    ),
}


def api_hint(result: ApiResult, *, signed_jwt: bool = False) -> str:
    """What to do next after the API request; "" when it worked.

    `signed_jwt`: the credential was a JWT the console signed (Jwt Auth).
    """
    if signed_jwt and result.outcome == Outcome.HTTP_ERROR and result.facts.status in (401, 403):
        return _jwt_api_http_error(result.facts)
    explain = API_HINTS.get(result.outcome)
    return explain(result.facts) if explain else _next_step(result.outcome)


__all__ = [
    "API_HINTS",
    "FIELD_LABELS",
    "OUTCOME_TEXTS",
    "TOKEN_HINTS",
    "ConsoleOutcome",
    "OutcomeText",
    "api_hint",
    "assertion_problem",
    "client_auth_name",
    "jwt_config_hint",
    "label",
    "outcome_text",
    "scope_label",
    "token_hint",
]
