"""Rules for the key/value rows sent with the token request (Additional Headers and Data).

Each row is anything with `cleaned_data`, `add_error` and `has_error`: a row of the form's
formset, or a row of an import file checked by rules.check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from connectors.domain import ParamRow, RowLike, norm_row_key
from connectors.models import ClientAuthentication, TokenRequestParam
from connectors.oauth_http.redaction import key_looks_sensitive
from connectors.rules.connector import (
    FORBIDDEN_VALUE_CHARS_RE,
    HEADER_NAME_MESSAGE,
    HEADER_NAME_RE,
    Checked,
)

MAX_PARAM_ROWS = 20
# Rows beyond this are not even looked at (Django's formset absolute_max).
ABSOLUTE_MAX_PARAM_ROWS = MAX_PARAM_ROWS + 5
MAX_PARAM_KEY_LENGTH = 256
MAX_PARAM_VALUE_LENGTH = 4096

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
# Sent by private_key_jwt client authentication (RFC 7523 §2.2); other methods leave them free.
CLIENT_ASSERTION_KEYS = frozenset({"client_assertion", "client_assertion_type"})
CLIENT_ASSERTION_SIGNED = (
    "With OAuth 2.0 with Private Key JWT the console signs the client assertion itself, with "
    "the Private Key."
)
AUTHORIZATION_NEEDS_REQUEST_BODY = (
    "Client authentication may send its own Authorization header. Set Oauth2 "
    "Client Authentication to OAuth 2.0 with Request Body to send this one."
)

IndexedRows = Sequence[tuple[int, Checked]]


def row_fields() -> dict[str, forms.Field]:
    """The typed fields of one row; the form's rows and import rows are cleaned by these."""
    return {
        "key": forms.CharField(max_length=MAX_PARAM_KEY_LENGTH, required=False, strip=True),
        "value": forms.CharField(
            max_length=MAX_PARAM_VALUE_LENGTH,
            required=False,
            strip=False,
            widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        ),
        "sensitive": forms.BooleanField(required=False),
    }


def row_is_sensitive(key: str, data: dict[str, Any]) -> bool:
    """Ticked, or named like a secret: such a name is always stored as sensitive."""
    return bool(data.get("sensitive")) or key_looks_sensitive(key)


def _stored_by_key(kind: str, stored: Iterable[RowLike]) -> dict[str, RowLike]:
    return {norm_row_key(kind, row.key): row for row in stored}


def rows_clean(
    rows: IndexedRows,
    *,
    kind: str,
    stored: Iterable[RowLike],
    client_authentication: str | None,
) -> None:
    """Each row on its own, then names unique among the rows (header names ignore case)."""
    by_key = _stored_by_key(kind, stored)
    seen: dict[str, int] = {}
    for index, row in rows:
        data = row.cleaned_data
        key, value = data.get("key", ""), data.get("value", "")
        if not key and not value:
            continue
        if not key:
            row.add_error("key", ValidationError("Enter a name for this value.", "required"))
            continue
        _check_name(row, kind, key, client_authentication)
        _check_value(row, key, value, by_key.get(norm_row_key(kind, key)))
        norm = norm_row_key(kind, key)
        if norm in seen:
            row.add_error(
                "key",
                ValidationError(
                    "This name is already used in row %(row)s%(case)s.",
                    code="duplicate",
                    params={
                        "row": seen[norm] + 1,
                        "case": " (header names ignore case)"
                        if kind == TokenRequestParam.Kind.HEADER
                        else "",
                    },
                ),
            )
        seen.setdefault(norm, index)


def _check_name(row: Checked, kind: str, key: str, client_authentication: str | None) -> None:
    if kind == TokenRequestParam.Kind.HEADER:
        if not HEADER_NAME_RE.match(key):
            row.add_error("key", ValidationError(HEADER_NAME_MESSAGE, code="header_name"))
        reason = RESERVED_HEADERS.get(key.lower())
        if (
            key.lower() == "authorization"
            and client_authentication != ClientAuthentication.REQUEST_BODY
        ):
            reason = AUTHORIZATION_NEEDS_REQUEST_BODY
    else:
        if FORBIDDEN_VALUE_CHARS_RE.search(key):
            row.add_error(
                "key", ValidationError("Remove line breaks from the name.", "invalid_chars")
            )
        reason = RESERVED_BODY_KEYS.get(key)
        if (
            key in CLIENT_ASSERTION_KEYS
            and client_authentication == ClientAuthentication.PRIVATE_KEY_JWT
        ):
            reason = CLIENT_ASSERTION_SIGNED
    if reason:
        row.add_error(
            "key",
            ValidationError(
                "The token request sets %(key)s itself. %(reason)s",
                code="reserved",
                params={"key": key, "reason": reason},
            ),
        )


def _check_value(row: Checked, key: str, value: str, stored: RowLike | None) -> None:
    if FORBIDDEN_VALUE_CHARS_RE.search(value):
        row.add_error(
            "value",
            ValidationError(
                "A value cannot contain line breaks (CR, LF) or NUL characters.",
                code="invalid_chars",
            ),
        )
    kept = stored is not None and stored.sensitive
    if value:
        return
    if row_is_sensitive(key, row.cleaned_data) and not kept:
        # A new, renamed or cloned sensitive row has no stored value to keep.
        row.add_error(
            "value",
            ValidationError(
                "Enter the value: there is no stored value for %(key)s to keep.",
                code="required",
                params={"key": key},
            ),
        )
    elif kept and not row_is_sensitive(key, row.cleaned_data):
        row.add_error(
            "value",
            ValidationError(
                "Enter the value again to make this row non-sensitive: a sensitive value is "
                "never shown.",
                code="reveal",
            ),
        )


def rows_refuse_kept_values(
    rows: IndexedRows,
    *,
    kind: str,
    stored: Iterable[RowLike],
    url_label: str = "Oauth2 Token Url",
) -> bool:
    """Refuse rows that would send a stored sensitive value (or its token) to a new server.

    `url_label` names the URL field that moved.
    """
    by_key = _stored_by_key(kind, stored)
    ok = True
    for _index, row in rows:
        key, value = row.cleaned_data.get("key", ""), row.cleaned_data.get("value", "")
        kept = by_key.get(norm_row_key(kind, key))
        if key and not value and kept is not None and kept.sensitive:
            row.add_error(
                "value",
                ValidationError(
                    "Enter the value again: the %(url_label)s now points to another "
                    "server, and a stored value is only ever sent to the server it was "
                    "entered for.",
                    code="secret_destination",
                    params={"url_label": url_label},
                ),
            )
            ok = False
    return ok


def rows_resolved(
    rows: Iterable[dict[str, Any]], *, kind: str, stored: Iterable[RowLike]
) -> list[ParamRow]:
    """The rows to store, in order, with blank sensitive values resolved to stored ones."""
    by_key = _stored_by_key(kind, stored)
    result = []
    for data in rows:
        key, value = data.get("key", ""), data.get("value", "")
        if not key:
            continue
        sensitive = row_is_sensitive(key, data)
        kept = by_key.get(norm_row_key(kind, key))
        if not value and sensitive and kept is not None and kept.sensitive:
            value = kept.value
        result.append(ParamRow(kind=kind, key=key, value=value, sensitive=sensitive))
    return result
