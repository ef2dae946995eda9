"""ConnectorAuth goes through the one outbound client: policy, deadline, size cap, origin rule.

Everything talks to the loopback fault server; refused addresses come from a stub resolver, so
nothing is looked up or dialled beyond this machine.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
import requests

from connectors.auth import ConnectorAuth, ConnectorAuthError
from connectors.oauth_http import OutboundError, ResponseTooLarge
from tests.conftest import OAUTH2_PASSWORD

pytestmark = pytest.mark.django_db


def resolve_to(address: str) -> Callable[..., list[tuple]]:
    def resolver(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolver


@pytest.fixture
def bearer_connector(make_connector, fault_server):
    def make(name: str = "bearer_api", **overrides):
        values = {
            "auth_config": "bearer",
            "bearer_token": "bearer-secret-4242",
            "base_url": fault_server.url("/"),
            **overrides,
        }
        return make_connector(name, **values)

    return make


def test_a_blocked_address_is_refused_by_the_session_and_by_plain_requests(bearer_connector):
    connector = bearer_connector(base_url="https://api.example.test/")
    auth = ConnectorAuth(connector, resolver=resolve_to("10.0.0.1"))

    with pytest.raises(OutboundError) as refused:
        auth.session().get("https://api.example.test/v1/me")
    assert refused.value.outcome == "blocked"

    with pytest.raises(ConnectorAuthError) as plain:
        requests.get("https://api.example.test/v1/me", auth=auth, timeout=5)
    assert plain.value.outcome == "blocked"
    assert "bearer-secret-4242" not in str(plain.value)


@pytest.mark.usefixtures("loopback_allowed")
def test_loopback_is_refused_unless_the_policy_allows_it(bearer_connector, fault_server, settings):
    settings.CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = False
    auth = ConnectorAuth(bearer_connector())
    fault_server.clear_requests()
    with pytest.raises(OutboundError) as refused:
        auth.session().get(fault_server.url("/echo-api"))
    assert refused.value.outcome == "blocked"
    assert fault_server.requests == []


@pytest.mark.usefixtures("loopback_allowed")
def test_the_session_applies_the_credentials_under_the_base_url(bearer_connector, fault_server):
    response = ConnectorAuth(bearer_connector()).session().get(fault_server.url("/echo-api"))
    assert response.status_code == 200
    assert response.json()["authorization"] == "Bearer bearer-secret-4242"


@pytest.mark.usefixtures("loopback_allowed")
def test_credentials_go_only_to_the_base_url_origin(bearer_connector, fault_server):
    auth = ConnectorAuth(bearer_connector())
    other_origin = fault_server.url("/echo-api").replace("127.0.0.1", "localhost")
    fault_server.clear_requests()
    with pytest.raises(ConnectorAuthError, match="only sent under the connector's Base URL"):
        auth.session().get(other_origin)
    with pytest.raises(ConnectorAuthError, match="only sent under the connector's Base URL"):
        requests.get(other_origin, auth=auth, timeout=5)
    assert fault_server.requests == []


@pytest.mark.usefixtures("loopback_allowed")
def test_a_connector_without_base_url_sends_credentials_nowhere(bearer_connector, fault_server):
    auth = ConnectorAuth(bearer_connector(base_url=""))
    with pytest.raises(ConnectorAuthError, match="not set"):
        requests.get(fault_server.url("/echo-api"), auth=auth, timeout=5)


@pytest.mark.usefixtures("loopback_allowed")
def test_a_disabled_connector_sends_its_credentials_nowhere(bearer_connector, fault_server):
    connector = bearer_connector()
    connector.enabled = False
    connector.save()
    auth = ConnectorAuth(connector)
    fault_server.clear_requests()
    with pytest.raises(ConnectorAuthError, match="disabled"):
        auth.session().get(fault_server.url("/echo-api"))
    with pytest.raises(ConnectorAuthError, match="disabled"):
        requests.get(fault_server.url("/echo-api"), auth=auth, timeout=5)
    assert fault_server.requests == []


@pytest.mark.usefixtures("loopback_allowed")
def test_the_session_has_one_deadline(bearer_connector, fault_server, settings):
    settings.CONNECTORS_TOKEN_TIMEOUT = 1.0
    session = ConnectorAuth(bearer_connector()).session()
    started = time.monotonic()
    with pytest.raises(OutboundError) as slow:
        session.get(fault_server.url("/drip"))
    assert slow.value.outcome == "timeout"
    assert time.monotonic() - started < 2.5


@pytest.mark.usefixtures("loopback_allowed")
@pytest.mark.parametrize("path", ["/huge", "/huge?nolength=1"])
def test_the_session_caps_the_response_size(bearer_connector, fault_server, path):
    session = ConnectorAuth(bearer_connector()).session(max_body_bytes=64 * 1024)
    with pytest.raises(ResponseTooLarge, match="larger than 64 KiB"):
        session.get(fault_server.url(path))


@pytest.mark.usefixtures("loopback_allowed")
def test_the_session_returns_redirects_instead_of_following_them(bearer_connector, fault_server):
    fault_server.clear_requests()
    auth = ConnectorAuth(bearer_connector())
    with pytest.raises(ConnectorAuthError, match="another server"):
        auth.session().get(fault_server.url("/api-redirect"))
    assert [r.path for r in fault_server.requests] == ["/api-redirect"]


@pytest.mark.usefixtures("loopback_allowed")
def test_the_session_fetches_the_oauth2_token_and_calls_the_api(make_connector, fault_server):
    connector = make_connector(
        "oauth_api",
        **{
            **OAUTH2_PASSWORD,
            "oauth2_client_id": fault_server.client_id,
            "oauth2_client_secret": fault_server.client_secret,
            "oauth2_token_url": fault_server.url("/ok"),
            "base_url": fault_server.url("/"),
        },
    )
    response = ConnectorAuth(connector).session().get(fault_server.url("/echo-api"))
    assert response.status_code == 200
    assert response.json()["authorization"] == "Bearer ok-token"


def test_a_token_server_on_a_blocked_address_is_not_asked(make_connector):
    connector = make_connector(
        "oauth_blocked",
        **{**OAUTH2_PASSWORD, "oauth2_token_url": "https://login.example.test/token"},
    )
    auth = ConnectorAuth(connector, resolver=resolve_to("169.254.169.254"))
    with pytest.raises(ConnectorAuthError) as refused:
        auth.access_token()
    assert refused.value.outcome == "blocked"
