"""Jwks Auth's key set: Generate JWKS, publishing, rotation across time, the scheduler's task,
the audit records, the admin page, and that no private key leaves the console."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import jwt
import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from connectors import jwks
from connectors.jwks import (
    JwksError,
    jwks_document,
    jwks_generate,
    jwks_rotate_due,
    jwks_rotate_now,
    jwks_settings_set,
    jwks_signing_key,
)
from connectors.jwks_status import jwks_status
from connectors.models import JwksKey

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def kids(now: dt.datetime) -> list[str]:
    return [jwk["kid"] for jwk in jwks_document(now=now)["keys"]]


def sign(now: dt.datetime) -> str:
    key = jwks_signing_key(now=now)
    return jwt.encode(
        {"iss": "console", "aud": "api", "exp": now + 2 * HOUR},
        key.private_key_pem,
        algorithm="RS256",
        headers={"kid": key.kid},
    )


def verifies(token: str, now: dt.datetime) -> bool:
    """What an API does: find the token's kid in the published set, verify with that key."""
    header = jwt.get_unverified_header(token)
    for jwk in jwks_document(now=now)["keys"]:
        if jwk["kid"] == header["kid"]:
            key = jwt.PyJWK(jwk).key
            jwt.decode(
                token, key, algorithms=["RS256"], audience="api", options={"verify_exp": False}
            )
            return True
    return False


def test_generate_makes_an_rsa_2048_key_with_a_uuid_kid(admin_user):
    key = jwks_generate(user=admin_user, now=T0)
    assert str(uuid.UUID(key.kid, version=4)) == key.kid
    public = jwt.PyJWK(key.public_jwk)
    assert public.key.key_size == 2048
    assert key.public_jwk["alg"] == "RS256" and key.public_jwk["use"] == "sig"
    assert set(key.public_jwk) == {"kty", "n", "e", "kid", "alg", "use"}
    assert kids(T0) == [key.kid]
    assert jwks_signing_key(now=T0).kid == key.kid
    # Nothing signs before the first key, so a second "Generate" is refused: Rotate instead.
    with pytest.raises(JwksError) as refused:
        jwks_generate(user=admin_user, now=T0 + HOUR)
    assert refused.value.code == "key_exists"
    event = AuditEvent.objects.get(action="jwks_generate")
    assert event.kind == "change" and event.username == admin_user.username
    assert event.details["kid"] == key.kid


def test_no_key_means_a_clear_error():
    with pytest.raises(JwksError) as no_key:
        jwks_signing_key(now=T0)
    assert no_key.value.code == "no_signing_key"
    assert "Generate JWKS" in str(no_key.value)
    assert jwks_document(now=T0) == {"keys": []}
    assert jwks_rotate_due(now=T0).reason == "no signing key"


def test_scheduled_rotation_publishes_before_signing_and_keeps_the_old_key_for_the_grace():
    """Every 90 days, grace 24 hours: the whole life of a rotation, hour by hour."""
    first = jwks_generate(user=None, now=T0).kid
    planned = T0 + 90 * DAY
    # Not due until grace hours before the planned switch; running early changes nothing.
    assert jwks_rotate_due(now=planned - 25 * HOUR).reason == "not due"
    assert JwksKey.objects.count() == 1
    old_token = sign(planned - 25 * HOUR)

    result = jwks_rotate_due(now=planned - 24 * HOUR)
    assert result.rotated and result.previous_kid == first
    second = result.kid
    assert result.activates_at == planned
    # Published at once, but the old key still signs: verifiers see the new key first.
    assert kids(planned - 24 * HOUR) == [second, first]
    assert jwks_signing_key(now=planned - HOUR).kid == first
    # Idempotent: a second run (or another worker) makes nothing more.
    assert jwks_rotate_due(now=planned - 23 * HOUR).reason == "rotation under way"
    assert JwksKey.objects.count() == 2

    # At the planned time the new key signs; the old one stays published for the grace.
    assert jwks_signing_key(now=planned).kid == second
    new_token = sign(planned)
    assert verifies(old_token, planned + 23 * HOUR)
    assert verifies(new_token, planned + 23 * HOUR)
    assert kids(planned + 23 * HOUR) == [second, first]

    # After the grace the old key is gone from the document, and its tokens fail.
    assert kids(planned + 24 * HOUR) == [second]
    assert not verifies(old_token, planned + 24 * HOUR)
    assert verifies(new_token, planned + 24 * HOUR)

    # The scheduler's next run deletes the old private key, once, and records it.
    run = jwks_rotate_due(now=planned + 25 * HOUR)
    assert run.retired == (first,) and not run.rotated
    assert jwks_rotate_due(now=planned + 26 * HOUR).retired == ()
    old = JwksKey.objects.get(kid=first)
    assert old.private_key_pem == "" and old.wiped_at == planned + 25 * HOUR
    retire = AuditEvent.objects.get(action="jwks_retire")
    assert retire.details["kid"] == first and retire.username == "scheduler"


def test_a_late_scheduler_never_shortens_the_grace():
    jwks_generate(user=None, now=T0)
    late = T0 + 100 * DAY  # beat was down for ten days
    result = jwks_rotate_due(now=late)
    assert result.activates_at == late + 24 * HOUR
    assert jwks_signing_key(now=late + 23 * HOUR).kid == result.previous_kid


def test_each_rotation_is_audited():
    first = jwks_generate(user=None, now=T0).kid
    result = jwks_rotate_due(now=T0 + 89 * DAY)
    event = AuditEvent.objects.get(action="jwks_rotate")
    assert event.kind == "system" and event.username == "scheduler"
    assert event.details["kid"] == result.kid and event.details["previous_kid"] == first
    assert event.details["reason"] == "scheduled"
    assert event.details["activates_at"] == (T0 + 90 * DAY).isoformat()
    assert result.kid in event.summary


def test_rotate_now_keeps_the_grace_and_is_pressed_once(admin_user):
    first = jwks_generate(user=admin_user, now=T0).kid
    result = jwks_rotate_now(user=admin_user, now=T0 + DAY)
    assert result.activates_at == T0 + DAY + 24 * HOUR
    assert jwks_signing_key(now=T0 + DAY + HOUR).kid == first
    with pytest.raises(JwksError) as twice:
        jwks_rotate_now(user=admin_user, now=T0 + DAY + HOUR)
    assert twice.value.code == "rotation_under_way"
    event = AuditEvent.objects.get(action="jwks_rotate")
    assert event.kind == "change" and event.username == admin_user.username
    assert event.details["reason"] == "rotate_now"
    # The next scheduled rotation counts from when the new key started signing.
    assert jwks_status(now=T0 + 3 * DAY).next_rotation_at == T0 + 2 * DAY + 90 * DAY


def test_rotation_settings_drive_the_schedule(admin_user):
    jwks_settings_set(rotation_days=7, grace_hours=2, user=admin_user)
    jwks_generate(user=None, now=T0)
    assert jwks_rotate_due(now=T0 + 7 * DAY - 3 * HOUR).reason == "not due"
    assert jwks_rotate_due(now=T0 + 7 * DAY - 2 * HOUR).rotated
    event = AuditEvent.objects.get(action="jwks_settings")
    assert event.details["after"] == {"rotation_days": 7, "grace_hours": 2}
    jwks_settings_set(rotation_days=0, grace_hours=24, user=admin_user)
    assert jwks_rotate_due(now=T0 + 400 * DAY).reason == "automatic rotation off"
    with pytest.raises(JwksError):
        jwks_settings_set(rotation_days=1, grace_hours=24, user=admin_user)
    with pytest.raises(JwksError):
        jwks_settings_set(rotation_days=90, grace_hours=1, user=admin_user)


def test_the_task_runs_the_rotation_and_the_beat_entry_exists():
    from django_celery_beat.models import PeriodicTask

    from config.celery import app
    from connectors.tasks_jwks import jwks_rotate

    entry = PeriodicTask.objects.get(task="connectors.jwks_rotate")
    assert entry.enabled and (entry.interval.every, entry.interval.period) == (1, "hours")
    app.loader.import_default_modules()
    assert "connectors.jwks_rotate" in app.tasks

    key = jwks_generate(user=None, now=timezone.now() - 89 * DAY - HOUR)
    done = jwks_rotate.apply().get()
    assert done["rotated"] and done["previous_kid"] == key.kid
    again = jwks_rotate.apply().get()
    assert not again["rotated"] and again["reason"] == "rotation under way"
    assert JwksKey.objects.count() == 2


def test_the_published_document_needs_no_login_and_holds_public_keys_only(admin_user):
    key = jwks_generate(user=admin_user)
    response = Client().get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jwk-set+json"
    assert response["Cache-Control"] == "public, max-age=300"
    document = json.loads(response.content)
    assert [jwk["kid"] for jwk in document["keys"]] == [key.kid]
    for jwk in document["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
    private = JwksKey.objects.get(kid=key.kid).private_key_pem
    body = private.splitlines()[1]
    assert body not in response.content.decode()
    # Signed in, the document stays the same and cacheable.
    client = Client()
    client.force_login(admin_user)
    signed_in = client.get("/.well-known/jwks.json")
    assert signed_in["Cache-Control"] == "public, max-age=300"
    assert Client().post("/.well-known/jwks.json").status_code == 405


def test_the_private_key_is_encrypted_at_rest(admin_user):
    key = jwks_generate(user=admin_user)
    assert "PRIVATE KEY" not in raw_private_column(key.kid)
    assert JwksKey.objects.get(kid=key.kid).private_key_pem.startswith("-----BEGIN PRIVATE KEY")
    assert "PRIVATE" not in repr(jwks_signing_key()) and key.kid in repr(jwks_signing_key())


def test_the_signing_keys_page(admin_client, viewer):
    page = admin_client.get("/fleet/jwks/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "http://testserver/.well-known/jwks.json" in text
    assert ">Generate JWKS</button>" in text and ">Rotate now</button>" not in text

    generated = admin_client.post("/fleet/jwks/", {"action": "generate"})
    assert generated.status_code == 302
    key = JwksKey.objects.get()
    text = admin_client.get("/fleet/jwks/").content.decode()
    assert key.kid in text and ">Rotate now</button>" in text
    assert key.private_key_pem.splitlines()[1] not in text

    rotated = admin_client.post("/fleet/jwks/", {"action": "rotate"})
    assert rotated.status_code == 302
    assert JwksKey.objects.count() == 2
    twice = admin_client.post("/fleet/jwks/", {"action": "rotate"})
    assert twice.status_code == 409 and "rotation is under way" in twice.content.decode()

    saved = admin_client.post(
        "/fleet/jwks/", {"action": "settings", "rotation_days": 30, "grace_hours": 12}
    )
    assert saved.status_code == 302
    assert jwks.jwks_settings() == jwks.RotationSettings(30, 12)
    refused = admin_client.post(
        "/fleet/jwks/", {"action": "settings", "rotation_days": 30, "grace_hours": 1}
    )
    assert refused.status_code == 400

    # Viewers may not see or press anything here; the refusal is recorded.
    client = Client()
    client.force_login(viewer)
    assert client.get("/fleet/jwks/").status_code == 403
    assert client.post("/fleet/jwks/", {"action": "rotate"}).status_code == 403
    assert JwksKey.objects.count() == 2


def raw_private_column(kid: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key_pem FROM connectors_jwkskey WHERE kid = %s", [kid])
        return cursor.fetchone()[0]


def test_rotating_the_encryption_key_re_encrypts_jwks_private_keys(admin_user):
    from django.core.management import call_command

    key = jwks_generate(user=admin_user)
    before = raw_private_column(key.kid)
    call_command("connectors_rotate_key")
    # Fernet tokens carry a fresh IV and time: a rewritten value always differs.
    assert raw_private_column(key.kid) != before
    assert JwksKey.objects.get(kid=key.kid).private_key_pem.startswith("-----BEGIN PRIVATE KEY")


def test_an_unreadable_private_key_is_reported_by_the_secret_scan(admin_user):
    from cryptography.fernet import Fernet
    from django.db import connection

    from connectors.checks import UnreadableSecret, stored_secrets_unreadable

    key = jwks_generate(user=admin_user)
    foreign = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE connectors_jwkskey SET private_key_pem = %s", [foreign])
    assert list(stored_secrets_unreadable()) == [
        UnreadableSecret(connector="(console)", field=f"JWKS key {key.kid}")
    ]


def test_a_key_is_published_only_from_its_publish_time():
    first = jwks_generate(user=None, now=T0).kid
    second = jwks_rotate_now(user=None, now=T0 + DAY).kid
    JwksKey.objects.filter(kid=second).update(publish_at=T0 + 2 * DAY)
    assert kids(T0 + DAY + HOUR) == [first]
    assert kids(T0 + 2 * DAY) == [second, first]
