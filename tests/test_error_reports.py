"""Debug pages and error e-mails cleanse posted secrets and file bodies, DEBUG on or off."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from django.views.debug import ExceptionReporter

from config.error_reports import CleansingExceptionReporterFilter
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def crashing_view(request: HttpRequest) -> HttpResponse:
    # Secrets reach local variables the way real code gets them, from the request.
    client_secret = request.POST.get("client_secret", "")
    token_pair = {"access_token": request.POST.get("password", ""), "token_type": "Bearer"}
    rows = [{"key": "X-Tenant", "value": request.POST.get("tenant_header", ""), "sensitive": True}]
    body = request.FILES["file"].read().decode() if "file" in request.FILES else ""
    document = json.loads(body) if body else {}
    note = f"using {len(client_secret)} {len(token_pair)} {len(rows)} {len(document)}"
    raise RuntimeError(f"the remote service broke ({note})")


urlpatterns = [path("crash/", crashing_view)]


# Kept far from the view above, so no source line the report quotes contains one.
CLIENT_SECRET = "cs-CANARY-7b1e2d"
PASSWORD = "pw-CANARY-93ac0f"
API_KEY = "ak-CANARY-55d0aa"
TENANT = "th-CANARY-0c4f11"
FILE_SECRET = "file-CANARY-e8a2b4"
IMPORT_FILE = json.dumps(
    {
        "version": 1,
        "connectors": [
            {
                "name": "hr_portal",
                "base_url": "https://api.example.com",
                "auth_config": "oauth2",
                "oauth2_client_secret": FILE_SECRET,
                "headers": [
                    {"key": "X-Id", "value": FILE_SECRET, "sensitive": True},
                    {"key": "X-Api-Key", "value": FILE_SECRET},  # omitted: follows the key
                ],
                "description": "x" * 300,
            }
        ],
    }
)
CANARIES = (CLIENT_SECRET, PASSWORD, API_KEY, TENANT, FILE_SECRET)


def post_crash(client: Client) -> HttpResponse:
    client.force_login(make_user("operator"))
    return client.post(
        "/crash/",
        {
            "client_secret": CLIENT_SECRET,
            "password": PASSWORD,
            "api_key": API_KEY,
            "tenant_header": TENANT,
            "file": SimpleUploadedFile("connectors.json", IMPORT_FILE.encode()),
        },
    )


def assert_cleansed(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text
    assert "client_secret" in text  # the names are still there, so the report says what was sent


def test_the_debug_page_cleanses_posted_secrets_and_file_bodies(settings):
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    response = post_crash(client)
    assert response.status_code == 500
    page = response.content.decode()
    assert "RuntimeError" in page and "the remote service broke" in page  # the technical page
    assert "crashing_view" in page  # with its frames
    assert_cleansed(page)


def test_the_error_email_cleanses_posted_secrets(settings):
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.invalid")]
    client = Client(raise_request_exception=False)
    assert post_crash(client).status_code == 500
    (message,) = mail.outbox
    assert "RuntimeError" in message.body
    assert_cleansed(message.body)


def test_the_html_error_report_cleanses_frame_variables(rf, settings):
    settings.DEBUG = True
    request = rf.post(
        "/crash/",
        {
            "client_secret": CLIENT_SECRET,
            "password": PASSWORD,
            "api_key": API_KEY,
            "tenant_header": TENANT,
            "file": SimpleUploadedFile("connectors.json", IMPORT_FILE.encode()),
        },
    )
    try:
        crashing_view(request)
    except RuntimeError:
        exc_info = sys.exc_info()
    reporter = ExceptionReporter(request, *exc_info, is_email=True)
    html = reporter.get_traceback_html()
    assert "document" in html and "token_pair" in html  # the variables are listed
    assert_cleansed(html)
    assert_cleansed(reporter.get_traceback_text())


def test_the_filter_is_active_with_debug_on(settings):
    settings.DEBUG = True
    assert settings.DEFAULT_EXCEPTION_REPORTER_FILTER.endswith("CleansingExceptionReporterFilter")
    assert CleansingExceptionReporterFilter().is_active(None)


def test_deep_nesting_is_summarised_not_walked():
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    cleansed = CleansingExceptionReporterFilter().cleanse_value("doc", nested)
    assert "list of 1 items" in json.dumps(cleansed)


def test_settings_on_the_debug_page_are_cleansed(settings):
    settings.REDIS_URL = "redis://:redis-CANARY-1f@127.0.0.1:6379/0"
    safe = CleansingExceptionReporterFilter().get_safe_settings()
    assert "redis-CANARY" not in repr(safe)
    assert "CANARY" not in repr(safe["CACHES"])


logger = logging.getLogger(__name__)
