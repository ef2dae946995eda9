"""Import and export of the inventory as a JSON file."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django.contrib import messages
from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters

from accounts.roles import refusal_mark_permissions
from audit.services import AuditWriteError, audit_record
from audit.views import refusal_mark_recorded, refusal_request
from connectors.forms import ExportForm, ImportForm
from connectors.transfer import (
    ImportFileError,
    ImportResult,
    PassphraseNeeded,
    PassphraseWrong,
    connectors_export,
    connectors_import_text,
)
from connectors.views.base import AUDIT_FAILED_MESSAGE, ConnectorPermissionMixin

MAX_IMPORT_BYTES = 5 * 1024 * 1024
EXPORT_SECRETS_PERMISSION = "connectors.export_secrets"
EXPORT_AUDIT_FAILED_MESSAGE = (
    "Nothing was exported: the export could not be recorded in the audit log. Try again; if it "
    "keeps failing, tell an administrator (the server log has the details)."
)
PASSWORD_REFUSED_MESSAGE = (
    "Your password was not accepted, so nothing was exported. Type the password you sign in "
    "with; repeated failures lock sign-in, as on the sign-in page."
)


# Posted values include secrets: keep them out of error reports and the debug page.
@method_decorator(sensitive_post_parameters(), name="dispatch")
class ConnectorImportView(ConnectorPermissionMixin, View):
    """Upload a JSON file of connectors and apply it all or nothing."""

    # An import creates and edits connectors, so it needs those permissions too.
    permission_required = (
        "connectors.import_connectors",
        "connectors.add_connector",
        "connectors.change_connector",
    )
    template_name = "connectors/connector_import.html"
    max_bytes = MAX_IMPORT_BYTES

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": ImportForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ImportForm(request.POST, request.FILES)
        context: dict[str, Any] = {"form": form}
        result = self._import(form) if form.is_valid() else None
        if result is not None and result.ok:
            messages.success(
                request,
                f"Imported: {len(result.created)} created, {len(result.updated)} "
                f"updated, {len(result.unchanged)} unchanged.",
            )
            return redirect("connectors:list")
        if result is not None:
            context["import_errors"] = result.errors
        return render(request, self.template_name, context, status=400)

    def _import(self, form: ImportForm) -> ImportResult | None:
        """Apply the uploaded file; None when it could not be (the form says why)."""
        upload = form.cleaned_data["file"]
        if upload.size > self.max_bytes:
            form.add_error("file", "The file is larger than 5 MiB.")
            return None
        try:
            return connectors_import_text(
                text=upload.read(),
                user=self.request.user,
                passphrase=form.cleaned_data["passphrase"] or None,
            )
        except (PassphraseNeeded, PassphraseWrong) as exc:
            form.add_error("passphrase", str(exc))
        except ImportFileError as exc:
            form.add_error("file", str(exc))
        except AuditWriteError:
            form.add_error(None, AUDIT_FAILED_MESSAGE)
        return None


# The password and the passphrases are posted here.
@method_decorator(sensitive_post_parameters(), name="dispatch")
class ConnectorExportView(ConnectorPermissionMixin, View):
    """Download every connector as JSON (POST only, so a link cannot trigger it).

    Secrets need their own permission (no role has it), the user's password typed again, and
    a passphrase the file is encrypted with.
    """

    permission_required = "connectors.import_connectors"
    template_name = "connectors/connector_export.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page(ExportForm(can_export_secrets=self._can_export_secrets()))

    def post(self, request: HttpRequest) -> HttpResponse:
        allowed = self._can_export_secrets()
        if ExportForm.asks_for_secrets(request.POST) and not allowed:
            self._record_refusal(
                "permission_denied",
                f"{request.user.get_username()} may not export secrets",
                {"permission": [EXPORT_SECRETS_PERMISSION]},
            )
            refusal_mark_permissions(request, [EXPORT_SECRETS_PERMISSION])
            raise PermissionDenied
        form = ExportForm(request.POST, can_export_secrets=allowed)
        if not form.is_valid():
            return self._page(form, status=400)
        include_secrets = bool(form.cleaned_data.get("include_secrets"))
        if include_secrets and not self._password_confirmed(form.cleaned_data["password"]):
            form.add_error("password", PASSWORD_REFUSED_MESSAGE)
            return self._page(form, status=400)
        try:
            payload = connectors_export(
                include_secrets=include_secrets,
                user=request.user,
                passphrase=form.cleaned_data["passphrase"] if include_secrets else None,
            )
        except AuditWriteError:
            form.add_error(None, EXPORT_AUDIT_FAILED_MESSAGE)
            return self._page(form, status=503)
        response = HttpResponse(
            json.dumps(payload, indent=2, ensure_ascii=False), content_type="application/json"
        )
        filename = "connectors.encrypted.json" if include_secrets else "connectors.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response

    def _page(self, form: ExportForm, status: int = 200) -> HttpResponse:
        context = {"form": form, "can_export_secrets": self._can_export_secrets()}
        return render(self.request, self.template_name, context, status=status)

    def _can_export_secrets(self) -> bool:
        return bool(self.request.user.has_perm(EXPORT_SECRETS_PERMISSION))

    def _password_confirmed(self, password: str) -> bool:
        """The signed-in user's password, checked afresh; a wrong one is recorded.

        authenticate() goes through django-axes, so failures here count towards the same
        lock-out as on the sign-in page, and each is also recorded there as a failed sign-in.
        """
        user = self.request.user
        confirmed = authenticate(self.request, username=user.get_username(), password=password)
        if confirmed is not None and confirmed.pk == user.pk:
            return True
        self._record_refusal(
            "export_refused",
            f"{user.get_username()} was refused an export with secrets: wrong password",
            {"reason": "password not confirmed"},
        )
        return False

    def _record_refusal(self, action: str, summary: str, details: dict[str, Any]) -> None:
        # The refusal stands even when it cannot be recorded; audit_record logged that loudly.
        with contextlib.suppress(AuditWriteError):
            audit_record(
                kind="denial",
                action=action,
                user=self.request.user,
                summary=summary,
                details={**details, **refusal_request(self.request)},
            )
        # The 403 that may follow must not be recorded a second time by handler403.
        refusal_mark_recorded(self.request)
