"""Drop three indexes that every recorded test wrote and no query needs.

- connectors_testrun.connector_id: testrun_connector_latest (connector_id, id DESC) serves
  every lookup by connector;
- connectors_testrun.connector_name (and its LIKE twin on PostgreSQL): runs are never looked
  up by name (the audit log's records are, with their own index);
- connectors_testattempt.run_id: attempt_position_unique (run_id, position) serves lookups by
  run, and the foreign key's checks.

Only the indexes are dropped, by name: an AlterField would rebuild the history tables on SQLite
(copying every run). The names are the ones Django gave them when the tables were created.
"""

from __future__ import annotations

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

# (table, index, column, PostgreSQL operator class or "")
INDEXES = (
    ("connectors_testrun", "connectors_testrun_connector_id_3e6540f9", "connector_id", ""),
    ("connectors_testrun", "connectors_testrun_connector_name_372a5fe3", "connector_name", ""),
    (
        "connectors_testrun",
        "connectors_testrun_connector_name_372a5fe3_like",
        "connector_name",
        "varchar_pattern_ops",
    ),
    ("connectors_testattempt", "connectors_testattempt_run_id_fc012fb6", "run_id", ""),
)


def drop(apps: Any, schema_editor: Any) -> None:
    for _, name, _, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create(apps: Any, schema_editor: Any) -> None:
    quote = schema_editor.quote_name
    postgres = schema_editor.connection.vendor == "postgresql"
    for table, name, column, opclass in INDEXES:
        if opclass and not postgres:
            continue
        suffix = f" {opclass}" if opclass else ""
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)} ({quote(column)}{suffix})"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0006_postgres_guards"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="testattempt",
                    name="run",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="attempts",
                        to="audit.testrun",
                    ),
                ),
                migrations.AlterField(
                    model_name="testrun",
                    name="connector_id",
                    field=models.BigIntegerField(blank=True, null=True),
                ),
                migrations.AlterField(
                    model_name="testrun",
                    name="connector_name",
                    field=models.CharField(max_length=64),
                ),
            ],
            database_operations=[migrations.RunPython(drop, create)],
        ),
    ]
