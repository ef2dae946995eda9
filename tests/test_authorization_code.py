"""Authorization Code Grant: PKCE, the authorization request, the callback's refusals, the code
exchange, and the refresh token's atomic rotation (two workers at once, SQLite and PostgreSQL).

The token server here is our own, on loopback: it rotates refresh tokens the strict way (a
refresh token works once) and answers slowly, so two refreshes overlap.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.db import connections

from audit.models import AuditEvent
from connectors import authorization_code as ac
from connectors.auth import ConnectorAuth, ConnectorAuthError
from connectors.connection_test import connector_test
from connectors.explain import ConsoleOutcome
from connectors.health import connector_health_record  # noqa: F401 - health moves with runs
from connectors.models import Connector, ConnectorHealth
from connectors.oauth_http import TokenRequest, token_request_perform
from connectors.oauth_http.policy import OutboundPolicy
from tests.conftest import make_user

# RFC 7636 Appendix B.
RFC7636_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC7636_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce_challenge_matches_rfc7636_appendix_b() -> None:
    assert ac.pkce_challenge(RFC7636_VERIFIER) == RFC7636_CHALLENGE


def test_pkce_verifier_is_long_random_and_unreserved() -> None:
    verifiers = {ac.pkce_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    for verifier in verifiers:
        assert 43 <= len(verifier) <= 128
        assert set(verifier) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
        )


# --------------------------------------------------------------------------------------------
# A strict rotating token server on loopback


class RotatingTokenServer:
    """POST /token: authorization_code (code "good-code", PKCE checked) and refresh_token.

    Each refresh token works once; a refresh answers after `delay` seconds, so two overlap.
    """

    def __init__(self, delay: float = 0.3) -> None:
        self.delay = delay
        self.valid: set[str] = set()
        self.issued = 0
        self.challenge = ""
        self.requests: list[dict[str, str]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                status, body = owner.answer(form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                data = b'{"ok": true}'
                status = (
                    200 if self.headers.get("Authorization", "").startswith("Bearer at-") else 401
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def new_refresh_token(self) -> str:
        with self.lock:
            self.issued += 1
            token = f"rt-{self.issued}-secret-refresh-value"
            self.valid.add(token)
            return token

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.requests.append(form)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            if form.get("code") != "good-code":
                return 400, {"error": "invalid_grant"}
            if ac.pkce_challenge(form.get("code_verifier", "")) != self.challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE failed"}
            return 200, self.tokens()
        if grant == "refresh_token":
            with self.lock:
                known = form.get("refresh_token", "") in self.valid
                self.valid.discard(form.get("refresh_token", ""))
            time.sleep(self.delay)
            if not known:
                return 400, {"error": "invalid_grant"}
            return 200, self.tokens()
        return 400, {"error": "unsupported_grant_type"}

    def tokens(self) -> dict[str, Any]:
        return {
            "access_token": f"at-{self.issued}-access",
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": self.new_refresh_token(),
        }

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def rotating() -> Iterator[RotatingTokenServer]:
    server = RotatingTokenServer()
    yield server
    server.stop()


def _connector(server: RotatingTokenServer, make_connector: Any, **values: Any) -> Connector:
    return make_connector(
        "authcode",
        auth_config="oauth2",
        oauth2_grant_type="authorization_code",
        oauth2_client_id="console",
        oauth2_client_secret="client-secret-value",
        oauth2_authorization_url="https://login.example.com/authorize?tenant=t1",
        oauth2_token_url=f"{server.url}/token",
        oauth2_authorization_code_scope="read offline_access",
        base_url=server.url,
        test_request_path="/me",
        **values,
    )


def _connected(server: RotatingTokenServer, connector: Connector) -> str:
    token = server.new_refresh_token()
    ac.connection_store(connector=connector, refresh_token=token, user=None)
    return token


def _perform(request: TokenRequest) -> Any:
    return token_request_perform(request, policy=OutboundPolicy(allow_loopback=True))


# --------------------------------------------------------------------------------------------
# The authorization request and the callback


class FakeSession(dict):
    """A session is a mapping to the services."""


@pytest.mark.django_db
def test_authorization_url_carries_state_pkce_and_extra_params(rotating, make_connector):
    connector = _connector(
        rotating,
        make_connector,
        rows={"authorize": [{"key": "access_type", "value": "offline"}]},
    )
    url = ac.authorization_url(
        connector, redirect_uri="http://console/cb/", state="s1", challenge="c1"
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "login.example.com", "/authorize")
    assert parse_qsl(parts.query) == [
        ("tenant", "t1"),
        ("access_type", "offline"),
        ("response_type", "code"),
        ("client_id", "console"),
        ("redirect_uri", "http://console/cb/"),
        ("scope", "read offline_access"),
        ("state", "s1"),
        ("code_challenge", "c1"),
        ("code_challenge_method", "S256"),
    ]


def test_a_row_cannot_set_what_the_console_sets(make_connector, rotating, db):
    from connectors.forms import connector_forms
    from tests.conftest import form_data

    values = {
        "name": "authcode",
        "base_url": rotating.url,
        "enabled": True,
        "auth_config": "oauth2",
        "oauth2_grant_type": "authorization_code",
        "oauth2_client_id": "console",
        "oauth2_authorization_url": "https://login.example.com/authorize",
        "oauth2_token_url": f"{rotating.url}/token",
    }
    bundle = connector_forms(
        data=form_data(values, {"authorize": [{"key": "state", "value": "mine"}]})
    )
    assert not bundle.is_valid()
    assert "The authorization request sets state itself." in str(bundle.authorize.errors)
    missing = connector_forms(data=form_data({**values, "oauth2_authorization_url": ""}))
    assert not missing.is_valid()
    assert "oauth2_authorization_url" in missing.form.errors


def _start(connector: Connector, user: Any, session: FakeSession, server: RotatingTokenServer):
    url = ac.connector_connect_start(
        connector=connector, user=user, session=session, redirect_uri="http://console/cb/"
    )
    query = dict(parse_qsl(urlsplit(url).query))
    server.challenge = query["code_challenge"]
    return query["state"]


@pytest.mark.django_db
def test_callback_exchanges_the_code_once_and_stores_the_refresh_token(
    rotating, make_connector, settings
):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    admin = make_user("admin", "connecting_admin")
    connector = _connector(rotating, make_connector)
    session = FakeSession()
    state = _start(connector, admin, session, rotating)
    params = {"state": state, "code": "good-code"}
    outcome = ac.connector_connect_callback(session=session, user=admin, params=params)
    assert outcome.ok, outcome
    connector.refresh_from_db()
    assert connector.oauth2_authorization_code_refresh_token == "rt-1-secret-refresh-value"
    assert connector.oauth2_connected_by == admin and connector.oauth2_connected_at
    exchange = rotating.requests[-1]
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["redirect_uri"] == "http://console/cb/"
    assert ac.pkce_challenge(exchange["code_verifier"]) == rotating.challenge
    # Replayed: the state was taken out of the session by the first answer.
    again = ac.connector_connect_callback(session=session, user=admin, params=params)
    assert (again.ok, again.reason) == (False, "unknown_state")
    assert len(rotating.requests) == 1  # nothing exchanged the second time
    records = AuditEvent.objects.order_by("id")
    assert list(records.values_list("action", flat=True))[-4:] == [
        "oauth2_connect",
        "oauth2_code_exchange",
        "oauth2_connected",
        "oauth2_callback_refused",
    ]
    text = json.dumps(list(records.values("summary", "details")))
    for secret in ("good-code", exchange["code_verifier"], "rt-1-secret-refresh-value"):
        assert secret not in text


@pytest.mark.django_db
def test_callback_refuses_expired_foreign_changed_and_denied(
    rotating, make_connector, settings, monkeypatch
):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    admin, other = make_user("admin", "a1"), make_user("admin", "a2")
    connector = _connector(rotating, make_connector)
    session = FakeSession()

    def refused(user: Any, **params: str) -> str:
        outcome = ac.connector_connect_callback(session=session, user=user, params=params)
        assert not outcome.ok
        return outcome.reason

    state = _start(connector, admin, session, rotating)
    assert refused(other, state=state, code="good-code") == "foreign_user"

    state = _start(connector, admin, session, rotating)
    real_time = time.time
    monkeypatch.setattr(ac.time, "time", lambda: real_time() + ac.STATE_TTL_SECONDS + 1)
    assert refused(admin, state=state, code="good-code") == "expired"
    monkeypatch.setattr(ac.time, "time", real_time)

    state = _start(connector, admin, session, rotating)
    Connector.objects.filter(pk=connector.pk).update(version=connector.version + 1)
    assert refused(admin, state=state, code="good-code") == "connector_changed"
    connector.refresh_from_db()

    state = _start(connector, admin, session, rotating)
    assert refused(admin, state=state, error="access_denied") == "access_denied"
    state = _start(connector, admin, session, rotating)
    assert refused(admin, state=state, error="server_error") == "error"
    assert refused(admin, state="", code="good-code") == "unknown_state"

    assert rotating.requests == []  # no refusal exchanged anything
    connector.refresh_from_db()
    assert connector.oauth2_authorization_code_refresh_token == ""
    assert AuditEvent.objects.filter(action="oauth2_callback_refused").count() == 6


# --------------------------------------------------------------------------------------------
# Refreshing: tests, ConnectorAuth, rotation, reconnect needed


@pytest.mark.django_db
def test_tests_and_connector_auth_use_and_rotate_the_refresh_token(
    rotating, make_connector, settings
):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    rotating.delay = 0
    connector = _connector(rotating, make_connector)
    not_yet = connector_test(connector=connector)
    assert not_yet.run.outcome == ConsoleOutcome.NOT_CONNECTED
    first = _connected(rotating, connector)

    outcome = connector_test(connector=Connector.objects.get(pk=connector.pk))
    assert outcome.run.ok, outcome.run.message
    sent = rotating.requests[-1]
    assert sent["grant_type"] == "refresh_token" and sent["refresh_token"] == first
    assert "scope" not in sent  # a refresh keeps the granted scope
    stored = Connector.objects.get(pk=connector.pk)
    assert stored.oauth2_authorization_code_refresh_token not in ("", first)

    second = stored.oauth2_authorization_code_refresh_token
    auth = ConnectorAuth(stored)
    assert auth.access_token().startswith("at-")
    assert rotating.requests[-1]["refresh_token"] == second
    assert AuditEvent.objects.filter(action="oauth2_refresh").count() == 2


@pytest.mark.django_db
def test_invalid_grant_means_reconnect_needed_everywhere(rotating, make_connector, settings):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    rotating.delay = 0
    connector = _connector(rotating, make_connector)
    ac.connection_store(connector=connector, refresh_token="revoked-at-the-server", user=None)
    outcome = connector_test(connector=Connector.objects.get(pk=connector.pk))
    assert outcome.run.outcome == ConsoleOutcome.RECONNECT_NEEDED
    assert outcome.run.hint.startswith("Reconnect needed")
    health = ConnectorHealth.objects.get(pk=connector.pk)
    assert health.last_outcome == "reconnect_needed" and health.last_ok is False
    with pytest.raises(ConnectorAuthError) as raised:
        ConnectorAuth(Connector.objects.get(pk=connector.pk)).access_token()
    assert raised.value.outcome == "reconnect_needed"


def _two_workers_refresh(connector_id: int) -> list[Any]:
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def worker(index: int) -> None:
        try:
            barrier.wait()
            connector = Connector.objects.get(pk=connector_id)
            results[index] = ac.connection_refresh(connector=connector, perform=_perform)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_keep_the_newest_refresh_token(rotating, make_connector):
    """Two threads refresh at once; the lease and the compare-and-swap keep the newest token."""
    from django.db import connection

    if connection.vendor != "postgresql":
        # The suite's SQLite database is in memory with a shared cache, where a second writer
        # fails at once ("table is locked") instead of waiting as a file database does.
        pytest.skip("runs on PostgreSQL, where writers really run concurrently (CI runs it)")
    connector = _connector(rotating, make_connector)
    _connected(rotating, connector)
    results = _two_workers_refresh(connector.pk)
    assert all(r is not None and r.result.ok for r in results), [
        (r.outcome, r.result.message) if r else None for r in results
    ]
    stored = Connector.objects.get(pk=connector.pk)
    # The stored token is the one the server issued last, and it still works.
    assert stored.oauth2_authorization_code_refresh_token in rotating.valid
    assert len(rotating.valid) == 1
    assert stored.oauth2_refresh_lease_until is None
    after = ac.connection_refresh(connector=stored, perform=_perform)
    assert after is not None and after.result.ok


@pytest.mark.django_db
def test_a_rotation_never_overwrites_a_newer_token(rotating, make_connector):
    connector = _connector(rotating, make_connector)
    first = _connected(rotating, connector)
    old_hash = ac.token_hash(first)
    assert ac._swap(connector.pk, old_hash=old_hash, new_token="newer")
    # A second worker that also used `first` may not replace "newer" with its own answer.
    assert not ac._swap(connector.pk, old_hash=old_hash, new_token="older-answer")
    stored = Connector.objects.get(pk=connector.pk)
    assert stored.oauth2_authorization_code_refresh_token == "newer"


@pytest.mark.django_db
def test_an_edit_keeps_a_rotated_token_and_a_moved_token_url_drops_it(rotating, make_connector):
    from connectors.services import connector_update

    connector = _connector(rotating, make_connector)
    _connected(rotating, connector)
    editing = Connector.objects.get(pk=connector.pk)  # loaded before the rotation
    ac._swap(connector.pk, old_hash=editing.oauth2_connection_token_hash, new_token="rotated")
    editing.description = "edited"
    connector_update(connector=editing, rows=[], user=None, expected_version=editing.version)
    stored = Connector.objects.get(pk=connector.pk)
    assert stored.description == "edited"
    assert stored.oauth2_authorization_code_refresh_token == "rotated"

    stored.oauth2_token_url = "https://elsewhere.example.com/token"
    connector_update(connector=stored, rows=[], user=None, expected_version=stored.version)
    moved = Connector.objects.get(pk=connector.pk)
    assert moved.oauth2_authorization_code_refresh_token == ""
    assert moved.oauth2_connected_at is None
    change = AuditEvent.objects.filter(action="edit").latest("id")
    assert {"field": "oauth2_authorization_code_refresh_token"}.items() <= next(
        c for c in change.details["changes"] if c["field"].endswith("refresh_token")
    ).items()


@pytest.mark.django_db
def test_clone_and_export_leave_the_connection_behind(rotating, make_connector):
    from connectors.services import connector_clone_initial
    from connectors.transfer import connector_export_dict

    connector = _connector(rotating, make_connector)
    token = _connected(rotating, connector)
    connector.refresh_from_db()
    initial, _rows = connector_clone_initial(source=connector)
    assert "oauth2_authorization_code_refresh_token" not in initial
    assert initial["oauth2_authorization_url"] == connector.oauth2_authorization_url
    for include_secrets in (False, True):
        exported = json.dumps(connector_export_dict(connector, include_secrets=include_secrets))
        assert token not in exported
        assert '"authorization_url"' in exported


@pytest.mark.django_db
def test_fleet_health_says_reconnect_needed(rotating, make_connector, settings, admin_client):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True
    rotating.delay = 0
    connector = _connector(rotating, make_connector)
    ac.connection_store(connector=connector, refresh_token="revoked-at-the-server", user=None)
    connector_test(connector=Connector.objects.get(pk=connector.pk))
    page = admin_client.get("/dashboard/").content.decode()
    assert 'data-cc-count="reconnect"' in page and "Reconnect needed" in page
    assert 'data-cc-outcome="reconnect_needed"' in page  # the failing-longest row, labelled
    detail = admin_client.get(f"/connectors/{connector.name}/").content.decode()
    assert 'data-cc-connection="reconnect"' in detail


@pytest.mark.django_db
def test_only_admins_connect_and_receive_callbacks(rotating, make_connector):
    from django.test import Client

    connector = _connector(rotating, make_connector)
    operator = Client()
    operator.force_login(make_user("operator", "op_connect"))
    assert operator.post(f"/connectors/{connector.name}/connect/").status_code == 403
    assert operator.get("/connectors/oauth2/callback/", {"state": "x"}).status_code == 403
    detail = operator.get(f"/connectors/{connector.name}/").content.decode()
    assert "cc-redirect-uri" in detail and ">Connect</button>" not in detail
    assert AuditEvent.objects.filter(action="permission_denied").count() == 2

    admin = Client()
    admin.force_login(make_user("admin", "admin_connect"))
    page = admin.get(f"/connectors/{connector.name}/")
    # The Connect form may lead to the authorization server, and only there.
    assert "form-action 'self' https://login.example.com:443" in page["Content-Security-Policy"]
    started = admin.post(f"/connectors/{connector.name}/connect/")
    assert started.status_code == 302
    assert started["Location"].startswith("https://login.example.com/authorize?tenant=t1&")
    refused = admin.get("/connectors/oauth2/callback/", {"state": "forged", "code": "x"})
    assert refused.status_code == 302
    shown = admin.get(refused["Location"])
    assert shown.status_code == 400
    assert 'data-cc-connect-result="unknown_state"' in shown.content.decode()
