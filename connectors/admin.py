"""Django admin for superusers: secrets are never shown or edited here, only their state."""

from __future__ import annotations

from django.contrib import admin

from audit.admin import ReadOnlyAdminMixin
from audit.models import TestAttempt
from connectors.models import ALL_SECRET_FIELDS, Connector, TestRun, TokenRequestParam


class TokenRequestParamInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TokenRequestParam
    fields = ("kind", "position", "key", "shown_value", "sensitive")
    readonly_fields = fields
    extra = 0

    @admin.display(description="Value")
    def shown_value(self, obj: TokenRequestParam) -> str:
        return "[sensitive, stored]" if obj.sensitive else obj.value


@admin.register(Connector)
class ConnectorAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "display_name", "auth_config", "enabled", "owner_team", "updated_at")
    list_filter = ("auth_config", "enabled")
    search_fields = ("name", "display_name", "base_url")
    # Changes go through the app, which applies the Auth Config rules, optimistic locking and
    # the audit log. Secrets would be rendered into this page, so they are left out and shown
    # only as stored / not set.
    exclude = ALL_SECRET_FIELDS
    readonly_fields = ("secret_state", "version", "created_at", "updated_at")
    inlines = [TokenRequestParamInline]

    @admin.display(description="Secrets")
    def secret_state(self, obj: Connector) -> str:
        states = obj.stored_secrets()
        if not states:
            return "None for this Auth Config"
        return ", ".join(
            f"{label}: {'stored' if stored else 'not set'}" for label, stored in states
        )


class TestAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TestAttempt
    extra = 0
    fields = (
        "position",
        "client_authentication",
        "method",
        "url",
        "status_code",
        "outcome",
        "duration_ms",
        "message",
    )
    readonly_fields = fields


# TestRun here is the admin-only proxy, so the page stays at /admin/connectors/testrun/.
@admin.register(TestRun)
class TestRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("connector_name", "outcome", "username", "source", "started_at", "duration_ms")
    list_filter = ("outcome", "source")
    search_fields = ("connector_name",)
    inlines = [TestAttemptInline]
