"""Protected resource of the DOT peer: ``GET /api/me``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.generic import View
from oauth2_provider.views.mixins import OAuthLibMixin


class MeView(OAuthLibMixin, View):
    """Valid Bearer token -> 200 ``{"username", "client_id", "scope"}``.

    Anything else -> 401 ``{"error": "invalid_token"}`` with ``WWW-Authenticate: Bearer``.
    ``username`` is ``null`` for client-credentials tokens (no resource owner).
    """

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        valid, oauth_request = self.verify_request(request)
        if not valid:
            response = JsonResponse({"error": "invalid_token"}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="dot-peer", error="invalid_token"'
            return response
        token = oauth_request.access_token
        owner = oauth_request.user
        return JsonResponse(
            {
                "username": owner.get_username() if owner is not None else None,
                "client_id": token.application.client_id if token.application else None,
                "scope": token.scope,
            }
        )
