"""Template helpers for connection-test results."""

from __future__ import annotations

from django import template

from connectors.models import ClientAuthentication
from connectors.oauth_http import OUTCOMES, Outcome

register = template.Library()

CLIENT_AUTH_NAMES = {
    **dict(ClientAuthentication.choices),
    "basic_client_unencoded": "Basic Auth header without the RFC 6749 §2.3.1 encoding",
}


@register.filter
def outcome_info(code: str) -> Outcome | None:
    return OUTCOMES.get(code)


@register.filter
def client_auth_name(method: str) -> str:
    return str(CLIENT_AUTH_NAMES.get(method, method))
