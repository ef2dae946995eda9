"""/healthz: readiness (database, cache, broker) and liveness for load balancers, without login."""

from __future__ import annotations

import json
import socket
import time

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _get(path: str = "/healthz", **extra) -> tuple[int, dict]:
    response = Client().get(path, **extra)
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    return response.status_code, json.loads(response.content)


def test_all_up_is_200(celery_no_worker):
    status, body = _get()
    assert status == 200
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}
    for check in body["checks"].values():
        assert check["status"] == "ok" and "reason" not in check
        assert isinstance(check["ms"], float)


def test_all_up_over_redis_is_200(celery_redis):
    status, body = _get()
    assert status == 200, body


def test_a_dead_broker_is_503_naming_the_broker(celery_broker_down):
    started = time.monotonic()
    status, body = _get()
    assert time.monotonic() - started < 3
    assert status == 503
    assert body["status"] == "failed"
    assert body["checks"]["broker"] == {
        "status": "failed",
        "reason": "connection refused",
        "ms": body["checks"]["broker"]["ms"],
    }
    assert body["checks"]["database"]["status"] == body["checks"]["cache"]["status"] == "ok"
    # Neither the broker's address nor its password.
    assert "hunter2" not in json.dumps(body) and "127.0.0.1" not in json.dumps(body)


def test_a_silent_broker_fails_within_the_timeout(settings, celery_broker_down):
    from tests.peers.celery_worker import app_on_broker, redis_broker

    settings.HEALTHZ_TIMEOUT = 0.5
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        with app_on_broker(redis_broker(url, results=False)):
            started = time.monotonic()
            status, body = _get()
            elapsed = time.monotonic() - started
    assert status == 503
    assert body["checks"]["broker"]["status"] == "failed"
    assert body["checks"]["broker"]["reason"] == "timed out"
    assert elapsed < 2


def test_a_missing_embedded_queue_folder_is_503(celery_no_worker):
    import shutil

    shutil.rmtree(celery_no_worker.conf.broker_transport_options["data_folder_out"])
    status, body = _get()
    assert status == 503
    assert body["checks"]["broker"]["reason"] == "queue folder not writable"


def test_a_dead_cache_is_503_naming_the_cache(settings, celery_no_worker, closed_port):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://:hunter2-cache-pw@127.0.0.1:{closed_port}/0",
        }
    }
    status, body = _get()
    assert status == 503
    assert body["checks"]["cache"]["status"] == "failed"
    assert body["checks"]["cache"]["reason"] == "connection refused"
    assert body["checks"]["broker"]["status"] == "ok"
    assert "hunter2" not in json.dumps(body)


def test_a_failing_database_is_503(celery_no_worker, monkeypatch):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise RuntimeError("could not connect to server at db.internal:5432 password=x")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    status, body = _get()
    assert status == 503
    assert body["checks"]["database"] == {
        "status": "failed",
        "reason": "query failed",
        "ms": body["checks"]["database"]["ms"],
    }
    assert "db.internal" not in json.dumps(body)


def test_no_login_and_no_connector_data(celery_no_worker, make_connector):
    from tests.conftest import OAUTH2_PASSWORD

    make_connector(
        name="payroll_secret_system", base_url="https://payroll.internal.example", **OAUTH2_PASSWORD
    )
    response = Client().get("/healthz")
    assert response.status_code == 200
    text = response.content.decode()
    for leaked in ("payroll", "example", "client-secret-1", "connector", "oauth"):
        assert leaked not in text.lower()
    # Nothing but the three checks' status, reason and timing.
    body = json.loads(text)
    assert set(body) == {"status", "checks"}
    assert all(set(check) <= {"status", "reason", "ms"} for check in body["checks"].values())


def test_the_ssl_redirect_spares_healthz_only(settings, celery_no_worker):
    settings.SECURE_SSL_REDIRECT = True
    assert Client().get("/healthz").status_code == 200
    assert Client().get("/healthz/live").status_code == 200
    assert Client().get("/connectors/").status_code == 301


def test_liveness_checks_nothing(celery_broker_down):
    status, body = _get("/healthz/live")
    assert (status, body) == (200, {"status": "ok"})


def test_only_get(celery_no_worker):
    assert Client().post("/healthz").status_code == 405
