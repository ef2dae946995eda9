"""Personal API tokens: create (shown once), list and revoke on the user's own page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables

from audit.services import audit_record
from connectors.api.models import ApiToken

MAX_EXPIRY_DAYS = 3650


class TokenForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="What uses it, e.g. deploy-bot.")
    expires_days = forms.IntegerField(
        label="Expires in (days)", min_value=1, max_value=MAX_EXPIRY_DAYS, initial=90
    )


@sensitive_variables("token")
def api_token_create(*, user: AbstractBaseUser, name: str, expires_days: int | None) -> str:
    """Create a token for `user` and record it; returns the token, which nobody sees again."""
    expiry = dt.timedelta(days=expires_days) if expires_days else None
    with transaction.atomic():
        instance, token = ApiToken.objects.create(user=user, expiry=expiry, name=name)
        audit_record(
            kind="change",
            action="api_token_create",
            user=user,
            summary=f"Created API token {name or '(unnamed)'} for {user.get_username()}",
            details={
                "api_client": name,
                "expires_at": instance.expiry.isoformat() if instance.expiry else None,
            },
        )
    return str(token)


def api_token_revoke(*, token: ApiToken, user: Any) -> None:
    """Delete a token (its owner or a superuser) and record who revoked it."""
    with transaction.atomic():
        audit_record(
            kind="change",
            action="api_token_revoke",
            user=user,
            summary=f"Revoked API token {token.name or '(unnamed)'} of {token.user.get_username()}",
            details={"api_client": token.name, "owner": token.user.get_username()},
        )
        ApiToken.objects.filter(pk=token.pk).delete()


@never_cache
def token_page(request: HttpRequest) -> HttpResponse:
    """The signed-in user's tokens; a new one is shown once, on the answer to its creation."""
    user = request.user
    form = TokenForm(request.POST or None)
    created = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            created = api_token_create(
                user=user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                expires_days=form.cleaned_data["expires_days"],
            )
            form = TokenForm()
        else:
            status = 400
    tokens = ApiToken.objects.filter(user_id=user.pk).order_by("-created")
    context = {"form": form, "created": created, "tokens": tokens}
    return render(request, "api/tokens.html", context, status=status)


def token_revoke(request: HttpRequest, key: str) -> HttpResponse:
    """POST: revoke one of the user's tokens (a superuser may revoke anyone's)."""
    tokens = ApiToken.objects.select_related("user")
    if not request.user.is_superuser:
        tokens = tokens.filter(user_id=request.user.pk)
    if request.method != "POST":
        return redirect("api-tokens")
    token = get_object_or_404(tokens, token_key=key)
    api_token_revoke(token=token, user=request.user)
    messages.success(request, f"Revoked {token.name or 'the token'}.")
    return redirect("api-tokens")
