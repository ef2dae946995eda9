"""The connection test against a real OAuth2 server: django-oauth-toolkit over HTTP."""

from __future__ import annotations

import io
import json

import pytest
import requests
from django.core.cache import cache
from django.core.management import call_command
from encrypted_model_fields.fields import encrypt_str

from audit.models import TestRun
from connectors.auth import ConnectorAuth
from connectors.connection_test import connector_test

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_allowed")]


@pytest.fixture
def peer_connector(make_connector, oauth_peer):
    def make(name: str = "dot", *, client_authentication: str = "", **overrides):
        values = {
            "auth_config": "oauth2",
            "oauth2_grant_type": "password",
            "oauth2_client_id": oauth_peer.client_id,
            "oauth2_client_secret": oauth_peer.client_secret,
            "oauth2_username": oauth_peer.username,
            "oauth2_password": oauth_peer.password,
            "oauth2_token_url": oauth_peer.token_url,
            "oauth2_client_authentication": client_authentication,
            "base_url": oauth_peer.base_url,
            **overrides,
        }
        return make_connector(name, **values)

    return make


@pytest.mark.parametrize("method", ["basic_client", "request_body", ""])
def test_password_grant_succeeds_with_each_client_authentication(peer_connector, method):
    connector = peer_connector(client_authentication=method)
    run = connector_test(connector=connector).run
    assert run.outcome == "success", run.message
    assert run.ok
    assert run.client_authentication_used == (method or "basic_client")
    assert run.token["token_type"] == "Bearer"
    assert run.token["expires_in"] > 3000
    assert run.token["refresh_token_issued"] is True
    assert run.attempts.count() == 1


def test_wrong_client_secret_is_invalid_client_after_every_method(peer_connector):
    run = connector_test(connector=peer_connector(oauth2_client_secret="wrong+secret/:%")).run
    assert run.outcome == "invalid_client"
    methods = [a.client_authentication for a in run.attempts.all()]
    # Basic, then the body, then Basic without §2.3.1 encoding (the secret changes under it).
    assert methods == ["basic_client", "request_body", "basic_client_unencoded"]
    assert all(a.outcome == "invalid_client" for a in run.attempts.all())
    assert "Client Secret" in run.hint


def test_wrong_password_is_invalid_grant_and_stops_at_the_first_attempt(peer_connector):
    run = connector_test(connector=peer_connector(oauth2_password="not-the-password")).run
    assert run.outcome == "invalid_grant"
    assert run.attempts.count() == 1  # the client was accepted: no point trying other methods
    assert "Password Grant Password" in run.hint


def test_application_without_the_password_grant_is_unauthorized_client(peer_connector, oauth_peer):
    connector = peer_connector(
        oauth2_client_id=oauth_peer.cc_only_client_id,
        oauth2_client_secret=oauth_peer.cc_only_client_secret,
    )
    run = connector_test(connector=connector).run
    assert run.outcome == "unauthorized_client"


def test_scope(peer_connector):
    run = connector_test(connector=peer_connector("scoped", oauth2_password_scope="read")).run
    assert run.ok and run.token["scope"] == "read"
    run = connector_test(connector=peer_connector("too_much", oauth2_password_scope="admin")).run
    assert run.outcome == "invalid_scope"


def test_client_credentials_grant(make_connector, oauth_peer):
    connector = make_connector(
        "cc",
        auth_config="oauth2",
        oauth2_grant_type="client_credentials",
        oauth2_client_id=oauth_peer.cc_client_id,
        oauth2_client_secret=oauth_peer.cc_client_secret,
        oauth2_token_url=oauth_peer.token_url,
        base_url=oauth_peer.base_url,
        test_request_path="/api/me",
    )
    run = connector_test(connector=connector).run
    assert run.ok, run.message
    assert [a.step for a in run.attempts.all()] == ["token", "api"]
    assert run.attempts.get(step="api").status_code == 200


def test_test_request_path_uses_the_token(peer_connector):
    run = connector_test(connector=peer_connector(test_request_path="/api/me")).run
    assert run.ok, run.message
    api = run.attempts.get(step="api")
    assert api.status_code == 200
    assert "alice" in api.response_excerpt
    assert dict(api.request_headers)["Authorization"] == "Bearer ********"


def test_command_prints_the_documented_json(peer_connector):
    peer_connector("cli_dot")
    out = io.StringIO()
    call_command("connector_test", "cli_dot", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert set(data) == {
        "connector",
        "ok",
        "outcome",
        "message",
        "client_authentication_used",
        "attempts",
        "token",
    }
    assert data["ok"] is True and data["client_authentication_used"] == "basic_client"
    assert set(data["attempts"][0]) == {
        "client_authentication",
        "status_code",
        "outcome",
        "message",
        "duration_ms",
    }
    assert set(data["token"]) == {"token_type", "expires_in", "scope", "refresh_token_issued"}
    assert TestRun.objects.get(connector_name="cli_dot").source == "cli"


def test_connector_auth_calls_the_api_and_refreshes_once_on_401(peer_connector, oauth_peer):
    connector = peer_connector("api_user")
    auth = ConnectorAuth(connector)
    response = requests.get(oauth_peer.me_url, auth=auth, timeout=10)
    assert response.status_code == 200 and response.json()["username"] == "alice"
    # A token the server no longer accepts: the API answers 401, a new token is fetched once.
    cache.set(
        auth.cache_key,
        encrypt_str(
            json.dumps({"access_token": "revoked-token", "expires_at": 4_000_000_000})
        ).decode(),
    )
    response = requests.get(oauth_peer.me_url, auth=auth, timeout=10)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert auth.access_token() != "revoked-token"
