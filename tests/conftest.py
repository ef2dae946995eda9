"""Shared fixtures: users in each role, connectors built through the real form, Chromium."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.http import QueryDict
from django.test import Client

from connectors.forms import connector_forms
from connectors.models import Connector
from connectors.services import connector_create

ROLE_GROUPS = {
    "viewer": "Connector viewers",
    "operator": "Connector operators",
    "admin": "Connector admins",
}
USER_PASSWORD = "pw-for-tests-7f3a"


def ensure_roles() -> None:
    """Recreate the role groups after a transactional test flushed what migrations made."""
    from importlib import import_module

    from django.apps import apps

    import_module("connectors.migrations.0002_roles").create_roles(apps, None)
    import_module("audit.migrations.0003_roles_view_auditevent").grant_view(apps, None)


def make_user(role: str, username: str | None = None) -> User:
    user = User.objects.create_user(username=username or role, password=USER_PASSWORD)
    if role in ROLE_GROUPS:
        group = Group.objects.filter(name=ROLE_GROUPS[role]).first()
        if group is None:
            ensure_roles()
            group = Group.objects.get(name=ROLE_GROUPS[role])
        user.groups.add(group)
    return user


@pytest.fixture
def viewer(db) -> User:
    return make_user("viewer")


@pytest.fixture
def operator(db) -> User:
    return make_user("operator")


@pytest.fixture
def admin_user(db) -> User:
    return make_user("admin")


@pytest.fixture
def admin_client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def form_data(
    values: dict[str, Any], rows: dict[str, list[dict[str, Any]]] | None = None
) -> QueryDict:
    """POST data for the connector form: field values plus the formsets' rows."""
    data = QueryDict(mutable=True)
    for key, value in values.items():
        if isinstance(value, bool):
            if value:
                data[key] = "on"
        else:
            data[key] = str(value)
    rows = rows or {}
    for prefix in ("headers", "data", "authorize"):
        prefix_rows = rows.get(prefix, [])
        data[f"{prefix}-TOTAL_FORMS"] = str(len(prefix_rows))
        data[f"{prefix}-INITIAL_FORMS"] = "0"
        for index, row in enumerate(prefix_rows):
            for key, value in row.items():
                if isinstance(value, bool):
                    if value:
                        data[f"{prefix}-{index}-{key}"] = "on"
                else:
                    data[f"{prefix}-{index}-{key}"] = str(value)
    return data


OAUTH2_PASSWORD = {
    "auth_config": "oauth2",
    "oauth2_grant_type": "password",
    "oauth2_client_id": "client-1",
    "oauth2_client_secret": "client-secret-1",
    "oauth2_username": "svc.user",
    "oauth2_password": "user-password-1",
    "oauth2_token_url": "https://login.example.com/oauth2/token",
}


@pytest.fixture
def make_connector(db) -> Callable[..., Connector]:
    """Create a connector through the form and the create service, as the UI does."""

    def make(
        name: str = "hr_portal",
        rows: dict[str, list[dict[str, Any]]] | None = None,
        user: User | None = None,
        **values: Any,
    ) -> Connector:
        fields = {"name": name, "base_url": "https://api.example.com", "enabled": True}
        fields.update(values or OAUTH2_PASSWORD)
        bundle = connector_forms(data=form_data(fields, rows))
        assert bundle.is_valid(), (bundle.form.errors, bundle.headers.errors, bundle.data.errors)
        return connector_create(connector=bundle.form.instance, rows=bundle.rows(), user=user)

    return make


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium, with the flags this closed network needs."""
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """PBKDF2 costs ~0.3 s a user; the tests make dozens."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def clear_cache() -> None:
    """Rate-limit windows and cached tokens must not leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def loopback_allowed(settings) -> None:
    """The peers listen on 127.0.0.1, which the outbound policy refuses outside debug."""
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = True


@pytest.fixture(scope="session")
def oauth_peer(tmp_path_factory):
    """django-oauth-toolkit as a real token server in a subprocess on a loopback port."""
    from tests.peers.servers import start_oauth_server

    with start_oauth_server(tmp_path_factory.mktemp("dot-peer")) as peer:
        yield peer


@pytest.fixture(scope="session")
def fault_server():
    """Our own misbehaving token server on a loopback port."""
    from tests.peers.fault_server import FaultServer

    with FaultServer() as server:
        yield server


LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "localhost.localdomain"}


@pytest.fixture(scope="session", autouse=True)
def no_traffic_leaves_the_machine():
    """Tests talk only to loopback servers they start: any other lookup fails loudly.

    Tests of refused addresses pass their own stub resolver; this guard makes sure a test that
    forgot to would fail instead of sending a DNS query or a connection off the machine.
    """
    import ipaddress
    import socket
    from unittest import mock

    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        try:
            loopback = ipaddress.ip_address(name.split("%")[0]).is_loopback
        except ValueError:
            loopback = name.lower() in LOOPBACK_NAMES
        if not loopback:
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: no lookups of {name!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    with mock.patch("socket.getaddrinfo", guarded_getaddrinfo):
        yield


REDIS_TEST_URL = "redis://127.0.0.1:6379/15"


def _redis_up(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def celery_redis_worker(tmp_path_factory):
    """A real `celery -A config worker` on this machine's Redis (db 15, a queue of its own).

    Skipped without Redis on a developer's machine; CI (CI=true) has Redis and fails instead.
    """
    from tests.peers.celery_worker import celery_worker, queue_delete, redis_broker

    if not _redis_up(REDIS_TEST_URL):
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not answering at {REDIS_TEST_URL}")
        pytest.skip(f"Redis is not answering at {REDIS_TEST_URL}")
    broker = redis_broker(REDIS_TEST_URL)
    with celery_worker(broker, tmp_path_factory.mktemp("celery-redis")) as worker:
        yield worker
    queue_delete(broker)


@pytest.fixture
def celery_redis(celery_redis_worker):
    """config.celery.app sends to the Redis worker's queue for this test."""
    from tests.peers.celery_worker import app_on_broker

    with app_on_broker(celery_redis_worker.broker) as app:
        yield app


AMQP_TEST_URL = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.fixture(scope="session")
def celery_amqp_worker(tmp_path_factory):
    """A real worker on this machine's RabbitMQ (a queue of its own, deleted afterwards)."""
    from config.celery import broker_check
    from tests.peers.celery_worker import amqp_broker, app_on_broker, celery_worker, queue_delete

    broker = amqp_broker(AMQP_TEST_URL)
    with app_on_broker(broker):
        reason = broker_check(timeout=2)
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"RabbitMQ is not answering at 127.0.0.1:5672: {reason}")
        pytest.skip(f"RabbitMQ is not answering at 127.0.0.1:5672: {reason}")
    with celery_worker(broker, tmp_path_factory.mktemp("celery-amqp")) as worker:
        yield worker
    queue_delete(broker)


@pytest.fixture
def celery_amqp(celery_amqp_worker):
    """config.celery.app sends to the RabbitMQ worker's queue for this test."""
    from tests.peers.celery_worker import app_on_broker

    with app_on_broker(celery_amqp_worker.broker) as app:
        yield app


@pytest.fixture(scope="session")
def celery_embedded_worker(tmp_path_factory):
    """A real worker on the embedded default: kombu's filesystem transport in a temporary folder."""
    from tests.peers.celery_worker import celery_worker, filesystem_broker

    data_dir = tmp_path_factory.mktemp("celery-embedded")
    with celery_worker(filesystem_broker(data_dir / "celery"), data_dir) as worker:
        yield worker


@pytest.fixture
def celery_embedded(celery_embedded_worker):
    """config.celery.app sends to the embedded worker's folders for this test."""
    from tests.peers.celery_worker import app_on_broker

    with app_on_broker(celery_embedded_worker.broker) as app:
        yield app


@pytest.fixture
def celery_no_worker(tmp_path):
    """config.celery.app on an embedded broker in tmp_path that no worker reads (never .local/)."""
    from tests.peers.celery_worker import app_on_broker, filesystem_broker

    with app_on_broker(filesystem_broker(tmp_path / "celery")) as app:
        yield app


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def celery_broker_down(closed_port):
    """config.celery.app on a Redis URL (with a password) whose port is closed; no results."""
    from tests.peers.celery_worker import app_on_broker, redis_broker

    url = f"redis://:hunter2-broker-pw@127.0.0.1:{closed_port}/0"
    with app_on_broker(redis_broker(url, results=False)) as app:
        yield app
