"""Canary secrets put everywhere a careless caller or server could put them never come out."""

from __future__ import annotations

import logging
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import AuditWriteError, audit_record
from tests.test_audit_support import make_connector, make_run, make_user

pytestmark = pytest.mark.django_db

CLIENT_SECRET = "CANARY-client-secret-7f3a9"
PASSWORD = "CANARY-password-4c1d8"
TOKEN = "CANARYaccesstoken0d2e6b"
PARAM_SECRET = "CANARY-param-value-91ab"
CANARIES = (CLIENT_SECRET, PASSWORD, TOKEN, PARAM_SECRET, "CANARY")


def assert_clean(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"{canary} leaked into {where}"


@pytest.fixture
def leaky_log():
    """A connector whose secrets a careless caller and a chatty server put everywhere."""
    connector = make_connector(
        "canary_api",
        oauth2_grant_type="password",
        oauth2_client_secret=CLIENT_SECRET,
        oauth2_password=PASSWORD,
    )
    connector.params.create(kind="data", key="x_tenant_pin", value=PARAM_SECRET, sensitive=True)
    user = make_user("carol")
    audit_record(
        kind="change",
        action="edit",
        user=user,
        connector=connector,
        summary=f"Edited canary_api (was {CLIENT_SECRET})",
        details={
            "changes": [
                # A caller bug: raw values on secret fields instead of set/changed/cleared.
                {
                    "field": "oauth2_client_secret",
                    "label": "Client Secret",
                    "before": "old-value-9999",
                    "after": CLIENT_SECRET,
                },
                {
                    "field": "oauth2_password",
                    "label": "Password",
                    "before": None,
                    "after": PASSWORD,
                },
                {
                    "field": "description",
                    "label": "Description",
                    "before": "",
                    "after": f"pasted by mistake: {PARAM_SECRET}",
                },
                {
                    "field": "params_data",
                    "label": "Additional Request Data",
                    "before": [],
                    "after": [f"x_tenant_pin: {PARAM_SECRET}"],
                },
            ],
            "client_secret": CLIENT_SECRET,
            "nested": {"Authorization": f"Bearer {TOKEN}", "note": f"access_token={TOKEN}"},
        },
    )
    audit_record(
        kind="denial",
        action="blocked",
        user=user,
        connector=connector,
        outcome="blocked",
        summary=f"Blocked https://auth.example.com/?client_secret={CLIENT_SECRET}",
        details={"url": f"https://u:{PASSWORD}@auth.example.com/token?password={PASSWORD}"},
    )
    make_run(
        connector,
        user=user,
        message=f"Server said: bad secret {CLIENT_SECRET}",
        attempts=[
            {
                "client_authentication": "basic_client",
                "url": f"https://auth.example.com/oauth/token?client_secret={CLIENT_SECRET}",
                "request_headers": [
                    ["Authorization", f"Bearer {TOKEN}"],
                    ["X-Api-Key", PARAM_SECRET],
                ],
                "request_body": [
                    ["grant_type", "password"],
                    ["password", PASSWORD],
                    ["x_tenant_pin", PARAM_SECRET],
                ],
                "status_code": 200,
                "response_headers": [["Set-Cookie", f"session={TOKEN}"]],
                "response_excerpt": f'{{"access_token": "{TOKEN}", "echo": "{CLIENT_SECRET}"}}',
                "message": f"echoed {PASSWORD}",
                "curl": f"curl -d password={PASSWORD} -H 'Authorization: Bearer {TOKEN}'",
            }
        ],
    )
    return connector


def test_no_canary_in_pages(client, leaky_log):
    client.force_login(make_user("vera", group="Connector viewers"))
    pages = [reverse("audit:list"), f"{reverse('audit:list')}?q=canary"]
    pages += [
        reverse("audit:detail", args=[pk]) for pk in AuditEvent.objects.values_list("pk", flat=True)
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200
        assert_clean(response.content.decode(), url)
    html = client.get(
        reverse("audit:detail", args=[AuditEvent.objects.get(kind="test_run").pk])
    ).content.decode()
    assert "********" in html  # masked, not dropped


def test_no_canary_in_admin(client, leaky_log):
    client.force_login(make_user("root", superuser=True))
    assert_clean(client.get("/admin/audit/auditevent/").content.decode(), "admin list")
    for pk in AuditEvent.objects.values_list("pk", flat=True):
        assert_clean(client.get(f"/admin/audit/auditevent/{pk}/change/").content.decode(), "admin")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_no_canary_in_exports(client, capsys, leaky_log, fmt):
    client.force_login(make_user("vera", group="Connector viewers"))
    response = client.get(reverse("audit:export") + f"?format={fmt}")
    assert_clean(b"".join(response.streaming_content).decode(), f"page export {fmt}")
    call_command("audit_export", "--format", fmt, "--connector", "canary_api")
    out = capsys.readouterr().out
    assert "canary_api" in out
    assert_clean(out, f"command export {fmt}")


def test_no_canary_in_audit_rows(leaky_log):
    with connection.cursor() as cursor:
        for table in ("audit_auditevent", "audit_auditchainhead"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            for row in cursor.fetchall():
                assert_clean(repr(row), table)
    change = AuditEvent.objects.get(kind="change")
    secret_changes = [c for c in change.details["changes"] if c["field"].startswith("oauth2_")]
    assert [c["after"] for c in secret_changes] == ["********", "********"]
    assert [c["before"] for c in secret_changes] == ["********", None]
    assert change.details["changes"][2]["after"] == "pasted by mistake: ********"


def test_no_canary_in_repr_logs_or_errors(leaky_log, caplog):
    caplog.set_level(logging.DEBUG, logger="audit")
    for event in AuditEvent.objects.all():
        assert_clean(repr(event) + str(event), "repr")
    with mock.patch("audit.services._append", side_effect=RuntimeError(f"boom {CLIENT_SECRET}")):
        with pytest.raises(AuditWriteError) as excinfo:
            audit_record(kind="change", action="edit", connector=leaky_log, summary=PASSWORD)
    assert_clean(str(excinfo.value) + repr(excinfo.value), "exception")
    assert "Audit record NOT written" in caplog.text
    assert_clean(caplog.text, "log")
