"""A sandbox OAuth2 token endpoint and API, served by this app in the demo only.

It lets the demo connectors from `make run` pass their connection tests with no outside server.
It is mounted only when CONNECTORS_DEMO is on (the default in debug), and is not a real
authorization server: credentials are the public demo values in connectors.demo.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from urllib.parse import unquote_plus

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from connectors import demo

TOKEN_LIFETIME = 3600
CLIENTS = {
    demo.SANDBOX_CLIENT_ID: {"secret": demo.SANDBOX_CLIENT_SECRET, "basic": True, "body": True},
    # Accepts its credentials only in the request body, like some real servers.
    "body-only-client": {"secret": demo.SANDBOX_CLIENT_SECRET, "basic": False, "body": True},
}


def _error(code: str, description: str, status: int = 400) -> JsonResponse:
    response = JsonResponse({"error": code, "error_description": description}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="sandbox"'
    return response


def _basic_credentials(request: HttpRequest, *, form_decode: bool) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    if form_decode:  # RFC 6749 §2.3.1
        return unquote_plus(user), unquote_plus(password)
    return user, password


def _client(request: HttpRequest) -> str | JsonResponse:
    """The authenticated client's id, or the error response that refuses it."""
    basic = _basic_credentials(request, form_decode=True)
    if basic is not None:
        client_id, secret = basic
        client = CLIENTS.get(client_id)
        if client is None or not client["basic"] or client["secret"] != secret:
            return _error("invalid_client", "Client authentication failed.", 401)
        return client_id
    client_id = request.POST.get("client_id", "")
    client = CLIENTS.get(client_id)
    if client is None or client["secret"] != request.POST.get("client_secret", ""):
        return _error("invalid_client", "Client authentication failed.", 401)
    return client_id


def _issue(client_id: str, subject: str, scope: str) -> JsonResponse:
    token = secrets.token_urlsafe(24)
    cache.set(f"sandbox-token:{token}", subject, timeout=TOKEN_LIFETIME)
    return JsonResponse(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": scope or "read",
            "refresh_token": secrets.token_urlsafe(16),
        },
        headers={"Cache-Control": "no-store"},
    )


@csrf_exempt
@login_not_required
@require_POST
def sandbox_token(request: HttpRequest) -> JsonResponse:
    """The demo token endpoint: password, client credentials and refresh token grants."""
    client_id = _client(request)
    if isinstance(client_id, JsonResponse):
        return client_id
    grant = request.POST.get("grant_type", "")
    scope = request.POST.get("scope", "")
    if grant == "password":
        if (request.POST.get("username"), request.POST.get("password")) != (
            demo.SANDBOX_USERNAME,
            demo.SANDBOX_PASSWORD,
        ):
            return _error("invalid_grant", "Invalid resource owner credentials.")
        return _issue(client_id, demo.SANDBOX_USERNAME, scope)
    if grant == "client_credentials":
        return _issue(client_id, f"client:{client_id}", scope)
    if grant == "refresh_token":
        if request.POST.get("refresh_token") != demo.SANDBOX_REFRESH_TOKEN:
            return _error("invalid_grant", "The refresh token is invalid or expired.")
        return _issue(client_id, demo.SANDBOX_USERNAME, scope)
    return _error("unsupported_grant_type", f"Grant type {grant!r} is not supported here.")


def _api_subject(request: HttpRequest) -> str | None:
    if request.headers.get("X-Api-Key") == demo.SANDBOX_API_KEY:
        return "api-key"
    if request.GET.get("api_key") == demo.SANDBOX_API_KEY:
        return "api-key"
    if _basic_credentials(request, form_decode=False) == demo.SANDBOX_BASIC:
        return demo.SANDBOX_BASIC[0]
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = header[7:]
        if token == demo.SANDBOX_BEARER:
            return "bearer"
        return cache.get(f"sandbox-token:{token}")
    return None


@login_not_required
@require_GET
def sandbox_api(request: HttpRequest, resource: str) -> JsonResponse:
    """The demo API: /public needs nothing, everything else a valid credential."""
    if resource == "public":
        return JsonResponse({"status": "ok", "resource": resource})
    subject = _api_subject(request)
    if subject is None:
        response = JsonResponse({"error": "unauthorized"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="sandbox"'
        return response
    return JsonResponse({"status": "ok", "resource": resource, "subject": subject})


urlpatterns = [
    path("oauth/token", sandbox_token, name="sandbox-token"),
    path("api/<path:resource>", sandbox_api, name="sandbox-api"),
]
