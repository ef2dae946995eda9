"""What every connector view shares: permission first, then input checks, then the lookup.

A refusal is answered before anything is looked up, so it never tells whether a name exists,
and it is recorded in the audit log. A request the view cannot serve because of its input or
of the server's configuration gets a page in the console layout that says what to do.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.template.response import SimpleTemplateResponse

from accounts.roles import refusal_mark_permissions
from audit.services import AuditWriteError, audit_record
from audit.views import refusal_mark_recorded, refusal_request, refusal_text
from connectors.fields import SecretDecryptionError

logger = logging.getLogger(__name__)

# Every change is recorded; when the record cannot be written the change is not made either.
AUDIT_FAILED_MESSAGE = (
    "Nothing was saved: the change could not be recorded in the audit log. Try again; if it "
    "keeps failing, tell an administrator (the server log has the details)."
)

NUL_IN_REQUEST = (
    "The address contains a NUL character (%00). No connector name or search can contain one, "
    "so nothing was looked up. Check the link you followed."
)
SECRETS_UNREADABLE_STATUS = 503
SECRETS_UNREADABLE_WHAT_TO_DO = (
    "This is the server's configuration, not this connector's settings: tell an administrator. "
    "'python manage.py check' reports it as connectors.E001, and 'python manage.py "
    "connectors_check_secrets' lists every stored secret the key cannot read."
)


def request_has_nul(request: HttpRequest, kwargs: dict[str, Any]) -> bool:
    """Whether the URL's values or its query carry a NUL (no database stores one in text)."""
    values = [str(v) for v in kwargs.values()]
    values += [item for key, items in request.GET.lists() for item in (key, *items)]
    return any("\x00" in value for value in values)


def problem_page(
    request: HttpRequest, *, title: str, message: str, what_to_do: str = "", status: int
) -> HttpResponse:
    """A page in the console layout that says what is wrong and what to do."""
    context = {"title": title, "message": message, "what_to_do": what_to_do}
    return render(request, "connectors/problem.html", context, status=status)


class ConnectorPermissionMixin(PermissionRequiredMixin):
    """Checks a permission, answers 403, and records the refusal in the audit log."""

    raise_exception = True
    # Set by View.setup(); declared for the type checker, which sees only the mixin.
    request: HttpRequest
    kwargs: dict[str, Any]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # Permission first: a refusal must not depend on, nor reveal, what the URL names.
        if not self.has_permission():
            return self.handle_no_permission()
        if request_has_nul(request, kwargs):
            return problem_page(request, title="Bad request", message=NUL_IN_REQUEST, status=400)
        try:
            # The rest of the chain, past PermissionRequiredMixin (which would check again).
            rest: Any = super(PermissionRequiredMixin, self)  # the mixin alone has no dispatch
            response = rest.dispatch(request, *args, **kwargs)
            if isinstance(response, SimpleTemplateResponse):
                # Rendered here, so a secret its template reads is still inside this try.
                response.render()
            return response
        except SecretDecryptionError as exc:
            logger.error("%s %r: %s", request.method, request.path, exc)
            return self.secrets_unreadable(exc)

    def secrets_unreadable(self, exc: SecretDecryptionError) -> HttpResponse:
        """The page shown when FIELD_ENCRYPTION_KEY cannot read a stored secret."""
        return problem_page(
            self.request,
            title="Stored secrets cannot be read",
            message=str(exc),
            what_to_do=SECRETS_UNREADABLE_WHAT_TO_DO,
            status=SECRETS_UNREADABLE_STATUS,
        )

    def handle_no_permission(self) -> HttpResponseRedirect:
        user = self.request.user
        # The 403 page names the permission and the roles that hold it.
        refusal_mark_permissions(self.request, self.get_permission_required())
        if user.is_authenticated:
            with contextlib.suppress(AuditWriteError):  # logged loudly by audit_record itself
                self._record_denial(user)
            refusal_mark_recorded(self.request)
        return super().handle_no_permission()

    def _record_denial(self, user: Any) -> None:
        audit_record(
            kind="denial",
            action="permission_denied",
            user=user,
            connector_name=refusal_text(self.kwargs.get("name", "")),
            summary=refusal_text(
                f"{user.get_username()} may not {self.request.method} {self.request.path}"
            ),
            details={
                "permission": list(self.get_permission_required()),
                **refusal_request(self.request),
            },
        )
