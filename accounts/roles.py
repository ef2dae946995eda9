"""The roles (permission groups) a refused user would need: what the 403 page tells them.

Roles are Django groups created by data migrations (README "Roles"); their names are read from
the database rather than copied here, so a group an administrator adds is named too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models import Count, Q
from django.http import HttpRequest

# Set on a request by the view that refused it: the permissions it required (app.codename).
REFUSED_PERMISSIONS = "refused_permissions"


def refusal_mark_permissions(request: HttpRequest, permissions: Iterable[str]) -> None:
    """Tell the 403 page which permissions the refused request needed."""
    setattr(request, REFUSED_PERMISSIONS, tuple(permissions))


def _split(permission: str) -> tuple[str, str]:
    app_label, _, codename = permission.partition(".")
    return app_label, codename


def roles_granting(permissions: Iterable[str]) -> list[str]:
    """The groups that hold every one of `permissions`, the least powerful first."""
    groups = Group.objects.all()
    for permission in permissions:
        app_label, codename = _split(permission)
        groups = groups.filter(
            permissions__content_type__app_label=app_label, permissions__codename=codename
        )
    return list(
        Group.objects.filter(pk__in=groups.values("pk"))
        .annotate(size=Count("permissions"))
        .order_by("size", "name")
        .values_list("name", flat=True)
    )


def permission_names(permissions: Iterable[str]) -> list[str]:
    """Each permission's readable name ("Can change connector"), in the order given."""
    wanted = [_split(p) for p in permissions]
    if not wanted:
        return []
    query = Q()
    for app_label, codename in wanted:
        query |= Q(content_type__app_label=app_label, codename=codename)
    names = {
        (p.content_type.app_label, p.codename): p.name
        for p in Permission.objects.filter(query).select_related("content_type")
    }
    return [names.get(key, ".".join(key)) for key in wanted]


@dataclass
class Refusal:
    """What the 403 page says: what was needed, who has it, and the user's own roles."""

    permissions: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    your_roles: list[str] = field(default_factory=list)
    superuser_only: bool = False


def refusal_explained(request: HttpRequest) -> Refusal:
    """The refusal of `request` in words, from the permissions its view said it required."""
    required: tuple[str, ...] = getattr(request, REFUSED_PERMISSIONS, ())
    user: Any = getattr(request, "user", None)
    your_roles: list[str] = []
    if user is not None and user.is_authenticated:
        your_roles = list(user.groups.order_by("name").values_list("name", flat=True))
    if not required:
        return Refusal(your_roles=your_roles)
    roles = roles_granting(required)
    return Refusal(
        permissions=permission_names(required),
        roles=roles,
        your_roles=your_roles,
        superuser_only=not roles,
    )
