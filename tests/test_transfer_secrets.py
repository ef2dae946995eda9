"""Secrets leave only encrypted, by permission and with the password typed again (issue 8).

Found: Connector admins could download every secret in plain text from the UI export. Now:
their own permission (no role has it), a fresh password, a passphrase-encrypted file (scrypt,
then AES-256-GCM) that import opens with the passphrase, plain text only with the command's
--plaintext, and an audit event for every export with secrets that says how they left.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from audit.models import AuditEvent
from connectors.management import passphrase as cli_passphrase
from connectors.models import Connector
from connectors.transfer import connectors_export, connectors_import_text
from connectors.transfer.envelope import (
    FORMAT,
    EnvelopeError,
    WrongPassphrase,
    envelope_open,
    envelope_seal,
)
from tests.conftest import OAUTH2_PASSWORD, USER_PASSWORD, make_user

pytestmark = pytest.mark.django_db

PASSPHRASE = "correct horse battery staple"
SECRETS = ("user-password-1", "client-secret-1", "row-secret", "wiki-pw")


@pytest.fixture
def inventory(make_connector):
    make_connector(
        "hr_portal",
        rows={"data": [{"key": "tenant_secret", "value": "row-secret", "sensitive": True}]},
        **OAUTH2_PASSWORD,
    )
    make_connector("wiki", auth_config="basic", basic_username="bot", basic_password="wiki-pw")


def secret_exporter(username: str = "exporter") -> Client:
    """A Connector admin who was also granted connectors.export_secrets."""
    user = make_user("admin", username=username)
    user.user_permissions.add(Permission.objects.get(codename="export_secrets"))
    client = Client()
    client.force_login(user)
    return client


def secret_post(**overrides: str) -> dict[str, str]:
    return {
        "include_secrets": "on",
        "password": USER_PASSWORD,
        "passphrase": PASSPHRASE,
        "passphrase_again": PASSPHRASE,
        **overrides,
    }


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# The permission


def test_no_role_has_the_permission_to_export_secrets(db):
    permission = Permission.objects.get(
        content_type__app_label="connectors", codename="export_secrets"
    )
    assert not Group.objects.filter(permissions=permission).exists()
    assert Group.objects.filter(name="Connector admins").exists()


def test_a_connector_admin_cannot_download_secrets(inventory, admin_client):
    page = admin_client.get("/connectors/export/").content.decode()
    assert 'name="include_secrets"' not in page
    assert "Can export connectors with their secrets" in page
    response = admin_client.post("/connectors/export/", secret_post())
    assert response.status_code == 403
    assert_no_secret(response.content.decode())
    denial = AuditEvent.objects.filter(kind="denial", action="permission_denied").get()
    assert denial.details["permission"] == ["connectors.export_secrets"]
    assert not AuditEvent.objects.filter(action="export").exists()


def test_an_export_without_secrets_is_unchanged(inventory, admin_client):
    response = admin_client.post("/connectors/export/", {})
    assert response.status_code == 200
    data = json.loads(response.content)
    assert [c["name"] for c in data["connectors"]] == ["hr_portal", "wiki"]
    assert_no_secret(response.content.decode())
    event = AuditEvent.objects.filter(action="export").get()
    assert event.summary == "Exported 2 connectors"
    assert event.details == {"count": 2, "include_secrets": False}


# The password


@pytest.mark.parametrize("password", ["", "not-my-password"])
def test_the_password_must_be_typed_again(inventory, password):
    client = secret_exporter()
    response = client.post("/connectors/export/", secret_post(password=password))
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert_no_secret(response.content.decode())
    assert not AuditEvent.objects.filter(action="export").exists()
    if password:
        refused = AuditEvent.objects.filter(kind="denial", action="export_refused").get()
        assert refused.username == "exporter"
        assert "wrong password" in refused.summary
        assert "not-my-password" not in json.dumps(refused.details)
        # authenticate() went through django-axes: the failure counts like a failed sign-in.
        assert AuditEvent.objects.filter(action="login_failed").exists()


def test_only_the_signed_in_users_own_password_confirms(inventory):
    from django.contrib.auth.models import User

    User.objects.create_user("someone_else", password="someone-elses-password")
    client = secret_exporter()
    response = client.post(
        "/connectors/export/",
        {**secret_post(password="someone-elses-password"), "username": "someone_else"},
    )
    assert response.status_code == 400
    assert_no_secret(response.content.decode())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"passphrase": "short", "passphrase_again": "short"}, "at least 12 characters"),
        ({"passphrase_again": PASSPHRASE + "x"}, "The two passphrases differ"),
    ],
)
def test_the_passphrase_is_long_enough_and_typed_twice(inventory, overrides, message):
    response = secret_exporter().post("/connectors/export/", secret_post(**overrides))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    # What was typed is not echoed back into the page.
    assert USER_PASSWORD not in page and PASSPHRASE not in page


# The encrypted file


def test_the_download_is_encrypted_and_import_opens_it_with_the_passphrase(inventory):
    client = secret_exporter()
    response = client.post("/connectors/export/", secret_post())
    assert response.status_code == 200
    assert 'filename="connectors.encrypted.json"' in response["Content-Disposition"]
    text = response.content.decode()
    assert_no_secret(text)
    envelope = json.loads(text)
    assert envelope["format"] == FORMAT and envelope["version"] == 1
    assert envelope["cipher"] == "AES-256-GCM"
    kdf = envelope["kdf"]
    assert kdf["name"] == "scrypt" and kdf["n"] >= 2**15 and kdf["r"] == 8 and kdf["p"] == 1
    assert len(base64.b64decode(kdf["salt"])) == 16
    assert len(base64.b64decode(envelope["nonce"])) == 12
    inner = json.loads(envelope_open(envelope, passphrase=PASSPHRASE))
    assert inner["connectors"][0]["oauth2"]["password"] == "user-password-1"
    event = AuditEvent.objects.filter(action="export").get()
    assert event.summary == "Exported 2 connectors with secrets, encrypted with a passphrase"
    assert event.details["include_secrets"] is True and event.details["encrypted"] is True

    # Into an empty inventory: the page asks for the passphrase, refuses a wrong one.
    Connector.objects.all().delete()

    def upload(passphrase: str):
        file = SimpleUploadedFile("c.json", response.content, "application/json")
        return client.post("/connectors/import/", {"file": file, "passphrase": passphrase})

    missing = upload("")
    assert missing.status_code == 400
    assert "encrypted export" in missing.content.decode()
    wrong = upload("a wrong passphrase")
    assert wrong.status_code == 400
    assert "passphrase does not open this file" in wrong.content.decode()
    assert not Connector.objects.exists()
    assert upload(PASSPHRASE).status_code == 302
    restored = Connector.objects.get(name="hr_portal")
    assert restored.oauth2_password == "user-password-1"
    assert restored.params.get(key="tenant_secret").value == "row-secret"
    assert Connector.objects.get(name="wiki").basic_password == "wiki-pw"


def test_two_exports_never_share_salt_nonce_or_ciphertext():
    first = envelope_seal(b"{}", passphrase=PASSPHRASE)
    second = envelope_seal(b"{}", passphrase=PASSPHRASE)
    for key in ("nonce", "ciphertext"):
        assert first[key] != second[key]
    assert first["kdf"]["salt"] != second["kdf"]["salt"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e.update(ciphertext=base64.b64encode(b"x" * 40).decode()),
        lambda e: e["kdf"].update(n=2**16),  # a header change is authenticated too
        lambda e: e["kdf"].update(salt=base64.b64encode(b"s" * 16).decode()),
    ],
)
def test_an_altered_file_does_not_open(tamper):
    envelope = envelope_seal(b'{"connectors": []}', passphrase=PASSPHRASE)
    tamper(envelope)
    with pytest.raises(WrongPassphrase):
        envelope_open(envelope, passphrase=PASSPHRASE)


@pytest.mark.parametrize(
    "change",
    [
        {
            "kdf": {
                "name": "scrypt",
                "salt": "AAAAAAAAAAAAAAAAAAAAAA==",
                "n": 2**30,
                "r": 8,
                "p": 1,
                "length": 32,
            }
        },
        {"kdf": {"name": "pbkdf2"}},
        {
            "kdf": {
                "name": "scrypt",
                "salt": "AAAAAAAAAAAAAAAAAAAAAA==",
                "n": True,
                "r": 8,
                "p": 1,
                "length": 32,
            }
        },
        {"nonce": "\ud800"},
        {"nonce": 12},
        {"cipher": "none"},
        {"version": 2},
    ],
)
def test_a_malformed_envelope_is_a_clear_error_without_running_its_costs(change, db):
    envelope = {**envelope_seal(b"{}", passphrase=PASSPHRASE), **change}
    with pytest.raises(EnvelopeError):
        envelope_open(envelope, passphrase=PASSPHRASE)
    # Through import, the same is a file error (a 400 page, a CommandError), never a crash.
    from connectors.transfer import ImportFileError

    with pytest.raises(ImportFileError):
        connectors_import_text(text=json.dumps(envelope), user=None, passphrase=PASSPHRASE)


def test_the_service_never_writes_secrets_unencrypted_unless_told(inventory):
    from connectors.transfer import ExportRefused

    with pytest.raises(ExportRefused):
        connectors_export(include_secrets=True, user=None)
    with pytest.raises(ExportRefused, match="at least 12"):
        connectors_export(include_secrets=True, user=None, passphrase="short")
    assert not AuditEvent.objects.filter(action="export").exists()


# The commands


def export_command(*args: str) -> str:
    out = io.StringIO()
    call_command("connectors_export", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def passphrase_file(tmp_path):
    path = tmp_path / "passphrase.txt"
    path.write_text(PASSPHRASE + "\n")
    return str(path)


def test_the_command_refuses_secrets_without_a_passphrase_or_plaintext(inventory, monkeypatch):
    monkeypatch.setattr(cli_passphrase, "terminal", lambda: False)
    with pytest.raises(CommandError, match="--passphrase-file FILE"):
        export_command("--include-secrets")
    with pytest.raises(CommandError, match="go with --include-secrets"):
        export_command("--plaintext")
    assert not AuditEvent.objects.filter(action="export").exists()


def test_the_command_writes_plain_text_only_with_plaintext(inventory):
    data = json.loads(export_command("--include-secrets", "--plaintext"))
    assert data["connectors"][0]["oauth2"]["password"] == "user-password-1"
    event = AuditEvent.objects.filter(action="export").get()
    assert event.summary == "Exported 2 connectors with secrets in plain text"
    assert event.details["include_secrets"] is True and event.details["encrypted"] is False


def test_the_command_encrypts_with_a_passphrase_file_and_imports_it_back(
    inventory, passphrase_file, tmp_path, monkeypatch
):
    monkeypatch.setattr(cli_passphrase, "terminal", lambda: False)
    text = export_command("--include-secrets", "--passphrase-file", passphrase_file)
    assert_no_secret(text)
    assert json.loads(text)["format"] == FORMAT
    event = AuditEvent.objects.filter(action="export").get()
    assert event.details["encrypted"] is True
    exported = tmp_path / "connectors.encrypted.json"
    exported.write_text(text)
    Connector.objects.all().delete()

    with pytest.raises(CommandError, match="encrypted export.*--passphrase-file"):
        call_command("connectors_import", str(exported), stdout=io.StringIO())
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase at all\n")
    with pytest.raises(CommandError, match="passphrase does not open this file"):
        call_command(
            "connectors_import",
            str(exported),
            "--passphrase-file",
            str(wrong),
            stdout=io.StringIO(),
        )
    out = io.StringIO()
    call_command(
        "connectors_import", str(exported), "--passphrase-file", passphrase_file, stdout=out
    )
    assert "2 created" in out.getvalue()
    assert Connector.objects.get(name="wiki").basic_password == "wiki-pw"


def test_the_command_asks_at_the_terminal(inventory, tmp_path, monkeypatch):
    typed = iter([PASSPHRASE, PASSPHRASE, PASSPHRASE])
    monkeypatch.setattr(cli_passphrase, "terminal", lambda: True)
    monkeypatch.setattr(cli_passphrase.getpass, "getpass", lambda prompt="": next(typed))
    text = export_command("--include-secrets")
    exported = tmp_path / "c.json"
    exported.write_text(text)
    Connector.objects.all().delete()
    out = io.StringIO()
    call_command("connectors_import", str(exported), stdout=out)
    assert "2 created" in out.getvalue()

    differing = iter([PASSPHRASE, PASSPHRASE + "!"])
    monkeypatch.setattr(cli_passphrase.getpass, "getpass", lambda prompt="": next(differing))
    with pytest.raises(CommandError, match="differ"):
        export_command("--include-secrets")


def test_a_short_passphrase_file_is_refused(inventory, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("short\n")
    with pytest.raises(CommandError, match="at least 12 characters"):
        export_command("--include-secrets", "--passphrase-file", str(short))
    with pytest.raises(CommandError, match="either --plaintext or --passphrase-file"):
        export_command("--include-secrets", "--plaintext", "--passphrase-file", str(short))


@pytest.mark.django_db(transaction=True)
def test_from_outside_real_processes_move_secrets_encrypted(tmp_path, passphrase_file):
    """Real manage.py processes and databases: export encrypted from one, import into another
    through a pipe; a deep or broken file ends in an error line, not a traceback."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    manage = [sys.executable, str(root / "manage.py")]

    def run(db: str, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / db}", "DJANGO_DEBUG": "1"}
        return subprocess.run(
            [*manage, *args], env=env, input=data, capture_output=True, check=False
        )

    for db in ("from.sqlite3", "to.sqlite3"):
        assert run(db, "migrate", "--noinput").returncode == 0
    source = {
        "connectors": [
            {
                "name": "moved",
                "base_url": "https://api.example.test",
                "auth_config": "bearer",
                "bearer": {"token": "moved-token-secret"},
            }
        ]
    }
    assert (
        run("from.sqlite3", "connectors_import", "-", data=json.dumps(source).encode()).returncode
        == 0
    )

    refused = run("from.sqlite3", "connectors_export", "--include-secrets", data=b"")
    assert refused.returncode == 1 and b"--passphrase-file" in refused.stderr
    exported = run(
        "from.sqlite3",
        "connectors_export",
        "--include-secrets",
        "--passphrase-file",
        passphrase_file,
    )
    assert exported.returncode == 0, exported.stderr.decode()
    assert b"moved-token-secret" not in exported.stdout
    assert json.loads(exported.stdout)["format"] == FORMAT

    no_passphrase = run("to.sqlite3", "connectors_import", "-", data=exported.stdout)
    assert no_passphrase.returncode == 1 and b"encrypted export" in no_passphrase.stderr
    imported = run(
        "to.sqlite3",
        "connectors_import",
        "-",
        "--passphrase-file",
        passphrase_file,
        data=exported.stdout,
    )
    assert imported.returncode == 0, imported.stderr.decode()
    plain = run("to.sqlite3", "connectors_export", "--include-secrets", "--plaintext")
    assert json.loads(plain.stdout)["connectors"][0]["bearer"]["token"] == "moved-token-secret"

    for bad in (b"[" * 100_000, b'{"connectors": [{"name": "x\\ud800", "auth_config": []}]}'):
        failed = run("to.sqlite3", "connectors_import", "-", data=bad)
        assert failed.returncode == 1
        assert b"Traceback" not in failed.stderr and b"CommandError" in failed.stderr
