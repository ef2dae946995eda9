"""The JSON API (issue 11): connectors, secrets, ETag/If-Match, problems, audit, tokens."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from connectors.api.models import ApiToken
from connectors.api.tokens import api_token_create
from connectors.forms import connector_forms
from connectors.models import Connector
from connectors.transfer import connectors_import
from tests.conftest import form_data, make_user

SECRETS = ("client-secret-1", "user-password-1", "row-secret-1", "bearer-xyz-1", "new-secret-9")


def token_client(user: Any, name: str = "ci", days: int | None = 30) -> Client:
    token = api_token_create(user=user, name=name, expires_days=days)
    return Client(HTTP_AUTHORIZATION=f"Token {token}")


def body(response: Any) -> Any:
    return json.loads(response.content)


def send(client: Client, method: str, url: str, data: Any = None, **headers: Any) -> Any:
    kwargs: dict[str, Any] = {"content_type": "application/json"}
    if data is not None:
        kwargs["data"] = json.dumps(data)
    return getattr(client, method)(url, headers=headers, **kwargs)


@pytest.fixture
def admin_api(admin_user) -> Client:
    return token_client(admin_user)


@pytest.fixture
def oauth_connector(make_connector) -> Connector:
    return make_connector(
        rows={"headers": [{"key": "X-Api-Secret", "value": "row-secret-1", "sensitive": True}]}
    )


NEW = {
    "name": "billing",
    "base_url": "https://api.example.com",
    "auth_config": "bearer",
    "bearer_token": "bearer-xyz-1",
}


@pytest.mark.django_db
def test_create_read_secrets_write_only(admin_api) -> None:
    created = send(admin_api, "post", "/api/v1/connectors/", NEW)
    assert created.status_code == 201, created.content
    data = body(created)
    assert data["bearer_token"] == {"stored": True}
    assert data["basic_password"] is None
    assert data["enabled"] is True  # omitted: the model's default
    assert created["ETag"] == f'"{Connector.objects.get(name="billing").pk}-1"'
    got = admin_api.get("/api/v1/connectors/billing/")
    assert got.status_code == 200 and got["ETag"] == created["ETag"]
    assert "bearer-xyz-1" not in got.content.decode()


@pytest.mark.django_db
def test_list_filters_and_cursor(admin_api, make_connector) -> None:
    for index in range(5):
        make_connector(name=f"conn_{index}", auth_config="none")
    make_connector(name="oauthy")
    first = body(admin_api.get("/api/v1/connectors/?page_size=2"))
    assert [c["name"] for c in first["results"]] == ["conn_0", "conn_1"]
    second = body(admin_api.get(first["next"]))
    assert [c["name"] for c in second["results"]] == ["conn_2", "conn_3"]
    oauth = body(admin_api.get("/api/v1/connectors/?auth=oauth2"))
    assert [c["name"] for c in oauth["results"]] == ["oauthy"]
    never = body(admin_api.get("/api/v1/connectors/?health=never&q=conn_4"))
    assert [c["name"] for c in never["results"]] == ["conn_4"]
    assert never["results"][0]["health"]["state"] == "never"


@pytest.mark.django_db
def test_patch_blank_keeps_null_clears_and_url_move_needs_secrets(admin_api, oauth_connector):
    url = f"/api/v1/connectors/{oauth_connector.name}/"
    etag = admin_api.get(url)["ETag"]
    kept = send(
        admin_api,
        "patch",
        url,
        {"display_name": "HR", "oauth2_client_secret": ""},
        **{"If-Match": etag},
    )
    assert kept.status_code == 200, kept.content
    oauth_connector.refresh_from_db()
    assert oauth_connector.oauth2_client_secret == "client-secret-1"
    assert oauth_connector.display_name == "HR"
    moved = send(
        admin_api,
        "patch",
        url,
        {"oauth2_token_url": "https://evil.example.net/token"},
        **{"If-Match": kept["ETag"]},
    )
    assert moved.status_code == 400
    assert moved["Content-Type"] == "application/problem+json"
    problem = body(moved)
    fields = {e["field"] for e in problem["errors"]}
    assert {"oauth2_password", "additional_headers[0].value"} <= fields
    labels = {e["label"] for e in problem["errors"]}
    assert "Password Grant Password" in labels
    # Clearing with null, under client credentials, which needs no password.
    cleared = send(
        admin_api,
        "patch",
        url,
        {"oauth2_grant_type": "client_credentials", "oauth2_password": None},
        **{"If-Match": kept["ETag"]},
    )
    assert cleared.status_code == 200, cleared.content
    oauth_connector.refresh_from_db()
    assert oauth_connector.oauth2_password == ""
    assert body(cleared)["oauth2_client_secret"] == {"stored": True}


@pytest.mark.django_db
def test_if_match_missing_stale_and_race(admin_api, oauth_connector) -> None:
    url = f"/api/v1/connectors/{oauth_connector.name}/"
    etag = admin_api.get(url)["ETag"]
    assert send(admin_api, "patch", url, {"display_name": "x"}).status_code == 428
    assert send(admin_api, "delete", url).status_code == 428
    assert (
        send(admin_api, "patch", url, {"display_name": "x"}, **{"If-Match": '"1-99"'}).status_code
        == 412
    )
    # The race: another save lands after this request checked If-Match, before it saved.
    from connectors.api import views

    real_check = views.connector_body_check

    def overtaken(*args: Any, **kwargs: Any) -> Any:
        Connector.objects.filter(pk=oauth_connector.pk).update(version=5)
        return real_check(*args, **kwargs)

    with mock.patch.object(views, "connector_body_check", overtaken):
        raced = send(admin_api, "patch", url, {"display_name": "mine"}, **{"If-Match": etag})
    assert raced.status_code == 412
    assert raced["ETag"] == f'"{oauth_connector.pk}-5"'
    oauth_connector.refresh_from_db()
    assert oauth_connector.display_name != "mine"
    assert send(admin_api, "delete", url, **{"If-Match": etag}).status_code == 412
    gone = send(admin_api, "delete", url, **{"If-Match": raced["ETag"]})
    assert gone.status_code == 204
    assert not Connector.objects.filter(pk=oauth_connector.pk).exists()


@pytest.mark.django_db
def test_changes_audited_with_user_token_and_diff(admin_user) -> None:
    client = token_client(admin_user, name="deploy-bot")
    assert send(client, "post", "/api/v1/connectors/", NEW).status_code == 201
    event = AuditEvent.objects.filter(action="create").latest("id")
    assert event.username == admin_user.username
    assert event.source == "api"
    assert event.details["via"] == {"channel": "api", "api_client": "deploy-bot"}
    changed = {c["field"]: c["after"] for c in event.details["changes"]}
    assert changed["bearer_token"] == "set" and changed["name"] == "billing"
    assert "bearer-xyz-1" not in json.dumps(event.details)


THREE_DOOR_CASES = [
    {"name": "new", "auth_config": "none"},
    {"name": "bad_url", "base_url": "ftp://files.example.com", "auth_config": "none"},
    {"name": "basic_missing", "auth_config": "basic", "basic_username": "u"},
    {
        "name": "bad_path",
        "base_url": "https://api.example.com",
        "test_request_path": "//evil.example.net/x",
        "auth_config": "none",
    },
]


@pytest.mark.django_db
@pytest.mark.parametrize("values", THREE_DOOR_CASES, ids=lambda v: v["name"])
def test_three_doors_refuse_alike(admin_api, values: dict[str, Any]) -> None:
    """The form, the API and import refuse the same input with the same labels and messages."""
    bundle = connector_forms(data=form_data({"enabled": True, **values}))
    assert not bundle.is_valid()
    form_errors = sorted(bundle.error_list())
    api = send(admin_api, "post", "/api/v1/connectors/", {"enabled": True, **values})
    assert api.status_code == 400
    api_errors = sorted((e["label"], e["message"]) for e in body(api)["errors"])
    entry = {"enabled": True, **{k: v for k, v in values.items() if not k.startswith("basic_")}}
    if values["auth_config"] == "basic":
        entry["basic"] = {"username": values["basic_username"]}
    result = connectors_import(payload={"connectors": [entry]}, user=None)
    import_errors = sorted((e.field, e.message) for e in result.errors)
    assert form_errors == api_errors == import_errors, (form_errors, api_errors, import_errors)


@pytest.mark.django_db
def test_problem_details_shapes(admin_api, viewer) -> None:
    missing = admin_api.get("/api/v1/connectors/nope/")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"
    assert body(missing)["status"] == 404
    anonymous = Client().get("/api/v1/connectors/")
    assert anonymous.status_code == 401
    assert body(anonymous)["title"] == "Authentication required"
    broken = admin_api.post("/api/v1/connectors/", data="{", content_type="application/json")
    assert broken.status_code == 400 and body(broken)["type"].endswith("parse")
    unknown = send(admin_api, "post", "/api/v1/connectors/", {**NEW, "colour": "red"})
    assert body(unknown)["errors"] == [
        {"field": "colour", "label": "colour", "message": "Unknown field."}
    ]


@pytest.mark.django_db
def test_test_endpoint_matches_command_json(admin_api, make_connector, capsys) -> None:
    make_connector(name="plain", auth_config="none", base_url="")
    answer = send(admin_api, "post", "/api/v1/connectors/plain/test/")
    assert answer.status_code == 200, answer.content
    data = body(answer)
    with pytest.raises(SystemExit) if not data["ok"] else mock.MagicMock():
        call_command("connector_test", "plain", "--json")
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == set(data) and printed["outcome"] == data["outcome"]
    assert printed["message"] == data["message"]
    assert set(data) == {
        "connector",
        "ok",
        "outcome",
        "message",
        "client_authentication_used",
        "attempts",
        "token",
    }
    from audit.models import TestRun
    from audit.run_summary import testrun_summary

    run = TestRun.objects.latest("id")
    assert data == json.loads(json.dumps(testrun_summary(run)))
    runs = body(admin_api.get("/api/v1/connectors/plain/runs/"))
    assert runs["results"][0]["id"] == run.pk
    assert "attempts" in runs["results"][0]


@pytest.mark.django_db
def test_audit_list_filters_and_keyset(admin_api, admin_user) -> None:
    for index in range(5):
        send(admin_api, "post", "/api/v1/connectors/", {**NEW, "name": f"c{index}x"})
    first = body(admin_api.get("/api/v1/audit/?kind=change&page_size=2"))
    assert len(first["results"]) == 2 and first["next"]
    second = body(admin_api.get(first["next"]))
    assert second["results"][0]["id"] < first["results"][-1]["id"]
    one = body(admin_api.get(f"/api/v1/audit/{first['results'][0]['id']}/"))
    assert one["details"]["via"]["channel"] == "api"
    bad = admin_api.get("/api/v1/audit/?since=yesterday")
    assert bad.status_code == 400 and body(bad)["errors"][0]["label"] == "From"
    assert admin_api.get(f"/api/v1/audit/{10**30}/").status_code == 404


@pytest.mark.django_db
def test_export_and_import_round_trip(admin_user, oauth_connector) -> None:
    client = token_client(admin_user)
    exported = client.get("/api/v1/export/")
    assert exported.status_code == 200
    assert "client-secret-1" not in exported.content.decode()
    refused = client.get(
        "/api/v1/export/?include_secrets=true", headers={"X-Passphrase": "a long passphrase 123"}
    )
    assert refused.status_code == 403
    assert AuditEvent.objects.filter(
        kind="denial", details__permission=["connectors.export_secrets"]
    ).exists()
    data = body(exported)
    data["connectors"][0]["display_name"] = "Imported name"
    imported = send(client, "post", "/api/v1/import/", data)
    assert imported.status_code == 200, imported.content
    assert body(imported)["updated"] == [oauth_connector.name]


@pytest.mark.django_db
def test_export_with_secrets_is_an_envelope(admin_user, oauth_connector) -> None:
    from django.contrib.auth.models import Permission

    admin_user.user_permissions.add(Permission.objects.get(codename="export_secrets"))
    client = token_client(admin_user)
    no_passphrase = client.get("/api/v1/export/?include_secrets=true")
    assert no_passphrase.status_code == 400
    sealed = client.get(
        "/api/v1/export/?include_secrets=true",
        headers={"X-Passphrase": "correct horse battery staple 42"},
    )
    assert sealed.status_code == 200, sealed.content
    for secret in SECRETS:
        assert secret not in sealed.content.decode()
    again = send(client, "post", "/api/v1/import/", body(sealed))
    assert again.status_code == 400 and body(again)["errors"][0]["field"] == "X-Passphrase"


@pytest.mark.django_db
def test_tokens_hashed_expire_and_revoke(admin_user, client) -> None:
    token = api_token_create(user=admin_user, name="short", expires_days=1)
    stored = ApiToken.objects.get()
    assert token not in (stored.digest, stored.token_key) and len(stored.digest) == 128
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/connectors/").status_code == 200
    stored.refresh_from_db()
    assert stored.last_used_at is not None
    ApiToken.objects.update(expiry=timezone.now() - dt.timedelta(seconds=1))
    assert api.get("/api/v1/connectors/").status_code == 401
    assert AuditEvent.objects.filter(
        action="api_token_expired", username=admin_user.username
    ).exists()
    bogus = Client(HTTP_AUTHORIZATION="Token cc_nope").get("/api/v1/connectors/")
    assert bogus.status_code == 401
    assert AuditEvent.objects.filter(action="api_token_refused").exists()
    # Revocation on the user's page.
    token2 = api_token_create(user=admin_user, name="page", expires_days=5)
    client.force_login(admin_user)
    key = ApiToken.objects.get(name="page").token_key
    assert client.post(f"/api/tokens/{key}/revoke/").status_code == 302
    assert (
        Client(HTTP_AUTHORIZATION=f"Token {token2}").get("/api/v1/connectors/").status_code == 401
    )
    assert AuditEvent.objects.filter(action="api_token_revoke").exists()


@pytest.mark.django_db
def test_token_page_shows_once_and_others_cannot_revoke(admin_user, viewer) -> None:
    page = Client()
    page.force_login(viewer)
    shown = page.post("/api/tokens/", {"name": "laptop", "expires_days": "7"})
    assert shown.status_code == 200
    token = ApiToken.objects.get(user=viewer)
    text = shown.content.decode()
    assert "data-token>cc_" in text
    assert "cc_" + text.split("data-token>cc_")[1].split("<")[0][:3] in text
    again = page.get("/api/tokens/").content.decode()
    assert "data-token" not in again
    assert AuditEvent.objects.filter(action="api_token_create", username="viewer").exists()
    other = Client()
    other.force_login(admin_user)
    assert other.post(f"/api/tokens/{token.token_key}/revoke/").status_code == 404
    root = make_user("root", "root")
    root.is_superuser = True
    root.save()
    other.force_login(root)
    assert other.post(f"/api/tokens/{token.token_key}/revoke/").status_code == 302
    assert not ApiToken.objects.filter(user=viewer).exists()


@pytest.mark.django_db
def test_api_token_create_command(admin_user, capsys) -> None:
    call_command("api_token_create", admin_user.username, "--name", "cli", "--expires-days", "3")
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("cc_")
    stored = ApiToken.objects.get(name="cli")
    assert stored.expiry - timezone.now() > dt.timedelta(days=2)
    assert (
        Client(HTTP_AUTHORIZATION=f"Token {printed}").get("/api/v1/connectors/").status_code == 200
    )


@pytest.mark.django_db
def test_rate_limit_per_token(admin_user, settings) -> None:
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    with mock.patch.object(SimpleRateThrottle, "THROTTLE_RATES", {"token": "2/min"}):
        one, two = token_client(admin_user, "a"), token_client(admin_user, "b")
        assert one.get("/api/v1/connectors/").status_code == 200
        assert one.get("/api/v1/connectors/").status_code == 200
        limited = one.get("/api/v1/connectors/")
        assert limited.status_code == 429
        assert int(limited["Retry-After"]) >= 1
        assert limited["Content-Type"] == "application/problem+json"
        assert two.get("/api/v1/connectors/").status_code == 200  # its own bucket
    assert AuditEvent.objects.filter(kind="denial", action="rate_limited").count() == 1
    del api_settings


@pytest.mark.django_db
def test_connection_tests_keep_their_own_limit(admin_api, make_connector, settings) -> None:
    settings.CONNECTORS_TEST_RATE_LIMIT = "1/60"
    make_connector(name="plain", auth_config="none", base_url="")
    assert send(admin_api, "post", "/api/v1/connectors/plain/test/").status_code == 200
    limited = send(admin_api, "post", "/api/v1/connectors/plain/test/")
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1


@pytest.mark.django_db
def test_session_needs_csrf(admin_user) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    assert browser.get("/api/v1/connectors/").status_code == 200
    assert send(browser, "post", "/api/v1/connectors/", NEW).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "operator", "admin", "superuser"])
def test_no_secret_in_any_response_for_any_role(role: str, make_connector, admin_user) -> None:
    """Every readable endpoint, after creating, editing and testing through the API."""
    writer = token_client(admin_user, "writer")
    made = make_connector(
        rows={"headers": [{"key": "X-Api-Secret", "value": "row-secret-1", "sensitive": True}]}
    )
    url = f"/api/v1/connectors/{made.name}/"
    etag = writer.get(url)["ETag"]
    edit = {"oauth2_client_secret": "new-secret-9", "display_name": "with secrets"}
    assert send(writer, "patch", url, edit, **{"If-Match": etag}).status_code == 200
    assert send(writer, "post", "/api/v1/connectors/", NEW).status_code == 201
    user = make_user("admin" if role == "superuser" else role, f"reader_{role}")
    if role == "superuser":
        user.is_superuser = True
        user.save()
    reader = token_client(user, "reader")
    event_ids = AuditEvent.objects.values_list("id", flat=True)
    paths = [
        "/api/v1/connectors/",
        url,
        "/api/v1/connectors/billing/",
        f"{url}runs/",
        "/api/v1/audit/?page_size=200",
        "/api/v1/export/",
        *(f"/api/v1/audit/{pk}/" for pk in event_ids),
    ]
    for path in paths:
        text = reader.get(path).content.decode()
        for secret in SECRETS:
            assert secret not in text, (path, secret)


@pytest.mark.django_db
def test_schema_endpoint_needs_a_caller(admin_user) -> None:
    assert Client().get("/api/schema/").status_code == 401
    served = token_client(admin_user).get("/api/schema/?format=json")
    assert served.status_code == 200 and "/api/v1/connectors/" in served.content.decode()
    docs = Client()
    assert docs.get("/api/docs/").status_code == 302  # the sign-in page first
    docs.force_login(admin_user)
    page = docs.get("/api/docs/")
    assert page.status_code == 200 and b"<style>" not in page.content
    assert b"swagger-ui-bundle.js" in page.content and b"cdn" not in page.content.lower()


@pytest.mark.django_db
def test_unicode_digits_are_not_ids(admin_api) -> None:
    """Found by schemathesis: "³".isdigit() is true, but no id."""
    assert admin_api.get("/api/v1/audit/%C2%B3/").status_code == 404
    assert admin_api.get("/api/v1/audit/?before=%C2%B3&page_size=%C2%B2").status_code == 200
