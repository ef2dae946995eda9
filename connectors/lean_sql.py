"""Statements built once for the path every test of a batch takes (issue 10, "Performance").

The ORM builds and compiles a statement on every call: a filter, a conditional UPDATE or an
EXISTS costs 0.3-0.7 ms of Python each, and a batch test ran a dozen of them, while the whole
CPU budget of one test is a few milliseconds (1,000 tests in 5 s, on one interpreter). Here a
statement's text is built once per model and database vendor from the model's own metadata
(quoted identifiers, every value a query parameter), and values are adapted by the fields
themselves (`get_db_prep_save`), so the database receives what the ORM would have sent.
`audit.writer` does the same for the run and its audit record.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

from audit import round_trips


def db() -> BaseDatabaseWrapper:
    return connections[DEFAULT_DB_ALIAS]


def vendor() -> str:
    return db().vendor


def quote(name: str) -> str:
    return db().ops.quote_name(name)


def table(model: type[models.Model]) -> str:
    return quote(model._meta.db_table)


def _field(model: type[models.Model], name: str) -> models.Field:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field), name  # a concrete column, not a reverse relation
    return field


def column(model: type[models.Model], name: str) -> str:
    return quote(str(_field(model, name).column))


@functools.cache
def _fields(model: type[models.Model], names: tuple[str, ...]) -> tuple[models.Field, ...]:
    return tuple(_field(model, name) for name in names)


def prep_all(model: type[models.Model], values: dict[str, Any]) -> list[Any]:
    """The values as their fields would send them (e.g. a datetime as text on SQLite), in
    order; the fields looked up once per set of names (a row's worth on every recording)."""
    wrapper = db()
    fields = _fields(model, tuple(values))
    # The id of a run whose INSERT rides ahead stays a stand-in (audit.round_trips.NEW_RUN_ID).
    pending = round_trips.NEW_RUN_ID
    return [
        value if value is pending else field.get_db_prep_save(value, connection=wrapper)
        for field, value in zip(fields, values.values(), strict=True)
    ]


def execute(sql: str, params: Sequence[Any]) -> int:
    """Run a statement; the number of rows it changed."""
    round_trips.flush_riders()  # what rides with a recording is written first
    with db().cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    round_trips.flush_riders()
    with db().cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


@dataclass(frozen=True)
class _Select:
    sql: str
    attnames: tuple[str, ...]
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]


@functools.cache
def _select(vendor: str, model: type[models.Model], field: str) -> _Select:
    """The ORM's own SELECT of whole rows by one field (default ordering), compiled once.

    Compiled from a queryset with a stand-in value, so the text, the columns and the value
    converters (a backend's datetime parsing, a field's decryption) are exactly the ORM's.
    """
    queryset = model._default_manager.filter(**{field: 0})
    compiler = queryset.query.get_compiler(using=DEFAULT_DB_ALIAS)
    sql, params = compiler.as_sql()
    assert list(params) == [0], params  # one parameter: the value looked up
    columns = [column for column, _, _ in compiler.select]
    attnames = tuple(column.target.attname for column in columns)
    assert attnames == tuple(f.attname for f in model._meta.concrete_fields), attnames
    converters = tuple(
        (index, tuple(functions), expression)
        for index, (functions, expression) in compiler.get_converters(columns).items()
    )
    return _Select(sql, attnames, converters)


def ride(sql: str, params: Sequence[Any], then: Callable[[int], Any] | None = None) -> None:
    """In a recording's transaction, a statement that travels with its next round trip
    (audit.round_trips.ride); `then(row count)` once it has run. Elsewhere it runs at once."""
    round_trips.ride(sql, params, then)


def load(model: type[models.Model], field: str, value: Any) -> list[Any]:
    """`list(model.objects.filter(field=value))`, without building the query each time."""
    round_trips.flush_riders()
    wrapper = db()
    select = _select(wrapper.vendor, model, field)
    with wrapper.cursor() as cursor:
        cursor.execute(select.sql, [value])
        rows = cursor.fetchall()
    return _instances(wrapper, model, select, rows)


def _instances(
    wrapper: BaseDatabaseWrapper, model: type[models.Model], select: _Select, rows: Sequence[Any]
) -> list[Any]:
    found = []
    for row in rows:
        values = list(row)
        for index, functions, expression in select.converters:
            for convert in functions:
                values[index] = convert(values[index], expression, wrapper)
        found.append(model.from_db(wrapper.alias, select.attnames, values))
    return found


@dataclass(frozen=True)
class Load:
    """A `load` whose value is a SQL expression (e.g. a subquery) with its own parameters."""

    model: type[models.Model]
    field: str
    value_sql: str
    params: Sequence[Any]


def fetch_and_load(
    sql: str, params: Sequence[Any], loads: Sequence[Load]
) -> tuple[list[tuple[Any, ...]], list[list[Any]]]:
    """`fetch(sql, params)`, then each of `loads`, in one round trip where the database takes
    several statements at once (PostgreSQL), one after another elsewhere."""
    round_trips.flush_riders()
    wrapper = db()
    selects = [_select(wrapper.vendor, each.model, each.field) for each in loads]
    # The compiled SELECT has one placeholder, the value looked up (checked in _select).
    texts = [
        select.sql.replace("%s", f"({each.value_sql})")
        for select, each in zip(selects, loads, strict=True)
    ]
    found: list[list[Any]] = []
    with wrapper.cursor() as cursor:
        if round_trips.several_statements_per_trip(wrapper):
            cursor.execute(
                "; ".join([sql, *texts]), [*params, *(p for e in loads for p in e.params)]
            )
            rows = list(cursor.fetchall())
            for select, each in zip(selects, loads, strict=True):
                cursor.nextset()
                found.append(_instances(wrapper, each.model, select, cursor.fetchall()))
            return rows, found
        cursor.execute(sql, params)
        rows = list(cursor.fetchall())
        for select, each, text in zip(selects, loads, texts, strict=True):
            cursor.execute(text, each.params)
            found.append(_instances(wrapper, each.model, select, cursor.fetchall()))
    return rows, found


__all__ = [
    "Load", "column", "db", "execute", "fetch", "fetch_and_load", "load", "prep_all", "quote",
    "ride", "table", "vendor",
]  # fmt: skip
