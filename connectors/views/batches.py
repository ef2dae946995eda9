"""Testing many connectors at once: start a batch from the list, watch it, cancel it.

Operators (connectors.test_connector) start and cancel; anyone who may view connectors watches.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views import View

from audit.ids import id_from_text
from audit.services import AuditWriteError
from config.celery import UNREACHABLE_MESSAGE, RunnerUnreachable
from connectors.batches import (
    RUNNER_UNREACHABLE_TEXT,
    batch_cancel,
    batch_items,
    batch_progress,
    batch_progress_document,
    batch_reap,
    batch_start,
    progress_json,
)
from connectors.connection_test import TestRateLimited
from connectors.models import Connector
from connectors.models_batch import Batch, BatchItem
from connectors.selectors import FILTER_PARAMS, ConnectorListFilters, connector_list
from connectors.views.base import AUDIT_FAILED_MESSAGE, ConnectorPermissionMixin

MAX_SELECTED = 10_000


def filter_description(params: Any) -> str:
    """The list filter in words, e.g. "health=failing, q=hr" ("all connectors" when none)."""
    parts = [f"{key}={params.get(key)}" for key in FILTER_PARAMS if params.get(key)]
    return ", ".join(parts) or "all connectors"


def _selected(request: HttpRequest) -> tuple[list[int], str]:
    """The connectors the list's form asked for: ticked ids, or all matching its filter."""
    if request.POST.get("scope") == "all":
        filters = ConnectorListFilters.from_params(request.POST)
        ids = [connector.pk for connector in connector_list(filters=filters)]
        return ids[:MAX_SELECTED], filter_description(request.POST)
    raw = request.POST.getlist("ids")[:MAX_SELECTED]
    wanted = [number for value in raw if (number := id_from_text(value)) is not None]
    ids = list(Connector.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    return ids, f"{len(ids)} selected"


def _back_to_list(request: HttpRequest) -> HttpResponseRedirect:
    query = request.POST.get("return_query", "")
    url = reverse("connectors:list")
    return HttpResponseRedirect(f"{url}?{query}" if query and "\n" not in query else url)


class BatchStartView(ConnectorPermissionMixin, View):
    """POST from the list: create a batch of the selected connectors and open its page."""

    permission_required = "connectors.test_connector"

    def post(self, request: HttpRequest) -> HttpResponse:
        ids, described = _selected(request)
        if not ids:
            messages.warning(request, "Select at least one connector to test.")
            return _back_to_list(request)
        try:
            batch = batch_start(
                user_or_system=request.user,
                connector_ids=ids,
                filter_description=described,
                source=Batch.Source.UI,
            )
        except RunnerUnreachable:
            messages.error(request, RUNNER_UNREACHABLE_TEXT)
            return _back_to_list(request)
        except TestRateLimited as exc:
            messages.error(request, str(exc))
            return _back_to_list(request)
        except AuditWriteError:
            messages.error(request, AUDIT_FAILED_MESSAGE)
            return _back_to_list(request)
        return HttpResponseRedirect(reverse("connectors:batch", args=[batch.pk]))


class BatchDetailView(ConnectorPermissionMixin, View):
    """A batch's page: who, when, which filter, progress and results (works without JS)."""

    permission_required = "connectors.view_connector"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = get_object_or_404(Batch, pk=pk)
        # Looking at a batch finds tests whose worker died, so the batch can still finish.
        batch_reap(batch_id=batch.pk)
        batch.refresh_from_db()
        progress = batch_progress(batch=batch)
        context = {
            "batch": batch,
            "progress": progress,
            "items": batch_items(batch=batch),
            "can_cancel": request.user.has_perm("connectors.test_connector")
            and batch.state == Batch.State.RUNNING,
            "lost": progress.counts.get(BatchItem.State.LOST, 0),
        }
        return render(request, "connectors/batch_detail.html", context)


class BatchProgressView(ConnectorPermissionMixin, View):
    """The small JSON document the batch page polls: counts, and items changed since `after`."""

    permission_required = "connectors.view_connector"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = get_object_or_404(Batch, pk=pk)
        return JsonResponse(batch_progress_document(batch=batch))


class BatchCancelView(ConnectorPermissionMixin, View):
    """POST: skip the waiting tests of a batch; running ones finish."""

    permission_required = "connectors.test_connector"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = get_object_or_404(Batch, pk=pk)
        try:
            skipped = batch_cancel(batch=batch, user=request.user)
        except AuditWriteError:
            messages.error(request, AUDIT_FAILED_MESSAGE)
        else:
            messages.success(request, f"Batch cancelled: {skipped} waiting tests skipped.")
        return HttpResponseRedirect(reverse("connectors:batch", args=[batch.pk]))


__all__ = [
    "RUNNER_UNREACHABLE_TEXT",
    "UNREACHABLE_MESSAGE",
    "BatchCancelView",
    "BatchDetailView",
    "BatchProgressView",
    "BatchStartView",
    "progress_json",
]
