"""Streamed CSV and JSON exports of audit records, redacted again on the way out."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from audit.chain import EVENT_FIELDS, attempts_prefetch, canonical_json
from audit.models import AuditEvent
from audit.sanitize import (
    Secrets,
    body_redact,
    connector_secrets_by_id,
    details_redact,
    headers_redact,
    url_redact,
)

FORMATS = ("csv", "json")

# Every hashed field, plus the id and the chain itself, so an export can be checked offline.
EXPORT_COLUMNS: tuple[str, ...] = ("id", *EVENT_FIELDS, "prev_hash", "hash")

RUN_COLUMNS: tuple[str, ...] = (
    "id",
    "source",
    "started_at",
    "duration_ms",
    "ok",
    "outcome",
    "message",
    "hint",
    "client_authentication_used",
    "token",
    "config",
)

CHUNK = 1000


class _SecretsCache:
    """Each connector's secrets, read once per export, for masking only."""

    def __init__(self) -> None:
        self._cache: dict[int | None, Secrets] = {}

    def __call__(self, connector_id: int | None) -> Secrets:
        if connector_id not in self._cache:
            self._cache[connector_id] = connector_secrets_by_id(connector_id)
        return self._cache[connector_id]


def attempt_export(attempt: Any, secrets: Secrets) -> dict[str, Any]:
    return {
        "position": attempt.position,
        "step": attempt.step,
        "client_authentication": attempt.client_authentication,
        "method": attempt.method,
        "url": url_redact(attempt.url, secrets=secrets),
        "request_headers": headers_redact(attempt.request_headers, secrets=secrets),
        "request_body": body_redact(attempt.request_body, secrets=secrets),
        "status_code": attempt.status_code,
        "response_headers": headers_redact(attempt.response_headers, secrets=secrets),
        "response_excerpt": secrets.text(attempt.response_excerpt),
        "duration_ms": attempt.duration_ms,
        "outcome": attempt.outcome,
        "message": secrets.text(attempt.message),
        "curl": secrets.text(attempt.curl),
    }


def run_export(run: Any, secrets: Secrets) -> dict[str, Any]:
    data = {name: getattr(run, name) for name in RUN_COLUMNS}
    for name in ("message", "hint"):
        data[name] = secrets.text(data[name])
    data["token"] = details_redact(data["token"], secrets=secrets) if data["token"] else None
    data["config"] = details_redact(data["config"], secrets=secrets)
    data["started_at"] = run.started_at.isoformat()
    data["attempts"] = [attempt_export(a, secrets) for a in run.attempts.all()]
    return data


def event_export(event: AuditEvent, secrets: Secrets, *, with_run: bool) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(event, name) for name in EXPORT_COLUMNS}
    data["created_at"] = event.created_at.isoformat()
    data["summary"] = secrets.text(event.summary)
    data["details"] = details_redact(event.details, secrets=secrets)
    if with_run:
        data["test_run"] = run_export(event.test_run, secrets) if event.test_run_id else None
    return data


def export_rows(qs: QuerySet[AuditEvent], *, with_runs: bool) -> Iterator[dict[str, Any]]:
    """Redacted dicts, streamed from the database in chunks (constant memory)."""
    secrets_for = _SecretsCache()
    if with_runs:
        qs = qs.select_related("test_run").prefetch_related(attempts_prefetch())
    for event in qs.iterator(chunk_size=CHUNK):
        yield event_export(event, secrets_for(event.connector_id), with_run=with_runs)


class _Line:
    """A write-only file for csv.writer that hands back what it was given."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = canonical_json(value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # a spreadsheet must not run a formula from the log
    return "" if value is None else value


def csv_stream(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        yield writer.writerow([_cell(row[name]) for name in EXPORT_COLUMNS])


def json_stream(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    yield "["
    first = True
    for row in rows:
        yield ("\n" if first else ",\n") + json.dumps(row, ensure_ascii=False, default=str)
        first = False
    yield "\n]\n"


def export_stream(qs: QuerySet[AuditEvent], fmt: str) -> Iterator[str]:
    if fmt == "csv":
        return csv_stream(export_rows(qs, with_runs=False))
    if fmt == "json":
        return json_stream(export_rows(qs, with_runs=True))
    raise ValueError(f"unknown export format {fmt!r}")
