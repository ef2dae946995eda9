"""Template helpers for connection-test results."""

from __future__ import annotations

from django import template

from connectors import explain

register = template.Library()


@register.filter
def outcome_info(code: str) -> explain.OutcomeText | None:
    return explain.outcome_text(code)


@register.filter
def client_auth_name(method: str) -> str:
    return explain.client_auth_name(method)
