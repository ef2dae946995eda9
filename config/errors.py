"""The console's 404 and 500 answers (the 403 is audit.views.permission_denied + 403.html).

- 404: Django renders templates/404.html (in the console layout) only with DEBUG off; with
  DEBUG on (`make run`) a view's Http404 becomes the technical debug page. NotFoundPageMiddleware
  answers a view's Http404 with the same 404.html in both cases, so a missing connector always
  shows our page. An address that matches no URL pattern still gets the debug page with DEBUG
  on (it lists the patterns, which is what a developer wants there).
- 500: a plain page that cannot fail: templates/500.html is rendered without a request (no user,
  no session, no database query) and uses no tag that can raise; the addresses it links to are
  reversed here, each falling back to a fixed path, and if rendering fails all the same a fixed
  HTML text is sent. Django's own handler (a test's URLconf) renders it with the fixed paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError
from django.template import loader
from django.templatetags.static import static
from django.urls import reverse
from django.views import defaults

logger = logging.getLogger(__name__)

SERVER_ERROR_FALLBACK = (
    "<!doctype html><html lang=en><title>Server error · Connector Console</title>"
    "<main id=main><h1>Something went wrong on the server</h1><p>The error is in the server "
    "log. Try again in a moment; if it keeps happening, tell an administrator.</p>"
    '<p><a href="/">Back to the connectors</a></p></main></html>'
)


class NotFoundPageMiddleware:
    """Answers a view's Http404 with templates/404.html, with DEBUG on as well as off."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return defaults.page_not_found(request, exception)
        return None


def _address(resolve: Callable[[], str], fallback: str) -> str:
    try:
        return resolve()
    except Exception:  # a broken URLconf or static manifest must not break the error page
        return fallback


def _server_error_context() -> dict[str, dict[str, str]]:
    return {
        "css": {
            "bootstrap": _address(
                lambda: static("vendor/bootstrap/bootstrap.min.css"),
                "/static/vendor/bootstrap/bootstrap.min.css",
            ),
            "console": _address(
                lambda: static("connectors/console.css"), "/static/connectors/console.css"
            ),
        },
        "links": {
            "connectors": _address(lambda: reverse("connectors:list"), "/connectors/"),
            "dashboard": _address(lambda: reverse("dashboard"), "/dashboard/"),
            "audit": _address(lambda: reverse("audit:list"), "/audit/"),
        },
    }


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: templates/500.html, which needs no database; never raises."""
    body: str
    try:
        body = loader.render_to_string("500.html", _server_error_context())
    except Exception:  # the error page itself must not fail: a fixed text instead
        logger.exception("The 500 page could not be rendered; sent the fixed text instead")
        body = SERVER_ERROR_FALLBACK
    return HttpResponseServerError(body)
