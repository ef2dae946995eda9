"""The documented JSON shape of an exported connector: its keys, blocks and row lists."""

from __future__ import annotations

from typing import Any

from connectors.domain import ALL_SECRET_FIELDS, field_default
from connectors.models import TokenRequestParam

# JSON key -> model field, per Auth Config block.
BLOCKS: dict[str, dict[str, str]] = {
    "oauth2": {
        "grant_type": "oauth2_grant_type",
        "client_id": "oauth2_client_id",
        "client_secret": "oauth2_client_secret",
        "username": "oauth2_username",
        "password": "oauth2_password",
        # "scope" maps to the scope field of the chosen grant type; see entries._scope.
        "refresh_token": "oauth2_refresh_token",
        "token_url": "oauth2_token_url",
        "client_authentication": "oauth2_client_authentication",
        "header_auth_key": "oauth2_header_auth_key",
        "header_auth_value_pattern": "oauth2_header_auth_value_pattern",
        "custom_grant_type": "oauth2_custom_grant_type",
        "request_custom_grant_type": "oauth2_request_custom_grant_type",
        "response_type": "oauth2_response_type",
        "access_token_key": "oauth2_access_token_key",
        "expires_in_key": "oauth2_expires_in_key",
        "expires_in_format": "oauth2_expires_in_format",
        # Authorization Code Grant; "scope" goes to its scope field like every grant's. The
        # refresh token Connect obtains is the connection, not configuration: never exported.
        "authorization_url": "oauth2_authorization_url",
    },
    "basic": {"username": "basic_username", "password": "basic_password"},
    "api_key": {
        "location": "api_key_location",
        "header_auth_key": "api_key_header_auth_key",
        "header_auth_value_pattern": "api_key_header_auth_value_pattern",
        "param_name": "api_key_param_name",
        "api_key": "api_key",
    },
    "bearer": {"token": "bearer_token"},
    # Jwt Auth: the signing key and claims (the same keys as the oauth2 block's "jwt" object).
    "jwt_auth": {},  # filled from JWT_KEYS below
}
# The signing key and claims, keyed as in a file: the "jwt_auth" block and the "jwt" object of
# the "oauth2" block (the JWT Bearer grant and private_key_jwt) both hold these.
JWT_KEYS: dict[str, str] = {
    "private_key": "jwt_private_key",
    "algorithm": "jwt_algorithm",
    "issuer": "jwt_issuer",
    "subject": "jwt_subject",
    "audience": "jwt_audience",
    "ttl_seconds": "jwt_ttl_seconds",
    "key_id": "jwt_key_id",
    "extra_claims": "jwt_extra_claims",
    "extra_headers": "jwt_extra_headers",
}
BLOCKS["jwt_auth"] = dict(JWT_KEYS)
# Keys whose value in a file is not text: a whole number, and JSON objects.
JWT_INTEGER_KEYS = frozenset({"ttl_seconds"})
JWT_OBJECT_KEYS = frozenset({"extra_claims", "extra_headers"})
# Jwks Auth: the claims only. Its keys are the console's (README "Jwks Auth"): never exported.
BLOCKS["jwks_auth"] = {
    key: JWT_KEYS[key]
    for key in ("issuer", "subject", "audience", "ttl_seconds", "extra_claims", "extra_headers")
}
# The blocks whose keys are JWT_KEYS (or some of them), read and written alike.
JWT_BLOCKS = frozenset({"jwt_auth", "jwks_auth"})
SECRET_KEYS = {
    block: {key for key, field in fields.items() if field in ALL_SECRET_FIELDS}
    for block, fields in BLOCKS.items()
}
DOCUMENTED_OAUTH2_ORDER = (
    "grant_type",
    "client_id",
    "client_secret",
    "username",
    "password",
    "scope",
    "refresh_token",
    "token_url",
    "client_authentication",
    "header_auth_key",
    "header_auth_value_pattern",
    "custom_grant_type",
    "request_custom_grant_type",
    "additional_headers",
    "additional_request_data",
    "response_type",
    "access_token_key",
    "expires_in_key",
    "expires_in_format",
)
# Oauth2 keys this product has beyond the documented shape, written after it; "jwt" holds
# JWT_KEYS.
EXTRA_OAUTH2 = ("authorization_url", "additional_authorization_parameters", "jwt")
TOP_LEVEL = ("name", "display_name", "description", "base_url", "enabled")
# Fields this product has beyond the documented shape; exported and imported when present.
EXTRA_TOP_LEVEL = ("owner_team", "test_request_path", "ca_bundle", "client_secret_expires_on")
PARAM_LISTS: dict[str, str] = {
    "additional_headers": TokenRequestParam.Kind.HEADER,
    "additional_request_data": TokenRequestParam.Kind.DATA,
    "additional_authorization_parameters": TokenRequestParam.Kind.AUTHORIZE,
}
# What every block's fields hold before a file's values are applied.
BLOCK_DEFAULTS: dict[str, Any] = {
    name: field_default(name) for fields in BLOCKS.values() for name in fields.values()
}
