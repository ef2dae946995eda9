"""Creating, cloning, editing and deleting a connector."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters

from audit.ids import id_from_text
from audit.services import AuditWriteError
from connectors.authorization_code import redirect_uri_for
from connectors.domain import TYPED_SECRET_FIELDS
from connectors.forms import ConnectorForms, connector_forms
from connectors.forms.carry import CARRY_SECONDS, TOKEN_FIELD, SecretCarry
from connectors.models import Connector
from connectors.selectors import connector_signing_key_help
from connectors.services import (
    ConcurrentEditError,
    KeyGenerationRefused,
    connector_clone_initial,
    connector_create,
    connector_delete,
    connector_generate_signing_key,
    connector_update,
)
from connectors.views.base import AUDIT_FAILED_MESSAGE, ConnectorPermissionMixin
from connectors.views.conflict import Conflict, conflict_describe
from connectors.views.jwks import jwks_panel_context

# The conflict page's "Save mine over theirs" names the version it compared against.
OVERWRITE_FIELD = "overwrite_version"


# Posted values include secrets: keep them out of error reports and the debug page.
@method_decorator(sensitive_post_parameters(), name="dispatch")
class ConnectorFormView(ConnectorPermissionMixin, View):
    """Shared GET/POST handling of the connector form and its formsets.

    A submit that fails (errors, a newer save, the audit log down) never loses the secrets
    typed: they are carried to the next submit by connectors.forms.carry, never rendered.
    """

    template_name = "connectors/connector_form.html"
    mode = "new"
    connector: Connector | None = None

    def build(self, data: Any = None) -> ConnectorForms:
        raise NotImplementedError

    def load(self) -> None:
        """Look up what the URL names; called only once the permission check has passed."""

    def carry_scope(self) -> str:
        """The form a carried secret belongs to: a value typed for one is never used in another."""
        return self.mode

    def open_carry(self, data: Any = None) -> SecretCarry:
        return SecretCarry.open(
            session=self.request.session,
            scope=self.carry_scope(),
            user_id=self.request.user.pk,
            data=data,
        )

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.load()
        return self.render(self.build(), carry=self.open_carry())

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.load()
        carry = self.open_carry(request.POST)
        data = carry.apply(request.POST)
        bundle = self.build(data)
        if not bundle.is_valid():
            return self.failed(bundle, carry, data, status=400)
        try:
            connector = self.save(bundle, data)
        except ConcurrentEditError as exc:
            conflict = conflict_describe(
                exc=exc,
                yours=bundle.form.instance,
                rows=bundle.rows(),
                user=request.user,
                expected_version=self.expected_version(bundle, data),
            )
            bundle.form.add_error(None, _stale_error(bundle, conflict))
            return self.failed(bundle, carry, data, status=409, conflict=conflict)
        except AuditWriteError:
            bundle.form.add_error(None, AUDIT_FAILED_MESSAGE)
            return self.failed(bundle, carry, data, status=503)
        except IntegrityError:  # another admin created the same name a moment ago
            bundle.form.add_error("name", bundle.form.error_messages["name_taken"])
            return self.failed(bundle, carry, data, status=409)
        carry.discard()
        for warning in bundle.warnings:
            messages.warning(request, warning)
        if bundle.unchanged:
            messages.info(request, "Nothing changed.")
        else:
            messages.success(request, f"Saved {connector.name}.")
        return HttpResponseRedirect(connector.get_absolute_url())

    def failed(
        self,
        bundle: ConnectorForms,
        carry: SecretCarry,
        data: Any,
        *,
        status: int,
        conflict: Conflict | None = None,
    ) -> HttpResponse:
        """The form again, with the secrets typed carried and an error summary on top."""
        form = bundle.form
        valid = [name for name in TYPED_SECRET_FIELDS if name not in form.errors]
        valid_rows = [
            (str(formset.prefix), index)
            for formset in (bundle.headers, bundle.data)
            for index, row in enumerate(formset.forms)
            if not row.errors
        ]
        carry.remember(data, valid, valid_rows)
        if status >= 500:
            # SessionMiddleware saves nothing on a 5xx answer; the carried secrets must stay.
            self.request.session.save()
        return self.render(bundle, status=status, carry=carry, conflict=conflict)

    def expected_version(self, bundle: ConnectorForms, data: Any) -> int | None:
        return None

    def save(self, bundle: ConnectorForms, data: Any) -> Connector:
        return connector_create(
            connector=bundle.form.instance, rows=bundle.rows(), user=self.request.user
        )

    def render(
        self,
        bundle: ConnectorForms,
        status: int = 200,
        *,
        carry: SecretCarry,
        conflict: Conflict | None = None,
    ) -> HttpResponse:
        bundle.form.show_carry(kept=carry.kept, retype=carry.retype)
        for formset in (bundle.headers, bundle.data):
            for index, row in enumerate(formset.forms):
                row.kept = (formset.prefix, index) in carry.kept_rows
        # A conflict has its own panel: it is not one of "the errors below".
        summary = bundle.error_summary(skip_codes=("stale",)) if bundle.form.is_bound else []
        context = {
            "form": bundle.form,
            "headers_formset": bundle.headers,
            "data_formset": bundle.data,
            "authorize_formset": bundle.authorize,
            "redirect_uri": redirect_uri_for(self.request),
            "mode": self.mode,
            "connector": self.connector,
            # The public half of the stored key, for registering it (edit only: a clone or a
            # new connector has no key of its own yet).
            "key_help": (
                connector_signing_key_help(self.connector)
                if self.connector is not None and self.mode == "edit"
                else None
            ),
            "can_generate_key": self.mode == "edit"
            and self.request.user.has_perm("connectors.change_connector"),
            "can_test": self.request.user.has_perm("connectors.test_connector"),
            "test_timeout": int(settings.CONNECTORS_TOKEN_TIMEOUT),
            "carry_token": carry.token,
            "carry_field": TOKEN_FIELD,
            "carry_minutes": CARRY_SECONDS // 60,
            "error_summary": summary,
            "conflict": conflict,
            # The Jwks Auth group shows the URL to register and the current key.
            **jwks_panel_context(self.request),
        }
        return render(self.request, self.template_name, context, status=status)


def _stale_error(bundle: ConnectorForms, conflict: Conflict) -> ValidationError:
    """The form's message for an edit that a newer save overtook: who, and when (ISO)."""
    return ValidationError(
        bundle.form.error_messages["stale"],
        code="stale",
        params={"user": conflict.who, "when": iso_datetime(conflict.when)},
    )


def iso_datetime(value: dt.datetime) -> str:
    """A moment as the audit log shows it: local time, ISO 8601 order, and the zone's name."""
    return date_format(localtime(value), "Y-m-d H:i:s e")


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

    def load(self) -> None:
        self.source = get_object_or_404(Connector, name=self.kwargs["name"])

    def carry_scope(self) -> str:
        return f"clone:{self.source.pk}"

    def build(self, data: Any = None) -> ConnectorForms:
        initial, rows = connector_clone_initial(source=self.source)
        return connector_forms(data=data, initial=initial, initial_rows=rows, clone_of=self.source)

    def save(self, bundle: ConnectorForms, data: Any) -> Connector:
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

    def load(self) -> None:
        self.connector = get_object_or_404(Connector, name=self.kwargs["name"])

    def carry_scope(self) -> str:
        assert self.connector is not None
        return f"edit:{self.connector.pk}"

    def build(self, data: Any = None) -> ConnectorForms:
        return connector_forms(data=data, instance=self.connector)

    def expected_version(self, bundle: ConnectorForms, data: Any) -> int | None:
        """The version this form was opened at, or the newer one the conflict page showed.

        "Save mine over theirs" on the conflict page posts the version it compared against,
        so a third save in between is refused again rather than overwritten unseen.
        """
        overwrite = id_from_text(str(data.get(OVERWRITE_FIELD, "") or ""))
        return overwrite if overwrite is not None else bundle.form.cleaned_data.get("version")

    def save(self, bundle: ConnectorForms, data: Any) -> Connector:
        changes = connector_update(
            connector=bundle.form.instance,
            rows=bundle.rows(),
            user=self.request.user,
            expected_version=self.expected_version(bundle, data),
        )
        bundle.unchanged = not changes
        return bundle.form.instance


class ConnectorGenerateKeyView(ConnectorPermissionMixin, View):
    """Make a new signing key pair on the server (admins, POST only); the private half stays."""

    permission_required = "connectors.change_connector"

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        connector = get_object_or_404(Connector, name=name)
        version = id_from_text(request.POST.get("version", ""))
        back = request.POST.get("next") == "edit"
        target = (
            redirect("connectors:edit", name=connector.name)
            if back
            else redirect(connector.get_absolute_url())
        )
        try:
            connector_generate_signing_key(
                connector=connector, user=request.user, expected_version=version
            )
        except KeyGenerationRefused as exc:
            messages.error(request, f"No key pair generated: {exc}")
        except ConcurrentEditError:
            messages.error(
                request, "No key pair generated: the connector changed meanwhile. Try again."
            )
        except AuditWriteError:
            messages.error(request, AUDIT_FAILED_MESSAGE)
        else:
            messages.success(
                request,
                f"Generated a new {connector.get_jwt_algorithm_display()} key pair. Register "
                "the public key (or JWK) below with the provider; the private key never leaves "
                "this server.",
            )
        return target


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
