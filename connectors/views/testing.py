"""The connection test of a saved connector or of unsaved form values, and pinning its result."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters

from audit.ids import id_from_text
from audit.models import TestRun
from audit.services import AuditWriteError
from connectors.connection_test import TestOutcome, TestRateLimited, connector_test
from connectors.domain import ParamRow
from connectors.explain import Fix, label, result_text
from connectors.fields import SecretDecryptionError
from connectors.forms import connector_forms
from connectors.forms.carry import SecretCarry
from connectors.models import ClientAuthentication, Connector
from connectors.rules import TestRefused
from connectors.services import ConcurrentEditError
from connectors.transfer import (
    FIX_ACTIONS,
    PinRefused,
    connector_fix_apply,
    connector_fix_problem,
    connector_pin_client_authentication,
)
from connectors.views.base import (
    AUDIT_FAILED_MESSAGE,
    SECRETS_UNREADABLE_STATUS,
    SECRETS_UNREADABLE_WHAT_TO_DO,
    ConnectorPermissionMixin,
)

TEST_NOT_RECORDED = (
    "The test ran, but its record could not be written to the audit log. "
    "Nothing is shown until it can be recorded; tell an administrator."
)


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
            **self._advice_context(outcome, connector),
            "form_url": self.form_url(),
        }
        if self.request.headers.get("X-Requested-With") == "fetch":
            return render(self.request, "connectors/_test_result.html", context, status=status)
        return render(self.request, "connectors/testrun_result.html", context, status=status)

    def form_url(self) -> str:
        """The form this test came from, for the whole-page answer (JavaScript off); none here."""
        return ""

    def secrets_unreadable(self, exc: SecretDecryptionError) -> HttpResponse:
        # The test panel, not a whole page: the page's script shows this answer in place.
        return self.respond(
            None,
            connector=None,
            error=f"Nothing was sent. {exc} {SECRETS_UNREADABLE_WHAT_TO_DO}",
            status=SECRETS_UNREADABLE_STATUS,
        )

    def _advice_context(
        self, outcome: TestOutcome | None, connector: Connector | None
    ) -> dict[str, Any]:
        """The next step in the reader's terms, and the one-click fix where one exists.

        Someone who may edit gets the change to make and, for a test of what is saved, a fix
        that saves it (if the rules accept it); a test of form values offers to set the field
        in the form instead. Someone who may only test is told what to ask a Connector admin.
        """
        if outcome is None:
            return {}
        run = outcome.run
        can_edit = self.request.user.has_perm("connectors.change_connector")
        advice = outcome.advice
        hint = advice.text_for(can_edit=can_edit) if advice is not None else run.hint
        unsaved = run.source == TestRun.Source.FORM
        auth_config = str(
            (run.config or {}).get("auth_config") or getattr(connector, "auth_config", "")
        )
        fix: Fix | None = advice.fix if advice is not None and can_edit else None
        return {
            "words": result_text(
                outcome=run.outcome,
                ok=run.ok,
                auth_config=auth_config,
                unsaved=unsaved,
                hint=hint,
                api_step_failed=bool(outcome.attempts) and outcome.attempts[-1].step == "api",
            ),
            "can_edit": can_edit,
            **_fix_context(fix, None if unsaved else connector, unsaved=unsaved),
        }

    def run_test(
        self, connector: Connector, *, source: str, rows: list[ParamRow] | None = None
    ) -> HttpResponse:
        try:
            outcome = connector_test(
                connector=connector, user=self.request.user, source=source, rows=rows
            )
        except TestRefused as exc:
            return self.respond(None, connector=connector, error=str(exc), status=409)
        except TestRateLimited as exc:
            return self.respond(None, connector=connector, error=str(exc), status=429)
        except AuditWriteError:
            return self.respond(None, connector=connector, error=TEST_NOT_RECORDED, status=500)
        return self.respond(outcome, connector=connector)


def _fix_context(fix: Fix | None, saved: Connector | None, *, unsaved: bool) -> dict[str, Any]:
    """How a fix is offered: a button that saves it on a saved connector (when the rules accept
    it), a button that sets it in the form for a form test, or the reason it cannot be one click.
    """
    problem = ""
    on_saved = fix is not None and saved is not None and saved.pk is not None
    if fix is not None and saved is not None and on_saved:
        problem = connector_fix_problem(connector=saved, field_name=fix.field, value=fix.value)
    return {
        "fix": fix,
        "fix_saves": on_saved and not problem,
        "fix_in_form": fix is not None and unsaved,
        "fix_problem": problem,
    }


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

    def form_url(self) -> str:
        name = self.kwargs.get("name")
        return reverse("connectors:edit", args=[name]) if name else reverse("connectors:new")

    def post(self, request: HttpRequest, name: str | None = None) -> HttpResponse:
        stored = get_object_or_404(Connector, name=name) if name else None
        # Secrets kept from a failed submit of this form are tested as if typed again.
        data = SecretCarry.open_for_test(
            session=request.session,
            edit_scope=f"edit:{stored.pk}" if stored else None,
            user_id=request.user.pk,
            data=request.POST,
        ).apply(request.POST)
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


class ConnectorFixView(ConnectorPermissionMixin, View):
    """Apply a connection test's one-click fix: one setting set to the value the test found."""

    permission_required = "connectors.change_connector"

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        connector = get_object_or_404(Connector, name=name)
        field_name = request.POST.get("field", "")
        value = request.POST.get("value", "")
        tested_version = id_from_text(request.POST.get("version", ""))
        if field_name not in FIX_ACTIONS or not value or tested_version is None:
            messages.error(request, "Run the test again, then apply the fix it offers.")
            return redirect(connector.get_absolute_url())
        fix = Fix(field_name, value)
        try:
            connector_fix_apply(
                connector=connector,
                field_name=field_name,
                value=value,
                user=request.user,
                tested_version=tested_version,
            )
        except PinRefused as exc:
            messages.error(request, f"Not changed: {exc}")
        except ConcurrentEditError:
            messages.error(request, "Not changed: the connector changed meanwhile. Test again.")
        except AuditWriteError:
            messages.error(request, AUDIT_FAILED_MESSAGE)
        else:
            messages.success(
                request, f"{label(field_name)} is now “{fix.shown_value}”. Test again to confirm."
            )
        return redirect(connector.get_absolute_url())


class ConnectorPinView(ConnectorPermissionMixin, View):
    """Pin the client authentication method that a test found to work."""

    permission_required = "connectors.change_connector"

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        connector = get_object_or_404(Connector, name=name)
        method = request.POST.get("method", "")
        label = dict(ClientAuthentication.choices).get(method)
        version = request.POST.get("version", "")
        tested_version = id_from_text(version)
        if not method or label is None or tested_version is None:
            messages.error(request, "Run the test again, then pin the method it found.")
            return redirect(connector.get_absolute_url())
        try:
            connector_pin_client_authentication(
                connector=connector, method=method, user=request.user, tested_version=tested_version
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
