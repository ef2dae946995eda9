"""End to end for signed JWTs: a private key goes in through the form, assertions and Jwt Auth
tokens go out to Authlib's server and a verifying API; afterwards no page, log line, export
without secrets, audit record or database byte holds the private key or any signature sent."""

from __future__ import annotations

import io
import logging

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent
from connectors.models import Connector
from connectors.oauth_http import assertions
from tests.conftest import form_data, make_user
from tests.peers.jwt_server import JwtPeer
from tests.test_canary_end_to_end import database_bytes

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("loopback_allowed"),
]


def _key_lines(pem: str) -> list[str]:
    """The base64 lines of a private key: any one of them in a page is a leak."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def test_no_private_key_or_signature_anywhere(caplog, capsys):
    caplog.set_level(logging.DEBUG)
    private_key = assertions.generate_private_key_pem("RS256")
    with JwtPeer() as peer:
        peer.register_client("svc-canary", jwk=assertions.public_jwk(private_key))
        peer.register_api_issuer("canary-api", assertions.public_key_pem(private_key))
        admin, operator = Client(), Client()
        admin.force_login(make_user("admin", "jwt_canary_admin"))
        operator.force_login(make_user("operator", "jwt_canary_operator"))
        connectors = {
            "canary_grant": {
                "auth_config": "oauth2",
                "oauth2_grant_type": "jwt_bearer",
                "oauth2_token_url": peer.token_url,
                "jwt_issuer": "svc-canary",
                "jwt_subject": "alice",
            },
            "canary_pkjwt": {
                "auth_config": "oauth2",
                "oauth2_grant_type": "client_credentials",
                "oauth2_client_id": "svc-canary",
                "oauth2_client_authentication": "private_key_jwt",
                "oauth2_token_url": peer.token_url,
            },
            "canary_jwt_api": {
                "auth_config": "jwt_auth",
                "base_url": peer.api_url(""),
                "test_request_path": "/me",
                "jwt_issuer": "canary-api",
            },
            # A wrong audience: a refusal whose answer and hint are recorded too.
            "canary_refused": {
                "auth_config": "oauth2",
                "oauth2_grant_type": "jwt_bearer",
                "oauth2_token_url": peer.token_url,
                "jwt_issuer": "svc-canary",
                "jwt_subject": "alice",
                "jwt_audience": "https://other.example/token",
            },
        }
        for name, values in connectors.items():
            data = form_data(
                {
                    "name": name,
                    "enabled": True,
                    "base_url": "https://api.example.com",
                    "jwt_private_key": private_key,
                    **values,
                }
            )
            response = admin.post("/connectors/new/", data)
            assert response.status_code == 302, response.content.decode()[:2000]
        # Tests of saved settings and of unsaved form values (the edit page's Test button).
        for name in connectors:
            response = operator.post(f"/connectors/{name}/test/", HTTP_X_REQUESTED_WITH="fetch")
            assert response.status_code == 200
        edit = form_data(
            {
                "name": "canary_grant",
                "enabled": True,
                "base_url": "https://api.example.com",
                "version": 1,
                **connectors["canary_grant"],
            }
        )
        assert (
            admin.post("/connectors/canary_grant/edit/test/", edit, HTTP_X_REQUESTED_WITH="fetch")
        ).status_code == 200
        out = io.StringIO()
        call_command("connector_test", "canary_grant", "--json", stdout=out)
        command_output = out.getvalue()
        # A generated key replaces the pasted one: its lines are canaries too.
        grant = Connector.objects.get(name="canary_grant")
        admin.post("/connectors/canary_grant/key-pair/", {"version": grant.version})
        generated = Connector.objects.get(name="canary_grant").jwt_private_key
        assert generated != private_key
        sent = [
            value
            for request in peer.requests
            for value in (
                request.form.get("assertion"),
                request.form.get("client_assertion"),
                (request.header("Authorization") or "").removeprefix("Bearer ") or None,
            )
            if value
        ]

    assert len(sent) >= 6, "the peer never saw the assertions"
    canaries = {
        **{f"private key line {i}": line for i, line in enumerate(_key_lines(private_key))},
        **{f"generated key line {i}": line for i, line in enumerate(_key_lines(generated))},
        **{f"signature {i}": assertions.signature_of(token) for i, token in enumerate(sent)},
    }

    def assert_clean(data: str | bytes, where: str) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        for what, canary in canaries.items():
            assert canary not in text, f"{what} leaked into {where}"

    assert_clean(command_output, "connector_test --json")
    superuser = Client()
    superuser.force_login(User.objects.create_superuser("jwt_canary_root", password="x-9-y-8-z"))
    pages = ["/connectors/", "/audit/", "/audit/?kind=test_run", "/audit/?kind=change"]
    for name in connectors:
        pages += [f"/connectors/{name}/", f"/connectors/{name}/edit/", f"/connectors/{name}/clone/"]
    pages += [f"/audit/{pk}/" for pk in AuditEvent.objects.values_list("pk", flat=True)]
    shown_decoded = False
    for page in pages:
        response = superuser.get(page)
        assert response.status_code == 200, page
        assert_clean(response.content, page)
        shown_decoded = shown_decoded or b"data-audit-signed-jwt" in response.content
    assert shown_decoded, "no page showed a decoded assertion: the scan would prove nothing"

    for fmt in ("csv", "json"):
        response = superuser.get(f"/audit/export/?format={fmt}")
        assert_clean(b"".join(response.streaming_content), f"audit export {fmt}")
    assert_clean(admin.post("/connectors/export/", {}).content, "connectors export")
    out = io.StringIO()
    call_command("connectors_export", stdout=out)
    assert_clean(out.getvalue(), "connectors_export")

    assert_clean("\n".join(record.getMessage() for record in caplog.records), "log records")
    captured = capsys.readouterr()
    assert_clean(captured.out + captured.err, "stdout/stderr")

    stored = database_bytes()
    assert b"canary_jwt_api" in stored  # the scan reads real data
    assert_clean(stored, "the database")
