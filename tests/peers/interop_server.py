"""A token server on 127.0.0.1 that behaves like real ones the console met (in-process thread).

Usage::

    with InteropServer() as peer:
        peer.url("/strict-basic")

Paths (POST; every request is recorded in ``.requests`` as ``tests.peers.RecordedRequest``):

``/strict-basic``   client authentication as Authlib's server, node-oauth2-server and aioauth
                    do it: ``Authorization: Basic`` base64-decoded and split at the first ":"
                    WITHOUT undoing RFC 6749 §2.3.1's form-urlencoding; credentials in the body
                    are accepted too (``client_secret_post``). Wrong or missing -> 401
                    ``{"error": "invalid_client", "error_description": ...}``.
``/strict-basic-only``  the same, but credentials in the body are refused (a client registered
                    for ``client_secret_basic`` only).
``/decoding-basic`` the same, but Basic values are form-urldecoded (``unquote_plus``) as
                    RFC 6749 §2.3.1 requires (django-oauth-toolkit's behaviour).
``/error-description-as/<key>``  400 ``{"error": "invalid_grant", <key>: ERROR_TEXT}``, for
                    servers that put the error text under ``description`` or ``message``.
``/shape/<name>``   200, a successful token response shaped like a real provider's, every
                    credential in it a canary from ``canaries(name)``: ``cognito`` (AWS Cognito
                    ``AuthenticationResult``), ``firebase`` (Identity Toolkit sign-in),
                    ``data-token`` (``{"data": {"token": ...}}``), ``apikey``, ``session-key``.
``/echo/<form>``    400 ``invalid_grant`` whose ``error_description`` echoes the request's
                    ``client_secret`` (body) altered: ``upper``, ``lower``, ``hex``,
                    ``hex-upper``, ``prefix`` (its first 10 characters), ``mojibake`` (UTF-8
                    read as Latin-1), ``base64``.

Expected client credentials are the ``client_id`` / ``client_secret`` attributes.
"""

from __future__ import annotations

import base64
import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import unquote_plus, urlsplit

from .fault_server import RecordedRequest

ERROR_TEXT = "The password of this account expired on 2026-01-31."

SHAPES = ("cognito", "firebase", "data-token", "apikey", "session-key")


def canaries(shape: str) -> dict[str, str]:
    """The secret values one shape's response carries, by the key they sit under."""
    stem = f"cnry-{shape}"
    return {
        "cognito": {
            "AccessToken": f"{stem}-access-7c1e",
            "RefreshToken": f"{stem}-refresh-9a2f",
            "IdToken": f"{stem}-id-3b8d",
        },
        "firebase": {
            "idToken": f"{stem}-id-5e6f",
            "refreshToken": f"{stem}-refresh-1d4c",
            "localId": f"{stem}-local-2a7b",
        },
        "data-token": {"token": f"{stem}-token-8e3a"},
        "apikey": {"apiKey": f"{stem}-key-4f9c", "access_token": f"{stem}-access-6b1d"},
        "session-key": {"session_key": f"{stem}-session-0c5e", "access_token": f"{stem}-at-2d7f"},
    }[shape]


def shape_document(shape: str) -> dict[str, object]:
    """The JSON body `/shape/<shape>` answers."""
    values = canaries(shape)
    if shape == "cognito":
        return {
            "AuthenticationResult": {**values, "TokenType": "Bearer", "ExpiresIn": 3600},
            "ChallengeParameters": {},
        }
    if shape == "firebase":
        return {
            "kind": "identitytoolkit#VerifyPasswordResponse",
            "email": "alice@example.com",
            "registered": True,
            "expiresIn": "3600",
            **values,
        }
    if shape == "data-token":
        return {"data": {**values, "expires_in": 600}, "status": "ok"}
    return {**values, "token_type": "bearer", "expires_in": 3600}


def altered(secret: str, form: str) -> str:
    """The secret as a careless server echoes it."""
    raw = secret.encode("utf-8")
    return {
        "upper": secret.upper(),
        "lower": secret.lower(),
        "hex": raw.hex(),
        "hex-upper": raw.hex().upper(),
        "prefix": secret[:10],
        "mojibake": raw.decode("latin-1"),
        "base64": base64.b64encode(raw).decode("ascii"),
    }[form]


ECHO_FORMS = ("upper", "lower", "hex", "hex-upper", "prefix", "mojibake", "base64")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    peer: InteropServer

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's socket.getfqdn() (a reverse DNS lookup).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1_048_576)) if length > 0 else b""
        recorded = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
        self.server.peer._record(recorded)
        route = urlsplit(self.path).path
        head, _, tail = route.strip("/").partition("/")
        if route == "/strict-basic":
            self._client_auth(recorded, decode=False)
        elif route == "/strict-basic-only":
            self._client_auth(recorded, decode=False, body_allowed=False)
        elif route == "/decoding-basic":
            self._client_auth(recorded, decode=True)
        elif head == "error-description-as":
            self._json(400, {"error": "invalid_grant", tail: ERROR_TEXT})
        elif head == "shape" and tail in SHAPES:
            self._json(200, shape_document(tail))
        elif head == "echo" and tail in ECHO_FORMS:
            secret = recorded.form.get("client_secret", "")
            description = f"Login rejected for secret {altered(secret, tail)} (check it)"
            self._json(400, {"error": "invalid_grant", "error_description": description})
        else:
            self._json(404, {"error": "not_found"})

    def _client_auth(
        self, recorded: RecordedRequest, *, decode: bool, body_allowed: bool = True
    ) -> None:
        peer = self.server.peer
        basic = recorded.basic_auth
        if basic is not None:
            sent = tuple(unquote_plus(part) for part in basic) if decode else basic
        elif not body_allowed:
            sent = ("", "")
        else:
            form = recorded.form
            sent = (form.get("client_id", ""), form.get("client_secret", ""))
        if sent != (peer.client_id, peer.client_secret):
            self._json(
                401,
                {"error": "invalid_client", "error_description": "Invalid client credentials"},
            )
            return
        name = "strict" if not decode else "decoding"
        self._json(
            200, {"access_token": f"{name}-basic-token", "token_type": "Bearer", "expires_in": 60}
        )

    def _json(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


class InteropServer:
    """The token server of the module docstring, on ``127.0.0.1:<free port>``."""

    def __init__(
        self, *, client_id: str = "interop client", client_secret: str = "S3c+r/E:t %&=é"
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> InteropServer:
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.peer = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> InteropServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def url(self, path: str) -> str:
        assert self._httpd is not None, "InteropServer is not running"
        return f"http://127.0.0.1:{self._httpd.server_port}/{path.lstrip('/')}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)


__all__ = [
    "ECHO_FORMS",
    "ERROR_TEXT",
    "SHAPES",
    "InteropServer",
    "altered",
    "canaries",
    "shape_document",
]
