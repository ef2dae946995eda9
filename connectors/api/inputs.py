"""A connector's JSON body read strictly by type, then judged by the same rules as the form.

Types first (text, true/false, a list of row objects), as import reads a file: the rules decide
what a value may mean (connectors.rules.check), so every message is the form's own. Secrets are
write-only: omitted or "" keeps the stored one, null clears it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.domain import (
    ALL_SECRET_FIELDS,
    CONNECTOR_FIELDS,
    StoredConnector,
    field_label,
)
from connectors.models import Connector, TokenRequestParam
from connectors.rules import ConnectorCheck, connector_check
from connectors.rules.check import ROW_PLACES
from connectors.transfer.entries import is_text, kind_of

# JSON key of each list of token request rows, and the row kind it holds.
ROW_LISTS: dict[str, str] = {json_key: kind for kind, (_, json_key) in ROW_PLACES.items()}
ROW_KEYS = ("key", "value", "sensitive")
BOOLEAN_FIELDS = frozenset({"enabled"})
# Whole numbers in JSON (the range is the rules' to judge).
INTEGER_FIELDS = frozenset({"jwt_ttl_seconds"})
# A date as YYYY-MM-DD, or null.
NULLABLE_FIELDS = frozenset({"client_secret_expires_on"})
ACCEPTED_KEYS = frozenset({*CONNECTOR_FIELDS, *ROW_LISTS})


@dataclass
class BodyRead:
    values: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]] | None
    errors: list[dict[str, str]]


def _error(field: str, label: str, message: str) -> dict[str, str]:
    return {"field": field, "label": label, "message": message}


def _label(name: str) -> str:
    return field_label(name) if name in CONNECTOR_FIELDS else name


def _read_value(name: str, value: Any, errors: list[dict[str, str]]) -> Any:
    """One field's value if its type is right, else None with an error."""
    if name in BOOLEAN_FIELDS:
        if isinstance(value, bool):
            return value
        errors.append(_error(name, _label(name), f"Must be true or false, not {kind_of(value)}."))
        return None
    if value is None:
        return None if name in NULLABLE_FIELDS else ""
    if name in INTEGER_FIELDS:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        errors.append(_error(name, _label(name), f"Must be a whole number, not {kind_of(value)}."))
        return None
    if not isinstance(value, str):
        errors.append(_error(name, _label(name), f"Must be text, not {kind_of(value)}."))
        return None
    if not is_text(value):
        errors.append(_error(name, _label(name), "Is not valid text (a lone UTF-16 surrogate)."))
        return None
    return value


def _read_rows(
    json_key: str, raw: Any, errors: list[dict[str, str]]
) -> list[dict[str, Any]] | None:
    title = ROW_PLACES[ROW_LISTS[json_key]][0]
    if not isinstance(raw, list):
        errors.append(_error(json_key, title, f"Must be a list of rows, not {kind_of(raw)}."))
        return None
    rows: list[dict[str, Any]] = []
    for index, row in enumerate(raw):
        where, label = f"{json_key}[{index}]", f"{title} row {index + 1}"
        if not isinstance(row, dict) or set(row) - set(ROW_KEYS):
            errors.append(_error(where, label, "Must be an object with key, value and sensitive."))
            continue
        key, value = row.get("key"), row.get("value")
        sensitive = row.get("sensitive", False)
        if not all(v is None or is_text(v) for v in (key, value)) or not isinstance(
            sensitive, bool
        ):
            errors.append(_error(where, label, "key and value are text, sensitive true or false."))
            continue
        rows.append({"key": key or "", "value": value or "", "sensitive": sensitive})
    return rows


def body_read(body: Any, *, current: Connector | None) -> BodyRead:
    """The body as the rules' values; on an update, omitted fields keep the stored values."""
    if not isinstance(body, dict):
        return BodyRead({}, None, [_error("request", "request", "Send a JSON object.")])
    errors = [
        _error(str(key)[:64], str(key)[:64], "Unknown field.")
        for key in body
        if key not in ACCEPTED_KEYS
    ]
    # A new connector is enabled unless the body says otherwise (the model's default, as import).
    values: dict[str, Any] = {"enabled": True}
    if current is not None:
        values = {n: getattr(current, n) for n in CONNECTOR_FIELDS if n not in ALL_SECRET_FIELDS}
    values.update(_given_values(body, errors))
    rows: dict[str, list[dict[str, Any]]] | None = None
    if any(key in body for key in ROW_LISTS):
        rows = {
            kind: _read_rows(json_key, body.get(json_key, []), errors) or []
            for json_key, kind in ROW_LISTS.items()
        }
    return BodyRead(values, rows, errors)


def _given_values(body: dict[str, Any], errors: list[dict[str, str]]) -> dict[str, Any]:
    """The fields the body names, typed; an explicit null secret becomes the form's clear box."""
    values: dict[str, Any] = {}
    for name in CONNECTOR_FIELDS:
        if name not in body:
            continue
        if name in ALL_SECRET_FIELDS and body[name] is None:
            values[f"{name}_clear"] = True
            continue
        value = _read_value(name, body[name], errors)
        if value is not None or name in NULLABLE_FIELDS:
            values[name] = value
    return values


def stored_rows(stored: StoredConnector) -> dict[str, list[dict[str, Any]]]:
    """The saved rows as input, sensitive values blank (kept, like the form shows them)."""
    return {
        kind: [
            {"key": r.key, "value": "" if r.sensitive else r.value, "sensitive": r.sensitive}
            for r in stored.rows_of(kind)
        ]
        for kind in TokenRequestParam.Kind.values
    }


def check_errors(check: ConnectorCheck) -> list[dict[str, str]]:
    """Every refusal of the rules, each with its field, the form's label and message."""
    errors = [
        _error(name, _label(name), message)
        if name in CONNECTOR_FIELDS
        else _error("connector", "connector", message)
        for name, messages in check.values.messages()
        for message in messages
    ]
    if not check.oauth2:
        return errors
    for rows in check.rows.values():
        kind, non_row, per_row = rows.messages()
        title, json_key = ROW_PLACES[kind]
        errors += [_error(json_key, title, message) for message in non_row]
        for index, by_field in enumerate(per_row):
            for name, messages in by_field.items():
                errors += [
                    _error(f"{json_key}[{index}].{name}", f"{title} row {index + 1}", m)
                    for m in messages
                ]
    return errors


def connector_body_check(
    body: Any, *, current: Connector | None
) -> tuple[ConnectorCheck | None, list[dict[str, str]]]:
    """Read and check a body against the connector it changes (None to create one)."""
    read = body_read(body, current=current)
    if read.errors:
        return None, read.errors
    stored = StoredConnector.of(current) if current is not None else None
    rows = read.rows
    if rows is None:
        rows = stored_rows(stored) if stored is not None else {}
    check = connector_check(values=read.values, rows=rows, instance=current, stored=stored)
    return (check, []) if check.ok else (None, check_errors(check))
