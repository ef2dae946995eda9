"""Import and export of the inventory as a JSON file."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters

from audit.services import AuditWriteError
from connectors.forms import ExportForm, ImportForm
from connectors.transfer import (
    ImportFileError,
    ImportResult,
    connectors_export,
    connectors_import_text,
)
from connectors.views.base import AUDIT_FAILED_MESSAGE, ConnectorPermissionMixin

MAX_IMPORT_BYTES = 5 * 1024 * 1024


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
            return connectors_import_text(text=upload.read(), user=self.request.user)
        except ImportFileError as exc:
            form.add_error("file", str(exc))
        except AuditWriteError:
            form.add_error(None, AUDIT_FAILED_MESSAGE)
        return None


class ConnectorExportView(ConnectorPermissionMixin, View):
    """Download every connector as JSON (POST only, so a link cannot trigger it)."""

    permission_required = "connectors.import_connectors"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "connectors/connector_export.html", {"form": ExportForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ExportForm(request.POST)
        form.is_valid()  # a single checkbox: always valid, absent means False
        payload = connectors_export(
            include_secrets=form.cleaned_data["include_secrets"], user=request.user
        )
        response = HttpResponse(
            json.dumps(payload, indent=2, ensure_ascii=False), content_type="application/json"
        )
        response["Content-Disposition"] = 'attachment; filename="connectors.json"'
        response["Cache-Control"] = "no-store"
        return response
