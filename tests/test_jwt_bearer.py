"""RFC 7523 against Authlib's authorization server, and Jwt Auth against a verifying API.

The peer (tests/peers/jwt_server.py) runs Authlib's JWTBearerGrant and JWTBearerClientAssertion
on 127.0.0.1 and verifies with the public JWK the console shows for registration; its API
verifies Jwt Auth tokens with PyJWT. Wrong key, expired assertion and wrong audience each end
in a clear outcome and hint.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest
import requests
from django.test import Client
from django.urls import reverse

from audit.models import TestAttempt, TestRun
from connectors.auth import ConnectorAuth
from connectors.connection_test import connector_test, token_request_for
from connectors.explain import assertion_problem
from connectors.models import Connector
from connectors.oauth_http import assertions
from connectors.oauth_http import token_request as token_core
from tests.peers.jwt_server import JwtPeer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_allowed")]

RSA_KEY = assertions.generate_private_key_pem("RS256")
OTHER_RSA_KEY = assertions.generate_private_key_pem("RS256")
EC_KEY = assertions.generate_private_key_pem("ES256")


@pytest.fixture(scope="module")
def peer():
    with JwtPeer() as running:
        running.register_client("svc-bearer", jwk=assertions.public_jwk(RSA_KEY))
        running.register_client("svc-ec", jwk=assertions.public_jwk(EC_KEY, algorithm="ES256"))
        running.register_client(
            "svc-pkjwt",
            jwk=assertions.public_jwk(RSA_KEY),
            grants=("client_credentials",),
            auth_methods=("client_assertion_jwt",),
        )
        running.register_api_issuer("console-jwt-auth", assertions.public_key_pem(RSA_KEY))
        yield running


@pytest.fixture
def bearer_connector(make_connector, peer):
    def make(name: str = "jwt_bearer", **overrides: object) -> Connector:
        values = {
            "auth_config": "oauth2",
            "oauth2_grant_type": "jwt_bearer",
            "oauth2_token_url": peer.token_url,
            "jwt_private_key": RSA_KEY,
            "jwt_algorithm": "RS256",
            "jwt_issuer": "svc-bearer",
            "jwt_subject": "alice",
            "jwt_key_id": "key-1",
            "jwt_extra_headers": '{"typ": "JWT"}',
            **overrides,
        }
        return make_connector(name, **values)

    return make


@pytest.fixture
def pkjwt_connector(make_connector, peer):
    def make(name: str = "pkjwt", **overrides: object) -> Connector:
        values = {
            "auth_config": "oauth2",
            "oauth2_grant_type": "client_credentials",
            "oauth2_client_id": "svc-pkjwt",
            "oauth2_client_authentication": "private_key_jwt",
            "oauth2_client_credentials_scope": "read",
            "oauth2_token_url": peer.token_url,
            "jwt_private_key": RSA_KEY,
            "jwt_algorithm": "RS256",
            **overrides,
        }
        return make_connector(name, **values)

    return make


class _ShiftedClock:
    """The signing module's clock, off by `seconds` (the peer keeps the real one)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def time(self) -> float:
        return time.time() + self.seconds


def _sent_jwt(peer: JwtPeer, field: str) -> str:
    return [r.form[field] for r in peer.requests if field in r.form][-1]


# --------------------------------------------------------------------------------------------
# The JWT Bearer grant (RFC 7523 §2.1)


def test_jwt_bearer_grant_gets_a_token_from_authlib(bearer_connector, peer):
    connector = bearer_connector()
    peer.clear()
    outcome = connector_test(connector=connector)
    assert outcome.run.ok, (outcome.run.message, outcome.run.hint)
    assert outcome.run.outcome == "success"
    [sent] = peer.requests
    assert sent.form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    header, claims = assertions.decoded_view(sent.form["assertion"])
    assert header == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
    assert claims["iss"] == "svc-bearer" and claims["sub"] == "alice"
    assert claims["aud"] == peer.token_url
    assert claims["exp"] - claims["iat"] == 300


def test_ec_key_and_es256(bearer_connector):
    connector = bearer_connector(
        "jwt_bearer_ec", jwt_private_key=EC_KEY, jwt_algorithm="ES256", jwt_issuer="svc-ec"
    )
    outcome = connector_test(connector=connector)
    assert outcome.run.ok, outcome.run.message


def test_each_attempt_signs_a_fresh_assertion(bearer_connector, peer):
    connector = bearer_connector("jwt_fresh")
    peer.clear()
    connector_test(connector=connector)
    connector_test(connector=connector)
    first, second = (assertions.decoded_view(r.form["assertion"])[1] for r in peer.requests)
    assert first["jti"] != second["jti"]


def test_wrong_key_is_an_invalid_grant_with_the_register_the_key_hint(bearer_connector):
    connector = bearer_connector("jwt_wrong_key", jwt_private_key=OTHER_RSA_KEY)
    run = connector_test(connector=connector).run
    assert run.outcome == "invalid_grant"
    assert "could not verify the assertion of the JWT Bearer Grant" in run.hint
    assert "public key" in run.hint and "Private Key" in run.hint


def test_wrong_audience_names_the_audience_field(bearer_connector):
    connector = bearer_connector(
        "jwt_wrong_aud", jwt_audience="https://login.example.com/oauth2/token"
    )
    run = connector_test(connector=connector).run
    assert run.outcome == "invalid_grant"
    assert "aud" in run.message
    assert "did not accept the audience" in run.hint and "Jwt Audience" in run.hint


def test_expired_assertion_names_the_clock(bearer_connector, monkeypatch):
    connector = bearer_connector("jwt_expired", jwt_ttl_seconds=60)
    # The console's clock two hours behind: the assertion it signs is long expired.
    monkeypatch.setattr(assertions, "time", _ShiftedClock(-7200))
    run = connector_test(connector=connector).run
    assert run.outcome == "invalid_grant"
    assert "expired" in run.message
    assert "expired or not yet valid" in run.hint and "clock" in run.hint


def test_unknown_subject_names_issuer_and_subject(bearer_connector):
    run = connector_test(connector=bearer_connector("jwt_bad_sub", jwt_subject="mallory")).run
    assert run.outcome == "invalid_grant"
    assert "Jwt Subject" in run.hint


# --------------------------------------------------------------------------------------------
# private_key_jwt client authentication (RFC 7523 §2.2)


def test_private_key_jwt_authenticates_the_client(pkjwt_connector, peer):
    connector = pkjwt_connector()
    peer.clear()
    outcome = connector_test(connector=connector)
    assert outcome.run.ok, (outcome.run.message, outcome.run.hint)
    assert outcome.run.client_authentication_used == "private_key_jwt"
    [sent] = peer.requests
    assert sent.form["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    assert "client_secret" not in sent.form and sent.header("Authorization") is None
    header, claims = assertions.decoded_view(sent.form["client_assertion"])
    assert header["alg"] == "RS256"
    assert claims["iss"] == claims["sub"] == "svc-pkjwt"
    assert claims["aud"] == peer.token_url


def test_an_algorithm_the_server_refuses_is_named(pkjwt_connector):
    """joserfc (under Authlib) refuses PS256 unless the server opts in."""
    run = connector_test(connector=pkjwt_connector("pkjwt_ps256", jwt_algorithm="PS256")).run
    assert run.outcome == "invalid_client"
    assert "PS256" in run.message
    assert "does not accept the Signing Algorithm" in run.hint


def test_private_key_jwt_wrong_key_is_a_rejected_client_with_a_key_hint(pkjwt_connector):
    run = connector_test(
        connector=pkjwt_connector("pkjwt_wrong", jwt_private_key=OTHER_RSA_KEY)
    ).run
    assert run.outcome == "invalid_client"
    assert "could not verify the client assertion (private_key_jwt)" in run.hint


def test_private_key_jwt_wrong_audience(pkjwt_connector):
    run = connector_test(
        connector=pkjwt_connector("pkjwt_aud", jwt_audience="https://elsewhere.example/token")
    ).run
    assert run.outcome == "invalid_client"
    assert "did not accept the audience" in run.hint


def test_private_key_jwt_expired(pkjwt_connector, monkeypatch):
    connector = pkjwt_connector("pkjwt_expired", jwt_ttl_seconds=30)
    monkeypatch.setattr(assertions, "time", _ShiftedClock(-3600))
    run = connector_test(connector=connector).run
    assert run.outcome == "invalid_client"
    assert "expired or not yet valid" in run.hint


def test_private_key_jwt_with_the_jwt_bearer_grant_signs_two_assertions(bearer_connector, peer):
    """Client authentication stays as configured: the grant's assertion plus the client's."""
    peer.register_client(
        "svc-both",
        jwk=assertions.public_jwk(RSA_KEY),
        auth_methods=("client_assertion_jwt",),
    )
    connector = bearer_connector(
        "jwt_both",
        jwt_issuer="svc-both",
        oauth2_client_id="svc-both",
        oauth2_client_authentication="private_key_jwt",
    )
    peer.clear()
    assert connector_test(connector=connector).run.ok
    [sent] = peer.requests
    grant = assertions.decoded_view(sent.form["assertion"])[1]
    client = assertions.decoded_view(sent.form["client_assertion"])[1]
    assert grant["sub"] == "alice" and client["sub"] == "svc-both"
    assert grant["jti"] != client["jti"]


# --------------------------------------------------------------------------------------------
# What is stored and shown: decoded header and claims, never the signature


def test_result_steps_show_header_and_claims_but_never_the_signature(
    bearer_connector, peer, admin_client
):
    connector = bearer_connector("jwt_shown")
    peer.clear()
    panel = admin_client.post(
        reverse("connectors:test", args=[connector.name]), HTTP_X_REQUESTED_WITH="fetch"
    )
    assert panel.status_code == 200
    sent = _sent_jwt(peer, "assertion")
    signature = assertions.signature_of(sent)
    html = panel.content.decode()
    assert "data-audit-signed-jwt" in html
    assert "&quot;iss&quot;: &quot;svc-bearer&quot;" in html
    assert "&quot;kid&quot;: &quot;key-1&quot;" in html
    assert signature not in html and sent not in html
    run = TestRun.objects.filter(connector_name="jwt_shown").latest("pk")
    audit_page = admin_client.get(reverse("audit:detail", args=[run.audit_event.pk]))
    assert "data-audit-signed-jwt" in audit_page.content.decode()
    assert signature not in audit_page.content.decode()
    stored = json.dumps(
        [list(TestAttempt.objects.values()), list(TestRun.objects.values())], default=str
    )
    assert signature not in stored
    # The header and claims are stored (as header.claims.<mask>) for the step to show.
    assert sent.rsplit(".", 1)[0] in stored


def test_curl_carries_the_assertion_as_a_shell_variable(bearer_connector, pkjwt_connector):
    for connector in (bearer_connector("jwt_curl"), pkjwt_connector("pkjwt_curl")):
        outcome = connector_test(connector=connector)
        [attempt] = [a for a in outcome.attempts if a.step == "token"]
        curl = attempt.curl
        field = "assertion" if connector.oauth2_grant_type == "jwt_bearer" else "client_assertion"
        variable = "ASSERTION" if field == "assertion" else "CLIENT_ASSERTION"
        assert f'--data-urlencode {field}="${variable}"' in curl
        assert f"Set these shell variables first (for example: read -rs NAME): {variable}" in curl
        assert "eyJ" not in curl


def test_core_masks_only_the_signature_of_its_own_assertions():
    request = token_request_for(
        Connector(
            auth_config="oauth2",
            oauth2_grant_type="jwt_bearer",
            oauth2_token_url="https://login.example.com/token",
            jwt_private_key=RSA_KEY,
            jwt_issuer="i",
            jwt_subject="s",
        ),
        rows=[],
    )
    signed = token_core.with_assertions(request, "")
    attempt = token_core._attempt(
        signed, "", signed.token_url, token_core.Reading("success", "ok"), signed.secrets()
    )
    shown = dict(attempt.request_body)["assertion"]
    assert shown.endswith(".********")
    assert shown.rsplit(".", 1)[0] == signed.assertion.rsplit(".", 1)[0]


@pytest.mark.parametrize(
    ("said", "problem"),
    [
        ("The token is expired", "expired"),
        ("Invalid claim: 'aud'", "audience"),
        ("JWT ID is used before.", "replay"),
        ("Invalid 'sub' value in assertion", "issuer"),
        ("Signature verification failed", "signature"),
        ("", ""),
    ],
)
def test_assertion_problems_are_read_from_the_servers_words(said, problem):
    assert assertion_problem(said) == problem


# --------------------------------------------------------------------------------------------
# Jwt Auth: the signed JWT is the API credential


@pytest.fixture
def jwt_auth_connector(make_connector, peer):
    def make(name: str = "jwt_auth", **overrides: object) -> Connector:
        values = {
            "auth_config": "jwt_auth",
            "base_url": peer.api_url(""),
            "test_request_path": "/me",
            "jwt_private_key": RSA_KEY,
            "jwt_algorithm": "RS256",
            "jwt_issuer": "console-jwt-auth",
            "jwt_subject": "svc-reporting",
            **overrides,
        }
        return make_connector(name, **values)

    return make


def test_jwt_auth_connection_test_calls_the_test_path_with_a_signed_jwt(jwt_auth_connector, peer):
    connector = jwt_auth_connector()
    assert connector.jwt_ttl_seconds == 300  # the default: five minutes
    peer.clear()
    outcome = connector_test(connector=connector)
    assert outcome.run.ok, (outcome.run.message, outcome.run.hint)
    [sent] = peer.requests
    assert sent.path == "/api/me"
    token = sent.header("Authorization").removeprefix("Bearer ")
    claims = jwt.decode(
        token, assertions.public_key_pem(RSA_KEY), algorithms=["RS256"], audience=peer.api_url("")
    )
    assert claims["exp"] - claims["iat"] == 300 and claims["sub"] == "svc-reporting"
    [attempt] = outcome.attempts
    shown = dict(attempt.request_headers)["Authorization"]
    assert shown == "Bearer " + token.rsplit(".", 1)[0] + ".********"


def test_jwt_auth_wrong_key_is_refused_with_a_hint(jwt_auth_connector):
    run = connector_test(
        connector=jwt_auth_connector("jwt_auth_wrong", jwt_private_key=OTHER_RSA_KEY)
    ).run
    assert run.outcome == "http_error"
    assert "refused the signed JWT" in run.hint and "public key" in run.hint


def test_connector_auth_signs_a_new_jwt_for_every_request(jwt_auth_connector, peer):
    connector = jwt_auth_connector("jwt_auth_session")
    session = ConnectorAuth(connector).session()
    peer.clear()
    for _ in range(2):
        response = session.get(peer.api_url("/me"))
        assert response.status_code == 200, response.text
        assert response.json()["sub"] == "svc-reporting"
    tokens = [r.header("Authorization") for r in peer.requests]
    assert len(set(tokens)) == 2


def test_connector_auth_with_plain_requests(jwt_auth_connector, peer):
    connector = jwt_auth_connector("jwt_auth_plain")
    response = requests.get(peer.api_url("/me"), auth=ConnectorAuth(connector), timeout=5)
    assert response.status_code == 200


def test_connector_auth_uses_private_key_jwt_for_its_token(pkjwt_connector, peer):
    connector = pkjwt_connector("pkjwt_auth")
    assert ConnectorAuth(connector).access_token().startswith("peer-")


# --------------------------------------------------------------------------------------------
# Key help: generate on the server, show the public half


def test_generate_key_pair_stores_a_new_key_and_the_page_shows_only_its_public_half(
    jwt_auth_connector, admin_client, peer
):
    connector = jwt_auth_connector("jwt_generate", jwt_algorithm="ES256", jwt_private_key=EC_KEY)
    response = admin_client.post(
        reverse("connectors:key-pair", args=[connector.name]),
        {"version": connector.version},
    )
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.jwt_private_key != EC_KEY
    facts = assertions.key_facts(assertions.load_private_key(connector.jwt_private_key))
    assert facts.description == "EC P-256"
    page = admin_client.get(connector.get_absolute_url()).content.decode()
    assert assertions.public_key_pem(connector.jwt_private_key).strip() in page
    assert "PRIVATE KEY" not in page
    body = connector.jwt_private_key.splitlines()[1]
    assert body not in page
    # The public JWK shown on the page is the one the API needs to verify.
    peer.register_api_issuer(
        "console-jwt-auth", assertions.public_key_pem(connector.jwt_private_key)
    )
    try:
        assert connector_test(connector=connector).run.ok
    finally:
        peer.register_api_issuer("console-jwt-auth", assertions.public_key_pem(RSA_KEY))


def test_generate_key_pair_is_for_admins_and_post_only(
    jwt_auth_connector, client, django_user_model
):
    from tests.conftest import make_user

    connector = jwt_auth_connector("jwt_gen_perm")
    viewer = Client()
    viewer.force_login(make_user("viewer", "jwt_viewer"))
    url = reverse("connectors:key-pair", args=[connector.name])
    assert viewer.post(url, {"version": connector.version}).status_code == 403
    before = connector.jwt_private_key
    connector.refresh_from_db()
    assert connector.jwt_private_key == before


def test_weak_rsa_key_is_saved_with_a_warning(admin_client, make_connector):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    connector = make_connector(
        "jwt_weak",
        auth_config="jwt_auth",
        jwt_private_key=weak,
        jwt_issuer="i",
    )
    page = admin_client.get(connector.get_absolute_url()).content.decode()
    assert "data-cc-weak-key" in page and "RSA 1024 bits" in page
