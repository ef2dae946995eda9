"""Issue 8, from outside: real token-response shapes, altered echoes, servers that skip the
RFC 6749 §2.3.1 decoding, and error texts under other keys, against a loopback token server,
through the connection test, the pages and the database."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core import serializers
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent, TestAttempt, TestRun
from connectors.connection_test import connector_test
from connectors.models import Connector
from tests.conftest import make_user
from tests.peers.interop_server import (
    ECHO_FORMS,
    ERROR_TEXT,
    SHAPES,
    InteropServer,
    altered,
    canaries,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_allowed")]


@pytest.fixture(scope="module")
def interop():
    with InteropServer() as peer:
        yield peer


@pytest.fixture
def interop_connector(make_connector, interop):
    def make(path: str, name: str = "interop", **overrides: object) -> Connector:
        values = {
            "auth_config": "oauth2",
            "oauth2_grant_type": "client_credentials",
            "oauth2_client_id": interop.client_id,
            "oauth2_client_secret": interop.client_secret,
            "oauth2_token_url": interop.url(path),
            "oauth2_client_authentication": "request_body",
            **overrides,
        }
        return make_connector(name, **values)

    return make


def stored_text() -> str:
    """Every test run, attempt and audit event as the database holds them."""
    rows = [*TestRun.objects.all(), *TestAttempt.objects.all(), *AuditEvent.objects.all()]
    return serializers.serialize("json", rows)


def pages_of(connector: Connector) -> str:
    """The result panel of a fresh test, and the audit record's page of that run."""
    operator = Client()
    operator.force_login(make_user("operator", f"op_{connector.name}"))
    panel = operator.post(f"/connectors/{connector.name}/test/", HTTP_X_REQUESTED_WITH="fetch")
    assert panel.status_code == 200
    run = TestRun.objects.filter(connector_name=connector.name).latest("pk")
    detail = operator.get(reverse("audit:detail", args=[run.audit_event.pk]))
    assert detail.status_code == 200
    return panel.content.decode() + detail.content.decode()


# --------------------------------------------------------------------------------------------
# Credentials issued by token servers: default-deny


# The Json Access Token Key each shape needs; the default ("access_token") is tried too.
TOKEN_KEYS = {
    "cognito": "AuthenticationResult.AccessToken",
    "firebase": "idToken",
    "data-token": "data.token",
    "apikey": "access_token",
    "session-key": "access_token",
}


@pytest.mark.parametrize("key", ["default", "configured"])
@pytest.mark.parametrize("shape", SHAPES)
def test_no_credential_of_a_token_response_is_shown_or_stored(
    interop_connector, shape, key, caplog
):
    caplog.set_level(logging.DEBUG)
    overrides = {"oauth2_access_token_key": TOKEN_KEYS[shape]} if key == "configured" else {}
    connector = interop_connector(f"/shape/{shape}", name=f"shape_{key}", **overrides)
    run = connector_test(connector=connector).run
    if key == "configured":
        assert run.ok, run.message
    seen = pages_of(connector) + stored_text() + caplog.text
    for name, canary in canaries(shape).items():
        assert canary not in seen, f"{shape}: {name} leaked"
    excerpt = run.attempts.get().response_excerpt
    assert "********" in excerpt
    # The harmless facts stay readable.
    assert "3600" in excerpt or "600" in excerpt


# --------------------------------------------------------------------------------------------
# A server that echoes a secret altered


@pytest.mark.parametrize("form", ECHO_FORMS)
def test_an_altered_echo_of_the_secret_is_masked(interop_connector, interop, form):
    connector = interop_connector(f"/echo/{form}", name="echo_altered")
    run = connector_test(connector=connector).run
    assert run.outcome == "invalid_grant"
    echoed = altered(interop.client_secret, form)
    seen = pages_of(connector) + stored_text()
    assert echoed not in seen
    assert json.dumps(echoed)[1:-1] not in seen  # as the JSON body spells it
    assert "Login rejected for secret ********" in run.message


# --------------------------------------------------------------------------------------------
# Basic against servers that do and don't undo the §2.3.1 encoding


def test_pinned_basic_works_against_a_server_that_skips_the_decoding(interop_connector):
    connector = interop_connector("/strict-basic", oauth2_client_authentication="basic_client")
    run = connector_test(connector=connector).run
    assert run.ok, run.message
    attempts = list(run.attempts.order_by("position"))
    assert [a.client_authentication for a in attempts] == ["basic_client", "basic_client_unencoded"]
    assert attempts[0].outcome == "invalid_client"
    assert run.client_authentication_used == "basic_client_unencoded"
    # Copy as curl repeats the form that worked: curl's -u is the unencoded form.
    assert "--user 'interop client:'\"$CLIENT_SECRET\"" in attempts[1].curl
    assert "BASIC=" not in attempts[1].curl
    assert "(unencoded)" in run.hint


def test_pinned_basic_against_a_decoding_server_needs_one_request(interop_connector):
    connector = interop_connector("/decoding-basic", oauth2_client_authentication="basic_client")
    run = connector_test(connector=connector).run
    assert run.ok, run.message
    assert [a.client_authentication for a in run.attempts.all()] == ["basic_client"]
    assert run.client_authentication_used == "basic_client"


def test_pinned_unencoded_basic_sends_the_credentials_as_they_are(interop_connector, interop):
    connector = interop_connector(
        "/strict-basic", oauth2_client_authentication="basic_client_unencoded"
    )
    interop.clear_requests()
    run = connector_test(connector=connector).run
    assert run.ok, run.message
    assert [a.client_authentication for a in run.attempts.all()] == ["basic_client_unencoded"]
    [sent] = interop.requests
    assert sent.basic_auth == (interop.client_id, interop.client_secret)
    assert "client_secret" not in sent.form


def test_automatic_mode_finds_the_unencoded_form_and_pinning_records_it(
    interop_connector, admin_client
):
    connector = interop_connector("/strict-basic-only", oauth2_client_authentication="")
    outcome = connector_test(connector=connector)
    assert outcome.run.ok, outcome.run.message
    assert [a.client_authentication for a in outcome.run.attempts.all()] == [
        "basic_client",
        "request_body",
        "basic_client_unencoded",
    ]
    assert outcome.pin_offer == "basic_client_unencoded"
    response = admin_client.post(
        reverse("connectors:pin", args=[connector.name]),
        {"method": outcome.pin_offer, "version": connector.version},
    )
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.oauth2_client_authentication == "basic_client_unencoded"
    again = connector_test(connector=connector).run
    assert again.ok and again.attempts.count() == 1
    assert again.client_authentication_used == "basic_client_unencoded"


def test_command_json_names_the_form_that_worked(interop_connector):
    interop_connector(
        "/strict-basic", name="cli_strict", oauth2_client_authentication="basic_client"
    )
    out = io.StringIO()
    call_command("connector_test", "cli_strict", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["ok"] is True
    assert data["client_authentication_used"] == "basic_client_unencoded"
    assert [a["client_authentication"] for a in data["attempts"]] == [
        "basic_client",
        "basic_client_unencoded",
    ]


# --------------------------------------------------------------------------------------------
# Error text under other keys


@pytest.mark.parametrize("key", ["description", "message"])
def test_error_text_under_another_key_is_shown(interop_connector, key):
    connector = interop_connector(f"/error-description-as/{key}")
    run = connector_test(connector=connector).run
    assert run.outcome == "invalid_grant"
    assert ERROR_TEXT in run.message
    assert ERROR_TEXT in pages_of(connector)
