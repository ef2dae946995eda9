"""What to do next after the API request, and after a refusal with a secret that was never set."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from connectors.explain.outcomes import (
    Advice,
    _advice_from_next_step,
    label,
)
from connectors.explain.token import (
    _http_error_advice,
)
from connectors.models import (
    AuthConfig,
)
from connectors.oauth_http import (
    ApiResult,
    ClientAuthentication,
    Facts,
    Grant,
    Outcome,
    TokenResult,
)

Auth = ClientAuthentication


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
