"""Demo data for `make run`: a superuser and one connector of every Auth Config.

The OAuth2 and API connectors point at the sandbox served by this app in debug (connectors.sandbox),
so their connection tests pass out of the box; `demo_oauth2_misconfigured` fails on purpose.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth import get_user_model

from connectors.domain import StoredConnector
from connectors.jwks import jwks_current_key, jwks_generate
from connectors.models import ALL_SECRET_FIELDS, Connector, TokenRequestParam
from connectors.oauth_http import assertions
from connectors.rules import connector_check
from connectors.services import connector_create, connector_update

SANDBOX_CLIENT_ID = "demo-client"
SANDBOX_CLIENT_SECRET = "demo+secret/with:colon%é"  # noqa: S105 - public demo value
SANDBOX_USERNAME = "demo.user"
SANDBOX_PASSWORD = "demo-password"  # noqa: S105 - public demo value
SANDBOX_API_KEY = "demo-api-key"
SANDBOX_BEARER = "demo-bearer-token"
SANDBOX_BASIC = ("demo", "demo-basic-password")
SANDBOX_REFRESH_TOKEN = "demo-refresh-token"  # noqa: S105 - public demo value
# The signed-JWT demos sign with a key generated when they are created (never a key in the
# source); the sandbox verifies with the public half of the stored key.
SANDBOX_JWT_ISSUER = "demo-signer"
DEMO_JWT_AUTH = "demo_jwt_auth"
DEMO_JWKS_AUTH = "demo_jwks_auth"
DEMO_JWT_BEARER = "demo_oauth2_jwt_bearer"


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str | None  # None when an existing user kept its password
    created: bool


def demo_superuser_ensure(*, username: str, password: str | None) -> DemoUser:
    """Create the demo superuser once; reuse it (and its remembered password) afterwards."""
    User = get_user_model()
    remembered = settings.LOCAL_DIR / "demo_superuser_password"
    user = User.objects.filter(username=username).first()
    if user is not None:
        if password:
            user.set_password(password)
            user.save(update_fields=["password"])
            return DemoUser(username, password, created=False)
        known = remembered.read_text().strip() if remembered.exists() else None
        return DemoUser(username, known, created=False)
    password = password or secrets.token_urlsafe(12)
    User.objects.create_superuser(username=username, password=password, email="")
    settings.LOCAL_DIR.mkdir(exist_ok=True)
    remembered.write_text(password)
    remembered.chmod(0o600)
    return DemoUser(username, password, created=True)


def _demo_connectors(base: str) -> list[dict[str, Any]]:
    token_url = f"{base}/sandbox/oauth/token"
    api = f"{base}/sandbox/api"
    common = {"base_url": api, "test_request_path": "/me", "owner_team": "Demo", "enabled": True}
    return [
        {
            **common,
            "name": "demo_no_auth",
            "display_name": "Demo: No Auth",
            "auth_config": "none",
            "test_request_path": "/public",
        },
        {
            **common,
            "name": "demo_basic",
            "display_name": "Demo: Basic Auth",
            "auth_config": "basic",
            "basic_username": SANDBOX_BASIC[0],
            "basic_password": SANDBOX_BASIC[1],
        },
        {
            **common,
            "name": "demo_api_key",
            "display_name": "Demo: Api Key Auth",
            "auth_config": "api_key",
            "api_key_location": "header",
            "api_key_header_auth_key": "X-Api-Key",
            "api_key_header_auth_value_pattern": "%s",
            "api_key": SANDBOX_API_KEY,
        },
        {
            **common,
            "name": "demo_bearer",
            "display_name": "Demo: Bearer Token Auth",
            "auth_config": "bearer",
            "bearer_token": SANDBOX_BEARER,
        },
        {
            **common,
            "name": "demo_oauth2_password",
            "display_name": "Demo: Oauth2 Password Grant",
            "auth_config": "oauth2",
            "oauth2_grant_type": "password",
            "oauth2_client_id": SANDBOX_CLIENT_ID,
            "oauth2_client_secret": SANDBOX_CLIENT_SECRET,
            "oauth2_username": SANDBOX_USERNAME,
            "oauth2_password": SANDBOX_PASSWORD,
            "oauth2_password_scope": "read",
            "oauth2_token_url": token_url,
            "rows": {
                TokenRequestParam.Kind.HEADER: [{"key": "Client-Id", "value": SANDBOX_CLIENT_ID}],
                TokenRequestParam.Kind.DATA: [{"key": "audience", "value": "demo-api"}],
            },
        },
        {
            **common,
            "name": "demo_oauth2_client_credentials",
            "display_name": "Demo: Oauth2 Client Credentials Grant",
            "auth_config": "oauth2",
            "oauth2_grant_type": "client_credentials",
            "oauth2_client_id": SANDBOX_CLIENT_ID,
            "oauth2_client_secret": SANDBOX_CLIENT_SECRET,
            "oauth2_token_url": token_url,
            "oauth2_client_authentication": "request_body",
        },
        {
            **common,
            "name": "demo_oauth2_refresh",
            "display_name": "Demo: Oauth2 Refresh Token Grant",
            "auth_config": "oauth2",
            "oauth2_grant_type": "refresh_token",
            "oauth2_client_id": SANDBOX_CLIENT_ID,
            "oauth2_client_secret": SANDBOX_CLIENT_SECRET,
            "oauth2_refresh_token": SANDBOX_REFRESH_TOKEN,
            "oauth2_token_url": token_url,
        },
        {
            **common,
            "name": DEMO_JWT_AUTH,
            "display_name": "Demo: Jwt Auth",
            "auth_config": "jwt_auth",
            "jwt_private_key": assertions.generate_private_key_pem("ES256"),
            "jwt_algorithm": "ES256",
            "jwt_issuer": SANDBOX_JWT_ISSUER,
            "jwt_subject": "demo-service",
            "jwt_key_id": "demo-1",
        },
        {
            **common,
            "name": DEMO_JWT_BEARER,
            "display_name": "Demo: Oauth2 JWT Bearer Grant",
            "auth_config": "oauth2",
            "oauth2_grant_type": "jwt_bearer",
            "oauth2_token_url": token_url,
            "jwt_private_key": assertions.generate_private_key_pem("RS256"),
            "jwt_issuer": SANDBOX_JWT_ISSUER,
            "jwt_subject": SANDBOX_USERNAME,
            "jwt_extra_headers": '{"typ": "JWT"}',
        },
        {
            **common,
            "name": DEMO_JWKS_AUTH,
            "display_name": "Demo: Jwks Auth",
            "description": "Signed with the console's own key; the sandbox API verifies it with "
            "the keys published at /.well-known/jwks.json.",
            "auth_config": "jwks_auth",
            "jwt_issuer": SANDBOX_JWT_ISSUER,
            "jwt_subject": "demo-jwks-service",
        },
        {
            **common,
            "name": "demo_oauth2_misconfigured",
            "display_name": "Demo: Oauth2 misconfigured on purpose",
            "description": "The sandbox wants the client credentials in the request body, but this "
            "connector is pinned to the Basic Auth header. Run the test to see the hint.",
            "auth_config": "oauth2",
            "oauth2_grant_type": "password",
            "oauth2_client_id": "body-only-client",
            "oauth2_client_secret": SANDBOX_CLIENT_SECRET,
            "oauth2_username": SANDBOX_USERNAME,
            "oauth2_password": SANDBOX_PASSWORD,
            "oauth2_token_url": token_url,
            "oauth2_client_authentication": "basic_client",
        },
    ]


def demo_connectors_ensure(*, base_url: str, user: Any = None) -> list[str]:
    """Create the demo connectors that do not exist yet; return the names created."""
    created = []
    existing = set(Connector.objects.values_list("name", flat=True))
    for values in _demo_connectors(base_url.rstrip("/")):
        if values["name"] in existing:
            continue
        check = connector_check(values=values, rows=values.get("rows", {}))
        if not check.ok:
            raise ValueError(f"Demo connector {values['name']} is invalid: {check.error_list()}")
        connector_create(connector=check.instance, rows=check.param_rows(), user=user)
        created.append(values["name"])
    if DEMO_JWKS_AUTH in created and jwks_current_key() is None:
        # So that the Jwks Auth demo passes out of the box; admins rotate it from then on.
        jwks_generate(user=user)
    return created


# The demo connectors' URLs that follow the port: the sandbox of this app, on loopback only.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
FOLLOWING_URLS = ("base_url", "oauth2_token_url")


@dataclass
class DemoMove:
    """What demo_connectors_follow did: the connectors moved, and those left (with why)."""

    moved: list[str] = field(default_factory=list)
    left: list[tuple[str, str]] = field(default_factory=list)


def _moved_url(url: str, origin: str) -> str:
    """`url` with its host:port taken from `origin`, when it is a loopback sandbox URL."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
        return url
    if not parts.path.startswith("/sandbox/"):
        return url
    target = urlsplit(origin)
    return urlunsplit((parts.scheme, target.netloc, parts.path, parts.query, parts.fragment))


# Secrets the demo makes on this server itself: a private key never leaves it (only what it
# signs does, to the sandbox), so a demo key does not keep its connector from moving.
MADE_HERE = frozenset({"jwt_private_key"})


def _demo_secrets_kept(current: Connector, values: dict[str, Any]) -> bool:
    """Whether every secret `current` stores is the demo's own (public or made-here) value."""
    return all(
        (getattr(current, name) or "") == (values.get(name) or "")
        for name in ALL_SECRET_FIELDS
        if name not in MADE_HERE
    )


def demo_connectors_follow(*, base_url: str, user: Any = None) -> DemoMove:
    """Point the existing demo connectors at the sandbox served at `base_url` (a new port).

    Only the demo connectors (by name), only their loopback sandbox URLs, and only the host:port
    part change. A stored secret goes to another port only when it is the demo's public value:
    one typed in by hand is never sent elsewhere (README "The Auth Config form"), and its
    connector is left as it is, with the reason. Each move is an audited edit.
    """
    from connectors.transfer import connector_export_dict
    from connectors.transfer.entries import entry_read

    origin = base_url.rstrip("/")
    result = DemoMove()
    for values in _demo_connectors(origin):
        current = Connector.objects.prefetch_related("params").filter(name=values["name"]).first()
        if current is None:
            continue
        urls = {name: getattr(current, name) or "" for name in FOLLOWING_URLS}
        moved = {name: _moved_url(url, origin) for name, url in urls.items()}
        if moved == urls:
            continue
        if not _demo_secrets_kept(current, values):
            result.left.append((current.name, "its secrets are no longer the demo's"))
            continue
        entry = connector_export_dict(current, include_secrets=True)
        entry["base_url"] = moved["base_url"]
        entry["oauth2"]["token_url"] = moved["oauth2_token_url"]
        read = entry_read(entry, current)
        check = connector_check(
            values=read.values, rows=read.rows, instance=current, stored=StoredConnector.of(current)
        )
        if read.errors or not check.ok:
            result.left.append((current.name, "; ".join(m for _, m in check.error_list())))
            continue
        connector_update(
            connector=check.instance,
            rows=check.param_rows(),
            user=user,
            expected_version=current.version,
        )
        result.moved.append(current.name)
    return result
