"""The words the HTTP core and the console share: outcomes, client authentication, grants.

Each is named once here. The Django side derives its choices from these enums and turns an
outcome plus its facts into text (`connectors.explain`); the core only picks the word.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How one exchange (or the whole connection test) ended."""

    SUCCESS = "success"
    INVALID_CLIENT = "invalid_client"
    INVALID_GRANT = "invalid_grant"
    UNAUTHORIZED_CLIENT = "unauthorized_client"
    UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
    INVALID_SCOPE = "invalid_scope"
    INVALID_REQUEST = "invalid_request"
    HTTP_ERROR = "http_error"
    INVALID_RESPONSE = "invalid_response"
    NO_TOKEN = "no_token"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    DNS_ERROR = "dns_error"
    TLS_ERROR = "tls_error"
    REDIRECT_REFUSED = "redirect_refused"
    BLOCKED = "blocked"
    CONFIG_ERROR = "config_error"


# The server-side OAuth error codes (RFC 6749 §5.2) that have an outcome of their own.
OAUTH_ERROR_OUTCOMES = frozenset(
    {
        Outcome.INVALID_CLIENT,
        Outcome.INVALID_GRANT,
        Outcome.UNAUTHORIZED_CLIENT,
        Outcome.UNSUPPORTED_GRANT_TYPE,
        Outcome.INVALID_SCOPE,
        Outcome.INVALID_REQUEST,
    }
)
# An answer with one of these proves the client authenticated; the problem lies elsewhere.
CLIENT_ACCEPTED_ERRORS = frozenset(
    {
        Outcome.INVALID_GRANT,
        Outcome.INVALID_SCOPE,
        Outcome.UNSUPPORTED_GRANT_TYPE,
        Outcome.UNAUTHORIZED_CLIENT,
    }
)


class ClientAuthentication(StrEnum):
    """How a token request authenticates the client (RFC 6749 §2.3).

    AUTO is the configuration "try Basic, then the body"; NONE (the same empty value) is the
    attempt that sends no client credentials at all, when no Client ID is configured.
    BASIC_CLIENT sends the client id and secret form-urlencoded before the Basic scheme joins
    them, as RFC 6749 §2.3.1 requires; BASIC_CLIENT_UNENCODED sends them as they are, as curl's
    `-u` does, for the many servers that never undo that encoding (Authlib's server,
    node-oauth2-server, aioauth).
    """

    AUTO = ""
    NONE = ""  # an alias on purpose: the same wire value, read as an attempt
    REQUEST_BODY = "request_body"
    BASIC_CLIENT = "basic_client"
    BASIC_USER = "basic_user"
    BASIC_CLIENT_UNENCODED = "basic_client_unencoded"
    # RFC 7523 §2.2 (OpenID Connect's token_endpoint_auth_method name): a JWT signed with the
    # client's private key replaces the shared secret.
    PRIVATE_KEY_JWT = "private_key_jwt"


# The methods a connector can be configured with, in the order the form offers them.
CONFIGURABLE_CLIENT_AUTHENTICATION: tuple[ClientAuthentication, ...] = (
    ClientAuthentication.AUTO,
    ClientAuthentication.REQUEST_BODY,
    ClientAuthentication.BASIC_CLIENT,
    ClientAuthentication.BASIC_CLIENT_UNENCODED,
    ClientAuthentication.BASIC_USER,
    ClientAuthentication.PRIVATE_KEY_JWT,
)
BASIC_METHODS = frozenset(
    {
        ClientAuthentication.BASIC_CLIENT,
        ClientAuthentication.BASIC_CLIENT_UNENCODED,
        ClientAuthentication.BASIC_USER,
    }
)

# The one label table for client authentication: choices, hints and the test panel use it.
CLIENT_AUTH_LABELS: dict[ClientAuthentication, str] = {
    ClientAuthentication.AUTO: "Try both (Basic Auth header, then Request Body)",
    ClientAuthentication.REQUEST_BODY: "OAuth 2.0 with Request Body",
    ClientAuthentication.BASIC_CLIENT: (
        "OAuth 2.0 with Basic Auth Header set to client id and client secret"
    ),
    ClientAuthentication.BASIC_USER: (
        "OAuth 2.0 with Basic Auth Header set to username and password"
    ),
    ClientAuthentication.BASIC_CLIENT_UNENCODED: (
        "OAuth 2.0 with Basic Auth Header set to client id and client secret (unencoded)"
    ),
    ClientAuthentication.PRIVATE_KEY_JWT: "OAuth 2.0 with Private Key JWT (client assertion)",
}
# RFC 7523 §2.2: the client_assertion_type of a JWT client assertion.
CLIENT_ASSERTION_TYPE_JWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Grant(StrEnum):
    """The OAuth2 grants a connector can use (RFC 6749 §4.3, §4.4, §6; RFC 7523 §2.1)."""

    PASSWORD = "password"
    CLIENT_CREDENTIALS = "client_credentials"
    REFRESH_TOKEN = "refresh_token"
    JWT_BEARER = "jwt_bearer"


GRANT_LABELS: dict[Grant, str] = {
    Grant.PASSWORD: "Password Grant",
    Grant.CLIENT_CREDENTIALS: "Client Credentials Grant",
    Grant.REFRESH_TOKEN: "Refresh Token Grant",
    Grant.JWT_BEARER: "JWT Bearer Grant",
}
# The grant_type sent on the wire, where it is not the stored value (a URN is too long to be a
# tidy stored choice).
GRANT_WIRE_VALUES: dict[str, str] = {
    Grant.JWT_BEARER: "urn:ietf:params:oauth:grant-type:jwt-bearer",
}


class ResponseFormat(StrEnum):
    """How the token endpoint encodes its answer."""

    JSON = "json"
    FORM = "form"


class ExpiryFormat(StrEnum):
    """How the token response states the expiry."""

    SECONDS = "seconds"
    EPOCH = "epoch"
    ISO8601 = "iso8601"


__all__ = [
    "BASIC_METHODS",
    "CLIENT_ACCEPTED_ERRORS",
    "CLIENT_ASSERTION_TYPE_JWT",
    "CLIENT_AUTH_LABELS",
    "CONFIGURABLE_CLIENT_AUTHENTICATION",
    "GRANT_LABELS",
    "GRANT_WIRE_VALUES",
    "OAUTH_ERROR_OUTCOMES",
    "ClientAuthentication",
    "ExpiryFormat",
    "Grant",
    "Outcome",
    "ResponseFormat",
]
