"""Read-only queries of the connector inventory: the list page and the detail page.

Views call these for what they show, and services for what they change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F, OuterRef, Q, QuerySet, Subquery

from audit.models import TestRun
from connectors.models import AuthConfig, Connector

# The list's sort keys (as in ?sort=) and the column each sorts by.
SORTS: dict[str, str] = {
    "name": "name",
    "-name": "-name",
    "auth": "auth_config",
    "-auth": "-auth_config",
    "updated": "updated_at",
    "-updated": "-updated_at",
    "tested": "last_test_at",
    "-tested": "-last_test_at",
}
DEFAULT_SORT = "name"
# The query parameters that narrow the list.
FILTER_PARAMS = ("q", "auth", "enabled")

LIST_COLUMNS = (
    "id",
    "name",
    "display_name",
    "base_url",
    "enabled",
    "auth_config",
    "owner_team",
    "updated_at",
    "oauth2_grant_type",
)


@dataclass(frozen=True)
class ConnectorListFilters:
    """What the list page was asked for; unknown values are ignored, as the page always did."""

    query: str = ""
    auth: str = ""
    enabled: str = ""
    sort: str = DEFAULT_SORT

    @classmethod
    def from_params(cls, params: Any) -> ConnectorListFilters:
        """From a request's GET parameters (anything with .get)."""
        return cls(
            query=params.get("q", "").strip(),
            auth=params.get("auth", "") or "",
            enabled=params.get("enabled", "") or "",
            sort=params.get("sort", DEFAULT_SORT),
        )


def _latest_saved_test() -> QuerySet[TestRun]:
    # Tests of unsaved form values say nothing about the saved connector.
    return (
        TestRun.objects.filter(connector_id=OuterRef("pk"))
        .exclude(source=TestRun.Source.FORM)
        .order_by("-id")
    )


def connector_list_queryset(*, sort_by_last_test: bool = False) -> QuerySet[Connector]:
    """Connectors for the list page: plain columns, and the last test's time only to sort by.

    The full last result is added per page by `connector_list_attach_last_tests`, so a deep page
    does not compute it for every row it skips.
    """
    queryset = Connector.objects.only(*LIST_COLUMNS)
    if sort_by_last_test:
        queryset = queryset.annotate(
            last_test_at=Subquery(_latest_saved_test().values("started_at")[:1])
        )
    return queryset


def connector_list(*, filters: ConnectorListFilters) -> QuerySet[Connector]:
    """The inventory, searched, filtered and sorted; never-tested connectors sort last."""
    sort = SORTS.get(filters.sort, DEFAULT_SORT)
    queryset = connector_list_queryset(sort_by_last_test="last_test_at" in sort)
    if filters.query:
        queryset = queryset.filter(
            Q(name__icontains=filters.query)
            | Q(display_name__icontains=filters.query)
            | Q(base_url__icontains=filters.query)
        )
    if filters.auth in AuthConfig.values:
        queryset = queryset.filter(auth_config=filters.auth)
    if filters.enabled in {"yes", "no"}:
        queryset = queryset.filter(enabled=filters.enabled == "yes")
    field = F(sort.lstrip("-"))
    # Connectors never tested go last either way, as people scanning for failures expect.
    order = field.desc(nulls_last=True) if sort.startswith("-") else field.asc(nulls_last=True)
    return queryset.order_by(order, "name" if "name" not in sort else "pk")


def connector_list_attach_last_tests(connectors: Sequence[Connector]) -> None:
    """Set last_test_outcome / _ok / _at on one page of connectors, in one query."""
    latest = _latest_saved_test()
    facts = {
        row["pk"]: row
        for row in Connector.objects.filter(pk__in=[c.pk for c in connectors])
        .annotate(
            last_test_outcome=Subquery(latest.values("outcome")[:1]),
            last_test_ok=Subquery(latest.values("ok")[:1]),
            last_test_at=Subquery(latest.values("started_at")[:1]),
        )
        .values("pk", "last_test_outcome", "last_test_ok", "last_test_at")
    }
    for connector in connectors:
        row = facts.get(connector.pk, {})
        # Attributes for the template, set on this page's objects only.
        setattr(connector, "last_test_outcome", row.get("last_test_outcome"))  # noqa: B010
        setattr(connector, "last_test_ok", row.get("last_test_ok"))  # noqa: B010
        setattr(connector, "last_test_at", row.get("last_test_at"))  # noqa: B010


def connector_detail_queryset() -> QuerySet[Connector]:
    """Connectors with what the detail page shows of them: authors and rows."""
    return Connector.objects.select_related("created_by", "updated_by").prefetch_related("params")


def connector_recent_runs(*, connector_id: int, limit: int = 5) -> QuerySet[TestRun]:
    """The newest test runs of a connector, newest first."""
    return TestRun.objects.filter(connector_id=connector_id)[:limit]


__all__ = [
    "FILTER_PARAMS",
    "SORTS",
    "ConnectorListFilters",
    "connector_detail_queryset",
    "connector_list",
    "connector_list_attach_last_tests",
    "connector_list_queryset",
    "connector_recent_runs",
]
