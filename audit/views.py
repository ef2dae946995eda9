"""Reviewing the audit log: the filtered list, one record, and streamed exports."""

from __future__ import annotations

import contextlib
from typing import Any

from django.contrib.auth.decorators import permission_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views import csrf, defaults

from audit.exports import FORMATS, export_stream
from audit.forms import AuditFilterForm, known_outcomes
from audit.ids import id_from_text
from audit.models import AuditEvent
from audit.sanitize import connector_secrets_by_id, details_redact
from audit.selectors import (
    audit_connector_suggestions,
    audit_event_page,
    audit_events_filtered,
    audit_user_suggestions,
)
from audit.services import AuditWriteError, audit_record

VIEW_PERMISSION = "audit.view_auditevent"
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


# Set on a request whose refusal a view already recorded, with more detail than the handler has.
_RECORDED = "_audit_refusal_recorded"


def refusal_text(value: str) -> str:
    """A request's text as a record can hold it: NUL shown as \\x00 (PostgreSQL refuses NUL)."""
    return str(value).replace("\x00", "\\x00")


def refusal_request(request: Any) -> dict[str, str]:
    """Where a refused request went, for its record: the page is named in words from these
    (audit.wording.REFUSED_ACTIONS, by URL name and method), not shown as method and path."""
    match = getattr(request, "resolver_match", None)
    return {
        "path": refusal_text(getattr(request, "path", "")),
        "method": refusal_text(getattr(request, "method", "") or ""),
        "url_name": (match.view_name or "") if match is not None else "",
    }


def refusal_mark_recorded(request: HttpRequest) -> None:
    """Tell permission_denied that this refusal is already in the audit log."""
    setattr(request, _RECORDED, True)


def _record_refusal(request: HttpRequest, action: str, reason: str = "") -> None:
    """Record a refusal of a signed-in user's request, once, whatever refused it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or getattr(request, _RECORDED, False):
        return
    details = refusal_request(request)
    if reason:
        details["reason"] = refusal_text(reason)
    with contextlib.suppress(AuditWriteError):  # logged loudly by audit_record itself
        audit_record(
            kind="denial",
            action=action,
            user=user,
            summary=refusal_text(f"{user.get_username()} may not {request.method} {request.path}"),
            details=details,
        )
    refusal_mark_recorded(request)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler403: every refusal, in every app, is recorded, then answered as Django does."""
    _record_refusal(request, "permission_denied")
    return defaults.permission_denied(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a forged or stale form post is a refusal too; answered as Django does."""
    _record_refusal(request, "csrf_failed", reason)
    return csrf.csrf_failure(request, reason=reason)


def _positive_int(value: str | None) -> int | None:
    return id_from_text(value)


def _filter_form(request: HttpRequest) -> AuditFilterForm:
    form = AuditFilterForm(request.GET)
    form.is_valid()  # errors are shown; valid fields still filter
    return form


@permission_required(VIEW_PERMISSION, raise_exception=True)
def audit_list(request: HttpRequest) -> HttpResponse:
    """The audit log, newest first, filtered, one keyset page at a time."""
    form = _filter_form(request)
    filters = form.filters()
    page = audit_event_page(
        filters=filters,
        before=_positive_int(request.GET.get("before")),
        after=_positive_int(request.GET.get("after")),
    )
    return render(
        request,
        "audit/list.html",
        {"form": form, "filters": filters, "page": page, "known_outcomes": known_outcomes()},
    )


SUGGESTERS = {"connector": audit_connector_suggestions, "user": audit_user_suggestions}


@permission_required(VIEW_PERMISSION, raise_exception=True)
def audit_suggest(request: HttpRequest, field: str) -> HttpResponse:
    """Type-ahead for the list's connector and user filters: a few names, as JSON."""
    suggest = SUGGESTERS.get(field)
    if suggest is None:
        raise Http404("No such filter.")
    text = request.GET.get("q", "")[:150]
    return JsonResponse({"field": field, "q": text, "matches": suggest(text)})


@permission_required(VIEW_PERMISSION, raise_exception=True)
def audit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One record: a test run's attempts as steps, a change's diff, a denial's reason."""
    event = get_object_or_404(AuditEvent.objects.select_related("test_run"), pk=pk)
    redactor = connector_secrets_by_id(event.connector_id)
    run = event.test_run if event.test_run_id else None
    attempts = list(run.attempts.order_by("position", "id")) if run is not None else []
    details = details_redact(event.details, secrets=redactor)
    changes = details.get("changes") if isinstance(details, dict) else None
    return render(
        request,
        "audit/detail.html",
        {
            "event": event,
            "run": run,
            "attempts": attempts,
            "changes": changes if isinstance(changes, list) else None,
            "details": details,
            "redactor": redactor,
        },
    )


@permission_required(VIEW_PERMISSION, raise_exception=True)
def audit_export(request: HttpRequest) -> HttpResponseBase:
    """The filtered records as a streamed CSV or JSON download, redacted."""
    fmt = request.GET.get("format", "csv")
    if fmt not in FORMATS:
        return HttpResponseBadRequest("Choose format=csv or format=json.")
    qs = audit_events_filtered(_filter_form(request).filters())
    response = StreamingHttpResponse(export_stream(qs, fmt), content_type=CONTENT_TYPES[fmt])
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
