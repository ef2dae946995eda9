"""The connector inventory: connectors, their auth config, and the token-request rows."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

import audit.models
from connectors.fields import SecretCharField, SecretTextField
from connectors.oauth_http.assertions import DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS, SigningAlgorithm
from connectors.oauth_http.vocabulary import (
    CLIENT_AUTH_LABELS,
    GRANT_LABELS,
    ExpiryFormat,
    Grant,
    ResponseFormat,
)
from connectors.oauth_http.vocabulary import ClientAuthentication as Auth

NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z][A-Za-z0-9_]{1,63}\Z",
    "Use 2 to 64 letters, digits or underscores, starting with a letter.",
    code="invalid_name",
)


class AuthConfig(models.TextChoices):
    NONE = "none", "No Auth"
    BASIC = "basic", "Basic Auth"
    API_KEY = "api_key", "Api Key Auth"
    BEARER = "bearer", "Bearer Token Auth"
    OAUTH2 = "oauth2", "Oauth2"
    # The signed JWT itself is the API credential (label in the product's style).
    JWT_AUTH = "jwt_auth", "Jwt Auth"
    # The console signs a short-lived JWT for each API request with its own rotating keys,
    # published at /.well-known/jwks.json (connectors.jwks).
    JWKS_AUTH = "jwks_auth", "Jwks Auth"


class ApiKeyLocation(models.TextChoices):
    HEADER = "header", "Header Auth"
    PARAM = "param", "Param Auth"


# Values and labels come from the HTTP core's vocabulary, where each is named once.
class GrantType(models.TextChoices):
    PASSWORD = Grant.PASSWORD.value, GRANT_LABELS[Grant.PASSWORD]
    CLIENT_CREDENTIALS = (
        Grant.CLIENT_CREDENTIALS.value,
        GRANT_LABELS[Grant.CLIENT_CREDENTIALS],
    )
    REFRESH_TOKEN = Grant.REFRESH_TOKEN.value, GRANT_LABELS[Grant.REFRESH_TOKEN]
    AUTHORIZATION_CODE = (
        Grant.AUTHORIZATION_CODE.value,
        GRANT_LABELS[Grant.AUTHORIZATION_CODE],
    )
    JWT_BEARER = Grant.JWT_BEARER.value, GRANT_LABELS[Grant.JWT_BEARER]


class ClientAuthentication(models.TextChoices):
    AUTO = Auth.AUTO.value, CLIENT_AUTH_LABELS[Auth.AUTO]
    REQUEST_BODY = Auth.REQUEST_BODY.value, CLIENT_AUTH_LABELS[Auth.REQUEST_BODY]
    BASIC_CLIENT = Auth.BASIC_CLIENT.value, CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT]
    BASIC_CLIENT_UNENCODED = (
        Auth.BASIC_CLIENT_UNENCODED.value,
        CLIENT_AUTH_LABELS[Auth.BASIC_CLIENT_UNENCODED],
    )
    BASIC_USER = Auth.BASIC_USER.value, CLIENT_AUTH_LABELS[Auth.BASIC_USER]
    PRIVATE_KEY_JWT = Auth.PRIVATE_KEY_JWT.value, CLIENT_AUTH_LABELS[Auth.PRIVATE_KEY_JWT]


class JwtAlgorithm(models.TextChoices):
    RS256 = SigningAlgorithm.RS256.value, "RS256"
    ES256 = SigningAlgorithm.ES256.value, "ES256"
    PS256 = SigningAlgorithm.PS256.value, "PS256"


class ResponseType(models.TextChoices):
    JSON = ResponseFormat.JSON.value, "Json"
    FORM = ResponseFormat.FORM.value, "Form Encoded"


class ExpiresInFormat(models.TextChoices):
    SECONDS = ExpiryFormat.SECONDS.value, "Seconds"
    EPOCH = ExpiryFormat.EPOCH.value, "Epoch Seconds"
    ISO8601 = ExpiryFormat.ISO8601.value, "ISO 8601"


DEFAULT_HEADER_AUTH_KEY = "Authorization"
DEFAULT_HEADER_AUTH_VALUE_PATTERN = "Bearer %s"

# Which model fields hold secrets, per Auth Config. Used to mask, clear, diff and export them.
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    AuthConfig.NONE: (),
    AuthConfig.BASIC: ("basic_password",),
    AuthConfig.API_KEY: ("api_key",),
    AuthConfig.BEARER: ("bearer_token",),
    AuthConfig.OAUTH2: (
        "oauth2_client_secret",
        "oauth2_password",
        "oauth2_refresh_token",
        "jwt_private_key",
    ),
    AuthConfig.JWT_AUTH: ("jwt_private_key",),
    # Its keys are the console's (connectors.jwks), not the connector's: nothing to store here.
    AuthConfig.JWKS_AUTH: (),
}
# Secrets typed into the form (and imported); blank keeps the stored one.
# Several Auth Configs share a field (the signing key): each field is named once here.
TYPED_SECRET_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(f for fields in SECRET_FIELDS.values() for f in fields)
)
# Secrets the console obtains itself ("Connect", Authorization Code Grant): never typed, never
# exported, never copied by clone; masked, diffed and re-encrypted like the typed ones.
OBTAINED_SECRET_FIELDS: tuple[str, ...] = ("oauth2_authorization_code_refresh_token",)
ALL_SECRET_FIELDS: tuple[str, ...] = (*TYPED_SECRET_FIELDS, *OBTAINED_SECRET_FIELDS)
# The connection an admin made with "Connect": state, not configuration. An edit never writes
# these columns (a refresh may rotate the token meanwhile); connectors.authorization_code does.
CONNECTION_FIELDS: tuple[str, ...] = (
    "oauth2_authorization_code_refresh_token",
    "oauth2_connection_token_hash",
    "oauth2_connected_at",
    "oauth2_connected_by",
    "oauth2_refresh_lease_until",
)

# The fields that make a signed JWT (an assertion or the API credential itself), shared by the
# Auth Configs and grants that sign one.
JWT_FIELDS: tuple[str, ...] = (
    "jwt_private_key",
    "jwt_algorithm",
    "jwt_issuer",
    "jwt_subject",
    "jwt_audience",
    "jwt_ttl_seconds",
    "jwt_key_id",
    "jwt_extra_claims",
    "jwt_extra_headers",
)

# Jwks Auth signs with the console's keys (connectors.jwks): of the JWT fields it uses only the
# claims, never a connector's own key, algorithm (always RS256) or kid (the current key's).
JWKS_AUTH_FIELDS: tuple[str, ...] = (
    "jwt_issuer",
    "jwt_subject",
    "jwt_audience",
    "jwt_ttl_seconds",
    "jwt_extra_claims",
    "jwt_extra_headers",
)

# The non-secret fields that belong to each Auth Config; others are reset when it changes.
GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    AuthConfig.NONE: (),
    AuthConfig.BASIC: ("basic_username", "basic_password"),
    AuthConfig.API_KEY: (
        "api_key_location",
        "api_key_header_auth_key",
        "api_key_header_auth_value_pattern",
        "api_key_param_name",
        "api_key",
    ),
    AuthConfig.BEARER: ("bearer_token",),
    AuthConfig.OAUTH2: (
        "oauth2_grant_type",
        "oauth2_client_id",
        "oauth2_client_secret",
        "client_secret_expires_on",
        "oauth2_username",
        "oauth2_password",
        "oauth2_password_scope",
        "oauth2_client_credentials_scope",
        "oauth2_refresh_token",
        "oauth2_refresh_token_scope",
        "oauth2_authorization_url",
        "oauth2_authorization_code_scope",
        "oauth2_token_url",
        "oauth2_client_authentication",
        "oauth2_header_auth_key",
        "oauth2_header_auth_value_pattern",
        "oauth2_custom_grant_type",
        "oauth2_request_custom_grant_type",
        "oauth2_response_type",
        "oauth2_access_token_key",
        "oauth2_expires_in_key",
        "oauth2_expires_in_format",
        *JWT_FIELDS,
        "oauth2_jwt_bearer_scope",
    ),
    AuthConfig.JWT_AUTH: JWT_FIELDS,
    AuthConfig.JWKS_AUTH: JWKS_AUTH_FIELDS,
}

# OAuth2 fields that only one grant type uses.
GRANT_FIELDS: dict[str, tuple[str, ...]] = {
    GrantType.PASSWORD: ("oauth2_username", "oauth2_password", "oauth2_password_scope"),
    GrantType.CLIENT_CREDENTIALS: ("oauth2_client_credentials_scope",),
    GrantType.REFRESH_TOKEN: ("oauth2_refresh_token", "oauth2_refresh_token_scope"),
    GrantType.AUTHORIZATION_CODE: ("oauth2_authorization_url", "oauth2_authorization_code_scope"),
    # The claims that name who the token is for; the key, algorithm and lifetime are shared with
    # private_key_jwt client authentication (JWT_ASSERTION_FIELDS).
    GrantType.JWT_BEARER: ("jwt_issuer", "jwt_subject", "oauth2_jwt_bearer_scope"),
}

# Api Key fields that only one location (header or query parameter) uses.
API_KEY_LOCATION_FIELDS: dict[str, tuple[str, ...]] = {
    ApiKeyLocation.HEADER: ("api_key_header_auth_key", "api_key_header_auth_value_pattern"),
    ApiKeyLocation.PARAM: ("api_key_param_name",),
}

# The signing fields an Oauth2 connector uses when it signs any assertion: for the JWT Bearer
# grant or for private_key_jwt client authentication. Reset when it signs none.
JWT_ASSERTION_FIELDS: tuple[str, ...] = tuple(
    name for name in JWT_FIELDS if name not in ("jwt_issuer", "jwt_subject")
)


# Each grant type keeps its own scope field; "the scope" of a connector is its grant's.
SCOPE_FIELD_BY_GRANT: dict[str, str] = {
    GrantType.PASSWORD: "oauth2_password_scope",
    GrantType.CLIENT_CREDENTIALS: "oauth2_client_credentials_scope",
    GrantType.REFRESH_TOKEN: "oauth2_refresh_token_scope",
    GrantType.AUTHORIZATION_CODE: "oauth2_authorization_code_scope",
    GrantType.JWT_BEARER: "oauth2_jwt_bearer_scope",
}


class Connector(models.Model):
    """One API connector: where it lives and how it authenticates."""

    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[NAME_VALIDATOR],
        help_text="Identifier used by other systems. 2 to 64 letters, digits or underscores, "
        "starting with a letter. It cannot change after the connector is created.",
    )
    display_name = models.CharField(max_length=128, blank=True)
    description = models.TextField(blank=True)
    base_url = models.CharField("Base URL", max_length=2048, blank=True)
    enabled = models.BooleanField(default=True)
    owner_team = models.CharField(max_length=128, blank=True)
    test_request_path = models.CharField(
        max_length=1024,
        blank=True,
        help_text="Optional path under the Base URL that the connection test requests with the "
        "credentials, e.g. /api/v1/me. Leave blank to test only the token request.",
    )
    ca_bundle = models.TextField(
        "CA bundle",
        blank=True,
        help_text="Optional PEM certificates to trust for this connector's servers, for a private "
        "certificate authority. Leave blank to use the system's trusted authorities.",
    )

    auth_config = models.CharField(
        "Auth Config", max_length=16, choices=AuthConfig.choices, default=AuthConfig.NONE
    )

    basic_username = models.CharField("Username", max_length=256, blank=True)
    basic_password = SecretCharField("Password", max_length=1024, blank=True)

    api_key_location = models.CharField(
        "Api Key Auth Auth Type",
        max_length=8,
        choices=ApiKeyLocation.choices,
        default=ApiKeyLocation.HEADER,
    )
    api_key_header_auth_key = models.CharField(
        "Header Auth Key", max_length=256, blank=True, default=DEFAULT_HEADER_AUTH_KEY
    )
    api_key_header_auth_value_pattern = models.CharField(
        "Header Auth Value Pattern",
        max_length=256,
        blank=True,
        default=DEFAULT_HEADER_AUTH_VALUE_PATTERN,
    )
    api_key_param_name = models.CharField("Param Auth Param Name", max_length=256, blank=True)
    api_key = SecretCharField("Api Key", max_length=4096, blank=True)

    bearer_token = SecretTextField("Bearer Token", blank=True)

    oauth2_grant_type = models.CharField(
        "Oauth2 Grant Type", max_length=32, choices=GrantType.choices, default=GrantType.PASSWORD
    )
    oauth2_client_id = models.CharField("Client ID", max_length=512, blank=True)
    oauth2_client_secret = SecretCharField("Client Secret", max_length=4096, blank=True)
    # Not a secret: the date the identity provider retires the secret (Azure AD-style secrets
    # expire after months). Indexed for the list's and the dashboard's "expiring" filters.
    client_secret_expires_on = models.DateField(
        "Client Secret Expires On",
        null=True,
        blank=True,
        db_index=True,
        help_text="Optional: the date the identity provider retires this Client Secret. The "
        "list and the dashboard warn before it expires.",
    )
    oauth2_username = models.CharField("Password Grant Username", max_length=512, blank=True)
    oauth2_password = SecretCharField("Password Grant Password", max_length=4096, blank=True)
    oauth2_password_scope = models.CharField("Password Grant Scope", max_length=1024, blank=True)
    oauth2_client_credentials_scope = models.CharField(
        "Client Credentials Grant Scope", max_length=1024, blank=True
    )
    oauth2_refresh_token = SecretTextField("Refresh Token Grant Refresh Token", blank=True)
    oauth2_refresh_token_scope = models.CharField(
        "Refresh Token Grant Scope", max_length=1024, blank=True
    )
    # Authorization Code Grant (RFC 6749 §4.1 with PKCE, RFC 7636): an admin's "Connect" sends
    # the browser to the authorization URL; the callback stores the refresh token obtained.
    oauth2_authorization_url = models.CharField(
        "Oauth2 Authorization Url", max_length=2048, blank=True
    )
    oauth2_authorization_code_scope = models.CharField(
        "Authorization Code Grant Scope", max_length=1024, blank=True
    )
    oauth2_authorization_code_refresh_token = SecretTextField(
        "Authorization Code Grant Refresh Token", blank=True, editable=False
    )
    # SHA-256 of the stored refresh token: a rotation replaces the token only where this still
    # names the one it used (compare-and-swap; the ciphertext itself differs on every write).
    oauth2_connection_token_hash = models.CharField(max_length=64, blank=True, editable=False)
    oauth2_connected_at = models.DateTimeField(
        "Connected at", null=True, blank=True, editable=False
    )
    # One refresh at a time per connection, across workers, without a transaction held over the
    # network call: a worker takes this lease with one UPDATE, others wait for it.
    oauth2_refresh_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    oauth2_connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="Connected by",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    oauth2_token_url = models.CharField("Oauth2 Token Url", max_length=2048, blank=True)
    oauth2_client_authentication = models.CharField(
        "Oauth2 Client Authentication",
        max_length=32,
        choices=ClientAuthentication.choices,
        default=ClientAuthentication.AUTO,
        blank=True,
    )
    oauth2_header_auth_key = models.CharField(
        "Header Auth Key", max_length=256, blank=True, default=DEFAULT_HEADER_AUTH_KEY
    )
    oauth2_header_auth_value_pattern = models.CharField(
        "Header Auth Value Pattern",
        max_length=256,
        blank=True,
        default=DEFAULT_HEADER_AUTH_VALUE_PATTERN,
    )
    oauth2_custom_grant_type = models.CharField(
        "Oauth2 Custom Grant Type", max_length=256, blank=True
    )
    oauth2_request_custom_grant_type = models.CharField(
        "Oauth2 Custom Oauth Request Options Custom Grant Type", max_length=256, blank=True
    )
    oauth2_response_type = models.CharField(
        "Oauth2 Custom Oauth Response Response Type",
        max_length=8,
        choices=ResponseType.choices,
        default=ResponseType.JSON,
    )
    oauth2_access_token_key = models.CharField(
        "Json Access Token Key", max_length=256, blank=True, default="access_token"
    )
    oauth2_expires_in_key = models.CharField(
        "Json Expires In Key", max_length=256, blank=True, default="expires_in"
    )
    oauth2_expires_in_format = models.CharField(
        "Json Expires In Format",
        max_length=8,
        choices=ExpiresInFormat.choices,
        default=ExpiresInFormat.SECONDS,
    )

    # The signed-JWT fields: the JWT Bearer grant's assertion, private_key_jwt's client
    # assertion (RFC 7523 §2.1, §2.2) and Jwt/Jwks Auth, where the JWT is the API credential.
    jwt_private_key = SecretTextField(
        "Private Key",
        blank=True,
        help_text="PEM private key (RSA or EC P-256) that signs the JWT. Stored encrypted; "
        "it is never shown again.",
    )
    jwt_algorithm = models.CharField(
        "Signing Algorithm",
        max_length=8,
        choices=JwtAlgorithm.choices,
        default=JwtAlgorithm.RS256,
    )
    jwt_issuer = models.CharField("Jwt Issuer", max_length=1024, blank=True)
    jwt_subject = models.CharField("Jwt Subject", max_length=1024, blank=True)
    jwt_audience = models.CharField(
        "Jwt Audience",
        max_length=2048,
        blank=True,
        help_text="The aud claim. Leave blank to use the Oauth2 Token Url (for Jwt Auth: the "
        "Base URL).",
    )
    jwt_ttl_seconds = models.PositiveIntegerField(
        "Jwt Expiry Seconds",
        default=DEFAULT_TTL_SECONDS,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_TTL_SECONDS)],
        help_text=f"How long each signed JWT is valid, at most {MAX_TTL_SECONDS} seconds.",
    )
    jwt_key_id = models.CharField("Key ID (kid)", max_length=256, blank=True)
    jwt_extra_claims = models.TextField(
        "Additional Claims",
        blank=True,
        help_text='Optional JSON object of extra claims, e.g. {"scope": "read"}.',
    )
    jwt_extra_headers = models.TextField(
        "Additional Header Fields",
        blank=True,
        help_text='Optional JSON object of extra header fields, e.g. {"typ": "JWT"}.',
    )
    oauth2_jwt_bearer_scope = models.CharField(
        "JWT Bearer Grant Scope", max_length=1024, blank=True
    )

    # Optimistic locking: an edit must name the version it started from.
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["name"]
        permissions = [
            ("test_connector", "Can run connection tests"),
            ("import_connectors", "Can import and export connectors"),
            # No role has it (see migration 0005): granted one user at a time, on purpose.
            ("export_secrets", "Can export connectors with their secrets"),
        ]
        indexes = [
            models.Index(Lower("display_name"), name="connector_display_name_ci"),
            models.Index(fields=["auth_config", "name"], name="connector_auth_name"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.name

    def get_absolute_url(self) -> str:
        return reverse("connectors:detail", kwargs={"name": self.name})

    @property
    def oauth2_scope(self) -> str:
        """The scope of the chosen grant type (each grant keeps its own field)."""
        field = SCOPE_FIELD_BY_GRANT.get(self.oauth2_grant_type)
        return getattr(self, field) if field else ""

    @classmethod
    def _field(cls, name: str) -> models.Field[Any, Any]:
        """One of the connector's own columns (never a relation from elsewhere)."""
        return cast("models.Field[Any, Any]", cls._meta.get_field(name))

    def auth_fields(self) -> tuple[str, ...]:
        """The fields of this connector's Auth Config that apply to it, in the form's order.

        GROUP_FIELDS less the other grants' fields (GRANT_FIELDS) and the other Api Key
        location's: what the detail page lists, each secret right after the ID it goes with.
        """
        unused: set[str] = set()
        if self.auth_config == AuthConfig.OAUTH2:
            for grant, names in GRANT_FIELDS.items():
                if grant != self.oauth2_grant_type:
                    unused.update(names)
            signs = (
                self.oauth2_grant_type == GrantType.JWT_BEARER
                or self.oauth2_client_authentication == ClientAuthentication.PRIVATE_KEY_JWT
            )
            if not signs:
                unused.update(JWT_ASSERTION_FIELDS)
        elif self.auth_config == AuthConfig.API_KEY:
            for location, names in API_KEY_LOCATION_FIELDS.items():
                if location != self.api_key_location:
                    unused.update(names)
        return tuple(f for f in GROUP_FIELDS.get(self.auth_config, ()) if f not in unused)

    def secret_fields(self) -> tuple[str, ...]:
        return SECRET_FIELDS.get(self.auth_config, ())

    def stored_secrets(self) -> list[tuple[str, bool]]:
        """(label, stored) for each secret of this Auth Config, without exposing a value."""
        return [
            (str(self._field(name).verbose_name), bool(getattr(self, name)))
            for name in self.secret_fields()
        ]


class TokenRequestParam(models.Model):
    """A key/value row sent with the OAuth2 token request, as a header or a body field."""

    class Kind(models.TextChoices):
        HEADER = "header", "Additional Headers"
        DATA = "data", "Additional Request Data"
        # Sent with the browser to the Oauth2 Authorization Url, never to the token URL.
        AUTHORIZE = "authorize", "Additional Authorization Parameters"

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="params")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    position = models.PositiveSmallIntegerField(default=0)
    key = models.CharField(max_length=256)
    # Every value is encrypted at rest; only rows marked sensitive are hidden from pages.
    value = SecretTextField(blank=True)
    sensitive = models.BooleanField(default=False)

    class Meta:
        ordering = ["kind", "position", "id"]
        indexes = [models.Index(fields=["connector", "kind", "position"], name="param_order")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.key}"


class TestRun(audit.models.TestRun):
    """Test runs as the Django admin's Connectors section lists them (/admin/connectors/testrun/).

    The runs themselves are audit history and live in `audit.models.TestRun`; this proxy only
    keeps the admin page where it always was. Code that reads or writes runs uses the audit model.
    """

    __test__ = False

    class Meta:
        proxy = True


# The health, schedule and notification models live in their own module; importing them here
# registers them with the connectors app.
from connectors.fleet_models import ConnectorHealth as ConnectorHealth  # noqa: E402
from connectors.fleet_models import ConnectorSchedule as ConnectorSchedule  # noqa: E402
from connectors.fleet_models import NotificationRule as NotificationRule  # noqa: E402
from connectors.fleet_models import NotificationState as NotificationState  # noqa: E402
from connectors.fleet_models import ScheduleSettings as ScheduleSettings  # noqa: E402
from connectors.fleet_models import SecretExpiryNotice as SecretExpiryNotice  # noqa: E402

# Jwks Auth's console-wide signing keys live in their own module; imported here so Django
# registers them with this app.
from connectors.jwks_models import JwksKey as JwksKey  # noqa: E402
from connectors.jwks_models import JwksSettings as JwksSettings  # noqa: E402

# Batches live in their own module; imported here so Django registers them with this app.
from connectors.models_batch import Batch as Batch  # noqa: E402
from connectors.models_batch import BatchItem as BatchItem  # noqa: E402
