"""Jwks Auth's key set: the public `/.well-known/jwks.json`, and the admins' Signing keys page.

The JSON document needs no login (API providers fetch it to verify our tokens) and holds public
keys only; it never reads a private key's column. The page (/fleet/jwks/) shows the URL to
register, the keys and their dates, and offers "Generate JWKS", "Rotate now" and the rotation
settings; each is a POST, audited by the service.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.decorators.http import require_safe

from audit.services import AuditWriteError
from connectors.jwks import (
    CACHE_MAX_AGE_SECONDS,
    MAX_GRACE_HOURS,
    MAX_ROTATION_DAYS,
    MIN_GRACE_HOURS,
    JwksError,
    jwks_document,
    jwks_generate,
    jwks_rotate_now,
    jwks_settings,
    jwks_settings_errors,
    jwks_settings_set,
)
from connectors.jwks_status import jwks_fleet_status, jwks_status
from connectors.views.base import AUDIT_FAILED_MESSAGE
from connectors.views.fleet_settings import FleetAdminMixin


@login_not_required
@require_safe
def jwks_json(request: HttpRequest) -> JsonResponse:
    """The console's JWK Set: the signing key, and the next or previous one in a grace period."""
    response = JsonResponse(jwks_document(), json_dumps_params={"indent": 1})
    response["Content-Type"] = "application/jwk-set+json"
    # Short: a verifier sees a new key well within the grace period before it signs.
    response["Cache-Control"] = f"public, max-age={CACHE_MAX_AGE_SECONDS}"
    # Public to everyone alike, signed in or not (config.security keeps it cacheable).
    response.cc_public_document = True  # type: ignore[attr-defined]
    return response


def jwks_url(request: HttpRequest) -> str:
    """The absolute URL of the JWK Set, as the browser reached this console."""
    return request.build_absolute_uri(reverse("jwks"))


def jwks_panel_context(request: HttpRequest) -> dict[str, Any]:
    """What the Jwks Auth panel of the connector form and detail page shows."""
    return {"jwks_url": jwks_url(request), "jwks": jwks_status(limit=0)}


def jwks_fleet_context() -> dict[str, Any]:
    """The dashboard's Jwks Auth line, when a connector uses it or a key exists."""
    fleet = jwks_fleet_status()
    return {"jwks_fleet": fleet} if fleet is not None else {}


class JwksSettingsForm(forms.Form):
    rotation_days = forms.IntegerField(
        label="Rotate every (days)",
        min_value=0,
        max_value=MAX_ROTATION_DAYS,
        help_text="A new key is made on this schedule. 0: only when an admin presses Rotate now.",
    )
    grace_hours = forms.IntegerField(
        label="Grace period (hours)",
        min_value=MIN_GRACE_HOURS,
        max_value=MAX_GRACE_HOURS,
        help_text="The new key is published this long before it signs, and the old one stays "
        "published this long after it stops, so verifiers that cache the key set keep working.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "rotation_days" in cleaned and "grace_hours" in cleaned:
            for field, message in jwks_settings_errors(
                rotation_days=cleaned["rotation_days"], grace_hours=cleaned["grace_hours"]
            ).items():
                self.add_error(field, message)
        return cleaned


class JwksKeysView(FleetAdminMixin, View):
    """/fleet/jwks/: the key set, Generate JWKS, Rotate now, and the rotation settings."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page(request, self._settings_form())

    def post(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action", "")
        form = self._settings_form()
        try:
            if action == "generate":
                key = jwks_generate(user=request.user)
                messages.success(request, f"Signing key {key.kid} generated: it signs from now.")
                return redirect("fleet:jwks")
            if action == "rotate":
                result = jwks_rotate_now(user=request.user)
                messages.success(
                    request,
                    f"Key {result.kid} is published now and signs from "
                    f"{result.activates_at:%Y-%m-%d %H:%M} UTC.",
                )
                return redirect("fleet:jwks")
            if action == "settings":
                form = JwksSettingsForm(request.POST)
                if form.is_valid():
                    jwks_settings_set(
                        rotation_days=form.cleaned_data["rotation_days"],
                        grace_hours=form.cleaned_data["grace_hours"],
                        user=request.user,
                    )
                    messages.success(request, "Rotation settings saved.")
                    return redirect("fleet:jwks")
                return self._page(request, form, status=400)
        except JwksError as exc:
            messages.error(request, str(exc))
            return self._page(request, form, status=409)
        except AuditWriteError:
            messages.error(request, AUDIT_FAILED_MESSAGE)
            return self._page(request, form, status=500)
        return self._page(request, form, status=400)

    def _settings_form(self) -> JwksSettingsForm:
        current = jwks_settings()
        return JwksSettingsForm(
            initial={"rotation_days": current.rotation_days, "grace_hours": current.grace_hours}
        )

    def _page(
        self, request: HttpRequest, form: JwksSettingsForm, status: int = 200
    ) -> HttpResponse:
        context = {"form": form, "jwks_url": jwks_url(request), "jwks": jwks_status()}
        return render(request, "connectors/jwks_keys.html", context, status=status)
