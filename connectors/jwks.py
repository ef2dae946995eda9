"""Jwks Auth's key set: generate, rotate, publish and sign with the console's own RSA keys.

The key set is console-wide, served at `/.well-known/jwks.json` (README "Jwks Auth"). Every
decision takes `now`, so a rotation can be replayed at any instant (the tests travel in time
by passing it); the scheduler calls `jwks_rotate_due` (Celery task `connectors.jwks_rotate`,
from beat), admins press "Generate JWKS" and "Rotate now".

Rotation with a grace period of G hours, for a key that signs from A:

- at A + N days - G the next key is made and published (it signs from A + N days, or G hours
  after it was published, whichever is later: a late scheduler never shortens the grace);
- at A + N days it becomes the signing key and the old one stops signing;
- G hours later the old key leaves the document and its private key is wiped.

Keys are generated with `cryptography` and their JWKs built by PyJWT (`RSAAlgorithm.to_jwk`);
nothing here is hand-written cryptography.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from jwt.algorithms import RSAAlgorithm

from audit.services import audit_record
from connectors.identities import scheduler_user
from connectors.models import Connector, JwksKey, JwksSettings
from connectors.oauth_http.assertions import (
    DEFAULT_TTL_SECONDS,
    build_claims,
    decoded_view,
    parse_json_object,
    sign_jwt,
)
from connectors.services import UserLike, acting_user

JWKS_PATH = "/.well-known/jwks.json"
ALGORITHM = "RS256"
KEY_SIZE = 2048
SETTINGS_PK = 1
# How long verifiers may cache the document. Shorter than the smallest grace period by far, so
# a key published `grace` hours before it signs is in every verifier's copy before it signs.
CACHE_MAX_AGE_SECONDS = 300
# The grace period covers the longest token lifetime (2 hours, see the TTL rule) at least.
MIN_GRACE_HOURS = 2
MAX_GRACE_HOURS = 30 * 24
MAX_ROTATION_DAYS = 3650


class JwksError(Exception):
    """A key-set action that cannot be done now; the message says why and what to do."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


NO_KEY_MESSAGE = (
    'The console has no signing key for Jwks Auth yet. An admin presses "Generate JWKS" on the '
    "Signing keys page (/fleet/jwks/)."
)


# --- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationSettings:
    rotation_days: int  # 0: no automatic rotation
    grace_hours: int

    @property
    def grace(self) -> dt.timedelta:
        return dt.timedelta(hours=self.grace_hours)


def jwks_settings() -> RotationSettings:
    """The stored rotation settings, or the defaults."""
    row = JwksSettings.objects.filter(pk=SETTINGS_PK).first()
    if row is None:
        row = JwksSettings()
    return RotationSettings(row.rotation_days, row.grace_hours)


def jwks_settings_errors(*, rotation_days: int, grace_hours: int) -> dict[str, str]:
    """Why these settings are refused, by field ({} when they are fine)."""
    errors: dict[str, str] = {}
    if not 0 <= rotation_days <= MAX_ROTATION_DAYS:
        errors["rotation_days"] = f"Use 0 (never) to {MAX_ROTATION_DAYS} days."
    if not MIN_GRACE_HOURS <= grace_hours <= MAX_GRACE_HOURS:
        errors["grace_hours"] = (
            f"Use {MIN_GRACE_HOURS} to {MAX_GRACE_HOURS} hours: at least the longest token "
            "lifetime (2 hours), so a token signed just before a rotation still verifies."
        )
    elif rotation_days and grace_hours >= rotation_days * 24:
        errors["grace_hours"] = (
            "The grace period must be shorter than the rotation interval: otherwise the next "
            "key would be published before the current one starts signing."
        )
    return errors


def jwks_settings_set(*, rotation_days: int, grace_hours: int, user: UserLike) -> None:
    """Store the rotation settings and audit the change. Call with checked values."""
    errors = jwks_settings_errors(rotation_days=rotation_days, grace_hours=grace_hours)
    if errors:
        raise JwksError("invalid_settings", " ".join(errors.values()))
    with transaction.atomic():
        before = jwks_settings()
        JwksSettings.objects.update_or_create(
            pk=SETTINGS_PK,
            defaults={
                "rotation_days": rotation_days,
                "grace_hours": grace_hours,
                "updated_at": timezone.now(),
            },
        )
        audit_record(
            kind="change",
            action="jwks_settings",
            user=acting_user(user),
            summary=(
                f"JWKS rotation: {_rotation_text(before.rotation_days)}, grace "
                f"{before.grace_hours} h → {_rotation_text(rotation_days)}, grace {grace_hours} h."
            ),
            details={
                "before": {
                    "rotation_days": before.rotation_days,
                    "grace_hours": before.grace_hours,
                },
                "after": {"rotation_days": rotation_days, "grace_hours": grace_hours},
            },
        )


def _rotation_text(days: int) -> str:
    return f"every {days} days" if days else "manual only"


# --- reading the key set ---------------------------------------------------------------------


def _published(now: dt.datetime) -> Q:
    return Q(publish_at__lte=now) & (Q(unpublish_at__isnull=True) | Q(unpublish_at__gt=now))


def _signing(now: dt.datetime) -> Q:
    return Q(activates_at__lte=now) & (Q(retires_at__isnull=True) | Q(retires_at__gt=now))


def _public_keys() -> QuerySet[JwksKey]:
    # Never the private key's column: reading the public set decrypts nothing.
    return JwksKey.objects.defer("private_key_pem")


def jwks_document(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """The JWK Set (RFC 7517 §5) published now: public keys only, the signing key first."""
    now = now or timezone.now()
    jwks = (
        JwksKey.objects.filter(_published(now))
        .order_by("-activates_at", "-pk")
        .values_list("public_jwk", flat=True)
    )
    return {"keys": [dict(jwk) for jwk in jwks]}


def jwks_current_key(*, now: dt.datetime | None = None) -> JwksKey | None:
    """The key that signs now (its public half only is loaded), or None."""
    now = now or timezone.now()
    return _public_keys().filter(_signing(now)).order_by("-activates_at", "-pk").first()


def jwks_next_key(*, now: dt.datetime | None = None) -> JwksKey | None:
    """The key already published that will sign next, or None."""
    now = now or timezone.now()
    return (
        _public_keys()
        .filter(activates_at__gt=now, wiped_at__isnull=True)
        .order_by("activates_at", "pk")
        .first()
    )


@dataclass(frozen=True)
class SigningKey:
    """The private key that signs now, with its kid: never printed, never stored elsewhere."""

    kid: str
    algorithm: str
    private_key_pem: str

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"


def jwks_signing_key(*, now: dt.datetime | None = None) -> SigningKey:
    """The private key that signs now; JwksError("no_signing_key") when there is none."""
    now = now or timezone.now()
    key = JwksKey.objects.filter(_signing(now)).order_by("-activates_at", "-pk").first()
    if key is None or not key.private_key_pem:
        raise JwksError("no_signing_key", NO_KEY_MESSAGE)
    return SigningKey(kid=key.kid, algorithm=key.algorithm, private_key_pem=key.private_key_pem)


@dataclass(frozen=True)
class SignedToken:
    """One Jwks Auth token: the compact JWT (a bearer credential: never shown or stored) and the
    parts a result may show."""

    token: str = field(repr=False)
    kid: str
    header: dict[str, Any]
    claims: dict[str, Any]


def jwks_auth_token(*, connector: Connector, now: dt.datetime | None = None) -> SignedToken:
    """A fresh short-lived JWT for one API request of a Jwks Auth connector.

    Claims: iss, sub, aud (blank: the Base URL), iat, exp (Jwt Expiry Seconds, at most two
    hours), a new jti, and the Additional Claims; header: the current key's kid, alg RS256, and
    the Additional Header Fields. Raises JwksError without a signing key, SigningError for
    claims that cannot be signed (both say what to do).
    """
    key = jwks_signing_key(now=now)
    claims = build_claims(
        issuer=connector.jwt_issuer,
        subject=connector.jwt_subject,
        audience=connector.jwt_audience or connector.base_url,
        ttl_seconds=connector.jwt_ttl_seconds or DEFAULT_TTL_SECONDS,
        extra_claims=parse_json_object(connector.jwt_extra_claims, what="Additional Claims"),
        now=now.timestamp() if now else None,
    )
    headers = parse_json_object(connector.jwt_extra_headers, what="Additional Header Fields")
    headers["kid"] = key.kid  # the key's own, whatever the extra fields say
    token = sign_jwt(
        private_key_pem=key.private_key_pem, algorithm=key.algorithm, claims=claims, headers=headers
    )
    header, shown = decoded_view(token)
    return SignedToken(token=token, kid=key.kid, header=header, claims=shown)


# --- changing the key set --------------------------------------------------------------------


def _new_key_material() -> tuple[str, str, dict[str, Any]]:
    """(kid, private PEM, public JWK) of a fresh RSA 2048 key with a UUID4 kid."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    pem = private.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    kid = str(uuid.uuid4())
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    # RFC 7517 §4.3: "use" and "key_ops" should not both be present; "use" is what verifiers
    # (PyJWKClient, jose libraries, API gateways) look for.
    jwk.pop("key_ops", None)
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    return kid, pem, jwk


def _lock_settings() -> RotationSettings:
    """Hold the settings row for update: rotations (scheduled, pressed, two workers) queue here."""
    JwksSettings.objects.get_or_create(pk=SETTINGS_PK)
    row = JwksSettings.objects.select_for_update().get(pk=SETTINGS_PK)
    return RotationSettings(row.rotation_days, row.grace_hours)


def _create_key(
    *, publish_at: dt.datetime, activates_at: dt.datetime, user: Any, reason: str
) -> JwksKey:
    kid, pem, jwk = _new_key_material()
    return JwksKey.objects.create(
        kid=kid,
        algorithm=ALGORITHM,
        private_key_pem=pem,
        public_jwk=jwk,
        publish_at=publish_at,
        activates_at=activates_at,
        created_by=user,
        reason=reason,
    )


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def jwks_generate(*, user: UserLike, now: dt.datetime | None = None) -> JwksKey:
    """ "Generate JWKS": the first signing key, published and signing at once.

    No token was ever signed before it, so it needs no grace period. Refused while a key signs
    (use "Rotate now", which keeps the grace period).
    """
    now = now or timezone.now()
    actor = acting_user(user)
    with transaction.atomic():
        _lock_settings()
        current = JwksKey.objects.filter(_signing(now)).exists()
        upcoming = JwksKey.objects.filter(activates_at__gt=now, wiped_at__isnull=True).exists()
        if current or upcoming:
            raise JwksError(
                "key_exists",
                'The console already has a signing key. Use "Rotate now" to replace it: the '
                "new key is then published before it signs, so no token fails.",
            )
        key = _create_key(
            publish_at=now, activates_at=now, user=actor, reason=JwksKey.Reason.GENERATE
        )
        audit_record(
            kind="change",
            action="jwks_generate",
            user=actor,
            summary=f"Generated the JWKS signing key {key.kid} (RSA {KEY_SIZE}, {ALGORITHM}).",
            details={"kid": key.kid, "algorithm": ALGORITHM, "key_size": KEY_SIZE},
        )
    return key


@dataclass(frozen=True)
class RotationResult:
    rotated: bool  # a new key was made
    kid: str = ""  # the new key
    previous_kid: str = ""
    activates_at: dt.datetime | None = None
    retired: tuple[str, ...] = ()  # kids unpublished (and wiped) by this run
    reason: str = ""  # why nothing was made, when nothing was


def _rotate(
    *, now: dt.datetime, user: Any, reason: str, settings: RotationSettings
) -> RotationResult:
    """Make the next key: published now, signing after the grace period (or the plan)."""
    current = JwksKey.objects.filter(_signing(now)).order_by("-activates_at", "-pk").first()
    activates_at = now + settings.grace
    if current is not None and reason == JwksKey.Reason.SCHEDULED and settings.rotation_days:
        planned = current.activates_at + dt.timedelta(days=settings.rotation_days)
        activates_at = max(planned, activates_at)
    key = _create_key(publish_at=now, activates_at=activates_at, user=user, reason=reason)
    previous_kid = ""
    if current is not None:
        current.retires_at = activates_at
        current.unpublish_at = activates_at + settings.grace
        current.save(update_fields=["retires_at", "unpublish_at"])
        previous_kid = current.kid
    label = JwksKey.Reason(reason).label
    audit_record(
        kind="change" if reason == JwksKey.Reason.ROTATE_NOW else "system",
        action="jwks_rotate",
        user=user,
        summary=(
            f"{label}: JWKS key {key.kid} published, signing from {activates_at:%Y-%m-%d %H:%M} "
            f"UTC" + (f"; {previous_kid} stops signing then" if previous_kid else "") + "."
        ),
        details={
            "reason": reason,
            "kid": key.kid,
            "previous_kid": previous_kid,
            "publish_at": _iso(now),
            "activates_at": _iso(activates_at),
            "previous_unpublish_at": _iso(current.unpublish_at) if current else None,
            "grace_hours": settings.grace_hours,
        },
    )
    return RotationResult(
        rotated=True, kid=key.kid, previous_kid=previous_kid, activates_at=activates_at
    )


def _wipe_unpublished(*, now: dt.datetime, user: Any) -> tuple[str, ...]:
    """Keys whose grace period is over: wipe the private key, audit it. Idempotent."""
    done = []
    for key in JwksKey.objects.filter(unpublish_at__lte=now, wiped_at__isnull=True).order_by("pk"):
        JwksKey.objects.filter(pk=key.pk).update(private_key_pem="", wiped_at=now)
        audit_record(
            kind="system",
            action="jwks_retire",
            user=user,
            summary=f"JWKS key {key.kid} left the published set; its private key was deleted.",
            details={"kid": key.kid, "unpublish_at": _iso(key.unpublish_at)},
        )
        done.append(key.kid)
    return tuple(done)


def jwks_rotate_now(*, user: UserLike, now: dt.datetime | None = None) -> RotationResult:
    """ "Rotate now": the next key is published now and signs after the grace period.

    Refused while a rotation is already under way (a next key is published and not signing
    yet), so pressing twice makes one key.
    """
    now = now or timezone.now()
    actor = acting_user(user)
    with transaction.atomic():
        settings = _lock_settings()
        if not JwksKey.objects.filter(_signing(now)).exists():
            raise JwksError("no_signing_key", NO_KEY_MESSAGE)
        upcoming = JwksKey.objects.filter(activates_at__gt=now, wiped_at__isnull=True).first()
        if upcoming is not None:
            raise JwksError(
                "rotation_under_way",
                f"A rotation is under way: key {upcoming.kid} is published and signs from "
                f"{upcoming.activates_at:%Y-%m-%d %H:%M} UTC.",
            )
        return _rotate(now=now, user=actor, reason=JwksKey.Reason.ROTATE_NOW, settings=settings)


def jwks_rotate_due(*, now: dt.datetime | None = None) -> RotationResult:
    """The scheduler's run (idempotent): rotate when due, and retire keys past their grace.

    Due means: a key signs, automatic rotation is on, no next key is published yet, and the
    next key's publication time (the current key's start + N days - grace) has come. Running it
    twice, or on two workers at once, makes one key: the settings row is held for update.
    """
    now = now or timezone.now()
    with transaction.atomic():
        settings = _lock_settings()
        user = None  # the scheduler's row is made only when there is something to record
        retired: tuple[str, ...] = ()
        if JwksKey.objects.filter(unpublish_at__lte=now, wiped_at__isnull=True).exists():
            user = scheduler_user()
            retired = _wipe_unpublished(now=now, user=user)
        current = JwksKey.objects.filter(_signing(now)).order_by("-activates_at", "-pk").first()
        if current is None:
            return RotationResult(rotated=False, retired=retired, reason="no signing key")
        if not settings.rotation_days:
            return RotationResult(rotated=False, retired=retired, reason="automatic rotation off")
        if JwksKey.objects.filter(activates_at__gt=now, wiped_at__isnull=True).exists():
            return RotationResult(rotated=False, retired=retired, reason="rotation under way")
        planned = current.activates_at + dt.timedelta(days=settings.rotation_days)
        if now < planned - settings.grace:
            return RotationResult(rotated=False, retired=retired, reason="not due")
        result = _rotate(
            now=now,
            user=user or scheduler_user(),
            reason=JwksKey.Reason.SCHEDULED,
            settings=settings,
        )
        return RotationResult(
            rotated=True,
            kid=result.kid,
            previous_kid=result.previous_kid,
            activates_at=result.activates_at,
            retired=retired,
        )


__all__ = [
    "ALGORITHM",
    "CACHE_MAX_AGE_SECONDS",
    "JWKS_PATH",
    "JwksError",
    "RotationResult",
    "RotationSettings",
    "SignedToken",
    "SigningKey",
    "jwks_auth_token",
    "jwks_current_key",
    "jwks_document",
    "jwks_generate",
    "jwks_next_key",
    "jwks_rotate_due",
    "jwks_rotate_now",
    "jwks_settings",
    "jwks_settings_errors",
    "jwks_settings_set",
    "jwks_signing_key",
]
