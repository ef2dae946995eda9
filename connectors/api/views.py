"""Connector endpoints: list, create, read, change, delete, test, and a connector's runs."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import TestRun
from audit.run_summary import testrun_summary
from connectors.api import schema
from connectors.api.base import ApiView
from connectors.api.conditional import etag_of, if_match_version, stale_problem
from connectors.api.inputs import connector_body_check
from connectors.api.problems import PROBLEM_TYPE, Problem, validation_problem
from connectors.api.representation import connector_json, connector_summary_json, run_json
from connectors.connection_test import TestRateLimited, connector_test
from connectors.models import AuthConfig, Connector
from connectors.rules import ERROR_MESSAGES, TestRefused
from connectors.selectors import ConnectorListFilters, connector_detail_queryset, connector_list
from connectors.services import (
    ConcurrentEditError,
    connector_create,
    connector_delete,
    connector_update,
)

PROBLEM = OpenApiResponse(schema.ProblemSerializer, description="Problem details (RFC 9457)")
REFUSALS = {
    (401, PROBLEM_TYPE): PROBLEM,
    (403, PROBLEM_TYPE): PROBLEM,
    (429, PROBLEM_TYPE): PROBLEM,
}
MAX_PAGE_SIZE = 200


class NameCursorPagination(CursorPagination):
    """Keyset pages by name (unique): the same queries whatever the page size."""

    ordering = "name"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class RunCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


FILTER_PARAMETERS = [
    OpenApiParameter("q", str, description="Search name, display name and Base URL."),
    OpenApiParameter("auth", str, enum=list(AuthConfig.values)),
    OpenApiParameter("enabled", str, enum=["yes", "no"]),
    OpenApiParameter("health", str, description="passing, failing, never or stale."),
    OpenApiParameter("outcome", str, description="The last test's outcome code."),
    OpenApiParameter("expiring", int, description="Client Secret expires within N days."),
]


def rate_limited_problem(exc: TestRateLimited) -> Problem:
    """429: the connection tests' own limit, the same as the pages'."""
    return Problem(
        status_code=429,
        title="Too many connection tests",
        detail=str(exc),
        kind="rate-limited",
        headers={"Retry-After": str(max(1, exc.retry_after))},
    )


def _connector(name: str) -> Connector:
    return get_object_or_404(connector_detail_queryset().prefetch_related("params"), name=name)


def _answer(connector: Connector, status_code: int = 200) -> Response:
    fresh = _connector(connector.name)
    return Response(connector_json(fresh), status=status_code, headers={"ETag": etag_of(fresh)})


class ConnectorListView(ApiView):
    required_permissions = {
        "GET": ("connectors.view_connector",),
        "POST": ("connectors.add_connector",),
    }

    @extend_schema(
        operation_id="connectors_list",
        parameters=FILTER_PARAMETERS,
        responses={200: schema.ConnectorPageSerializer, **REFUSALS},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        # Always by name: the cursor is a keyset over the unique name.
        filters = ConnectorListFilters.from_params(params)
        filters = ConnectorListFilters(**{**filters.__dict__, "sort": "name"})
        queryset = connector_list(filters=filters)
        paginator = NameCursorPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        now = timezone.now()
        return paginator.get_paginated_response(
            [connector_summary_json(c, now=now) for c in page or []]
        )

    @extend_schema(
        operation_id="connectors_create",
        request=schema.ConnectorInSerializer,
        responses={
            201: schema.ConnectorSerializer,
            (400, PROBLEM_TYPE): PROBLEM,
            (409, PROBLEM_TYPE): PROBLEM,
            **REFUSALS,
        },
    )
    def post(self, request: Request) -> Response:
        check, errors = connector_body_check(request.data, current=None)
        if check is None:
            raise validation_problem(errors)
        try:
            connector = connector_create(
                connector=check.instance, rows=check.param_rows(), user=request.user
            )
        except IntegrityError:  # the same name created a moment ago
            raise Problem(
                status_code=status.HTTP_409_CONFLICT,
                title="Name taken",
                detail=ERROR_MESSAGES["name_taken"],
                kind="validation",
                errors=[
                    {"field": "name", "label": "Name", "message": ERROR_MESSAGES["name_taken"]}
                ],
            ) from None
        return _answer(connector, status.HTTP_201_CREATED)


NAME = OpenApiParameter(
    "name",
    str,
    location=OpenApiParameter.PATH,
    examples=[OpenApiExample("A connector", value="hr_portal")],
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    location=OpenApiParameter.HEADER,
    required=True,
    description="The ETag of the version you read.",
)


class ConnectorDetailView(ApiView):
    required_permissions = {
        "GET": ("connectors.view_connector",),
        "PATCH": ("connectors.change_connector",),
        "DELETE": ("connectors.delete_connector",),
    }

    @extend_schema(
        operation_id="connectors_retrieve",
        parameters=[NAME],
        responses={200: schema.ConnectorSerializer, (404, PROBLEM_TYPE): PROBLEM, **REFUSALS},
    )
    def get(self, request: Request, name: str) -> Response:
        return _answer(_connector(name))

    @extend_schema(
        operation_id="connectors_partial_update",
        request=schema.ConnectorInSerializer,
        parameters=[NAME, IF_MATCH],
        responses={
            200: schema.ConnectorSerializer,
            (400, PROBLEM_TYPE): PROBLEM,
            (404, PROBLEM_TYPE): PROBLEM,
            (412, PROBLEM_TYPE): PROBLEM,
            (428, PROBLEM_TYPE): PROBLEM,
            **REFUSALS,
        },
    )
    def patch(self, request: Request, name: str) -> Response:
        connector = _connector(name)
        version = if_match_version(request, connector)
        check, errors = connector_body_check(request.data, current=connector)
        if check is None:
            raise validation_problem(errors)
        try:
            connector_update(
                connector=check.instance,
                rows=check.param_rows(),
                user=request.user,
                expected_version=version,
            )
        except ConcurrentEditError as exc:
            raise stale_problem(exc.connector) from None
        return _answer(connector)

    @extend_schema(
        operation_id="connectors_destroy",
        parameters=[NAME, IF_MATCH],
        responses={
            204: None,
            (404, PROBLEM_TYPE): PROBLEM,
            (412, PROBLEM_TYPE): PROBLEM,
            (428, PROBLEM_TYPE): PROBLEM,
            **REFUSALS,
        },
    )
    def delete(self, request: Request, name: str) -> Response:
        connector = _connector(name)
        version = if_match_version(request, connector)
        with transaction.atomic():
            # The row lock, then the version: a change saved meanwhile is never deleted unseen.
            current = (
                Connector.objects.select_for_update(of=("self",))
                .select_related("updated_by")
                .get(pk=connector.pk)
            )
            if current.version != version:
                raise stale_problem(current)
            connector_delete(connector=current, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConnectorTestView(ApiView):
    required_permissions = {"POST": ("connectors.test_connector",)}

    @extend_schema(
        operation_id="connectors_test",
        parameters=[NAME],
        request=None,
        responses={
            200: schema.TestSummarySerializer,
            (404, PROBLEM_TYPE): PROBLEM,
            (409, PROBLEM_TYPE): PROBLEM,
            **REFUSALS,
        },
    )
    def post(self, request: Request, name: str) -> Response:
        connector = get_object_or_404(Connector, name=name)
        try:
            outcome = connector_test(
                connector=connector, user=request.user, source=TestRun.Source.SAVED
            )
        except TestRefused as exc:
            raise Problem(status_code=409, title="Test refused", detail=str(exc)) from None
        except TestRateLimited as exc:
            raise rate_limited_problem(exc) from None
        return Response(testrun_summary(outcome.run))


class ConnectorRunsView(ApiView):
    required_permissions = {"GET": ("connectors.view_connector",)}

    @extend_schema(
        operation_id="connectors_runs",
        parameters=[NAME],
        responses={200: schema.RunPageSerializer, (404, PROBLEM_TYPE): PROBLEM, **REFUSALS},
    )
    def get(self, request: Request, name: str) -> Response:
        connector = get_object_or_404(Connector.objects.only("id", "name"), name=name)
        runs = TestRun.objects.filter(connector_id=connector.pk).prefetch_related("attempts")
        paginator = RunCursorPagination()
        page = paginator.paginate_queryset(runs, request, view=self)
        return paginator.get_paginated_response([run_json(run) for run in page or []])
