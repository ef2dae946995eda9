"""Rate limits per API token (or per signed-in user for the browser's session)."""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import SimpleRateThrottle

from connectors.api.auth import token_of


class TokenRateThrottle(SimpleRateThrottle):
    """`token` rate (REST_FRAMEWORK's DEFAULT_THROTTLE_RATES): one bucket per token."""

    scope = "token"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        token = token_of(request)
        if token is not None:
            ident = f"t{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"u{request.user.pk}"
        else:
            ident = f"a{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
