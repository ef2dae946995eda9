"""Value types shared by the form, the rules, the services and import: no requests, no forms.

Rows, URL origins and the Auth Config field groups live here so that services and import can
use them without importing the form (the layers are in pyproject's import-linter contracts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.models import (
    ALL_SECRET_FIELDS,
    GRANT_FIELDS,
    GROUP_FIELDS,
    JWT_ASSERTION_FIELDS,
    JWT_FIELDS,
    SCOPE_FIELD_BY_GRANT,
    SECRET_FIELDS,
    AuthConfig,
    Connector,
    GrantType,
    TokenRequestParam,
)

# One definition of "the same server" for the rules, the HTTP core and ConnectorAuth.
from connectors.oauth_http import url_origin

# The Auth Config field groups are declared once, next to the model fields they name; this
# module is where the layers above the model take them from.
__all__ = [
    "ALL_SECRET_FIELDS",
    "CONNECTOR_FIELDS",
    "DEFAULTED_CHOICES",
    "GRANT_FIELDS",
    "GROUP_FIELDS",
    "JWT_ASSERTION_FIELDS",
    "JWT_FIELDS",
    "REQUIRED_BY_GRANT",
    "SCOPE_FIELD_BY_GRANT",
    "SECRET_FIELDS",
    "URL_FIELDS",
    "ParamRow",
    "RowLike",
    "StoredConnector",
    "api_url_join",
    "field_default",
    "field_label",
    "norm_row_key",
    "param_rows",
    "url_field_of_secret",
    "url_origin",
]

# The connector's editable fields, in the order the form shows them and reports their errors.
CONNECTOR_FIELDS: tuple[str, ...] = (
    "name",
    "display_name",
    "description",
    "base_url",
    "enabled",
    "owner_team",
    "auth_config",
    # A field shared by several groups (the signing key and claims) is listed once.
    *dict.fromkeys(name for group in GROUP_FIELDS.values() for name in group),
    "test_request_path",
    "ca_bundle",
)

# Choices with a default: filled in when a group's fields were hidden (and so not submitted)
# or when an import omits them.
DEFAULTED_CHOICES: tuple[str, ...] = (
    "api_key_location",
    "oauth2_grant_type",
    "oauth2_client_authentication",
    "oauth2_response_type",
    "oauth2_expires_in_format",
    "jwt_algorithm",
    "jwt_ttl_seconds",
)

# What each grant type needs before a token can be requested.
REQUIRED_BY_GRANT: dict[str, tuple[str, ...]] = {
    GrantType.PASSWORD: (
        "oauth2_client_id",
        "oauth2_username",
        "oauth2_password",
        "oauth2_token_url",
    ),
    GrantType.CLIENT_CREDENTIALS: (
        "oauth2_client_id",
        "oauth2_client_secret",
        "oauth2_token_url",
    ),
    GrantType.REFRESH_TOKEN: ("oauth2_refresh_token", "oauth2_token_url"),
    # RFC 7523 §3: the assertion must state an issuer and a subject. Client authentication is
    # optional for this grant (§3.1), so no Client ID is required.
    GrantType.JWT_BEARER: ("jwt_private_key", "jwt_issuer", "jwt_subject", "oauth2_token_url"),
}

# The URL a secret is sent to: OAuth2 secrets go to the token URL, the others to the API.
URL_FIELDS: tuple[str, ...] = ("oauth2_token_url", "base_url")


def url_field_of_secret(name: str, auth_config: str = "") -> str:
    """The URL field whose server receives the secret field `name` (or what it signs).

    The private key never leaves the console, but the JWTs it signs do: an Oauth2 connector's
    assertions go to the token URL, a Jwt Auth connector's tokens to the Base URL.
    """
    if name == "jwt_private_key":
        return "oauth2_token_url" if auth_config == AuthConfig.OAUTH2 else "base_url"
    return "oauth2_token_url" if name.startswith("oauth2_") else "base_url"


def api_url_join(base_url: str, path: str) -> str:
    """The API test URL: Base URL plus Test request path, by plain concatenation.

    The path can only extend the Base URL; the rules also refuse any path that could make a
    server or proxy read another host into it.
    """
    if not path:
        return base_url
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def field_default(name: str) -> Any:
    """The model default of a connector field (what an unchosen group is reset to)."""
    return Connector._field(name).get_default()


def field_label(name: str) -> str:
    """A connector field's label as the form shows it (capitalised verbose name)."""
    verbose = str(Connector._field(name).verbose_name)
    return verbose[:1].upper() + verbose[1:]


class RowLike(Protocol):
    """A key/value row: a stored TokenRequestParam or a ParamRow."""

    @property
    def kind(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def sensitive(self) -> bool: ...


@dataclass(frozen=True)
class ParamRow:
    """A cleaned key/value row, ready to store."""

    kind: str
    key: str
    value: str = field(repr=False)
    sensitive: bool


def param_rows(rows: Iterable[RowLike]) -> list[ParamRow]:
    """Rows as value objects, e.g. the stored rows of a connector."""
    return [ParamRow(kind=r.kind, key=r.key, value=r.value, sensitive=r.sensitive) for r in rows]


def norm_row_key(kind: str, key: str) -> str:
    """Header names ignore case; body field names do not."""
    return key.lower() if kind == TokenRequestParam.Kind.HEADER else key


@dataclass(frozen=True)
class StoredConnector:
    """What the rules need of the connector being edited, taken before the edit overwrites it."""

    name: str
    secrets: Mapping[str, str] = field(repr=False)
    urls: Mapping[str, str]
    rows: tuple[ParamRow, ...] = field(repr=False)

    @classmethod
    def of(cls, connector: Connector, rows: Iterable[RowLike] | None = None) -> StoredConnector:
        """Snapshot a saved connector (its rows from the database unless given)."""
        stored_rows = connector.params.all() if rows is None else rows
        return cls(
            name=connector.name,
            secrets={name: getattr(connector, name) for name in ALL_SECRET_FIELDS},
            urls={name: getattr(connector, name) for name in URL_FIELDS},
            rows=tuple(param_rows(stored_rows)),
        )

    def rows_of(self, kind: str) -> list[ParamRow]:
        return [row for row in self.rows if row.kind == kind]
