"""The connection test in the product: faults, masking, rate limit, form tests, pinning."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.db import connection
from django.test import Client

from audit.models import TestAttempt, TestRun
from connectors.auth import ConnectorAuth
from connectors.connection_test import TestRateLimited, connector_test
from connectors.models import Connector
from tests.conftest import OAUTH2_PASSWORD, form_data, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_allowed")]

DEADLINE = 2.0


@pytest.fixture(autouse=True)
def short_deadline(settings):
    settings.CONNECTORS_TOKEN_TIMEOUT = DEADLINE


@pytest.fixture
def fault_connector(make_connector, fault_server):
    def make(path: str, name: str | None = None, **overrides):
        values = {
            **OAUTH2_PASSWORD,
            "oauth2_client_id": fault_server.client_id,
            "oauth2_client_secret": fault_server.client_secret,
            "oauth2_password": "echo-me-password-77",
            "oauth2_token_url": fault_server.url(path),
            **overrides,
        }
        return make_connector(name or path.strip("/").replace("-", "_") or "root", **values)

    return make


FAULTS = [
    ("/timeout", "timeout"),
    ("/drip", "timeout"),
    ("/drip-body", "timeout"),
    ("/html500", "http_error"),
    ("/notjson", "invalid_response"),
    ("/notoken", "no_token"),
    ("/error200", "invalid_grant"),
    ("/redirect", "redirect_refused"),
    ("/huge", "invalid_response"),
    ("/echo", "invalid_grant"),
    ("/ok", "success"),
    ("/form", "success"),
    ("/jwt", "success"),
]


@pytest.mark.parametrize(("path", "outcome"), FAULTS)
def test_each_fault_has_its_outcome_within_the_deadline(fault_connector, path, outcome):
    connector = fault_connector(
        path,
        client_authentication="request_body",
        oauth2_client_authentication="request_body",
        oauth2_response_type="form" if path == "/form" else "json",
    )
    started = time.monotonic()
    run = connector_test(connector=connector).run
    elapsed = time.monotonic() - started
    assert run.outcome == outcome, run.message
    assert elapsed < DEADLINE + 1
    assert run.message
    if outcome != "success":
        assert run.hint


def test_connection_refused_and_blocked(make_connector, settings):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = make_connector(
        "refused", **{**OAUTH2_PASSWORD, "oauth2_token_url": f"http://127.0.0.1:{port}/token"}
    )
    assert connector_test(connector=refused).run.outcome == "connection_error"

    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = False
    run = connector_test(connector=refused).run
    assert run.outcome == "blocked"
    assert run.attempts.count() <= 1
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(kind="denial", action="blocked").count() == 1


def test_echoed_secrets_are_masked_everywhere(fault_connector):
    run = connector_test(connector=fault_connector("/echo")).run
    stored = [run.message, run.hint] + [
        " ".join(
            [a.message, a.response_excerpt, str(a.request_body), str(a.request_headers), a.curl]
        )
        for a in run.attempts.all()
    ]
    for text in stored:
        assert "echo-me-password-77" not in text
        assert "fault+sec/ret" not in text
    with connection.cursor() as cursor:
        cursor.execute("SELECT message, response_excerpt, request_body FROM connectors_testattempt")
        raw = repr(cursor.fetchall())
    assert "echo-me-password-77" not in raw


def test_auto_mode_finds_the_body_and_offers_to_pin(fault_connector, fault_server):
    connector = fault_connector("/body-only")
    outcome = connector_test(connector=connector)
    run = outcome.run
    assert run.ok
    assert [a.client_authentication for a in run.attempts.all()] == ["basic_client", "request_body"]
    assert outcome.pin_offer == "request_body"
    assert "OAuth 2.0 with Request Body" in run.hint


def test_auto_mode_falls_back_to_unencoded_basic(fault_connector):
    outcome = connector_test(connector=fault_connector("/basic-unencoded"))
    run = outcome.run
    # Issue 8: the unencoded form is a method of its own now, so it can be pinned.
    assert outcome.pin_offer == "basic_client_unencoded"
    assert run.ok
    # "Copy as curl" of the step that worked repeats that step: plain Basic, no encoding.
    curl = run.attempts.order_by("position").last().curl
    assert "BASIC=" not in curl and '"$CLIENT_SECRET"' in curl
    assert [a.client_authentication for a in run.attempts.all()][-1] == "basic_client_unencoded"
    assert run.client_authentication_used == "basic_client_unencoded"


def test_unexpected_failure_is_recorded_as_internal_error(fault_connector):
    connector = fault_connector("/ok")
    with mock.patch(
        "connectors.oauth_http.token_request_perform",
        side_effect=RuntimeError("boom user-password-1"),
    ):
        run = connector_test(connector=connector).run
    assert run.outcome == "internal_error" and not run.ok
    assert "RuntimeError" in run.message
    assert "echo-me-password-77" not in run.message


def test_rate_limit_per_user(fault_connector, settings):
    settings.CONNECTORS_TEST_RATE_LIMIT = "3/60"
    connector = fault_connector("/ok")
    user = make_user("operator", "busy_operator")
    for _ in range(3):
        connector_test(connector=connector, user=user)
    with pytest.raises(TestRateLimited, match="3 connection tests every 60 seconds"):
        connector_test(connector=connector, user=user)
    other = make_user("operator", "other_operator")
    assert connector_test(connector=connector, user=other).run.ok
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(kind="denial", action="rate_limited").count() == 1


def test_views_permissions_and_rate_limit_message(fault_connector, settings):
    settings.CONNECTORS_TEST_RATE_LIMIT = "1/60"
    fault_connector("/ok", name="okay")
    viewer, operator = Client(), Client()
    viewer.force_login(make_user("viewer"))
    operator.force_login(make_user("operator"))
    assert viewer.post("/connectors/okay/test/").status_code == 403
    response = operator.post("/connectors/okay/test/", HTTP_X_REQUESTED_WITH="fetch")
    assert response.status_code == 200
    assert 'data-cc-outcome="success"' in response.content.decode()
    response = operator.post("/connectors/okay/test/", HTTP_X_REQUESTED_WITH="fetch")
    assert response.status_code == 429
    assert "Try again in" in response.content.decode()


def test_form_test_uses_unsaved_values_and_stored_secrets_and_saves_nothing(
    fault_connector, fault_server, admin_client
):
    connector = fault_connector(
        "/notoken", name="formtest", oauth2_client_authentication="request_body"
    )
    fault_server.clear_requests()
    data = form_data(
        {
            **OAUTH2_PASSWORD,
            "oauth2_client_id": fault_server.client_id,
            "oauth2_client_secret": "",
            "oauth2_password": "",
            "oauth2_token_url": fault_server.url("/body-only"),
            "oauth2_client_authentication": "request_body",
            "display_name": "Not saved",
            "version": 1,
        }
    )
    response = admin_client.post(
        "/connectors/formtest/edit/test/", data, HTTP_X_REQUESTED_WITH="fetch"
    )
    assert response.status_code == 200
    assert 'data-cc-outcome="success"' in response.content.decode()
    sent = fault_server.requests[-1].form
    assert sent["client_secret"] == fault_server.client_secret  # the stored secret
    assert sent["password"] == "echo-me-password-77"
    connector.refresh_from_db()
    assert connector.display_name == "" and connector.version == 1
    assert connector.oauth2_token_url.endswith("/notoken")
    assert TestRun.objects.get().source == "form"


def test_form_test_of_an_invalid_form_lists_the_errors(admin_client, db):
    response = admin_client.post(
        "/connectors/new/test/",
        form_data({"name": "x_new", "auth_config": "oauth2", "oauth2_grant_type": "password"}),
        HTTP_X_REQUESTED_WITH="fetch",
    )
    assert response.status_code == 400
    assert "Oauth2 Token Url" in response.content.decode()
    assert not TestRun.objects.exists()
    assert not Connector.objects.exists()


def test_pin_sets_the_method_that_worked(fault_connector, admin_client):
    fault_connector("/body-only", name="pinme")
    response = admin_client.post("/connectors/pinme/test/", HTTP_X_REQUESTED_WITH="fetch")
    assert 'data-cc-fix="oauth2_client_authentication"' in response.content.decode()
    admin_client.post("/connectors/pinme/pin/", {"method": "request_body", "version": 1})
    assert Connector.objects.get(name="pinme").oauth2_client_authentication == "request_body"


def test_list_page_shows_the_last_result(fault_connector, admin_client):
    connector = fault_connector("/ok", name="listed")
    connector_test(connector=connector)
    connector.oauth2_token_url = connector.oauth2_token_url.replace("/ok", "/notoken")
    connector_test(connector=connector)
    page = admin_client.get("/connectors/").content.decode()
    assert 'data-cc-outcome="no_token"' in page


def test_attempt_records_hold_what_the_step_view_needs(fault_connector):
    run = connector_test(
        connector=fault_connector("/ok", oauth2_client_authentication="basic_client")
    ).run
    attempt: TestAttempt = run.attempts.get()
    assert attempt.method == "POST" and attempt.url.endswith("/ok")
    assert attempt.status_code == 200 and attempt.duration_ms >= 0
    assert dict(attempt.request_headers)["Authorization"] == "Basic ********"
    assert ("password", "********") in [tuple(p) for p in attempt.request_body]
    assert "$CLIENT_SECRET" in attempt.curl and "$PASSWORD" in attempt.curl
    assert "ok-token" not in attempt.response_excerpt


def test_connector_auth_caches_the_token(fault_connector, fault_server):
    connector = fault_connector("/ok", name="cached")
    auth = ConnectorAuth(connector)
    fault_server.clear_requests()
    first = auth.access_token()
    second = auth.access_token()
    assert first == second == "ok-token"
    assert len(fault_server.requests) == 1
    from django.core.cache import cache

    assert "ok-token" not in str(cache.get(auth.cache_key))  # encrypted in the cache


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_connection_tests_are_all_recorded_on_one_chain(fault_connector, settings):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from audit.chain import chain_verify
    from audit.models import AuditEvent

    if connection.vendor != "postgresql":
        pytest.skip("runs on PostgreSQL, where writers really run concurrently (CI runs it)")
    settings.CONNECTORS_TEST_RATE_LIMIT = "100/60"
    connector = fault_connector(
        "/ok", name="concurrent", oauth2_client_authentication="request_body"
    )
    users = [make_user("operator", f"op{index}") for index in range(5)]

    def run(index: int) -> int:
        try:
            return connector_test(connector=connector, user=users[index % 5]).run.pk
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        run_ids = list(pool.map(run, range(50)))
    assert len(set(run_ids)) == 50
    assert TestRun.objects.filter(ok=True).count() == 50
    assert AuditEvent.objects.filter(kind="test_run").count() == 50
    assert len(set(AuditEvent.objects.values_list("prev_hash", flat=True))) == (
        AuditEvent.objects.count()
    )
    assert list(chain_verify())[-1].ok


@pytest.mark.parametrize(
    ("auth", "values", "secret"),
    [
        ("bearer", {"bearer_token": "bearer-canary-1234"}, "bearer-canary-1234"),
        (
            "api_key",
            {
                "api_key_location": "header",
                "api_key_header_auth_key": "X-Api-Key",
                "api_key_header_auth_value_pattern": "%s",
                "api_key": "key-canary-5678",
            },
            "key-canary-5678",
        ),
        (
            "api_key",
            {
                "api_key_location": "param",
                "api_key_param_name": "api_key",
                "api_key": "param-canary-9012",
            },
            "param-canary-9012",
        ),
    ],
)
def test_an_api_that_echoes_the_credential_never_gets_it_stored(
    make_connector, fault_server, auth, values, secret
):
    connector = make_connector(
        f"echo_{auth}", base_url=fault_server.url("/echo-api"), auth_config=auth, **values
    )
    run = connector_test(connector=connector).run
    assert run.ok
    attempt = run.attempts.get()
    stored = attempt.response_excerpt + attempt.url + str(attempt.request_headers)
    assert secret not in stored
    assert "********" in attempt.response_excerpt


def test_an_api_that_echoes_the_access_token_never_gets_it_stored(fault_connector, fault_server):
    fault_server.token_value = "access-token-canary-3456"
    try:
        connector = fault_connector(
            "/ok",
            name="echo_token",
            base_url=fault_server.url("/echo-api"),
            oauth2_client_authentication="request_body",
        )
        run = connector_test(connector=connector).run
    finally:
        fault_server.token_value = "ok-token"
    assert run.ok
    for attempt in run.attempts.all():
        assert "access-token-canary-3456" not in attempt.response_excerpt


def test_test_request_path_cannot_name_another_host(make_connector):
    from connectors.connector_requests import api_url_for

    connector = make_connector("pathy", auth_config="none", test_request_path="/v1/me")
    connector.base_url = "https://api.example.com/base/"
    assert api_url_for(connector) == "https://api.example.com/base/v1/me"
    from connectors.forms import connector_forms
    from tests.conftest import form_data as data_for

    for path in ("/https://evil.example.net/x", "//evil.example.net/x", "/a\\b", "v1/me"):
        bundle = connector_forms(
            data=data_for(
                {
                    "name": "p2",
                    "auth_config": "none",
                    "base_url": "https://api.example.com",
                    "test_request_path": path,
                }
            )
        )
        assert not bundle.is_valid(), path


def test_operators_cannot_test_unsaved_values(fault_connector):
    fault_connector("/ok", name="guarded")
    operator = Client()
    operator.force_login(make_user("operator"))
    data = form_data(
        {
            **OAUTH2_PASSWORD,
            "oauth2_token_url": "http://127.0.0.1:9/x",
            "oauth2_client_secret": "",
            "oauth2_password": "",
            "version": 1,
        }
    )
    assert operator.post("/connectors/guarded/edit/test/", data).status_code == 403
    assert operator.post("/connectors/new/test/", data).status_code == 403
    assert not TestRun.objects.exists()


def test_pin_refuses_what_the_form_refuses(make_connector, admin_client):
    make_connector("bearer_pin", auth_config="bearer", bearer_token="t")
    make_connector(
        "cc_pin",
        auth_config="oauth2",
        oauth2_grant_type="client_credentials",
        oauth2_client_id="c",
        oauth2_client_secret="s",
        oauth2_token_url="https://login.example.com/token",
    )
    for name, method in (("bearer_pin", "basic_client"), ("cc_pin", "basic_user")):
        response = admin_client.post(
            f"/connectors/{name}/pin/", {"method": method, "version": 1}, follow=True
        )
        assert "Not pinned" in response.content.decode()
    assert Connector.objects.get(name="cc_pin").oauth2_client_authentication == ""
    assert Connector.objects.get(name="bearer_pin").oauth2_client_authentication == ""


def test_connector_auth_refuses_a_redirect_to_another_host(make_connector, fault_server):
    import requests

    from connectors.auth import ConnectorAuthError

    connector = make_connector(
        "redirected",
        auth_config="api_key",
        api_key_location="header",
        api_key_header_auth_key="X-Api-Key",
        api_key_header_auth_value_pattern="%s",
        api_key="redirect-key-7777",
        base_url=fault_server.url("/"),
    )
    fault_server.clear_requests()
    with pytest.raises(ConnectorAuthError, match="another server"):
        requests.get(fault_server.url("/api-redirect"), auth=ConnectorAuth(connector), timeout=5)
    assert [r.path for r in fault_server.requests] == ["/api-redirect"]


def test_tokens_and_rate_limits_in_redis_are_never_plaintext(fault_connector, settings):
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379 (CI and the dev machines have one)")
    client.flushdb()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
        }
    }
    try:
        connector = fault_connector("/ok", name="redis_cached")
        auth = ConnectorAuth(connector)
        assert auth.access_token() == "ok-token"
        connector_test(connector=connector, user=make_user("operator", "redis_op"))
        stored = b"".join(client.get(key) or b"" for key in client.keys("*"))
        assert client.keys("*"), "nothing reached Redis"
        assert b"ok-token" not in stored
    finally:
        client.flushdb()


def test_form_test_lists_errors_about_the_rows_as_a_whole(admin_client, db):
    rows = {"headers": [{"key": f"X-{index}", "value": "v"} for index in range(21)]}
    response = admin_client.post(
        "/connectors/new/test/",
        form_data({**OAUTH2_PASSWORD, "name": "too_many"}, rows),
        HTTP_X_REQUESTED_WITH="fetch",
    )
    assert response.status_code == 400
    assert "at most 20" in response.content.decode()


def test_pin_refuses_a_method_found_for_an_older_version(fault_connector, admin_client):
    connector = fault_connector("/body-only", name="moved_on")
    Connector.objects.filter(pk=connector.pk).update(version=2)  # someone saved since the test
    response = admin_client.post(
        "/connectors/moved_on/pin/", {"method": "request_body", "version": 1}, follow=True
    )
    assert "changed meanwhile" in response.content.decode()
    assert Connector.objects.get(pk=connector.pk).oauth2_client_authentication == ""
