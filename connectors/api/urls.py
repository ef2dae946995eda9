"""/api/: the v1 endpoints, the schema, its docs page, and the user's token page (/api/tokens/)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_not_required, login_required
from django.http.response import HttpResponseBase
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from connectors.api import audit_views, batch_views, tokens, transfer_views, views


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI from drf-spectacular-sidecar's files; its script is a file too (CSP 'self')."""

    template_name = "api/swagger_ui.html"


# Tokens authenticate inside DRF, after LoginRequiredMiddleware: the API views answer 401
# themselves instead of redirecting to the sign-in page.
def api(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    return login_not_required(view)


urlpatterns = [
    path("v1/connectors/", api(views.ConnectorListView.as_view()), name="api-connectors"),
    path(
        "v1/connectors/<str:name>/",
        api(views.ConnectorDetailView.as_view()),
        name="api-connector",
    ),
    path(
        "v1/connectors/<str:name>/test/",
        api(views.ConnectorTestView.as_view()),
        name="api-connector-test",
    ),
    path(
        "v1/connectors/<str:name>/runs/",
        api(views.ConnectorRunsView.as_view()),
        name="api-connector-runs",
    ),
    path("v1/batches/", api(batch_views.BatchListView.as_view()), name="api-batches"),
    path("v1/batches/<str:pk>/", api(batch_views.BatchDetailView.as_view()), name="api-batch"),
    path("v1/audit/", api(audit_views.AuditListView.as_view()), name="api-audit"),
    path("v1/audit/<str:pk>/", api(audit_views.AuditDetailView.as_view()), name="api-audit-event"),
    path("v1/import/", api(transfer_views.ImportView.as_view()), name="api-import"),
    path("v1/export/", api(transfer_views.ExportView.as_view()), name="api-export"),
    path("schema/", api(SpectacularAPIView.as_view()), name="api-schema"),
    # The docs page is a page: without a session it goes to the sign-in page.
    # (DRF marks its views login_not_required; this page redirects like the other pages.)
    path("docs/", login_required(DocsView.as_view(url_name="api-schema")), name="api-docs"),
    path("tokens/", tokens.token_page, name="api-tokens"),
    path("tokens/<str:key>/revoke/", tokens.token_revoke, name="api-token-revoke"),
]
