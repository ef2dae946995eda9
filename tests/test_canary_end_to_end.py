"""End to end: unique canary secrets go in through the UI, the command line and a server that
echoes them; afterwards no page, export, log line or database byte holds any of them."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from connectors.models import Connector
from tests.conftest import form_data, make_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("loopback_allowed"),
]

CANARIES = {
    "client_secret": "cnry-client-secret-a1b2c3",
    "client_secret_2": "cnry-client-secret-replaced-d4e5",
    "password": "cnry-grant-password-f6a7b8",
    "row": "cnry-sensitive-row-c9d0e1",
    "basic": "cnry-basic-password-2f3a4b",
    "access_token": "cnry-access-token-5c6d7e",
    "bearer": "cnry-bearer-token-8f9a0b",
}


def assert_clean(data: str | bytes, where: str) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for name, canary in CANARIES.items():
        assert canary not in text, f"{name} canary leaked into {where}"


def database_bytes() -> bytes:
    """The whole database as stored: the SQLite file's bytes, or a PostgreSQL dump."""
    if connection.vendor == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "copy.sqlite3"
            with connection.cursor() as cursor:
                cursor.execute("VACUUM INTO %s", [str(target)])
            return target.read_bytes()
    settings = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": settings.get("PASSWORD") or ""}
    return subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "-h",
            settings["HOST"] or "127.0.0.1",
            "-p",
            str(settings["PORT"] or 5432),
            "-U",
            settings["USER"] or "postgres",
            settings["NAME"],
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    ).stdout


def test_no_canary_anywhere(fault_server, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    admin, operator = Client(), Client()
    admin.force_login(make_user("admin", "canary_admin"))
    operator.force_login(make_user("operator", "canary_operator"))
    # The fault server's /echo answers invalid_grant quoting the password and client secret.
    fault_server.client_secret = CANARIES["client_secret"]
    create = form_data(
        {
            "name": "canary_oauth",
            "base_url": "https://api.example.com",
            "enabled": True,
            "auth_config": "oauth2",
            "oauth2_grant_type": "password",
            "oauth2_client_id": fault_server.client_id,
            "oauth2_client_secret": CANARIES["client_secret"],
            "oauth2_username": "svc",
            "oauth2_password": CANARIES["password"],
            "oauth2_token_url": fault_server.url("/echo"),
            "oauth2_client_authentication": "request_body",
        },
        {"headers": [{"key": "X-Tenant-Secret", "value": CANARIES["row"], "sensitive": True}]},
    )
    assert admin.post("/connectors/new/", create).status_code == 302
    assert (
        admin.post(
            "/connectors/new/",
            form_data(
                {
                    "name": "canary_basic",
                    "enabled": True,  # a disabled connector is never tested
                    "base_url": fault_server.url("/api"),
                    "auth_config": "basic",
                    "basic_username": "u",
                    "basic_password": CANARIES["basic"],
                }
            ),
        ).status_code
        == 302
    )

    # An OAuth2 connector whose API echoes the access token, and a Bearer one whose API echoes
    # the token; both are deleted before the scan, so nothing is masked "because it is known".
    fault_server.token_value = CANARIES["access_token"]
    assert (
        admin.post(
            "/connectors/new/",
            form_data(
                {
                    "name": "canary_token",
                    "enabled": True,  # a disabled connector is never tested
                    "base_url": fault_server.url("/echo-api"),
                    "auth_config": "oauth2",
                    "oauth2_grant_type": "client_credentials",
                    "oauth2_client_id": "c",
                    "oauth2_client_secret": "cnry-not-listed-1",
                    "oauth2_token_url": fault_server.url("/ok"),
                    "oauth2_client_authentication": "request_body",
                }
            ),
        ).status_code
        == 302
    )
    assert (
        admin.post(
            "/connectors/new/",
            form_data(
                {
                    "name": "canary_bearer",
                    "enabled": True,  # a disabled connector is never tested
                    "base_url": fault_server.url("/echo-api"),
                    "auth_config": "bearer",
                    "bearer_token": CANARIES["bearer"],
                }
            ),
        ).status_code
        == 302
    )
    for name in ("canary_token", "canary_bearer"):
        response = operator.post(f"/connectors/{name}/test/", HTTP_X_REQUESTED_WITH="fetch")
        assert 'data-cc-outcome="success"' in response.content.decode()
        assert_clean(response.content, f"test of {name}")
        assert admin.post(f"/connectors/{name}/delete/").status_code == 302
    fault_server.token_value = "ok-token"

    # Replace a secret through the edit form (recorded as "changed", never its value).
    edit = create.copy()
    edit["oauth2_client_secret"] = CANARIES["client_secret_2"]
    edit["oauth2_password"] = ""
    edit["headers-0-value"] = ""
    edit["version"] = "1"
    assert admin.post("/connectors/canary_oauth/edit/", edit).status_code == 302
    fault_server.client_secret = CANARIES["client_secret_2"]

    # Tests from the UI (saved and unsaved form values) and the command line.
    for client, url, data in (
        (operator, "/connectors/canary_oauth/test/", {}),
        (admin, "/connectors/canary_oauth/edit/test/", edit),
        (operator, "/connectors/canary_basic/test/", {}),
    ):
        response = client.post(url, data, HTTP_X_REQUESTED_WITH="fetch")
        assert response.status_code == 200
        assert_clean(response.content, url)
    assert any(
        CANARIES["password"] in r.body.decode("utf-8", "replace") for r in fault_server.requests
    ), "the echo server never saw the password"
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("connector_test", "canary_oauth", "--json", stdout=out)
    assert_clean(out.getvalue(), "connector_test --json")

    # Every page an auditor or operator reads.
    pages = [
        "/connectors/",
        "/connectors/canary_oauth/",
        "/connectors/canary_oauth/edit/",
        "/connectors/canary_basic/",
        "/audit/",
        "/audit/?kind=test_run",
        "/audit/?kind=change",
        "/admin/connectors/testrun/",
    ]
    pages += [f"/audit/{pk}/" for pk in AuditEvent.objects.values_list("pk", flat=True)]
    superuser = Client()
    from django.contrib.auth.models import User

    superuser.force_login(User.objects.create_superuser("canary_root", password="x-9-y-8-z"))
    for page in pages:
        response = superuser.get(page)
        assert response.status_code == 200, page
        assert_clean(response.content, page)

    # Both exports of the audit log, from the page and the command line; the connector export.
    for fmt in ("csv", "json"):
        response = superuser.get(f"/audit/export/?format={fmt}")
        assert_clean(b"".join(response.streaming_content), f"audit export {fmt}")
        out = io.StringIO()
        call_command("audit_export", "--format", fmt, stdout=out)
        assert_clean(out.getvalue(), f"audit_export --format {fmt}")
    assert_clean(admin.post("/connectors/export/", {}).content, "connectors export")
    out = io.StringIO()
    call_command("connectors_export", stdout=out)
    assert_clean(out.getvalue(), "connectors_export")

    # The application's log output and anything printed.
    assert_clean("\n".join(record.getMessage() for record in caplog.records), "log records")
    captured = capsys.readouterr()
    assert_clean(captured.out + captured.err, "stdout/stderr")

    # The whole database, as stored.
    assert Connector.objects.get(name="canary_oauth").oauth2_password == CANARIES["password"]
    stored = database_bytes()
    assert b"canary_oauth" in stored and b"X-Tenant-Secret" in stored  # the scan reads real data
    assert_clean(stored, f"the {connection.vendor} database")


def test_no_canary_from_real_token_shapes_altered_echoes_debug_pages_or_debug_logs(
    fault_server, caplog, settings, monkeypatch
):
    """The surfaces issue 8 added to the scan: provider-shaped token responses (Cognito,
    Firebase, data.token, apiKey, session_key), a server echoing the secret altered, the
    technical 500 page with DEBUG on, and the configured log output at DEBUG level."""
    from tests.peers.interop_server import ECHO_FORMS, SHAPES, InteropServer, canaries

    caplog.set_level(logging.DEBUG)
    settings.CONNECTORS_TEST_RATE_LIMIT = "100/60"  # this scan runs 13 tests in a row
    admin, operator = Client(), Client()
    admin.force_login(make_user("admin", "canary2_admin"))
    operator.force_login(make_user("operator", "canary2_operator"))
    console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    buffer = io.StringIO()
    old_stream = console.setStream(buffer)
    urllib3_logger = logging.getLogger("urllib3")
    old_level = urllib3_logger.level
    urllib3_logger.setLevel(logging.DEBUG)
    issued = [value for shape in SHAPES for value in canaries(shape).values()]
    echo_secret = "cnry-echoed-Secret-77aa99bb"
    api_key = "cnry-query-api-key-31c4"
    try:
        with InteropServer() as peer:
            tested: list[tuple[str, str]] = []
            for shape in SHAPES:
                tested.append((f"shape_{shape.replace('-', '_')}", peer.url(f"/shape/{shape}")))
            for form in ECHO_FORMS:
                tested.append((f"echo_{form.replace('-', '_')}", peer.url(f"/echo/{form}")))
            for name, token_url in tested:
                data = form_data(
                    {
                        "name": name,
                        "enabled": True,
                        "base_url": "https://api.example.com",
                        "auth_config": "oauth2",
                        "oauth2_grant_type": "client_credentials",
                        "oauth2_client_id": peer.client_id,
                        "oauth2_client_secret": echo_secret
                        if name.startswith("echo_")
                        else peer.client_secret,
                        "oauth2_token_url": token_url,
                        "oauth2_client_authentication": "request_body",
                    }
                )
                assert admin.post("/connectors/new/", data).status_code == 302, name
                response = operator.post(f"/connectors/{name}/test/", HTTP_X_REQUESTED_WITH="fetch")
                assert response.status_code == 200
                scan(response.content, [*issued, echo_secret], f"test of {name}")
        # An Api Key sent as a query parameter under a name that looks harmless.
        assert (
            admin.post(
                "/connectors/new/",
                form_data(
                    {
                        "name": "canary_param_key",
                        "enabled": True,
                        "base_url": fault_server.url("/api"),
                        "auth_config": "api_key",
                        "api_key_location": "param",
                        "api_key_param_name": "zq",
                        "api_key": api_key,
                    }
                ),
            ).status_code
            == 302
        )
        response = operator.post(
            "/connectors/canary_param_key/test/", HTTP_X_REQUESTED_WITH="fetch"
        )
        assert response.status_code == 200
        assert any(api_key in r.path for r in fault_server.requests), "the key was never sent"
    finally:
        urllib3_logger.setLevel(old_level)
        console.setStream(old_stream)

    secrets = [*issued, echo_secret, api_key]
    # The technical 500 page, DEBUG on, for a crash while saving a form full of secrets.
    settings.DEBUG = True
    crashing = Client(raise_request_exception=False)
    crashing.force_login(make_user("admin", "canary2_crasher"))

    def crash(**kwargs: object) -> None:
        raise RuntimeError("storage broke while saving")

    monkeypatch.setattr("connectors.views.edit.connector_create", crash)
    response = crashing.post(
        "/connectors/new/",
        form_data(
            {
                "name": "canary_crash",
                "base_url": "https://api.example.com",
                "auth_config": "bearer",
                "bearer_token": api_key,
            },
            {"headers": [{"key": "X-Sig", "value": echo_secret, "sensitive": True}]},
        ),
    )
    assert response.status_code == 500
    assert "storage broke while saving" in response.content.decode()  # the technical page
    scan(response.content, secrets, "the DEBUG 500 page")
    settings.DEBUG = False

    # Every page, the audit exports, the log output as configured and as recorded, the database.
    superuser = Client()
    from django.contrib.auth.models import User

    superuser.force_login(User.objects.create_superuser("canary2_root", password="x-9-y-8-z"))
    pages = ["/connectors/", "/audit/", "/admin/connectors/testrun/"]
    pages += [f"/audit/{pk}/" for pk in AuditEvent.objects.values_list("pk", flat=True)]
    pages += [f"/connectors/{name}/" for name in Connector.objects.values_list("name", flat=True)]
    for page in pages:
        response = superuser.get(page)
        assert response.status_code == 200, page
        scan(response.content, secrets, page)
    for fmt in ("csv", "json"):
        response = superuser.get(f"/audit/export/?format={fmt}")
        scan(b"".join(response.streaming_content), secrets, f"audit export {fmt}")
    output = buffer.getvalue()
    assert "GET /api?zq=" in output  # urllib3's request line was logged, masked
    scan(output, secrets, "the console log at DEBUG")
    scan(
        "\n".join(r.getMessage() for r in caplog.records if r.name != "urllib3.connectionpool"),
        secrets,
        "log records",
    )
    scan(database_bytes(), secrets, f"the {connection.vendor} database")


def scan(data: str | bytes, secrets: list[str], where: str) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for secret in secrets:
        assert secret not in text, f"{secret} leaked into {where}"
        assert secret.upper() not in text, f"{secret} upper-cased leaked into {where}"
        assert secret.encode().hex() not in text.lower(), f"{secret} as hex leaked into {where}"
