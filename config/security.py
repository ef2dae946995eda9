"""Response headers Django has no setting for: Permissions-Policy, and no-store for signed-in pages.

Every page a signed-in user sees may show connector data (names, URLs, test results, audit
records), so all of them are marked no-store: a shared or later user of the same browser must not
find them in its cache or its back/forward history. The login page and static files are cached
as usual (WhiteNoise answers static files before this middleware runs).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers


class SecurityHeadersMiddleware:
    """Adds Permissions-Policy to every response and no-store to signed-in responses."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.PERMISSIONS_POLICY
        if policy and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = policy
        user = getattr(request, "user", None)
        # A public document (the JWK Set) is the same for everyone: it keeps its own caching.
        public = getattr(response, "cc_public_document", False)
        if user is not None and user.is_authenticated and not public:
            add_never_cache_headers(response)
        return response
