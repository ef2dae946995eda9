"""The inventory pages: the list of connectors and one connector's page."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.db.models import QuerySet
from django.views.generic import DetailView, ListView

from audit.selectors import audit_events_for_connector
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


class ConnectorDetailView(ConnectorPermissionMixin, DetailView):
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
        context["recent_runs"] = connector_recent_runs(connector_id=connector.pk)
        connector_list_attach_last_tests([connector])
        context["health"] = connector_health_of(connector)
        context["can_test"] = user.has_perm("connectors.test_connector")
        context["can_change"] = user.has_perm("connectors.change_connector")
        context["test_timeout"] = int(settings.CONNECTORS_TOKEN_TIMEOUT)
        context["key_help"] = connector_signing_key_help(connector)
        context["can_generate_key"] = context["can_change"] and connector_signs_jwts(connector)
        if connector.auth_config == AuthConfig.JWKS_AUTH:
            context.update(jwks_panel_context(self.request))
        if user.has_perm("audit.view_auditevent"):
            context["audit_events"] = audit_events_for_connector(connector.pk)
        return context
