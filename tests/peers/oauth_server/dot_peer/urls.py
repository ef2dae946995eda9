"""URLs of the DOT peer: ``/o/authorize/`` (login and consent pages), ``/o/token/``,
``/accounts/login/`` and ``GET /api/me``."""

from __future__ import annotations

from django.contrib.auth.views import LoginView
from django.urls import include, path
from oauth2_provider.urls import base_urlpatterns

from dot_peer.views import MeView

urlpatterns = [
    path("o/", include((base_urlpatterns, "oauth2_provider"))),
    path("api/me", MeView.as_view(), name="me"),
    path("accounts/login/", LoginView.as_view(), name="login"),
]
