"""Canaries for Connect (Authorization Code Grant): the code, the PKCE verifier, the refresh
tokens and the access token go through the real views; afterwards no page, API answer, export
without secrets, audit record, log line or database byte holds any of them in plain text."""

from __future__ import annotations

import io
import json
import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent
from connectors.authorization_code import SESSION_KEY
from connectors.models import Connector
from tests.conftest import make_user
from tests.test_authorization_code import RotatingTokenServer
from tests.test_canary_end_to_end import database_bytes

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("loopback_allowed"),
]

CODE = "cnry-ac-code-3e4f5a"


class CanaryTokenServer(RotatingTokenServer):
    """Issues canary tokens; accepts the canary code with the right PKCE verifier."""

    def new_refresh_token(self) -> str:
        with self.lock:
            self.issued += 1
            token = f"cnry-ac-refresh-{self.issued}-7b8c9d"
            self.valid.add(token)
            return token

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("code") == CODE:
            form = {**form, "code": "good-code"}
        status, body = super().answer(form)
        if "access_token" in body:
            body["access_token"] = f"at-cnry-ac-access-{self.issued}-0e1f"
        return status, body


def test_no_authorization_code_canary_anywhere(make_connector, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    server = CanaryTokenServer(delay=0)
    try:
        admin_user = make_user("admin", "canary_connect_admin")
        admin = Client()
        admin.force_login(admin_user)
        connector = make_connector(
            "canary_authcode",
            auth_config="oauth2",
            oauth2_grant_type="authorization_code",
            oauth2_client_id="console",
            oauth2_client_secret="plain-client-secret-not-a-canary",
            oauth2_authorization_url="https://login.example.com/authorize",
            oauth2_token_url=f"{server.url}/token",
            base_url=server.url,
            test_request_path="/me",
        )
        started = admin.post(f"/connectors/{connector.name}/connect/")
        assert started.status_code == 302
        query = dict(parse_qsl(urlsplit(started["Location"]).query))
        server.challenge = query["code_challenge"]
        verifier = admin.session[SESSION_KEY][query["state"]]["verifier"]

        answered = admin.get(
            "/connectors/oauth2/callback/", {"state": query["state"], "code": CODE}
        )
        assert answered.status_code == 302 and CODE not in answered["Location"]
        result = admin.get(answered["Location"])
        assert result.status_code == 200, result.content.decode()[:500]
        tested = admin.post(f"/connectors/{connector.name}/test/", HTTP_X_REQUESTED_WITH="fetch")
        assert b'data-cc-outcome="success"' in tested.content

        canaries = [CODE, verifier, *sorted(server.valid), "cnry-ac-refresh-1-7b8c9d"]
        canaries += [f"at-cnry-ac-access-{n}-0e1f" for n in range(1, server.issued + 1)]
        stored = Connector.objects.get(pk=connector.pk)
        assert stored.oauth2_authorization_code_refresh_token in canaries  # it is stored ...

        def assert_clean(data: str | bytes, where: str) -> None:
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
            for canary in canaries:
                assert canary not in text, f"{canary[:12]}… leaked into {where}"

        assert_clean(result.content, "the callback result page")
        assert_clean(tested.content, "the test result")
        for url in (
            f"/connectors/{connector.name}/",
            f"/connectors/{connector.name}/edit/",
            f"/connectors/{connector.name}/clone/",
            "/audit/",
            "/",
            "/dashboard/",
            f"/api/v1/connectors/{connector.name}/",
        ):
            assert_clean(admin.get(url, follow=True).content, url)
        for event in AuditEvent.objects.all():
            assert_clean(admin.get(f"/audit/{event.pk}/").content, f"audit record {event.pk}")
            assert_clean(json.dumps([event.summary, event.details]), f"audit row {event.pk}")
        out = io.StringIO()
        call_command("connectors_export", stdout=out)
        assert_clean(out.getvalue(), "export without secrets")
        assert_clean("\n".join(r.getMessage() for r in caplog.records), "the log")
        captured = capsys.readouterr()
        assert_clean(captured.out + captured.err, "stdout/stderr")
        assert_clean(database_bytes(), "the database")  # ... but only encrypted
    finally:
        server.stop()
