"""On PostgreSQL: pruning only with a one-time permit, no TRUNCATE, a head that cannot move back.

Before this, any session could switch pruning on with `SET audit.pruning = 'on'`, TRUNCATE the
tables, or move the chain head. Now:
- deletes pass only in a transaction that used a prune permit (audit.permits), which needs the
  chain key; the setting is gone;
- TRUNCATE of any audit table is refused, except in Django's test databases (named test_...),
  which the test suite empties between tests;
- the chain head can only name the newest record, and can't be deleted;
- every trigger fires ALWAYS, so `SET session_replication_role = replica` skips none of them;
- every function names its tables with their schema and searches pg_temp last, so a temporary
  table cannot stand in for the permit table.
What still gets through is DDL by the table owner or a superuser (dropping or disabling a
trigger, replacing a function): that is what the keyed chain and the checkpoints reveal.
"""

from __future__ import annotations

from django.db import migrations

HISTORY = ("audit_auditevent", "connectors_testrun", "connectors_testattempt")
HEAD = "audit_auditchainhead"
PERMIT = "audit_auditprunepermit"
ALL_TABLES = (*HISTORY, HEAD, PERMIT)
GENESIS_HASH = "0" * 64


def _functions(schema: str, *, allow_test_truncate: bool = True) -> list[str]:
    path = f"SET search_path = pg_catalog, {schema}, pg_temp"
    test_databases = (
        # Django's test databases: the test suite flushes them with TRUNCATE between tests.
        "IF current_database() LIKE 'test\\_%' THEN RETURN NULL; END IF;"
        if allow_test_truncate
        else ""
    )
    return [
        f"""
CREATE OR REPLACE FUNCTION {schema}.audit_append_only() RETURNS trigger LANGUAGE plpgsql
{path} AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM {schema}.{PERMIT} WHERE id = 1 AND used_txid = txid_current()
    ) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit history is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING HINT = 'Old records are removed only by manage.py audit_prune.';
END;
$$;""",
        f"""
CREATE OR REPLACE FUNCTION {schema}.audit_no_truncate() RETURNS trigger LANGUAGE plpgsql
{path} AS $$
BEGIN
    {test_databases}
    RAISE EXCEPTION 'audit history is append-only: TRUNCATE on % refused', TG_TABLE_NAME
        USING HINT = 'Old records are removed only by manage.py audit_prune.';
END;
$$;""",
        f"""
CREATE OR REPLACE FUNCTION {schema}.audit_chain_head_guard() RETURNS trigger LANGUAGE plpgsql
{path} AS $$
DECLARE
    newest_id bigint;
    newest_hash varchar;
BEGIN
    IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
        SELECT id, hash INTO newest_id, newest_hash
            FROM {schema}.audit_auditevent ORDER BY id DESC LIMIT 1;
        IF NEW.id = 1 AND NEW.last_event_id IS NOT DISTINCT FROM newest_id
                AND NEW.last_hash = coalesce(newest_hash, '{GENESIS_HASH}') THEN
            RETURN NEW;
        END IF;
        -- A second writer racing to create the head: let the primary key refuse it, so the
        -- writer sees the usual unique violation and waits for the first one's row.
        IF TG_OP = 'INSERT' AND NEW.id = 1
                AND EXISTS (SELECT 1 FROM {schema}.{HEAD} WHERE id = 1) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit chain head names only the newest record: % refused', TG_OP;
END;
$$;""",
        f"""
CREATE OR REPLACE FUNCTION {schema}.audit_prune_permit_guard() RETURNS trigger
LANGUAGE plpgsql {path} AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.id = 1 AND NEW.used_txid IS NULL
                AND NOT EXISTS (SELECT 1 FROM {schema}.{PERMIT}) THEN
            RETURN NEW;
        END IF;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.id = OLD.id AND NEW.key_id = OLD.key_id AND NEW.remaining = OLD.remaining - 1
                AND NEW.used_txid = txid_current()
                AND NEW.next_hash ~ '^[0-9a-f]{{64}}$'
                AND encode(sha256(decode(NEW.next_hash, 'hex')), 'hex') = OLD.next_hash THEN
            RETURN NEW;
        END IF;
        -- Closing a permit (the prune is done) only takes a permission away: anyone may.
        IF NEW.id = OLD.id AND NEW.key_id = OLD.key_id AND NEW.remaining = OLD.remaining
                AND NEW.next_hash = OLD.next_hash AND NEW.used_txid IS NULL THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit prune permit: % refused', TG_OP
        USING HINT = 'Only manage.py audit_prune, which holds the chain key, can use a permit.';
END;
$$;""",
    ]


def _triggers() -> list[str]:
    statements = []
    for table in HISTORY:
        # Created by 0002; only made to fire whatever session_replication_role says.
        statements.append(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_append_only")
    for table, function, timing in (
        (HEAD, "audit_chain_head_guard", "BEFORE INSERT OR UPDATE OR DELETE"),
        (PERMIT, "audit_prune_permit_guard", "BEFORE INSERT OR UPDATE OR DELETE"),
    ):
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_guard ON {table}",
            f"CREATE TRIGGER {table}_guard {timing} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()",
            f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_guard",
        ]
    for table in ALL_TABLES:
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate()",
            f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate",
        ]
    return statements


def install_guards(schema_editor, *, allow_test_truncate: bool = True) -> None:
    """Create or replace the functions and triggers (also used by the PostgreSQL tests)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = schema_editor.connection.ops.quote_name(cursor.fetchone()[0])
        # params=None: the bodies use % placeholders of their own (RAISE), not the driver's.
        for statement in _functions(schema, allow_test_truncate=allow_test_truncate):
            cursor.execute(statement, None)
        for statement in _triggers():
            cursor.execute(statement)


def set_up_permits(apps, schema_editor) -> None:
    """Create the permit chain now if a key is configured (else the first prune does it)."""
    from audit.keys import current_chain_keys
    from audit.permits import PERMITS, permit_link

    keys = current_chain_keys()
    Permit = apps.get_model("audit", "AuditPrunePermit")
    if keys.signing_key is None or Permit.objects.filter(pk=1).exists():
        return
    Permit.objects.create(
        pk=1,
        key_id=keys.signing_key_id,
        remaining=PERMITS,
        next_hash=permit_link(keys.signing_key, PERMITS),
    )


def forwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    install_guards(schema_editor)
    set_up_permits(apps, schema_editor)


PREVIOUS_FUNCTION = """
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


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in ALL_TABLES:
            cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        for table in (HEAD, PERMIT):
            cursor.execute(f"DROP TRIGGER IF EXISTS {table}_guard ON {table}")
        for table in HISTORY:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
        cursor.execute(PREVIOUS_FUNCTION, None)
        for name in ("audit_no_truncate", "audit_chain_head_guard", "audit_prune_permit_guard"):
            cursor.execute(f"DROP FUNCTION IF EXISTS {name}()")


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_chain_key_id_prune_permit"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
