"""Read-only queries of the connector inventory: the list page and the detail page.

Views call these for what they show, and services for what they change.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, CharField, Count, F, Min, Q, QuerySet, Value, When, Window
from django.db.models.functions import Ceil, RowNumber, StrIndex, Substr
from django.utils import timezone

from audit.models import TestAttempt, TestRun
from connectors.explain import outcome_text
from connectors.health import (
    HealthState,
    health_state,
    health_state_q,
    secret_expires_in_days,
)
from connectors.models import AuthConfig, Connector, ConnectorHealth
from connectors.oauth_http import assertions

# The list's sort keys (as in ?sort=) and the column each sorts by. Health sorts read the
# connector's health row (one join on its primary key) and its indexed columns.
SORTS: dict[str, str] = {
    "name": "name",
    "-name": "-name",
    "auth": "auth_config",
    "-auth": "-auth_config",
    "updated": "updated_at",
    "-updated": "-updated_at",
    "tested": "health__last_tested_at",
    "-tested": "-health__last_tested_at",
    # Failing since, oldest first: the connectors failing longest lead.
    "failing": "health__failing_since",
    "-failing": "-health__failing_since",
    "expires": "client_secret_expires_on",
    "-expires": "-client_secret_expires_on",
}
DEFAULT_SORT = "name"
# Sort columns some connectors have no value in; those connectors come last, by name.
NULLABLE_SORT_COLUMNS = frozenset(
    {"health__last_tested_at", "health__failing_since", "client_secret_expires_on"}
)
# The query parameters that narrow the list.
FILTER_PARAMS = ("q", "auth", "enabled", "health", "outcome", "expiring")
# "Secrets expiring soon" on the summary strip and the dashboard: within this many days.
EXPIRING_DAYS = 30

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
    "client_secret_expires_on",
)
HEALTH_COLUMNS = tuple(
    f"health__{name}"
    for name in (
        "last_tested_at",
        "last_ok",
        "last_outcome",
        "state_since",
        "failing_since",
        "consecutive_failures",
        "last_success_at",
        "token_expires_at",
    )
)


def _positive_int(raw: Any) -> int | None:
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return None
    return value if 0 <= value <= 3650 else None


@dataclass(frozen=True)
class ConnectorListFilters:
    """What the list page was asked for; unknown values are ignored, as the page always did."""

    query: str = ""
    auth: str = ""
    enabled: str = ""
    sort: str = DEFAULT_SORT
    health: str = ""
    outcome: str = ""
    expiring: int | None = None

    @classmethod
    def from_params(cls, params: Any) -> ConnectorListFilters:
        """From a request's GET parameters (anything with .get)."""
        health = params.get("health", "") or ""
        outcome = params.get("outcome", "") or ""
        return cls(
            query=params.get("q", "").strip(),
            auth=params.get("auth", "") or "",
            enabled=params.get("enabled", "") or "",
            sort=params.get("sort", DEFAULT_SORT),
            health=health if health in HealthState.__members__.values() else "",
            outcome=outcome if outcome_text(outcome) is not None else "",
            expiring=_positive_int(params.get("expiring")) if params.get("expiring") else None,
        )


def connector_list_queryset(*, sort_by_last_test: bool = False) -> QuerySet[Connector]:
    """Connectors for the list page: plain columns and their health row, in one query.

    `sort_by_last_test` is kept for callers of the earlier signature; the health row always
    carries the last test now, so it changes nothing.
    """
    return Connector.objects.select_related("health").only(*LIST_COLUMNS, *HEALTH_COLUMNS)


def _expiring_q(days: int, *, today: dt.date | None = None) -> Q:
    """Client Secrets that expire within `days` (already expired ones included)."""
    limit = (today or timezone.localdate()) + dt.timedelta(days=days)
    return Q(client_secret_expires_on__lte=limit)


class NullsLastList:
    """A list sorted on a column some rows lack (never tested, never failing, no expiry date).

    One ORDER BY over "value, then the rows without one" needs the whole outer join sorted:
    the index of the health row cannot drive it. So the two parts are read separately, each
    on its own index: rows with a value in the column's order (an inner join, walked along the
    column's index), then the rest by name. The paginator sees a list: count(), then a slice.
    """

    ordered = True  # for the paginator, which warns about unordered lists

    def __init__(self, queryset: QuerySet[Connector], sort: str) -> None:
        column = sort.lstrip("-")
        field = F(column)
        order = field.desc() if sort.startswith("-") else field.asc()
        self.column = column
        self.filtered = bool(queryset.query.where)
        self.with_value = queryset.filter(**{f"{column}__isnull": False}).order_by(order, "name")
        self.without_value = queryset.filter(**{f"{column}__isnull": True}).order_by("name")
        self._counts: tuple[int, int] | None = None

    def _sizes(self) -> tuple[int, int]:
        """(rows with a value, rows without); unfiltered, counted without a join."""
        if self._counts is None:
            if not self.filtered and self.column.startswith("health__"):
                # Every health row has its connector (the row is deleted with it), so the
                # health table alone counts the connectors with a value.
                health_column = self.column.removeprefix("health__")
                with_count = ConnectorHealth.objects.filter(
                    **{f"{health_column}__isnull": False}
                ).count()
                self._counts = (with_count, Connector.objects.count() - with_count)
            else:
                self._counts = (self.with_value.count(), self.without_value.count())
        return self._counts

    def count(self) -> int:
        return sum(self._sizes())

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key: slice) -> list[Connector]:
        if not isinstance(key, slice):
            raise TypeError("NullsLastList supports slices only")
        with_count, total = self._sizes()[0], self.count()
        start, stop = key.start or 0, total if key.stop is None else key.stop
        rows = list(self.with_value[start : min(stop, with_count)]) if start < with_count else []
        if stop > with_count:
            rows += list(self.without_value[max(start - with_count, 0) : stop - with_count])
        return rows

    def __iter__(self) -> Iterator[Connector]:
        return iter(self[:])


def connector_list(*, filters: ConnectorListFilters) -> QuerySet[Connector] | NullsLastList:
    """The inventory, searched, filtered and sorted; never-tested connectors sort last.

    Sorts on a column that can be empty (last test, failing since, expiry) page through
    NullsLastList, so each page reads an index instead of sorting the whole inventory.
    """
    sort = SORTS.get(filters.sort, DEFAULT_SORT)
    queryset = connector_list_queryset()
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
    if filters.health:
        queryset = queryset.filter(health_state_q(filters.health))
    if filters.outcome:
        queryset = queryset.filter(health__last_outcome=filters.outcome)
    if filters.expiring is not None:
        queryset = queryset.filter(_expiring_q(filters.expiring))
    if sort.lstrip("-") in NULLABLE_SORT_COLUMNS:
        # Connectors never tested (or never failing) go last either way, as people scanning for
        # failures expect.
        return NullsLastList(queryset, sort)
    field = F(sort.lstrip("-"))
    order = field.desc() if sort.startswith("-") else field.asc()
    return queryset.order_by(order, "name" if "name" not in sort else "pk")


def connector_list_attach_last_tests(connectors: Sequence[Connector]) -> None:
    """Set last_test_outcome / _ok / _at and the health state on one page of connectors.

    Read from the health rows the list query already joined: no query of its own.
    """
    now = timezone.now()
    today = timezone.localdate()
    for connector in connectors:
        health = connector_health_of(connector)
        # Attributes for the template, set on this page's objects only.
        setattr(connector, "last_test_outcome", health.last_outcome if health else None)  # noqa: B010
        setattr(connector, "last_test_ok", health.last_ok if health else None)  # noqa: B010
        setattr(connector, "last_test_at", health.last_tested_at if health else None)  # noqa: B010
        setattr(connector, "health_state", health_state(health, now=now))  # noqa: B010
        setattr(  # noqa: B010
            connector,
            "secret_expires_in",
            secret_expires_in_days(connector.client_secret_expires_on, today=today),
        )


def connector_health_of(connector: Connector) -> ConnectorHealth | None:
    """The connector's health row, or None when it was never tested (no row)."""
    try:
        return connector.health
    except ConnectorHealth.DoesNotExist:
        return None


@dataclass(frozen=True)
class HealthCounts:
    """How many connectors are in each state, and how many secrets expire soon."""

    passing: int = 0
    failing: int = 0
    never: int = 0
    stale: int = 0
    expiring: int = 0

    @property
    def total(self) -> int:
        return self.passing + self.failing + self.never + self.stale


def connector_health_counts(*, expiring_days: int = EXPIRING_DAYS) -> HealthCounts:
    """The summary strip's counts: three small queries, each on one table and its indexes.

    Passing, failing and stale are counted over the health rows alone; never tested is every
    connector less the tested ones; expiring reads the expiry date's index.
    """
    now = timezone.now()
    tested = ConnectorHealth.objects.aggregate(
        tested=Count("pk", filter=Q(last_tested_at__isnull=False)),
        **{
            state.value: Count("pk", filter=health_state_q(state, now=now, prefix=""))
            for state in (HealthState.PASSING, HealthState.FAILING, HealthState.STALE)
        },
    )
    total = Connector.objects.count()
    expiring = Connector.objects.filter(_expiring_q(expiring_days)).count()
    return HealthCounts(
        passing=int(tested["passing"] or 0),
        failing=int(tested["failing"] or 0),
        stale=int(tested["stale"] or 0),
        never=total - int(tested["tested"] or 0),
        expiring=expiring,
    )


# --------------------------------------------------------------------------------------------
# The dashboard: each panel is one aggregate query.


@dataclass(frozen=True)
class DayCount:
    day: dt.date
    count: int


def failures_per_day(*, days: int = 30, today: dt.date | None = None) -> list[DayCount]:
    """Failed saved-configuration test runs per day (server time zone), oldest day first.

    One row of conditional counts, a day's bounds each, computed from the index of failed runs
    (started_at, source) alone; the bounds are local midnights, so a DST change is exact.
    """
    today = today or timezone.localdate()
    zone = timezone.get_current_timezone()
    first = today - dt.timedelta(days=days - 1)
    dates = [first + dt.timedelta(days=offset) for offset in range(days + 1)]
    bounds = [dt.datetime.combine(day, dt.time.min, tzinfo=zone) for day in dates]
    counts = (
        TestRun.objects.filter(ok=False, started_at__gte=bounds[0], started_at__lt=bounds[-1])
        .exclude(source=TestRun.Source.FORM)
        .aggregate(
            **{
                f"d{index}": Count(
                    "started_at",
                    filter=Q(started_at__gte=bounds[index], started_at__lt=bounds[index + 1]),
                )
                for index in range(days)
            }
        )
    )
    return [DayCount(dates[index], int(counts[f"d{index}"] or 0)) for index in range(days)]


def connectors_failing_longest(*, limit: int = 10) -> list[Connector]:
    """Connectors failing now (not stale), the longest-failing first."""
    return list(
        connector_list_queryset()
        .filter(health_state_q(HealthState.FAILING))
        .order_by(F("health__failing_since").asc(), "name")[:limit]
    )


def connectors_secrets_expiring(*, limit: int = 10) -> list[Connector]:
    """Connectors with a Client Secret expiry date, the soonest (or already expired) first."""
    return list(
        connector_list_queryset()
        .filter(client_secret_expires_on__isnull=False)
        .order_by("client_secret_expires_on", "name")[:limit]
    )


@dataclass(frozen=True)
class EndpointLatency:
    origin: str
    p95_ms: int
    requests: int


def _origin_of_url() -> Any:
    """scheme://host[:port] of a stored URL, in SQL: everything before the path's first "/".

    The host starts at character 8 ("http://") or 9 ("https://"); searching from 9 finds the
    first "/" after the host either way.
    """
    slash = StrIndex(Substr("url", 9), Value("/"))
    return Case(
        When(slash_at=0, then=F("url")),
        default=Substr("url", 1, F("slash_at") + 7),
        output_field=CharField(),
    ), slash


def slowest_token_endpoints(*, days: int = 7, limit: int = 10) -> list[EndpointLatency]:
    """Token endpoints by origin, slowest first by the p95 of their token requests' duration.

    The p95 is the nearest-rank value (the ceil(0.95 n)-th shortest), picked in the database
    with window functions, so only one row per origin comes back. Two queries.
    """
    origin, slash = _origin_of_url()
    since = timezone.now() - dt.timedelta(days=days)
    first_run = TestRun.objects.filter(started_at__gte=since).aggregate(first=Min("id"))["first"]
    if first_run is None:
        return []
    ranked = (
        # The window's attempts as one range of run ids (found from the started_at index;
        # ids follow the order runs are recorded in), then exactly the window by the run's start.
        TestAttempt.objects.filter(
            step=TestAttempt.Step.TOKEN, run_id__gte=first_run, run__started_at__gte=since
        )
        .annotate(slash_at=slash)
        .annotate(origin=origin)
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("origin")], order_by=F("duration_ms").asc()),
            requests=Window(Count("id"), partition_by=[F("origin")]),
        )
        .filter(rank=Ceil(F("requests") * 0.95))
        .order_by()
        .values_list("origin", "duration_ms", "requests")
    )
    rows = [EndpointLatency(str(o), int(ms), int(n)) for o, ms, n in ranked]
    rows.sort(key=lambda row: (-row.p95_ms, row.origin))
    return rows[:limit]


def connector_detail_queryset() -> QuerySet[Connector]:
    """Connectors with what the detail page shows of them: authors and rows."""
    return Connector.objects.select_related("created_by", "updated_by", "health").prefetch_related(
        "params"
    )


def connector_recent_runs(*, connector_id: int, limit: int = 5) -> QuerySet[TestRun]:
    """The newest test runs of a connector, newest first."""
    return TestRun.objects.filter(connector_id=connector_id)[:limit]


__all__ = [
    "EXPIRING_DAYS",
    "SigningKeyHelp",
    "connector_signing_key_help",
    "FILTER_PARAMS",
    "HealthCounts",
    "NullsLastList",
    "connector_health_counts",
    "connector_health_of",
    "SORTS",
    "ConnectorListFilters",
    "connector_detail_queryset",
    "connector_list",
    "connector_list_attach_last_tests",
    "connector_list_queryset",
    "connector_recent_runs",
    "connectors_failing_longest",
    "connectors_secrets_expiring",
    "failures_per_day",
    "slowest_token_endpoints",
    "DayCount",
    "EndpointLatency",
]


@dataclass(frozen=True)
class SigningKeyHelp:
    """What a page shows about a stored private key: its public half, to register it."""

    public_pem: str
    jwk_json: str
    description: str
    weak: bool
    problem: str = ""


def connector_signing_key_help(connector: Connector) -> SigningKeyHelp | None:
    """The public key (PEM and JWK, with kid) of the stored private key; None when none.

    Derived from the private key at each read, so it always matches the key that signs. Never
    the private key itself: the JWK carries only public members.
    """
    pem = connector.jwt_private_key
    if not pem:
        return None
    try:
        facts = assertions.key_facts(assertions.load_private_key(pem))
        jwk = assertions.public_jwk(
            pem, algorithm=connector.jwt_algorithm, kid=connector.jwt_key_id
        )
        public_pem = assertions.public_key_pem(pem)
    except assertions.SigningError as error:
        return SigningKeyHelp("", "", "", weak=False, problem=str(error))
    return SigningKeyHelp(
        public_pem=public_pem,
        jwk_json=json.dumps(jwk, indent=2),
        description=facts.description,
        weak=facts.weak,
    )
