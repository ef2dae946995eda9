"""The token request on the wire: exact bytes sent, responses read, outcomes, deadline, caps.

Every HTTP test talks to a raw loopback server started here (127.0.0.1, port 0) that records the
request exactly as received and answers with canned bytes. Nothing connects beyond loopback.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote_plus

import pytest

from connectors.explain import FIELD_LABELS, api_hint, token_hint
from connectors.explain import OUTCOME_TEXTS as OUTCOMES
from connectors.oauth_http import (
    BLOCKED_MESSAGE,
    ApiRequest,
    OutboundPolicy,
    Param,
    TokenRequest,
    TokenResult,
    api_request_perform,
    token_request_as_curl,
    token_request_perform,
)
from connectors.oauth_http.redaction import MASK

LOOPBACK = OutboundPolicy(allow_loopback=True)


def hint_of(result: object) -> str:
    """The advice for a result, as the console words it (connectors.explain)."""
    if isinstance(result, TokenResult):
        return token_hint(result)
    return api_hint(result)  # type: ignore[arg-type]


CLIENT_ID = "client id+1"
CLIENT_SECRET = "a+b/c:d%e é"
# base64("client+id%2B1:a%2Bb%2Fc%3Ad%25e+%C3%A9"): each value form-urlencoded (RFC 6749 §2.3.1)
# before the Basic scheme joins them. Written out so the test does not share code with the module.
BASIC_CLIENT_ENCODED = "Basic Y2xpZW50K2lkJTJCMTphJTJCYiUyRmMlM0FkJTI1ZSslQzMlQTk="
# base64("client id+1:a+b/c:d%e é") in UTF-8: the same credentials without the §2.3.1 step.
BASIC_CLIENT_UNENCODED = "Basic Y2xpZW50IGlkKzE6YStiL2M6ZCVlIMOp"
USERNAME = "alice@example.com"
PASSWORD = "p@ss wörd&=hunter2"


# --------------------------------------------------------------------------------------------
# A loopback HTTP server that records raw requests


@dataclass
class Recorded:
    request_line: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def form(self) -> list[tuple[str, str]]:
        from urllib.parse import parse_qsl

        return parse_qsl(self.body.decode(), keep_blank_values=True)


Responder = bytes | Callable[[socket.socket, threading.Event], None]


def http_response(
    status: int = 200,
    body: bytes | str = b"",
    content_type: str | None = "application/json",
    headers: tuple[tuple[str, str], ...] = (),
    reason: str = "Status",
) -> bytes:
    payload = body.encode() if isinstance(body, str) else body
    lines = [f"HTTP/1.1 {status} {reason}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [f"Content-Length: {len(payload)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def json_response(document: object, status: int = 200, content_type: str = "application/json"):
    return http_response(status, json.dumps(document), content_type)


def token_ok(**extra: object) -> bytes:
    return json_response({"access_token": "tok-abcdef123456", "token_type": "Bearer", **extra})


def oauth_error(error: str, status: int = 400, description: str = "") -> bytes:
    document = {"error": error}
    if description:
        document["error_description"] = description
    return json_response(document, status)


def drip(prefix: bytes, interval: float = 0.25, give_up_after: float = 8.0) -> Responder:
    """Send `prefix`, then one byte every `interval` seconds until the client goes away.

    It gives up after a while so that a client without a working deadline fails the test's
    elapsed-time assertion instead of hanging the suite.
    """

    def respond(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(prefix)
        give_up = time.monotonic() + give_up_after
        while not stop.is_set() and time.monotonic() < give_up:
            try:
                conn.sendall(b"x")
            except OSError:
                return
            stop.wait(interval)

    return respond


def delayed(seconds: float, response: bytes) -> Responder:
    def respond(conn: socket.socket, stop: threading.Event) -> None:
        stop.wait(seconds)
        conn.sendall(response)

    return respond


def endless_body(total: int, declare_length: bool) -> Responder:
    """A body of `total` bytes streamed in 64 KiB chunks, never built in memory."""

    def respond(conn: socket.socket, stop: threading.Event) -> None:
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        if declare_length:
            head += f"Content-Length: {total}\r\n"
        conn.sendall((head + "\r\n").encode())
        chunk = b"a" * 65_536
        sent = 0
        while sent < total and not stop.is_set():
            try:
                conn.sendall(chunk)
            except OSError:
                return
            sent += len(chunk)

    return respond


class LoopbackServer:
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(1.0)
        self.port = self._listener.getsockname()[1]
        self._ssl_context = ssl_context
        self._responders: list[Responder] = []
        self._lock = threading.Lock()
        self.default: Responder = token_ok()
        self.requests: list[Recorded] = []
        self.server_names: list[str | None] = []
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)

    def url(self, path: str = "/oauth/token", host: str = "127.0.0.1", scheme: str = "http"):
        return f"{scheme}://{host}:{self.port}{path}"

    def respond(self, *responders: Responder) -> None:
        with self._lock:
            self._responders.extend(responders)

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        for thread in self._threads:
            thread.join(timeout=2)
        self._listener.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.stop.is_set():
                conn.close()
                return
            handler = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            handler.start()
            self._threads.append(handler)

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if self._ssl_context is not None:
                try:
                    conn = self._ssl_context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    return
            recorded = self._read_request(conn)
            if recorded is None:
                return
            with self._lock:
                self.requests.append(recorded)
                responder = self._responders.pop(0) if self._responders else self.default
            if isinstance(responder, bytes):
                conn.sendall(responder)
            else:
                responder(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _read_request(conn: socket.socket) -> Recorded | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65_536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        while len(body) < length:
            chunk = conn.recv(65_536)
            if not chunk:
                break
            body += chunk
        return Recorded(lines[0], headers, body, head + b"\r\n\r\n" + body)


@pytest.fixture
def server():
    srv = LoopbackServer()
    yield srv
    srv.close()


def make_request(server: LoopbackServer, **overrides: object) -> TokenRequest:
    values: dict[str, object] = {
        "token_url": server.url(),
        "grant_type": "password",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "username": USERNAME,
        "password": PASSWORD,
        "timeout": 5.0,
    }
    values.update(overrides)
    return TokenRequest(**values)  # type: ignore[arg-type]


def perform(request: TokenRequest, **kwargs: object) -> TokenResult:
    kwargs.setdefault("policy", LOOPBACK)
    kwargs.setdefault("labels", FIELD_LABELS)  # messages name fields as the console's form does
    return token_request_perform(request, **kwargs)  # type: ignore[arg-type]


def resolve_to(address: str) -> Callable[..., list[tuple]]:
    def resolver(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolver


# --------------------------------------------------------------------------------------------
# TLS material, generated once: a CA and a leaf for token.example.test and 127.0.0.1


@dataclass
class Certificates:
    ca_pem: str
    cert_file: str
    key_file: str
    other_ca_pem: str = field(default="")


def _make_ca(name: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key, ca_cert = _make_ca("Connector Console Test CA")
    _, other_ca = _make_ca("Some Other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token.example.test")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("token.example.test"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file = directory / "leaf.pem"
    key_file = directory / "leaf.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificates(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
        cert_file=str(cert_file),
        key_file=str(key_file),
        other_ca_pem=other_ca.public_bytes(serialization.Encoding.PEM).decode(),
    )


@pytest.fixture
def tls_server(certificates: Certificates):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.cert_file, certificates.key_file)
    srv = LoopbackServer(ssl_context=context)

    def record_sni(sock: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
        srv.server_names.append(server_name)

    context.sni_callback = record_sni
    yield srv
    srv.close()


# --------------------------------------------------------------------------------------------
# Exact request bytes


def test_basic_client_request_bytes_are_exact(server: LoopbackServer) -> None:
    request = make_request(
        server,
        scope="read write",
        client_authentication="basic_client",
        additional_headers=(
            Param("X-Tenant", "acme"),
            Param("X-Api-Key", "k-secret-123", sensitive=True),
        ),
        additional_request_data=(
            Param("audience", "https://api.example.com"),
            Param("resource", "r1"),
        ),
    )
    result = perform(request)

    assert result.ok, result
    [sent] = server.requests
    assert sent.request_line == "POST /oauth/token HTTP/1.1"
    expected_body = (
        b"grant_type=password&username=alice%40example.com"
        b"&password=p%40ss+w%C3%B6rd%26%3Dhunter2&scope=read+write"
        b"&audience=https%3A%2F%2Fapi.example.com&resource=r1"
    )
    assert sent.body == expected_body
    assert sent.headers == [
        ("Host", f"127.0.0.1:{server.port}"),
        ("Accept-Encoding", "identity"),
        ("User-Agent", "ConnectorConsole/0.1"),
        ("Accept", "application/json"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Authorization", BASIC_CLIENT_ENCODED),
        ("X-Tenant", "acme"),
        ("X-Api-Key", "k-secret-123"),
        ("Content-Length", str(len(expected_body))),
    ]


def test_basic_client_header_matches_rfc6749_section_2_3_1() -> None:
    # Independent of the module: urlencode each value, join with ":", base64 the UTF-8 bytes.
    joined = f"{quote_plus(CLIENT_ID)}:{quote_plus(CLIENT_SECRET)}"
    assert joined == "client+id%2B1:a%2Bb%2Fc%3Ad%25e+%C3%A9"
    assert "Basic " + base64.b64encode(joined.encode()).decode() == BASIC_CLIENT_ENCODED


def test_request_body_client_authentication_puts_credentials_in_body(
    server: LoopbackServer,
) -> None:
    result = perform(make_request(server, client_authentication="request_body"))

    assert result.ok
    [sent] = server.requests
    assert sent.header("Authorization") is None
    assert sent.body == (
        b"grant_type=password&username=alice%40example.com&password=p%40ss+w%C3%B6rd%26%3Dhunter2"
        b"&client_id=client+id%2B1&client_secret=a%2Bb%2Fc%3Ad%25e+%C3%A9"
    )
    assert result.client_authentication_used == "request_body"


def test_public_client_in_body_omits_empty_secret(server: LoopbackServer) -> None:
    perform(
        make_request(
            server,
            grant_type="client_credentials",
            client_secret="",
            client_authentication="request_body",
        )
    )
    assert server.requests[0].form() == [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
    ]


def test_basic_user_sends_plain_username_password_and_client_in_body(
    server: LoopbackServer,
) -> None:
    result = perform(make_request(server, client_authentication="basic_user"))

    [sent] = server.requests
    expected = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    assert sent.header("Authorization") == f"Basic {expected}"
    assert sent.form() == [
        ("grant_type", "password"),
        ("username", USERNAME),
        ("password", PASSWORD),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ]
    assert result.client_authentication_used == "basic_user"


def test_refresh_grant_and_custom_grant_type(server: LoopbackServer) -> None:
    perform(
        make_request(
            server,
            grant_type="refresh_token",
            refresh_token="rt-0123456789",
            scope="offline",
            client_authentication="basic_client",
            request_custom_grant_type="urn:example:refresh",
        )
    )
    assert server.requests[0].body == (
        b"grant_type=urn%3Aexample%3Arefresh&refresh_token=rt-0123456789&scope=offline"
    )


def test_client_credentials_grant_sends_no_user_fields(server: LoopbackServer) -> None:
    perform(
        make_request(server, grant_type="client_credentials", client_authentication="basic_client")
    )
    assert server.requests[0].body == b"grant_type=client_credentials"


def test_additional_header_replaces_a_default_header(server: LoopbackServer) -> None:
    perform(
        make_request(
            server,
            client_authentication="basic_client",
            additional_headers=(Param("accept", "application/vnd.example+json"),),
        )
    )
    sent = server.requests[0]
    assert [v for k, v in sent.headers if k.lower() == "accept"] == ["application/vnd.example+json"]


def test_no_client_id_sends_no_client_authentication(server: LoopbackServer) -> None:
    result = perform(make_request(server, client_id="", client_secret=""))

    [sent] = server.requests
    assert sent.header("Authorization") is None
    assert "client_id" not in dict(sent.form())
    assert len(result.attempts) == 1
    assert result.attempts[0].client_authentication == ""
    assert result.client_authentication_used is None


def test_attempt_records_masked_request(server: LoopbackServer) -> None:
    result = perform(
        make_request(
            server,
            client_authentication="basic_client",
            additional_headers=(Param("X-Custom", "hidden-value-1", sensitive=True),),
            additional_request_data=(
                Param("audience", "aud"),
                Param("code_verifier", "verifier-value-1", sensitive=True),
            ),
        )
    )
    [attempt] = result.attempts
    headers = dict(attempt.request_headers)
    assert headers["Authorization"] == f"Basic {MASK}"
    assert headers["X-Custom"] == MASK
    assert headers["Accept"] == "application/json"
    assert attempt.request_body == (
        ("grant_type", "password"),
        ("username", USERNAME),
        ("password", MASK),
        ("audience", "aud"),
        ("code_verifier", MASK),
    )
    assert attempt.method == "POST"
    assert attempt.url == server.url()
    assert attempt.status_code == 200


# --------------------------------------------------------------------------------------------
# Response shapes


def test_json_response_with_numeric_expiry(server: LoopbackServer) -> None:
    server.respond(
        json_response(
            {
                "access_token": "opaque-token-value",
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "read write",
                "refresh_token": "rt-new-value",
            }
        )
    )
    before = time.time()
    result = perform(make_request(server, client_authentication="basic_client"))

    assert result.outcome == "success"
    assert result.access_token == "opaque-token-value"
    token = result.token
    assert token is not None
    assert token.token_type == "Bearer"
    assert token.expires_in == 3600
    assert before + 3600 <= token.expires_at <= time.time() + 3600
    assert token.scope == "read write"
    assert token.refresh_token_issued is True
    import hashlib

    assert token.token_hash == hashlib.sha256(b"opaque-token-value").hexdigest()[:12]
    assert token.jwt_header is None and token.jwt_claims is None
    # Neither the token nor the refresh token is shown in the excerpt.
    assert "opaque-token-value" not in result.attempts[0].response_excerpt
    assert "rt-new-value" not in result.attempts[0].response_excerpt


def test_string_expires_in_is_read_as_seconds(server: LoopbackServer) -> None:
    server.respond(json_response({"access_token": "t-12345678", "expires_in": "3600"}))
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.token is not None and result.token.expires_in == 3600


def test_dotted_access_token_and_expiry_keys(server: LoopbackServer) -> None:
    server.respond(json_response({"data": {"token": "nested-token-1", "ttl": 120}}))
    result = perform(
        make_request(
            server,
            client_authentication="basic_client",
            access_token_key="data.token",
            expires_in_key="data.ttl",
        )
    )
    assert result.ok
    assert result.access_token == "nested-token-1"
    assert result.token is not None and result.token.expires_in == 120


def test_form_encoded_response_when_configured(server: LoopbackServer) -> None:
    server.respond(
        http_response(
            200,
            "access_token=form-token-1&token_type=bearer&expires_in=60&scope=repo",
            content_type="text/plain",
        )
    )
    result = perform(
        make_request(server, client_authentication="basic_client", response_type="form")
    )
    assert result.ok
    assert result.access_token == "form-token-1"
    assert result.token is not None
    assert (result.token.token_type, result.token.expires_in, result.token.scope) == (
        "bearer",
        60,
        "repo",
    )


def test_form_encoded_response_recognised_by_content_type(server: LoopbackServer) -> None:
    server.respond(
        http_response(
            200, "access_token=form-token-2&expires_in=30", "application/x-www-form-urlencoded"
        )
    )
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.ok and result.access_token == "form-token-2"


@pytest.mark.parametrize("content_type", ["text/plain", "text/html", None])
def test_json_under_wrong_content_type_is_read(server: LoopbackServer, content_type) -> None:
    server.respond(http_response(200, '{"access_token": "json-token-3"}', content_type))
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.ok and result.access_token == "json-token-3"


def make_jwt(claims: dict) -> str:
    def segment(document: dict) -> str:
        raw = json.dumps(document).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"{segment({'alg': 'RS256', 'typ': 'JWT', 'kid': 'k1'})}.{segment(claims)}.c2lnbmF0dXJl"


def test_jwt_exp_used_when_no_expiry_and_claims_are_filtered(server: LoopbackServer) -> None:
    exp = int(time.time()) + 900
    claims = {
        "iss": "https://issuer.example",
        "sub": "user-1",
        "aud": "api",
        "exp": exp,
        "iat": exp - 1000,
        "scope": "read",
        "email": "alice@example.com",
        "roles": ["admin"],
    }
    server.respond(json_response({"access_token": make_jwt(claims), "token_type": "Bearer"}))
    result = perform(make_request(server, client_authentication="basic_client"))

    assert result.ok
    token = result.token
    assert token is not None
    assert token.expires_at == exp
    assert exp - time.time() - 2 <= token.expires_in <= 900
    assert token.jwt_header == {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    assert token.jwt_claims == {
        "iss": "https://issuer.example",
        "sub": "user-1",
        "aud": "api",
        "exp": exp,
        "iat": exp - 1000,
        "scope": "read",
    }


def test_epoch_expiry(server: LoopbackServer) -> None:
    expires_at = int(time.time()) + 500
    server.respond(json_response({"access_token": "t-epoch-1", "expires_at": expires_at}))
    result = perform(
        make_request(
            server,
            client_authentication="basic_client",
            expires_in_key="expires_at",
            expires_in_format="epoch",
        )
    )
    assert result.token is not None
    assert result.token.expires_at == expires_at
    assert 495 <= result.token.expires_in <= 500


def test_iso8601_expiry(server: LoopbackServer) -> None:
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=2)
    server.respond(
        json_response(
            {"access_token": "t-iso-1", "expiry": moment.isoformat().replace("+00:00", "Z")}
        )
    )
    result = perform(
        make_request(
            server,
            client_authentication="basic_client",
            expires_in_key="expiry",
            expires_in_format="iso8601",
        )
    )
    assert result.token is not None
    assert result.token.expires_at == moment.timestamp()
    assert 7190 <= result.token.expires_in <= 7200


def test_unreadable_expiry_is_reported_not_fatal(server: LoopbackServer) -> None:
    server.respond(json_response({"access_token": "t-odd-1", "expires_in": "soon"}))
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.ok
    assert result.token is not None and result.token.expires_in is None
    assert "Json Expires In Key" in result.message


def test_no_token_lists_keys_found(server: LoopbackServer) -> None:
    server.respond(json_response({"data": {"accessToken": "x-123456789"}, "status": "ok"}))
    result = perform(make_request(server, client_authentication="basic_client"))

    assert result.outcome == "no_token"
    assert "data" in result.message and "status" in result.message
    assert "Json Access Token Key" in hint_of(result)
    assert "data.accessToken" in hint_of(result)
    assert result.client_authentication_used == "basic_client"


def test_oauth_error_in_http_200_body_is_that_error(server: LoopbackServer) -> None:
    server.respond(json_response({"error": "invalid_grant", "error_description": "bad"}, 200))
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.outcome == "invalid_grant"
    assert not result.ok


def test_unknown_error_code_on_400_is_http_error(server: LoopbackServer) -> None:
    server.respond(oauth_error("access_denied", 400, "nope"))
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.outcome == "http_error"
    assert "access_denied" in result.message


def test_oauth_error_on_other_status_is_http_error(server: LoopbackServer) -> None:
    server.respond(oauth_error("invalid_client", 403))
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.outcome == "http_error"


def test_html_error_page_is_described_by_title(server: LoopbackServer) -> None:
    page = "<!DOCTYPE html><html><head><title>Login &amp; Stuff</title></head><body>x</body></html>"
    server.respond(http_response(404, page, "text/html; charset=utf-8", reason="Not Found"))
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.outcome == "http_error"
    assert "HTML page titled 'Login & Stuff'" in result.message
    assert "404" in result.message
    assert "Oauth2 Token Url" in hint_of(result)


def test_html_page_with_200_is_invalid_response(server: LoopbackServer) -> None:
    server.respond(http_response(200, "<html><title>Welcome</title></html>", "text/html"))
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.outcome == "invalid_response"
    assert "Welcome" in result.message


# --------------------------------------------------------------------------------------------
# Automatic client authentication


def test_auto_basic_rejected_then_body_works(server: LoopbackServer) -> None:
    server.respond(oauth_error("invalid_client", 401), token_ok())
    result = perform(make_request(server))

    assert result.ok
    assert [a.client_authentication for a in result.attempts] == ["basic_client", "request_body"]
    assert [a.outcome for a in result.attempts] == ["invalid_client", "success"]
    assert result.client_authentication_used == "request_body"
    assert "request body" in hint_of(result)
    assert "Oauth2 Client Authentication" in hint_of(result)
    assert "OAuth 2.0 with Request Body" in hint_of(result)
    first, second = server.requests
    assert first.header("Authorization") == BASIC_CLIENT_ENCODED
    assert "client_secret" not in dict(first.form())
    # Never both methods in one request.
    assert second.header("Authorization") is None
    assert dict(second.form())["client_secret"] == CLIENT_SECRET


def test_auto_basic_works_suggests_pinning_it(server: LoopbackServer) -> None:
    result = perform(make_request(server))
    assert result.ok
    assert len(result.attempts) == 1
    assert result.client_authentication_used == "basic_client"
    assert "OAuth 2.0 with Basic Auth Header set to client id and client secret" in hint_of(result)


def test_auto_both_rejected_then_unencoded_basic_works(server: LoopbackServer) -> None:
    server.respond(
        oauth_error("invalid_client", 401), oauth_error("invalid_client", 401), token_ok()
    )
    result = perform(make_request(server))

    assert result.ok
    assert [a.client_authentication for a in result.attempts] == [
        "basic_client",
        "request_body",
        "basic_client_unencoded",
    ]
    assert server.requests[2].header("Authorization") == BASIC_CLIENT_UNENCODED
    assert "client_secret" not in dict(server.requests[2].form())
    # Issue 8: the value names what really worked (it was "basic_client" before).
    assert result.client_authentication_used == "basic_client_unencoded"
    assert "2.3.1" in result.message and "skips" in result.message
    assert "2.3.1" in hint_of(result)


def test_auto_both_rejected_without_encoding_difference_stops(server: LoopbackServer) -> None:
    server.respond(oauth_error("invalid_client", 401), oauth_error("invalid_client", 401))
    result = perform(make_request(server, client_id="plainid", client_secret="plainsecret"))

    assert result.outcome == "invalid_client"
    assert len(result.attempts) == 2
    assert len(server.requests) == 2
    assert result.client_authentication_used is None
    assert "Client ID" in hint_of(result) and "Client Secret" in hint_of(result)


def test_auto_all_three_rejected_reports_invalid_client(server: LoopbackServer) -> None:
    server.respond(*[oauth_error("invalid_client", 401)] * 3)
    result = perform(make_request(server))
    assert result.outcome == "invalid_client"
    assert len(result.attempts) == 3
    assert result.client_authentication_used is None


def test_auto_invalid_grant_on_first_attempt_stops(server: LoopbackServer) -> None:
    server.respond(oauth_error("invalid_grant", 400, "Invalid resource owner credentials"))
    result = perform(make_request(server))

    assert result.outcome == "invalid_grant"
    assert len(result.attempts) == 1 and len(server.requests) == 1
    assert result.client_authentication_used == "basic_client"
    assert "Password Grant Username" in hint_of(result)
    assert "Password Grant Password" in hint_of(result)
    assert "accepted" in hint_of(result)


@pytest.mark.parametrize(
    "rejection",
    [
        http_response(401, "", None),
        oauth_error("invalid_request", 400, "Missing client credentials"),
        oauth_error("invalid_request", 400, "Client authentication required"),
    ],
    ids=["401-no-body", "invalid_request-credentials", "invalid_request-authentication"],
)
def test_auto_moves_on_for_other_client_rejections(server: LoopbackServer, rejection) -> None:
    server.respond(rejection, token_ok())
    result = perform(make_request(server, client_id="plainid", client_secret="plainsecret"))
    assert result.ok
    assert result.client_authentication_used == "request_body"


def test_auto_stops_on_unrelated_invalid_request(server: LoopbackServer) -> None:
    server.respond(oauth_error("invalid_request", 400, "Missing parameter: audience"))
    result = perform(make_request(server))
    assert result.outcome == "invalid_request"
    assert len(result.attempts) == 1


def test_explicit_method_is_tried_alone(server: LoopbackServer) -> None:
    server.respond(oauth_error("invalid_client", 401))
    # Credentials the §2.3.1 encoding leaves unchanged: no unencoded retry applies.
    result = perform(
        make_request(
            server,
            client_authentication="basic_client",
            client_id="plainid",
            client_secret="plainsecret",
        )
    )
    assert result.outcome == "invalid_client"
    assert len(result.attempts) == 1
    assert "OAuth 2.0 with Request Body" in hint_of(result)


# --------------------------------------------------------------------------------------------
# Every outcome is reachable


@dataclass
class Harness:
    server: LoopbackServer
    tls_server: LoopbackServer


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def _gaierror(*args: object, **kwargs: object) -> list:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def _scenario_error(code: str, status: int = 400) -> Callable[[Harness], TokenResult]:
    def run(h: Harness) -> TokenResult:
        # Twice: pinned Basic retries unencoded once when the client is refused.
        h.server.respond(oauth_error(code, status), oauth_error(code, status))
        return perform(make_request(h.server, client_authentication="basic_client"))

    return run


def _respond_then(response: Responder, **overrides: object) -> Callable[[Harness], TokenResult]:
    def run(h: Harness) -> TokenResult:
        h.server.respond(response)
        return perform(make_request(h.server, client_authentication="basic_client", **overrides))

    return run


OUTCOME_SCENARIOS: dict[str, Callable[[Harness], TokenResult]] = {
    "success": _respond_then(token_ok()),
    "invalid_client": _scenario_error("invalid_client", 401),
    "invalid_grant": _scenario_error("invalid_grant"),
    "unauthorized_client": _scenario_error("unauthorized_client"),
    "unsupported_grant_type": _scenario_error("unsupported_grant_type"),
    "invalid_scope": _scenario_error("invalid_scope"),
    "invalid_request": _scenario_error("invalid_request"),
    "http_error": _respond_then(http_response(500, "boom", "text/plain")),
    "invalid_response": _respond_then(http_response(200, "hello", "text/plain")),
    "no_token": _respond_then(json_response({"result": "ok"})),
    "timeout": _respond_then(drip(b"HTTP/1.1 200 OK\r\n"), timeout=1.0),
    "connection_error": lambda h: perform(
        TokenRequest(f"http://127.0.0.1:{_closed_port()}/token", "client_credentials")
    ),
    "dns_error": lambda h: perform(
        TokenRequest("https://no-such-host.example.test/token", "client_credentials"),
        resolver=_gaierror,
    ),
    "tls_error": lambda h: perform(
        TokenRequest(h.tls_server.url(scheme="https"), "client_credentials")
    ),
    "redirect_refused": _respond_then(
        http_response(302, "", None, (("Location", "https://login.example.com/oauth2/token"),))
    ),
    "blocked": lambda h: perform(
        TokenRequest("https://token.example.test/token", "client_credentials"),
        resolver=resolve_to("10.0.0.1"),
    ),
    "config_error": lambda h: perform(TokenRequest("ftp://example.test/token", "password")),
}


def test_every_outcome_has_a_scenario_and_text() -> None:
    from connectors.explain import ConsoleOutcome

    # The console's own outcomes (e.g. reconnect_needed) are not the core's to reach.
    assert set(OUTCOME_SCENARIOS) == set(OUTCOMES) - set(ConsoleOutcome)
    for code, outcome in OUTCOMES.items():
        assert outcome.code == code
        assert outcome.label and outcome.explanation and outcome.next_step


@pytest.mark.parametrize("code", sorted(OUTCOME_SCENARIOS))
def test_outcome_is_reachable(code: str, server: LoopbackServer, tls_server: LoopbackServer):
    result = OUTCOME_SCENARIOS[code](Harness(server, tls_server))
    assert result.outcome == code, result.message
    assert result.ok is (code == "success")
    assert result.message
    assert result.attempts and result.attempts[-1].outcome == code
    if code != "success":
        assert hint_of(result)
    assert (result.token is not None) is (code == "success")


# --------------------------------------------------------------------------------------------
# Transport: deadline, size cap, redirects, TLS, DNS, policy


def test_timeout_holds_against_server_dripping_headers(server: LoopbackServer) -> None:
    server.respond(drip(b"HTTP/1.1 200 OK\r\nX-Slow: "))
    started = time.monotonic()
    result = perform(make_request(server, client_authentication="basic_client", timeout=1.5))
    elapsed = time.monotonic() - started

    assert result.outcome == "timeout"
    assert elapsed < 1.5 + 1.0
    assert "firewall" in hint_of(result)


def test_timeout_holds_against_server_dripping_body(server: LoopbackServer) -> None:
    server.respond(
        drip(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100000\r\n\r\n{"access_token": "'
        )
    )
    started = time.monotonic()
    result = perform(make_request(server, client_authentication="basic_client", timeout=1.5))
    elapsed = time.monotonic() - started

    assert result.outcome == "timeout"
    assert elapsed < 1.5 + 1.0


def test_deadline_covers_all_attempts(server: LoopbackServer) -> None:
    server.respond(delayed(1.0, oauth_error("invalid_client", 401)), drip(b"HTTP/1.1 200 OK\r\n"))
    started = time.monotonic()
    result = perform(make_request(server, timeout=1.5))
    elapsed = time.monotonic() - started

    assert [a.outcome for a in result.attempts] == ["invalid_client", "timeout"]
    assert result.outcome == "timeout"
    assert elapsed < 1.5 + 1.0


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "streamed"])
def test_huge_body_is_refused_quickly_with_bounded_memory(
    server: LoopbackServer, declare_length: bool
) -> None:
    server.respond(endless_body(30 * 1_048_576, declare_length))
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = perform(make_request(server, client_authentication="basic_client"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started

    assert result.outcome == "invalid_response"
    assert "larger than 1 MiB" in result.message
    assert elapsed < 3
    assert peak < 8 * 1_048_576


def test_redirect_is_refused_and_shows_the_whole_location_masked(server: LoopbackServer) -> None:
    # Issue 9: the full Location is shown (it is where the user should point the field), with
    # secret-looking query values and an authorization code masked.
    location = "https://login.example.com/oauth2/v2/token?code=abc&client_secret=zzz&tenant=t1"
    server.respond(http_response(301, "", None, (("Location", location),)))
    result = perform(make_request(server, client_authentication="basic_client"))

    assert result.outcome == "redirect_refused"
    assert len(server.requests) == 1
    shown = (
        "https://login.example.com/oauth2/v2/token?code=********&client_secret=********&tenant=t1"
    )
    assert shown in result.message and shown in hint_of(result)
    assert result.facts.redirect_location == shown
    assert "zzz" not in repr(result) and "abc" not in repr(result)
    assert dict(result.attempts[0].response_headers)["Location"] == shown


def test_a_relative_redirect_is_shown_as_an_absolute_url(server: LoopbackServer) -> None:
    server.respond(http_response(302, "", None, (("Location", "/oauth/token"),)))
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.facts.redirect_location == server.url("/oauth/token")


def test_tls_untrusted_certificate_is_tls_error(tls_server: LoopbackServer) -> None:
    result = perform(TokenRequest(tls_server.url(scheme="https"), "client_credentials"))
    assert result.outcome == "tls_error"
    assert "certificate" in result.message.lower()
    assert "CA bundle" in hint_of(result)


def test_tls_with_ca_bundle_pins_address_and_keeps_host_name(
    tls_server: LoopbackServer, certificates: Certificates
) -> None:
    calls: list[str] = []

    def resolver(host: str, port: int, *args: object) -> list[tuple]:
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    result = perform(
        TokenRequest(
            tls_server.url(host="token.example.test", scheme="https"),
            "client_credentials",
            ca_bundle=certificates.ca_pem,
        ),
        resolver=resolver,
    )
    assert result.ok, result.message
    assert calls == ["token.example.test"]
    assert tls_server.requests[0].header("Host") == f"token.example.test:{tls_server.port}"
    assert tls_server.server_names == ["token.example.test"]


def test_tls_certificate_for_another_name_is_tls_error(
    tls_server: LoopbackServer, certificates: Certificates
) -> None:
    result = perform(
        TokenRequest(
            tls_server.url(host="other.example.test", scheme="https"),
            "client_credentials",
            ca_bundle=certificates.ca_pem,
        ),
        resolver=resolve_to("127.0.0.1"),
    )
    assert result.outcome == "tls_error"
    assert not tls_server.requests


def test_tls_ca_bundle_of_another_authority_is_tls_error(
    tls_server: LoopbackServer, certificates: Certificates
) -> None:
    result = perform(
        TokenRequest(
            tls_server.url(scheme="https"),
            "client_credentials",
            ca_bundle=certificates.other_ca_pem,
        )
    )
    assert result.outcome == "tls_error"


def test_invalid_ca_bundle_is_config_error() -> None:
    result = perform(
        TokenRequest("https://token.example.test/t", "client_credentials", ca_bundle="not pem"),
        resolver=_fail_if_called,
    )
    assert result.outcome == "config_error"
    assert "CA bundle" in result.message


def _fail_if_called(*args: object, **kwargs: object) -> list:
    raise AssertionError("must not resolve")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.test/token",
        "https://user:pass@example.test/token",
        "not a url",
        "https:///token",
        "",
        "https://example.test:99999/token",
    ],
)
def test_unusable_url_is_config_error(url: str) -> None:
    result = perform(
        TokenRequest(url, "password", password="pw-secret-1"), resolver=_fail_if_called
    )
    assert result.outcome == "config_error"
    assert "Oauth2 Token Url" in result.message
    assert "pass@" not in repr(result)


def test_hanging_resolver_is_bounded_by_the_deadline() -> None:
    def hanging(*args: object, **kwargs: object) -> list:
        time.sleep(3)
        raise socket.gaierror(socket.EAI_AGAIN, "too late")

    started = time.monotonic()
    result = perform(
        TokenRequest("https://slow-dns.example.test/t", "client_credentials", timeout=1.0),
        resolver=hanging,
    )
    assert result.outcome == "timeout"
    assert time.monotonic() - started < 2.0


def test_resolver_unicode_error_is_dns_error_not_an_exception() -> None:
    # socket.getaddrinfo raises UnicodeError, not gaierror, for a label over 63 characters.
    def label_too_long(*args: object, **kwargs: object) -> list:
        raise UnicodeError("encoding with 'idna' codec failed (label too long)")

    result = perform(
        TokenRequest(f"https://{'a' * 70}.example.test/t", "client_credentials"),
        resolver=label_too_long,
    )
    assert result.outcome == "dns_error"


def test_connection_refused_is_connection_error() -> None:
    port = _closed_port()
    result = perform(TokenRequest(f"http://127.0.0.1:{port}/token", "client_credentials"))
    assert result.outcome == "connection_error"
    assert str(port) in result.message


def test_dns_failure_is_dns_error() -> None:
    result = perform(
        TokenRequest("https://no-such-host.example.test/token", "client_credentials"),
        resolver=_gaierror,
    )
    assert result.outcome == "dns_error"
    assert "no-such-host.example.test" in result.message


def test_blocked_token_request_reads_the_policy_sentence() -> None:
    result = token_request_perform(
        TokenRequest("https://token.example.test/token", "client_credentials"),
        policy=OutboundPolicy(),
        resolver=resolve_to("10.0.0.1"),
    )
    assert result.outcome == "blocked"
    assert result.message == BLOCKED_MESSAGE
    assert "10.0.0.1" not in repr(result)


# --------------------------------------------------------------------------------------------
# Secrets never leak


SECRET_VALUES = (CLIENT_SECRET, PASSWORD, "rt-secret-refresh-1", "param-secret-1")


def test_reprs_contain_no_secret(server: LoopbackServer) -> None:
    request = make_request(
        server,
        refresh_token="rt-secret-refresh-1",
        additional_request_data=(Param("assertion", "param-secret-1", sensitive=True),),
    )
    server.respond(json_response({"access_token": "issued-token-value-1", "token_type": "x"}))
    result = perform(request)

    for secret in SECRET_VALUES:
        assert secret not in repr(request)
    assert "param-secret-1" not in repr(request.additional_request_data)
    assert result.access_token == "issued-token-value-1"
    assert "issued-token-value-1" not in repr(result)
    for secret in SECRET_VALUES:
        assert secret not in repr(result)


def test_echoed_secrets_are_masked_in_attempts_and_message(server: LoopbackServer) -> None:
    description = (
        f"Wrong password {PASSWORD} for {USERNAME}; got secret {quote_plus(CLIENT_SECRET)} "
        f"and header {BASIC_CLIENT_ENCODED}"
    )
    server.respond(json_response({"error": "invalid_grant", "error_description": description}, 400))
    result = perform(make_request(server, client_authentication="basic_client"))

    assert result.outcome == "invalid_grant"
    everything = repr(result)
    for leaked in (PASSWORD, quote_plus(CLIENT_SECRET), BASIC_CLIENT_ENCODED.split()[1]):
        assert leaked not in everything
    assert MASK in result.message
    assert MASK in result.attempts[0].response_excerpt
    assert USERNAME in result.message  # not a secret, still useful


def test_echoed_secret_in_html_error_is_masked(server: LoopbackServer) -> None:
    server.respond(http_response(500, f"upstream said: password={PASSWORD}", "text/plain"))
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.outcome == "http_error"
    assert PASSWORD not in repr(result)
    assert "500" in result.message


# --------------------------------------------------------------------------------------------
# curl


def _curl_request(server: LoopbackServer, **overrides: object) -> TokenRequest:
    return make_request(
        server,
        scope="read write",
        additional_headers=(Param("X-Tenant", "acme"), Param("X-Key", "hdr-secret-9", True)),
        additional_request_data=(Param("audience", "a b"), Param("pin", "param-secret-1", True)),
        **overrides,
    )


def test_curl_uses_shell_variables_for_secrets(server: LoopbackServer) -> None:
    request = _curl_request(server, refresh_token="rt-secret-refresh-1")
    for label in ("basic_client", "request_body", "basic_user", "basic_client_unencoded", ""):
        command = token_request_as_curl(request, client_authentication=label)
        for secret in (*SECRET_VALUES, "hdr-secret-9", "rt-secret-refresh-1"):
            assert secret not in command, label
        assert "$PASSWORD" in command
        assert "$PARAM_PIN" in command
        assert "$PARAM_X_KEY" in command
    body = token_request_as_curl(request, client_authentication="request_body")
    assert "$CLIENT_SECRET" in body
    assert "--data-urlencode 'audience=a b'" in body
    basic = token_request_as_curl(request, client_authentication="basic_client")
    assert "BASIC=$(" in basic and '-H "Authorization: Basic $BASIC"' in basic
    assert "client_secret=" not in basic


needs_shell = pytest.mark.skipif(
    not (shutil.which("bash") and shutil.which("python3") and shutil.which("curl")),
    reason="needs bash, python3 and curl",
)


@needs_shell
@pytest.mark.parametrize("label", ["basic_client", "request_body", "basic_user"])
def test_curl_command_sends_the_same_request(server: LoopbackServer, label: str) -> None:
    request = _curl_request(server)
    perform(TokenRequest(**{**_fields(request), "client_authentication": label}))
    command = token_request_as_curl(request, client_authentication=label)
    environment = {
        **os.environ,
        "CLIENT_SECRET": CLIENT_SECRET,
        "PASSWORD": PASSWORD,
        "PARAM_PIN": "param-secret-1",
        "PARAM_X_KEY": "hdr-secret-9",
    }
    subprocess.run(
        ["bash", "-c", command], env=environment, check=True, capture_output=True, timeout=20
    )
    ours, theirs = server.requests
    assert theirs.header("Authorization") == ours.header("Authorization")
    assert theirs.form() == ours.form()
    for name in ("Accept", "Content-Type", "User-Agent", "X-Tenant", "X-Key"):
        assert theirs.header(name) == ours.header(name), name


def _fields(request: TokenRequest) -> dict:
    return {name: getattr(request, name) for name in TokenRequest.__dataclass_fields__}


# --------------------------------------------------------------------------------------------
# API request


def test_api_request_success_and_masking(server: LoopbackServer) -> None:
    server.respond(json_response({"me": "alice"}))
    result = api_request_perform(
        ApiRequest(
            server.url("/api/v1/me"),
            headers=(Param("X-Api-Key", "api-secret-77", sensitive=True),),
            params=(Param("api_key", "query-secret-88", sensitive=True), Param("v", "2")),
            basic_auth=("bob", "basic-secret-99"),
        ),
        policy=LOOPBACK,
    )
    assert result.ok and result.outcome == "success"
    [sent] = server.requests
    assert sent.request_line == "GET /api/v1/me?api_key=query-secret-88&v=2 HTTP/1.1"
    assert (
        sent.header("Authorization") == "Basic " + base64.b64encode(b"bob:basic-secret-99").decode()
    )
    assert sent.header("X-Api-Key") == "api-secret-77"
    for secret in ("api-secret-77", "query-secret-88", "basic-secret-99"):
        assert secret not in repr(result)
    assert result.attempt.status_code == 200
    assert '"me": "alice"' in result.attempt.response_excerpt


@pytest.mark.parametrize("status", [401, 403])
def test_api_request_refused_credentials(server: LoopbackServer, status: int) -> None:
    server.respond(http_response(status, '{"message": "bad credentials"}'))
    result = api_request_perform(ApiRequest(server.url("/api")), policy=LOOPBACK)
    assert result.outcome == "http_error"
    assert not result.ok
    assert "credentials" in hint_of(result)


def test_api_request_redirect_timeout_and_policy(server: LoopbackServer) -> None:
    server.respond(http_response(302, "", None, (("Location", "https://elsewhere.example/x"),)))
    redirect = api_request_perform(ApiRequest(server.url("/api")), policy=LOOPBACK)
    assert redirect.outcome == "redirect_refused"
    assert "elsewhere.example" in hint_of(redirect)

    server.respond(drip(b"HTTP/1.1 200 OK\r\n"))
    started = time.monotonic()
    slow = api_request_perform(ApiRequest(server.url("/api"), timeout=1.0), policy=LOOPBACK)
    assert slow.outcome == "timeout"
    assert time.monotonic() - started < 2.0

    blocked = api_request_perform(
        ApiRequest("https://api.example.test/"),
        policy=OutboundPolicy(),
        resolver=resolve_to("10.1.2.3"),
    )
    assert blocked.outcome == "blocked"
    assert blocked.message == BLOCKED_MESSAGE


def test_api_request_large_2xx_body_is_capped_not_failed(server: LoopbackServer) -> None:
    server.respond(endless_body(5 * 1_048_576, declare_length=False))
    result = api_request_perform(ApiRequest(server.url("/api")), policy=LOOPBACK)
    assert result.ok
    assert "reading stopped" in result.message
    assert len(result.attempt.response_excerpt) <= 2000


# --------------------------------------------------------------------------------------------
# Concurrency: each exchange keeps its own pinning and deadline


def test_concurrent_requests_do_not_share_pins(server: LoopbackServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    names = [f"host{index}.example.test" for index in range(8)]

    def run(name: str) -> TokenResult:
        return perform(
            TokenRequest(f"http://{name}:{server.port}/t", "client_credentials"),
            resolver=resolve_to("127.0.0.1"),
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, names))
    assert all(result.ok for result in results)
    hosts = sorted(recorded.header("Host") for recorded in server.requests)
    assert hosts == sorted(f"{name}:{server.port}" for name in names)


@pytest.mark.parametrize(
    ("error", "overrides", "expected"),
    [
        ("invalid_scope", {"scope": "admin"}, ["Password Grant Scope", "'admin'"]),
        ("unauthorized_client", {}, ["not allowed", "'password' grant type"]),
        (
            "unsupported_grant_type",
            {"request_custom_grant_type": "urn:x"},
            ["'urn:x'", "Oauth2 Custom Oauth Request Options Custom Grant Type"],
        ),
        (
            "invalid_grant",
            {"grant_type": "refresh_token", "refresh_token": "rt-123456"},
            ["refresh token", "accepted"],
        ),
    ],
)
def test_hint_is_tailored_to_the_error(
    server: LoopbackServer, error: str, overrides: dict, expected: list[str]
) -> None:
    server.respond(oauth_error(error))
    result = perform(make_request(server, client_authentication="basic_client", **overrides))
    assert result.outcome == error
    for fragment in expected:
        assert fragment in hint_of(result)


def test_client_without_id_rejected_is_told_to_fill_in_client_id(server: LoopbackServer) -> None:
    server.respond(oauth_error("invalid_client", 401))
    result = perform(make_request(server, client_id="", client_secret=""))
    assert result.outcome == "invalid_client"
    assert len(result.attempts) == 1
    assert "Fill in Client ID" in hint_of(result)


# --------------------------------------------------------------------------------------------
# Issue 8: Basic against servers that skip the §2.3.1 decoding; error texts; token shapes


def test_pinned_basic_retries_unencoded_once_when_refused(server: LoopbackServer) -> None:
    server.respond(oauth_error("invalid_client", 401), token_ok())
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.ok
    assert [a.client_authentication for a in result.attempts] == [
        "basic_client",
        "basic_client_unencoded",
    ]
    assert server.requests[0].header("Authorization") == BASIC_CLIENT_ENCODED
    assert server.requests[1].header("Authorization") == BASIC_CLIENT_UNENCODED
    assert result.client_authentication_used == "basic_client_unencoded"
    assert "2.3.1" in result.message
    assert "(unencoded)" in hint_of(result)


def test_pinned_basic_refused_twice_is_invalid_client(server: LoopbackServer) -> None:
    server.respond(oauth_error("invalid_client", 401), oauth_error("invalid_client", 401))
    result = perform(make_request(server, client_authentication="basic_client"))
    assert result.outcome == "invalid_client"
    assert len(result.attempts) == 2 and result.client_authentication_used is None


def test_pinned_unencoded_basic_is_sent_alone(server: LoopbackServer) -> None:
    server.respond(token_ok())
    result = perform(make_request(server, client_authentication="basic_client_unencoded"))
    assert result.ok and len(result.attempts) == 1
    assert server.requests[0].header("Authorization") == BASIC_CLIENT_UNENCODED
    assert result.client_authentication_used == "basic_client_unencoded"
    assert "2.3.1" not in result.message  # nothing was refused on the way


@pytest.mark.parametrize("key", ["description", "message"])
def test_error_text_under_description_or_message_is_shown(server: LoopbackServer, key: str):
    server.respond(json_response({"error": "invalid_grant", key: "Account locked."}, 400))
    result = perform(make_request(server, client_authentication="request_body"))
    assert result.outcome == "invalid_grant"
    assert "Account locked." in result.message


def test_cognito_shaped_token_response_masks_every_credential(server: LoopbackServer) -> None:
    server.respond(
        json_response(
            {
                "AuthenticationResult": {
                    "AccessToken": "cognito-access-1234",
                    "RefreshToken": "cognito-refresh-5678",
                    "IdToken": "cognito-id-9012",
                    "TokenType": "Bearer",
                    "ExpiresIn": 3600,
                }
            }
        )
    )
    result = perform(
        make_request(
            server,
            client_authentication="request_body",
            access_token_key="AuthenticationResult.AccessToken",
        )
    )
    assert result.ok and result.access_token == "cognito-access-1234"
    excerpt = result.attempts[0].response_excerpt
    for value in ("cognito-access-1234", "cognito-refresh-5678", "cognito-id-9012"):
        assert value not in excerpt and value not in repr(result)
    assert '"ExpiresIn": 3600' in excerpt


def test_api_excerpt_masks_sensitive_keys_at_any_depth(server: LoopbackServer) -> None:
    body = {
        "me": "alice",
        "session": {"id": "sess-id-4321"},
        "links": [{"apiKey": "api-key-8765", "rel": "self"}],
        "credentials": ["cred-1111"],
    }
    server.respond(json_response(body))
    result = api_request_perform(ApiRequest(server.url("/api")), policy=LOOPBACK)
    excerpt = result.attempt.response_excerpt
    for value in ("sess-id-4321", "api-key-8765", "cred-1111"):
        assert value not in excerpt
    assert '"me": "alice"' in excerpt and '"rel": "self"' in excerpt


# --------------------------------------------------------------------------------------------
# Issue 10: the deadlines of every exchange share one timer thread


def test_watchdogs_share_one_timer_thread_and_fire_in_deadline_order() -> None:
    import socket
    import threading
    import time

    from connectors.oauth_http.deadline import Watchdog

    later, sooner, closed = Watchdog(0.6), Watchdog(0.15), Watchdog(0.1)
    threads_before = threading.active_count()
    pairs = [socket.socketpair() for _ in range(2)]
    later.start()
    later.watch(pairs[0][0])
    sooner.start()  # an earlier deadline, added after a later one
    sooner.watch(pairs[1][0])
    closed.start()
    closed.close()
    # No thread per exchange: at most the shared one, started on first use.
    assert threading.active_count() <= threads_before + 1
    pairs[1][0].settimeout(2)
    started = time.monotonic()
    assert pairs[1][0].recv(1) == b""  # woken by the shutdown, not by the 2 s timeout
    assert 0.1 < time.monotonic() - started < 0.5
    assert sooner.fired and not later._fired and not closed._fired
    time.sleep(0.6)
    assert later._fired
    for watchdog in (later, sooner):
        watchdog.close()
    for a, b in pairs:
        a.close(), b.close()
