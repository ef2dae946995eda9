"""A deliberately misbehaving OAuth2 token server on 127.0.0.1 (in-process, threaded).

Usage::

    with FaultServer() as fault:
        requests.post(fault.url("/html500"), data={...}, timeout=5)
        assert fault.requests[-1].form["grant_type"] == "password"

Every path answers POST (and GET/PUT). Paths, one fault each:

``/timeout``          reads the request, then never answers (until the server stops).
``/drip``             writes the whole response (status line and headers included) one byte
                      per ``drip_interval`` seconds.
``/drip-body``        headers at once, then the JSON body one byte per ``drip_interval``.
``/html500``          500, ``text/html`` page whose ``<title>`` is ``HTML500_TITLE``.
``/notjson``          200, ``text/plain`` body that is not JSON.
``/notoken``          200 JSON without ``access_token``.
``/error200``         200 JSON ``{"error": "invalid_grant", "error_description": ...}``.
``/redirect``         302 to ``REDIRECT_LOCATION`` (https://elsewhere.example/token).
``/huge``             200 JSON-ish body of ``huge_size`` bytes (30 MiB), streamed in chunks
                      with a Content-Length; ``/huge?nolength=1`` omits Content-Length.
``/echo``             400 ``invalid_grant`` whose ``error_description`` contains the request's
                      ``password`` and ``client_secret`` verbatim (body, else Basic decoded per
                      RFC 6749 §2.3.1).
``/ok``               200 valid token JSON with ``expires_in`` as the STRING ``"3600"``; the
                      token is the ``token_value`` attribute (default ``"ok-token"``).
``/echo-api``         200 JSON echoing the Authorization header (whole and bare), X-Api-Key
                      and the query string: an API that leaks what it was sent.
``/api-redirect``     302 to ``http://localhost:<port>/echo-api`` (another host name).
``/form``             200 ``application/x-www-form-urlencoded`` token response.
``/basic-only``       client auth only via HTTP Basic with §2.3.1 decoding (unquote_plus of
                      id and secret); ``client_secret`` in the body or no Basic -> 401
                      ``invalid_client``.
``/body-only``        client auth only via ``client_id``/``client_secret`` in the body; any
                      ``Authorization: Basic`` -> 401 ``invalid_client``.
``/basic-unencoded``  Basic WITHOUT urldecoding: raw base64-decoded ``id:secret`` split at the
                      first colon must equal the expected values byte for byte.
``/jwt``              200 with an unsigned JWT (``alg: none``) carrying ``exp``/``iat``/
                      ``iss``/``sub``/``aud`` claims and no ``expires_in``.
``/nul-description``  400 ``invalid_grant`` whose ``error_description`` holds ``\\u0000``.
``/surrogate``        400 ``invalid_grant`` whose ``error_description`` holds a lone surrogate
                      (``\\ud800``, valid JSON escape, not encodable as UTF-8).
``/nul-body``         400 ``text/plain`` body with raw NUL bytes in it.
``/gzip-zeros``       200 ``Content-Encoding: gzip`` JSON body that inflates to 64 KiB of zeros.
``/nul-jwt``          200 with a JWT whose header and claims hold NUL, a lone surrogate, NaN,
                      -0.0 and 1e300 (values a database or a JSON column may refuse or alter).
``/nested-token``     200 JSON with the token at ``data.token`` (no ``access_token``).
``/redirect-here``    302 to the relative ``/ok`` (the same server).
``/html404``          404 ``text/html`` page (a web server's "Not Found").
``/api-check``        the API of the non-OAuth Auth Configs: 200 JSON when the request carries
                      ``API_USER``/``API_PASSWORD`` as Basic (RFC 7617, UTF-8), ``API_KEY`` as
                      ``X-Api-Key`` or query ``api_key``, ``Bearer API_BEARER`` or
                      ``Bearer <token_value>``; otherwise 401.
``/public-api``       200 JSON for anyone (an API without credentials).

Anything else -> 404 JSON. Expected client credentials of the auth-mode paths are the
``client_id`` / ``client_secret`` attributes (changeable at any time). Successful token
responses use ``access_token = "<path-name>-token"`` (e.g. ``"basic-only-token"``).

Every request is recorded *before* it is answered (``.requests`` -> ``RecordedRequest``).
``stop()`` returns promptly even with hanging or dripping connections.
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, unquote_plus, urlsplit

HTML500_TITLE = "500 Internal Server Error - Fault Peer"
REDIRECT_LOCATION = "https://elsewhere.example/token"
# What /api-check accepts. The password has a colon, a space and an accent: `curl -u` must
# send exactly what the test sent.
API_USER = "api-user"
API_PASSWORD = "pa:ss wörd-4411"
API_KEY = "api-key-5f2e9c71"
API_BEARER = "bearer-7d1c0a93"
MIB = 1024 * 1024
_MAX_REQUEST_BODY = 16 * MIB


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received: ``path`` includes the query string, ``body`` is raw bytes."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.time)

    def header(self, name: str, default: str | None = None) -> str | None:
        """Case-insensitive header lookup."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default

    @property
    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (last value wins)."""
        return _parse_form(self.body)

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """Raw ``(id, secret)`` from ``Authorization: Basic`` (base64-decoded, NOT urldecoded)."""
        return _parse_basic(self.header("Authorization"))


def _parse_form(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def _parse_basic(value: str | None) -> tuple[str, str] | None:
    if not value or value[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    fault: FaultServer

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's socket.getfqdn() (a reverse DNS lookup).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    recorded: RecordedRequest
    protocol_version = "HTTP/1.0"  # one request per connection, closed after the answer

    def setup(self) -> None:
        super().setup()
        self.server.fault._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.fault._untrack(self.connection)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:
        fault = self.server.fault
        try:
            body = self._read_body()
        except (OSError, ValueError):
            return
        self.recorded = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={key: value for key, value in self.headers.items()},
            body=body,
        )
        fault._record(self.recorded)
        route = urlsplit(self.path).path
        handler = _ROUTES.get(route)
        try:
            if handler is None:
                self._send_json(404, {"error": "not_found", "error_description": route})
            else:
                handler(self)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            pass
        except OSError:
            if not fault.stopping:
                raise

    do_GET = do_POST
    do_PUT = do_POST

    # -- helpers -------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > _MAX_REQUEST_BODY:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_REQUEST_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(
        self, status: int, payload: object, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def _token(self, name: str) -> None:
        self._send_json(
            200, {"access_token": f"{name}-token", "token_type": "Bearer", "expires_in": 3600}
        )

    def _invalid_client(self, description: str) -> None:
        self._send_json(
            401,
            {"error": "invalid_client", "error_description": description},
            {"WWW-Authenticate": 'Basic realm="fault-peer"'},
        )

    # -- routes --------------------------------------------------------------------------

    def r_timeout(self) -> None:
        self.server.fault._stop_event.wait()

    def _drip(self, data: bytes) -> None:
        fault = self.server.fault
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            if fault._stop_event.wait(fault.drip_interval):
                return

    def r_drip(self) -> None:
        body = json.dumps(
            {"access_token": "drip-token", "token_type": "Bearer", "expires_in": 3600}
        ).encode()
        head = (
            "HTTP/1.0 200 OK\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode("ascii")
        self.close_connection = True
        self._drip(head + body)

    def r_drip_body(self) -> None:
        body = json.dumps(
            {"access_token": "drip-body-token", "token_type": "Bearer", "expires_in": 3600}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._drip(body)

    def r_html500(self) -> None:
        page = (
            "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{HTML500_TITLE}</title></head>\n"
            "<body><h1>Internal Server Error</h1>"
            "<p>Something went wrong at the token endpoint.</p>"
            "<script>var trace = 'Traceback (most recent call last): ...';</script>"
            "</body></html>\n"
        )
        self._send(500, page.encode("utf-8"), "text/html; charset=utf-8")

    def r_notjson(self) -> None:
        self._send(200, b"OK access granted (this is not JSON)\n", "text/plain; charset=utf-8")

    def r_notoken(self) -> None:
        self._send_json(200, {"token_type": "bearer", "expires_in": 3600, "data": {"tok": "x"}})

    def r_error200(self) -> None:
        self._send_json(
            200,
            {
                "error": "invalid_grant",
                "error_description": "The resource owner credentials are invalid.",
            },
        )

    def r_redirect(self) -> None:
        self._send(302, b"", "text/plain", {"Location": REDIRECT_LOCATION})

    def r_huge(self) -> None:
        fault = self.server.fault
        size = fault.huge_size
        prefix = b'{"access_token":"'
        suffix = b'","token_type":"Bearer","expires_in":3600}'
        filler = max(size - len(prefix) - len(suffix), 0)
        no_length = "nolength" in parse_qs(urlsplit(self.path).query)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if not no_length:
            self.send_header("Content-Length", str(len(prefix) + filler + len(suffix)))
        self.end_headers()
        self.close_connection = True
        self.wfile.write(prefix)
        chunk = b"A" * (64 * 1024)
        remaining = filler
        while remaining > 0 and not fault.stopping:
            piece = chunk if remaining >= len(chunk) else chunk[:remaining]
            self.wfile.write(piece)
            remaining -= len(piece)
        self.wfile.write(suffix)

    def r_echo(self) -> None:
        rec = self.recorded
        form = rec.form
        password = form.get("password", "")
        secret = form.get("client_secret")
        if secret is None:
            basic = rec.basic_auth
            secret = unquote_plus(basic[1]) if basic else ""
        self._send_json(
            400,
            {
                "error": "invalid_grant",
                "error_description": f"Login rejected: password={password} client_secret={secret}",
            },
        )

    def r_echo_api(self) -> None:
        """An API that echoes the credentials it received, bare and whole (a careless server)."""
        rec = self.recorded
        authorization = rec.header("Authorization") or ""
        self._send_json(
            200,
            {
                "authorization": authorization,
                "bare": authorization.partition(" ")[2],
                "x_api_key": rec.header("X-Api-Key") or "",
                "query": urlsplit(rec.path).query,
            },
        )

    def r_api_redirect(self) -> None:
        """An API that redirects to another host name of the same machine."""
        port = self.server.server_address[1]
        self._send(302, b"", "text/plain", {"Location": f"http://localhost:{port}/echo-api"})

    def r_ok(self) -> None:
        self._send_json(
            200,
            {
                "access_token": self.server.fault.token_value,
                "token_type": "Bearer",
                "expires_in": "3600",
                "scope": "read",
            },
        )

    def r_form(self) -> None:
        body = b"access_token=form-token&token_type=bearer&expires_in=3600&scope=read"
        self._send(200, body, "application/x-www-form-urlencoded")

    def r_basic_only(self) -> None:
        fault = self.server.fault
        rec = self.recorded
        if "client_secret" in rec.form:
            self._invalid_client("client credentials in the request body are not accepted")
            return
        basic = rec.basic_auth
        if basic is None:
            self._invalid_client("HTTP Basic client authentication required")
            return
        client_id, secret = (unquote_plus(part) for part in basic)
        if (client_id, secret) != (fault.client_id, fault.client_secret):
            self._invalid_client("client authentication failed")
            return
        self._token("basic-only")

    def r_body_only(self) -> None:
        fault = self.server.fault
        rec = self.recorded
        if rec.header("Authorization"):
            self._invalid_client("HTTP Basic client authentication is not supported")
            return
        form = rec.form
        if (form.get("client_id"), form.get("client_secret")) != (
            fault.client_id,
            fault.client_secret,
        ):
            self._invalid_client("client authentication failed")
            return
        self._token("body-only")

    def r_basic_unencoded(self) -> None:
        fault = self.server.fault
        basic = self.recorded.basic_auth
        if basic is None or basic != (fault.client_id, fault.client_secret):
            self._invalid_client("client authentication failed")
            return
        self._token("basic-unencoded")

    def r_jwt(self) -> None:
        fault = self.server.fault
        now = int(time.time())
        header = {"alg": "none", "typ": "JWT"}
        claims = {
            "iss": fault.base_url,
            "sub": fault.jwt_subject,
            "aud": fault.jwt_audience,
            "iat": now,
            "exp": now + fault.jwt_lifetime,
        }
        token = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
            + "."
        )
        self._send_json(200, {"access_token": token, "token_type": "Bearer"})

    def r_nested_token(self) -> None:
        self._send_json(200, {"data": {"token": "nested-token-value"}, "expires_in": 3600})

    def r_redirect_here(self) -> None:
        self._send(302, b"", "text/plain", {"Location": "/ok"})

    def r_html404(self) -> None:
        page = (
            "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>Nope</body></html>"
        )
        self._send(404, page.encode(), "text/html; charset=utf-8")

    def r_api_check(self) -> None:
        rec = self.recorded
        authorization = rec.header("Authorization") or ""
        basic = "Basic " + base64.b64encode(f"{API_USER}:{API_PASSWORD}".encode()).decode()
        query = parse_qs(urlsplit(rec.path).query)
        accepted = (
            authorization
            in (basic, f"Bearer {API_BEARER}", f"Bearer {self.server.fault.token_value}")
            or rec.header("X-Api-Key") == API_KEY
            or query.get("api_key") == [API_KEY]
        )
        if not accepted:
            self._send_json(
                401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Basic realm="api"'}
            )
            return
        self._send_json(200, {"items": [{"id": 1}]})

    def r_public_api(self) -> None:
        self._send_json(200, {"items": []})

    def r_nul_description(self) -> None:
        self._send_json(
            400, {"error": "invalid_grant", "error_description": "bad\u0000grant \u0000"}
        )

    def r_surrogate(self) -> None:
        self._send_json(400, {"error": "invalid_grant", "error_description": "bad \ud800 grant"})

    def r_nul_body(self) -> None:
        self._send(400, b"bad\x00request\x00\x00 body", "text/plain; charset=utf-8")

    def r_gzip_zeros(self) -> None:
        body = gzip.compress(b"\x00" * 65_536)
        self._send(200, body, "application/json", {"Content-Encoding": "gzip"})

    def r_nul_jwt(self) -> None:
        header = {"alg": "none", "typ": "JWT\u0000", "kid": "k\ud800", "x": float("nan")}
        claims = {
            "iss": "nul\u0000issuer",
            "sub": "sub\ud800ject",
            "aud": -0.0,
            "iat": float("inf"),
            "exp": 1e300,
            "scope": ["a\u0000", 1e16, 0.1],
        }
        token = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        self._send_json(200, {"access_token": token + ".", "token_type": "Bearer\u0000"})


_ROUTES: dict[str, Callable[[_Handler], None]] = {
    "/timeout": _Handler.r_timeout,
    "/drip": _Handler.r_drip,
    "/drip-body": _Handler.r_drip_body,
    "/html500": _Handler.r_html500,
    "/notjson": _Handler.r_notjson,
    "/notoken": _Handler.r_notoken,
    "/error200": _Handler.r_error200,
    "/redirect": _Handler.r_redirect,
    "/huge": _Handler.r_huge,
    "/echo": _Handler.r_echo,
    "/ok": _Handler.r_ok,
    "/echo-api": _Handler.r_echo_api,
    "/api-redirect": _Handler.r_api_redirect,
    "/form": _Handler.r_form,
    "/basic-only": _Handler.r_basic_only,
    "/body-only": _Handler.r_body_only,
    "/basic-unencoded": _Handler.r_basic_unencoded,
    "/jwt": _Handler.r_jwt,
    "/nul-description": _Handler.r_nul_description,
    "/surrogate": _Handler.r_surrogate,
    "/nul-body": _Handler.r_nul_body,
    "/gzip-zeros": _Handler.r_gzip_zeros,
    "/nul-jwt": _Handler.r_nul_jwt,
    "/nested-token": _Handler.r_nested_token,
    "/redirect-here": _Handler.r_redirect_here,
    "/html404": _Handler.r_html404,
    "/api-check": _Handler.r_api_check,
    "/public-api": _Handler.r_public_api,
}
FAULT_PATHS: tuple[str, ...] = tuple(_ROUTES)


class FaultServer:
    """Misbehaving token server on ``127.0.0.1:<free port>``; see the module docstring.

    Attributes you may change at any time: ``client_id``, ``client_secret`` (expected by
    ``/basic-only``, ``/body-only``, ``/basic-unencoded``), ``drip_interval`` (seconds per
    byte), ``huge_size`` (bytes), ``jwt_lifetime`` (seconds), ``jwt_subject``,
    ``jwt_audience``.
    """

    def __init__(
        self,
        *,
        client_id: str = "fault-client",
        client_secret: str = "fault+sec/ret:%41é",
        drip_interval: float = 1.0,
        huge_size: int = 30 * MIB,
        jwt_lifetime: int = 3600,
        jwt_subject: str = "alice",
        jwt_audience: str = "connector-console",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        # What /ok issues; tests set a canary here to see whether a token leaks.
        self.token_value = "ok-token"
        self.drip_interval = drip_interval
        self.huge_size = huge_size
        self.jwt_lifetime = jwt_lifetime
        self.jwt_subject = jwt_subject
        self.jwt_audience = jwt_audience
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> FaultServer:
        if self._httpd is not None:
            return self
        self._stop_event.clear()
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.fault = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fault-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection (hanging/dripping ones included)."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stop_event.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- public API ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FaultServer is not running")
        return self._httpd.server_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (e.g. ``"/huge"`` or ``"huge?nolength=1"``)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    # -- internals used by the handler ---------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)
