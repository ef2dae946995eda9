"""At DEBUG level, urllib3's request line carries no query value, whatever the parameter's name."""

from __future__ import annotations

import http.server
import io
import logging
import threading
from collections.abc import Iterator

import pytest
import requests

from config.log_redaction import mask_query_values

API_KEY = "qk-CANARY-4d21f9a0"


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def loopback_api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def console_at_debug() -> Iterator[io.StringIO]:
    """The configured console handler (settings.LOGGING), writing to a buffer, urllib3 at DEBUG."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    old_stream = handler.setStream(buffer)
    urllib3_logger = logging.getLogger("urllib3")
    old_level = urllib3_logger.level
    urllib3_logger.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        urllib3_logger.setLevel(old_level)
        handler.setStream(old_stream)


@pytest.mark.parametrize("param", ["apikey", "k", "x_tenant_sig", "q"])
def test_urllib3_request_line_has_no_query_value(loopback_api, console_at_debug, param):
    response = requests.get(f"{loopback_api}/v1/items?{param}={API_KEY}&page=2", timeout=5)
    assert response.status_code == 200
    output = console_at_debug.getvalue()
    assert f'"GET /v1/items?{param}=********&page=******** HTTP/1.1"' in output  # logged, masked
    assert API_KEY not in output


def test_masking_keeps_names_and_masks_bare_items():
    line = '127.0.0.1:80 "GET /a/b?k=SECRET&page=2;x=y HTTP/1.1" 200 5'
    assert mask_query_values(line) == (
        '127.0.0.1:80 "GET /a/b?k=********&page=********;x=******** HTTP/1.1" 200 5'
    )
    assert mask_query_values('"GET /a?SECRETVALUE HTTP/1.1"') == '"GET /a?******** HTTP/1.1"'


def test_other_loggers_keep_their_query_strings(console_at_debug):
    logging.getLogger("connectors.example").warning("see /connectors/?q=payroll")
    assert "/connectors/?q=payroll" in console_at_debug.getvalue()


@pytest.mark.django_db
@pytest.mark.usefixtures("loopback_allowed")
def test_the_connection_test_of_a_param_api_key_logs_no_key(
    make_connector, loopback_api, console_at_debug
):
    """From outside: the product's own transport, a loopback API, a parameter named `zq`."""
    from django.core.management import call_command

    make_connector(
        "param_key",
        base_url=loopback_api,
        auth_config="api_key",
        api_key_location="param",
        api_key_param_name="zq",
        api_key=API_KEY,
    )
    call_command("connector_test", "param_key", stdout=io.StringIO())
    output = console_at_debug.getvalue()
    assert "zq=********" in output  # the request line was logged, masked
    assert API_KEY not in output
