"""What to do next after a token request: HTTP errors by status, each outcome, the client
authentication that worked, and refused signed assertions (RFC 7523)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from connectors.explain.outcomes import (
    Advice,
    Fix,
    FixField,
    _advice_from_next_step,
    label,
    scope_label,
)
from connectors.models import (
    ResponseType,
    TokenRequestParam,
)
from connectors.oauth_http import (
    CLIENT_AUTH_LABELS,
    ClientAuthentication,
    Facts,
    Grant,
    Outcome,
    TokenResult,
)
from connectors.oauth_http.redaction import MASK
from connectors.oauth_http.response_text import size_text

Auth = ClientAuthentication


# --------------------------------------------------------------------------------------------
# HTTP errors, by status


def _http_error_advice(status: int | None, url_field: str) -> Advice:
    status = status or 0
    if status in (404, 410):
        return Advice(
            why=f"The server answered HTTP {status}: this path does not exist on that server.",
            change=(
                f"correct the path in {url_field} (compare it with the provider's documentation)"
            ),
        )
    if status == 405:
        return Advice(
            why="The server answered HTTP 405: the path exists but does not accept this method.",
            change=f"check that {url_field} names the right endpoint",
        )
    if status in (401, 403):
        return Advice(
            why="The server refused the credentials.",
            change=(
                "check the credential fields and, for OAuth2, "
                f"{label('oauth2_client_authentication')}"
            ),
        )
    if status == 429:
        return Advice(why="The server is rate limiting: wait a minute and try again.")
    if status >= 500:
        return Advice(
            why="The server failed: try again later, or contact the provider if it persists."
        )
    return Advice(
        why=f"The server answered HTTP {status}." if status else "",
        change=f"check the host and path in {url_field}",
    )


# --------------------------------------------------------------------------------------------
# The token request


def _invalid_grant(facts: Facts) -> Advice:
    if facts.grant_type == Grant.REFRESH_TOKEN:
        return Advice(
            why=(
                "The client itself was accepted, but the refresh token is expired, revoked or was "
                "issued to another client."
            ),
            change=f"get a new refresh token and paste it into {label('oauth2_refresh_token')}",
        )
    if facts.grant_type == Grant.PASSWORD:
        return Advice(
            why="The client itself was accepted.",
            change=(
                f"check {label('oauth2_username')} and {label('oauth2_password')} (and that the "
                "account is not locked or protected by MFA)"
            ),
        )
    return Advice(
        why="The client itself was accepted, but the server refused the grant.",
        change=(
            f"check {label('oauth2_grant_type')} and {label('oauth2_request_custom_grant_type')}"
        ),
    )


def _unauthorized_client(facts: Facts) -> Advice:
    return Advice(
        why=(
            f"The application is not allowed the {facts.grant_type_sent!r} grant type on the "
            "server: the provider can enable it for this client."
        ),
        change=(
            f"choose the grant type the client is registered for in "
            f"{label('oauth2_grant_type')} instead"
        ),
    )


def _unsupported_grant_type(facts: Facts) -> Advice:
    return Advice(
        why=f"The server does not support grant_type {facts.grant_type_sent!r}.",
        change=(
            f"check {label('oauth2_grant_type')}, or set "
            f"{label('oauth2_request_custom_grant_type')} to the value the server documents"
        ),
    )


def _invalid_scope(facts: Facts) -> Advice:
    current = f" (now {facts.scope!r})" if facts.scope else ""
    return Advice(
        change=(
            f"check {scope_label(facts.grant_type)}{current}: use scopes this client may "
            "request, separated by spaces, or leave it blank for the default"
        )
    )


def _no_token(facts: Facts) -> Advice:
    keys = ", ".join(facts.keys_found[:20]) or "none"
    suggested = facts.suggested_key
    setting = label("oauth2_access_token_key")
    if suggested:
        return Advice(
            why=f"The token seems to be at {suggested!r}.",
            change=f"set {setting} to {suggested!r}",
            fix=Fix(FixField.ACCESS_TOKEN_KEY, suggested),
        )
    return Advice(change=f"set {setting} to one of the keys found: {keys}")


def _token_timeout(facts: Facts) -> Advice:
    return Advice(
        why=(
            f"The server did not answer within {facts.timeout:g} s: it may be slow, or a "
            "firewall may be dropping the traffic."
        ),
        change=f"check {label('oauth2_token_url')} and that this server can reach it",
    )


def _usable_location(location: str) -> bool:
    """A redirect target that can be stored as the token URL as it is shown."""
    return location.startswith(("https://", "http://")) and MASK not in location


def _token_redirect(facts: Facts) -> Advice:
    setting = label("oauth2_token_url")
    location = facts.redirect_location
    if location:
        return Advice(
            why=f"The server redirects to {location}.",
            change=f"set {setting} to that address if it is the provider's token endpoint",
            fix=Fix(FixField.TOKEN_URL, location) if _usable_location(location) else None,
        )
    where = f" on {facts.redirect_host}" if facts.redirect_host else ""
    return Advice(
        change=(
            f"set {setting} to the final URL{where}: open the token URL in a browser or check "
            "the provider's documentation for the exact token endpoint"
        )
    )


def _web_page() -> Advice:
    return Advice(
        why=(
            "The token URL returned a web page, not a token endpoint (often a login page, or the "
            "authorize URL instead of the token URL)."
        ),
        change=f"check {label('oauth2_token_url')}",
    )


def _token_invalid_response(facts: Facts) -> Advice:
    if facts.too_large:
        return Advice(
            why=(
                "It points at something that is not a token endpoint (the response is larger "
                f"than {size_text(facts.max_body_bytes)})."
            ),
            change=f"check {label('oauth2_token_url')}",
        )
    if facts.html_page:
        return _web_page()
    if facts.response_type == ResponseType.JSON:
        return Advice(
            change=(
                f"if the server sends form-encoded responses, set {label('oauth2_response_type')} "
                f"to {ResponseType.FORM.label}; otherwise check {label('oauth2_token_url')}"
            )
        )
    return _advice_from_next_step(Outcome.INVALID_RESPONSE)


def _token_http_error(facts: Facts) -> Advice:
    # A missing path is named as such, even when the server's 404 is a web page.
    if facts.status in (404, 405, 410) or not facts.html_page:
        return _http_error_advice(facts.status, label("oauth2_token_url"))
    return _web_page()


def _invalid_request(facts: Facts) -> Advice:
    return Advice(
        why="Read the server's description above.",
        change=(
            f"check {label('oauth2_token_url')}, {TokenRequestParam.Kind.DATA.label} and "
            f"{TokenRequestParam.Kind.HEADER.label} against the provider's documentation"
        ),
    )


def _token_connection_error(facts: Facts) -> Advice:
    return Advice(
        why="Check that the service is running and reachable from this server.",
        change=f"check the host and port in {label('oauth2_token_url')}",
    )


def _token_dns_error(facts: Facts) -> Advice:
    return Advice(
        why="The host name does not resolve from this server.",
        change=f"check the host name in {label('oauth2_token_url')}",
    )


# The advice for a token request that ended with an outcome (the client was not rejected).
TOKEN_HINTS: dict[str, Callable[[Facts], Advice]] = {
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


def _outcome_advice(result: TokenResult) -> Advice:
    explain = TOKEN_HINTS.get(result.outcome)
    return explain(result.facts) if explain else _advice_from_next_step(result.outcome)


def _client_rejected_advice(result: TokenResult) -> Advice:
    """The client credentials were refused: what to check, for the method(s) tried."""
    mode = result.facts.client_authentication
    client_id, client_secret = label("oauth2_client_id"), label("oauth2_client_secret")
    setting = label("oauth2_client_authentication")
    if result.attempts[0].client_authentication == Auth.NONE:
        return Advice(
            why="The server wants client authentication.",
            change=f"fill in {client_id} and {client_secret}",
        )
    if mode == Auth.AUTO:
        return Advice(
            why=(
                "The server accepted the client credentials neither in the Basic Auth header nor "
                "in the request body."
            ),
            change=(
                f"check {client_id} and {client_secret} (copy them again from the provider, "
                "without spaces around them)"
            ),
        )
    if mode == Auth.BASIC_CLIENT:
        return Advice(
            change=(
                f"check {client_id} and {client_secret}. If they are right, the server may want "
                f"them in the request body: set {setting} to "
                f"{CLIENT_AUTH_LABELS[Auth.REQUEST_BODY]} (or leave it on automatic to try both)"
            )
        )
    if mode == Auth.BASIC_CLIENT_UNENCODED:
        return Advice(
            change=(
                f"check {client_id} and {client_secret}. If they are right, the server may decode "
                f"the Basic credentials as RFC 6749 §2.3.1 requires: set {setting} to "
                f"{CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT]} (it tries the unencoded form too), or "
                f"to {CLIENT_AUTH_LABELS[Auth.REQUEST_BODY]}"
            )
        )
    if mode == Auth.REQUEST_BODY:
        return Advice(
            change=(
                f"check {client_id} and {client_secret}. If they are right, the server may want "
                f"them in a Basic Auth header: set {setting} to "
                f"{CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT]} (or leave it on automatic to try both)"
            )
        )
    return Advice(
        why=(
            "The server did not accept the Basic Auth header built from "
            f"{label('oauth2_username')} and {label('oauth2_password')}. Most servers want the "
            "client id and secret there instead."
        ),
        change=f"set {setting} to {CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT]}",
    )


def _pin(method: str) -> Fix:
    return Fix(FixField.CLIENT_AUTHENTICATION, method)


def _body_found_advice(result: TokenResult) -> Advice:
    """Automatic mode found the request body: pin it, plus whatever else went wrong."""
    pin = Advice(
        why="This server wants the client credentials in the request body.",
        change=(
            f"set {label('oauth2_client_authentication')} to "
            f"{CLIENT_AUTH_LABELS[Auth.REQUEST_BODY]}"
        ),
        fix=_pin(Auth.REQUEST_BODY) if result.ok else None,
    )
    if result.ok:
        return pin
    rest = _outcome_advice(result)
    return replace(
        rest,
        why=" ".join(part for part in (pin.why, rest.why) if part),
        change=f"{pin.change}; then {rest.change}" if rest.change else pin.change,
    )


def _method_advice(result: TokenResult) -> Advice | None:
    """Advice about the client authentication that worked, when the test found it."""
    facts, used = result.facts, result.client_authentication_used
    auto = facts.client_authentication == Auth.AUTO
    tried = [attempt.client_authentication for attempt in result.attempts]
    setting = label("oauth2_client_authentication")
    if tried[-1] == Auth.BASIC_CLIENT_UNENCODED and used and len(tried) > 1:
        return Advice(
            why=(
                "The server does not decode the Basic credentials as RFC 6749 §2.3.1 requires, "
                "so credentials with characters like + / : % spaces or accents only work "
                "unencoded. Tell the provider about the bug."
            ),
            change=(
                f"set {setting} to {CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT_UNENCODED]} to skip the "
                "refused attempts"
            ),
            fix=_pin(Auth.BASIC_CLIENT_UNENCODED) if result.ok else None,
        )
    if auto and used == Auth.REQUEST_BODY and Auth.BASIC_CLIENT in tried:
        return _body_found_advice(result)
    if auto and used == Auth.BASIC_CLIENT and result.ok:
        return Advice(
            why="The Basic Auth header worked.",
            change=f"set {setting} to {CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT]} to skip the fallback",
            fix=_pin(Auth.BASIC_CLIENT),
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
    return _advice_from_next_step(Outcome.CONFIG_ERROR).why


def token_advice(result: TokenResult, *, secrets: Sequence[str] = ()) -> Advice:
    """What to do next after a token request, for either reader; empty when nothing needs doing."""
    assertion = None if result.ok else _assertion_hint(result)
    advice = Advice(why=assertion) if assertion is not None else _method_advice(result)
    if advice is None:
        if result.ok:
            advice = Advice()
        elif result.facts.client_rejected:
            advice = _client_rejected_advice(result)
        else:
            advice = _outcome_advice(result)
    return advice.redacted(secrets)


def token_hint(result: TokenResult, *, secrets: Sequence[str] = ()) -> str:
    """What to do next after a token request, as an editor reads it; "" when nothing needs doing."""
    return token_advice(result, secrets=secrets).for_editor()
