"""URLs of the DOT peer: the token endpoint at ``/o/token/`` and ``GET /api/me``."""

from __future__ import annotations

from django.urls import include, path
from oauth2_provider.urls import base_urlpatterns

from dot_peer.views import MeView

urlpatterns = [
    path("o/", include((base_urlpatterns, "oauth2_provider"))),
    path("api/me", MeView.as_view(), name="me"),
]
