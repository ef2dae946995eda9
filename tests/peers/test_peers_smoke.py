"""Smoke tests proving the loopback peers behave as the integration tests assume.

No Django test database is involved: the DOT peer is a separate process with its own
settings; everything is exercised over real HTTP with plain ``requests``.
"""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_plus

import pytest
import requests

from .fault_server import FAULT_PATHS, HTML500_TITLE, MIB, REDIRECT_LOCATION
from .servers import FaultServer, OAuthPeer, start_oauth_server

TIMEOUT = 10


def rfc6749_basic(client_id: str, client_secret: str) -> str:
    """HTTP Basic per RFC 6749 §2.3.1: form-urlencode id and secret, then base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")


def raw_basic(client_id: str, client_secret: str) -> str:
    """HTTP Basic WITHOUT the §2.3.1 urlencoding step (what many clients wrongly do)."""
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")


# --------------------------------------------------------------------------------------
# DOT peer
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthPeer]:
    with start_oauth_server(tmp_path_factory.mktemp("dot")) as peer:
        yield peer


def password_grant(peer: OAuthPeer, **overrides: str) -> dict[str, str]:
    data = {"grant_type": "password", "username": peer.username, "password": peer.password}
    data.update(overrides)
    return data


def test_dot_password_grant_with_rfc6749_basic_auth_and_me(dot: OAuthPeer) -> None:
    response = requests.post(
        dot.token_url,
        data=password_grant(dot, scope="read"),
        headers={"Authorization": rfc6749_basic(dot.client_id, dot.client_secret)},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "read"
    assert isinstance(token["expires_in"], int)

    me = requests.get(
        dot.me_url, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=TIMEOUT
    )
    assert me.status_code == 200, me.text
    assert me.json() == {"username": "alice", "client_id": dot.client_id, "scope": "read"}


def test_dot_password_grant_with_body_credentials(dot: OAuthPeer) -> None:
    response = requests.post(
        dot.token_url,
        data=password_grant(dot, client_id=dot.client_id, client_secret=dot.client_secret),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


def test_dot_secret_really_needs_rfc6749_encoding(dot: OAuthPeer) -> None:
    """The fixture secret contains ``+``/``%41``: Basic without urlencoding must fail."""
    response = requests.post(
        dot.token_url,
        data=password_grant(dot),
        headers={"Authorization": raw_basic(dot.client_id, dot.client_secret)},
        timeout=TIMEOUT,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_dot_stores_hashed_secret_with_fast_hasher(dot: OAuthPeer) -> None:
    db = sqlite3.connect(dot.data_dir / "dot_peer.sqlite3")
    try:
        rows = db.execute("SELECT client_id, client_secret FROM oauth2_provider_application")
        secrets = dict(rows.fetchall())
    finally:
        db.close()
    public = secrets.pop(dot.authcode_public_client_id)
    assert public == ""  # a public client has no secret to hash
    assert set(secrets) == {
        dot.client_id,
        dot.cc_only_client_id,
        dot.cc_client_id,
        dot.authcode_client_id,
    }
    assert all(secret.startswith("md5$") for secret in secrets.values()), secrets
    assert dot.client_secret not in secrets.values()


def test_dot_token_request_is_fast(dot: OAuthPeer) -> None:
    started = time.monotonic()
    response = requests.post(
        dot.token_url,
        data=password_grant(dot),
        headers={"Authorization": rfc6749_basic(dot.client_id, dot.client_secret)},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert time.monotonic() - started < 0.5  # PBKDF2 would take ~1 s


def test_dot_wrong_secret_is_invalid_client(dot: OAuthPeer) -> None:
    response = requests.post(
        dot.token_url,
        data=password_grant(dot),
        headers={"Authorization": rfc6749_basic(dot.client_id, dot.client_secret + "x")},
        timeout=TIMEOUT,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_dot_wrong_password_is_invalid_grant(dot: OAuthPeer) -> None:
    response = requests.post(
        dot.token_url,
        data=password_grant(dot, password="wrong"),
        headers={"Authorization": rfc6749_basic(dot.client_id, dot.client_secret)},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_dot_cc_only_app_with_password_grant_is_unauthorized_client(dot: OAuthPeer) -> None:
    response = requests.post(
        dot.token_url,
        data=password_grant(dot),
        headers={"Authorization": rfc6749_basic(dot.cc_only_client_id, dot.cc_only_client_secret)},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_dot_unknown_scope_is_invalid_scope(dot: OAuthPeer) -> None:
    response = requests.post(
        dot.token_url,
        data=password_grant(dot, scope="admin"),
        headers={"Authorization": rfc6749_basic(dot.client_id, dot.client_secret)},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_dot_client_credentials_grant(dot: OAuthPeer) -> None:
    response = requests.post(
        dot.token_url,
        data={"grant_type": "client_credentials", "scope": "read write"},
        headers={"Authorization": rfc6749_basic(dot.cc_client_id, dot.cc_client_secret)},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    token = response.json()
    assert "refresh_token" not in token
    me = requests.get(
        dot.me_url, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=TIMEOUT
    )
    assert me.json() == {"username": None, "client_id": dot.cc_client_id, "scope": "read write"}


def test_dot_me_rejects_missing_or_bad_token(dot: OAuthPeer) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = requests.get(dot.me_url, headers=headers, timeout=TIMEOUT)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --------------------------------------------------------------------------------------
# Fault peer
# --------------------------------------------------------------------------------------


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def test_fault_records_requests_verbatim(fault: FaultServer) -> None:
    body = "grant_type=password&password=p%2Bw&client_id=x"
    requests.post(
        fault.url("/ok?x=1"),
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Probe": "1"},
        timeout=TIMEOUT,
    )
    (recorded,) = fault.requests
    assert (recorded.method, recorded.path) == ("POST", "/ok?x=1")
    assert recorded.body == body.encode()
    assert recorded.form["password"] == "p+w"
    assert recorded.header("x-probe") == "1"


def test_fault_simple_bodies(fault: FaultServer) -> None:
    ok = requests.post(fault.url("/ok"), timeout=TIMEOUT)
    assert ok.json()["expires_in"] == "3600"

    form = requests.post(fault.url("/form"), timeout=TIMEOUT)
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "access_token=form-token" in form.text

    notoken = requests.post(fault.url("/notoken"), timeout=TIMEOUT)
    assert notoken.status_code == 200 and "access_token" not in notoken.json()

    error200 = requests.post(fault.url("/error200"), timeout=TIMEOUT)
    assert error200.status_code == 200 and error200.json()["error"] == "invalid_grant"

    html = requests.post(fault.url("/html500"), timeout=TIMEOUT)
    assert html.status_code == 500 and f"<title>{HTML500_TITLE}</title>" in html.text

    notjson = requests.post(fault.url("/notjson"), timeout=TIMEOUT)
    assert notjson.status_code == 200
    with pytest.raises(ValueError):
        json.loads(notjson.text)

    redirect = requests.post(fault.url("/redirect"), allow_redirects=False, timeout=TIMEOUT)
    assert redirect.status_code == 302 and redirect.headers["Location"] == REDIRECT_LOCATION


def test_fault_echo_leaks_credentials(fault: FaultServer) -> None:
    response = requests.post(
        fault.url("/echo"),
        data={"grant_type": "password", "password": "pw+/:%é", "client_secret": "cs+/:%é"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    description = response.json()["error_description"]
    assert "pw+/:%é" in description and "cs+/:%é" in description

    via_basic = requests.post(
        fault.url("/echo"),
        data={"password": "pw"},
        headers={"Authorization": rfc6749_basic("id", "basic+sec/ret")},
        timeout=TIMEOUT,
    )
    assert "basic+sec/ret" in via_basic.json()["error_description"]


def test_fault_client_auth_modes(fault: FaultServer) -> None:
    encoded = {"Authorization": rfc6749_basic(fault.client_id, fault.client_secret)}
    unencoded = {"Authorization": raw_basic(fault.client_id, fault.client_secret)}
    body_creds = {"client_id": fault.client_id, "client_secret": fault.client_secret}

    def post(path: str, headers: dict[str, str], data: dict[str, str]) -> requests.Response:
        data = {"grant_type": "client_credentials", **data}
        return requests.post(fault.url(path), headers=headers, data=data, timeout=TIMEOUT)

    assert post("/basic-only", encoded, {}).json()["access_token"] == "basic-only-token"
    assert post("/basic-only", unencoded, {}).status_code == 401
    assert post("/basic-only", {}, body_creds).json()["error"] == "invalid_client"

    assert post("/body-only", {}, body_creds).json()["access_token"] == "body-only-token"
    assert post("/body-only", encoded, {}).json()["error"] == "invalid_client"

    assert post("/basic-unencoded", unencoded, {}).status_code == 200
    assert post("/basic-unencoded", encoded, {}).status_code == 401

    fault.client_secret = "changed"
    assert post("/basic-only", encoded, {}).status_code == 401


def test_fault_jwt(fault: FaultServer) -> None:
    token = requests.post(fault.url("/jwt"), timeout=TIMEOUT).json()
    assert "expires_in" not in token
    header_b64, claims_b64, signature = token["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=" * (-len(claims_b64) % 4)))
    assert signature == ""
    assert claims["iss"] == fault.base_url and claims["sub"] == "alice"
    assert claims["aud"] == "connector-console"
    assert 3500 < claims["exp"] - time.time() <= 3600


@pytest.mark.parametrize("path", ["/huge", "/huge?nolength=1"])
def test_fault_huge_is_streamed(fault: FaultServer, path: str) -> None:
    with requests.post(fault.url(path), stream=True, timeout=TIMEOUT) as response:
        if "nolength" in path:
            assert "Content-Length" not in response.headers
        else:
            assert response.headers["Content-Length"] == str(30 * MIB)
        received = sum(len(chunk) for chunk in response.iter_content(1024 * 1024))
    assert received == 30 * MIB


def _raw_request(fault: FaultServer, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", fault.port), timeout=TIMEOUT)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode("ascii")
    )
    return sock


def test_fault_drip_sends_one_byte_per_interval(fault: FaultServer) -> None:
    fault.drip_interval = 0.2
    sock = _raw_request(fault, "/drip")
    try:
        received = b""
        deadline = time.monotonic() + 0.9
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                received += sock.recv(1024)
            except TimeoutError:
                pass
        assert b"HTTP/1.0 200 OK".startswith(received) and 3 <= len(received) <= 6
    finally:
        sock.close()


def test_fault_drip_body_sends_headers_at_once(fault: FaultServer) -> None:
    with requests.post(fault.url("/drip-body"), stream=True, timeout=(TIMEOUT, 3)) as response:
        assert response.status_code == 200
        first = response.raw.read(1)
    assert first == b"{"


def test_fault_timeout_never_answers(fault: FaultServer) -> None:
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(fault.url("/timeout"), timeout=(TIMEOUT, 0.3))
    assert fault.requests[-1].path == "/timeout"


def test_fault_stop_is_prompt_with_hanging_connections() -> None:
    server = FaultServer().start()
    port = server.port
    socks = [_raw_request(server, path) for path in ("/timeout", "/drip", "/drip-body", "/huge")]
    hung = threading.Event()

    def client() -> None:
        try:
            requests.post(server.url("/timeout"), timeout=(TIMEOUT, 30))
        except requests.RequestException:
            hung.set()

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while len(server.requests) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(server.requests) == 5

    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    thread.join(timeout=5)
    assert hung.is_set()  # the hanging client saw its connection cut
    for sock in socks:
        sock.close()
    with pytest.raises(requests.ConnectionError):
        requests.post(f"http://127.0.0.1:{port}/ok", timeout=1)


def test_fault_paths_are_documented() -> None:
    source = Path(__file__).with_name("fault_server.py").read_text(encoding="utf-8")
    doc = source.split('"""')[1]
    missing = [path for path in FAULT_PATHS if f"``{path}``" not in doc]
    assert not missing


def test_interop_peer_basic_decoding_as_the_libraries_do() -> None:
    """/strict-basic takes Basic as Authlib, node-oauth2-server and aioauth do (no §2.3.1
    decoding); /decoding-basic as django-oauth-toolkit does."""
    from .interop_server import InteropServer

    with InteropServer() as peer:
        encoded = rfc6749_basic(peer.client_id, peer.client_secret)
        plain = raw_basic(peer.client_id, peer.client_secret)
        data = {"grant_type": "client_credentials"}

        def status(path: str, authorization: str) -> int:
            headers = {"Authorization": authorization}
            return requests.post(
                peer.url(path), data=data, headers=headers, timeout=TIMEOUT
            ).status_code

        assert status("/strict-basic", encoded) == 401
        assert status("/strict-basic", plain) == 200
        assert status("/decoding-basic", encoded) == 200
        body = {**data, "client_id": peer.client_id, "client_secret": peer.client_secret}
        assert requests.post(peer.url("/strict-basic"), data=body, timeout=TIMEOUT).ok
        assert (
            requests.post(peer.url("/strict-basic-only"), data=body, timeout=TIMEOUT).status_code
            == 401
        )
