"""The inventory pages: the list of connectors and one connector's page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.db.models import QuerySet
from django.views.generic import DetailView, ListView

from audit.selectors import audit_events_for_connector
from connectors.domain import ALL_SECRET_FIELDS, SCOPE_FIELD_BY_GRANT, field_label
from connectors.explain import OUTCOME_TEXTS
from connectors.health import HEALTH_LABELS, stale_days
from connectors.models import AuthConfig, Connector
from connectors.selectors import (
    DEFAULT_SORT,
    EXPIRING_DAYS,
    FILTER_PARAMS,
    ConnectorListFilters,
    connector_detail_queryset,
    connector_health_counts,
    connector_health_of,
    connector_list,
    connector_list_attach_last_tests,
    connector_recent_runs,
    connector_signing_key_help,
)
from connectors.services import connector_signs_jwts
from connectors.views.base import ConnectorPermissionMixin
from connectors.views.connect import ConnectFormActionMixin, connect_context
from connectors.views.jwks import jwks_panel_context


class ConnectorListView(ConnectorPermissionMixin, ListView):
    """The inventory: search, filter, sort and page through connectors."""

    permission_required = "connectors.view_connector"
    template_name = "connectors/connector_list.html"
    context_object_name = "connectors"

    def get_paginate_by(self, queryset: QuerySet[Connector]) -> int:
        return settings.CONNECTORS_PAGE_SIZE

    def get_queryset(self) -> QuerySet[Connector]:
        self.filters = ConnectorListFilters.from_params(self.request.GET)
        # A NullsLastList (sorts on health) pages like a queryset: count(), then a slice.
        return cast("QuerySet[Connector]", connector_list(filters=self.filters))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        connector_list_attach_last_tests(context["connectors"])
        query = self.request.GET.copy()
        query.pop("page", None)
        sortless = query.copy()
        sortless.pop("sort", None)
        context.update(
            auth_choices=AuthConfig.choices,
            current_sort=self.request.GET.get("sort", DEFAULT_SORT),
            query_string=query.urlencode(),
            sortless_query=sortless.urlencode(),
            filters_active=any(self.request.GET.get(k) for k in FILTER_PARAMS),
            **health_summary_context(),
            health_choices=[(state.value, label) for state, label in HEALTH_LABELS.items()],
            outcome_choices=[(code, text.label) for code, text in OUTCOME_TEXTS.items()],
            active_health=self.filters.health,
            active_expiring=self.filters.expiring is not None,
            # "Test selected": operators tick connectors or take all matching the filter.
            can_batch=self.request.user.has_perm("connectors.test_connector"),
            batch_filter_values=[(k, v) for k in FILTER_PARAMS if (v := self.request.GET.get(k))],
        )
        return context


def health_summary_context() -> dict[str, Any]:
    """The summary strip: counts per health state, in one query."""
    return {
        "health_counts": connector_health_counts(expiring_days=EXPIRING_DAYS),
        "expiring_days": EXPIRING_DAYS,
        "stale_days": stale_days(),
    }


# Fields whose values are identifiers or patterns, shown as code (exact characters matter).
_CODE_FIELDS = frozenset(
    {
        "api_key_header_auth_key",
        "api_key_header_auth_value_pattern",
        "api_key_param_name",
        "oauth2_client_id",
        "oauth2_header_auth_key",
        "oauth2_header_auth_value_pattern",
        "oauth2_custom_grant_type",
        "oauth2_request_custom_grant_type",
        "oauth2_access_token_key",
        "oauth2_expires_in_key",
    }
)
_SCOPE_FIELDS = frozenset(SCOPE_FIELD_BY_GRANT.values())


@dataclass(frozen=True)
class SettingRow:
    """One line of the detail page's settings: a label and how to show its value."""

    label: str
    value: str = ""
    kind: str = "text"  # text | code | url | secret
    stored: bool = False


def _setting_row(connector: Connector, name: str) -> SettingRow:
    label = field_label(name)
    if name in ALL_SECRET_FIELDS:
        # Never the value: only whether one is stored.
        return SettingRow(label, kind="secret", stored=bool(getattr(connector, name)))
    value = getattr(connector, name)
    display = getattr(connector, f"get_{name}_display", None)
    if display is not None:
        return SettingRow(label, str(display()))
    if name == "jwt_audience" and not value:
        # Blank signs the token for where it is sent (connectors.oauth_http.assertions).
        oauth2 = connector.auth_config == AuthConfig.OAUTH2
        return SettingRow(label, "(the Oauth2 Token Url)" if oauth2 else "(the Base URL)")
    if value is None or value == "":
        return SettingRow(label, "(server default)" if name in _SCOPE_FIELDS else "—")
    if name.endswith("_url"):
        return SettingRow(label, str(value), kind="url")
    if hasattr(value, "isoformat"):
        return SettingRow(label, value.isoformat())
    return SettingRow(label, str(value), kind="code" if name in _CODE_FIELDS else "text")


def connector_auth_settings(connector: Connector) -> list[SettingRow]:
    """The chosen Auth Config's fields that apply to this connector (Connector.auth_fields)."""
    return [_setting_row(connector, name) for name in connector.auth_fields()]


class ConnectorDetailView(ConnectFormActionMixin, ConnectorPermissionMixin, DetailView):
    """One connector: its settings (secrets shown only as stored), tests and history."""

    permission_required = "connectors.view_connector"
    template_name = "connectors/connector_detail.html"
    slug_field = "name"
    slug_url_kwarg = "name"
    context_object_name = "connector"

    def get_queryset(self) -> QuerySet[Connector]:
        return connector_detail_queryset()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        connector: Connector = self.object
        user = self.request.user
        context["auth_settings"] = connector_auth_settings(connector)
        context["recent_runs"] = connector_recent_runs(connector_id=connector.pk)
        connector_list_attach_last_tests([connector])
        context["health"] = connector_health_of(connector)
        context["can_test"] = user.has_perm("connectors.test_connector")
        context["can_change"] = user.has_perm("connectors.change_connector")
        context["test_timeout"] = int(settings.CONNECTORS_TOKEN_TIMEOUT)
        context.update(connect_context(self.request, connector))
        context["key_help"] = connector_signing_key_help(connector)
        context["can_generate_key"] = context["can_change"] and connector_signs_jwts(connector)
        if connector.auth_config == AuthConfig.JWKS_AUTH:
            context.update(jwks_panel_context(self.request))
        if user.has_perm("audit.view_auditevent"):
            context["audit_events"] = audit_events_for_connector(connector.pk)
        return context
