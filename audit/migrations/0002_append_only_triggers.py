"""On PostgreSQL, refuse UPDATE and DELETE on audit history in the database itself.

Covers the audit log and the connection-test runs and attempts that it hashes. The only
deletes let through are retention pruning's, which set the transaction-local setting
`audit.pruning = 'on'` (see audit.services.audit_prune). Other databases rely on the ORM
refusal and on the hash chain (audit_verify) to reveal edits.
"""

from __future__ import annotations

from django.db import migrations

TABLES = ("audit_auditevent", "connectors_testrun", "connectors_testattempt")

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(current_setting('audit.pruning', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit history is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING HINT = 'Old records are removed only by manage.py audit_prune.';
END;
$$;
"""


def add_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # params=None: the function body uses % placeholders of its own (RAISE), not the driver's.
    schema_editor.execute(CREATE_FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
        )


def remove_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_append_only()")


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("connectors", "0002_roles"),
    ]

    operations = [migrations.RunPython(add_triggers, remove_triggers)]
