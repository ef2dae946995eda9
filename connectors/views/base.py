"""What every connector view shares: the permission check that records refusals."""

from __future__ import annotations

import contextlib
from typing import Any

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import HttpRequest, HttpResponseRedirect

from audit.services import AuditWriteError, audit_record

# Every change is recorded; when the record cannot be written the change is not made either.
AUDIT_FAILED_MESSAGE = (
    "Nothing was saved: the change could not be recorded in the audit log. Try again; if it "
    "keeps failing, tell an administrator (the server log has the details)."
)


class ConnectorPermissionMixin(PermissionRequiredMixin):
    """Checks a permission, answers 403, and records the refusal in the audit log."""

    raise_exception = True
    # Set by View.setup(); declared for the type checker, which sees only the mixin.
    request: HttpRequest
    kwargs: dict[str, Any]

    def handle_no_permission(self) -> HttpResponseRedirect:
        user = self.request.user
        if user.is_authenticated:
            with contextlib.suppress(AuditWriteError):  # logged loudly by audit_record itself
                self._record_denial(user)
        return super().handle_no_permission()

    def _record_denial(self, user: Any) -> None:
        audit_record(
            kind="denial",
            action="permission_denied",
            user=user,
            connector_name=self.kwargs.get("name", ""),
            summary=f"{user.get_username()} may not {self.request.method} {self.request.path}",
            details={"permission": list(self.get_permission_required())},
        )
