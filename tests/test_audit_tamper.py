"""A log that shows tampering, even by someone with database access: the keyed chain, key
rotation, and signed checkpoints kept outside the database."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from audit.chain import chain_hash, chain_verify, event_payload, run_and_attempts
from audit.keys import key_id, mac
from audit.models import AuditChainHead, AuditEvent, AuditPrunePermit
from audit.permits import permit_link
from audit.pruning import audit_prune
from audit.services import AuditWriteError
from tests.test_audit_support import (
    make_connector,
    make_run,
    postgres_only,
    raw_sql,
    record_change,
)

pytestmark = pytest.mark.django_db

KEY_A = b"A" * 32
KEY_B = b"B" * 40


def verify():
    return list(chain_verify(chunk_size=3))[-1]


def _records(count: int = 4) -> list[AuditEvent]:
    connector = make_connector()
    return [
        make_run(connector).audit_event if i == 1 else record_change(connector)
        for i in range(count)
    ]


def _rehash_from(start_id: int, *, key: bytes | None, key_name: str = "") -> None:
    """What an attacker without the key does: recompute every hash from a record on."""
    prev = None
    for event in AuditEvent.objects.filter(pk__gte=start_id).order_by("id"):
        if prev is not None:
            event.prev_hash = prev
        event.key_id = key_name
        run, attempts = run_and_attempts(event)
        new = chain_hash(event.prev_hash, event_payload(event, run, attempts), key)
        raw_sql(
            "UPDATE audit_auditevent SET prev_hash = %s, hash = %s, key_id = %s WHERE id = %s",
            [event.prev_hash, new, key_name, event.pk],
        )
        prev = new
    _move_head()


def _move_head() -> None:
    last = AuditEvent.objects.order_by("-id").first()
    raw_sql(
        "UPDATE audit_auditchainhead SET last_event_id = %s, last_hash = %s WHERE id = 1",
        [last.pk if last else None, last.hash if last else "0" * 64],
    )


def _checkpoint_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.checkpoints"
    call_command("audit_checkpoint", "--output", str(path))
    return path


# --- the keyed chain ---------------------------------------------------------------------


def test_records_are_hmac_signed_and_name_their_key():
    with override_settings(AUDIT_CHAIN_KEYS=[KEY_A]):
        event = record_change(make_connector())
    assert event.key_id == key_id(KEY_A)
    run, attempts = run_and_attempts(event)
    payload = event_payload(event, run, attempts)
    assert event.hash == chain_hash(event.prev_hash, payload, KEY_A)
    assert event.hash != chain_hash(event.prev_hash, payload, None)
    with override_settings(AUDIT_CHAIN_KEYS=[KEY_A]):
        assert verify().ok


def test_records_from_before_the_key_and_under_older_keys_stay_verifiable():
    connector = make_connector()
    with override_settings(AUDIT_CHAIN_KEYS=[]):
        legacy = [record_change(connector), make_run(connector).audit_event]
    with override_settings(AUDIT_CHAIN_KEYS=[KEY_A]):
        under_a = record_change(connector)
    with override_settings(AUDIT_CHAIN_KEYS=[KEY_B, KEY_A]):
        under_b = record_change(connector)
        result = verify()
    assert [e.key_id for e in legacy] == ["", ""]
    assert (under_a.key_id, under_b.key_id) == (key_id(KEY_A), key_id(KEY_B))
    assert result.ok and result.checked == 4
    # Dropping a key that still signs records is reported, not silently accepted.
    with override_settings(AUDIT_CHAIN_KEYS=[KEY_B]):
        result = verify()
    assert not result.ok and result.bad_id == under_a.pk
    assert f"key id {key_id(KEY_A)}" in result.problem


def test_edit_with_every_later_hash_recomputed_without_the_key_is_caught():
    records = _records()
    victim = records[2]
    raw_sql("UPDATE audit_auditevent SET summary = 'nothing happened' WHERE id = %s", [victim.pk])
    _rehash_from(victim.pk, key=None)  # plain SHA-256, the only hash the attacker can make
    result = verify()
    assert not result.ok and result.bad_id == victim.pk
    assert "not signed with the chain key" in result.problem
    with pytest.raises(CommandError, match="AUDIT CHAIN BROKEN"):
        call_command("audit_verify")


def test_edit_rehashed_under_a_guessed_key_is_caught():
    records = _records()
    victim = records[1]
    raw_sql("UPDATE connectors_testrun SET outcome = 'success' WHERE id = %s", [victim.test_run_id])
    _rehash_from(victim.pk, key=KEY_B, key_name=records[0].key_id)
    result = verify()
    assert not result.ok and result.bad_id == victim.pk
    assert "does not match its hash" in result.problem


def test_a_forged_appended_record_is_caught():
    records = _records(2)
    last = records[-1]
    for forged_key_id in ("", "0123456789abcdef"):
        forged = AuditEvent(
            kind="change",
            action="edit",
            connector_name="crm_api",
            summary="harmless",
            created_at=timezone.now(),
            prev_hash=last.hash,
            key_id=forged_key_id,
        )
        forged.hash = chain_hash(last.hash, event_payload(forged, None, []), None)
        raw_sql(
            "INSERT INTO audit_auditevent (created_at, kind, action, user_id, username, "
            "connector_id, connector_name, source, outcome, summary, details, prev_hash, hash, "
            "key_id) VALUES (%s, 'change', 'edit', NULL, '', NULL, 'crm_api', '', '', "
            "'harmless', '{}', %s, %s, %s)",
            [forged.created_at, forged.prev_hash, forged.hash, forged_key_id],
        )
        _move_head()
        result = verify()
        assert not result.ok and result.bad_id == AuditEvent.objects.order_by("-id")[0].pk
        raw_sql("DELETE FROM audit_auditevent WHERE id > %s", [last.pk])
        _move_head()


def test_once_keyed_the_log_takes_no_unkeyed_record(caplog):
    connector = make_connector()
    record_change(connector)
    with override_settings(AUDIT_CHAIN_KEYS=[]):
        with pytest.raises(AuditWriteError):
            record_change(connector)
    assert AuditEvent.objects.count() == 1
    assert "AuditWriteError" in caplog.text
    assert verify().ok


def test_a_missing_key_is_a_system_check_warning():
    from audit.checks import chain_key_check

    assert chain_key_check() == []
    with override_settings(AUDIT_CHAIN_KEYS=[]):
        assert [m.id for m in chain_key_check()] == ["audit.W001"]


# --- checkpoints -------------------------------------------------------------------------


def test_checkpoint_line_is_signed_and_appended(tmp_path, capsys):
    records = _records(3)
    call_command("audit_checkpoint")
    line = json.loads(capsys.readouterr().out)
    assert (line["count"], line["last_id"], line["head"]) == (3, records[-1].pk, records[-1].hash)
    assert line["key_id"] == records[-1].key_id
    fields = {k: v for k, v in line.items() if k != "mac"}
    assert len(line["mac"]) == 64 and line["mac"] != mac(b"x" * 32, json.dumps(fields).encode())
    path = _checkpoint_file(tmp_path)
    record_change(make_connector("other_api"))
    call_command("audit_checkpoint", "--output", str(path))
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["count"] == 4
    out = io.StringIO()
    call_command("audit_verify", "--checkpoint", str(path), stdout=out)
    assert "matches the checkpoint of" in out.getvalue() and "4 records" in out.getvalue()


def test_rollback_with_the_head_moved_back_is_caught_by_the_checkpoint(tmp_path):
    records = _records(5)
    path = _checkpoint_file(tmp_path)
    raw_sql(
        "DELETE FROM connectors_testattempt WHERE run_id IN (SELECT test_run_id FROM "
        "audit_auditevent WHERE id > %s AND test_run_id IS NOT NULL)",
        [records[2].pk],
    )
    raw_sql("DELETE FROM audit_auditevent WHERE id > %s", [records[2].pk])
    _move_head()
    assert verify().ok  # the chain alone cannot tell: it is a shorter, valid chain
    with pytest.raises(CommandError, match="rolled back"):
        call_command("audit_verify", "--checkpoint", str(path))


def test_a_wiped_log_is_caught_by_the_checkpoint(tmp_path):
    _records(3)
    path = _checkpoint_file(tmp_path)
    raw_sql("DELETE FROM connectors_testattempt")
    raw_sql("DELETE FROM audit_auditevent")
    raw_sql("DELETE FROM connectors_testrun")
    raw_sql("DELETE FROM audit_auditchainhead")
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "empty" in out.getvalue()  # without the checkpoint there is nothing to compare
    with pytest.raises(CommandError, match="wiped"):
        call_command("audit_verify", "--checkpoint", str(path))


def test_truncation_is_caught(tmp_path):
    records = _records(4)
    path = _checkpoint_file(tmp_path)
    raw_sql("DELETE FROM audit_auditevent WHERE id = %s", [records[-1].pk])
    with pytest.raises(CommandError, match="AUDIT CHAIN BROKEN"):
        call_command("audit_verify", "--checkpoint", str(path))


def test_a_whole_rewrite_without_the_key_is_caught_by_the_checkpoint(tmp_path):
    records = _records(4)
    path = _checkpoint_file(tmp_path)
    raw_sql("UPDATE audit_auditevent SET summary = 'nothing' WHERE id = %s", [records[0].pk])
    _rehash_from(records[0].pk, key=None)  # every record turned into an unkeyed one
    assert verify().ok  # looks like a log from before the key existed
    with pytest.raises(CommandError, match="rewritten"):
        call_command("audit_verify", "--checkpoint", str(path))


def test_an_altered_or_foreign_checkpoint_is_refused(tmp_path):
    _records(3)
    path = _checkpoint_file(tmp_path)
    line = json.loads(path.read_text())
    line["count"] = 2
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(CommandError, match="signature does not match"):
        call_command("audit_verify", "--checkpoint", str(path))
    (tmp_path / "other").mkdir()
    with override_settings(AUDIT_CHAIN_KEYS=[KEY_B]):
        other = _checkpoint_file(tmp_path / "other")
    with pytest.raises(CommandError, match="does not list"):
        call_command("audit_verify", "--checkpoint", str(other))
    path.write_text("not a checkpoint\n")
    with pytest.raises(CommandError, match="UNUSABLE"):
        call_command("audit_verify", "--checkpoint", str(path))


def test_checkpoint_needs_a_key():
    with override_settings(AUDIT_CHAIN_KEYS=[]), pytest.raises(CommandError, match="not set"):
        call_command("audit_checkpoint")


def test_pruning_after_a_checkpoint_keeps_it_valid(tmp_path):
    connector = make_connector()
    long_ago = timezone.now() - dt.timedelta(days=100)
    with mock.patch("audit.services.timezone.now", return_value=long_ago):
        old = [record_change(connector) for _ in range(3)]
    # One checkpoint whose newest record is pruned later, and one whose newest record stays.
    (tmp_path / "early").mkdir()
    early = _checkpoint_file(tmp_path / "early")
    recent = record_change(connector)
    late = _checkpoint_file(tmp_path)
    audit_prune(cutoff=timezone.now() - dt.timedelta(days=90))
    assert not AuditEvent.objects.filter(pk__in=[e.pk for e in old]).exists()
    for path in (early, late):
        out = io.StringIO()
        call_command("audit_verify", "--checkpoint", str(path), stdout=out)
        assert "matches the checkpoint" in out.getvalue()
    assert AuditChainHead.objects.get().last_event_id > recent.pk


def test_chain_key_setting_is_validated():
    from django.core.exceptions import ImproperlyConfigured

    from audit.keys import parse_chain_keys

    good = base64.urlsafe_b64encode(KEY_A).decode()
    assert parse_chain_keys(f" {good} , {base64.urlsafe_b64encode(KEY_B).decode()}") == [
        KEY_A,
        KEY_B,
    ]
    short = base64.urlsafe_b64encode(b"x" * 16).decode()
    for bad in (short, "not base64!", f"{good},{short}"):
        with pytest.raises(ImproperlyConfigured) as excinfo:
            parse_chain_keys(bad)
        assert short not in str(excinfo.value)


# --- PostgreSQL: what a session with database access can no longer do -------------------


def _refused(sql: str, params: list | None = None, *, setup: tuple[str, ...] = ()) -> str:
    """Run statements in a savepoint; the database must refuse the last one."""
    with pytest.raises(DatabaseError) as excinfo:
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in setup:
                cursor.execute(statement)
            cursor.execute(sql, params or [])
    return str(excinfo.value)


@pytest.mark.postgres
@postgres_only
@pytest.mark.parametrize(
    "setup",
    [
        ("SET LOCAL audit.pruning = 'on'",),
        ("SET LOCAL session_replication_role = replica",),
        (
            # A temporary table would be found first by an unqualified name.
            "CREATE TEMP TABLE audit_auditprunepermit (id int, used_txid bigint)",
            "INSERT INTO audit_auditprunepermit VALUES (1, txid_current())",
        ),
    ],
    ids=["pruning-setting", "replica-role", "temp-permit-table"],
)
def test_postgres_no_session_trick_opens_deletes(setup):
    records = _records(2)
    for table in ("audit_auditevent", "connectors_testrun", "connectors_testattempt"):
        assert "append-only" in _refused(f"DELETE FROM {table}", setup=setup)
    assert AuditEvent.objects.count() == len(records)


@pytest.mark.postgres
@postgres_only
def test_postgres_permits_cannot_be_forged_reused_or_removed():
    _records(1)
    permit = AuditPrunePermit.objects.get()
    assert permit.key_id == key_id(settings.AUDIT_CHAIN_KEYS[0])
    attempts = [
        "UPDATE audit_auditprunepermit SET used_txid = txid_current()",
        "UPDATE audit_auditprunepermit SET used_txid = txid_current(), "
        f"remaining = remaining - 1, next_hash = '{'ab' * 32}'",
        # Replaying the stored value is not a preimage of itself.
        "UPDATE audit_auditprunepermit SET used_txid = txid_current(), remaining = remaining - 1",
        "DELETE FROM audit_auditprunepermit",
        "INSERT INTO audit_auditprunepermit (id, key_id, remaining, next_hash) "
        f"VALUES (2, 'x', 5, '{'cd' * 32}')",
    ]
    for sql in attempts:
        assert "prune permit" in _refused(sql)
    # The right link opens deletes, but the same link cannot be used twice.
    link = permit_link(settings.AUDIT_CHAIN_KEYS[0], permit.remaining - 1)
    update = (
        "UPDATE audit_auditprunepermit SET next_hash = %s, remaining = remaining - 1, "
        "used_txid = txid_current()"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(update, [link])
        cursor.execute("DELETE FROM connectors_testattempt WHERE false")
        transaction.set_rollback(True)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(update, [link])
    assert "prune permit" in _refused(update, [link])


@pytest.mark.postgres
@postgres_only
def test_postgres_prune_uses_one_permit_and_leaves_a_signed_record():
    connector = make_connector()
    with mock.patch(
        "audit.services.timezone.now", return_value=timezone.now() - dt.timedelta(days=100)
    ):
        [record_change(connector) for _ in range(3)]
    before = AuditPrunePermit.objects.get().remaining
    result = audit_prune(cutoff=timezone.now() - dt.timedelta(days=90))
    permit = AuditPrunePermit.objects.get()
    assert (result.count, permit.remaining, permit.used_txid) == (3, before - 1, None)
    assert result.record.details["permits_left"] == before - 1
    assert result.record.key_id == key_id(settings.AUDIT_CHAIN_KEYS[0])
    assert verify().ok
    # A later delete in the same transaction finds the permit closed.
    assert "append-only" in _refused("DELETE FROM audit_auditevent")
    # Without the key the permits were made with, there is no prune.
    record_change(connector)
    with override_settings(AUDIT_CHAIN_KEYS=[KEY_B]):
        with pytest.raises(AuditWriteError, match="no longer lists"):
            audit_prune(cutoff=timezone.now() + dt.timedelta(days=1))


@pytest.mark.postgres
@postgres_only
def test_postgres_refuses_truncate_outside_the_test_suite():
    from importlib import import_module

    guards = import_module("audit.migrations.0006_postgres_guards")
    _records(2)
    tables = guards.ALL_TABLES
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE needs none pending
        # As installed in a database that is not one of Django's test databases.
        with connection.schema_editor(atomic=False) as editor:
            guards.install_guards(editor, allow_test_truncate=False)
        for table in tables:
            assert "TRUNCATE" in _refused(f"TRUNCATE {table} CASCADE")
        transaction.set_rollback(True)
    assert AuditEvent.objects.count() == 2


@pytest.mark.postgres
@postgres_only
def test_postgres_chain_head_cannot_move_back_or_vanish():
    records = _records(3)
    first = records[0]
    assert "chain head" in _refused(
        "UPDATE audit_auditchainhead SET last_event_id = %s, last_hash = %s",
        [first.pk, first.hash],
    )
    assert "chain head" in _refused("DELETE FROM audit_auditchainhead")
    assert "chain head" in _refused("UPDATE audit_auditchainhead SET last_hash = %s", ["f" * 64])
    assert AuditChainHead.objects.get().last_event_id == records[-1].pk
