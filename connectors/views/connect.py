"""Connect (Authorization Code Grant): the admin's button, the callback, and its result page.

The callback answers with a redirect to a result page, so the code and state never stay in the
address bar, the history or a Referer; the result travels in the session, shown once.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View

from audit.services import AuditWriteError
from connectors.authorization_code import (
    ConnectRefused,
    connect_ready,
    connector_connect_callback,
    connector_connect_start,
    redirect_uri_for,
)
from connectors.models import AuthConfig, Connector, GrantType
from connectors.oauth_http import url_origin
from connectors.views.base import AUDIT_FAILED_MESSAGE, ConnectorPermissionMixin

RESULT_SESSION_KEY = "connectors_oauth2_result"


def uses_connect(connector: Connector) -> bool:
    return (
        connector.auth_config == AuthConfig.OAUTH2
        and connector.oauth2_grant_type == GrantType.AUTHORIZATION_CODE
    )


def connect_context(request: HttpRequest, connector: Connector) -> dict[str, Any]:
    """What the detail page's Connect panel shows."""
    if not uses_connect(connector):
        return {"connect_panel": False}
    return {
        "connect_panel": True,
        "redirect_uri": redirect_uri_for(request),
        "can_connect": request.user.has_perm("connectors.change_connector"),
        "connect_problem": connect_ready(connector),
        "connected": bool(connector.oauth2_authorization_code_refresh_token),
    }


class ConnectFormActionMixin:
    """Lets the detail page's Connect form lead to the authorization server.

    The console's CSP says form-action 'self', which Chromium also applies to the redirect a
    form's answer makes; the page of an Authorization Code connector adds its Oauth2
    Authorization Url's origin, and only that one.
    """

    object: Connector

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().render_to_response(context, **kwargs)  # type: ignore[misc]
        connector = self.object
        origin = url_origin(connector.oauth2_authorization_url or "")
        if uses_connect(connector) and origin is not None:
            scheme, host, port = origin
            host = f"[{host}]" if ":" in host else host
            response._csp_update = {"form-action": [f"{scheme}://{host}:{port}"]}  # type: ignore[attr-defined]
        return response


class ConnectorConnectView(ConnectorPermissionMixin, View):
    """POST: remember a state and PKCE verifier, then send the browser to sign in."""

    permission_required = "connectors.change_connector"

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        connector = get_object_or_404(Connector.objects.prefetch_related("params"), name=name)
        try:
            url = connector_connect_start(
                connector=connector,
                user=request.user,
                session=request.session,
                redirect_uri=redirect_uri_for(request),
            )
        except ConnectRefused as exc:
            messages.error(request, str(exc))
            return redirect(connector)
        except AuditWriteError:
            messages.error(request, AUDIT_FAILED_MESSAGE)
            return redirect(connector)
        # The authorization server is another site: a redirect, never a page of ours with it.
        return HttpResponseRedirect(url)


class OAuth2CallbackView(ConnectorPermissionMixin, View):
    """GET: the authorization server's answer. Checked, exchanged, then shown once."""

    permission_required = "connectors.change_connector"

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            outcome = connector_connect_callback(
                session=request.session, user=request.user, params=request.GET
            )
        except AuditWriteError:
            result = {"ok": False, "title": "Not recorded", "message": AUDIT_FAILED_MESSAGE}
        else:
            result = {key: value for key, value in asdict(outcome).items() if key != "connector"}
            result["connector_name"] = outcome.connector.name if outcome.connector else ""
        request.session[RESULT_SESSION_KEY] = result
        return redirect("connectors:oauth2-callback-result")


class OAuth2CallbackResultView(ConnectorPermissionMixin, View):
    """The callback's outcome, in the console layout; the address carries no code."""

    permission_required = "connectors.change_connector"

    def get(self, request: HttpRequest) -> HttpResponse:
        result = request.session.pop(RESULT_SESSION_KEY, None)
        if not isinstance(result, dict):
            result = {
                "ok": False,
                "reason": "nothing",
                "title": "No connection to show",
                "message": "There is no Connect result waiting for this session.",
                "what_to_do": "Open a connector and press Connect.",
            }
        name = result.get("connector_name") or ""
        context = {
            "result": result,
            "connector_url": reverse("connectors:detail", kwargs={"name": name}) if name else "",
            "connector_name": name,
        }
        status = 200 if result.get("ok") else 400
        return render(request, "connectors/connect_result.html", context, status=status)


__all__ = [
    "ConnectFormActionMixin",
    "ConnectorConnectView",
    "OAuth2CallbackResultView",
    "OAuth2CallbackView",
    "connect_context",
    "uses_connect",
]
