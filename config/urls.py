"""Top-level URLs: the connector inventory, the audit log, login, the Django admin, /healthz."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from config.health import healthz, healthz_live
from connectors.views import DashboardView
from connectors.views.jwks import jwks_json

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="connectors:list", permanent=False)),
    path("connectors/", include("connectors.urls")),
    path("dashboard/", DashboardView.as_view(), name="dashboard"),
    path("fleet/", include("connectors.fleet_urls")),
    path("audit/", include("audit.urls")),
    path("api/", include("connectors.api.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("healthz/live", healthz_live, name="healthz-live"),
    # Jwks Auth: the console's public signing keys, for the APIs that verify its tokens.
    path(".well-known/jwks.json", jwks_json, name="jwks"),
]

# Every refusal, in every app, goes to the audit log; templates/403.html says which role allows it.
handler403 = "audit.views.permission_denied"
# A plain page that needs no database (config.errors); 404 is Django's with templates/404.html.
handler500 = "config.errors.server_error"

if settings.CONNECTORS_DEMO:
    urlpatterns.append(path("sandbox/", include("connectors.sandbox")))
