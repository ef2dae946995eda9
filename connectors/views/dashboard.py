"""The fleet dashboard: counts, failures per day, the longest failing, expiring secrets and the
slowest token endpoints. Each panel is one aggregate query (see connectors.selectors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.views.generic import TemplateView

from connectors.selectors import (
    DayCount,
    connector_list_attach_last_tests,
    connectors_failing_longest,
    connectors_secrets_expiring,
    failures_per_day,
    slowest_token_endpoints,
)
from connectors.views.base import ConnectorPermissionMixin
from connectors.views.inventory import health_summary_context
from connectors.views.jwks import jwks_fleet_context

# The chart's drawing area, in SVG user units (it scales to the card's width).
CHART_WIDTH = 720
CHART_HEIGHT = 180
CHART_LEFT = 36
CHART_RIGHT = 28  # room for the last day's label, centred under its bar
CHART_BOTTOM = 24
CHART_TOP = 8


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    centre: float
    day: Any
    count: int
    label: bool  # whether the day is written under the axis


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    peak: int
    total: int
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = CHART_LEFT
    right: int = CHART_WIDTH - CHART_RIGHT
    baseline: int = CHART_HEIGHT - CHART_BOTTOM
    top: int = CHART_TOP


def failure_chart(days: list[DayCount]) -> Chart:
    """Bar geometry for the failures-per-day chart, computed here so the SVG is static markup."""
    peak = max((d.count for d in days), default=0)
    scale_top = max(peak, 1)
    plot_height = CHART_HEIGHT - CHART_BOTTOM - CHART_TOP
    slot = (CHART_WIDTH - CHART_LEFT - CHART_RIGHT) / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        height = plot_height * day.count / scale_top
        bars.append(
            Bar(
                x=round(CHART_LEFT + index * slot + slot * 0.15, 1),
                y=round(CHART_HEIGHT - CHART_BOTTOM - height, 1),
                width=round(slot * 0.7, 1),
                height=round(height, 1),
                centre=round(CHART_LEFT + index * slot + slot / 2, 1),
                day=day.day,
                count=day.count,
                # Every seventh day, counted back from today, so the last bar is always named.
                label=(len(days) - 1 - index) % 7 == 0,
            )
        )
    return Chart(bars=bars, peak=peak, total=sum(d.count for d in days))


class DashboardView(ConnectorPermissionMixin, TemplateView):
    """The fleet at a glance, for everyone who may see the inventory."""

    permission_required = "connectors.view_connector"
    template_name = "connectors/dashboard.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        failing = connectors_failing_longest(limit=10)
        connector_list_attach_last_tests(failing)
        expiring = connectors_secrets_expiring(limit=10)
        connector_list_attach_last_tests(expiring)
        context.update(
            **health_summary_context(),
            chart=failure_chart(failures_per_day(days=30)),
            failing=failing,
            expiring=expiring,
            endpoints=slowest_token_endpoints(days=7, limit=10),
            **jwks_fleet_context(),
        )
        return context
