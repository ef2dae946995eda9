"""The signing fields everywhere else: import/export, the API, clone, the audit diff, the form."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from connectors.api.tokens import api_token_create
from connectors.models import Connector
from connectors.oauth_http import assertions
from connectors.rules import connector_check
from connectors.transfer import connectors_import
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

RSA_KEY = assertions.generate_private_key_pem("RS256")
EC_KEY = assertions.generate_private_key_pem("ES256")
KEY_BODY = RSA_KEY.splitlines()[5]  # a line of the key's base64, to look for


@pytest.fixture
def signing_inventory(make_connector):
    make_connector(
        "jwt_grant",
        auth_config="oauth2",
        oauth2_grant_type="jwt_bearer",
        oauth2_token_url="https://login.example.com/oauth2/token",
        oauth2_jwt_bearer_scope="read",
        jwt_private_key=RSA_KEY,
        jwt_issuer="svc@example.com",
        jwt_subject="alice",
        jwt_key_id="k1",
        jwt_extra_claims='{"tenant": "t-1"}',
        jwt_extra_headers='{"typ": "JWT"}',
    )
    make_connector(
        "jwt_api",
        auth_config="jwt_auth",
        jwt_private_key=EC_KEY,
        jwt_algorithm="ES256",
        jwt_issuer="console",
        jwt_ttl_seconds=120,
    )
    make_connector(
        "pkjwt",
        auth_config="oauth2",
        oauth2_grant_type="client_credentials",
        oauth2_client_id="client-9",
        oauth2_client_authentication="private_key_jwt",
        oauth2_token_url="https://login.example.com/oauth2/token",
        jwt_private_key=RSA_KEY,
    )


def export(*args: str) -> dict:
    out = io.StringIO()
    call_command("connectors_export", *args, stdout=out)
    return json.loads(out.getvalue())


def test_export_without_secrets_has_the_signing_shape_and_no_private_key(signing_inventory):
    data = export()
    by_name = {c["name"]: c for c in data["connectors"]}
    grant = by_name["jwt_grant"]["oauth2"]
    assert grant["grant_type"] == "jwt_bearer" and grant["scope"] == "read"
    assert grant["jwt"] == {
        "private_key": "",
        "algorithm": "RS256",
        "issuer": "svc@example.com",
        "subject": "alice",
        "audience": "",
        "ttl_seconds": 300,
        "key_id": "k1",
        "extra_claims": {"tenant": "t-1"},
        "extra_headers": {"typ": "JWT"},
    }
    api = by_name["jwt_api"]
    assert api["auth_config"] == "jwt_auth"
    assert api["jwt_auth"]["algorithm"] == "ES256" and api["jwt_auth"]["ttl_seconds"] == 120
    assert api["jwt_auth"]["private_key"] == ""
    assert by_name["pkjwt"]["oauth2"]["client_authentication"] == "private_key_jwt"
    text = json.dumps(data)
    assert "PRIVATE KEY" not in text and KEY_BODY not in text


def test_round_trip_with_secrets(signing_inventory):
    before = export("--include-secrets", "--plaintext")
    assert "BEGIN PRIVATE KEY" in before["connectors"][0]["oauth2"]["jwt"]["private_key"]
    Connector.objects.all().delete()
    result = connectors_import(payload=before, user=None)
    assert result.ok, result.errors
    assert export("--include-secrets", "--plaintext") == before
    assert Connector.objects.get(name="jwt_api").jwt_private_key.strip() == EC_KEY.strip()


def _entry(**jwt: object) -> dict:
    return {
        "name": "imported_jwt",
        "auth_config": "jwt_auth",
        "base_url": "https://api.example.com",
        "jwt_auth": {"private_key": RSA_KEY, "issuer": "i", **jwt},
    }


@pytest.mark.parametrize(
    ("jwt", "where", "message"),
    [
        ({"private_key": "not a key"}, "Private Key", "not a readable PEM private key"),
        ({"algorithm": "ES256"}, "Signing Algorithm", "ES256 signs with an EC P-256 key"),
        ({"ttl_seconds": 9000}, "Jwt Expiry Seconds", "7200"),
        ({"ttl_seconds": "300"}, "jwt_auth.ttl_seconds", "whole number"),
        ({"extra_claims": [1]}, "jwt_auth.extra_claims", "Must be a JSON object, not a list"),
        ({"extra_claims": "[1]"}, "Additional Claims", "must be a JSON object"),
        ({"extra_headers": {"alg": "none"}}, "Additional Header Fields", "Leave alg out"),
        ({"issuer": ""}, "Jwt Issuer", "required for Jwt Auth"),
    ],
)
def test_import_refuses_what_the_form_refuses(jwt, where, message):
    result = connectors_import(payload={"connectors": [_entry(**jwt)]}, user=None)
    assert not result.ok
    text = str(result.errors)
    assert where in text and message in text, text
    assert not Connector.objects.filter(name="imported_jwt").exists()


def test_one_line_pem_is_accepted_and_stored_with_its_line_breaks():
    one_line = " ".join(RSA_KEY.split("\n"))
    result = connectors_import(payload={"connectors": [_entry(private_key=one_line)]}, user=None)
    assert result.ok, result.errors
    stored = Connector.objects.get(name="imported_jwt").jwt_private_key
    assert assertions.load_private_key(stored)


def test_rules_reset_signing_fields_when_nothing_signs():
    values = {
        "name": "plain_cc",
        "auth_config": "oauth2",
        "oauth2_grant_type": "client_credentials",
        "oauth2_client_id": "c",
        "oauth2_client_secret": "s",
        "oauth2_token_url": "https://login.example.com/token",
        "jwt_private_key": RSA_KEY,
        "jwt_key_id": "k",
    }
    check = connector_check(values=values, rows={})
    assert check.ok, check.error_list()
    assert check.instance.jwt_private_key == "" and check.instance.jwt_key_id == ""


def test_private_key_jwt_needs_no_client_secret_but_a_key():
    values = {
        "name": "pk_only",
        "auth_config": "oauth2",
        "oauth2_grant_type": "client_credentials",
        "oauth2_client_id": "c",
        "oauth2_client_authentication": "private_key_jwt",
        "oauth2_token_url": "https://login.example.com/token",
    }
    check = connector_check(values=values, rows={})
    assert dict(check.error_list()) == {
        "Private Key": "Enter the Private Key: OAuth 2.0 with Private Key JWT (client assertion) "
        "needs it."
    }
    check = connector_check(values={**values, "jwt_private_key": RSA_KEY}, rows={})
    assert check.ok, check.error_list()


def test_jwt_bearer_grant_requires_issuer_subject_and_key():
    check = connector_check(
        values={
            "name": "grant_1",
            "auth_config": "oauth2",
            "oauth2_grant_type": "jwt_bearer",
            "oauth2_token_url": "https://login.example.com/token",
        },
        rows={},
    )
    fields = {where for where, _ in check.error_list()}
    assert fields == {"Private Key", "Jwt Issuer", "Jwt Subject"}


def test_the_api_reads_and_writes_the_signing_fields(admin_user):
    api = Client(
        HTTP_AUTHORIZATION=f"Token {api_token_create(user=admin_user, name='t', expires_days=30)}"
    )
    created = api.post(
        "/api/v1/connectors/",
        data=json.dumps(
            {
                "name": "api_jwt",
                "base_url": "https://api.example.com",
                "auth_config": "jwt_auth",
                "jwt_private_key": RSA_KEY,
                "jwt_issuer": "console",
                "jwt_ttl_seconds": 600,
            }
        ),
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    got = json.loads(api.get("/api/v1/connectors/api_jwt/").content)
    assert got["jwt_private_key"] == {"stored": True}
    assert got["jwt_ttl_seconds"] == 600 and got["jwt_algorithm"] == "RS256"
    assert "PRIVATE KEY" not in json.dumps(got)
    refused = api.patch(
        "/api/v1/connectors/api_jwt/",
        data=json.dumps({"jwt_algorithm": "ES256"}),
        content_type="application/json",
        headers={"If-Match": "*"},
    )
    assert refused.status_code == 400
    problem = json.loads(refused.content)
    assert problem["errors"][0]["field"] == "jwt_algorithm"


def test_clone_does_not_copy_the_private_key(signing_inventory, admin_client):
    page = admin_client.get(reverse("connectors:clone", args=["jwt_api"])).content.decode()
    assert EC_KEY.splitlines()[1] not in page
    assert 'value="console"' in page  # the claims are copied
    assert "data-cc-public-pem" not in page  # no key help for a key the copy does not have


def test_audit_diff_says_the_key_changed_without_its_value(signing_inventory, admin_client):
    connector = Connector.objects.get(name="jwt_api")
    response = admin_client.post(
        reverse("connectors:key-pair", args=[connector.name]), {"version": connector.version}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="generate_key").get()
    change = {c["field"]: c for c in event.details["changes"]}["jwt_private_key"]
    assert change["after"] == "changed" and change["before"] is None
    new_key = Connector.objects.get(name="jwt_api").jwt_private_key
    stored = json.dumps([event.details, event.summary])
    assert "PRIVATE KEY" not in stored and new_key.splitlines()[1] not in stored
    assert "Generated a key pair for jwt_api" in event.summary


def test_generate_key_pair_refused_when_nothing_signs(make_connector, admin_client):
    connector = make_connector("no_signing")
    admin_client.post(
        reverse("connectors:key-pair", args=[connector.name]), {"version": connector.version}
    )
    connector.refresh_from_db()
    assert connector.jwt_private_key == ""


def test_form_renders_the_signing_block_and_key_help(signing_inventory, admin_client):
    page = admin_client.get(reverse("connectors:edit", args=["jwt_grant"])).content.decode()
    assert "data-cc-jwt" in page and "Generate key pair" in page
    public = assertions.public_key_pem(RSA_KEY)
    assert public.splitlines()[1] in page
    assert '"kid": "k1"' in page.replace("&quot;", '"')
    assert KEY_BODY not in page  # the private key is never rendered back
    viewer = Client()
    viewer.force_login(make_user("viewer", "jwt_form_viewer"))
    detail = viewer.get(reverse("connectors:detail", args=["jwt_grant"])).content.decode()
    assert public.splitlines()[1] in detail and "Generate key pair" not in detail


def test_a_new_connector_can_have_its_key_generated_on_save(admin_client):
    from tests.conftest import form_data

    values = {
        "name": "gen_on_save",
        "enabled": True,
        "base_url": "https://api.example.com",
        "auth_config": "jwt_auth",
        "jwt_issuer": "console",
        "jwt_algorithm": "ES256",
    }
    refused = admin_client.post(reverse("connectors:new"), form_data(values))
    assert refused.status_code == 400
    assert "Enter the Private Key: Jwt Auth needs it." in refused.content.decode()
    saved = admin_client.post(
        reverse("connectors:new"), form_data({**values, "jwt_generate_key": True})
    )
    assert saved.status_code == 302
    connector = Connector.objects.get(name="gen_on_save")
    facts = assertions.key_facts(assertions.load_private_key(connector.jwt_private_key))
    assert facts.description == "EC P-256"
    event = AuditEvent.objects.get(action="create", connector_name="gen_on_save")
    change = {c["field"]: c for c in event.details["changes"]}["jwt_private_key"]
    assert change["after"] == "set"
    page = admin_client.get(connector.get_absolute_url()).content.decode()
    assert assertions.public_key_pem(connector.jwt_private_key).splitlines()[1] in page


def test_a_moved_token_url_needs_the_key_again(make_connector, admin_client):
    from tests.conftest import form_data

    connector = make_connector(
        "moved_grant",
        auth_config="oauth2",
        oauth2_grant_type="jwt_bearer",
        oauth2_token_url="https://login.example.com/token",
        jwt_private_key=RSA_KEY,
        jwt_issuer="i",
        jwt_subject="s",
    )
    values = {
        "name": "moved_grant",
        "enabled": True,
        "base_url": "https://api.example.com",
        "auth_config": "oauth2",
        "oauth2_grant_type": "jwt_bearer",
        "oauth2_token_url": "https://attacker.example.net/token",
        "jwt_issuer": "i",
        "jwt_subject": "s",
        "jwt_audience": "https://login.example.com/token",
        "version": connector.version,
    }
    response = admin_client.post(
        reverse("connectors:edit", args=["moved_grant"]), form_data(values)
    )
    assert response.status_code == 400
    assert "Enter the Private Key again" in response.content.decode()
    connector.refresh_from_db()
    assert connector.oauth2_token_url == "https://login.example.com/token"


def test_private_key_jwt_refuses_a_row_that_would_replace_its_assertion():
    values = {
        "name": "pk_rows",
        "auth_config": "oauth2",
        "oauth2_grant_type": "client_credentials",
        "oauth2_client_id": "c",
        "oauth2_client_authentication": "private_key_jwt",
        "oauth2_token_url": "https://login.example.com/token",
        "jwt_private_key": RSA_KEY,
    }
    rows = {"data": [{"key": "client_assertion", "value": "x", "sensitive": True}]}
    check = connector_check(values=values, rows=rows)
    assert not check.ok
    assert "signs the client assertion itself" in str(check.error_list())
    plain = {**values, "oauth2_client_authentication": "request_body", "oauth2_client_secret": "s"}
    assert connector_check(values=plain, rows=rows).ok
