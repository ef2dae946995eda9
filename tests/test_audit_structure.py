"""One direction between the apps: audit owns its history models and imports nothing from
connectors; what it needs to know about connectors comes through a registered provider."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import Client

from audit import providers
from audit.forms import AuditFilterForm, known_outcomes
from audit.models import AuditEvent, TestAttempt, TestRun
from audit.sanitize import connector_secrets
from connectors.oauth_http import OUTCOMES
from tests.test_audit_support import make_connector, make_run

AUDIT_DIR = Path(__file__).resolve().parent.parent / "audit"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_audit_code_imports_nothing_from_connectors() -> None:
    offenders = {
        str(path.relative_to(AUDIT_DIR)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] == "connectors"
        )
        for path in AUDIT_DIR.rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_test_runs_and_attempts_are_audit_models_on_their_old_tables() -> None:
    assert TestRun._meta.app_label == "audit"
    assert TestAttempt._meta.app_label == "audit"
    assert TestRun._meta.db_table == "connectors_testrun"
    assert TestAttempt._meta.db_table == "connectors_testattempt"
    assert AuditEvent._meta.get_field("test_run").related_model is TestRun
    # Index and constraint names are kept, so the database needs no change.
    assert [i.name for i in TestRun._meta.indexes] == ["testrun_connector_latest"]
    assert [c.name for c in TestAttempt._meta.constraints] == ["attempt_position_unique"]


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


# sqlmigrate on SQLite needs to switch foreign-key checks off, outside a transaction.
@pytest.mark.django_db(transaction=True)
def test_the_move_changes_nothing_in_the_database() -> None:
    for app, migration in (("audit", "0004"), ("connectors", "0004")):
        out = io.StringIO()
        call_command("sqlmigrate", app, migration, stdout=out)
        statements = [
            line
            for line in out.getvalue().splitlines()
            if line.strip() and not line.startswith("--") and line not in ("BEGIN;", "COMMIT;")
        ]
        assert statements == [], (app, statements)
    tables = set(connection.introspection.table_names())
    assert {"connectors_testrun", "connectors_testattempt"} <= tables
    assert not {"audit_testrun", "audit_testattempt"} & tables


def test_connectors_register_the_provider_at_start_up() -> None:
    provider = providers.get()
    assert "oauth2_client_secret" in provider.secret_field_names()
    assert "oauth2_header_auth_key" in provider.field_names()
    assert provider.outcome_codes() == (*OUTCOMES, "reconnect_needed", "not_connected")
    assert provider.redaction.MASK == "********"


def test_without_a_provider_audit_refuses_instead_of_skipping_masks(monkeypatch) -> None:
    monkeypatch.setattr(providers, "_provider", None)
    with pytest.raises(ImproperlyConfigured):
        providers.get()


def test_outcome_suggestions_are_unchanged() -> None:
    assert known_outcomes() == (
        *OUTCOMES,
        "reconnect_needed",
        "not_connected",
        "internal_error",
        "rate_limited",
        "permission_denied",
        "ok",
    )


@pytest.mark.django_db
def test_filter_form_lists_connectors_through_the_provider() -> None:
    make_connector("zeta_api")
    alpha = make_connector("alpha_api")
    form = AuditFilterForm({"connector": "999"})
    options = form.connector_options()
    assert options.index("alpha_api") < options.index("zeta_api")
    assert f'value="{alpha.pk}"' in options
    assert "#999 (deleted)" in options


@pytest.mark.django_db
def test_masking_still_uses_the_connectors_secret_values() -> None:
    connector = make_connector("mask_api")
    connector.params.create(kind="header", key="X-Tenant", value="tenant-secret-9", sensitive=True)
    secrets = connector_secrets(connector)
    text = secrets.text("s3cret-client-value and tenant-secret-9")
    assert "s3cret-client-value" not in text
    assert "tenant-secret-9" not in text


@pytest.mark.django_db
def test_admin_test_run_pages_stay_under_connectors() -> None:
    connector = make_connector("admin_api")
    run = make_run(connector)
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x-9-y-8-z"))
    listing = client.get("/admin/connectors/testrun/")
    assert listing.status_code == 200
    assert b"admin_api" in listing.content
    page = client.get(f"/admin/connectors/testrun/{run.pk}/change/")
    assert page.status_code == 200
    assert b"basic_client" in page.content  # the attempts inline
    index = client.get("/admin/")
    assert b'href="/admin/connectors/testrun/"' in index.content
