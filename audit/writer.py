"""Lean SQL for the hot path: a test run, its attempts and its audit record, and the chain head.

Recording a test is on every test's path, and with concurrent workers the chain-head lock is
held while its record is appended (issue 10: recording <= 1 ms on PostgreSQL). Through the ORM
that costs a statement's worth of Python per row; here each table gets one INSERT ... RETURNING
built from the model's own fields, with values adapted by the fields themselves
(`get_db_prep_save`), so the database receives what the ORM would have sent. On PostgreSQL the
run and its attempts go in one statement.

Callers hold the transaction (`audit.services`); nothing here opens one or commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent, TestAttempt, TestRun


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _columns(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _values(obj: models.Model, fields: list[models.Field]) -> list[Any]:
    return [f.get_db_prep_save(getattr(obj, f.attname), connection=connection) for f in fields]


def _insert_head(model: type[models.Model], fields: list[models.Field]) -> str:
    columns = ", ".join(_quote(f.column) for f in fields)
    return f"INSERT INTO {_quote(model._meta.db_table)} ({columns}) VALUES "


def _saved(obj: models.Model, pk: int) -> None:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = connection.alias


def lean_writes_supported() -> bool:
    """INSERT ... RETURNING of several rows (PostgreSQL, SQLite 3.35+); else the ORM writes."""
    return bool(connection.features.can_return_rows_from_bulk_insert)


def insert_run(run: TestRun, attempts: Sequence[TestAttempt]) -> None:
    """Insert the run and its attempts; set their ids (and each attempt's run)."""
    run_fields = _columns(TestRun)
    attempt_fields = _columns(TestAttempt)
    run_values = _values(run, run_fields)
    run_sql = _insert_head(TestRun, run_fields) + f"({', '.join(['%s'] * len(run_fields))})"
    pk = _quote(TestRun._meta.pk.column)  # type: ignore[union-attr]
    if not attempts:
        _saved(run, _fetch(f"{run_sql} RETURNING {pk}", run_values)[0][0])
        return
    run_column = TestAttempt._meta.get_field("run").column
    own_fields = [f for f in attempt_fields if f.column != run_column]
    together = connection.vendor == "postgresql"
    # On PostgreSQL the attempts name the run through the CTE, in the same statement.
    run_ref = f"(SELECT {pk} FROM new_run)" if together else "%s"
    row = f"({run_ref}, {', '.join(['%s'] * len(own_fields))})"
    sql = (
        _insert_head(TestAttempt, [TestAttempt._meta.get_field("run"), *own_fields])
        + ", ".join([row] * len(attempts))
        + f" RETURNING {_quote('id')}, {_quote('position')}, {_quote(run_column)}"
    )
    params: list[Any] = []
    if together:
        sql = f"WITH new_run AS ({run_sql} RETURNING {pk}) {sql}"
        params += run_values
    else:
        _saved(run, _fetch(f"{run_sql} RETURNING {pk}", run_values)[0][0])
    for attempt in attempts:
        params += ([] if together else [run.pk]) + _values(attempt, own_fields)
    rows = _fetch(sql, params)
    if together:
        _saved(run, rows[0][2])
    by_position = {position: attempt_id for attempt_id, position, _ in rows}
    for attempt in attempts:
        attempt.run = run
        _saved(attempt, by_position[attempt.position])


def lock_head() -> tuple[int | None, str] | None:
    """(last event id, last hash) of the chain head, locked until commit; None if missing.

    On SQLite the transaction already holds the database's write lock (IMMEDIATE mode).
    """
    table = _quote(AuditChainHead._meta.db_table)
    sql = f"SELECT {_quote('last_event_id')}, {_quote('last_hash')} FROM {table} WHERE id = 1"
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    rows = _fetch(sql, [])
    return (rows[0][0], rows[0][1]) if rows else None


def insert_event(event: AuditEvent) -> None:
    fields = _columns(AuditEvent)
    sql = _insert_head(AuditEvent, fields) + f"({', '.join(['%s'] * len(fields))})"
    _saved(event, _fetch(f"{sql} RETURNING {_quote('id')}", _values(event, fields))[0][0])


def move_head(event_id: int, event_hash: str) -> None:
    updated_at = AuditChainHead._meta.get_field("updated_at")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_quote(AuditChainHead._meta.db_table)} SET "
            f"{_quote('last_event_id')} = %s, {_quote('last_hash')} = %s, "
            f"{_quote('updated_at')} = %s WHERE id = 1",
            [
                event_id,
                event_hash,
                updated_at.get_db_prep_save(timezone.now(), connection=connection),
            ],
        )


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
