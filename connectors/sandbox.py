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

import jwt
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from connectors import demo
from connectors.jwks import jwks_document
from connectors.models import Connector
from connectors.oauth_http import assertions

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

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


def _verified_claims(token: str, connector_name: str, audience: str) -> dict | None:
    """The claims of a JWT signed by the demo connector's stored key, or None (PyJWT checks
    the signature, exp, iss and aud)."""
    key = (
        Connector.objects.filter(name=connector_name)
        .values_list("jwt_private_key", flat=True)
        .first()
    )
    if not key:
        return None
    try:
        public = assertions.public_key_pem(key)
        return jwt.decode(
            token,
            public,
            algorithms=["RS256", "PS256", "ES256"],
            audience=audience,
            issuer=demo.SANDBOX_JWT_ISSUER,
            options={"require": ["exp", "iat", "iss"]},
        )
    except (jwt.PyJWTError, assertions.SigningError):
        return None


def _jwks_verified_claims(token: str, audience: str) -> dict | None:
    """Jwks Auth: the claims of a JWT signed with a key of the console's published JWK Set
    (picked by the token's kid, as an API does with the JWKS URL), or None."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    for jwk in jwks_document()["keys"]:
        if jwk.get("kid") != kid:
            continue
        try:
            return jwt.decode(
                token,
                jwt.PyJWK(jwk).key,
                algorithms=["RS256"],
                audience=audience,
                issuer=demo.SANDBOX_JWT_ISSUER,
                options={"require": ["exp", "iat", "iss", "jti"]},
            )
        except jwt.PyJWTError:
            return None
    return None


def _jwt_bearer(request: HttpRequest) -> JsonResponse:
    """RFC 7523 §2.1: the assertion signed by the demo JWT Bearer connector, for the demo user."""
    claims = _verified_claims(
        request.POST.get("assertion", ""),
        demo.DEMO_JWT_BEARER,
        request.build_absolute_uri(request.path),
    )
    if claims is None:
        return _error("invalid_grant", "The assertion's signature, issuer or audience is wrong.")
    if claims.get("sub") != demo.SANDBOX_USERNAME:
        return _error("invalid_grant", "Invalid 'sub' value in assertion.")
    return _issue(demo.SANDBOX_JWT_ISSUER, demo.SANDBOX_USERNAME, request.POST.get("scope", ""))


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
    """The demo token endpoint: password, client credentials, refresh token and JWT Bearer."""
    if request.POST.get("grant_type") == JWT_BEARER_GRANT:
        return _jwt_bearer(request)  # client authentication is optional for it (§3.1)
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
        if token.count(".") == 2:  # Jwt or Jwks Auth: a JWT for the API's Base URL
            # The aud a Jwt Auth demo signs by default: its Base URL, this API's root.
            audience = request.build_absolute_uri(reverse("sandbox-api", args=["x"]))[:-2]
            claims = _jwks_verified_claims(token, audience)
            if claims is not None:
                return f"jwks:{claims['sub']}"
            claims = _verified_claims(token, demo.DEMO_JWT_AUTH, audience)
            return f"jwt:{claims['sub']}" if claims else None
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
