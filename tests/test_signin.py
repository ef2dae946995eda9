"""Sign-in: lock-out per user name and per address, sign-in audit, idle session timeout."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from tests.conftest import USER_PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
WRONG = "Wrong-password-9q!"


def attempt(client: Client, username: str, password: str, *, address: str = "10.0.0.1", url=LOGIN):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_forty_wrong_passwords_do_not_all_answer_try_again_and_the_right_one_then_fails(client):
    make_user("operator", username="alice")
    statuses = [attempt(client, "alice", f"{WRONG}{n}").status_code for n in range(40)]

    assert statuses[:4] == [200] * 4  # the form again, with its error
    assert set(statuses[4:]) == {429}  # the fifth failure locks
    response = attempt(client, "alice", USER_PASSWORD)
    assert response.status_code == 429
    assert not signed_in(client)
    assert client.get("/connectors/").status_code == 302


def test_the_lockout_page_is_inside_the_console_layout(client):
    make_user("operator", username="alice")
    for n in range(5):
        response = attempt(client, "alice", f"{WRONG}{n}")
    assert response.status_code == 429
    page = response.content.decode()
    assert "<nav" in page and "Connector Console" in page  # base.html
    assert "Sign-in temporarily locked" in page
    assert "15 minutes" in page
    assert "data-signin-locked" in page
    assert WRONG not in page


def test_admin_login_is_locked_too(client):
    User.objects.create_superuser("root", password=USER_PASSWORD)
    statuses = [
        attempt(client, "root", f"{WRONG}{n}", url=ADMIN_LOGIN).status_code for n in range(8)
    ]
    assert 429 in statuses and statuses[-1] == 429
    response = attempt(client, "root", USER_PASSWORD, url=ADMIN_LOGIN)
    assert response.status_code == 429
    assert "Sign-in temporarily locked" in response.content.decode()
    assert not signed_in(client)


def test_one_user_name_locks_from_every_address(client):
    make_user("operator", username="alice")
    for n in range(5):
        attempt(client, "alice", WRONG, address=f"10.0.1.{n}")
    assert attempt(client, "alice", USER_PASSWORD, address="10.0.9.9").status_code == 429
    assert not signed_in(client)


def test_one_address_locks_for_every_user_name(client):
    make_user("operator", username="alice")
    for n in range(5):
        attempt(client, f"guess{n}", WRONG, address="10.0.2.1")
    assert attempt(client, "alice", USER_PASSWORD, address="10.0.2.1").status_code == 429
    assert not signed_in(client)
    # Another address is not locked, and the user name itself has no failures.
    assert attempt(client, "alice", USER_PASSWORD, address="10.0.2.2").status_code == 302
    assert signed_in(client)


def test_a_forged_forwarded_for_does_not_give_a_fresh_address(client, settings):
    settings.SIGNIN_BEHIND_PROXY = True
    make_user("operator", username="alice")
    for n in range(5):
        client.post(
            LOGIN,
            {"username": f"guess{n}", "password": WRONG},
            REMOTE_ADDR="10.9.9.9",  # the proxy
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 10.0.3.1",  # client's claim, then the proxy's view
        )
    response = client.post(
        LOGIN,
        {"username": "alice", "password": USER_PASSWORD},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="192.0.2.77, 10.0.3.1",
    )
    assert response.status_code == 429


def test_the_lock_lifts_after_the_cool_off(client):
    make_user("operator", username="alice")
    for _n in range(5):
        attempt(client, "alice", WRONG)
    assert attempt(client, "alice", USER_PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=16))
    assert attempt(client, "alice", USER_PASSWORD).status_code == 302
    assert signed_in(client)


def test_a_few_failures_then_the_right_password_signs_in(client):
    make_user("operator", username="alice")
    for _n in range(3):
        assert attempt(client, "alice", WRONG).status_code == 200
    response = attempt(client, "alice", USER_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/connectors/"


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def all_audit_text() -> str:
    return json.dumps(list(AuditEvent.objects.values()), default=str)


def test_sign_in_success_failure_and_lockout_are_audited_without_the_password(client):
    alice = make_user("operator", username="alice")
    attempt(client, "alice", WRONG)
    failed = events("login_failed")
    assert len(failed) == 1
    assert failed[0].kind == "denial" and failed[0].outcome == "login_failed"
    assert failed[0].details["username_typed"] == "alice"
    assert failed[0].details["address"] == "10.0.0.1"
    assert failed[0].details["path"] == LOGIN
    assert failed[0].source == "web"

    for _ in range(4):
        attempt(client, "alice", WRONG)
    attempt(client, "alice", USER_PASSWORD)  # refused while locked
    locked = events("login_locked_out")
    assert len(locked) == 2  # the attempt that locked, and the refused right password
    assert {event.outcome for event in locked} == {"locked_out"}
    assert len(events("login_failed")) == 4

    AccessAttempt.objects.all().delete()  # an administrator unlocks (axes_reset)
    attempt(client, "alice", USER_PASSWORD, address="10.0.0.2")
    (login,) = events("login")
    assert login.kind == "system" and login.user_id == alice.pk and login.username == "alice"
    assert login.details["address"] == "10.0.0.2"

    assert WRONG not in all_audit_text()
    assert USER_PASSWORD not in all_audit_text()


def test_admin_sign_in_is_audited_with_source_admin(client):
    User.objects.create_superuser("root", password=USER_PASSWORD)
    attempt(client, "root", WRONG, url=ADMIN_LOGIN)
    attempt(client, "root", USER_PASSWORD, url=ADMIN_LOGIN)
    assert [e.source for e in events("login_failed")] == ["admin"]
    assert [e.source for e in events("login")] == ["admin"]


def test_sign_out_is_audited(client):
    make_user("operator", username="alice")
    attempt(client, "alice", USER_PASSWORD)
    client.post("/accounts/logout/")
    (logout,) = events("logout")
    assert logout.username == "alice"


# --- Idle timeout ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("accounts.middleware.clock", fake)
    return fake


def test_an_idle_session_is_signed_out_on_the_next_request(client, clock, settings):
    assert settings.SESSION_IDLE_SECONDS == 8 * 3600  # the documented default
    make_user("operator", username="alice")
    attempt(client, "alice", USER_PASSWORD)

    clock.now += 8 * 3600 - 1  # just inside the limit: still signed in, and the clock restarts
    assert client.get("/connectors/").status_code == 200
    clock.now += 8 * 3600 - 1
    assert client.get("/connectors/").status_code == 200

    clock.now += 8 * 3600 + 1  # idle longer than the limit
    response = client.get("/connectors/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert not signed_in(client)
    page = client.get(response["Location"]).content.decode()
    assert "signed out after 8 hours without activity" in page
    (idle,) = events("logout_idle")
    assert idle.username == "alice"


def test_the_idle_limit_is_a_setting(client, clock, settings):
    settings.SESSION_IDLE_SECONDS = 600
    make_user("operator", username="alice")
    attempt(client, "alice", USER_PASSWORD)
    clock.now += 601
    assert client.get("/connectors/").status_code == 302
    assert not signed_in(client)


def test_activity_writes_the_session_at_most_once_a_minute(client, clock):
    make_user("operator", username="alice")
    attempt(client, "alice", USER_PASSWORD)
    stamp = client.session["signin_last_seen"]
    clock.now += 30
    client.get("/connectors/")
    assert client.session["signin_last_seen"] == stamp
    clock.now += 31
    client.get("/connectors/")
    assert client.session["signin_last_seen"] == clock.now


def test_settings_come_from_the_environment():
    root = Path(__file__).resolve().parents[1]
    code = (
        "from config import settings as s; "
        "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(), "
        "s.SESSION_IDLE_SECONDS, s.SESSION_COOKIE_AGE)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "LOGIN_FAILURE_LIMIT": "7",
        "LOGIN_COOLOFF_MINUTES": "30",
        "SESSION_IDLE_SECONDS": "900",
    }
    output = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert output == ["7", "1800.0", "900", "960"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("SESSION_IDLE_SECONDS", "0"), ("LOGIN_FAILURE_LIMIT", "-1"), ("LOGIN_COOLOFF_MINUTES", "x")],
)
def test_a_bad_setting_stops_start_up_naming_it(name, value):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), name: value}
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert f"{name} must be a positive number" in result.stderr


def test_sign_in_records_show_in_the_audit_log(client, admin_client):
    make_user("operator", username="alice")
    attempt(client, "alice", WRONG)
    attempt(client, "alice", USER_PASSWORD)
    listing = admin_client.get("/audit/")
    assert listing.status_code == 200
    for event in AuditEvent.objects.filter(action__in=["login", "login_failed"]):
        page = admin_client.get(f"/audit/{event.pk}/")
        assert page.status_code == 200
        assert "alice" in page.content.decode()
    assert USER_PASSWORD not in listing.content.decode()
