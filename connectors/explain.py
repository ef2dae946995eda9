"""Explanations: an outcome plus its facts, in words, naming the form's own fields.

The HTTP core (`connectors.oauth_http`) says what happened: an `Outcome` and the facts behind it.
This module says what it means and what to do next, through tables keyed by outcome and by Auth
Config. Field names come from the model's verbose names, the one place the form's labels are
defined, so renaming a field renames it in every hint.

Advice has two readers: someone who may edit the connector is told what to change (and gets a
one-click `Fix` where the test found the value), someone who may only test is told what to ask
a Connector admin to change. `Advice.for_editor()` is also the text stored with the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cache

from django.db.models import Field
from django.utils.text import capfirst

from connectors.models import (
    SCOPE_FIELD_BY_GRANT,
    AuthConfig,
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
from connectors.oauth_http.redaction import MASK, redact_text
from connectors.oauth_http.response_text import size_text

Auth = ClientAuthentication


class ConsoleOutcome(StrEnum):
    """Outcomes the console records around the core's: its own fault, and refusals."""

    INTERNAL_ERROR = "internal_error"
    RATE_LIMITED = "rate_limited"
    # Authorization Code Grant: the stored refresh token was refused (invalid_grant), or there
    # is none yet. Only an admin's "Connect" helps, so they are outcomes of their own.
    RECONNECT_NEEDED = "reconnect_needed"
    NOT_CONNECTED = "not_connected"


RECONNECT_HINT = (
    "Reconnect needed: the authorization server no longer accepts the stored refresh token "
    "(it expired or was revoked, or the consent was withdrawn). An admin presses Connect on "
    "the connector's page and signs in again."
)
NOT_CONNECTED_HINT = (
    "An admin presses Connect on the connector's page and signs in at the authorization "
    "server; the connection test then uses the refresh token it obtains."
)


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
    rows: tuple[tuple[str, str, str, str], ...] = (
        (
            # Worded for every Auth Config: what a pass proves for each is in RESULT_WORDING.
            Outcome.SUCCESS,
            "Succeeded",
            "The test's requests worked.",
            "Nothing to fix.",
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
            "The server answered with an HTTP error status (4xx or 5xx) instead of an answer the "
            "test could use.",
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
            "send the request, and any credentials in it, to another address.",
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
    rows += (
        (
            ConsoleOutcome.RECONNECT_NEEDED,
            "Reconnect needed",
            "The authorization server refused the stored refresh token of this Authorization "
            "Code Grant connection (invalid_grant).",
            RECONNECT_HINT,
        ),
        (
            ConsoleOutcome.NOT_CONNECTED,
            "Not connected",
            "This Authorization Code Grant connector has no refresh token yet: nobody has "
            "connected it.",
            NOT_CONNECTED_HINT,
        ),
    )
    return {str(row[0]): OutcomeText(str(row[0]), *row[1:]) for row in rows}


OUTCOME_TEXTS: dict[str, OutcomeText] = _outcome_texts()


def outcome_text(code: str) -> OutcomeText | None:
    return OUTCOME_TEXTS.get(code)


# Outcomes of records that are not a test's result: the console's own, refusals, sign-ins and
# notices. With the test outcomes above they make the one table every badge reads.
OTHER_OUTCOME_LABELS: dict[str, str] = {
    ConsoleOutcome.INTERNAL_ERROR: "Internal error",
    ConsoleOutcome.RATE_LIMITED: "Rate limited",
    "connector_disabled": "Connector disabled",
    "deleted": "Connector deleted",
    "permission_denied": "Permission denied",
    "ok": "OK",
    "login_failed": "Sign-in failed",
    "locked_out": "Locked out",
    "delivered": "Delivered",
    "failed": "Failed",
}

OUTCOME_LABELS: dict[str, str] = {
    **{code: text.label for code, text in OUTCOME_TEXTS.items()},
    **{str(code): text for code, text in OTHER_OUTCOME_LABELS.items()},
}


def outcome_label(code: str) -> str:
    """The readable name of an outcome; never just the code (an unknown one is spelled out)."""
    code = str(code or "")
    if code in OUTCOME_LABELS:
        return OUTCOME_LABELS[code]
    return capfirst(code.replace("_", " ").strip()) or "No outcome"


# --------------------------------------------------------------------------------------------
# What a result means for each Auth Config


@dataclass(frozen=True, slots=True)
class ResultWording:
    """How a result speaks of one Auth Config: what a pass proves, what a failure concerns."""

    passed: str
    failed: str
    after_pass: str  # the next step after a pass of the saved connector
    failed_api: str = ""  # OAuth2: the token came, the API request made with it failed


def _result_wording() -> dict[str, ResultWording]:
    api = "the API request"
    return {
        AuthConfig.NONE: ResultWording(
            passed="The API answered the test request; this connector sends no credentials.",
            failed="The API request, sent without credentials, failed.",
            after_pass="Nothing to fix.",
        ),
        AuthConfig.BASIC: ResultWording(
            passed=(
                f"The API accepted the Basic Auth {label('basic_username')} and "
                f"{label('basic_password')}."
            ),
            failed=(
                f"{capfirst(api)} with the Basic Auth {label('basic_username')} and "
                f"{label('basic_password')} failed."
            ),
            after_pass="Nothing to fix.",
        ),
        AuthConfig.API_KEY: ResultWording(
            passed=f"The API accepted the {label('api_key')}.",
            failed=f"{capfirst(api)} with the {label('api_key')} failed.",
            after_pass="Nothing to fix.",
        ),
        AuthConfig.BEARER: ResultWording(
            passed=f"The API accepted the {label('bearer_token')}.",
            failed=f"{capfirst(api)} with the {label('bearer_token')} failed.",
            after_pass="Nothing to fix.",
        ),
        AuthConfig.JWT_AUTH: ResultWording(
            passed=f"The API accepted the JWT signed with the {label('jwt_private_key')}.",
            failed=(
                f"{capfirst(api)} with the JWT signed with the {label('jwt_private_key')} failed."
            ),
            after_pass="Nothing to fix. A new JWT is signed for every request.",
        ),
        AuthConfig.JWKS_AUTH: ResultWording(
            passed="The API accepted the JWT signed with the console's current JWKS key.",
            failed=f"{capfirst(api)} with the JWT signed with the console's JWKS key failed.",
            after_pass=(
                "Nothing to fix. A new JWT is signed for every request; keys rotate on the "
                "schedule set under Signing keys."
            ),
        ),
        AuthConfig.OAUTH2: ResultWording(
            passed="The server accepted the client and the grant and issued an access token.",
            failed="The token request failed: no access token was issued.",
            after_pass="Nothing to fix. A new token is requested whenever one expires.",
            failed_api="The token request worked, but the API request made with its token failed.",
        ),
    }


RESULT_WORDING: dict[str, ResultWording] = _result_wording()


@dataclass(frozen=True, slots=True)
class ResultText:
    """The words of one result panel: a headline, one summary sentence, the next step."""

    headline: str
    summary: str
    explanation: str
    next_step: str
    announcement: str  # the one sentence a screen reader hears when the result arrives


# Outcomes whose message already says what the general explanation would repeat.
_SELF_EXPLAINING = frozenset({Outcome.REDIRECT_REFUSED, Outcome.BLOCKED})


def result_text(
    *,
    outcome: str,
    ok: bool,
    auth_config: str,
    unsaved: bool,
    hint: str = "",
    api_step_failed: bool = False,
) -> ResultText:
    """What a result panel says, for this Auth Config.

    `unsaved` for a test of form values (the only case told to save); `api_step_failed` when
    the last step, the API request, is the one that failed.
    """
    wording = RESULT_WORDING.get(auth_config, RESULT_WORDING[AuthConfig.OAUTH2])
    text = OUTCOME_TEXTS.get(outcome)
    name = outcome_label(outcome)
    if ok:
        summary = wording.passed
        next_step = hint or wording.after_pass
        if unsaved:  # only form values need saving; a saved connector is never told to
            next_step = f"{next_step} Save the connector to keep these values."
        explanation = ""
        headline = "Connection works"
    else:
        summary = wording.failed_api if api_step_failed and wording.failed_api else wording.failed
        next_step = hint or (text.next_step if text else "")
        explanation = text.explanation if text and outcome not in _SELF_EXPLAINING else ""
        headline = "Connection failed"
    # One sentence: the details are in the panel, for whoever moves on to read them.
    announcement = (
        f"{headline}: {summary[:1].lower()}{summary[1:]}" if ok else f"{headline}: {name}."
    )
    return ResultText(headline, summary, explanation, next_step, announcement)


# --------------------------------------------------------------------------------------------
# Advice: what to do next, for an editor and for someone who may only test


class FixField(StrEnum):
    """The settings a test can find the right value for, so that one click sets it."""

    ACCESS_TOKEN_KEY = "oauth2_access_token_key"
    TOKEN_URL = "oauth2_token_url"
    CLIENT_AUTHENTICATION = "oauth2_client_authentication"


@dataclass(frozen=True, slots=True)
class Fix:
    """One setting and the value the test found for it."""

    field: str  # a FixField
    value: str

    @property
    def label(self) -> str:
        return label(self.field)

    @property
    def shown_value(self) -> str:
        if self.field == FixField.CLIENT_AUTHENTICATION:
            return client_auth_name(self.value)
        return self.value

    @property
    def action(self) -> str:
        """The change, as a button says it: Set Json Access Token Key to “data.token”."""
        return f"Set {self.label} to “{self.shown_value}”"


@dataclass(frozen=True, slots=True)
class Advice:
    """The next step, in two parts, so each reader gets the part they can act on.

    `why` is what anyone can read or do (wait, call the provider); `change` is the change to the
    connector's configuration, an imperative clause without its full stop ("set X to Y"). An
    editor reads "Set X to Y."; someone who may only test reads "Ask a Connector admin to set X
    to Y." `fix` is the change as one click, when the test found the value.
    """

    why: str = ""
    change: str = ""
    fix: Fix | None = None
    note: str = ""

    def _join(self, change: str) -> str:
        return " ".join(part for part in (self.why, change, self.note) if part)

    def for_editor(self) -> str:
        return self._join(f"{capfirst(self.change)}." if self.change else "")

    def for_operator(self) -> str:
        return self._join(f"Ask a Connector admin to {self.change}." if self.change else "")

    def text_for(self, *, can_edit: bool) -> str:
        return self.for_editor() if can_edit else self.for_operator()

    def redacted(self, secrets: Sequence[str]) -> Advice:
        fix = self.fix
        if fix is not None and redact_text(fix.value, secrets=secrets) != fix.value:
            fix = None  # a value that carries a secret is never offered back
        return replace(
            self,
            why=redact_text(self.why, secrets=secrets),
            change=redact_text(self.change, secrets=secrets),
            note=redact_text(self.note, secrets=secrets),
            fix=fix,
        )

    def __str__(self) -> str:
        return self.for_editor()


def _advice_from_next_step(outcome: str) -> Advice:
    text = OUTCOME_TEXTS.get(outcome)
    return Advice(why=text.next_step) if text else Advice()


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


# --------------------------------------------------------------------------------------------
# The API request


def _api_url_fields() -> str:
    return f"{label('base_url')} / {label('test_request_path')}"


# The Auth Configs whose API credential is a JWT the console signs.
SIGNED_JWT_AUTH_CONFIGS = frozenset({AuthConfig.JWT_AUTH})


# The credential fields the API request uses, by Auth Config: a 401 names only these.
def _api_credentials(auth_config: str) -> str:
    fields: dict[str, str] = {
        AuthConfig.BASIC: f"{label('basic_username')} and {label('basic_password')}",
        AuthConfig.API_KEY: (
            f"{label('api_key')}, {label('api_key_header_auth_key')} and "
            f"{label('api_key_header_auth_value_pattern')} (or {label('api_key_param_name')})"
        ),
        AuthConfig.BEARER: label("bearer_token"),
        AuthConfig.OAUTH2: (
            f"the token's scope, {label('oauth2_header_auth_key')} and "
            f"{label('oauth2_header_auth_value_pattern')}"
        ),
    }
    return fields.get(auth_config, "")


def _api_http_error(facts: Facts, auth_config: str) -> Advice:
    if facts.status in (401, 403) and auth_config in SIGNED_JWT_AUTH_CONFIGS:
        return _jwt_api_http_error(facts)
    if facts.status in (401, 403):
        credentials = _api_credentials(auth_config)
        if not credentials:
            return Advice(
                why=(
                    f"The API wants credentials (HTTP {facts.status}), and this connector sends "
                    "none."
                ),
                change=f"choose the Auth Config the API expects in {label('auth_config')}",
            )
        return Advice(
            why=f"The API refused the credentials (HTTP {facts.status}).",
            change=f"check {credentials}",
        )
    return _http_error_advice(facts.status, f"{label('base_url')} and {label('test_request_path')}")


def _jwt_api_http_error(facts: Facts) -> Advice:
    """A 401/403 to a JWT the console signed (Jwt Auth, Jwks Auth): the key or the claims."""
    return Advice(
        why=f"The API refused the signed JWT (HTTP {facts.status}).",
        change=(
            f"check that the API has the public key shown under {label('jwt_private_key')} "
            f"registered, that {label('jwt_issuer')}, {label('jwt_subject')} and "
            f"{label('jwt_audience')} (blank: the {label('base_url')}) are what it expects, and "
            "that this server's clock is right"
        ),
    )


def _api_redirect(facts: Facts, auth_config: str) -> Advice:
    if facts.redirect_location:
        return Advice(
            why=f"The API redirects to {facts.redirect_location}.",
            change=f"use that address in {_api_url_fields()} if it is the API's",
        )
    host = facts.redirect_host
    return Advice(
        change=f"use the final URL{(' on ' + host) if host else ''} in {_api_url_fields()}"
    )


API_HINTS: dict[str, Callable[[Facts, str], Advice]] = {
    Outcome.SUCCESS: lambda facts, auth_config: Advice(),
    Outcome.REDIRECT_REFUSED: _api_redirect,
    Outcome.HTTP_ERROR: _api_http_error,
    Outcome.TIMEOUT: lambda facts, auth_config: Advice(
        why=(
            "The API did not answer in time: it may be slow, or a firewall may be dropping the "
            "traffic."
        ),
        change=f"check {_api_url_fields()}",
    ),
    Outcome.CONNECTION_ERROR: lambda facts, auth_config: Advice(
        change=f"check the host and port in {_api_url_fields()}"
    ),
    Outcome.DNS_ERROR: lambda facts, auth_config: Advice(
        why="The host name does not resolve from this server.",
        change=f"check the host name in {_api_url_fields()}",
    ),
}


def api_advice(result: ApiResult, *, auth_config: str = "") -> Advice:
    """What to do next after the API request, for either reader; empty when it worked."""
    explain = API_HINTS.get(result.outcome)
    if explain is None:
        return _advice_from_next_step(result.outcome)
    return explain(result.facts, auth_config)


def api_hint(result: ApiResult, *, auth_config: str = "") -> str:
    """What to do next after the API request, as an editor reads it; "" when it worked."""
    return api_advice(result, auth_config=auth_config).for_editor()


# --------------------------------------------------------------------------------------------
# A secret that is missing, not wrong

# The secrets a token request of each grant type can send.
TOKEN_SECRETS: dict[str, tuple[str, ...]] = {
    Grant.PASSWORD: ("oauth2_client_secret", "oauth2_password"),
    Grant.CLIENT_CREDENTIALS: ("oauth2_client_secret",),
    Grant.REFRESH_TOKEN: ("oauth2_client_secret", "oauth2_refresh_token"),
}


def secret_missing_advice(result: TokenResult, *, empty: Sequence[str]) -> Advice | None:
    """The advice for refused client credentials when a secret was not set at all; else None.

    `empty` names the connector's secret fields that hold no value. A connector saved without
    its Client Secret (it is optional for a public client) is refused as if the secret were
    wrong; telling the user to "check" a secret that was never entered sends them the wrong way.
    """
    refused = result.facts.client_rejected or result.outcome == Outcome.INVALID_CLIENT
    if result.ok or not refused:
        return None
    # private_key_jwt authenticates with a signed assertion: no Client Secret is sent.
    signs = result.facts.client_authentication == Auth.PRIVATE_KEY_JWT
    missing = [
        name
        for name in TOKEN_SECRETS.get(str(result.facts.grant_type), ())
        if name in empty and not (signs and name == "oauth2_client_secret")
    ]
    if not missing:
        return None
    names = " and ".join(label(name) for name in missing)
    one = len(missing) == 1
    return Advice(
        why=(
            f"{names} {'is' if one else 'are'} not set, so none was sent: the server refused "
            f"the request without {'it' if one else 'them'} (the value is missing, not wrong)."
        ),
        change=f"enter {names}",
    )


def secret_missing_hint(result: TokenResult, *, empty: Sequence[str]) -> str:
    """`secret_missing_advice` as an editor reads it; "" when no secret is missing."""
    advice = secret_missing_advice(result, empty=empty)
    return advice.for_editor() if advice is not None else ""


__all__ = [
    "API_HINTS",
    "FIELD_LABELS",
    "OUTCOME_LABELS",
    "OUTCOME_TEXTS",
    "RESULT_WORDING",
    "TOKEN_HINTS",
    "Advice",
    "NOT_CONNECTED_HINT",
    "RECONNECT_HINT",
    "ConsoleOutcome",
    "Fix",
    "FixField",
    "OutcomeText",
    "ResultText",
    "ResultWording",
    "api_advice",
    "api_hint",
    "assertion_problem",
    "client_auth_name",
    "jwt_config_hint",
    "label",
    "outcome_label",
    "outcome_text",
    "result_text",
    "scope_label",
    "secret_missing_advice",
    "secret_missing_hint",
    "token_advice",
    "token_hint",
]
