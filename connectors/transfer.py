"""Import and export of connectors as JSON (the shape is documented in the README)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models.functions import Lower

from audit.services import audit_record
from connectors.domain import (
    ALL_SECRET_FIELDS,
    CONNECTOR_FIELDS,
    SCOPE_FIELD_BY_GRANT,
    StoredConnector,
    field_default,
)
from connectors.models import AuthConfig, Connector, TokenRequestParam
from connectors.oauth_http.redaction import key_looks_sensitive
from connectors.rules import ConnectorCheck, connector_check
from connectors.services import (
    ConcurrentEditError,
    UserLike,
    acting_user,
    connector_create,
    connector_update,
)

# JSON key -> model field, per Auth Config block.
BLOCKS: dict[str, dict[str, str]] = {
    "oauth2": {
        "grant_type": "oauth2_grant_type",
        "client_id": "oauth2_client_id",
        "client_secret": "oauth2_client_secret",
        "username": "oauth2_username",
        "password": "oauth2_password",
        # "scope" maps to the scope field of the chosen grant type; see _scope_field.
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
}
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
TOP_LEVEL = ("name", "display_name", "description", "base_url", "enabled")
# Fields this product has beyond the documented shape; exported and imported when present.
EXTRA_TOP_LEVEL = ("owner_team", "test_request_path", "ca_bundle", "client_secret_expires_on")
PARAM_LISTS: dict[str, str] = {
    "additional_headers": TokenRequestParam.Kind.HEADER,
    "additional_request_data": TokenRequestParam.Kind.DATA,
}
# What every block's fields hold before a file's values are applied.
BLOCK_DEFAULTS: dict[str, Any] = {
    name: field_default(name) for fields in BLOCKS.values() for name in fields.values()
}


@dataclass
class ImportError_:
    connector: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.connector}: {self.field}: {self.message}"


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[ImportError_] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportFileError(ValueError):
    """The file is not JSON of the documented shape."""


def connector_export_dict(connector: Connector, *, include_secrets: bool) -> dict[str, Any]:
    """One connector in the documented shape, every block present; secrets empty unless asked.

    The blocks of Auth Configs that were not chosen hold their defaults (the form stores
    nothing else there), so every connector has the same keys.
    """
    data: dict[str, Any] = {key: getattr(connector, key) for key in TOP_LEVEL}
    data["auth_config"] = connector.auth_config
    for block_name, fields in BLOCKS.items():
        block: dict[str, Any] = {}
        for key, model_field in fields.items():
            value = getattr(connector, model_field)
            if key in SECRET_KEYS[block_name] and not include_secrets:
                value = ""
            block[key] = value
        data[block_name] = block
    oauth2 = data["oauth2"]
    oauth2["scope"] = connector.oauth2_scope
    params = list(connector.params.all())
    for list_key, kind in PARAM_LISTS.items():
        oauth2[list_key] = [
            {
                "key": p.key,
                "value": "" if p.sensitive and not include_secrets else p.value,
                "sensitive": p.sensitive,
            }
            for p in params
            if p.kind == kind
        ]
    # Key order as documented; this product's extra fields come last.
    data["oauth2"] = {key: oauth2[key] for key in DOCUMENTED_OAUTH2_ORDER}
    data.update({key: getattr(connector, key) for key in EXTRA_TOP_LEVEL})
    # A date is written as YYYY-MM-DD (or null), which import reads back.
    expires_on = connector.client_secret_expires_on
    data["client_secret_expires_on"] = expires_on.isoformat() if expires_on else None
    return data


def connectors_export(*, include_secrets: bool, user: UserLike = None) -> dict[str, Any]:
    """Every connector in the documented JSON shape, recorded in the audit log."""
    connectors = Connector.objects.prefetch_related("params").order_by("name")
    payload = {
        "connectors": [
            connector_export_dict(c, include_secrets=include_secrets) for c in connectors
        ]
    }
    audit_record(
        kind="change",
        action="export",
        user=acting_user(user),
        summary=f"Exported {len(payload['connectors'])} connectors"
        + (" with secrets" if include_secrets else ""),
        details={"count": len(payload["connectors"]), "include_secrets": include_secrets},
    )
    return payload


def _entry_values(entry: dict[str, Any], existing: Connector | None) -> dict[str, Any]:
    """One JSON connector as field values (keyed by model field name) for the rules."""
    values: dict[str, Any] = {}
    for key in TOP_LEVEL + EXTRA_TOP_LEVEL:
        if key == "enabled":
            values["enabled"] = bool(entry.get("enabled", True))
        elif key in entry:
            values[key] = "" if entry[key] is None else str(entry[key])
        elif existing is not None:
            values[key] = getattr(existing, key)
    # An update that leaves auth_config out keeps the connector's; a new one takes the default.
    default_auth = existing.auth_config if existing is not None else AuthConfig.NONE
    auth_config = entry.get("auth_config", default_auth)
    values["auth_config"] = str(auth_config)
    # Every block starts from its defaults, so a file names only what it sets.
    values.update(BLOCK_DEFAULTS)
    if auth_config in BLOCKS:
        block = _block(entry, auth_config)
        for key, model_field in BLOCKS[auth_config].items():
            if key in block and block[key] is not None:
                values[model_field] = str(block[key])
        if auth_config == "oauth2":
            grant = str(block.get("grant_type", "password"))
            scope_field = SCOPE_FIELD_BY_GRANT.get(grant)
            if scope_field and block.get("scope"):
                values[scope_field] = str(block["scope"])
    return values


def _block(entry: dict[str, Any], auth_config: str) -> dict[str, Any]:
    block = entry.get(auth_config)
    return block if isinstance(block, dict) else {}


def _entry_rows(entry: dict[str, Any], auth_config: str) -> dict[str, list[dict[str, Any]]]:
    """The token request rows of one JSON connector, by kind (only Oauth2 has any)."""
    block = _block(entry, auth_config) if auth_config == "oauth2" else {}
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for list_key, kind in PARAM_LISTS.items():
        rows = block.get(list_key, [])
        if not isinstance(rows, list):
            raise ImportFileError(f"{entry.get('name', '?')}: {list_key} must be a list")
        if not all(isinstance(row, dict) for row in rows):
            raise ImportFileError(f"{entry.get('name', '?')}: {list_key} rows must be objects")
        by_kind[kind] = [
            {
                "key": str(row.get("key", "")),
                "value": str(row.get("value", "")),
                # Omitted "sensitive" follows the key's look, as the form's checkbox does.
                "sensitive": bool(
                    row.get("sensitive", key_looks_sensitive(str(row.get("key", ""))))
                ),
            }
            for row in rows
        ]
    return by_kind


def _entry_check(entry: dict[str, Any], existing: Connector | None) -> ConnectorCheck:
    """Check one JSON connector with the connector rules; raises ImportFileError if malformed."""
    values = _entry_values(entry, existing)
    rows = _entry_rows(entry, values["auth_config"])
    return connector_check(
        values=values,
        rows=rows,
        instance=existing,
        stored=StoredConnector.of(existing) if existing is not None else None,
    )


def connectors_import(*, payload: Any, user: UserLike) -> ImportResult:
    """Validate every connector with the form's rules, then apply all of them or none."""
    if not isinstance(payload, dict) or not isinstance(payload.get("connectors"), list):
        raise ImportFileError('The file must be a JSON object with a "connectors" list.')
    result = ImportResult()
    checks = _entries_check(payload["connectors"], result)
    if result.errors:
        return result
    try:
        with transaction.atomic():
            for current, check in checks:
                _entry_apply(current, check, user, result)
    except ConcurrentEditError as exc:
        result = ImportResult()
        result.errors.append(
            ImportError_(
                exc.connector.name,
                "connector",
                f"changed by {exc.updated_by} while the file was being imported; nothing was "
                "imported. Import the file again to apply it over their change.",
            )
        )
    return result


def _entries_check(
    entries: list[Any], result: ImportResult
) -> list[tuple[Connector | None, ConnectorCheck]]:
    """Check every entry against the connector it names (if saved); errors go to `result`."""
    checks: list[tuple[Connector | None, ConnectorCheck]] = []
    seen: set[str] = set()
    existing = _named_connectors(entries)
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            result.errors.append(ImportError_(f"#{position}", "connector", "Must be an object."))
            continue
        name = str(entry.get("name") or f"#{position}")
        if name.lower() in seen:
            result.errors.append(ImportError_(name, "name", "Listed twice in the file."))
            continue
        seen.add(name.lower())
        current = existing.get(name.lower())
        try:
            check = _entry_check(entry, current)
        except ImportFileError as exc:
            result.errors.append(ImportError_(name, "connector", str(exc)))
            continue
        if not check.ok:
            result.errors += [
                ImportError_(name, where, message)
                for where, message in check.error_list(json_keys=True)
            ]
            continue
        checks.append((current, check))
    return checks


def _named_connectors(entries: list[Any]) -> dict[str, Connector]:
    """The saved connectors the entries name, by lowered name, with their rows."""
    # Only the connectors the file names: each one loaded decrypts its secrets.
    named = {str(entry.get("name", "")).lower() for entry in entries if isinstance(entry, dict)}
    return {
        c.name.lower(): c
        for c in Connector.objects.annotate(lowered=Lower("name"))
        .filter(lowered__in=named)
        .prefetch_related("params")
    }


def _entry_apply(
    current: Connector | None, check: ConnectorCheck, user: UserLike, result: ImportResult
) -> None:
    """Create or update one checked connector and note which it was."""
    connector = check.instance
    if current is None:
        connector_create(connector=connector, rows=check.param_rows(), user=user, action="import")
        result.created.append(connector.name)
        return
    # The version the file was checked against: an edit made meanwhile wins, and the whole
    # import is refused rather than overwriting it.
    changes = connector_update(
        connector=connector,
        rows=check.param_rows(),
        user=user,
        expected_version=current.version,
        action="import",
    )
    (result.updated if changes else result.unchanged).append(connector.name)


def connectors_import_text(*, text: str | bytes, user: UserLike) -> ImportResult:
    try:
        payload = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"The file is not valid JSON: {exc}") from None
    return connectors_import(payload=payload, user=user)


class PinRefused(ValueError):
    """The method cannot be pinned on this connector; the message says why."""


def connector_pin_client_authentication(
    *, connector: Connector, method: str, user: UserLike, tested_version: int
) -> None:
    """Pin the client authentication method that a test found to work, under the form's rules.

    The stored values, with the new method, go through the same rules as a form or an import,
    so a pin can never store a combination they refuse (e.g. username/password Basic without
    Password Grant, or an Authorization row that the method would replace).
    """
    if connector.auth_config != AuthConfig.OAUTH2:
        raise PinRefused("Only Oauth2 connectors have a client authentication method.")
    stored = StoredConnector.of(connector)
    values = {name: getattr(connector, name) for name in CONNECTOR_FIELDS}
    values["oauth2_client_authentication"] = method
    rows = {
        kind: [
            {"key": row.key, "value": row.value, "sensitive": row.sensitive}
            for row in stored.rows_of(kind)
        ]
        for kind in PARAM_LISTS.values()
    }
    check = connector_check(values=values, rows=rows, instance=connector, stored=stored)
    if not check.ok:
        raise PinRefused("; ".join(f"{where}: {msg}" for where, msg in check.error_list()))
    connector_update(
        connector=check.instance,
        rows=check.param_rows(),
        user=user,
        # The version that was tested: a method found for it says nothing about a newer one.
        expected_version=tested_version,
        action="pin",
    )
