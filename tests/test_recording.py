"""Every exchange is recorded: whatever the remote server sends, whatever the cache does.

Reproduced from outside: a token server on loopback (tests/peers/fault_server.py), the real HTTP
path through the view, the real database. The PostgreSQL-marked twins commit for real (no test
transaction around them), as production does.
"""

from __future__ import annotations

import logging
import math
from unittest import mock

import pytest
from django.db import DataError, connection
from django.test import Client, override_settings

from audit.chain import chain_verify
from audit.models import AuditEvent, TestAttempt, TestRun
from connectors.auth import ConnectorAuth
from connectors.connection_test import TestRateLimited, connector_test
from tests.conftest import OAUTH2_PASSWORD, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_allowed")]

HOSTILE_PATHS = ["/nul-description", "/surrogate", "/nul-body", "/gzip-zeros", "/nul-jwt"]
HOSTILE_OUTCOMES = {
    "/nul-description": "invalid_grant",
    "/surrogate": "invalid_grant",
    "/nul-body": "http_error",
    "/gzip-zeros": "invalid_response",
    "/nul-jwt": "success",
}
DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        # Port 1 on loopback: nothing listens, the connection is refused at once.
        "LOCATION": "redis://127.0.0.1:1/0",
    }
}


@pytest.fixture(autouse=True)
def short_deadline(settings):
    settings.CONNECTORS_TOKEN_TIMEOUT = 3.0


@pytest.fixture(autouse=True)
def clear_local_rate_counts():
    """The per-process fallback counter outlives a test, like the cache the conftest clears."""
    from connectors.rate_limit import _LOCAL_RATE_COUNTS

    _LOCAL_RATE_COUNTS.clear()


@pytest.fixture
def hostile(make_connector, fault_server):
    def make(path: str, name: str | None = None):
        values = {
            **OAUTH2_PASSWORD,
            "oauth2_client_id": fault_server.client_id,
            "oauth2_client_secret": fault_server.client_secret,
            "oauth2_token_url": fault_server.url(path),
            "oauth2_client_authentication": "request_body",
        }
        return make_connector(name or path.strip("/").replace("-", "_"), **values)

    return make


def _stored_text() -> str:
    """Everything the three tables hold, as the database gives it back."""
    with connection.cursor() as cursor:
        rows = []
        for table in ("connectors_testrun", "connectors_testattempt", "audit_auditevent"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            rows += cursor.fetchall()
    return repr(rows)


def _assert_recorded(path: str, response) -> None:
    assert response.status_code == 200, response.content[:500]
    run = TestRun.objects.get()
    assert run.outcome == HOSTILE_OUTCOMES[path], run.message
    assert run.attempts.count() == 1
    event = AuditEvent.objects.get(kind="test_run")
    assert event.test_run_id == run.pk
    assert "\x00" not in _stored_text() and "\\x00" not in _stored_text()
    assert list(chain_verify())[-1].ok


def _post_test(name: str) -> object:
    client = Client()
    client.force_login(make_user("operator", f"op_{name}"))
    return client.post(f"/connectors/{name}/test/", HTTP_X_REQUESTED_WITH="fetch")


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_whatever_the_server_sends_the_run_and_its_audit_record_are_stored(hostile, path):
    connector = hostile(path)
    _assert_recorded(path, _post_test(connector.name))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_postgres_stores_whatever_the_server_sends(hostile, path):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL refuses NUL in text and \\u0000 in jsonb; SQLite does not")
    connector = hostile(path)
    _assert_recorded(path, _post_test(connector.name))


def test_the_nul_jwt_facts_are_stored_as_written_and_hash_as_read_back(hostile):
    outcome = connector_test(connector=hostile("/nul-jwt"))
    token = outcome.run.token
    assert token is not None
    stored = TestRun.objects.get(pk=outcome.run.pk).token
    assert stored == token  # what the panel shows is exactly what the database holds
    assert "\x00" not in repr(stored)
    assert list(chain_verify())[-1].ok


# --- sanitising, tested directly (SQLite accepts NUL, so the end-to-end test alone is weak) -


def test_storable_text_removes_nul_and_lone_surrogates_and_nothing_else():
    from audit.sanitize import storable_text

    assert storable_text("a\x00b") == "a\ufffdb"  # replaced, not dropped: see the docstring
    assert storable_text("bad \ud800 grant") == "bad \ufffd grant"
    assert storable_text("x\udfffy\ud83d") == "x\ufffdy\ufffd"
    kept = "plain é 😀 \t\r\n ok"
    assert storable_text(kept) is kept  # the common case costs no copy
    assert storable_text("abcdef", max_length=4) == "abcd"
    "x\ufffd".encode()  # noqa: B018 - encodable


def test_storable_json_cleans_keys_and_values_at_any_depth():
    from audit.sanitize import storable_json

    value = {
        "a\x00": ["b\x00", {"c": "d\ud800"}],
        "pair": "\ud83d\ude00",
        "n": math.nan,
        "inf": -math.inf,
        "zero": -0.0,
        "big": 1e300,
        "huge": 1e16,
        "small": 1.5e-07,
        "tuple": (1, 2),
        "int_keys": {1: "one", None: 0, False: 1, 1.5: 2},
        "ok": [True, None, 3, 0.1],
    }
    clean = storable_json(value)
    assert clean == {
        "a\ufffd": ["b\ufffd", {"c": "d\ufffd"}],
        "pair": "😀",
        "n": "NaN",
        "inf": "-Infinity",
        "zero": 0.0,
        "big": 10**300,
        "huge": 10**16,
        "small": 1.5e-07,
        "tuple": [1, 2],
        "int_keys": {"1": "one", "null": 0, "false": 1, "1.5": 2},
        "ok": [True, None, 3, 0.1],
    }
    import json

    json.dumps(clean, allow_nan=False).encode("utf-8")  # strict JSON, encodable


# --- a recording that still fails leaves a minimal record ----------------------------------


def test_a_recording_that_fails_leaves_a_minimal_record_and_a_clear_message(hostile, caplog):
    caplog.set_level(logging.ERROR)
    connector = hostile("/nul-description", name="stubborn")
    from audit import writer

    real_insert = writer.insert_run_and_lock_head

    def refuse_attempts(run, attempts):
        if attempts:  # the database refuses the details, not the bare run
            raise DataError("refused")
        return real_insert(run, attempts)

    with mock.patch("audit.writer.insert_run_and_lock_head", side_effect=refuse_attempts):
        response = _post_test(connector.name)
    assert response.status_code == 200
    run = TestRun.objects.get()
    assert run.outcome == "invalid_grant" and not run.ok
    assert not TestAttempt.objects.exists()
    assert "could not be stored" in run.message
    assert "could not be stored" in response.content.decode()
    assert AuditEvent.objects.get(kind="test_run").test_run_id == run.pk
    assert "DataError" in caplog.text
    assert list(chain_verify())[-1].ok


# --- Redis down -----------------------------------------------------------------------------


def test_with_redis_down_a_test_still_runs_is_recorded_and_warns(hostile, caplog, settings):
    settings.CONNECTORS_TEST_RATE_LIMIT = "2/60"
    connector = hostile("/ok", name="no_redis")
    caplog.set_level(logging.WARNING)
    with override_settings(CACHES=DEAD_REDIS):
        response = _post_test(connector.name)
    assert response.status_code == 200, response.content[:300]
    assert 'data-cc-outcome="success"' in response.content.decode()
    run = TestRun.objects.get()
    assert run.ok and AuditEvent.objects.filter(test_run=run).exists()
    assert "cache" in caplog.text.lower() and "rate limit" in caplog.text.lower()
    assert "cache is unreachable" in run.hint
    assert "shared cache is unreachable" in response.content.decode()  # on the result panel


def test_with_redis_down_the_rate_limit_still_holds_in_this_process(hostile, settings):
    settings.CONNECTORS_TEST_RATE_LIMIT = "2/60"
    connector = hostile("/ok", name="no_redis_limit")
    user = make_user("operator", "limited_without_redis")
    with override_settings(CACHES=DEAD_REDIS):
        connector_test(connector=connector, user=user)
        connector_test(connector=connector, user=user)
        with pytest.raises(TestRateLimited):
            connector_test(connector=connector, user=user)
    assert TestRun.objects.count() == 2
    assert AuditEvent.objects.filter(kind="denial", action="rate_limited").count() == 1


def test_with_redis_down_connector_auth_fetches_tokens_without_the_cache(
    hostile, fault_server, caplog
):
    connector = hostile("/ok", name="auth_no_redis")
    caplog.set_level(logging.WARNING)
    fault_server.clear_requests()
    with override_settings(CACHES=DEAD_REDIS):
        auth = ConnectorAuth(connector)
        assert auth.access_token() == "ok-token"
        assert auth.access_token() == "ok-token"
    assert len(fault_server.requests) == 2  # no cache: fetched each time, never a crash
    assert "token cache" in caplog.text.lower()
