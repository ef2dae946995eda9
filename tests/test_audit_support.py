"""Shared builders for the audit-log tests (no tests here)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent, TestAttempt, TestRun
from audit.services import audit_record
from connectors.models import Connector

ROLE_GROUPS = ("Connector viewers", "Connector operators", "Connector admins")

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
)


def make_user(username: str, *, group: str | None = None, superuser: bool = False) -> User:
    if superuser:
        return User.objects.create_superuser(username, f"{username}@example.com", "pw-unused-123")
    user = User.objects.create_user(username, f"{username}@example.com", "pw-unused-123")
    if group:
        role, _ = Group.objects.get_or_create(name=group)
        # The data migration grants it; a transactional test's flush may have removed the grant.
        role.permissions.add(
            Permission.objects.get(content_type__app_label="audit", codename="view_auditevent")
        )
        user.groups.add(role)
    return user


def make_connector(name: str = "crm_api", **fields: Any) -> Connector:
    values: dict[str, Any] = {
        "auth_config": "oauth2",
        "oauth2_grant_type": "client_credentials",
        "oauth2_client_id": "client-one",
        "oauth2_client_secret": "s3cret-client-value",
        "oauth2_token_url": "https://auth.example.com/oauth/token",
    }
    values.update(fields)
    return Connector.objects.create(name=name, **values)


def make_run(
    connector: Connector,
    *,
    user: User | None = None,
    outcome: str = "invalid_client",
    message: str = "The server refused the client credentials.",
    attempts: list[dict[str, Any]] | None = None,
) -> TestRun:
    """A run as the connection-test code writes it, then recorded like it records it."""
    run = TestRun.objects.create(
        connector_id=connector.pk,
        connector_name=connector.name,
        user_id=user.pk if user else None,
        username=user.get_username() if user else "",
        source="saved",
        started_at=timezone.now() - dt.timedelta(seconds=2),
        duration_ms=412,
        ok=outcome == "success",
        outcome=outcome,
        message=message,
        hint="Check the client secret.",
        client_authentication_used="",
        token=None,
        config={"auth_config": "oauth2", "oauth2_client_secret": "set", "oauth2_client_id": "x"},
    )
    rows = (
        attempts
        if attempts is not None
        else [
            {"client_authentication": "basic_client", "status_code": 401},
            {"client_authentication": "request_body", "status_code": 401},
        ]
    )
    for position, row in enumerate(rows, start=1):
        values: dict[str, Any] = {
            "method": "POST",
            "url": connector.oauth2_token_url,
            "request_headers": [
                ["Authorization", "Basic ********"],
                ["Accept", "application/json"],
            ],
            "request_body": [["grant_type", "client_credentials"], ["client_id", "client-one"]],
            "response_headers": [["Content-Type", "application/json"]],
            "response_excerpt": '{"error": "invalid_client"}',
            "duration_ms": 200,
            "outcome": outcome,
            "message": "invalid_client: client authentication failed",
            "curl": 'curl -X POST -u "client-one:$CLIENT_SECRET" https://auth.example.com/oauth/token',
        }
        values.update(row)
        TestAttempt.objects.create(run=run, position=position, **values)
    audit_record(
        kind="test_run",
        action="test",
        test_run=run,
        user=user,
        connector=connector,
        outcome=run.outcome,
        summary=run.message,
    )
    return run


def record_change(
    connector: Connector, *, user: User | None = None, changes: list[dict[str, Any]] | None = None
) -> AuditEvent:
    return audit_record(
        kind="change",
        action="edit",
        user=user,
        connector=connector,
        summary=f"Edited {connector.name}: Client ID",
        details={
            "changes": changes
            if changes is not None
            else [
                {"field": "oauth2_client_id", "label": "Client ID", "before": "a", "after": "b"},
                {
                    "field": "oauth2_client_secret",
                    "label": "Client Secret",
                    "before": None,
                    "after": "changed",
                },
            ]
        },
    )


AUDIT_TABLES = (
    "audit_auditevent",
    "connectors_testrun",
    "connectors_testattempt",
    "audit_auditchainhead",
    "audit_auditprunepermit",
)


def raw_sql(sql: str, params: list[Any] | None = None) -> None:
    """Run SQL behind the ORM's back, as someone with database access would."""
    with connection.cursor() as cursor:
        triggers: list[tuple[str, str, str]] = []
        if connection.vendor == "postgresql":
            # The table owner can switch triggers off with DDL (they fire ALWAYS, so
            # session_replication_role is not enough); that is the edit the chain must catch.
            cursor.execute(
                "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relname = ANY(%s)",
                [list(AUDIT_TABLES)],
            )
            triggers = list(cursor.fetchall())
            # ALTER TABLE refuses while deferred foreign-key checks are pending: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in AUDIT_TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        try:
            cursor.execute(sql, params or [])
        finally:
            for table, name, enabled in triggers:
                mode = {"A": "ENABLE ALWAYS", "R": "ENABLE REPLICA", "D": "DISABLE"}.get(
                    enabled, "ENABLE"
                )
                cursor.execute(f"ALTER TABLE {table} {mode} TRIGGER {name}")
            if triggers:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # before re-arming, as above
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
