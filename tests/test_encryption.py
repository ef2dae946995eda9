"""Secrets at rest: never plaintext in the database, a wrong key is loud, keys rotate.

The library builds its crypter at import time, so tests that change FIELD_ENCRYPTION_KEY run
`manage.py` in a subprocess against a SQLite file of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from connectors.models import ALL_SECRET_FIELDS
from tests.conftest import OAUTH2_PASSWORD

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_raw_columns_never_hold_plaintext(make_connector):
    secrets = {
        "oauth2_client_secret": "raw-check-client-secret",
        "oauth2_password": "raw-check-password",
    }
    make_connector(
        rows={"data": [{"key": "tenant_secret", "value": "raw-check-row", "sensitive": True}]},
        **{**OAUTH2_PASSWORD, **secrets},
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(ALL_SECRET_FIELDS)} FROM connectors_connector")
        columns = cursor.fetchone()
        cursor.execute("SELECT value FROM connectors_tokenrequestparam")
        row_value = cursor.fetchone()[0]
    stored = " ".join(str(c) for c in columns) + row_value
    for plaintext in [*secrets.values(), "raw-check-row"]:
        assert plaintext not in stored
    assert all(str(c).startswith("gAAAA") for c in columns)  # Fernet tokens


TEST_ONLY_ENV = ("DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SECURE_SSL_REDIRECT", "DATABASE_URL")


def manage(
    db: Path, key: str, *args: str, check: bool = True, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if k not in TEST_ONLY_ENV},
        **(extra_env or {}),
        "DATABASE_URL": f"sqlite:///{db}",
        "FIELD_ENCRYPTION_KEY": key,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "subprocess-test-secret-key-0123456789abcdefghijklmnop",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


CREATE = """
from connectors.demo import demo_connectors_ensure
demo_connectors_ensure(base_url="https://demo.example.com")
"""
READ_ALL = """
from connectors.models import Connector, TokenRequestParam, ALL_SECRET_FIELDS
values = [getattr(c, f) for c in Connector.objects.all() for f in ALL_SECRET_FIELDS]
values += [p.value for p in TokenRequestParam.objects.all()]
print("demo-password" in values, any(v.startswith("gAAAA") for v in values))
"""


@pytest.fixture
def secret_db(tmp_path) -> tuple[Path, str]:
    db = tmp_path / "keys.sqlite3"
    old = Fernet.generate_key().decode()
    manage(db, old, "migrate", "--noinput")
    manage(db, old, "shell", "-c", CREATE)
    return db, old


def test_wrong_key_is_a_clear_error_not_ciphertext(secret_db):
    db, _old = secret_db
    wrong = Fernet.generate_key().decode()
    result = manage(db, wrong, "shell", "-c", READ_ALL, check=False)
    assert result.returncode != 0
    assert "cannot be decrypted with FIELD_ENCRYPTION_KEY" in result.stderr
    assert "gAAAA" not in result.stdout
    check = manage(db, wrong, "check", check=False)
    assert check.returncode != 0 and "connectors.E001" in check.stderr


def test_rotation_re_encrypts_everything_under_the_new_key(secret_db):
    db, old = secret_db
    new = Fernet.generate_key().decode()
    assert (
        manage(db, f"{new},{old}", "shell", "-c", READ_ALL).stdout.strip().splitlines()[-1]
        == "True False"
    )
    rotated = manage(db, f"{new},{old}", "connectors_rotate_key")
    assert "Re-encrypted" in rotated.stdout
    assert manage(db, new, "shell", "-c", READ_ALL).stdout.strip().splitlines()[-1] == "True False"
    assert manage(db, old, "shell", "-c", READ_ALL, check=False).returncode != 0


@pytest.mark.parametrize(
    ("key", "message"),
    [("", "FIELD_ENCRYPTION_KEY is not set"), ("not-a-key", "is not a valid Fernet key")],
)
def test_production_start_up_stops_without_a_valid_key(tmp_path, key, message):
    result = manage(tmp_path / "x.sqlite3", key, "check", check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Fernet.generate_key" in result.stderr  # says how to make one
    if key:
        assert key not in result.stderr


def test_check_deploy_passes_with_a_production_environment(tmp_path):
    env_key = Fernet.generate_key().decode()
    production = {"DJANGO_ALLOWED_HOSTS": "console.example.com", "DJANGO_HSTS_PRELOAD": "1"}
    result = manage(
        tmp_path / "x.sqlite3",
        env_key,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        check=False,
        extra_env=production,
    )
    assert result.returncode == 0, result.stderr


def _store_under_another_key(table: str, column: str, pk: int) -> None:
    """Overwrite one stored value with a ciphertext of a key the server does not have."""
    foreign = Fernet(Fernet.generate_key()).encrypt(b"lost-secret").decode()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [foreign, pk])  # noqa: S608


@pytest.mark.django_db
def test_every_stored_secret_is_checked_not_only_the_newest(make_connector):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.test.utils import CaptureQueriesContext

    from connectors.checks import encryption_key_reads_stored_secrets
    from connectors.models import TokenRequestParam

    oldest = make_connector("hr_oldest", rows={"data": [{"key": "tenant_secret", "value": "t"}]})
    make_connector("hr_middle")
    make_connector("hr_newest", rows={"data": [{"key": "tenant_secret", "value": "t"}]})
    _store_under_another_key("connectors_connector", "oauth2_client_secret", oldest.pk)
    row = TokenRequestParam.objects.get(connector=oldest.pk)
    _store_under_another_key("connectors_tokenrequestparam", "value", row.pk)

    # manage.py check stays cheap: it reads the newest connector and row only.
    assert encryption_key_reads_stored_secrets(None) == []
    for chunk_size in (1, 2000):
        out = StringIO()
        with (
            CaptureQueriesContext(connection) as queries,
            pytest.raises(CommandError, match="2 stored secret") as raised,
        ):
            call_command("connectors_check_secrets", chunk_size=chunk_size, stdout=out)
        assert raised.value.returncode == 1
        assert out.getvalue().splitlines() == [
            "hr_oldest: oauth2_client_secret cannot be decrypted",
            "hr_oldest: data row tenant_secret cannot be decrypted",
        ]
        assert "lost-secret" not in out.getvalue() and "gAAAA" not in out.getvalue()
        # Only the secret columns are read, never whole rows.
        scan = [q["sql"] for q in queries.captured_queries if "connectors_connector" in q["sql"]]
        assert scan and not any("ca_bundle" in sql or "description" in sql for sql in scan)


@pytest.mark.django_db
def test_the_secrets_check_passes_when_every_secret_is_readable(make_connector):
    from io import StringIO

    from django.core.management import call_command

    make_connector("hr_portal")
    out = StringIO()
    call_command("connectors_check_secrets", stdout=out)
    assert "Every stored secret can be decrypted" in out.getvalue()


def test_production_start_up_stops_without_an_audit_chain_key(tmp_path):
    """An unkeyed chain can be rebuilt by anyone with database access: no key, no start."""
    result = manage(
        tmp_path / "x.sqlite3",
        Fernet.generate_key().decode(),
        "check",
        check=False,
        extra_env={"AUDIT_CHAIN_KEY": ""},
    )
    assert result.returncode != 0
    assert "AUDIT_CHAIN_KEY is not set" in result.stderr
    assert "urlsafe_b64encode" in result.stderr  # says how to make one
