"""The audit log: the page's filters, keyset pages, and one record (details redacted)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from audit.forms import AuditFilterForm
from audit.ids import id_from_text
from audit.models import AuditEvent
from audit.sanitize import connector_secrets_by_id, details_redact
from audit.selectors import audit_event_page
from connectors.api import schema
from connectors.api.base import ApiView
from connectors.api.problems import validation_problem
from connectors.api.representation import event_json
from connectors.api.views import PROBLEM, PROBLEM_TYPE, REFUSALS

VIEW = ("audit.view_auditevent",)
MAX_PAGE_SIZE = 200
MAX_ID = 2**63 - 1


def _positive_int(value: str | None) -> int | None:
    return id_from_text(value)


AUDIT_PARAMETERS = [
    OpenApiParameter("q", str, description="Connector name contains."),
    OpenApiParameter("connector", int, description="Connector id."),
    OpenApiParameter("kind", str, enum=list(AuditEvent.Kind.values)),
    OpenApiParameter("outcome", str),
    OpenApiParameter("user", int, description="User id."),
    OpenApiParameter("since", str, description="YYYY-MM-DD"),
    OpenApiParameter("until", str, description="YYYY-MM-DD"),
    OpenApiParameter("before", int, description="Keyset cursor: records older than this id."),
    OpenApiParameter("after", int, description="Keyset cursor: records newer than this id."),
    OpenApiParameter("page_size", int, description=f"1 to {MAX_PAGE_SIZE} (default 50)."),
]


class AuditListView(ApiView):
    required_permissions = {"GET": VIEW}

    @extend_schema(
        operation_id="audit_list",
        parameters=AUDIT_PARAMETERS,
        responses={200: schema.AuditPageSerializer, (400, PROBLEM_TYPE): PROBLEM, **REFUSALS},
    )
    def get(self, request: Request) -> Response:
        form = AuditFilterForm(request.query_params)
        if not form.is_valid():
            raise validation_problem(
                [
                    {"field": name, "label": str(form.fields[name].label), "message": str(message)}
                    for name, messages in form.errors.items()
                    for message in messages
                ]
            )
        size = min(_positive_int(request.query_params.get("page_size")) or 50, MAX_PAGE_SIZE)
        page = audit_event_page(
            filters=form.filters(),
            before=_positive_int(request.query_params.get("before")),
            after=_positive_int(request.query_params.get("after")),
            size=max(size, 1),
        )
        url = remove_query_param(
            remove_query_param(request.build_absolute_uri(), "after"), "before"
        )
        return Response(
            {
                "next": replace_query_param(url, "before", page.older_than)
                if page.older_than
                else None,
                "previous": replace_query_param(url, "after", page.newer_than)
                if page.newer_than
                else None,
                "results": [event_json(e) for e in page.events],
            }
        )


class AuditDetailView(ApiView):
    required_permissions = {"GET": VIEW}

    @extend_schema(
        operation_id="audit_retrieve",
        parameters=[OpenApiParameter("pk", int, location=OpenApiParameter.PATH)],
        responses={
            200: schema.AuditEventDetailSerializer,
            (404, PROBLEM_TYPE): PROBLEM,
            **REFUSALS,
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        # Any text routes here, so that a malformed id gets a problem answer, not Django's page.
        number = id_from_text(pk, max_digits=19)
        if number is None or number > MAX_ID:
            raise Http404
        event = get_object_or_404(AuditEvent, pk=pk)
        details = details_redact(event.details, secrets=connector_secrets_by_id(event.connector_id))
        return Response(event_json(event, details=details, full=True))
