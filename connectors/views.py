"""Views for the connector inventory: thin glue between requests, forms and services."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db import IntegrityError
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import DetailView, ListView

from audit.models import TestRun
from audit.selectors import audit_events_for_connector
from audit.services import AuditWriteError, audit_record
from connectors.connection_test import TestOutcome, TestRateLimited, connector_test
from connectors.forms import ConnectorForms, connector_forms
from connectors.models import AuthConfig, ClientAuthentication, Connector
from connectors.services import (
    ConcurrentEditError,
    connector_clone_initial,
    connector_create,
    connector_delete,
    connector_list_attach_last_tests,
    connector_list_queryset,
    connector_update,
)
from connectors.transfer import (
    ImportFileError,
    PinRefused,
    connector_pin_client_authentication,
    connectors_export,
    connectors_import_text,
)

# Every change is recorded; when the record cannot be written the change is not made either.
AUDIT_FAILED_MESSAGE = (
    "Nothing was saved: the change could not be recorded in the audit log. Try again; if it "
    "keeps failing, tell an administrator (the server log has the details)."
)

SORTS = {
    "name": "name",
    "-name": "-name",
    "auth": "auth_config",
    "-auth": "-auth_config",
    "updated": "updated_at",
    "-updated": "-updated_at",
    "tested": "last_test_at",
    "-tested": "-last_test_at",
}


class ConnectorPermissionMixin(PermissionRequiredMixin):
    """Checks a permission, answers 403, and records the refusal in the audit log."""

    raise_exception = True

    def handle_no_permission(self) -> HttpResponse:
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


class ConnectorListView(ConnectorPermissionMixin, ListView):
    """The inventory: search, filter, sort and page through connectors."""

    permission_required = "connectors.view_connector"
    template_name = "connectors/connector_list.html"
    context_object_name = "connectors"

    def get_paginate_by(self, queryset: QuerySet) -> int:
        return settings.CONNECTORS_PAGE_SIZE

    def get_queryset(self) -> QuerySet[Connector]:
        params = self.request.GET
        sort = SORTS.get(params.get("sort", "name"), "name")
        queryset = connector_list_queryset(sort_by_last_test="last_test_at" in sort)
        query = params.get("q", "").strip()
        if query:
            queryset = queryset.filter(
                Q(name__icontains=query)
                | Q(display_name__icontains=query)
                | Q(base_url__icontains=query)
            )
        if params.get("auth") in AuthConfig.values:
            queryset = queryset.filter(auth_config=params["auth"])
        if params.get("enabled") in {"yes", "no"}:
            queryset = queryset.filter(enabled=params["enabled"] == "yes")
        field = F(sort.lstrip("-"))
        # Connectors never tested go last either way, as people scanning for failures expect.
        order = field.desc(nulls_last=True) if sort.startswith("-") else field.asc(nulls_last=True)
        return queryset.order_by(order, "name" if "name" not in sort else "pk")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        connector_list_attach_last_tests(context["connectors"])
        query = self.request.GET.copy()
        query.pop("page", None)
        sortless = query.copy()
        sortless.pop("sort", None)
        context.update(
            auth_choices=AuthConfig.choices,
            current_sort=self.request.GET.get("sort", "name"),
            query_string=query.urlencode(),
            sortless_query=sortless.urlencode(),
            filters_active=any(self.request.GET.get(k) for k in ("q", "auth", "enabled")),
        )
        return context


class ConnectorDetailView(ConnectorPermissionMixin, DetailView):
    """One connector: its settings (secrets shown only as stored), tests and history."""

    permission_required = "connectors.view_connector"
    template_name = "connectors/connector_detail.html"
    slug_field = "name"
    slug_url_kwarg = "name"
    context_object_name = "connector"

    def get_queryset(self) -> QuerySet[Connector]:
        return Connector.objects.select_related("created_by", "updated_by").prefetch_related(
            "params"
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        connector: Connector = self.object
        context["recent_runs"] = TestRun.objects.filter(connector_id=connector.pk)[:5]
        context["can_test"] = self.request.user.has_perm("connectors.test_connector")
        context["can_change"] = self.request.user.has_perm("connectors.change_connector")
        context["test_timeout"] = int(settings.CONNECTORS_TOKEN_TIMEOUT)
        if self.request.user.has_perm("audit.view_auditevent"):
            context["audit_events"] = audit_events_for_connector(connector.pk)
        return context


# Posted values include secrets: keep them out of error reports and the debug page.
@method_decorator(sensitive_post_parameters(), name="dispatch")
class ConnectorFormView(ConnectorPermissionMixin, View):
    """Shared GET/POST handling of the connector form and its formsets."""

    template_name = "connectors/connector_form.html"
    mode = "new"

    def build(self, data: Any = None) -> ConnectorForms:
        raise NotImplementedError

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self.render(self.build())

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        bundle = self.build(request.POST)
        if not bundle.is_valid():
            return self.render(bundle, status=400)
        try:
            connector = self.save(bundle)
        except ConcurrentEditError as exc:
            bundle.form.add_error(
                None,
                forms.ValidationError(
                    bundle.form.error_messages["stale"],
                    code="stale",
                    params={
                        "user": exc.updated_by,
                        "when": date_format(localtime(exc.updated_at), "DATETIME_FORMAT"),
                    },
                ),
            )
            return self.render(bundle, status=409)
        except AuditWriteError:
            bundle.form.add_error(None, AUDIT_FAILED_MESSAGE)
            return self.render(bundle, status=503)
        except IntegrityError:  # another admin created the same name a moment ago
            bundle.form.add_error("name", bundle.form.error_messages["name_taken"])
            return self.render(bundle, status=409)
        for warning in bundle.warnings:
            messages.warning(request, warning)
        if getattr(bundle, "unchanged", False):
            messages.info(request, "Nothing changed.")
        else:
            messages.success(request, f"Saved {connector.name}.")
        return HttpResponseRedirect(connector.get_absolute_url())

    def save(self, bundle: ConnectorForms) -> Connector:
        return connector_create(
            connector=bundle.form.instance, rows=bundle.rows(), user=self.request.user
        )

    def render(self, bundle: ConnectorForms, status: int = 200) -> HttpResponse:
        context = {
            "form": bundle.form,
            "headers_formset": bundle.headers,
            "data_formset": bundle.data,
            "mode": self.mode,
            "connector": getattr(self, "connector", None),
            "can_test": self.request.user.has_perm("connectors.test_connector"),
            "test_timeout": int(settings.CONNECTORS_TOKEN_TIMEOUT),
        }
        return render(self.request, self.template_name, context, status=status)


class ConnectorCreateView(ConnectorFormView):
    """Create a connector."""

    permission_required = "connectors.add_connector"
    mode = "new"

    def build(self, data: Any = None) -> ConnectorForms:
        return connector_forms(data=data)


class ConnectorCloneView(ConnectorFormView):
    """Create a connector from a copy of another, secrets left for the user to enter."""

    permission_required = "connectors.add_connector"
    mode = "clone"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.source = get_object_or_404(Connector, name=kwargs["name"])
        return super().dispatch(request, *args, **kwargs)

    def build(self, data: Any = None) -> ConnectorForms:
        initial, rows = connector_clone_initial(source=self.source)
        return connector_forms(data=data, initial=initial, initial_rows=rows)

    def save(self, bundle: ConnectorForms) -> Connector:
        return connector_create(
            connector=bundle.form.instance,
            rows=bundle.rows(),
            user=self.request.user,
            action="clone",
            source_name=self.source.name,
        )


class ConnectorEditView(ConnectorFormView):
    """Edit a connector; refuses to overwrite someone else's newer save."""

    permission_required = "connectors.change_connector"
    mode = "edit"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.connector = get_object_or_404(Connector, name=kwargs["name"])
        return super().dispatch(request, *args, **kwargs)

    def build(self, data: Any = None) -> ConnectorForms:
        return connector_forms(data=data, instance=self.connector)

    def save(self, bundle: ConnectorForms) -> Connector:
        version = bundle.form.cleaned_data.get("version")
        changes = connector_update(
            connector=bundle.form.instance,
            rows=bundle.rows(),
            user=self.request.user,
            expected_version=version,
        )
        bundle.unchanged = not changes
        return bundle.form.instance


class ConnectorDeleteView(ConnectorPermissionMixin, View):
    """Ask for confirmation, then delete a connector."""

    permission_required = "connectors.delete_connector"

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        connector = get_object_or_404(Connector, name=name)
        return render(request, "connectors/connector_confirm_delete.html", {"connector": connector})

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        connector = get_object_or_404(Connector, name=name)
        try:
            connector_delete(connector=connector, user=request.user)
        except AuditWriteError:
            messages.error(request, AUDIT_FAILED_MESSAGE)
            return redirect(connector.get_absolute_url())
        messages.success(request, f"Deleted {name}. Its history stays in the audit log.")
        return redirect("connectors:list")


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Connectors file (JSON)",
        help_text="The format of connectors_export. Connectors are matched by name; secrets the "
        "file leaves empty keep their stored values. Nothing changes unless every connector "
        "in the file is valid.",
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
    max_bytes = 5 * 1024 * 1024

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": ImportForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ImportForm(request.POST, request.FILES)
        context: dict[str, Any] = {"form": form}
        if form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > self.max_bytes:
                form.add_error("file", "The file is larger than 5 MiB.")
            else:
                try:
                    result = connectors_import_text(text=upload.read(), user=request.user)
                except ImportFileError as exc:
                    form.add_error("file", str(exc))
                except AuditWriteError:
                    form.add_error(None, AUDIT_FAILED_MESSAGE)
                else:
                    if result.ok:
                        messages.success(
                            request,
                            f"Imported: {len(result.created)} created, {len(result.updated)} "
                            f"updated, {len(result.unchanged)} unchanged.",
                        )
                        return redirect("connectors:list")
                    context["import_errors"] = result.errors
        return render(request, self.template_name, context, status=400)


class ExportForm(forms.Form):
    include_secrets = forms.BooleanField(
        required=False,
        label="Include secrets",
        help_text="Writes client secrets, passwords, keys and tokens in plain text into the "
        "file. The export is recorded in the audit log. Leave unticked unless you are moving "
        "connectors to another installation.",
    )


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


class ConnectorTestMixin(ConnectorPermissionMixin):
    """Runs a connection test and answers with the result panel (a fragment for fetch)."""

    permission_required = "connectors.test_connector"

    def respond(
        self,
        outcome: TestOutcome | None,
        *,
        connector: Connector | None,
        error: str = "",
        field_errors: list[tuple[str, str]] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        context = {
            "outcome": outcome,
            "run": outcome.run if outcome else None,
            "attempts": outcome.attempts if outcome else [],
            "connector": connector,
            "error": error,
            "field_errors": field_errors or [],
            # Pinning saves the connector, so it is offered only for a test of what is saved;
            # a form test offers to set the field in the form instead.
            "can_pin": bool(
                outcome
                and outcome.pin_offer
                and outcome.run.source != TestRun.Source.FORM
                and connector is not None
                and connector.pk
                and self.request.user.has_perm("connectors.change_connector")
            ),
        }
        if self.request.headers.get("X-Requested-With") == "fetch":
            return render(self.request, "connectors/_test_result.html", context, status=status)
        return render(self.request, "connectors/testrun_result.html", context, status=status)

    def run_test(self, connector: Connector, *, source: str, rows: Any = None) -> HttpResponse:
        try:
            outcome = connector_test(
                connector=connector, user=self.request.user, source=source, rows=rows
            )
        except TestRateLimited as exc:
            return self.respond(None, connector=connector, error=str(exc), status=429)
        except AuditWriteError:
            return self.respond(
                None,
                connector=connector,
                error="The test ran, but its record could not be written to the audit log. "
                "Nothing is shown until it can be recorded; tell an administrator.",
                status=500,
            )
        return self.respond(outcome, connector=connector)


class ConnectorTestView(ConnectorTestMixin, View):
    """Test a saved connector."""

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        connector = get_object_or_404(Connector, name=name)
        return self.run_test(connector, source=TestRun.Source.SAVED)


# Posted values include secrets: keep them out of error reports and the debug page.
@method_decorator(sensitive_post_parameters(), name="dispatch")
class ConnectorFormTestView(ConnectorTestMixin, View):
    """Test the unsaved values of the connector form; nothing is saved."""

    def get_permission_required(self) -> tuple[str, ...]:
        # Only someone who may save these values may test them: the test sends stored
        # secrets to the URLs in the form.
        editing = "name" in self.kwargs
        return (
            "connectors.test_connector",
            "connectors.change_connector" if editing else "connectors.add_connector",
        )

    def post(self, request: HttpRequest, name: str | None = None) -> HttpResponse:
        stored = get_object_or_404(Connector, name=name) if name else None
        data = request.POST.copy()
        if stored is not None:
            data["version"] = str(stored.version)  # a test is not a save: skip the stale check
        bundle = connector_forms(data=data, instance=stored)
        if not bundle.is_valid():
            return self.respond(
                None,
                connector=stored,
                error="Fix the form before testing:",
                field_errors=bundle.error_list(),
                status=400,
            )
        connector = bundle.form.instance
        if not connector.name:
            connector.name = bundle.form.cleaned_data.get("name") or "unsaved"
        return self.run_test(connector, source=TestRun.Source.FORM, rows=bundle.rows())


class ConnectorPinView(ConnectorPermissionMixin, View):
    """Pin the client authentication method that a test found to work."""

    permission_required = "connectors.change_connector"

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        connector = get_object_or_404(Connector, name=name)
        method = request.POST.get("method", "")
        label = dict(ClientAuthentication.choices).get(method)
        version = request.POST.get("version", "")
        if not method or label is None or not version.isdigit():
            messages.error(request, "Run the test again, then pin the method it found.")
            return redirect(connector.get_absolute_url())
        try:
            connector_pin_client_authentication(
                connector=connector, method=method, user=request.user, tested_version=int(version)
            )
        except PinRefused as exc:
            messages.error(request, f"Not pinned: {exc}")
        except ConcurrentEditError:
            messages.error(request, "Not pinned: the connector changed meanwhile. Test again.")
        except AuditWriteError:
            messages.error(request, AUDIT_FAILED_MESSAGE)
        else:
            messages.success(request, f"Oauth2 Client Authentication is now: {label}.")
        return redirect(connector.get_absolute_url())
