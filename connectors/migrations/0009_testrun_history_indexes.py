"""Indexes on the test-run history for the dashboard's windows, outside the model's state.

- testrun_failed_started: failed runs only, by start, with their source. Failures per day over
  30 days are counted from this index alone.
- testrun_started_at: runs by start. The slowest token endpoints (7 days) find their window's
  first run here.

The table belongs to audit.TestRun, whose model keeps the index list it had when it moved from
this app (tests/test_audit_structure.py checks it), so these are plain SQL, valid on SQLite and
PostgreSQL alike, and the migration state is unchanged.
"""

from django.db import migrations

CREATE = [
    'CREATE INDEX "testrun_failed_started" ON "connectors_testrun" ("started_at", "source") '
    'WHERE NOT "ok"',
    'CREATE INDEX "testrun_started_at" ON "connectors_testrun" ("started_at")',
]
DROP = [
    'DROP INDEX IF EXISTS "testrun_failed_started"',
    'DROP INDEX IF EXISTS "testrun_started_at"',
]


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0006_postgres_guards"),
        ("connectors", "0008_health_backfill"),
    ]

    operations = [migrations.RunSQL(sql=CREATE, reverse_sql=DROP)]
