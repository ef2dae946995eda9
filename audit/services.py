"""Audit log entry points used by the rest of the app (filled in by the audit-log issue)."""

from __future__ import annotations

from typing import Any


def audit_record(
    *,
    kind: str,
    action: str,
    user: Any = None,
    connector: Any = None,
    connector_name: str = "",
    outcome: str = "",
    summary: str = "",
    details: dict | None = None,
    test_run: Any = None,
) -> None:
    """Append one record to the audit log."""
