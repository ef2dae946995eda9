"""{% refusal as refusal %}: the 403 page's explanation of a refusal (accounts.roles)."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.roles import Refusal, refusal_explained

register = template.Library()


@register.simple_tag(takes_context=True)
def refusal(context: dict[str, Any]) -> Refusal:
    request = context.get("request")
    return refusal_explained(request) if request is not None else Refusal()
