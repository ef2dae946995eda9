"""Refusals and bad input: permission before lookup, every refusal recorded, NUL, a wrong key.

Also the two refusals of the connection test itself: a disabled connector is never tested.
"""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet, MultiFernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from audit.models import AuditEvent, TestRun
from connectors.models import Connector
from tests.conftest import OAUTH2_PASSWORD, form_data, make_user
from tests.test_views import ROLE_ACCESS

pytestmark = pytest.mark.django_db

# Loopback is refused outside debug, so a test that does run is blocked without any traffic.
BLOCKED_TOKEN_URL = {**OAUTH2_PASSWORD, "oauth2_token_url": "http://127.0.0.1:9/t"}


def client_for(role: str, username: str | None = None) -> Client:
    client = Client()
    client.force_login(make_user(role, username=username))
    return client


def denials() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind="denial").order_by("id"))


# --- Permission first, then lookup -------------------------------------------------------------

PER_CONNECTOR = [(route, method) for (route, method) in ROLE_ACCESS if "{name}" in route]
_CSRF_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')


def _page_without_echo(content: bytes, name: str) -> bytes:
    """The 403 page less what differs by request alone: the typed name it echoes back, and
    the log-out form's CSRF token (masked afresh on every page)."""
    return _CSRF_TOKEN.sub(b"", content).replace(name.encode(), b"NAME")


@pytest.mark.parametrize(("route", "method"), PER_CONNECTOR)
def test_a_refusal_never_tells_whether_a_name_exists(make_connector, route, method):
    make_connector("hr_portal", **BLOCKED_TOKEN_URL)
    for role in ("nobody", "viewer", "operator"):
        if role in ROLE_ACCESS[(route, method)]:
            continue
        client = client_for(role, username=f"{role}_{method}")
        answers = []
        for name in ("hr_portal", "no_such_connector"):
            before = len(denials())
            response = getattr(client, method)(route.format(name=name))
            answers.append((response.status_code, _page_without_echo(response.content, name)))
            recorded = denials()[before:]
            assert len(recorded) == 1, (role, route, name, recorded)
            assert recorded[0].action == "permission_denied"
            assert recorded[0].connector_name == name
        assert answers[0] == answers[1], (role, route, method)
        assert answers[0][0] == 403


def test_the_lookup_still_answers_404_to_someone_allowed(admin_client):
    for url in ("/connectors/no_such/edit/", "/connectors/no_such/clone/"):
        assert admin_client.get(url).status_code == 404


@pytest.mark.parametrize(
    ("url", "method"),
    [("/audit/", "get"), ("/audit/export/?format=csv", "get"), ("/audit/1/", "get")],
)
def test_audit_log_refusals_are_recorded(url, method):
    client = client_for("nobody")
    response = getattr(client, method)(url)
    assert response.status_code == 403
    recorded = denials()
    assert len(recorded) == 1
    assert recorded[0].username == "nobody"
    assert url.split("?")[0] in recorded[0].summary


def test_a_connector_refusal_is_recorded_once_with_its_permission():
    client_for("viewer").get("/connectors/new/")
    recorded = denials()
    assert len(recorded) == 1
    assert recorded[0].details["permission"] == ["connectors.add_connector"]


def test_a_refusal_of_a_path_with_nul_is_recorded_without_the_nul():
    response = client_for("nobody").get("/connectors/a%00b/edit/")
    assert response.status_code == 403
    (event,) = denials()
    # PostgreSQL refuses NUL in text: stored as it would be, the record would be lost.
    for text in (event.summary, event.connector_name, str(event.details)):
        assert "\x00" not in text
    assert "a\\x00b" in event.summary and event.connector_name == "a\\x00b"


def test_a_refusal_by_the_audit_views_with_nul_is_recorded_without_the_nul():
    response = client_for("nobody").get("/audit/?q=a%00b")
    assert response.status_code == 403
    (event,) = denials()
    assert "\x00" not in event.summary + str(event.details)


# --- NUL in a name or a search ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "url", "method"),
    [
        ("viewer", "/connectors/a%00b/", "get"),
        ("viewer", "/connectors/?q=a%00b", "get"),
        ("viewer", "/connectors/?q=%00", "get"),
        ("admin", "/connectors/a%00b/edit/", "get"),
        ("admin", "/connectors/a%00b/clone/", "get"),
        ("admin", "/connectors/a%00b/delete/", "post"),
        ("operator", "/connectors/a%00b/test/", "post"),
    ],
)
def test_nul_in_a_name_or_a_search_is_a_clear_400(role, url, method):
    response = getattr(client_for(role), method)(url)
    assert response.status_code == 400
    page = response.content.decode()
    assert "NUL character" in page
    assert "Connector Console" in page  # inside the console layout, not a bare error


# --- A disabled connector is never tested --------------------------------------------------------


@pytest.fixture
def disabled(make_connector) -> Connector:
    connector = make_connector("hr_portal", **BLOCKED_TOKEN_URL)
    Connector.objects.filter(pk=connector.pk).update(enabled=False)
    return Connector.objects.get(pk=connector.pk)


@pytest.mark.parametrize("fetch", [False, True])
def test_a_disabled_connector_is_not_tested_from_its_page(disabled, operator, fetch):
    client = Client()
    client.force_login(operator)
    headers = {"X-Requested-With": "fetch"} if fetch else {}
    response = client.post("/connectors/hr_portal/test/", headers=headers)
    assert response.status_code == 409
    assert "is disabled" in response.content.decode()
    assert "stored secrets" in response.content.decode()
    assert not TestRun.objects.exists()
    (event,) = denials()
    assert event.action == "connector_disabled" and event.connector_name == "hr_portal"


def test_a_disabled_connector_is_not_tested_from_the_command_line(disabled):
    with pytest.raises(CommandError, match="is disabled") as raised:
        call_command("connector_test", "hr_portal")
    assert raised.value.returncode == 2
    assert not TestRun.objects.exists()
    assert [e.action for e in denials()] == ["connector_disabled"]


def test_the_form_test_of_a_disabled_connector_is_refused_unless_enabled_in_the_form(
    disabled, admin_client
):
    values = {**BLOCKED_TOKEN_URL, "name": "hr_portal", "version": disabled.version}
    values |= {"oauth2_client_secret": "", "oauth2_password": ""}  # the stored ones
    refused = admin_client.post("/connectors/hr_portal/edit/test/", form_data(values))
    assert refused.status_code == 409
    assert not TestRun.objects.exists()
    enabled = admin_client.post(
        "/connectors/hr_portal/edit/test/", form_data({**values, "enabled": True})
    )
    assert enabled.status_code == 200
    assert TestRun.objects.count() == 1


def test_the_page_of_a_disabled_connector_says_why_it_has_no_test(disabled, operator):
    client = Client()
    client.force_login(operator)
    page = client.get("/connectors/hr_portal/").content.decode()
    assert "Disabled connectors are not tested" in page
    assert 'action="/connectors/hr_portal/test/"' not in page


# --- A wrong encryption key ----------------------------------------------------------------------


@pytest.fixture
def wrong_key(make_connector, monkeypatch):
    """Secrets stored under one key, read under another (as after a botched rotation)."""
    from encrypted_model_fields import fields as encrypted

    make_connector("hr_portal", **BLOCKED_TOKEN_URL)
    monkeypatch.setattr(encrypted, "CRYPTER", MultiFernet([Fernet(Fernet.generate_key())]))


@pytest.mark.parametrize(
    ("role", "url", "method", "headers"),
    [
        ("viewer", "/connectors/hr_portal/", "get", {}),
        ("admin", "/connectors/hr_portal/edit/", "get", {}),
        ("admin", "/connectors/hr_portal/edit/", "post", {}),
        ("admin", "/connectors/hr_portal/clone/", "get", {}),
        ("admin", "/connectors/export/", "post", {}),
        ("operator", "/connectors/hr_portal/test/", "post", {}),
        ("operator", "/connectors/hr_portal/test/", "post", {"X-Requested-With": "fetch"}),
        ("admin", "/connectors/hr_portal/edit/test/", "post", {"X-Requested-With": "fetch"}),
        ("admin", "/connectors/hr_portal/pin/", "post", {}),
        ("admin", "/connectors/hr_portal/delete/", "get", {}),
    ],
)
def test_a_wrong_key_gets_a_page_that_says_what_to_do(wrong_key, role, url, method, headers):
    client = client_for(role)
    response = getattr(client, method)(url, headers=headers)
    assert response.status_code == 503
    page = response.content.decode()
    assert "cannot be decrypted with FIELD_ENCRYPTION_KEY" in page
    assert "connectors.E001" in page
    assert "gAAAA" not in page  # never the ciphertext
    if not headers:
        assert "Connector Console" in page and "navbar" in page  # the console layout


def test_a_refused_form_post_is_recorded(viewer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    response = client.post("/accounts/logout/")
    assert response.status_code == 403
    (event,) = denials()
    assert event.action == "csrf_failed" and event.username == "viewer"
    assert "CSRF" in event.details["reason"]
