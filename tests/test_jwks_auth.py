"""Jwks Auth as a connector's Auth Config: the rules, the connection test and ConnectorAuth
against a loopback API that verifies with PyJWKClient at the live server's JWKS, import and
export, the API, clone, the audit diff, and no key material anywhere it must not be."""

from __future__ import annotations

import json
import logging

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.test import Client

from audit.models import AuditEvent, TestAttempt
from connectors.auth import ConnectorAuth, ConnectorAuthError
from connectors.connection_test import connector_test
from connectors.forms import connector_forms
from connectors.jwks import jwks_generate, jwks_rotate_now
from connectors.models import Connector, JwksKey
from connectors.services import connector_update
from connectors.transfer import connectors_export, connectors_import
from tests.conftest import form_data, make_user
from tests.peers.jwks_api import JwksApi

ISSUER = "connector-console"
JWKS = {
    "auth_config": "jwks_auth",
    "jwt_issuer": ISSUER,
    "jwt_subject": "svc-hr",
    "jwt_ttl_seconds": 300,
}


def bundle_for(**values):
    fields = {"name": "hr_api", "base_url": "https://api.example.com", "enabled": True}
    fields.update(values)
    return connector_forms(data=form_data(fields))


# --- the rules ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_jwks_auth_needs_an_issuer_and_an_audience():
    missing = bundle_for(auth_config="jwks_auth")
    assert not missing.is_valid()
    assert missing.form.errors["jwt_issuer"] == ["This field is required for Jwks Auth."]

    no_audience = bundle_for(auth_config="jwks_auth", jwt_issuer=ISSUER, base_url="")
    assert not no_audience.is_valid()
    assert "a blank audience is the Base URL" in no_audience.form.errors["jwt_audience"][0]

    ok = bundle_for(**JWKS)
    assert ok.is_valid(), ok.form.errors


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("jwt_extra_headers", '{"kid": "mine"}', "Leave kid out"),
        ("jwt_extra_headers", '{"alg": "none"}', "Leave alg out"),
        ("jwt_extra_claims", "[1, 2]", "JSON object"),
        ("jwt_extra_claims", "{not json", "JSON object"),
        ("jwt_ttl_seconds", 7201, "7200"),
        ("jwt_issuer", "a\nb", "line breaks"),
    ],
)
def test_jwks_auth_claim_rules(field, value, message):
    bundle = bundle_for(**{**JWKS, field: value})
    assert not bundle.is_valid()
    assert message in " ".join(bundle.form.errors[field])


@pytest.mark.django_db
def test_jwks_auth_stores_no_key_of_its_own(make_connector):
    """A private key, algorithm or kid typed while Jwks Auth is chosen is not kept."""
    connector = make_connector(
        "hr_api",
        **JWKS,
        jwt_private_key="-----BEGIN PRIVATE KEY-----\nnot-kept\n-----END PRIVATE KEY-----",
        jwt_algorithm="ES256",
        jwt_key_id="typed-kid",
        jwt_extra_claims='{"scope": "read"}',
    )
    connector.refresh_from_db()
    assert connector.jwt_private_key == ""
    assert (connector.jwt_algorithm, connector.jwt_key_id) == ("RS256", "")
    assert (connector.jwt_issuer, connector.jwt_subject) == (ISSUER, "svc-hr")
    assert connector.jwt_extra_claims == '{"scope": "read"}'
    assert connector.stored_secrets() == []


# --- requests signed with the console's key, verified against the published JWKS -------------


@pytest.fixture
def jwks_api(live_server):
    with JwksApi(
        f"{live_server.url}/.well-known/jwks.json", issuer=ISSUER, audience="https://api.test"
    ) as api:
        yield api


@pytest.fixture
def jwks_connector(make_connector, jwks_api, loopback_allowed):
    return make_connector(
        "hr_api",
        base_url=jwks_api.url(""),
        test_request_path="/v1/me",
        jwt_audience="https://api.test",
        **JWKS,
    )


@pytest.mark.django_db(transaction=True)
def test_the_connection_test_sends_a_jwt_the_api_verifies(jwks_api, jwks_connector, admin_user):
    key = jwks_generate(user=admin_user)
    outcome = connector_test(connector=jwks_connector, user=admin_user)
    assert outcome.run.ok, (outcome.run.outcome, outcome.run.message)
    verified = jwks_api.results[-1]
    assert verified.ok and verified.kid == key.kid
    claims = verified.claims
    assert (claims["iss"], claims["sub"], claims["aud"]) == (ISSUER, "svc-hr", "https://api.test")
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]
    header = jwt.get_unverified_header(jwks_api.tokens[-1])
    assert header["alg"] == "RS256" and header["kid"] == key.kid
    # The step shows the header and claims, never the signature.
    signature = jwks_api.tokens[-1].split(".")[2]
    attempt = TestAttempt.objects.get(run=outcome.run, step="api")
    shown = dict(attempt.request_headers)["Authorization"]
    assert shown.startswith("Bearer ") and signature not in shown
    assert signature not in json.dumps(AuditEvent.objects.values().last(), default=str)


@pytest.mark.django_db(transaction=True)
def test_connector_auth_signs_a_fresh_jwt_for_every_request(jwks_api, jwks_connector):
    jwks_generate(user=None)
    session = ConnectorAuth(jwks_connector).session()
    first = session.get(jwks_api.url("/v1/me"))
    second = session.get(jwks_api.url("/v1/items"))
    assert (first.status_code, second.status_code) == (200, 200)
    jtis = {result.claims["jti"] for result in jwks_api.results}
    assert len(jtis) == 2
    assert jwks_api.tokens[0] != jwks_api.tokens[1]


@pytest.mark.django_db(transaction=True)
def test_across_a_rotation_the_connector_signs_with_the_new_key_once_it_signs(
    jwks_api, jwks_connector
):
    from django.utils import timezone

    first = jwks_generate(user=None).kid
    second = jwks_rotate_now(user=None).kid
    session = ConnectorAuth(jwks_connector).session()
    assert session.get(jwks_api.url()).status_code == 200
    assert jwks_api.results[-1].kid == first  # the next key is published, not signing yet
    # The grace period passes (the rows' dates move a day back): the new key signs.
    now = timezone.now()
    for key in JwksKey.objects.all():
        for name in ("publish_at", "activates_at", "retires_at", "unpublish_at"):
            if getattr(key, name):
                setattr(key, name, getattr(key, name) - (now - now.replace(year=now.year - 1)))
        key.save()
    assert session.get(jwks_api.url()).status_code == 200
    assert jwks_api.results[-1].kid == second


@pytest.mark.django_db(transaction=True)
def test_without_a_signing_key_the_test_says_what_to_do(jwks_api, jwks_connector, admin_user):
    outcome = connector_test(connector=jwks_connector, user=admin_user)
    assert not outcome.run.ok and outcome.run.outcome == "config_error"
    assert "Generate JWKS" in outcome.run.message
    assert "Generate JWKS" in outcome.run.hint
    assert jwks_api.results == []  # nothing was sent
    with pytest.raises(ConnectorAuthError) as refused:
        ConnectorAuth(jwks_connector).session().get(jwks_api.url())
    assert refused.value.outcome == "config_error"


@pytest.mark.django_db(transaction=True)
def test_a_refused_jwt_names_what_the_api_must_know(live_server, make_connector, loopback_allowed):
    jwks_generate(user=None)
    with JwksApi(
        f"{live_server.url}/.well-known/jwks.json", issuer=ISSUER, audience="https://other.test"
    ) as api:
        connector = make_connector(
            "hr_api", base_url=api.url(""), test_request_path="/v1/me", **JWKS
        )
        outcome = connector_test(connector=connector, user=None)
    assert outcome.run.outcome == "http_error"
    assert "InvalidAudienceError" in api.results[-1].error
    assert "/.well-known/jwks.json" in outcome.run.hint
    assert f"iss '{ISSUER}'" in outcome.run.hint


# --- import, export, API, clone, audit diff ----------------------------------------------------


@pytest.mark.django_db
def test_export_and_import_carry_the_claims_never_a_key(make_connector, admin_user):
    jwks_generate(user=admin_user)
    make_connector("hr_api", **JWKS, jwt_extra_claims='{"scope": "read"}')
    data = connectors_export(include_secrets=True, plaintext=True, user=admin_user)
    text = json.dumps(data)
    entry = data["connectors"][0]
    assert entry["auth_config"] == "jwks_auth"
    assert entry["jwks_auth"] == {
        "issuer": ISSUER,
        "subject": "svc-hr",
        "audience": "",
        "ttl_seconds": 300,
        "extra_claims": {"scope": "read"},
        "extra_headers": {},
    }
    private = JwksKey.objects.get().private_key_pem
    for line in private.splitlines()[1:-1]:
        assert line not in text
    assert "PRIVATE KEY" not in text

    entry["name"] = "hr_api_copy"
    entry["jwks_auth"]["ttl_seconds"] = 600
    result = connectors_import(payload={"connectors": [entry]}, user=admin_user)
    assert result.ok, result.errors
    copy = Connector.objects.get(name="hr_api_copy")
    assert (copy.auth_config, copy.jwt_issuer, copy.jwt_ttl_seconds) == ("jwks_auth", ISSUER, 600)

    entry["name"] = "hr_api_bad"
    entry["jwks_auth"]["ttl_seconds"] = "600"
    refused = connectors_import(payload={"connectors": [entry]}, user=admin_user)
    assert not refused.ok
    assert any("jwks_auth.ttl_seconds" in str(error) for error in refused.errors)


@pytest.mark.django_db
def test_the_api_creates_a_jwks_auth_connector(admin_user):
    from connectors.api.tokens import api_token_create

    token = api_token_create(user=admin_user, name="ci", expires_days=30)
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    payload = {"name": "hr_api", "base_url": "https://api.example.com", **JWKS}
    created = client.post(
        "/api/v1/connectors/", json.dumps(payload), content_type="application/json"
    )
    assert created.status_code == 201, created.content
    data = json.loads(created.content)
    assert data["auth_config"] == "jwks_auth" and data["jwt_issuer"] == ISSUER
    assert data["jwt_private_key"] is None
    refused = client.post(
        "/api/v1/connectors/",
        json.dumps({**payload, "name": "hr_api_2", "jwt_issuer": ""}),
        content_type="application/json",
    )
    assert refused.status_code == 400 and "jwt_issuer" in refused.content.decode()


@pytest.mark.django_db
def test_clone_copies_the_claims_and_the_diff_records_them(make_connector, admin_user):
    source = make_connector("hr_api", **JWKS)
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/connectors/{source.name}/clone/").content.decode()
    assert f'value="{ISSUER}"' in page and "svc-hr" in page

    bundle = connector_forms(
        data=form_data(
            {
                "name": "hr_api",
                "base_url": "https://api.example.com",
                "enabled": True,
                **JWKS,
                "jwt_subject": "svc-finance",
                "version": source.version,
            }
        ),
        instance=source,
    )
    assert bundle.is_valid(), bundle.form.errors
    changes = connector_update(
        connector=bundle.form.instance, rows=bundle.rows(), user=admin_user, expected_version=1
    )
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("jwt_subject", "svc-hr", "svc-finance")
    ]
    event = AuditEvent.objects.filter(action="edit").get()
    assert event.details["changes"][0]["field"] == "jwt_subject"


@pytest.mark.django_db
def test_form_and_detail_show_the_jwks_url_and_the_current_kid(make_connector, admin_user):
    connector = make_connector("hr_api", **JWKS)
    client = Client()
    client.force_login(admin_user)
    detail = client.get(f"/connectors/{connector.name}/").content.decode()
    assert "http://testserver/.well-known/jwks.json" in detail
    assert "None yet" in detail
    key = jwks_generate(user=admin_user)
    detail = client.get(f"/connectors/{connector.name}/").content.decode()
    assert key.kid in detail and "Next rotation" in detail
    form = client.get(f"/connectors/{connector.name}/edit/").content.decode()
    assert "http://testserver/.well-known/jwks.json" in form and key.kid in form
    assert 'data-audit-copy="#jwks-url-text"' in form


# --- the canary: no key material in pages, logs, exports or audit rows -----------------------


@pytest.mark.django_db(transaction=True)
def test_no_private_key_or_signature_anywhere(jwks_api, jwks_connector, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    admin = make_user("admin", "canary_admin")
    client = Client()
    client.force_login(admin)
    first = jwks_generate(user=admin)
    jwks_rotate_now(user=admin)
    assert connector_test(connector=jwks_connector, user=admin).run.ok
    ConnectorAuth(jwks_connector).session().get(jwks_api.url())
    signatures = [token.split(".")[2] for token in jwks_api.tokens]
    assert len(signatures) == 2
    canaries = list(signatures)
    for key in JwksKey.objects.all():
        canaries += key.private_key_pem.splitlines()[1:-1]
        private = serialization.load_pem_private_key(key.private_key_pem.encode(), None)
        private_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private))
        canaries += [private_jwk[part] for part in ("d", "p", "q", "dp", "dq", "qi")]

    places: dict[str, str] = {}
    for url in (
        "/.well-known/jwks.json",
        "/fleet/jwks/",
        f"/connectors/{jwks_connector.name}/",
        f"/connectors/{jwks_connector.name}/edit/",
        f"/connectors/{jwks_connector.name}/clone/",
        "/audit/",
        "/dashboard/",
        "/api/v1/connectors/hr_api/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        places[url] = response.content.decode()
    for event in AuditEvent.objects.all():
        places[f"audit page {event.pk}"] = client.get(f"/audit/{event.pk}/").content.decode()
    places["audit rows"] = json.dumps(list(AuditEvent.objects.values()), default=str)
    places["attempts"] = json.dumps(list(TestAttempt.objects.values()), default=str)
    places["export"] = json.dumps(connectors_export(include_secrets=False, user=admin))
    places["export with secrets"] = json.dumps(
        connectors_export(include_secrets=True, plaintext=True, user=admin)
    )
    places["logs"] = caplog.text + capsys.readouterr().err
    for where, text in places.items():
        for canary in canaries:
            assert canary not in text, f"key material or a signature in {where}"
    assert first.kid in places["/.well-known/jwks.json"]


@pytest.mark.django_db
def test_the_dashboard_warns_of_a_missing_key_and_a_rotation_within_a_week(make_connector, viewer):
    import datetime as dt

    from django.utils import timezone

    client = Client()
    client.force_login(viewer)
    assert "data-cc-jwks-fleet" not in client.get("/dashboard/").content.decode()
    make_connector("hr_api", **JWKS)
    page = client.get("/dashboard/").content.decode()
    assert "data-cc-jwks-fleet" in page and "has no signing key" in page
    key = jwks_generate(user=None, now=timezone.now() - dt.timedelta(days=10))
    page = client.get("/dashboard/").content.decode()
    assert key.kid in page and "within a week" not in page
    JwksKey.objects.update(activates_at=timezone.now() - dt.timedelta(days=85))
    page = client.get("/dashboard/").content.decode()
    assert "within a week" in page and "alert-warning" in page


@pytest.mark.django_db(transaction=True)
def test_the_demo_jwks_connector_passes_against_the_sandbox(
    live_server, settings, loopback_allowed
):
    """`make run`'s demo: the key is generated with the demo connectors, and the sandbox API
    verifies the token with the published keys."""
    from connectors.demo import DEMO_JWKS_AUTH, demo_connectors_ensure

    settings.ROOT_URLCONF = "tests.urls_with_sandbox"
    created = demo_connectors_ensure(base_url=live_server.url)
    assert DEMO_JWKS_AUTH in created
    key = JwksKey.objects.get()
    outcome = connector_test(connector=Connector.objects.get(name=DEMO_JWKS_AUTH), user=None)
    assert outcome.run.ok, (outcome.run.outcome, outcome.run.message)
    body = json.loads(outcome.attempts[-1].response_excerpt)
    assert body["subject"] == "jwks:demo-jwks-service"
    # Running it again makes no second key.
    assert demo_connectors_ensure(base_url=live_server.url) == []
    assert list(JwksKey.objects.values_list("kid", flat=True)) == [key.kid]
