"""A stale edit: what the other save changed, next to what this form would save.

The edit form names the version it was opened at; when another save came first the edit is
refused (connectors.services.ConcurrentEditError). Instead of only "reload", the page shows,
field by field, the value saved now and the value in this form, and which fields the other
save(s) changed (read from the audit log's change records since the form's version). Secrets
are only ever "changed" or "unchanged", never values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from audit.models import AuditEvent
from connectors.domain import ALL_SECRET_FIELDS, ParamRow, field_label
from connectors.models import Connector, TokenRequestParam
from connectors.services import (
    TRACKED_FIELDS,
    ConcurrentEditError,
    FieldChange,
    connector_diff,
)

CHANGED = "changed"
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ConflictLine:
    """One field that differs, or that the other save changed."""

    label: str
    saved: str  # the value saved now (theirs), as text; a secret is changed/unchanged
    yours: str  # the value this form would save
    they_changed: bool
    differs: bool
    secret: bool


@dataclass(frozen=True)
class Conflict:
    """Who saved meanwhile, when, at which version, and how it compares with this form."""

    who: str
    same_user: bool
    when: dt.datetime
    version: int
    lines: tuple[ConflictLine, ...]


def _text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return "\n".join(str(item) for item in value) or "—"
    return str(value)


def _changed_since(connector: Connector, versions: int) -> set[str]:
    """Fields the last `versions` recorded changes of this connector touched.

    Every save that raises the version writes one change record (edit, import, pin), so the
    newest `versions` of them are the saves this form missed.
    """
    if versions <= 0:
        return set()
    events = (
        AuditEvent.objects.filter(connector_id=connector.pk, kind=AuditEvent.Kind.CHANGE)
        .exclude(action__in=("create", "clone", "delete"))
        .order_by("-pk")
        .values_list("details", flat=True)[:versions]
    )
    fields: set[str] = set()
    for details in events:
        for change in (details or {}).get("changes", []):
            if isinstance(change, dict) and change.get("field"):
                fields.add(str(change["field"]))
    return fields


def _rows_snapshot(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        {"kind": r.kind, "key": r.key, "value": r.value, "sensitive": r.sensitive} for r in rows
    ]


def conflict_describe(
    *,
    exc: ConcurrentEditError,
    yours: Connector,
    rows: list[ParamRow],
    user: Any,
    expected_version: int | None,
) -> Conflict:
    """The conflict page's facts: `yours` is the form's (validated, unsaved) connector."""
    saved = exc.connector
    saved_rows = list(saved.params.all())
    same_user = bool(
        saved.updated_by_id is not None and getattr(user, "pk", None) == saved.updated_by_id
    )
    missed = saved.version - expected_version if expected_version else 0
    they_changed = _changed_since(saved, missed)
    differences = {
        change.field: change
        for change in connector_diff(
            before={name: getattr(saved, name) for name in TRACKED_FIELDS},
            after={name: getattr(yours, name) for name in TRACKED_FIELDS},
            params_before=_rows_snapshot(saved_rows),
            params_after=_rows_snapshot(rows),
        )
    }
    lines = []
    for name in [*TRACKED_FIELDS, "params_header", "params_data"]:
        if name in differences or name in they_changed:
            lines.append(
                _line(name, differences.get(name), name in they_changed, saved, saved_rows)
            )
    return Conflict(
        who="you, in another tab" if same_user else exc.updated_by,
        same_user=same_user,
        when=exc.updated_at,
        version=saved.version,
        lines=tuple(lines),
    )


def _label(name: str) -> str:
    if name in TRACKED_FIELDS:
        return field_label(name)
    return str(TokenRequestParam.Kind(name.removeprefix("params_")).label)


def _line(
    name: str, change: FieldChange | None, theirs: bool, saved: Connector, saved_rows: list[Any]
) -> ConflictLine:
    """One line of the comparison; a secret is only ever changed or unchanged."""
    if name in ALL_SECRET_FIELDS:
        return ConflictLine(
            label=_label(name),
            saved=CHANGED if theirs else UNCHANGED,
            yours=CHANGED if change is not None else UNCHANGED,
            they_changed=theirs,
            differs=change is not None,
            secret=True,
        )
    if change is not None:
        return ConflictLine(
            _label(name), _text(change.before), _text(change.after), theirs, True, False
        )
    value = _text(getattr(saved, name) if name in TRACKED_FIELDS else _rows_text(saved_rows, name))
    return ConflictLine(_label(name), value, value, theirs, False, False)


def _rows_text(rows: list[Any], name: str) -> list[str]:
    kind = name.removeprefix("params_")
    return [
        f"{r.key}: [sensitive]" if r.sensitive else f"{r.key}: {r.value}"
        for r in rows
        if r.kind == kind
    ]
