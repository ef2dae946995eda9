"""The connector form: Auth Config with its conditional groups.

The server is the source of truth. Fields that only some choices need are `required=False`
and the rules (connectors.rules) add the "required" error when the choice needs them; the
browser only shows and hides groups. Secrets are never rendered back: a blank secret keeps the
stored value and a "clear" box removes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.functional import cached_property

from connectors import rules
from connectors.domain import (
    CONNECTOR_FIELDS,
    TYPED_SECRET_FIELDS,
    StoredConnector,
    field_default,
)
from connectors.models import Connector
from connectors.oauth_http import assertions, redaction

# The optional OAuth2 fields, shown under a collapsed "Additional info".
OAUTH2_ADDITIONAL_FIELDS = (
    "oauth2_password_scope",
    "oauth2_client_credentials_scope",
    "oauth2_refresh_token_scope",
    "oauth2_authorization_code_scope",
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

STORED_LABEL = "Stored. Leave blank to keep it."
KEPT_LABEL = "Kept from your last submit"
# A secret the rules let stay empty, left empty on a connector that has none stored.
UNSET_NOTE = "Not set — the test will fail if the server needs it."
# The grant types under which the Client Secret may stay empty (a public client).
CLIENT_SECRET_OPTIONAL_WHEN = "auth_config=oauth2 oauth2_grant_type=password|refresh_token"

# Python's flags that JavaScript's RegExp spells with a letter.
_JS_REGEX_FLAGS = {"i": re.IGNORECASE}


class SecretInput(forms.PasswordInput):
    """A password box that never renders a value, even after a failed submit."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        base = {"autocomplete": "new-password", "spellcheck": "false"}
        super().__init__(attrs={**base, **(attrs or {})}, render_value=False)


class SecretTextarea(forms.Textarea):
    """A text area for a multi-line secret (a PEM key) that never renders a value.

    A password box would drop the PEM's line breaks as it is pasted.
    """

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        base = {"rows": 4, "autocomplete": "off", "spellcheck": "false", "class": "font-monospace"}
        super().__init__(attrs={**base, **(attrs or {})})

    def format_value(self, value: Any) -> str | None:
        return None


# Secrets typed on several lines.
MULTILINE_SECRETS = frozenset({"jwt_private_key"})


@dataclass(frozen=True)
class SecretFieldView:
    """What a template draws for a secret: the input, its clear box, whether one is stored.

    `kept`: a value typed in the last (failed) submit is carried to the next one
    (connectors.forms.carry), and `forget` names the box that drops it. `retype` says why a
    value typed before has to be typed again; `unset` warns that a secret the rules let stay
    empty is empty, shown only while `unset_when` holds (a data-cc-show-when condition).
    """

    field: forms.BoundField
    clear: forms.BoundField
    stored: bool
    kept: bool = False
    forget: str = ""
    retype: str = ""
    unset: str = ""
    unset_when: str = ""

    @property
    def note_id(self) -> str:
        return f"{self.field.auto_id}_state"


def sensitive_name_rule() -> dict[str, Any]:
    """The server's rule for names that look secret, for the page's script to apply as typed.

    Read at each render from connectors.oauth_http.redaction, so the browser can never lag
    behind the rule the server stores rows by.
    """
    pattern = redaction.SENSITIVE_KEY_PATTERN
    return {
        "pattern": pattern.pattern,
        "flags": "".join(
            letter for letter, flag in _JS_REGEX_FLAGS.items() if pattern.flags & flag
        ),
        "harmless": sorted(redaction.HARMLESS_KEYS),
    }


class ConnectorForm(forms.ModelForm):
    """Create or edit a connector and its Auth Config."""

    error_messages = rules.ERROR_MESSAGES

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Connector
        fields = list(CONNECTOR_FIELDS)
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "ca_bundle": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
            # No placeholders: an example URL in the box reads as a value already entered.
            "base_url": forms.URLInput(),
            "oauth2_token_url": forms.URLInput(),
            "oauth2_authorization_url": forms.URLInput(),
            "client_secret_expires_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "jwt_extra_claims": forms.Textarea(
                attrs={"rows": 2, "spellcheck": "false", "class": "font-monospace"}
            ),
            "jwt_extra_headers": forms.Textarea(
                attrs={"rows": 2, "spellcheck": "false", "class": "font-monospace"}
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
            "api_key_header_auth_key": "Default: Authorization. Leave as is unless the API "
            "documents another header for the key, such as X-Api-Key.",
            "api_key_header_auth_value_pattern": "Default: Bearer %s, where %s is replaced by the "
            "key. Leave as is unless the API documents another format; just %s sends the bare "
            "key.",
            "api_key_param_name": "Query parameter that carries the key, e.g. api_key. Required "
            "for Param Auth.",
            "api_key": "The API key. Required. Stored encrypted and never shown again.",
            "bearer_token": "A long-lived token sent as Authorization: Bearer <token>. Required. "
            "Stored encrypted and never shown again.",
            "oauth2_grant_type": "How the access token is obtained. Password Grant exchanges a "
            "user name and password for a token; Authorization Code Grant uses the refresh "
            "token an admin obtains with Connect (signing in at the provider).",
            "oauth2_client_id": "The client (application) ID issued by the authorization server. "
            "Required for Password Grant, Client Credentials Grant and Authorization Code Grant.",
            "oauth2_client_secret": "The client secret issued with the Client ID. Required for "
            "Client Credentials Grant; leave blank for a public client (Authorization Code "
            "Grant with PKCE). Stored encrypted.",
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
            "oauth2_authorization_url": "The authorization endpoint the admin's browser is sent "
            "to by Connect, e.g. https://login.example.com/oauth2/authorize. Required for "
            "Authorization Code Grant.",
            "oauth2_authorization_code_scope": "Space-separated scopes to ask for when "
            "connecting, e.g. openid offline_access. Leave blank for the server's default.",
            "oauth2_token_url": "The full URL of the token endpoint, e.g. "
            "https://login.example.com/oauth2/token. Required.",
            "oauth2_client_authentication": "How the Client ID and Client Secret are sent. Leave "
            "blank to try an HTTP Basic header first, then the request body; the connection test "
            "tells you which one the server accepts so you can pin it.",
            "oauth2_header_auth_key": "Default: Authorization, the header that carries the "
            "access token on API requests. Leave as is unless the API documents another header.",
            "oauth2_header_auth_value_pattern": "Default: Bearer %s, where %s is replaced by the "
            "access token. Leave as is unless the API documents another format.",
            "oauth2_custom_grant_type": "A name for a grant flow your platform defines beyond the "
            "grant types above. It is recorded and exported with the connector but does not "
            "change the token request. Leave blank.",
            "oauth2_request_custom_grant_type": "The grant_type value actually sent in the token "
            "request, when a server wants a non-standard one (e.g. password_credentials). The "
            "request keeps the fields of the chosen Oauth2 Grant Type. Leave blank to send the "
            "standard value.",
            "oauth2_response_type": "Format of the token response. Leave as Json unless the "
            "server answers application/x-www-form-urlencoded.",
            "oauth2_access_token_key": "Default: access_token, the key of the token in the "
            "response. Leave as is unless the server puts it elsewhere; a dotted path such as "
            "data.token reaches into nested objects.",
            "oauth2_expires_in_key": "Default: expires_in, the key of the token lifetime in the "
            "response. Leave as is unless the server names it otherwise.",
            "oauth2_expires_in_format": "Seconds: a lifetime such as 3600. Epoch Seconds: an "
            "absolute Unix time. ISO 8601: an absolute timestamp.",
            "oauth2_jwt_bearer_scope": "Space-separated scopes to request. Leave blank to get "
            "the server's default scopes.",
            "jwt_private_key": "PEM private key (RSA, or EC P-256 for ES256) that signs the JWT, "
            "unencrypted; or let this server generate one, which never leaves it. Stored "
            "encrypted and never shown again.",
            "jwt_algorithm": "RS256 or PS256 sign with an RSA key, ES256 with an EC P-256 key.",
            "jwt_issuer": "The iss claim: who signs, usually the client id or service account.",
            "jwt_subject": "The sub claim: whom the token is for (a user or the service "
            "account). Required for JWT Bearer Grant.",
            "jwt_audience": "The aud claim. Leave blank for the Oauth2 Token Url (Jwt Auth and "
            "Jwks Auth: the Base URL).",
            "jwt_ttl_seconds": "How long each signed JWT is valid: at most 7200 seconds (2 "
            "hours). A fresh one is signed for every request.",
            "jwt_key_id": "The kid header: the id under which the provider registered the public "
            "key. Optional.",
            "jwt_extra_claims": 'Optional JSON object of more claims, e.g. {"scope": "read"}. '
            "exp, iat and jti are always the console's own.",
            "jwt_extra_headers": 'Optional JSON object of more header fields, e.g. {"typ": '
            '"JWT"}. alg comes from Signing Algorithm, kid from Key ID (Jwks Auth: both from '
            "the console's current key).",
            "test_request_path": "Optional path under the Base URL that the connection test "
            "requests with the credentials, e.g. /api/v1/me.",
            "ca_bundle": "Optional PEM certificates to trust for this connector's servers (a "
            "private certificate authority). Leave blank to use the system's trusted authorities.",
        }

    def __init__(self, *args: Any, clone_of: Connector | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warnings: list[str] = []
        # Set by the view from connectors.forms.carry before the page is drawn.
        self.carried: set[str] = set()
        self.retype: dict[str, str] = {}
        self.clone_of = clone_of
        self.editing = self.instance.pk is not None
        # What the rules need of the stored connector; the instance is overwritten on clean.
        self.stored = StoredConnector.of(self.instance, rows=()) if self.editing else None
        self.stored_secrets: dict[str, bool] = {}
        for name in TYPED_SECRET_FIELDS:
            field = self.fields[name]
            field.widget = SecretTextarea() if name in MULTILINE_SECRETS else SecretInput()
            stored = self.editing and bool(getattr(self.instance, name))
            self.stored_secrets[name] = stored
            if stored:
                field.widget.attrs["placeholder"] = STORED_LABEL
            self.fields[f"{name}_clear"] = forms.BooleanField(
                label=f"Clear the stored {field.label}", required=False
            )
        # Secrets (blank keeps the stored one) and choices with a default are optional here;
        # the rules fill in or require them depending on the choices.
        for name in rules.OPTIONAL_FIELDS:
            self.fields[name].required = False
        self.fields["jwt_generate_key"] = forms.BooleanField(
            label="Generate a key pair on this server when saving",
            required=False,
            help_text="Instead of pasting a key: RSA 2048 for RS256/PS256, EC P-256 for ES256. "
            "The private key never leaves the server; register the public key shown after "
            "saving.",
        )
        if self.editing:
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "The name cannot change after creation."
            self.fields["version"].initial = self.instance.version
            self.fields["version"].required = True
            self.fields["version"].error_messages["required"] = (
                "This form is incomplete (its version is missing). Reload the page and try again."
            )
        if not self.stored_secrets["jwt_private_key"]:
            self.fields["jwt_private_key"].widget.attrs["placeholder"] = (
                "-----BEGIN PRIVATE KEY-----"
            )
        for switch in (
            "auth_config",
            "oauth2_grant_type",
            "api_key_location",
            "oauth2_client_authentication",
        ):
            self.fields[switch].widget.attrs["data-cc-switch"] = switch

    # Field rules (connectors.rules), run after Django's own check of each field.

    def clean_name(self) -> str:
        return rules.name_clean(self.cleaned_data["name"], stored=self.stored)

    def validate_unique(self) -> None:
        # clean_name already checks the name's uniqueness, case-insensitively (and a stored
        # connector's name cannot change), so the model's exact-match query is left out.
        exclude = {*self._get_validation_exclusions(), "name"}  # type: ignore[attr-defined]
        try:
            self.instance.validate_unique(exclude=exclude)
        except ValidationError as exc:
            self._update_errors(exc)  # type: ignore[attr-defined]

    def _clean_url(self, name: str) -> str:
        value = rules.url_clean(self.cleaned_data.get(name, ""))
        warning = rules.plain_http_warning(value, str(self.fields[name].label))
        if warning:
            self.warnings.append(warning)
        return value

    def clean_base_url(self) -> str:
        return self._clean_url("base_url")

    def clean_oauth2_token_url(self) -> str:
        return self._clean_url("oauth2_token_url")

    def clean_oauth2_authorization_url(self) -> str:
        return self._clean_url("oauth2_authorization_url")

    def clean_test_request_path(self) -> str:
        return rules.request_path_clean(self.cleaned_data.get("test_request_path", ""))

    def clean_ca_bundle(self) -> str:
        return rules.ca_bundle_clean(self.cleaned_data.get("ca_bundle", ""))

    # Choice-dependent rules.

    def clean(self) -> dict[str, Any]:
        super().clean()
        self._generate_key_if_asked()
        rules.connector_clean(self, stored=self.stored)
        return self.cleaned_data

    def _generate_key_if_asked(self) -> None:
        """ "Generate a key pair" on a connector not saved yet: the key is made here, on the
        server, for the chosen algorithm, and goes to the rules like a typed one. It is never
        rendered back; a submit that fails makes a new one next time."""
        cleaned = self.cleaned_data
        if not cleaned.get("jwt_generate_key") or cleaned.get("jwt_private_key"):
            return
        algorithm = cleaned.get("jwt_algorithm") or field_default("jwt_algorithm")
        if algorithm in set(assertions.SigningAlgorithm):
            cleaned["jwt_private_key"] = assertions.generate_private_key_pem(algorithm)
            cleaned["jwt_private_key_clear"] = False

    def token_destination_changed(self) -> bool:
        """Whether the token request would now go to another server than the stored one."""
        new = self.cleaned_data.get("oauth2_token_url", "")
        return rules.token_destination_changed(new, self.stored)

    def rows_destination_moved(self) -> str | None:
        """The URL field that would send stored sensitive rows, or their token, elsewhere."""
        return rules.rows_destination_moved(self.cleaned_data, self.stored)

    def _post_clean(self) -> None:
        # Write every resolved value (including the reset ones) to the instance before
        # model validation, which ModelForm otherwise limits to fields that had input.
        super()._post_clean()  # type: ignore[misc]
        for name in CONNECTOR_FIELDS:
            if name in self.cleaned_data and name != "name":
                setattr(self.instance, name, self.cleaned_data[name])

    @property
    def oauth2_additional_open(self) -> bool:
        """Open "Additional info" when it holds an error or anything but the defaults."""
        for name in OAUTH2_ADDITIONAL_FIELDS:
            if self[name].errors:
                return True
            value = self[name].value()
            if value not in (None, "", field_default(name)):
                return True
        return False

    def show_carry(self, *, kept: set[str], retype: dict[str, str]) -> None:
        """Say at each secret whether a value typed before is kept or must be typed again."""
        self.carried, self.retype = set(kept), dict(retype)
        for name in self.carried:
            self.fields[name].widget.attrs["placeholder"] = KEPT_LABEL

    def _unset_note(self, name: str) -> tuple[str, str]:
        """(note, condition) for a secret that will be saved empty on a new connector."""
        if self.editing or name in self.carried or (self.is_bound and self[name].value()):
            return "", ""
        if self.clone_of is not None and getattr(self.clone_of, name):
            return (
                f"Not copied from {self.clone_of.name}, which has one: enter it again. "
                + UNSET_NOTE,
                "",  # shown with its field: the group of the field decides
            )
        if name == "oauth2_client_secret":
            return UNSET_NOTE, CLIENT_SECRET_OPTIONAL_WHEN
        return "", ""

    @cached_property
    def secret(self) -> dict[str, SecretFieldView]:
        from connectors.forms.carry import RETYPE_MESSAGES, forget_field

        views = {}
        for name in TYPED_SECRET_FIELDS:
            unset, unset_when = self._unset_note(name)
            view = SecretFieldView(
                self[name],
                self[f"{name}_clear"],
                self.stored_secrets[name],
                kept=name in self.carried,
                forget=forget_field(name),
                retype=RETYPE_MESSAGES.get(self.retype.get(name, ""), ""),
                unset=unset,
                unset_when=unset_when,
            )
            if view.kept or view.retype or view.unset:
                described = [view.note_id]
                if self.fields[name].help_text:
                    described.append(f"{view.field.auto_id}_helptext")
                self.fields[name].widget.attrs["aria-describedby"] = " ".join(described)
            views[name] = view
        return views

    @property
    def sensitive_names(self) -> dict[str, Any]:
        """The server's sensitive-name rule, rendered into the page for its script."""
        return sensitive_name_rule()
