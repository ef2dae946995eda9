"""The pages' permission matrix, per endpoint and method; every refusal is audited."""

from __future__ import annotations

import contextlib
from typing import Any

from rest_framework.permissions import BasePermission

from audit.services import AuditWriteError, audit_record
from audit.views import refusal_request, refusal_text


class RolePermission(BasePermission):
    """The view's `required_permissions[method]` (Django permissions), checked before lookup.

    Checked in DRF's initial(), before the handler looks anything up, so a refusal neither
    depends on nor reveals whether the named connector exists.
    """

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        required = tuple(getattr(view, "required_permissions", {}).get(request.method, ()))
        if request.method == "OPTIONS" or user.has_perms(required):
            return True
        record_refusal(request, view, required)
        return False


def record_refusal(
    request: Any, view: Any, required: tuple[str, ...], *, action: str = "permission_denied"
) -> None:
    """A refused request, in the audit log (the refusal stands regardless)."""
    user = request.user if request.user.is_authenticated else None
    with contextlib.suppress(AuditWriteError):  # audit_record logged it loudly
        audit_record(
            kind="denial",
            action=action,
            user=user,
            connector_name=refusal_text(str(view.kwargs.get("name", ""))[:64]),
            summary=refusal_text(
                f"{user.get_username() if user else 'anonymous'} may not "
                f"{request.method} {request.path}"
            ),
            details={"permission": list(required), **refusal_request(request)},
        )
