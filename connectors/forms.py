"""The connector form: Auth Config with its conditional groups, and the key/value formsets.

The server is the source of truth. Fields that only some choices need are `required=False`
and `clean()` adds the "required" error when the choice needs them; the browser only shows and
hides groups. Secrets are never rendered back: a blank secret keeps the stored value and a
"clear" box removes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.forms import formset_factory
from django.utils.functional import cached_property

from connectors.models import (
    ALL_SECRET_FIELDS,
    GRANT_FIELDS,
    GROUP_FIELDS,
    SECRET_FIELDS,
    ApiKeyLocation,
    AuthConfig,
    ClientAuthentication,
    Connector,
    GrantType,
    TokenRequestParam,
)
from connectors.oauth_http.redaction import key_looks_sensitive

MAX_PARAM_ROWS = 20
MAX_PARAM_KEY_LENGTH = 256
MAX_PARAM_VALUE_LENGTH = 4096

# RFC 9110 §5.6.2: token = 1*tchar.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
FORBIDDEN_VALUE_CHARS_RE = re.compile(r"[\r\n\x00]")

# Headers the token request sets itself. Overriding them would corrupt the request, so they are
# refused rather than accepted with a warning (see README "Additional Headers and Request Data").
RESERVED_HEADERS: dict[str, str] = {
    "content-type": "The token request always sends application/x-www-form-urlencoded.",
    "content-length": "It is computed from the body.",
    "host": "It comes from the Oauth2 Token Url.",
    "transfer-encoding": "It is managed by the HTTP client.",
    "connection": "It is managed by the HTTP client.",
}
# Body fields the token request sets from dedicated fields, which encrypt the secret ones and
# send them the way Oauth2 Client Authentication says.
RESERVED_BODY_KEYS: dict[str, str] = {
    "grant_type": "Choose the Oauth2 Grant Type, or set Oauth2 Custom Oauth Request Options "
    "Custom Grant Type to send a non-standard value.",
    "client_id": "Use the Client ID field.",
    "client_secret": "Use the Client Secret field; it is stored encrypted.",
    "username": "Use the Password Grant Username field.",
    "password": "Use the Password Grant Password field; it is stored encrypted.",
    "refresh_token": "Use the Refresh Token Grant Refresh Token field; it is stored encrypted.",
    "scope": "Use the Scope field of the chosen grant type.",
}

DEFAULTED_CHOICES = (
    "api_key_location",
    "oauth2_grant_type",
    "oauth2_client_authentication",
    "oauth2_response_type",
    "oauth2_expires_in_format",
)

# The optional OAuth2 fields, shown under a collapsed "Additional info".
OAUTH2_ADDITIONAL_FIELDS = (
    "oauth2_password_scope",
    "oauth2_client_credentials_scope",
    "oauth2_refresh_token_scope",
    "oauth2_client_authentication",
    "oauth2_header_auth_key",
    "oauth2_header_auth_value_pattern",
    "oauth2_custom_grant_type",
    "oauth2_request_custom_grant_type",
    "oauth2_response_type",
    "oauth2_access_token_key",
    "oauth2_expires_in_key",
    "oauth2_expires_in_format",
)

# Names that would collide with the inventory's own URLs (/connectors/new/, ...).
RESERVED_NAMES = frozenset({"new", "import", "export", "test"})

STORED_LABEL = "Stored. Leave blank to keep it."


def url_origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of a URL, with default ports filled in; None when unusable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def absolute_http_url_errors(value: str) -> str | None:
    """Why `value` is not an absolute http(s) URL without credentials, or None when it is."""
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port out of range
    except ValueError:
        return "Enter a valid URL."
    del port
    if parts.scheme.lower() not in {"http", "https"}:
        return "Enter an absolute URL that starts with https:// (or http://)."
    if not parts.hostname:
        return "Enter an absolute URL with a host name, e.g. https://login.example.com/token."
    if parts.username is not None or parts.password is not None:
        return (
            "Remove the user name and password from the URL; put credentials in their own "
            "fields, where they are stored encrypted."
        )
    if any(char.isspace() for char in value):
        return "A URL cannot contain spaces."
    return None


class SecretInput(forms.PasswordInput):
    """A password box that never renders a value, even after a failed submit."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        base = {"autocomplete": "new-password", "spellcheck": "false"}
        super().__init__(attrs={**base, **(attrs or {})}, render_value=False)


@dataclass(frozen=True)
class ParamRow:
    """A cleaned key/value row, ready to store."""

    kind: str
    key: str
    value: str
    sensitive: bool


@dataclass(frozen=True)
class SecretFieldView:
    """What a template draws for a secret: the input, its clear box, whether one is stored."""

    field: forms.BoundField
    clear: forms.BoundField
    stored: bool


class ConnectorForm(forms.ModelForm):
    """Create or edit a connector and its Auth Config."""

    error_messages = {
        "required": "This field is required for %(choice)s.",
        "secret_required": "Enter the %(label)s: %(choice)s needs it.",
        "pattern_placeholder": "Use exactly one %%s where the token or key goes, e.g. Bearer %%s.",
        "basic_user_needs_password_grant": (
            "Basic Auth Header set to username and password uses the Password Grant Username "
            "and Password: choose Password Grant, or another client authentication."
        ),
        "token_key": "Use a key such as access_token, or a dotted path such as data.token.",
        "stale": (
            "Someone else saved this connector after you opened it (by %(user)s at %(when)s). "
            "Nothing was saved. Reload the page to see their changes, then make yours again."
        ),
        "name_taken": "A connector with this name already exists.",
        "secret_destination": (
            "Enter the %(label)s again: the %(url_label)s now points to another server "
            "(%(host)s), and a stored secret is only ever sent to the server it was entered for."
        ),
    }

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Connector
        fields = [
            "name",
            "display_name",
            "description",
            "base_url",
            "enabled",
            "owner_team",
            "auth_config",
            *(name for group in GROUP_FIELDS.values() for name in group),
            "test_request_path",
            "ca_bundle",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "ca_bundle": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
            "base_url": forms.URLInput(attrs={"placeholder": "https://api.example.com"}),
            "oauth2_token_url": forms.URLInput(
                attrs={"placeholder": "https://login.example.com/oauth2/token"}
            ),
        }
        help_texts = {
            "display_name": "Name shown to people. Leave blank to show the connector name.",
            "description": "What this connector is for. Optional.",
            "base_url": "Root URL of the API this connector calls, e.g. https://api.example.com.",
            "enabled": "Untick to keep the connector in the inventory without using it.",
            "owner_team": "The team to ask about this connector. Optional.",
            "auth_config": "How requests to this API are authenticated. Only the fields of the "
            "chosen method are kept when you save.",
            "basic_username": "The user name sent with HTTP Basic authentication. Required.",
            "basic_password": "The password sent with HTTP Basic authentication. Required. "
            "Stored encrypted and never shown again.",
            "api_key_location": "Header Auth sends the key in a request header; Param Auth sends "
            "it as a query parameter.",
            "api_key_header_auth_key": "Header that carries the key. Usually Authorization; "
            "some APIs use X-Api-Key.",
            "api_key_header_auth_value_pattern": "How the header value is built: %s is replaced "
            "by the key. Use just %s to send the bare key.",
            "api_key_param_name": "Query parameter that carries the key, e.g. api_key. Required "
            "for Param Auth.",
            "api_key": "The API key. Required. Stored encrypted and never shown again.",
            "bearer_token": "A long-lived token sent as Authorization: Bearer <token>. Required. "
            "Stored encrypted and never shown again.",
            "oauth2_grant_type": "How the access token is obtained. Password Grant exchanges a "
            "user name and password for a token.",
            "oauth2_client_id": "The client (application) ID issued by the authorization server. "
            "Required for Password Grant and Client Credentials Grant.",
            "oauth2_client_secret": "The client secret issued with the Client ID. Required for "
            "Client Credentials Grant; leave blank for a public client. Stored encrypted.",
            "oauth2_username": "The user whose credentials are exchanged for a token. Required "
            "for Password Grant.",
            "oauth2_password": "That user's password. Required for Password Grant. Stored "
            "encrypted and never shown again.",
            "oauth2_password_scope": "Space-separated scopes to request. Leave blank to get the "
            "server's default scopes.",
            "oauth2_client_credentials_scope": "Space-separated scopes to request. Leave blank "
            "to get the server's default scopes.",
            "oauth2_refresh_token": "The refresh token exchanged for access tokens. Required for "
            "Refresh Token Grant. Stored encrypted.",
            "oauth2_refresh_token_scope": "Space-separated scopes to request. Leave blank to keep "
            "the scopes of the original grant.",
            "oauth2_token_url": "The full URL of the token endpoint, e.g. "
            "https://login.example.com/oauth2/token. Required.",
            "oauth2_client_authentication": "How the Client ID and Client Secret are sent. Leave "
            "blank to try an HTTP Basic header first, then the request body; the connection test "
            "tells you which one the server accepts so you can pin it.",
            "oauth2_header_auth_key": "Header that carries the access token on API requests. "
            "Leave blank for Authorization.",
            "oauth2_header_auth_value_pattern": "How that header's value is built: %s is replaced "
            "by the access token. Leave blank for Bearer %s.",
            "oauth2_custom_grant_type": "A name for a grant flow your platform defines beyond the "
            "three above. It is recorded and exported with the connector but does not change the "
            "token request. Leave blank.",
            "oauth2_request_custom_grant_type": "The grant_type value actually sent in the token "
            "request, when a server wants a non-standard one (e.g. password_credentials). The "
            "request keeps the fields of the chosen Oauth2 Grant Type. Leave blank to send the "
            "standard value.",
            "oauth2_response_type": "Format of the token response. Leave as Json unless the "
            "server answers application/x-www-form-urlencoded.",
            "oauth2_access_token_key": "Where the access token is in the response. Leave blank "
            "for access_token; a dotted path such as data.token reaches into nested objects.",
            "oauth2_expires_in_key": "Where the token lifetime is in the response. Leave blank "
            "for expires_in.",
            "oauth2_expires_in_format": "Seconds: a lifetime such as 3600. Epoch Seconds: an "
            "absolute Unix time. ISO 8601: an absolute timestamp.",
            "test_request_path": "Optional path under the Base URL that the connection test "
            "requests with the credentials, e.g. /api/v1/me.",
            "ca_bundle": "Optional PEM certificates to trust for this connector's servers (a "
            "private certificate authority). Leave blank to use the system's trusted authorities.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warnings: list[str] = []
        self.kept_secrets: set[str] = set()
        # Where stored secrets were entered for; the instance itself is overwritten on clean.
        self.stored_urls = {
            name: getattr(self.instance, name) for name in ("oauth2_token_url", "base_url")
        }
        self.editing = self.instance.pk is not None
        self.stored_secrets: dict[str, bool] = {}
        for name in ALL_SECRET_FIELDS:
            field = self.fields[name]
            field.widget = SecretInput()
            field.required = False
            stored = self.editing and bool(getattr(self.instance, name))
            self.stored_secrets[name] = stored
            if stored:
                field.widget.attrs["placeholder"] = STORED_LABEL
            self.fields[f"{name}_clear"] = forms.BooleanField(
                label=f"Clear the stored {field.label}", required=False
            )
        if self.editing:
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "The name cannot change after creation."
            self.fields["version"].initial = self.instance.version
            self.fields["version"].required = True
            self.fields["version"].error_messages["required"] = (
                "This form is incomplete (its version is missing). Reload the page and try again."
            )
        # Choices with a default are filled in by clean() when a group's fields were hidden
        # and so not submitted, or when an import omits them.
        for name in DEFAULTED_CHOICES:
            self.fields[name].required = False
        self.fields["auth_config"].widget.attrs["data-cc-switch"] = "auth_config"
        self.fields["oauth2_grant_type"].widget.attrs["data-cc-switch"] = "oauth2_grant_type"
        self.fields["api_key_location"].widget.attrs["data-cc-switch"] = "api_key_location"

    # Field-level rules.

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if self.editing:
            return self.instance.name
        if name.lower() in RESERVED_NAMES:
            raise ValidationError(
                "This name is reserved for a page of the app; choose another.", code="reserved"
            )
        if Connector.objects.filter(name__iexact=name).exists():
            raise ValidationError(self.error_messages["name_taken"], code="unique")
        return name

    def validate_unique(self) -> None:
        # clean_name already checks the name's uniqueness, case-insensitively (and a stored
        # connector's name cannot change), so the model's exact-match query is left out.
        exclude = {*self._get_validation_exclusions(), "name"}
        try:
            self.instance.validate_unique(exclude=exclude)
        except ValidationError as exc:
            self._update_errors(exc)

    def _clean_url(self, name: str) -> str:
        value = self.cleaned_data.get(name, "").strip()
        if not value:
            return value
        problem = absolute_http_url_errors(value)
        if problem:
            raise ValidationError(problem, code="invalid_url")
        if urlsplit(value).scheme.lower() == "http":
            self.warnings.append(
                f"{self.fields[name].label} uses plain http://: credentials and tokens would "
                "cross the network unencrypted. Use https:// unless this is a lab server."
            )
        return value

    def clean_base_url(self) -> str:
        return self._clean_url("base_url")

    def clean_oauth2_token_url(self) -> str:
        return self._clean_url("oauth2_token_url")

    def clean_test_request_path(self) -> str:
        value = self.cleaned_data.get("test_request_path", "").strip()
        if value and (
            not value.startswith("/")
            or value.startswith("//")
            or "\\" in value
            or "://" in value
            or any(char.isspace() or ord(char) < 32 for char in value)
        ):
            raise ValidationError(
                "Enter a path that starts with /, e.g. /api/v1/me.", code="invalid_path"
            )
        return value

    def clean_ca_bundle(self) -> str:
        value = self.cleaned_data.get("ca_bundle", "").strip()
        if value and "-----BEGIN CERTIFICATE-----" not in value:
            raise ValidationError(
                "Paste one or more PEM certificates (-----BEGIN CERTIFICATE----- ...).",
                code="invalid_pem",
            )
        return value

    # Choice-dependent rules.

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in DEFAULTED_CHOICES:
            if not cleaned.get(name) and not self.has_error(name):
                cleaned[name] = Connector._meta.get_field(name).get_default()
        auth_config = cleaned.get("auth_config") or AuthConfig.NONE
        self._resolve_secrets(cleaned)
        if auth_config == AuthConfig.BASIC:
            self._require(cleaned, ["basic_username", "basic_password"], "Basic Auth")
        elif auth_config == AuthConfig.API_KEY:
            self._clean_api_key(cleaned)
        elif auth_config == AuthConfig.BEARER:
            self._require(cleaned, ["bearer_token"], "Bearer Token Auth")
        elif auth_config == AuthConfig.OAUTH2:
            self._clean_oauth2(cleaned)
        self._reset_unchosen(cleaned, auth_config)
        self._check_kept_secret_destinations(cleaned, auth_config)
        return cleaned

    def _resolve_secrets(self, cleaned: dict[str, Any]) -> None:
        """A blank secret keeps the stored one; the clear box removes it."""
        for name in ALL_SECRET_FIELDS:
            typed = cleaned.get(name) or ""
            if cleaned.get(f"{name}_clear"):
                cleaned[name] = ""
            elif typed:
                cleaned[name] = typed
            else:
                cleaned[name] = getattr(self.instance, name) if self.editing else ""
                if cleaned[name]:
                    self.kept_secrets.add(name)

    def token_destination_changed(self) -> bool:
        """Whether the token request would now go to another server than the stored one."""
        new = self.cleaned_data.get("oauth2_token_url", "")
        return self.editing and url_origin(new) != url_origin(self.stored_urls["oauth2_token_url"])

    def _check_kept_secret_destinations(self, cleaned: dict[str, Any], auth_config: str) -> None:
        """A stored secret is only ever sent to the server it was entered for.

        Otherwise anyone who may edit or test could point the URL at their own server, leave
        the secret blank, and receive it.
        """
        if not self.editing:
            return
        for name in sorted(self.kept_secrets & set(SECRET_FIELDS.get(auth_config, ()))):
            if not cleaned.get(name):
                continue  # a field of another grant type, reset above
            url_field = "oauth2_token_url" if name.startswith("oauth2_") else "base_url"
            new, old = cleaned.get(url_field, ""), self.stored_urls[url_field]
            if url_origin(new) == url_origin(old) or self.has_error(name):
                continue
            self.add_error(
                name,
                ValidationError(
                    self.error_messages["secret_destination"],
                    code="secret_destination",
                    params={
                        "label": self.fields[name].label,
                        "url_label": self.fields[url_field].label,
                        "host": urlsplit(new).hostname or new,
                    },
                ),
            )

    def _require(self, cleaned: dict[str, Any], names: list[str], choice: str) -> None:
        for name in names:
            if cleaned.get(name) or self.has_error(name):
                continue
            if name in ALL_SECRET_FIELDS:
                message = self.error_messages["secret_required"]
                params = {"label": self.fields[name].label, "choice": choice}
            else:
                message = self.error_messages["required"]
                params = {"choice": choice}
            self.add_error(name, ValidationError(message, code="required", params=params))

    def _check_pattern(self, cleaned: dict[str, Any], name: str) -> None:
        pattern = cleaned.get(name) or "Bearer %s"
        cleaned[name] = pattern
        if pattern.count("%s") != 1 or pattern.replace("%s", "").count("%") > 0:
            self.add_error(
                name,
                ValidationError(self.error_messages["pattern_placeholder"], code="pattern"),
            )
        elif FORBIDDEN_VALUE_CHARS_RE.search(pattern):
            self.add_error(name, ValidationError("Remove line breaks.", code="invalid_chars"))

    def _check_header_name(self, cleaned: dict[str, Any], name: str) -> None:
        value = cleaned.get(name) or "Authorization"
        cleaned[name] = value
        if not HEADER_NAME_RE.match(value):
            self.add_error(
                name,
                ValidationError(
                    "A header name is letters, digits and !#$%&'*+-.^_`|~ only (RFC 9110).",
                    code="header_name",
                ),
            )

    def _clean_api_key(self, cleaned: dict[str, Any]) -> None:
        self._require(cleaned, ["api_key"], "Api Key Auth")
        if cleaned.get("api_key_location") == ApiKeyLocation.PARAM:
            self._require(cleaned, ["api_key_param_name"], "Param Auth")
            cleaned["api_key_header_auth_key"] = "Authorization"
            cleaned["api_key_header_auth_value_pattern"] = "Bearer %s"
        else:
            cleaned["api_key_param_name"] = ""
            self._check_header_name(cleaned, "api_key_header_auth_key")
            self._check_pattern(cleaned, "api_key_header_auth_value_pattern")

    def _clean_oauth2(self, cleaned: dict[str, Any]) -> None:
        grant = cleaned.get("oauth2_grant_type") or GrantType.PASSWORD
        grant_label = GrantType(grant).label
        needed = {
            GrantType.PASSWORD: [
                "oauth2_client_id",
                "oauth2_username",
                "oauth2_password",
                "oauth2_token_url",
            ],
            GrantType.CLIENT_CREDENTIALS: [
                "oauth2_client_id",
                "oauth2_client_secret",
                "oauth2_token_url",
            ],
            GrantType.REFRESH_TOKEN: ["oauth2_refresh_token", "oauth2_token_url"],
        }[grant]
        self._require(cleaned, needed, grant_label)
        if (
            cleaned.get("oauth2_client_authentication") == ClientAuthentication.BASIC_USER
            and grant != GrantType.PASSWORD
        ):
            self.add_error(
                "oauth2_client_authentication",
                ValidationError(
                    self.error_messages["basic_user_needs_password_grant"], code="basic_user"
                ),
            )
        self._check_header_name(cleaned, "oauth2_header_auth_key")
        self._check_pattern(cleaned, "oauth2_header_auth_value_pattern")
        token_key = cleaned.get("oauth2_access_token_key") or "access_token"
        cleaned["oauth2_access_token_key"] = token_key
        cleaned["oauth2_expires_in_key"] = cleaned.get("oauth2_expires_in_key") or "expires_in"
        for name in ("oauth2_access_token_key", "oauth2_expires_in_key"):
            if any(part == "" for part in cleaned[name].split(".")):
                self.add_error(name, ValidationError(self.error_messages["token_key"], code="key"))
        for name in ("oauth2_request_custom_grant_type", "oauth2_custom_grant_type"):
            value = cleaned.get(name) or ""
            if FORBIDDEN_VALUE_CHARS_RE.search(value) or any(c.isspace() for c in value):
                self.add_error(
                    name, ValidationError("A grant type cannot contain spaces.", code="spaces")
                )
        for other_grant, fields in GRANT_FIELDS.items():
            if other_grant != grant:
                for name in fields:
                    cleaned[name] = Connector._meta.get_field(name).get_default()

    def _reset_unchosen(self, cleaned: dict[str, Any], auth_config: str) -> None:
        """Values of groups that were not chosen are not stored."""
        for group, fields in GROUP_FIELDS.items():
            if group == auth_config:
                continue
            for name in fields:
                cleaned[name] = Connector._meta.get_field(name).get_default()

    def _post_clean(self) -> None:
        # Write every resolved value (including the reset ones) to the instance before
        # model validation, which ModelForm otherwise limits to fields that had input.
        super()._post_clean()
        for name in self._meta.fields:
            if name in self.cleaned_data and name != "name":
                setattr(self.instance, name, self.cleaned_data[name])

    @property
    def oauth2_additional_open(self) -> bool:
        """Open "Additional info" when it holds an error or anything but the defaults."""
        for name in OAUTH2_ADDITIONAL_FIELDS:
            if self[name].errors:
                return True
            value = self[name].value()
            if value not in (None, "", Connector._meta.get_field(name).get_default()):
                return True
        return False

    @cached_property
    def secret(self) -> dict[str, SecretFieldView]:
        return {
            name: SecretFieldView(self[name], self[f"{name}_clear"], self.stored_secrets[name])
            for name in ALL_SECRET_FIELDS
        }


class ParamForm(forms.Form):
    """One key/value row of Additional Headers or Additional Request Data."""

    key = forms.CharField(max_length=MAX_PARAM_KEY_LENGTH, required=False, strip=True)
    value = forms.CharField(
        max_length=MAX_PARAM_VALUE_LENGTH,
        required=False,
        strip=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    sensitive = forms.BooleanField(required=False)

    def __init__(self, *args: Any, stored_sensitive: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stored_sensitive = stored_sensitive
        if stored_sensitive:
            # Never render a sensitive value back; blank keeps it.
            self.fields["value"].widget = SecretInput(attrs={"placeholder": STORED_LABEL})

    @property
    def hides_value(self) -> bool:
        """Whether the page may not show this row's value: by the same rule the server stores."""
        key = self["key"].value() or ""
        return self.stored_sensitive or row_is_sensitive(
            key, {"sensitive": self["sensitive"].value()}
        )


def shown_rows(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows as a form shows them: a sensitive value is never put back into the page."""
    return [
        {"key": r.key, "value": "" if r.sensitive else r.value, "sensitive": r.sensitive}
        for r in rows
    ]


def row_is_sensitive(key: str, data: dict[str, Any]) -> bool:
    """Ticked, or named like a secret: such a name is always stored as sensitive."""
    return bool(data.get("sensitive")) or key_looks_sensitive(key)


class BaseParamFormSet(forms.BaseFormSet):
    """Ordered key/value rows; `kind` says whether they are headers or body fields."""

    kind: str = TokenRequestParam.Kind.HEADER

    def __init__(
        self,
        *args: Any,
        stored: list[TokenRequestParam] | None = None,
        client_authentication: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.stored = {self._norm(p.key): p for p in (stored or [])}
        self.stored_rows = stored or []
        self.client_authentication = client_authentication
        if "initial" not in kwargs and not args and not kwargs.get("data"):
            kwargs["initial"] = shown_rows(self.stored_rows)
        super().__init__(*args, **kwargs)

    def _norm(self, key: str) -> str:
        return key.lower() if self.kind == TokenRequestParam.Kind.HEADER else key

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        kwargs = super().get_form_kwargs(index)
        stored_sensitive = False
        if index is not None and index < len(self.stored_rows) and not self.is_bound:
            stored_sensitive = self.stored_rows[index].sensitive
        elif index is not None and self.is_bound:
            key = self.data.get(f"{self.add_prefix(index)}-key", "")
            row = self.stored.get(self._norm(key.strip()))
            stored_sensitive = bool(row and row.sensitive) and not self.data.get(
                f"{self.add_prefix(index)}-value"
            )
        kwargs["stored_sensitive"] = stored_sensitive
        return kwargs

    def clean(self) -> None:
        if any(self.errors):
            return
        seen: dict[str, int] = {}
        for index, form in enumerate(self.forms):
            if self.can_delete and self._should_delete_form(form):
                continue
            data = form.cleaned_data
            key, value = data.get("key", ""), data.get("value", "")
            if not key and not value:
                continue
            if not key:
                form.add_error("key", ValidationError("Enter a name for this value.", "required"))
                continue
            self._check_row(form, key, value)
            norm = self._norm(key)
            if norm in seen:
                form.add_error(
                    "key",
                    ValidationError(
                        "This name is already used in row %(row)s%(case)s.",
                        code="duplicate",
                        params={
                            "row": seen[norm] + 1,
                            "case": " (header names ignore case)"
                            if self.kind == TokenRequestParam.Kind.HEADER
                            else "",
                        },
                    ),
                )
            seen.setdefault(norm, index)

    def _check_row(self, form: ParamForm, key: str, value: str) -> None:
        if self.kind == TokenRequestParam.Kind.HEADER:
            if not HEADER_NAME_RE.match(key):
                form.add_error(
                    "key",
                    ValidationError(
                        "A header name is letters, digits and !#$%&'*+-.^_`|~ only (RFC 9110).",
                        code="header_name",
                    ),
                )
            reason = RESERVED_HEADERS.get(key.lower())
            if key.lower() == "authorization" and self.client_authentication != "request_body":
                reason = (
                    "Client authentication may send its own Authorization header. Set Oauth2 "
                    "Client Authentication to OAuth 2.0 with Request Body to send this one."
                )
        else:
            if FORBIDDEN_VALUE_CHARS_RE.search(key):
                form.add_error(
                    "key", ValidationError("Remove line breaks from the name.", "invalid_chars")
                )
            reason = RESERVED_BODY_KEYS.get(key)
        if reason:
            form.add_error(
                "key",
                ValidationError(
                    "The token request sets %(key)s itself. %(reason)s",
                    code="reserved",
                    params={"key": key, "reason": reason},
                ),
            )
        if FORBIDDEN_VALUE_CHARS_RE.search(value):
            form.add_error(
                "value",
                ValidationError(
                    "A value cannot contain line breaks (CR, LF) or NUL characters.",
                    code="invalid_chars",
                ),
            )
        stored = self.stored.get(self._norm(key))
        kept = stored is not None and stored.sensitive
        if value:
            return
        if row_is_sensitive(key, form.cleaned_data) and not kept:
            # A new, renamed or cloned sensitive row has no stored value to keep.
            form.add_error(
                "value",
                ValidationError(
                    "Enter the value: there is no stored value for %(key)s to keep.",
                    code="required",
                    params={"key": key},
                ),
            )
        elif kept and not row_is_sensitive(key, form.cleaned_data):
            form.add_error(
                "value",
                ValidationError(
                    "Enter the value again to make this row non-sensitive: a sensitive value is "
                    "never shown.",
                    code="reveal",
                ),
            )

    def refuse_kept_values(self) -> bool:
        """Refuse rows that would send a stored sensitive value to a new server."""
        ok = True
        for form in self.forms:
            if self.can_delete and self._should_delete_form(form):
                continue
            key, value = form.cleaned_data.get("key", ""), form.cleaned_data.get("value", "")
            stored = self.stored.get(self._norm(key))
            if key and not value and stored is not None and stored.sensitive:
                form.add_error(
                    "value",
                    ValidationError(
                        "Enter the value again: the Oauth2 Token Url now points to another "
                        "server, and a stored value is only ever sent to the server it was "
                        "entered for.",
                        code="secret_destination",
                    ),
                )
                ok = False
        return ok

    def rows(self) -> list[ParamRow]:
        """The rows to store, in order, with blank sensitive values resolved to stored ones."""
        result = []
        for form in self.forms:
            if self.can_delete and self._should_delete_form(form):
                continue
            data = form.cleaned_data
            key, value = data.get("key", ""), data.get("value", "")
            if not key:
                continue
            sensitive = row_is_sensitive(key, data)
            stored = self.stored.get(self._norm(key))
            if not value and sensitive and stored is not None and stored.sensitive:
                value = stored.value
            result.append(ParamRow(kind=self.kind, key=key, value=value, sensitive=sensitive))
        return result


def _param_formset(kind: str, prefix: str) -> type[BaseParamFormSet]:
    formset = formset_factory(
        ParamForm,
        formset=BaseParamFormSet,
        extra=1,
        can_delete=True,
        max_num=MAX_PARAM_ROWS,
        validate_max=True,
        absolute_max=MAX_PARAM_ROWS + 5,
    )
    formset.kind = kind
    formset.prefix_name = prefix
    return formset


HeaderFormSet = _param_formset(TokenRequestParam.Kind.HEADER, "headers")
DataFormSet = _param_formset(TokenRequestParam.Kind.DATA, "data")


@dataclass
class ConnectorForms:
    """The connector form and its two formsets, validated together."""

    form: ConnectorForm
    headers: BaseParamFormSet
    data: BaseParamFormSet

    def is_valid(self) -> bool:
        form_ok = self.form.is_valid()
        if self.form.cleaned_data.get("auth_config") != AuthConfig.OAUTH2:
            return form_ok  # rows are dropped for other Auth Configs, so their errors don't count
        rows_ok = all([self.headers.is_valid(), self.data.is_valid()])
        if rows_ok and self.form.token_destination_changed():
            rows_ok = self.headers.refuse_kept_values() & self.data.refuse_kept_values()
        return form_ok and rows_ok

    def rows(self) -> list[ParamRow]:
        if self.form.cleaned_data.get("auth_config") != AuthConfig.OAUTH2:
            return []
        return self.headers.rows() + self.data.rows()

    @property
    def warnings(self) -> list[str]:
        return self.form.warnings

    def error_list(self, *, json_keys: bool = False) -> list[tuple[str, str]]:
        """Every error as (where, message); rows are named as in the page or the JSON file."""
        errors = [
            (str(self.form.fields[name].label) if name in self.form.fields else "connector", msg)
            for name, messages in self.form.errors.items()
            for msg in messages
        ]
        for formset, label, json_key in (
            (self.headers, "Additional Headers", "additional_headers"),
            (self.data, "Additional Request Data", "additional_request_data"),
        ):
            errors += [(json_key if json_keys else label, msg) for msg in formset.non_form_errors()]
            for index, row_errors in enumerate(formset.errors):
                for name, messages in row_errors.items():
                    where = (
                        f"{json_key}[{index}].{name}" if json_keys else f"{label} row {index + 1}"
                    )
                    errors += [(where, msg) for msg in messages]
        return errors


def connector_forms(
    *,
    data: Any = None,
    instance: Connector | None = None,
    initial: dict[str, Any] | None = None,
    initial_rows: list[TokenRequestParam] | None = None,
) -> ConnectorForms:
    """Build the form and formsets for a new or stored connector, bound to `data` if given."""
    instance = instance if instance is not None else Connector()
    stored = list(instance.params.all()) if instance.pk else []
    client_auth = None
    if data is not None:
        client_auth = data.get("oauth2_client_authentication", "")
    form = ConnectorForm(data=data, instance=instance, initial=initial)
    formsets = []
    for formset_class in (HeaderFormSet, DataFormSet):
        rows = [row for row in (stored or initial_rows or []) if row.kind == formset_class.kind]
        kwargs: dict[str, Any] = {
            "prefix": formset_class.prefix_name,
            "client_authentication": client_auth,
        }
        if instance.pk:
            kwargs["stored"] = rows
        elif initial_rows is not None:
            kwargs["initial"] = shown_rows(rows)
        formsets.append(
            formset_class(data, **kwargs) if data is not None else formset_class(**kwargs)
        )
    return ConnectorForms(form=form, headers=formsets[0], data=formsets[1])


__all__ = [
    "ConnectorForm",
    "ConnectorForms",
    "DataFormSet",
    "HeaderFormSet",
    "ParamRow",
    "absolute_http_url_errors",
    "connector_forms",
]
