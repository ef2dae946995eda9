"""Fleet settings for admins: the re-validation schedule and the notification rules."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters

from audit.services import AuditWriteError
from connectors.forms.fleet import (
    ConnectorScheduleForm,
    NotificationRuleForm,
    ScheduleDefaultForm,
)
from connectors.models import ConnectorSchedule, NotificationRule
from connectors.notifications import (
    fail_threshold,
    notification_rule_delete,
    notification_rule_save,
)
from connectors.schedules import (
    connector_schedule_set,
    schedule_default_minutes,
    schedule_default_set,
)
from connectors.views.base import AUDIT_FAILED_MESSAGE, ConnectorPermissionMixin

ADMIN_PERMISSION = "connectors.change_connector"


class FleetAdminMixin(ConnectorPermissionMixin):
    permission_required = ADMIN_PERMISSION


class ScheduleSettingsView(FleetAdminMixin, View):
    """The global interval, and the connectors with their own schedule."""

    def get(self, request: HttpRequest) -> HttpResponse:
        default_form = ScheduleDefaultForm(
            initial={"default_interval_minutes": schedule_default_minutes()}
        )
        return self._page(request, default_form, ConnectorScheduleForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        default_form = ScheduleDefaultForm(
            initial={"default_interval_minutes": schedule_default_minutes()}
        )
        connector_form = ConnectorScheduleForm()
        try:
            if request.POST.get("form") == "connector":
                connector_form = ConnectorScheduleForm(request.POST)
                if connector_form.is_valid():
                    data = connector_form.cleaned_data
                    connector_schedule_set(
                        connector=data["connector"],
                        mode=data["mode"],
                        interval_minutes=data.get("interval_minutes"),
                        user=request.user,
                    )
                    messages.success(request, f"Schedule of {data['connector'].name} saved.")
                    return redirect("fleet:schedule")
            else:
                default_form = ScheduleDefaultForm(request.POST)
                if default_form.is_valid():
                    schedule_default_set(
                        minutes=default_form.cleaned_data["default_interval_minutes"],
                        user=request.user,
                    )
                    messages.success(request, "Default schedule saved.")
                    return redirect("fleet:schedule")
        except AuditWriteError:
            messages.error(request, AUDIT_FAILED_MESSAGE)
        return self._page(request, default_form, connector_form, status=400)

    def _page(
        self,
        request: HttpRequest,
        default_form: ScheduleDefaultForm,
        connector_form: ConnectorScheduleForm,
        status: int = 200,
    ) -> HttpResponse:
        overrides = (
            ConnectorSchedule.objects.exclude(mode=ConnectorSchedule.Mode.DEFAULT)
            .select_related("connector")
            .order_by("connector__name")
        )
        context = {
            "default_form": default_form,
            "connector_form": connector_form,
            "default_minutes": schedule_default_minutes(),
            "overrides": overrides,
        }
        return render(request, "connectors/schedule_settings.html", context, status=status)


class NotificationRuleListView(FleetAdminMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        context = {
            "rules": NotificationRule.objects.all(),
            "fail_threshold": fail_threshold(),
        }
        return render(request, "connectors/notification_rules.html", context)


# Posted values include the webhook URL, a secret: keep it out of error reports.
@method_decorator(sensitive_post_parameters(), name="dispatch")
class NotificationRuleEditView(FleetAdminMixin, View):
    """Create (no pk) or edit one rule."""

    def _rule(self, pk: int | None) -> NotificationRule:
        return get_object_or_404(NotificationRule, pk=pk) if pk else NotificationRule()

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        rule = self._rule(pk)
        return self._page(request, NotificationRuleForm(instance=rule))

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        rule = self._rule(pk)
        webhook_before = rule.webhook_url if rule.pk else ""
        form = NotificationRuleForm(request.POST, instance=rule)
        if form.is_valid():
            try:
                notification_rule_save(
                    rule=form.save(commit=False),
                    webhook_before=webhook_before,
                    user=request.user,
                    created=pk is None,
                )
            except AuditWriteError:
                messages.error(request, AUDIT_FAILED_MESSAGE)
            else:
                messages.success(request, f"Notification rule for {form.instance} saved.")
                return redirect("fleet:notifications")
        return self._page(request, form, status=400)

    def _page(self, request: HttpRequest, form: NotificationRuleForm, status: int = 200) -> Any:
        context = {"form": form, "rule": form.instance}
        return render(request, "connectors/notification_rule_form.html", context, status=status)


class NotificationRuleDeleteView(FleetAdminMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        rule = get_object_or_404(NotificationRule, pk=pk)
        try:
            notification_rule_delete(rule=rule, user=request.user)
        except AuditWriteError:
            messages.error(request, AUDIT_FAILED_MESSAGE)
        else:
            messages.success(request, "Notification rule deleted.")
        return redirect("fleet:notifications")
