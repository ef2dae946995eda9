"""Digits are ASCII digits: "³".isdigit() is true but int("³") raises, which answered a 500.

Each place that checked isdigit() before int() gets "³" (and "²", "١" Arabic-Indic one) here.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from connectors.models import Batch
from connectors.oauth_http.token_response import _lookup
from tests.test_oauth_http import (  # noqa: F401 - `server` is a fixture
    LoopbackServer,
    make_request,
    perform,
    server,
)

NOT_ASCII_DIGITS = ["³", "²", "١"]


@pytest.mark.django_db
@pytest.mark.parametrize("digits", NOT_ASCII_DIGITS)
@pytest.mark.parametrize("param", ["before", "after", "user", "connector"])
def test_the_audit_page_ignores_non_ascii_digits(admin_client, param: str, digits: str) -> None:
    response = admin_client.get("/audit/", {param: digits})
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("digits", [*NOT_ASCII_DIGITS, "9" * 5000])
def test_pinning_with_a_non_ascii_version_asks_for_a_new_test(
    admin_client, make_connector, digits: str
) -> None:
    make_connector("pinme")
    response = admin_client.post(
        "/connectors/pinme/pin/", {"method": "request_body", "version": digits}, follow=True
    )
    assert response.status_code == 200
    assert "Run the test again, then pin the method it found." in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("digits", NOT_ASCII_DIGITS)
def test_test_selected_ignores_non_ascii_ids(admin_client, make_connector, digits: str) -> None:
    make_connector("hr_portal")
    response = admin_client.post(
        reverse("connectors:batch-start"), {"scope": "selected", "ids": [digits]}, follow=True
    )
    assert response.status_code == 200
    assert "Select at least one connector to test." in response.content.decode()
    assert not Batch.objects.exists()


@pytest.mark.parametrize("digits", NOT_ASCII_DIGITS)
def test_a_dotted_token_key_with_non_ascii_digits_finds_nothing(digits: str) -> None:
    assert _lookup({"data": ["tok"]}, f"data.{digits}") is None
    assert _lookup({"data": ["tok"]}, "data.0") == "tok"


def test_a_non_ascii_content_length_is_not_a_length(server: LoopbackServer) -> None:  # noqa: F811
    body = b'{"access_token": "tok-abcdef123456", "token_type": "Bearer"}'
    server.respond(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: \xb3\r\nConnection: close\r\n\r\n" + body
    )
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.ok, result.outcome
    assert result.access_token == "tok-abcdef123456"
