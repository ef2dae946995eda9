"""One JSON connector read strictly: every value must have the type the documented shape gives.

The rules (connectors.rules) decide what a value may mean; this step, before them, checks only
that each value is what the shape says it is: text (null counts as empty), true or false, a list
of row objects. Python's loose conversions would otherwise read `"enabled": "false"` as True, a
list as the text "['x']" and 42 as "42". Text must also be real Unicode: JSON can spell a lone
UTF-16 surrogate ("\\ud800"), which no database or page can encode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from connectors.domain import SCOPE_FIELD_BY_GRANT
from connectors.models import AuthConfig, Connector
from connectors.oauth_http.redaction import key_looks_sensitive
from connectors.transfer.shape import (
    BLOCK_DEFAULTS,
    BLOCKS,
    EXTRA_TOP_LEVEL,
    JWT_BLOCKS,
    JWT_INTEGER_KEYS,
    JWT_KEYS,
    JWT_OBJECT_KEYS,
    PARAM_LISTS,
    TOP_LEVEL,
)

# Longest connector name shown in an error line; the rules refuse anything longer anyway.
_LABEL_MAX = 80


@dataclass
class EntryRead:
    """One JSON connector as values keyed by model field, rows by kind, and its type errors."""

    values: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # (JSON key, message): "enabled", "oauth2.client_id", "additional_headers[0].value".
    errors: list[tuple[str, str]] = field(default_factory=list)


def kind_of(value: Any) -> str:
    """A JSON value's type in words, for "must be text, not a list"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def is_text(value: Any) -> bool:
    """True for a string every encoder accepts (no lone surrogate)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def entry_label(entry: dict[str, Any], position: int) -> str:
    """How errors name a connector: its name when that is text, else its place in the file.

    Characters a terminal or a page would act on (controls, lone surrogates) are written as
    escapes, so an error line shows the name without being steered by it.
    """
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        return f"#{position}"
    return printable(name[:_LABEL_MAX]) + ("…" if len(name) > _LABEL_MAX else "")


def printable(text: str) -> str:
    """`text` with every character that is not printable (controls, NUL, lone surrogates)
    written as its Python escape, e.g. \\x1b, \\x00, \\ud800."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def entry_name_key(entry: Any) -> str | None:
    """The lowered name an entry is matched by, or None when it has no usable name.

    A name that no saved connector can have (not text, a lone surrogate, a NUL, which
    PostgreSQL refuses in a query) matches none and never reaches the database.
    """
    if not isinstance(entry, dict):
        return None
    name = entry.get("name")
    if not is_text(name) or not name or "\x00" in name:
        return None
    return name.lower()


class _Reader:
    """Reads typed values out of one entry and collects what has the wrong type."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def text(self, holder: dict[str, Any], key: str, where: str) -> str | None:
        """holder[key] as text ("" for null); None, with an error, for anything else."""
        value = holder.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.errors.append((where, f"Must be text, not {kind_of(value)}."))
            return None
        if not is_text(value):
            self.errors.append(
                (where, "Is not valid text: it holds a lone UTF-16 surrogate such as \\ud800.")
            )
            return None
        return value

    def flag(self, holder: dict[str, Any], key: str, where: str) -> bool | None:
        """holder[key] as true or false; None, with an error, for anything else."""
        value = holder.get(key)
        if isinstance(value, bool):
            return value
        self.errors.append((where, f"Must be true or false, not {kind_of(value)}."))
        return None

    def jwt_value(self, holder: dict[str, Any], key: str, where: str) -> Any:
        """A signing key or claim: a whole number for ttl_seconds, a JSON object for the
        additional claims and header fields (text holding one is read too), text otherwise."""
        value = holder.get(key)
        if key in JWT_INTEGER_KEYS:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            self.errors.append((where, f"Must be a whole number, not {kind_of(value)}."))
            return None
        if key in JWT_OBJECT_KEYS and not isinstance(value, dict | str):
            self.errors.append((where, f"Must be a JSON object, not {kind_of(value)}."))
            return None
        if key in JWT_OBJECT_KEYS and isinstance(value, dict):
            text = json.dumps(value, ensure_ascii=False)
            if not is_text(text):
                self.errors.append((where, "Is not valid text: it holds a lone surrogate."))
                return None
            return text
        return self.text(holder, key, where)

    def jwt(
        self,
        holder: dict[str, Any],
        where: str,
        values: dict[str, Any],
        keys: dict[str, str] = JWT_KEYS,
    ) -> None:
        """The signing key and claims of a block ("jwt_auth"; "jwks_auth" has the claims only)
        or object ("oauth2.jwt")."""
        for key, model_field in keys.items():
            if holder.get(key) is not None:
                value = self.jwt_value(holder, key, f"{where}.{key}")
                if value is not None:
                    values[model_field] = value

    def block(self, entry: dict[str, Any], name: str) -> dict[str, Any]:
        """The chosen Auth Config's block ({} when omitted or null)."""
        block = entry.get(name)
        if block is None:
            return {}
        if not isinstance(block, dict):
            self.errors.append((name, f"Must be an object, not {kind_of(block)}."))
            return {}
        return block

    def rows(self, block: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """The token request rows of an Oauth2 block, by kind."""
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for list_key, kind in PARAM_LISTS.items():
            raw = block.get(list_key)
            by_kind[kind] = []
            if raw is None:
                continue
            if not isinstance(raw, list):
                self.errors.append(
                    (list_key, f"The rows must be a list of objects, not {kind_of(raw)}.")
                )
                continue
            for index, row in enumerate(raw):
                read = self.row(row, f"{list_key}[{index}]")
                if read is not None:
                    by_kind[kind].append(read)
        return by_kind

    def row(self, row: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(row, dict):
            self.errors.append(
                (where, f"Must be an object with key, value and sensitive, not {kind_of(row)}.")
            )
            return None
        key = self.text(row, "key", f"{where}.key")
        value = self.text(row, "value", f"{where}.value")
        # Omitted (or null) "sensitive" follows the key's look, as the form's checkbox does.
        sensitive = (
            key_looks_sensitive(key or "")
            if row.get("sensitive") is None
            else self.flag(row, "sensitive", f"{where}.sensitive")
        )
        if key is None or value is None or sensitive is None:
            return None
        return {"key": key, "value": value, "sensitive": sensitive}


def entry_read(entry: dict[str, Any], existing: Connector | None) -> EntryRead:
    """One JSON connector as values for the rules; `existing` is the saved one it updates.

    A key the file omits keeps the saved connector's value on an update (and takes the default
    on a new one), except in the Auth Config blocks: each block starts from its defaults, so a
    file names only what it sets.
    """
    reader = _Reader()
    values = _top_level(reader, entry, existing)
    rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in PARAM_LISTS.values()}
    values.update(BLOCK_DEFAULTS)
    auth_config = values["auth_config"]
    if auth_config in BLOCKS:
        block = reader.block(entry, auth_config)
        if auth_config in JWT_BLOCKS:
            reader.jwt(block, auth_config, values, keys=BLOCKS[auth_config])
        else:
            for key, model_field in BLOCKS[auth_config].items():
                if block.get(key) is not None:
                    value = reader.text(block, key, f"{auth_config}.{key}")
                    if value is not None:
                        values[model_field] = value
        if auth_config == AuthConfig.OAUTH2:
            _scope(reader, block, values)
            rows = reader.rows(block)
            signing = block.get("jwt")
            if isinstance(signing, dict):
                reader.jwt(signing, "oauth2.jwt", values)
            elif signing is not None:
                reader.errors.append(("oauth2.jwt", f"Must be an object, not {kind_of(signing)}."))
    return EntryRead(values=values, rows=rows, errors=reader.errors)


def _top_level(
    reader: _Reader, entry: dict[str, Any], existing: Connector | None
) -> dict[str, Any]:
    """The connector's own fields and its Auth Config, before the blocks."""
    values: dict[str, Any] = {}
    for key in TOP_LEVEL + EXTRA_TOP_LEVEL:
        if key in entry:
            value = (
                reader.flag(entry, key, key) if key == "enabled" else reader.text(entry, key, key)
            )
            if value is not None:
                values[key] = value
        elif existing is not None:
            values[key] = getattr(existing, key)
        elif key == "enabled":
            values[key] = True
    # An update that leaves auth_config out keeps the connector's; a new one takes the default.
    if "auth_config" in entry:
        values["auth_config"] = reader.text(entry, "auth_config", "auth_config") or ""
    else:
        values["auth_config"] = existing.auth_config if existing is not None else AuthConfig.NONE
    return values


def _scope(reader: _Reader, block: dict[str, Any], values: dict[str, Any]) -> None:
    """ "scope" goes to the scope field of the chosen grant type."""
    scope_field = SCOPE_FIELD_BY_GRANT.get(values["oauth2_grant_type"])
    if scope_field is None or block.get("scope") is None:
        return
    scope = reader.text(block, "scope", "oauth2.scope")
    if scope:
        values[scope_field] = scope
