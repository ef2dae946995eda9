"""System identities: who the audit log names when nobody pressed the button.

The scheduler is a real user row, so runs and audit records name it like any user, but it can
never sign in: its password is unusable and it is inactive (Django's backends refuse inactive
users). It is created on first use.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from audit.actors import SYSTEM_ACTORS, actor_label

SCHEDULER_USERNAME = "scheduler"  # audit.actors labels it "Scheduler (system)"


def scheduler_user() -> Any:
    """The scheduler's user row, made (inactive, no usable password) the first time."""
    model = get_user_model()
    user, created = model.objects.get_or_create(
        **{model.USERNAME_FIELD: SCHEDULER_USERNAME}, defaults={"is_active": False}
    )
    if created or user.has_usable_password() or user.is_active:
        # Also closes an account someone made under this name by hand: no login, ever.
        user.set_unusable_password()
        user.is_active = False
        user.save()
    return user


def is_system_user(user: Any) -> bool:
    """True for a system identity (no person: not held to the per-user test rate limit)."""
    return (
        user is not None
        and not getattr(user, "is_active", True)
        and getattr(user, "get_username", lambda: "")() in SYSTEM_ACTORS
        and not user.has_usable_password()
    )


def system_label(username: str) -> str:
    """How the audit log shows a username: "Scheduler (system)" for the scheduler."""
    return actor_label(username)
