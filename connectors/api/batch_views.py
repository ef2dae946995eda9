"""Batches: start one with connectors_test_all's filter, and watch its progress and results."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from audit.ids import id_from_text
from config.celery import UNREACHABLE_MESSAGE, RunnerUnreachable
from connectors.api import schema
from connectors.api.base import ApiView
from connectors.api.problems import Problem, validation_problem
from connectors.api.views import PROBLEM, PROBLEM_TYPE, REFUSALS, rate_limited_problem
from connectors.batches import (
    HEALTH_CHOICES,
    RUNNER_UNREACHABLE_TEXT,
    BatchSelectionError,
    batch_connector_ids,
    batch_filter_description,
    batch_progress_document,
    batch_start,
)
from connectors.connection_test import TestRateLimited
from connectors.models_batch import Batch
from connectors.transfer.entries import is_text, kind_of

FIELDS = {"connector": "Connector", "health": "Health", "search": "Search"}
NO_RUNNER_RETRY = (
    " Tests whose worker died could not be queued again. Try again in a minute; if it keeps "
    "failing, tell an administrator (the worker or its broker is down)."
)


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "label": FIELDS.get(field, field), "message": message}


def _text(body: dict[str, Any], key: str, errors: list[dict[str, str]]) -> str:
    """An optional text value ("" when omitted or null)."""
    value = body.get(key)
    if value is None:
        return ""
    if not is_text(value) or "\x00" in value:
        errors.append(_error(key, f"Must be text, not {kind_of(value)}."))
        return ""
    return str(value)


def _names(body: dict[str, Any], errors: list[dict[str, str]]) -> list[str]:
    value = body.get("connector")
    if value is None:
        return []
    if not isinstance(value, list) or not all(is_text(v) and "\x00" not in v for v in value):
        errors.append(_error("connector", "Must be a list of connector names."))
        return []
    return [str(v) for v in value]


def selection_read(body: Any) -> tuple[list[str], str, str]:
    """(names, health, search) from the body, typed strictly; 400 with every field's error."""
    if not isinstance(body, dict):
        raise validation_problem([_error("request", "The body must be a JSON object.")])
    errors = [_error(key, "Is not a field of a batch.") for key in sorted(set(body) - set(FIELDS))]
    names = _names(body, errors)
    health = _text(body, "health", errors)
    if health and health not in HEALTH_CHOICES:
        errors.append(_error("health", f"Choose one of: {', '.join(HEALTH_CHOICES)}."))
    search = _text(body, "search", errors)
    if errors:
        raise validation_problem(errors)
    return names, health, search


def _unreachable(detail: str) -> Problem:
    return Problem(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        title="The background runner is not reachable",
        detail=detail,
        kind="runner-unreachable",
    )


BATCH_ID = OpenApiParameter(
    "pk",
    int,
    location=OpenApiParameter.PATH,
    examples=[OpenApiExample("A batch", value=1)],
)


class BatchListView(ApiView):
    required_permissions = {"POST": ("connectors.test_connector",)}

    @extend_schema(
        operation_id="batches_create",
        request=schema.BatchStartSerializer,
        responses={
            201: schema.BatchProgressSerializer,
            (400, PROBLEM_TYPE): PROBLEM,
            (503, PROBLEM_TYPE): PROBLEM,
            **REFUSALS,
        },
    )
    def post(self, request: Request) -> Response:
        names, health, search = selection_read(request.data)
        try:
            ids = batch_connector_ids(names=names, health=health, search=search)
        except BatchSelectionError as exc:
            raise validation_problem([_error(exc.field, str(exc))]) from None
        try:
            batch = batch_start(
                user_or_system=request.user,
                connector_ids=ids,
                filter_description=batch_filter_description(
                    names=names, health=health, search=search
                ),
                source=Batch.Source.API,
            )
        except RunnerUnreachable:
            raise _unreachable(RUNNER_UNREACHABLE_TEXT) from None
        except TestRateLimited as exc:
            raise rate_limited_problem(exc) from None
        return Response(
            batch_progress_document(batch=batch),
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("api-batch", args=[batch.pk])},
        )


class BatchDetailView(ApiView):
    required_permissions = {"GET": ("connectors.view_connector",)}

    @extend_schema(
        operation_id="batches_retrieve",
        parameters=[BATCH_ID],
        responses={
            200: schema.BatchProgressSerializer,
            (404, PROBLEM_TYPE): PROBLEM,
            (503, PROBLEM_TYPE): PROBLEM,
            **REFUSALS,
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        # The route takes any text, so a bad id is a 404 like a missing one, never a 500.
        number = id_from_text(pk)
        if number is None:
            raise Http404
        batch = get_object_or_404(Batch, pk=number)
        try:
            document = batch_progress_document(batch=batch)
        except RunnerUnreachable:
            raise _unreachable(UNREACHABLE_MESSAGE + NO_RUNNER_RETRY) from None
        return Response(document)
