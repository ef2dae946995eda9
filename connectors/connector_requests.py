"""The requests a connection test sends, built from a connector.

The token request, the API request with its credential (signed JWTs included), the outbound
policy they go through, and each step as curl.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from connectors import oauth_http
from connectors.jwks import SignedToken, jwks_auth_token
from connectors.models import (
    ApiKeyLocation,
    AuthConfig,
    ClientAuthentication,
    Connector,
    GrantType,
    TokenRequestParam,
)
from connectors.oauth_http.assertions import parse_json_object

logger = logging.getLogger(__name__)

RowLike = Any  # TokenRequestParam or forms.ParamRow: both have kind, key, value, sensitive


def outbound_policy() -> oauth_http.OutboundPolicy:
    return oauth_http.OutboundPolicy.from_setting(
        settings.CONNECTORS_OUTBOUND_ALLOW,
        allow_loopback=settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK,
    )


def _params(rows: list[RowLike], kind: str) -> tuple[oauth_http.Param, ...]:
    return tuple(
        oauth_http.Param(key=r.key, value=r.value, sensitive=r.sensitive)
        for r in rows
        if r.kind == kind
    )


def jwt_signing_for(connector: Connector) -> oauth_http.JwtSigning | None:
    """How the connector signs its JWTs, when it signs any (the key and claims it stores).

    Raises oauth_http.SigningError for additional claims or header fields that are not a JSON
    object (the rules refuse them on save; a test of unsaved values can still carry them).
    """
    if not connector.jwt_private_key:
        return None
    return oauth_http.JwtSigning(
        private_key_pem=connector.jwt_private_key,
        algorithm=connector.jwt_algorithm,
        issuer=connector.jwt_issuer,
        subject=connector.jwt_subject,
        audience=connector.jwt_audience,
        ttl_seconds=connector.jwt_ttl_seconds,
        key_id=connector.jwt_key_id,
        extra_claims=parse_json_object(
            connector.jwt_extra_claims, what=str(Connector._field("jwt_extra_claims").verbose_name)
        ),
        extra_headers=parse_json_object(
            connector.jwt_extra_headers,
            what=str(Connector._field("jwt_extra_headers").verbose_name),
        ),
    )


def signs_assertions(connector: Connector) -> bool:
    """Whether the connector's token request carries an assertion it signs (RFC 7523)."""
    return connector.auth_config == AuthConfig.OAUTH2 and (
        connector.oauth2_grant_type == GrantType.JWT_BEARER
        or connector.oauth2_client_authentication == ClientAuthentication.PRIVATE_KEY_JWT
    )


def token_request_for(
    connector: Connector, *, rows: list[RowLike] | None = None
) -> oauth_http.TokenRequest:
    """The token request a connector's OAuth2 settings describe.

    An Authorization Code Grant connector gets its tokens with the refresh token its "Connect"
    stored (RFC 6749 §6), without a scope: the refresh keeps the scope that was granted.
    """
    rows = list(connector.params.all()) if rows is None else rows
    connected = connector.oauth2_grant_type == GrantType.AUTHORIZATION_CODE
    return oauth_http.TokenRequest(
        signing=jwt_signing_for(connector) if signs_assertions(connector) else None,
        token_url=connector.oauth2_token_url,
        grant_type=GrantType.REFRESH_TOKEN if connected else connector.oauth2_grant_type,
        client_id=connector.oauth2_client_id,
        client_secret=connector.oauth2_client_secret,
        username=connector.oauth2_username,
        password=connector.oauth2_password,
        refresh_token=(
            connector.oauth2_authorization_code_refresh_token
            if connected
            else connector.oauth2_refresh_token
        ),
        scope="" if connected else connector.oauth2_scope,
        client_authentication=connector.oauth2_client_authentication,
        request_custom_grant_type="" if connected else connector.oauth2_request_custom_grant_type,
        additional_headers=_params(rows, TokenRequestParam.Kind.HEADER),
        additional_request_data=_params(rows, TokenRequestParam.Kind.DATA),
        response_type=connector.oauth2_response_type,
        access_token_key=connector.oauth2_access_token_key or "access_token",
        expires_in_key=connector.oauth2_expires_in_key or "expires_in",
        expires_in_format=connector.oauth2_expires_in_format,
        ca_bundle=connector.ca_bundle,
        timeout=settings.CONNECTORS_TOKEN_TIMEOUT,
    )


def api_url_for(connector: Connector) -> str:
    base = connector.base_url
    path = connector.test_request_path
    if not path:
        return base
    # Plain concatenation: the path can only extend the Base URL, never name another host.
    return base.rstrip("/") + "/" + path.lstrip("/")


def jwt_auth_token(connector: Connector) -> str:
    """A freshly signed JWT for one API request of a Jwt Auth connector (RFC 7519).

    Its audience is the configured one, else the Base URL. Raises oauth_http.SigningError when
    the key or the claims cannot make a token.
    """
    signing = jwt_signing_for(connector)
    if signing is None:
        raise oauth_http.SigningError("key_missing", "There is no Private Key to sign with.")
    return signing.sign(default_audience=connector.base_url.strip())


def _signed_jwt_for(connector: Connector, signed: SignedToken | None) -> str:
    """The JWT that is the credential, or "": Jwt Auth signs with the connector's own key,
    Jwks Auth with the console's current one (`signed`, when the caller signed it already)."""
    if connector.auth_config == AuthConfig.JWT_AUTH:
        return jwt_auth_token(connector)
    if connector.auth_config == AuthConfig.JWKS_AUTH:
        return (signed or jwks_auth_token(connector=connector)).token
    return ""


def api_request_for(
    connector: Connector,
    *,
    access_token: str = "",
    timeout: float | None = None,
    signed: SignedToken | None = None,
) -> oauth_http.ApiRequest:
    """The API request that proves the credentials work, with the configured auth applied.

    Jwks Auth signs a fresh JWT here unless `signed` is given (JwksError / SigningError when it
    cannot): every request carries its own short-lived token.
    """
    headers: list[oauth_http.Param] = []
    params: list[oauth_http.Param] = []
    basic_auth = None
    bare_by_config: dict[str, str] = {
        AuthConfig.API_KEY: connector.api_key,
        AuthConfig.BEARER: connector.bearer_token,
        AuthConfig.OAUTH2: access_token,
    }
    signed_jwt = _signed_jwt_for(connector, signed)
    bare = signed_jwt or bare_by_config.get(connector.auth_config, "")
    if signed_jwt:
        headers.append(oauth_http.Param("Authorization", f"Bearer {signed_jwt}", sensitive=True))
    if connector.auth_config == AuthConfig.BASIC:
        basic_auth = (connector.basic_username, connector.basic_password)
    elif connector.auth_config == AuthConfig.API_KEY:
        if connector.api_key_location == ApiKeyLocation.PARAM:
            params.append(
                oauth_http.Param(connector.api_key_param_name, connector.api_key, sensitive=True)
            )
        else:
            value = connector.api_key_header_auth_value_pattern.replace("%s", connector.api_key, 1)
            headers.append(
                oauth_http.Param(connector.api_key_header_auth_key, value, sensitive=True)
            )
    elif connector.auth_config == AuthConfig.BEARER:
        headers.append(
            oauth_http.Param("Authorization", f"Bearer {connector.bearer_token}", sensitive=True)
        )
    elif connector.auth_config == AuthConfig.OAUTH2 and access_token:
        pattern = connector.oauth2_header_auth_value_pattern or "Bearer %s"
        headers.append(
            oauth_http.Param(
                connector.oauth2_header_auth_key or "Authorization",
                pattern.replace("%s", access_token, 1),
                sensitive=True,
            )
        )
    return oauth_http.ApiRequest(
        url=api_url_for(connector),
        headers=tuple(headers),
        params=tuple(params),
        basic_auth=basic_auth,
        secret_values=(bare,) if bare else (),
        signed_jwt=signed_jwt,
        ca_bundle=connector.ca_bundle,
        timeout=timeout if timeout is not None else settings.CONNECTORS_TOKEN_TIMEOUT,
    )


def _curl_for(request: oauth_http.TokenRequest, attempt: oauth_http.Attempt) -> str:
    # The attempt's own method, so the curl line repeats exactly what was sent.
    try:
        return oauth_http.token_request_as_curl(
            request, client_authentication=attempt.client_authentication
        )
    except Exception:  # noqa: BLE001 - a curl line is a convenience; the run must still record
        logger.exception("Could not build the curl command for a test attempt")
        return ""


# The shell variable each Auth Config's bare credential is read from in "Copy as curl".
_CURL_VARIABLES: dict[str, str] = {
    AuthConfig.API_KEY: "API_KEY",
    AuthConfig.BEARER: "BEARER_TOKEN",
    AuthConfig.OAUTH2: "ACCESS_TOKEN",
    AuthConfig.JWT_AUTH: "JWT",
    AuthConfig.JWKS_AUTH: "JWT",
}
# What each variable holds, where the step above does not say it.
_CURL_NOTES: dict[str, str] = {
    AuthConfig.OAUTH2: (
        "ACCESS_TOKEN is the access token the token request (the step above) returns."
    ),
    AuthConfig.JWT_AUTH: (
        "JWT is a token signed with the connector's Private Key, with the header and claims shown "
        "above; it expires after Jwt Expiry Seconds."
    ),
    AuthConfig.JWKS_AUTH: (
        "JWT is a token signed with the console's current JWKS key, with the header and claims "
        "shown above; it expires after Jwt Expiry Seconds."
    ),
}


def _api_curl_for(connector: Connector, request: oauth_http.ApiRequest, access_token: str) -> str:
    bares: dict[str, str] = {
        AuthConfig.API_KEY: connector.api_key,
        AuthConfig.BEARER: connector.bearer_token,
        AuthConfig.OAUTH2: access_token,
        AuthConfig.JWT_AUTH: request.signed_jwt,
        AuthConfig.JWKS_AUTH: request.signed_jwt,
    }
    bare = bares.get(connector.auth_config, "")
    variable = _CURL_VARIABLES.get(connector.auth_config, "")
    note = _CURL_NOTES.get(connector.auth_config)
    notes = [note] if note else []
    try:
        return oauth_http.api_request_as_curl(
            request, secret_names={bare: variable} if bare else {}, notes=notes
        )
    except Exception:  # noqa: BLE001 - a curl line is a convenience; the run must still record
        logger.exception("Could not build the curl command for an API request")
        return ""
