"""Import and export: the documented JSON shape, round trips, and all-or-nothing imports."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from connectors.models import Connector
from connectors.transfer import connectors_import
from tests.conftest import OAUTH2_PASSWORD

pytestmark = pytest.mark.django_db

# The documented shape, written out here as the oracle the export is checked against.
DOCUMENTED_OAUTH2_KEYS = (
    "grant_type",
    "client_id",
    "client_secret",
    "username",
    "password",
    "scope",
    "refresh_token",
    "token_url",
    "client_authentication",
    "header_auth_key",
    "header_auth_value_pattern",
    "custom_grant_type",
    "request_custom_grant_type",
    "additional_headers",
    "additional_request_data",
    "response_type",
    "access_token_key",
    "expires_in_key",
    "expires_in_format",
)


def export(*args: str) -> dict:
    out = io.StringIO()
    call_command("connectors_export", *args, stdout=out)
    return json.loads(out.getvalue())


def import_file(tmp_path, payload: dict) -> str:
    path = tmp_path / "connectors.json"
    path.write_text(json.dumps(payload))
    out = io.StringIO()
    call_command("connectors_import", str(path), stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def inventory(make_connector):
    make_connector(
        "hr_portal",
        rows={
            "headers": [{"key": "Client-Id", "value": "abc"}],
            "data": [
                {"key": "resource", "value": "https://graph"},
                {"key": "tenant_secret", "value": "row-secret", "sensitive": True},
            ],
        },
        **{**OAUTH2_PASSWORD, "oauth2_password_scope": "read write"},
    )
    make_connector("wiki", auth_config="basic", basic_username="bot", basic_password="wiki-pw")
    make_connector(
        "metrics",
        auth_config="api_key",
        api_key_location="param",
        api_key_param_name="key",
        api_key="metrics-key",
    )
    make_connector("tickets", auth_config="bearer", bearer_token="tickets-token")
    make_connector("public", auth_config="none")


def test_export_has_the_documented_shape_and_no_secrets(inventory):
    data = export()
    by_name = {c["name"]: c for c in data["connectors"]}
    hr = by_name["hr_portal"]
    # The documented keys in their order; this product's extra ones ("jwt") after them.
    assert tuple(hr["oauth2"]) == (*DOCUMENTED_OAUTH2_KEYS, "jwt")
    assert hr["oauth2"]["scope"] == "read write"
    assert hr["oauth2"]["password"] == "" and hr["oauth2"]["client_secret"] == ""
    assert hr["oauth2"]["additional_request_data"][1] == {
        "key": "tenant_secret",
        "value": "",
        "sensitive": True,
    }
    assert by_name["wiki"]["basic"] == {"username": "bot", "password": ""}
    assert by_name["metrics"]["api_key"]["location"] == "param"
    assert by_name["tickets"]["bearer"] == {"token": ""}
    # Every connector carries every block, in the documented order; unchosen ones hold defaults.
    assert list(by_name["public"])[:10] == [
        "name",
        "display_name",
        "description",
        "base_url",
        "enabled",
        "auth_config",
        "oauth2",
        "basic",
        "api_key",
        "bearer",
    ]
    assert by_name["public"]["basic"] == {"username": "", "password": ""}
    assert by_name["public"]["oauth2"]["header_auth_value_pattern"] == "Bearer %s"
    text = json.dumps(data)
    for secret in (
        "user-password-1",
        "client-secret-1",
        "row-secret",
        "wiki-pw",
        "metrics-key",
        "tickets-token",
    ):
        assert secret not in text


def test_round_trip_with_secrets_into_an_empty_inventory(inventory, tmp_path):
    before = export("--include-secrets", "--plaintext")
    assert before["connectors"][0]["oauth2"]["password"] == "user-password-1"
    Connector.objects.all().delete()
    assert "5 created" in import_file(tmp_path, before)
    assert export("--include-secrets", "--plaintext") == before


def test_reimport_without_secrets_keeps_the_stored_ones(inventory, tmp_path):
    without = export()
    without["connectors"][0]["display_name"] = "HR"
    out = import_file(tmp_path, without)
    assert "1 updated, 4 unchanged" in out
    hr = Connector.objects.get(name="hr_portal")
    assert hr.display_name == "HR"
    assert hr.oauth2_password == "user-password-1"
    assert hr.params.get(key="tenant_secret").value == "row-secret"


def test_minimal_entry_takes_defaults(tmp_path, db):
    payload = {
        "connectors": [
            {
                "name": "minimal",
                "base_url": "https://api.example.com",
                "auth_config": "oauth2",
                "oauth2": {
                    "grant_type": "client_credentials",
                    "client_id": "c",
                    "client_secret": "s",
                    "token_url": "https://login.example.com/token",
                    "additional_request_data": [{"key": "api_key_hint", "value": "v"}],
                },
            }
        ]
    }
    import_file(tmp_path, payload)
    connector = Connector.objects.get(name="minimal")
    assert connector.oauth2_header_auth_value_pattern == "Bearer %s"
    assert connector.oauth2_expires_in_format == "seconds"
    assert connector.enabled is True
    # "sensitive" omitted: a key that looks secret is stored as sensitive.
    assert connector.params.get().sensitive is True


def test_one_bad_connector_changes_nothing_and_every_error_is_listed(inventory, tmp_path):
    data = export()
    data["connectors"][0]["display_name"] = "Should not stick"
    data["connectors"].append(
        {
            "name": "bad_one",
            "auth_config": "oauth2",
            "oauth2": {"grant_type": "password", "token_url": "ftp://x"},
        }
    )
    data["connectors"].append({"name": "bad_two", "auth_config": "basic", "basic": {}})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("connectors_import", str(path), stdout=io.StringIO(), stderr=err)
    lines = err.getvalue()
    assert "bad_one: Oauth2 Token Url:" in lines
    assert "bad_one: Client ID:" in lines
    assert "bad_one: Password Grant Password:" in lines
    assert "bad_two: Username:" in lines
    assert not Connector.objects.filter(name__startswith="bad_").exists()
    assert Connector.objects.get(name="hr_portal").display_name == ""


def test_malformed_files_are_refused(tmp_path, db):
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("connectors_import", str(path))
    result = connectors_import(
        payload={
            "connectors": [
                {"name": "x1", "auth_config": "oauth2", "oauth2": {"additional_headers": "nope"}}
            ]
        },
        user=None,
    )
    assert not result.ok and "must be a list" in str(result.errors[0])


@pytest.mark.django_db(transaction=True)
def test_import_reads_a_file_piped_into_standard_input(tmp_path):
    """`connectors_import -` in a real process, fed through a pipe (it crashed on self.stdin)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'piped.sqlite3'}",
        "DJANGO_DEBUG": "1",
    }
    manage = [sys.executable, str(root / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    payload = {
        "connectors": [
            {"name": "piped_in", "base_url": "https://api.example.test", "auth_config": "none"}
        ]
    }
    done = subprocess.run(
        [*manage, "connectors_import", "-"],
        env=env,
        input=json.dumps(payload).encode(),
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "1 created" in done.stdout.decode()
    listed = subprocess.run(
        [*manage, "connectors_export"], env=env, check=True, capture_output=True
    )
    assert [c["name"] for c in json.loads(listed.stdout)["connectors"]] == ["piped_in"]


# One set of rules: the form, import and pinning refuse the same values with the same words.

PARITY_CASES = [
    ({"name": "new"}, {}),
    ({"name": "a", "base_url": "ftp://x", "test_request_path": "//x", "ca_bundle": "junk"}, {}),
    ({"auth_config": "oauth2", "oauth2_grant_type": "client_credentials"}, {}),
    (
        {**OAUTH2_PASSWORD, "oauth2_client_authentication": "basic_user"},
        {"headers": [{"key": "Authorization", "value": "x"}, {"key": "X-A", "value": "1"}]},
    ),
    (
        {**OAUTH2_PASSWORD, "oauth2_header_auth_value_pattern": "Bearer", "api_key": "stray"},
        {"data": [{"key": "client_secret", "value": "x"}, {"key": "aud", "value": ""}]},
    ),
    (
        {"auth_config": "api_key", "api_key_location": "param", "oauth2_grant_type": "bogus"},
        {},
    ),
    (OAUTH2_PASSWORD, {"headers": [{"key": f"X-{i}", "value": "v"} for i in range(21)]}),
    (OAUTH2_PASSWORD, {"data": [{"key": "tenant_secret", "value": "", "sensitive": True}]}),
]


@pytest.mark.parametrize(("values", "rows"), PARITY_CASES)
def test_the_rules_without_a_form_list_what_the_form_lists(values, rows):
    from connectors.forms import connector_forms
    from connectors.models import TokenRequestParam
    from connectors.rules import connector_check
    from tests.conftest import form_data

    fields = {"name": "parity", "base_url": "https://api.example.com", "enabled": True, **values}
    bundle = connector_forms(data=form_data(fields, rows))
    by_kind = {
        TokenRequestParam.Kind.HEADER: rows.get("headers", []),
        TokenRequestParam.Kind.DATA: rows.get("data", []),
    }
    check = connector_check(values=fields, rows=by_kind)
    assert check.ok is bundle.is_valid()
    assert check.error_list() == bundle.error_list()
    assert check.error_list(json_keys=True) == bundle.error_list(json_keys=True)
    if check.ok:
        assert check.param_rows() == bundle.rows()


def test_import_builds_no_post_data(inventory, tmp_path, monkeypatch):
    """The file's values go to the rules as they are: no QueryDict, no formset prefixes."""
    import django.http

    def refuse(*args, **kwargs):
        raise AssertionError("import built POST data")

    monkeypatch.setattr(django.http.QueryDict, "__init__", refuse)
    data = export("--include-secrets", "--plaintext")
    data["connectors"][0]["display_name"] = "HR"
    assert "1 updated" in import_file(tmp_path, data)


def test_pinning_goes_through_the_rules_not_through_export(inventory, monkeypatch):
    from audit.models import AuditEvent
    from connectors import transfer

    def refuse(*args, **kwargs):
        raise AssertionError("pinning exported the connector")

    monkeypatch.setattr(transfer, "connector_export_dict", refuse)
    connector = Connector.objects.get(name="hr_portal")
    transfer.connector_pin_client_authentication(
        connector=connector, method="request_body", user=None, tested_version=1
    )
    pinned = Connector.objects.get(name="hr_portal")
    assert pinned.oauth2_client_authentication == "request_body"
    assert pinned.version == 2
    assert pinned.oauth2_password == "user-password-1"
    assert pinned.params.get(key="tenant_secret").value == "row-secret"
    event = AuditEvent.objects.filter(action="pin").get()
    assert [c["field"] for c in event.details["changes"]] == ["oauth2_client_authentication"]


def test_pinning_a_method_the_rules_refuse_names_the_rule(make_connector):
    from connectors.transfer import PinRefused, connector_pin_client_authentication

    connector = make_connector(
        "authz_row",
        rows={"headers": [{"key": "Authorization", "value": "Custom x"}]},
        **{**OAUTH2_PASSWORD, "oauth2_client_authentication": "request_body"},
    )
    with pytest.raises(PinRefused, match="Additional Headers row 1: The token request sets"):
        connector_pin_client_authentication(
            connector=connector, method="basic_client", user=None, tested_version=1
        )
    assert Connector.objects.get(pk=connector.pk).oauth2_client_authentication == "request_body"
