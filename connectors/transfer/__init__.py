"""Import and export of connectors as JSON (the shape is documented in the README).

shape: the documented keys; entries: one JSON connector read strictly by type, before the
rules judge its values; envelope: the passphrase-encrypted file an export with secrets is.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models.functions import Lower

from audit.services import audit_record
from connectors.domain import CONNECTOR_FIELDS, StoredConnector
from connectors.models import ALL_SECRET_FIELDS, AuthConfig, Connector
from connectors.rules import ConnectorCheck, connector_check
from connectors.rules.passphrase import passphrase_problem
from connectors.services import (
    ConcurrentEditError,
    UserLike,
    acting_user,
    connector_create,
    connector_update,
)
from connectors.transfer.entries import entry_label, entry_name_key, entry_read
from connectors.transfer.envelope import (
    CIPHER,
    KDF,
    EnvelopeError,
    WrongPassphrase,
    envelope_is,
    envelope_open,
    envelope_seal,
)
from connectors.transfer.shape import (
    BLOCKS,
    DOCUMENTED_OAUTH2_ORDER,
    EXTRA_OAUTH2,
    EXTRA_TOP_LEVEL,
    JWT_BLOCKS,
    JWT_OBJECT_KEYS,
    PARAM_LISTS,
    SECRET_KEYS,
    TOP_LEVEL,
)


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


class PassphraseNeeded(ImportFileError):
    """The file is an encrypted export and no passphrase was given."""


class PassphraseWrong(ImportFileError):
    """The passphrase does not open the encrypted file (or the file was altered)."""


class ExportRefused(ValueError):
    """Secrets were asked for without a passphrase or an explicit choice of plain text."""


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
            block[key] = _jwt_value(key, value) if block_name in JWT_BLOCKS else value
        data[block_name] = block
    oauth2 = data["oauth2"]
    # The oauth2 block signs with the same key and claims as Jwt Auth: one shape, twice.
    oauth2["jwt"] = dict(data["jwt_auth"])
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
    data["oauth2"] = {key: oauth2[key] for key in (*DOCUMENTED_OAUTH2_ORDER, *EXTRA_OAUTH2)}
    data.update({key: getattr(connector, key) for key in EXTRA_TOP_LEVEL})
    # A date is written as YYYY-MM-DD (or null), which import reads back.
    expires_on = connector.client_secret_expires_on
    data["client_secret_expires_on"] = expires_on.isoformat() if expires_on else None
    return data


def _jwt_value(key: str, value: Any) -> Any:
    """Additional claims and header fields are JSON objects in a file, not text holding JSON."""
    if key in JWT_OBJECT_KEYS:
        try:
            parsed = json.loads(value) if value else {}
        except ValueError:
            return value  # stored before the rules checked it: export it as it is
        return parsed
    return value


def connectors_export(
    *,
    include_secrets: bool,
    user: UserLike = None,
    passphrase: str | None = None,
    plaintext: bool = False,
) -> dict[str, Any]:
    """Every connector in the documented JSON shape, recorded in the audit log.

    With `passphrase` the result is the encrypted envelope (connectors.transfer.envelope) that
    holds that JSON. Secrets are written only encrypted, unless the caller explicitly asks for
    `plaintext` (the command's --plaintext); raises ExportRefused otherwise.
    """
    if include_secrets and passphrase is None and not plaintext:
        raise ExportRefused(
            "Secrets are exported only in a file encrypted with a passphrase, or in plain text "
            "when that is asked for explicitly."
        )
    if passphrase is not None and passphrase_problem(passphrase):
        raise ExportRefused(passphrase_problem(passphrase))
    connectors = Connector.objects.prefetch_related("params").order_by("name")
    payload = {
        "connectors": [
            connector_export_dict(c, include_secrets=include_secrets) for c in connectors
        ]
    }
    count = len(payload["connectors"])
    details: dict[str, Any] = {"count": count, "include_secrets": include_secrets}
    if passphrase is not None:
        text = json.dumps(payload, indent=2, ensure_ascii=False)
        payload = envelope_seal(text.encode("utf-8"), passphrase=passphrase)
        details.update(encrypted=True, kdf=KDF, cipher=CIPHER)
    elif include_secrets:
        details["encrypted"] = False
    audit_record(
        kind="change",
        action="export",
        user=acting_user(user),
        summary=_export_summary(count, include_secrets, encrypted=passphrase is not None),
        details=details,
    )
    return payload


def _export_summary(count: int, include_secrets: bool, *, encrypted: bool) -> str:
    """What the audit log says of an export: whether secrets left, and how."""
    summary = f"Exported {count} connectors"
    if include_secrets:
        summary += " with secrets" + ("" if encrypted else " in plain text")
    if encrypted:
        summary += ", encrypted with a passphrase"
    return summary


def connectors_import(*, payload: Any, user: UserLike) -> ImportResult:
    """Validate every connector with the form's rules, then apply all of them or none."""
    if not isinstance(payload, dict) or not isinstance(payload.get("connectors"), list):
        raise ImportFileError('The file must be a JSON object with a "connectors" list.')
    result = ImportResult()
    checks = _entries_check(payload["connectors"], result)
    if result.errors:
        return result
    # One id shared by this import's records: the audit log shows them as one entry.
    group = {"import": uuid.uuid4().hex[:12]}
    try:
        with transaction.atomic():
            for current, check in checks:
                _entry_apply(current, check, user, result, group)
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
        label = entry_label(entry, position)
        name_key = entry_name_key(entry)
        if name_key is not None and name_key in seen:
            result.errors.append(ImportError_(label, "name", "Listed twice in the file."))
            continue
        if name_key is not None:
            seen.add(name_key)
        current = existing.get(name_key) if name_key is not None else None
        read = entry_read(entry, current)
        if read.errors:
            # Values of the wrong type say nothing the rules could judge: report only these.
            result.errors += [ImportError_(label, where, msg) for where, msg in read.errors]
            continue
        check = connector_check(
            values=read.values,
            rows=read.rows,
            instance=current,
            stored=StoredConnector.of(current) if current is not None else None,
        )
        if not check.ok:
            result.errors += [
                ImportError_(label, where, message)
                for where, message in check.error_list(json_keys=True)
            ]
            continue
        checks.append((current, check))
    return checks


def _named_connectors(entries: list[Any]) -> dict[str, Connector]:
    """The saved connectors the entries name, by lowered name, with their rows."""
    # Only the connectors the file names: each one loaded decrypts its secrets. A name that is
    # not text (or not encodable) names none, and never reaches the database.
    named = {key for key in map(entry_name_key, entries) if key is not None}
    return {
        c.name.lower(): c
        for c in Connector.objects.annotate(lowered=Lower("name"))
        .filter(lowered__in=named)
        .prefetch_related("params")
    }


def _entry_apply(
    current: Connector | None,
    check: ConnectorCheck,
    user: UserLike,
    result: ImportResult,
    group: dict[str, Any],
) -> None:
    """Create or update one checked connector and note which it was."""
    connector = check.instance
    if current is None:
        connector_create(
            connector=connector, rows=check.param_rows(), user=user, action="import", group=group
        )
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
        group=group,
    )
    (result.updated if changes else result.unchanged).append(connector.name)


def connectors_import_text(
    *, text: str | bytes, user: UserLike, passphrase: str | None = None
) -> ImportResult:
    """Import a file's text: plain JSON, or an encrypted export opened with `passphrase`.

    Raises ImportFileError (or its PassphraseNeeded, PassphraseWrong) when the file cannot be
    read.
    """
    payload = _json_parse(text)
    if envelope_is(payload):
        if not passphrase:
            raise PassphraseNeeded(
                "This file is an encrypted export: give the passphrase it was exported with."
            )
        try:
            payload = _json_parse(envelope_open(payload, passphrase=passphrase))
        except WrongPassphrase as exc:
            raise PassphraseWrong(str(exc)) from None
        except EnvelopeError as exc:
            raise ImportFileError(str(exc)) from None
    return connectors_import(payload=payload, user=user)


def _json_parse(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"The file is not valid JSON: {exc}") from None
    except RecursionError:
        # The documented shape is five levels deep; thousands of nested lists are an attack
        # or a broken file, and Python's parser gives up on them.
        raise ImportFileError(
            "The file nests lists or objects too deeply to be a connectors file."
        ) from None


class PinRefused(ValueError):
    """The method cannot be pinned on this connector; the message says why."""


class FixRefused(PinRefused):
    """A test's one-click fix cannot be applied to this connector; the message says why."""


# The settings a one-click fix may change (the values a test can find), and the audit action
# each records: a pinned method keeps its own action, the others are recorded as a fix.
FIX_ACTIONS: dict[str, str] = {
    "oauth2_client_authentication": "pin",
    "oauth2_access_token_key": "fix",
    "oauth2_token_url": "fix",
}


def connector_fix_apply(
    *, connector: Connector, field_name: str, value: str, user: UserLike, tested_version: int
) -> None:
    """Set one setting to the value a test found, under the form's rules, as an audited edit.

    The stored values, with the new one, go through the same rules as a form or an import, so a
    fix can never store what they refuse (a token URL on another server without the secrets
    typed again, username/password Basic without Password Grant, ...). The version must be the
    one that was tested: a value found for it says nothing about a newer configuration.
    """
    check = _fix_check(connector, field_name, value)
    connector_update(
        connector=check.instance,
        rows=check.param_rows(),
        user=user,
        expected_version=tested_version,
        action=FIX_ACTIONS[field_name],
    )


def connector_fix_problem(*, connector: Connector, field_name: str, value: str) -> str:
    """Why the rules would refuse this fix ("" when they accept it); nothing is saved."""
    try:
        # On a copy: the rules write the values into the instance they check.
        _fix_check(copy.copy(connector), field_name, value)
    except FixRefused as exc:
        return str(exc)
    return ""


def _fix_check(connector: Connector, field_name: str, value: str) -> ConnectorCheck:
    if field_name not in FIX_ACTIONS:
        raise FixRefused("This setting cannot be changed from a test result.")
    if connector.auth_config != AuthConfig.OAUTH2:
        raise FixRefused("Only Oauth2 connectors have this setting.")
    stored = StoredConnector.of(connector)
    values = {name: getattr(connector, name) for name in CONNECTOR_FIELDS}
    # Secrets as an edit that leaves them blank: kept, so the rules refuse to send them to
    # another server (a token URL on another host needs them typed again, in the form).
    values.update(dict.fromkeys(ALL_SECRET_FIELDS, ""))
    values[field_name] = value
    rows = {
        kind: [
            {
                "key": row.key,
                "value": "" if row.sensitive else row.value,
                "sensitive": row.sensitive,
            }
            for row in stored.rows_of(kind)
        ]
        for kind in PARAM_LISTS.values()
    }
    check = connector_check(values=values, rows=rows, instance=connector, stored=stored)
    if not check.ok:
        raise FixRefused("; ".join(f"{where}: {msg}" for where, msg in check.error_list()))
    return check


def connector_pin_client_authentication(
    *, connector: Connector, method: str, user: UserLike, tested_version: int
) -> None:
    """Pin the client authentication method that a test found to work (a fix of that setting)."""
    if connector.auth_config != AuthConfig.OAUTH2:
        raise PinRefused("Only Oauth2 connectors have a client authentication method.")
    connector_fix_apply(
        connector=connector,
        field_name="oauth2_client_authentication",
        value=method,
        user=user,
        tested_version=tested_version,
    )
