"""What the pages show of the console's key set.

Each key's state, the rotation ahead, and the dashboard's warnings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from connectors.jwks import (
    RotationSettings,
    _public_keys,
    jwks_current_key,
    jwks_next_key,
    jwks_settings,
)
from connectors.models import AuthConfig, Connector, JwksKey


class KeyState:
    NEXT = "next"
    CURRENT = "current"
    PREVIOUS = "previous"  # stopped signing, still published (grace)
    RETIRED = "retired"  # unpublished; private key wiped

    LABELS = {NEXT: "Next", CURRENT: "Current", PREVIOUS: "Previous", RETIRED: "Retired"}


def key_state(key: JwksKey, now: dt.datetime) -> str:
    if key.activates_at > now:
        return KeyState.NEXT
    if key.retires_at is None or key.retires_at > now:
        return KeyState.CURRENT
    if key.unpublish_at is None or key.unpublish_at > now:
        return KeyState.PREVIOUS
    return KeyState.RETIRED


@dataclass(frozen=True)
class KeyRow:
    kid: str
    state: str
    state_label: str
    published: bool
    created_at: dt.datetime
    publish_at: dt.datetime
    activates_at: dt.datetime
    retires_at: dt.datetime | None
    unpublish_at: dt.datetime | None
    reason: str
    created_by: str


@dataclass(frozen=True)
class JwksStatus:
    """What the pages show about the key set: never a private key."""

    current_kid: str
    next_kid: str
    next_rotation_at: dt.datetime | None  # when the next key starts signing (scheduled or begun)
    next_publish_at: dt.datetime | None  # when that next key is (or was) published
    settings: RotationSettings
    keys: list[KeyRow]

    @property
    def has_key(self) -> bool:
        return bool(self.current_kid)


def jwks_status(*, now: dt.datetime | None = None, limit: int = 20) -> JwksStatus:
    """The key set as the pages show it: current and next kid, the next rotation, recent keys."""
    now = now or timezone.now()
    settings = jwks_settings()
    current = jwks_current_key(now=now)
    upcoming = jwks_next_key(now=now)
    rotation_at: dt.datetime | None = None
    publish_at: dt.datetime | None = None
    if upcoming is not None:
        rotation_at, publish_at = upcoming.activates_at, upcoming.publish_at
    elif current is not None and settings.rotation_days:
        rotation_at = current.activates_at + dt.timedelta(days=settings.rotation_days)
        publish_at = rotation_at - settings.grace
    rows = [
        KeyRow(
            kid=key.kid,
            state=(state := key_state(key, now)),
            state_label=KeyState.LABELS[state],
            published=key.publish_at <= now
            and (key.unpublish_at is None or key.unpublish_at > now),
            created_at=key.created_at,
            publish_at=key.publish_at,
            activates_at=key.activates_at,
            retires_at=key.retires_at,
            unpublish_at=key.unpublish_at,
            reason=key.get_reason_display(),
            created_by=key.created_by.get_username() if key.created_by else "",
        )
        for key in _public_keys()
        .select_related("created_by")
        .order_by("-activates_at", "-pk")[:limit]
    ]
    return JwksStatus(
        current_kid=current.kid if current else "",
        next_kid=upcoming.kid if upcoming else "",
        next_rotation_at=rotation_at,
        next_publish_at=publish_at,
        settings=settings,
        keys=rows,
    )


# The dashboard warns this many days before the signing key changes.
ROTATION_NOTICE_DAYS = 7


@dataclass(frozen=True)
class JwksFleet:
    connectors: int  # how many connectors use Jwks Auth
    status: JwksStatus
    rotates_soon: bool


def jwks_fleet_status(*, now: dt.datetime | None = None) -> JwksFleet | None:
    """What the dashboard says about Jwks Auth; None when no connector uses it and no key exists.

    It warns when Jwks Auth connectors have no signing key (every request of theirs fails), and
    when the key changes within ROTATION_NOTICE_DAYS (an API that pins a key must take the next).
    Four queries, whatever the inventory's size.
    """
    now = now or timezone.now()
    users = Connector.objects.filter(auth_config=AuthConfig.JWKS_AUTH).count()
    status = jwks_status(now=now, limit=0)
    if not users and not status.has_key:
        return None
    soon = status.next_rotation_at is not None and status.next_rotation_at - now <= dt.timedelta(
        days=ROTATION_NOTICE_DAYS
    )
    return JwksFleet(connectors=users, status=status, rotates_soon=soon)
