"""The newcomer path: `make run` on a new port moves the demo connectors with it."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from connectors.demo import _demo_connectors, demo_connectors_ensure, demo_connectors_follow
from connectors.models import Connector
from tests.test_audit_support import make_connector

pytestmark = pytest.mark.django_db

OLD = "http://127.0.0.1:8000"
NEW = "http://127.0.0.1:9000"


def _urls() -> dict[str, tuple[str, str]]:
    return {
        c.name: (c.base_url, c.oauth2_token_url)
        for c in Connector.objects.filter(name__startswith="demo_")
    }


def test_a_run_on_a_new_port_moves_the_demo_connectors_host_and_port_only():
    demo_connectors_ensure(base_url=OLD)
    before = _urls()
    out = io.StringIO()
    call_command("connectors_demo", "--base-url", NEW, stdout=out)
    after = _urls()
    assert set(after) == set(before) and len(after) == len(_demo_connectors(OLD))
    for name, (base, token) in after.items():
        assert base == before[name][0].replace(OLD, NEW), name
        assert token == before[name][1].replace(OLD, NEW), name
        assert ":8000" not in base + token
    assert f"Demo connectors now use {NEW}" in out.getvalue()
    # The secrets stayed, and each move is an audited edit of the URLs.
    oauth = Connector.objects.get(name="demo_oauth2_password")
    assert oauth.oauth2_client_secret and oauth.oauth2_password == "demo-password"
    edits = AuditEvent.objects.filter(kind="change", action="edit", connector_name=oauth.name)
    assert edits.count() == 1
    assert {c["field"] for c in edits.get().details["changes"]} == {"base_url", "oauth2_token_url"}


def test_running_again_on_the_same_port_changes_nothing():
    demo_connectors_ensure(base_url=NEW)
    records = AuditEvent.objects.count()
    assert demo_connectors_follow(base_url=NEW).moved == []
    assert AuditEvent.objects.count() == records


def test_only_demo_connectors_and_only_loopback_sandbox_urls_follow():
    demo_connectors_ensure(base_url=OLD)
    # Not a demo connector, although it points at the old sandbox.
    mine = make_connector(
        "my_own", base_url=f"{OLD}/sandbox/api", oauth2_token_url=f"{OLD}/sandbox/oauth/token"
    )
    # A demo connector pointed at a real server by hand stays there.
    Connector.objects.filter(name="demo_bearer").update(base_url="https://api.example.com/v1")
    demo_connectors_follow(base_url=NEW)
    mine.refresh_from_db()
    assert mine.base_url == f"{OLD}/sandbox/api"
    assert Connector.objects.get(name="demo_bearer").base_url == "https://api.example.com/v1"
    assert Connector.objects.get(name="demo_basic").base_url == f"{NEW}/sandbox/api"


def test_a_demo_connector_whose_secret_was_changed_keeps_its_address():
    demo_connectors_ensure(base_url=OLD)
    typed = Connector.objects.get(name="demo_oauth2_refresh")
    typed.oauth2_client_secret = "a-secret-typed-by-hand"
    typed.save()
    move = demo_connectors_follow(base_url=NEW)
    assert "demo_oauth2_refresh" not in move.moved
    assert [name for name, _ in move.left] == ["demo_oauth2_refresh"]
    assert Connector.objects.get(name="demo_oauth2_refresh").oauth2_token_url.startswith(OLD)
