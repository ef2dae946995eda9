"""Django admin for superusers: secrets are never shown or edited here, only their state."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from connectors.models import ALL_SECRET_FIELDS, Connector, TestAttempt, TestRun, TokenRequestParam


class TokenRequestParamInline(admin.TabularInline):
    model = TokenRequestParam
    fields = ("kind", "position", "key", "shown_value", "sensitive")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="Value")
    def shown_value(self, obj: TokenRequestParam) -> str:
        return "[sensitive, stored]" if obj.sensitive else obj.value

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = ("name", "display_name", "auth_config", "enabled", "owner_team", "updated_at")
    list_filter = ("auth_config", "enabled")
    search_fields = ("name", "display_name", "base_url")
    # Secrets are edited in the app, where a blank field keeps the stored value; here they
    # would be rendered into the page, so they are left out and shown as stored / not set.
    exclude = ALL_SECRET_FIELDS
    readonly_fields = ("secret_state", "version", "created_at", "updated_at")
    inlines = [TokenRequestParamInline]

    @admin.display(description="Secrets")
    def secret_state(self, obj: Connector) -> str:
        states = obj.stored_secrets()
        if not states:
            return "None for this Auth Config"
        return ", ".join(
            f"{Connector._meta.get_field(name).verbose_name}: {'stored' if stored else 'not set'}"
            for name, stored in states.items()
        )

    # Changes go through the app, which applies the Auth Config rules, optimistic locking and
    # the audit log; the admin is a read-only window onto the inventory.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class TestAttemptInline(admin.TabularInline):
    model = TestAttempt
    extra = 0
    can_delete = False
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

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(TestRun)
class TestRunAdmin(admin.ModelAdmin):
    list_display = ("connector_name", "outcome", "username", "source", "started_at", "duration_ms")
    list_filter = ("outcome", "source")
    search_fields = ("connector_name",)
    inlines = [TestAttemptInline]

    def get_readonly_fields(self, request: HttpRequest, obj: TestRun | None = None):
        return [f.name for f in TestRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
