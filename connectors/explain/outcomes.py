"""What each outcome means, and what a result means for each Auth Config; the labels and
the Advice type the token and API steps build on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cache

from django.db.models import Field
from django.utils.text import capfirst

from connectors.models import (
    SCOPE_FIELD_BY_GRANT,
    AuthConfig,
    Connector,
    TokenRequestParam,
)
from connectors.oauth_http import (
    CLIENT_AUTH_LABELS,
    ClientAuthentication,
    FieldLabels,
    Outcome,
)
from connectors.oauth_http.redaction import redact_text

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
