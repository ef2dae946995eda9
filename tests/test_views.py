"""Pages of the inventory: permissions for every URL and role, secrets never rendered, the list."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from connectors.models import Connector
from tests.conftest import OAUTH2_PASSWORD, form_data, make_user

pytestmark = pytest.mark.django_db

CANARIES = {
    "basic_password": "canary-basic-pw-8d1f",
    "api_key": "canary-api-key-27c4",
    "bearer_token": "canary-bearer-93ab",
    "oauth2_client_secret": "canary-client-secret-5e0d",
    "oauth2_password": "canary-grant-pw-44f1",
    "oauth2_refresh_token": "canary-refresh-71aa",
    "row": "canary-row-value-0b9e",
}


@pytest.fixture
def canary_connectors(make_connector):
    make_connector(
        "c_basic",
        auth_config="basic",
        basic_username="u",
        basic_password=CANARIES["basic_password"],
    )
    make_connector(
        "c_api_key", auth_config="api_key", api_key_location="header", api_key=CANARIES["api_key"]
    )
    make_connector("c_bearer", auth_config="bearer", bearer_token=CANARIES["bearer_token"])
    make_connector(
        "c_password",
        rows={"headers": [{"key": "X-Client-Secret", "value": CANARIES["row"], "sensitive": True}]},
        **{
            **OAUTH2_PASSWORD,
            "oauth2_client_secret": CANARIES["oauth2_client_secret"],
            "oauth2_password": CANARIES["oauth2_password"],
        },
    )
    make_connector(
        "c_refresh",
        auth_config="oauth2",
        oauth2_grant_type="refresh_token",
        oauth2_refresh_token=CANARIES["oauth2_refresh_token"],
        oauth2_token_url="https://login.example.com/token",
    )
    return Connector.objects.all()


def assert_no_canary(text: str, where: str) -> None:
    for name, canary in CANARIES.items():
        assert canary not in text, f"{name} canary leaked into {where}"


def test_no_page_renders_a_secret(canary_connectors):
    superuser = User.objects.create_superuser("root", password="x-pw-123456")
    client = Client()
    client.force_login(superuser)
    urls = [
        "/connectors/",
        "/connectors/new/",
        "/connectors/import/",
        "/connectors/export/",
        "/admin/connectors/connector/",
        "/audit/",
    ]
    for connector in canary_connectors:
        urls += [
            f"/connectors/{connector.name}/",
            f"/connectors/{connector.name}/edit/",
            f"/connectors/{connector.name}/clone/",
            f"/connectors/{connector.name}/delete/",
            f"/admin/connectors/connector/{connector.pk}/change/",
        ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_canary(response.content.decode(), url)
    # A failed edit re-renders the form; what was typed into secret fields is not echoed.
    typed = {
        "oauth2_client_secret": CANARIES["oauth2_client_secret"],
        "oauth2_password": CANARIES["oauth2_password"],
    }
    response = client.post(
        "/connectors/c_password/edit/",
        form_data(
            {
                **OAUTH2_PASSWORD,
                **typed,
                "name": "c_password",
                "oauth2_token_url": "not a url",
                "version": 1,
            },
            {"headers": [{"key": "X-Client-Secret", "value": CANARIES["row"], "sensitive": True}]},
        ),
    )
    assert response.status_code == 400
    assert_no_canary(response.content.decode(), "failed edit")
    # The export without secrets holds none either.
    response = client.post("/connectors/export/", {})
    assert_no_canary(response.content.decode(), "export")


ROLE_ACCESS = {
    # url template, method: roles allowed
    ("/connectors/", "get"): {"viewer", "operator", "admin"},
    ("/connectors/{name}/", "get"): {"viewer", "operator", "admin"},
    ("/connectors/new/", "get"): {"admin"},
    ("/connectors/new/", "post"): {"admin"},
    ("/connectors/{name}/edit/", "get"): {"admin"},
    ("/connectors/{name}/edit/", "post"): {"admin"},
    ("/connectors/{name}/clone/", "get"): {"admin"},
    ("/connectors/{name}/delete/", "get"): {"admin"},
    ("/connectors/{name}/delete/", "post"): {"admin"},
    ("/connectors/import/", "get"): {"admin"},
    ("/connectors/export/", "get"): {"admin"},
    ("/connectors/export/", "post"): {"admin"},
    ("/connectors/{name}/clone/", "post"): {"admin"},
    ("/connectors/import/", "post"): {"admin"},
    ("/connectors/{name}/test/", "post"): {"operator", "admin"},
    ("/connectors/{name}/edit/test/", "post"): {"admin"},
    ("/connectors/new/test/", "post"): {"admin"},
    ("/connectors/{name}/pin/", "post"): {"admin"},
}


@pytest.mark.parametrize(("route", "method"), list(ROLE_ACCESS))
def test_every_url_checks_login_and_permission(make_connector, route, method):
    # Loopback is refused outside debug, so a permitted test is blocked without any traffic.
    make_connector("hr_portal", **{**OAUTH2_PASSWORD, "oauth2_token_url": "http://127.0.0.1:9/t"})
    url = route.format(name="hr_portal")
    anonymous = getattr(Client(), method)(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    for role in ("viewer", "operator", "admin", "nobody"):
        user = make_user(role, username=f"{role}_{method}")
        client = Client()
        client.force_login(user)
        response = getattr(client, method)(url)
        allowed = role in ROLE_ACCESS[(route, method)]
        if allowed:
            assert response.status_code in {200, 302, 400}, (role, url, response.status_code)
        else:
            assert response.status_code == 403, (role, url, response.status_code)


def test_forms_require_csrf(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post("/connectors/new/", form_data({"name": "x_csrf", "auth_config": "none"}))
    assert response.status_code == 403
    assert not Connector.objects.filter(name="x_csrf").exists()


def test_create_edit_clone_delete_through_the_pages(admin_client):
    response = admin_client.post(
        "/connectors/new/",
        form_data(
            {
                "name": "hr_portal",
                "base_url": "https://api.example.com",
                "enabled": True,
                **OAUTH2_PASSWORD,
            },
            {"data": [{"key": "resource", "value": "https://graph"}]},
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    connector = Connector.objects.get(name="hr_portal")
    assert connector.created_by.username == "admin"
    assert list(connector.params.values_list("key", flat=True)) == ["resource"]

    response = admin_client.post(
        "/connectors/hr_portal/edit/",
        form_data(
            {
                **OAUTH2_PASSWORD,
                "oauth2_client_secret": "",
                "oauth2_password": "",
                "display_name": "HR",
                "version": 1,
            },
            {"data": [{"key": "resource", "value": "https://graph"}]},
        ),
    )
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.display_name == "HR" and connector.version == 2
    assert connector.oauth2_password == "user-password-1"

    # Clone copies everything but secrets: the required password must be typed again.
    page = admin_client.get("/connectors/hr_portal/clone/").content.decode()
    assert "Copy of HR" in page and "https://graph" in page
    response = admin_client.post(
        "/connectors/hr_portal/clone/",
        form_data(
            {
                **OAUTH2_PASSWORD,
                "name": "hr_copy",
                "oauth2_password": "",
                "oauth2_client_secret": "",
            }
        ),
    )
    assert response.status_code == 400
    assert "Password Grant Password" in response.content.decode()
    response = admin_client.post(
        "/connectors/hr_portal/clone/",
        form_data({**OAUTH2_PASSWORD, "name": "hr_copy", "oauth2_client_secret": ""}),
    )
    assert response.status_code == 302
    assert Connector.objects.get(name="hr_copy").oauth2_client_secret == ""

    response = admin_client.post("/connectors/hr_copy/delete/")
    assert response.status_code == 302
    assert not Connector.objects.filter(name="hr_copy").exists()


def test_stale_edit_is_refused_with_a_clear_message(admin_client, make_connector):
    make_connector("hr_portal")
    stale = form_data({**OAUTH2_PASSWORD, "display_name": "Mine", "version": 1})
    fresh = form_data({**OAUTH2_PASSWORD, "display_name": "Theirs", "version": 1})
    assert admin_client.post("/connectors/hr_portal/edit/", fresh).status_code == 302
    response = admin_client.post("/connectors/hr_portal/edit/", stale)
    assert response.status_code == 409
    page = response.content.decode()
    # The same user saved in another tab (the conflict's wording is tested in test_form_flow).
    assert "by you, in another tab (version 2)" in page
    assert "Please correct the errors below" not in page
    assert Connector.objects.get(name="hr_portal").display_name == "Theirs"


def test_list_search_filter_sort(admin_client, make_connector):
    make_connector("alpha", display_name="Payroll", auth_config="none")
    make_connector(
        "beta", base_url="https://crm.example.org", auth_config="bearer", bearer_token="t"
    )
    make_connector("gamma", enabled=False, auth_config="none")

    def names(query: str) -> list[str]:
        response = admin_client.get(f"/connectors/?{query}")
        return [c.name for c in response.context["connectors"]]

    assert names("q=payroll") == ["alpha"]
    assert names("q=crm.example") == ["beta"]
    assert names("auth=bearer") == ["beta"]
    assert names("enabled=no") == ["gamma"]
    assert names("sort=-name") == ["gamma", "beta", "alpha"]
    assert names("sort=-auth") == ["alpha", "gamma", "beta"]  # none > bearer, then by name


def test_list_query_count_does_not_grow_with_the_inventory(admin_client, make_connector):
    make_connector("first")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get("/connectors/").status_code == 200
        return len(queries)

    few = count()
    for index in range(30):
        make_connector(f"c{index:03d}", auth_config="none")
    assert count() == few


def test_import_and_export_pages(admin_client, make_connector):
    make_connector("hr_portal")
    exported = json.loads(admin_client.post("/connectors/export/", {}).content)
    assert exported["connectors"][0]["oauth2"]["password"] == ""
    exported["connectors"][0]["display_name"] = "Imported name"
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("c.json", json.dumps(exported).encode(), "application/json")
    response = admin_client.post("/connectors/import/", {"file": upload})
    assert response.status_code == 302
    connector = Connector.objects.get(name="hr_portal")
    assert connector.display_name == "Imported name"
    assert connector.oauth2_password == "user-password-1"

    exported["connectors"][0]["oauth2"]["token_url"] = "not-a-url"
    upload = SimpleUploadedFile("c.json", json.dumps(exported).encode(), "application/json")
    response = admin_client.post("/connectors/import/", {"file": upload})
    assert response.status_code == 400
    assert "Oauth2 Token Url" in response.content.decode()


def test_a_change_the_audit_log_cannot_record_is_not_made(admin_client, make_connector):
    from unittest import mock

    from audit.services import AuditWriteError

    make_connector("hr_portal")
    with mock.patch("connectors.services.audit_record", side_effect=AuditWriteError()):
        response = admin_client.post(
            "/connectors/hr_portal/edit/",
            form_data({**OAUTH2_PASSWORD, "display_name": "Unrecorded", "version": 1}),
        )
        assert response.status_code == 503
        assert "could not be recorded in the audit log" in response.content.decode()
        response = admin_client.post("/connectors/hr_portal/delete/", follow=True)
        assert "could not be recorded" in response.content.decode()
    connector = Connector.objects.get(name="hr_portal")
    assert connector.display_name == "" and connector.version == 1


def test_the_django_admin_is_for_superusers_only(make_connector):
    make_connector("hr_portal")
    for role in ("viewer", "operator", "admin"):
        client = Client()
        client.force_login(make_user(role, username=f"{role}_admin_site"))
        for url in ("/admin/", "/admin/connectors/connector/", "/admin/audit/auditevent/"):
            response = client.get(url)
            assert response.status_code == 302, (role, url)
            assert response["Location"].startswith("/admin/login/")


def test_changes_and_denials_are_recorded(admin_client, make_connector, tmp_path):
    from audit.models import AuditEvent
    from connectors.services import connector_rotate_key

    make_connector("hr_portal")
    edit = {
        **OAUTH2_PASSWORD,
        "oauth2_client_secret": "replaced-secret",
        "oauth2_password": "",
        "version": 1,
    }
    assert admin_client.post("/connectors/hr_portal/edit/", form_data(edit)).status_code == 302
    cleared = {**edit, "oauth2_client_secret": "", "oauth2_client_secret_clear": True, "version": 2}
    assert admin_client.post("/connectors/hr_portal/edit/", form_data(cleared)).status_code == 302
    assert (
        admin_client.post(
            "/connectors/hr_portal/clone/", form_data({**OAUTH2_PASSWORD, "name": "hr_copy"})
        ).status_code
        == 302
    )
    connector_rotate_key(user=None)
    viewer = Client()
    viewer.force_login(make_user("viewer"))
    assert viewer.get("/connectors/hr_portal/edit/").status_code == 403

    events = list(AuditEvent.objects.order_by("id"))
    actions = [(e.kind, e.action) for e in events]
    assert ("change", "edit") in actions and ("change", "clone") in actions
    assert ("change", "key_rotation") in actions
    assert ("denial", "permission_denied") in actions
    edits = [e for e in events if e.action == "edit"]
    secret_changes = [
        c["after"]
        for e in edits
        for c in e.details["changes"]
        if c["field"] == "oauth2_client_secret"
    ]
    assert secret_changes == ["changed", "cleared"]
    assert "replaced-secret" not in str([e.details for e in events])
    assert "secret replaced" in edits[0].summary and "secret cleared" in edits[1].summary


def test_a_failed_submit_never_echoes_a_secret_looking_row(admin_client):
    response = admin_client.post(
        "/connectors/new/",
        form_data(
            {**OAUTH2_PASSWORD, "name": "echo_row", "oauth2_token_url": "not a url"},
            {
                "headers": [
                    {"key": "X-Api-Token", "value": "ROWSECRET-abcdef123"},
                    {"key": "X-Plain", "value": "plain-shown-again"},
                ]
            },
        ),
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "ROWSECRET-abcdef123" not in page  # unticked, but named like a secret
    assert "plain-shown-again" in page


def test_audit_shows_non_secret_fields_that_merely_look_secret(admin_client, make_connector):
    from audit.models import AuditEvent
    from audit.sanitize import NO_SECRETS, details_redact

    make_connector("hr_portal", rows={"data": [{"key": "resource", "value": "graph"}]})
    edit = {
        **OAUTH2_PASSWORD,
        "oauth2_client_secret": "",
        "oauth2_password": "",
        "oauth2_header_auth_key": "X-Auth",
        "oauth2_access_token_key": "data.token",
        "version": 1,
    }
    response = admin_client.post(
        "/connectors/hr_portal/edit/",
        form_data(edit, {"data": [{"key": "resource", "value": "graph"}]}),
    )
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="edit").get()
    changes = {c["field"]: c for c in event.details["changes"]}
    assert changes["oauth2_header_auth_key"]["after"] == "X-Auth"
    assert changes["oauth2_access_token_key"]["before"] == "access_token"
    config = details_redact(
        {
            "params": [{"kind": "data", "key": "resource", "value": "graph"}],
            "client_secret": "real-secret",
        },
        secrets=NO_SECRETS,
    )
    assert config["params"][0]["key"] == "resource"
    assert config["client_secret"] == "********"


# The browser's sensitive-name rule comes from the server.


def _page_sensitive_rule(html: str) -> dict:
    start = html.index('<script id="cc-sensitive-names" type="application/json">')
    body = html[start:].split(">", 1)[1].split("</script>", 1)[0]
    return json.loads(body)


def test_form_page_carries_the_servers_sensitive_name_pattern(admin_client):
    from connectors.oauth_http import redaction

    html = admin_client.get("/connectors/new/").content.decode()
    rule = _page_sensitive_rule(html)
    assert rule["pattern"] == redaction.SENSITIVE_KEY_PATTERN.pattern
    assert rule["flags"] == "i"  # the server's pattern ignores case
    assert rule["harmless"]
    assert all(not redaction.key_looks_sensitive(name) for name in rule["harmless"])
    assert all(redaction.SENSITIVE_KEY_PATTERN.search(name) for name in rule["harmless"])


def test_form_page_follows_a_changed_server_pattern(admin_client, make_connector, monkeypatch):
    import re

    from connectors.oauth_http import redaction

    monkeypatch.setattr(
        redaction, "SENSITIVE_KEY_PATTERN", re.compile(r"zebra|secret", re.IGNORECASE)
    )
    make_connector()
    for url in ("/connectors/new/", "/connectors/hr_portal/edit/", "/connectors/hr_portal/clone/"):
        assert _page_sensitive_rule(admin_client.get(url).content.decode())["pattern"] == (
            "zebra|secret"
        )


def test_the_form_script_holds_no_copy_of_the_pattern():
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "static" / "connectors" / "connector_form.js"
    text = script.read_text()
    assert "passphrase" not in text and "token_endpoint" not in text
    assert "cc-sensitive-names" in text


def test_moving_the_base_url_of_oauth2_needs_the_secrets_again(admin_client, make_connector):
    """The access token goes to the Base URL: an admin can't redirect it to a server of theirs."""
    from audit.models import TestRun

    make_connector("hr_portal")
    moved = {
        **OAUTH2_PASSWORD,
        "name": "hr_portal",
        "oauth2_client_secret": "",
        "oauth2_password": "",
        "base_url": "https://attacker.example.net",
        "oauth2_header_auth_key": "X-Stolen",
        "oauth2_header_auth_value_pattern": "%s",
        "version": 1,
    }
    saved = admin_client.post("/connectors/hr_portal/edit/", form_data(moved))
    assert saved.status_code == 400
    assert "now points to another server (attacker.example.net)" in saved.content.decode()
    assert Connector.objects.get(name="hr_portal").base_url == "https://api.example.com"
    tested = admin_client.post("/connectors/hr_portal/edit/test/", form_data(moved))
    assert tested.status_code == 400
    assert not TestRun.objects.exists()
