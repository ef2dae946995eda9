"""The connector's own rules: field checks and the Auth Config rules that span fields.

They run on cleaned values and report through `add_error` / `has_error`, so the connector
form (a Django form has both), import and the pin action apply the very same rules. Messages
and codes live in ERROR_MESSAGES, as Django's contrib.auth forms keep theirs.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ValidationError

from connectors.domain import (
    DEFAULTED_CHOICES,
    GRANT_FIELDS,
    GROUP_FIELDS,
    JWT_ASSERTION_FIELDS,
    REQUIRED_BY_GRANT,
    SECRET_FIELDS,
    TYPED_SECRET_FIELDS,
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
from connectors.oauth_http import assertions

# RFC 9110 §5.6.2: token = 1*tchar.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
FORBIDDEN_VALUE_CHARS_RE = re.compile(r"[\r\n\x00]")
HEADER_NAME_MESSAGE = "A header name is letters, digits and !#$%&'*+-.^_`|~ only (RFC 9110)."

# Names that would collide with the inventory's own URLs (/connectors/new/, ...).
RESERVED_NAMES = frozenset({"new", "import", "export", "test"})

# Fields a choice may leave blank: secrets (blank keeps the stored one) and defaulted choices.
OPTIONAL_FIELDS: tuple[str, ...] = (*TYPED_SECRET_FIELDS, *DEFAULTED_CHOICES)

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
        "Saved at %(when)s by %(user)s, after you opened this form. Nothing of yours was "
        "saved: compare the changes below, then keep the saved version or save yours over it."
    ),
    "name_taken": "A connector with this name already exists.",
    "jwks_audience": (
        "Enter the Jwt Audience, or a Base URL (a blank audience is the Base URL): an API "
        "refuses a token that is not addressed to it."
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
    elif auth_config == AuthConfig.JWT_AUTH:
        _require(target, ["jwt_private_key", "jwt_issuer"], AuthConfig.JWT_AUTH.label)
        _clean_jwt(target)
    elif auth_config == AuthConfig.JWKS_AUTH:
        _clean_jwks_auth(target)
    _reset_unchosen(cleaned, auth_config)
    _check_api_url_origin(target)
    if stored is not None:
        _check_kept_secret_destinations(target, stored, kept, auth_config)


def _resolve_secrets(cleaned: dict[str, Any], stored: StoredConnector | None) -> set[str]:
    """A blank secret keeps the stored one; the clear box removes it. Returns the kept ones."""
    kept = set()
    for name in TYPED_SECRET_FIELDS:
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
    direct = url_field_of_secret(name, cleaned.get("auth_config") or "")
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
        if name in TYPED_SECRET_FIELDS:
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
    _require_oauth2(target, grant)
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


def _clean_jwks_auth(target: Checked) -> None:
    """Jwks Auth: an issuer, an audience (or a Base URL to default to), and the claim checks
    of Jwt Auth. The key, its algorithm and kid are the console's (connectors.jwks)."""
    cleaned = target.cleaned_data
    _require(target, ["jwt_issuer"], AuthConfig.JWKS_AUTH.label)
    if not (cleaned.get("jwt_audience") or cleaned.get("base_url")) and not target.has_error(
        "base_url"
    ):
        target.add_error(
            "jwt_audience", ValidationError(ERROR_MESSAGES["jwks_audience"], code="required")
        )
    # A key, algorithm or kid typed before switching to Jwks Auth is not the connector's: the
    # console's key set signs, so they are neither checked nor kept.
    for name in ("jwt_private_key", "jwt_algorithm", "jwt_key_id"):
        cleaned[name] = field_default(name)
    _clean_jwt(target)
    name = "jwt_extra_headers"
    if not target.has_error(name):
        headers = assertions.parse_json_object(cleaned.get(name) or "", what=field_label(name))
        if "kid" in headers:
            target.add_error(
                name,
                ValidationError(
                    "Leave kid out: Jwks Auth sends the kid of the console's current key.",
                    code="kid_header",
                ),
            )


def _require_oauth2(target: Checked, grant: str) -> None:
    """What the grant and the client authentication need; the signing fields when they sign.

    A client assertion (private_key_jwt, RFC 7523 §2.2) replaces the shared secret.
    """
    cleaned = target.cleaned_data
    private_key_jwt = (
        cleaned.get("oauth2_client_authentication") == ClientAuthentication.PRIVATE_KEY_JWT
    )
    skip = {"oauth2_client_secret"} if private_key_jwt else set()
    _require(target, [n for n in REQUIRED_BY_GRANT[grant] if n not in skip], GrantType(grant).label)
    if private_key_jwt:
        _require(
            target,
            ["oauth2_client_id", "jwt_private_key"],
            ClientAuthentication.PRIVATE_KEY_JWT.label,
        )
    if private_key_jwt or grant == GrantType.JWT_BEARER:
        _clean_jwt(target)
    else:
        for name in JWT_ASSERTION_FIELDS:
            cleaned[name] = field_default(name)


def _clean_jwt(target: Checked) -> None:
    """The signing key and claims: a key that parses and fits the algorithm, JSON objects.

    The key is checked here, on save, so a test or a request never meets an unusable key; a
    weak key (RSA under 2048 bits) is saved with a warning, as identity providers still take it.
    """
    cleaned = target.cleaned_data
    if cleaned.get("jwt_private_key") and not target.has_error("jwt_private_key"):
        _check_signing_key(target)
    ttl = cleaned.get("jwt_ttl_seconds")
    if isinstance(ttl, int) and not 1 <= ttl <= assertions.MAX_TTL_SECONDS:
        target.add_error(
            "jwt_ttl_seconds",
            ValidationError(
                "Enter between 1 and %(max)s seconds (2 hours).",
                code="ttl_range",
                params={"max": assertions.MAX_TTL_SECONDS},
            ),
        )
    for name in ("jwt_extra_claims", "jwt_extra_headers"):
        _check_json_object(target, name)
    for name in ("jwt_issuer", "jwt_subject", "jwt_audience", "jwt_key_id"):
        if FORBIDDEN_VALUE_CHARS_RE.search(cleaned.get(name) or ""):
            target.add_error(name, ValidationError("Remove line breaks.", code="invalid_chars"))


def _check_signing_key(target: Checked) -> None:
    """The key parses (RSA or EC, unencrypted) and fits the Signing Algorithm; weak is a warning."""
    cleaned = target.cleaned_data
    pem = cleaned["jwt_private_key"]
    algorithm = cleaned.get("jwt_algorithm") or ""
    try:
        key = assertions.load_private_key(pem)
        if algorithm and not target.has_error("jwt_algorithm"):
            assertions.check_key_matches(key, algorithm)
    except assertions.SigningError as error:
        where = "jwt_algorithm" if error.code.startswith("algorithm") else "jwt_private_key"
        target.add_error(where, ValidationError(str(error), code=error.code))
        return
    cleaned["jwt_private_key"] = pem.strip() + "\n"
    facts = assertions.key_facts(key)
    # The form and rules.check's Cleaning both keep a list of warnings; rows have none.
    warnings: list[str] | None = getattr(target, "warnings", None)
    if facts.weak and warnings is not None:
        warnings.append(
            f"{field_label('jwt_private_key')}: this RSA key has {facts.bits} bits; "
            f"keys under {assertions.MIN_RSA_BITS} bits are weak. Generate a new key pair."
        )


def _check_json_object(target: Checked, name: str) -> None:
    """Additional Claims and Header Fields: a JSON object; alg is the Signing Algorithm's."""
    try:
        parsed = assertions.parse_json_object(
            target.cleaned_data.get(name) or "", what=field_label(name)
        )
    except assertions.SigningError as error:
        target.add_error(name, ValidationError(str(error), code=error.code))
        return
    if name == "jwt_extra_headers" and "alg" in parsed:
        target.add_error(
            name,
            ValidationError(
                "Leave alg out: %(label)s sets it.",
                code="alg_header",
                params={"label": field_label("jwt_algorithm")},
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
