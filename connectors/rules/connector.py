"""The connector's own rules: field checks and the Auth Config rules that span fields.

They run on cleaned values and report through `add_error` / `has_error`, so the connector
form (a Django form has both), import and the pin action apply the very same rules. Messages
and codes live in ERROR_MESSAGES, as Django's contrib.auth forms keep theirs.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ValidationError

from connectors.domain import (
    ALL_SECRET_FIELDS,
    DEFAULTED_CHOICES,
    GRANT_FIELDS,
    GROUP_FIELDS,
    REQUIRED_BY_GRANT,
    SECRET_FIELDS,
    StoredConnector,
    api_url_join,
    field_default,
    field_label,
    url_field_of_secret,
    url_origin,
)
from connectors.models import (
    DEFAULT_HEADER_AUTH_KEY,
    DEFAULT_HEADER_AUTH_VALUE_PATTERN,
    ApiKeyLocation,
    AuthConfig,
    ClientAuthentication,
    Connector,
    GrantType,
)

# RFC 9110 §5.6.2: token = 1*tchar.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
FORBIDDEN_VALUE_CHARS_RE = re.compile(r"[\r\n\x00]")
HEADER_NAME_MESSAGE = "A header name is letters, digits and !#$%&'*+-.^_`|~ only (RFC 9110)."

# Names that would collide with the inventory's own URLs (/connectors/new/, ...).
RESERVED_NAMES = frozenset({"new", "import", "export", "test"})

# Fields a choice may leave blank: secrets (blank keeps the stored one) and defaulted choices.
OPTIONAL_FIELDS: tuple[str, ...] = (*ALL_SECRET_FIELDS, *DEFAULTED_CHOICES)

ERROR_MESSAGES: dict[str, str] = {
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
    "jwks_audience": (
        "Enter the Jwt Audience, or a Base URL (a blank audience is the Base URL): an API "
        "refuses a token that is not addressed to it."
    ),
    "jwt_json": "%(label)s must be a JSON object, e.g. %(example)s.",
    "jwt_reserved": (
        "Remove %(names)s: the console sets %(what)s itself for every token it signs."
    ),
    "secret_destination": (
        "Enter the %(label)s again: the %(url_label)s now points to another server "
        "(%(host)s), and a stored secret is only ever sent to the server it was entered for."
    ),
}


class Checked(Protocol):
    """What the rules write to: a Django form, or rules.check's form-free twin."""

    cleaned_data: dict[str, Any]

    def add_error(self, field: str | None, error: ValidationError) -> None: ...

    def has_error(self, field: str, code: str | None = None) -> bool: ...


# Field rules: each takes the field's cleaned value and returns it or raises.


def name_clean(name: str, *, stored: StoredConnector | None) -> str:
    """A new name is not a page of the app and not taken (ignoring case); a stored one stays."""
    if stored is not None:
        return stored.name
    if name.lower() in RESERVED_NAMES:
        raise ValidationError(
            "This name is reserved for a page of the app; choose another.", code="reserved"
        )
    if Connector.objects.filter(name__iexact=name).exists():
        raise ValidationError(ERROR_MESSAGES["name_taken"], code="unique")
    return name


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


def url_clean(value: str) -> str:
    """An absolute http(s) URL without credentials, or blank."""
    value = value.strip()
    if value:
        problem = absolute_http_url_errors(value)
        if problem:
            raise ValidationError(problem, code="invalid_url")
    return value


def plain_http_warning(value: str, label: str) -> str | None:
    """The warning for a URL that would carry credentials unencrypted, if it does."""
    if value and urlsplit(value).scheme.lower() == "http":
        return (
            f"{label} uses plain http://: credentials and tokens would cross the network "
            "unencrypted. Use https:// unless this is a lab server."
        )
    return None


# How often a path is percent-decoded when looking for a hidden escape: servers, proxies and
# frameworks may each decode once.
_PATH_DECODE_ROUNDS = 3
PATH_MESSAGE = "Enter a path that starts with /, e.g. /api/v1/me."
PATH_ESCAPE_MESSAGE = (
    "The Test request path must stay under the Base URL: remove %(what)s. Encoded forms "
    "(%%2F%%2F, %%5C, %%3A%%2F%%2F) count too."
)


def _path_readings(value: str) -> list[str]:
    """The path as typed, percent-decoded up to three times, and each of those NFKC-normalised.

    NFKC turns look-alikes such as the fullwidth solidus into the characters they resemble, as
    some servers and proxies do.
    """
    readings = [value]
    for _ in range(_PATH_DECODE_ROUNDS):
        decoded = unquote(readings[-1])
        if decoded == readings[-1]:
            break
        readings.append(decoded)
    return readings + [unicodedata.normalize("NFKC", reading) for reading in readings]


def _path_escape(reading: str) -> str | None:
    """What in one reading of the path could name another server, or None."""
    if reading.startswith("//"):
        return "the second slash at the start (//host names another server)"
    if "\\" in reading:
        return "the backslash (some servers read it as /)"
    if "://" in reading:
        return "the scheme (an absolute URL names another server)"
    if any(unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co", "Cn"} for char in reading):
        return "the control or invisible characters"
    return None


def request_path_clean(value: str) -> str:
    """A path under the Base URL: one slash first, nothing that could name another server."""
    value = value.strip()
    if not value:
        return value
    if not value.startswith("/") or any(char.isspace() for char in value):
        raise ValidationError(PATH_MESSAGE, code="invalid_path")
    for reading in _path_readings(value):
        what = _path_escape(reading)
        if what:
            raise ValidationError(PATH_ESCAPE_MESSAGE, code="invalid_path", params={"what": what})
    return value


def _check_api_url_origin(target: Checked) -> None:
    """Base URL plus Test request path is requested on the Base URL's own server, always."""
    cleaned = target.cleaned_data
    base, path = cleaned.get("base_url") or "", cleaned.get("test_request_path") or ""
    if not base or not path or target.has_error("test_request_path"):
        return
    if url_origin(api_url_join(base, path)) != url_origin(base):
        target.add_error(
            "test_request_path",
            ValidationError(
                PATH_ESCAPE_MESSAGE,
                code="invalid_path",
                params={"what": "what makes it leave the Base URL's server"},
            ),
        )


def ca_bundle_clean(value: str) -> str:
    """PEM certificates, or blank."""
    value = value.strip()
    if value and "-----BEGIN CERTIFICATE-----" not in value:
        raise ValidationError(
            "Paste one or more PEM certificates (-----BEGIN CERTIFICATE----- ...).",
            code="invalid_pem",
        )
    return value


# Choice-dependent rules.


def connector_clean(target: Checked, *, stored: StoredConnector | None) -> None:
    """Fill defaults, require what the chosen Auth Config needs, and drop what it does not."""
    cleaned = target.cleaned_data
    for name in DEFAULTED_CHOICES:
        if not cleaned.get(name) and not target.has_error(name):
            cleaned[name] = field_default(name)
    auth_config = cleaned.get("auth_config") or AuthConfig.NONE
    kept = _resolve_secrets(cleaned, stored)
    if auth_config == AuthConfig.BASIC:
        _require(target, ["basic_username", "basic_password"], AuthConfig.BASIC.label)
    elif auth_config == AuthConfig.API_KEY:
        _clean_api_key(target)
    elif auth_config == AuthConfig.BEARER:
        _require(target, ["bearer_token"], AuthConfig.BEARER.label)
    elif auth_config == AuthConfig.OAUTH2:
        _clean_oauth2(target)
    elif auth_config == AuthConfig.JWKS_AUTH:
        _clean_jwks_auth(target)
    _reset_unchosen(cleaned, auth_config)
    _check_api_url_origin(target)
    if stored is not None:
        _check_kept_secret_destinations(target, stored, kept, auth_config)


def _resolve_secrets(cleaned: dict[str, Any], stored: StoredConnector | None) -> set[str]:
    """A blank secret keeps the stored one; the clear box removes it. Returns the kept ones."""
    kept = set()
    for name in ALL_SECRET_FIELDS:
        typed = cleaned.get(name) or ""
        if cleaned.get(f"{name}_clear"):
            cleaned[name] = ""
        elif typed:
            cleaned[name] = typed
        else:
            cleaned[name] = stored.secrets[name] if stored is not None else ""
            if cleaned[name]:
                kept.add(name)
    return kept


def token_destination_changed(new_url: str, stored: StoredConnector | None) -> bool:
    """Whether the token request would now go to another server than the stored one."""
    return stored is not None and url_origin(new_url) != url_origin(stored.urls["oauth2_token_url"])


def api_destination_changed(new_url: str, stored: StoredConnector | None) -> bool:
    """Whether the API request, and so an OAuth2 access token, would now go to another server.

    A blank Base URL sends nothing, so clearing it moves nothing.
    """
    return (
        stored is not None
        and bool(new_url.strip())
        and url_origin(new_url) != url_origin(stored.urls["base_url"])
    )


def secret_destination_moved(
    name: str, cleaned: dict[str, Any], stored: StoredConnector | None
) -> str | None:
    """The URL field that now sends the stored secret `name`, or what it obtains, elsewhere.

    Basic, Api Key and Bearer secrets go to the Base URL. OAuth2 secrets go to the token URL,
    and the access token they obtain goes to the Base URL (plus the Test request path): moving
    either one to another server would deliver a fresh token there.
    """
    direct = url_field_of_secret(name)
    new_direct = cleaned.get(direct, "") or ""
    if stored is not None and url_origin(new_direct) != url_origin(stored.urls[direct]):
        return direct
    if direct == "oauth2_token_url" and api_destination_changed(
        cleaned.get("base_url", "") or "", stored
    ):
        return "base_url"
    return None


def _check_kept_secret_destinations(
    target: Checked, stored: StoredConnector, kept: set[str], auth_config: str
) -> None:
    """A stored secret is only ever sent to the server it was entered for.

    Otherwise anyone who may edit or test could point the URL at their own server, leave
    the secret blank, and receive it (or, for OAuth2, the token it obtains).
    """
    cleaned = target.cleaned_data
    for name in sorted(kept & set(SECRET_FIELDS.get(auth_config, ()))):
        if not cleaned.get(name):
            continue  # a field of another grant type, reset above
        url_field = secret_destination_moved(name, cleaned, stored)
        if url_field is None or target.has_error(name):
            continue
        new = cleaned.get(url_field, "") or ""
        target.add_error(
            name,
            ValidationError(
                ERROR_MESSAGES["secret_destination"],
                code="secret_destination",
                params={
                    "label": field_label(name),
                    "url_label": field_label(url_field),
                    "host": urlsplit(new).hostname or new,
                },
            ),
        )


def rows_destination_moved(cleaned: dict[str, Any], stored: StoredConnector | None) -> str | None:
    """The URL field that would send the stored sensitive rows, or their token, elsewhere."""
    if token_destination_changed(cleaned.get("oauth2_token_url", "") or "", stored):
        return "oauth2_token_url"
    if api_destination_changed(cleaned.get("base_url", "") or "", stored):
        return "base_url"
    return None


def _require(target: Checked, names: list[str] | tuple[str, ...], choice: str) -> None:
    for name in names:
        if target.cleaned_data.get(name) or target.has_error(name):
            continue
        if name in ALL_SECRET_FIELDS:
            message = ERROR_MESSAGES["secret_required"]
            params = {"label": field_label(name), "choice": choice}
        else:
            message = ERROR_MESSAGES["required"]
            params = {"choice": choice}
        target.add_error(name, ValidationError(message, code="required", params=params))


def _check_pattern(target: Checked, name: str) -> None:
    pattern = target.cleaned_data.get(name) or DEFAULT_HEADER_AUTH_VALUE_PATTERN
    target.cleaned_data[name] = pattern
    if pattern.count("%s") != 1 or pattern.replace("%s", "").count("%") > 0:
        target.add_error(
            name, ValidationError(ERROR_MESSAGES["pattern_placeholder"], code="pattern")
        )
    elif FORBIDDEN_VALUE_CHARS_RE.search(pattern):
        target.add_error(name, ValidationError("Remove line breaks.", code="invalid_chars"))


def _check_header_name(target: Checked, name: str) -> None:
    value = target.cleaned_data.get(name) or DEFAULT_HEADER_AUTH_KEY
    target.cleaned_data[name] = value
    if not HEADER_NAME_RE.match(value):
        target.add_error(name, ValidationError(HEADER_NAME_MESSAGE, code="header_name"))


def _clean_api_key(target: Checked) -> None:
    cleaned = target.cleaned_data
    _require(target, ["api_key"], AuthConfig.API_KEY.label)
    if cleaned.get("api_key_location") == ApiKeyLocation.PARAM:
        _require(target, ["api_key_param_name"], ApiKeyLocation.PARAM.label)
        cleaned["api_key_header_auth_key"] = DEFAULT_HEADER_AUTH_KEY
        cleaned["api_key_header_auth_value_pattern"] = DEFAULT_HEADER_AUTH_VALUE_PATTERN
    else:
        cleaned["api_key_param_name"] = ""
        _check_header_name(target, "api_key_header_auth_key")
        _check_pattern(target, "api_key_header_auth_value_pattern")


def _clean_oauth2(target: Checked) -> None:
    cleaned = target.cleaned_data
    grant = cleaned.get("oauth2_grant_type") or GrantType.PASSWORD
    _require(target, REQUIRED_BY_GRANT[grant], GrantType(grant).label)
    if (
        cleaned.get("oauth2_client_authentication") == ClientAuthentication.BASIC_USER
        and grant != GrantType.PASSWORD
    ):
        target.add_error(
            "oauth2_client_authentication",
            ValidationError(ERROR_MESSAGES["basic_user_needs_password_grant"], code="basic_user"),
        )
    _check_header_name(target, "oauth2_header_auth_key")
    _check_pattern(target, "oauth2_header_auth_value_pattern")
    _check_response_keys(target)
    for name in ("oauth2_request_custom_grant_type", "oauth2_custom_grant_type"):
        value = cleaned.get(name) or ""
        if FORBIDDEN_VALUE_CHARS_RE.search(value) or any(c.isspace() for c in value):
            target.add_error(
                name, ValidationError("A grant type cannot contain spaces.", code="spaces")
            )
    for other_grant, fields in GRANT_FIELDS.items():
        if other_grant != grant:
            for name in fields:
                cleaned[name] = field_default(name)


# What Jwks Auth sets in every token, and so refuses in the extra fields: the key's kid and
# alg, and the claims that keep each token short-lived and unique.
JWKS_RESERVED_HEADERS = frozenset({"alg", "kid"})
JWKS_RESERVED_CLAIMS = frozenset({"exp", "iat", "jti"})


def _clean_jwks_auth(target: Checked) -> None:
    """Jwks Auth: an issuer, an audience (or a Base URL to default to), JSON objects."""
    cleaned = target.cleaned_data
    _require(target, ["jwt_issuer"], AuthConfig.JWKS_AUTH.label)
    if not (cleaned.get("jwt_audience") or cleaned.get("base_url")) and not target.has_error(
        "base_url"
    ):
        target.add_error(
            "jwt_audience", ValidationError(ERROR_MESSAGES["jwks_audience"], code="required")
        )
    for name, example, reserved, what in (
        ("jwt_extra_claims", '{"scope": "read"}', JWKS_RESERVED_CLAIMS, "exp, iat and jti"),
        ("jwt_extra_headers", '{"typ": "JWT"}', JWKS_RESERVED_HEADERS, "kid and alg"),
    ):
        _check_jwt_object(target, name, example=example, reserved=reserved, what=what)


def _check_jwt_object(
    target: Checked, name: str, *, example: str, reserved: frozenset[str], what: str
) -> None:
    """A blank value or one JSON object, without the names the console sets itself."""
    text = (target.cleaned_data.get(name) or "").strip()
    target.cleaned_data[name] = text
    if not text or target.has_error(name):
        return
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        params = {"label": field_label(name), "example": example}
        target.add_error(
            name, ValidationError(ERROR_MESSAGES["jwt_json"], code="json", params=params)
        )
        return
    clash = sorted(reserved & set(value))
    if clash:
        target.add_error(
            name,
            ValidationError(
                ERROR_MESSAGES["jwt_reserved"],
                code="reserved",
                params={"names": ", ".join(clash), "what": what},
            ),
        )


def _check_response_keys(target: Checked) -> None:
    """Where the token and its lifetime are in the response: a key or a dotted path."""
    cleaned = target.cleaned_data
    cleaned["oauth2_access_token_key"] = cleaned.get("oauth2_access_token_key") or "access_token"
    cleaned["oauth2_expires_in_key"] = cleaned.get("oauth2_expires_in_key") or "expires_in"
    for name in ("oauth2_access_token_key", "oauth2_expires_in_key"):
        if any(part == "" for part in cleaned[name].split(".")):
            target.add_error(name, ValidationError(ERROR_MESSAGES["token_key"], code="key"))


def _reset_unchosen(cleaned: dict[str, Any], auth_config: str) -> None:
    """Values of groups that were not chosen are not stored (a field the chosen group shares,
    such as the signing key, stays)."""
    chosen = set(GROUP_FIELDS.get(auth_config, ()))
    for group, fields in GROUP_FIELDS.items():
        if group == auth_config:
            continue
        for name in fields:
            if name not in chosen:
                cleaned[name] = field_default(name)
