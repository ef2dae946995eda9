"""An RFC 7523 authorization server (Authlib) and a JWT-verifying API on 127.0.0.1 (a thread).

Usage::

    with JwtPeer() as peer:
        peer.register_client("svc", jwk=public_jwk, grants=("jwt_bearer",))
        peer.token_url           # POST: Authlib's token endpoint
        peer.api_url("/me")      # GET: verifies "Authorization: Bearer <jwt>" with PyJWT

Token endpoint (``/token``), Authlib's own server classes, nothing hand-written about JOSE:

* ``urn:ietf:params:oauth:grant-type:jwt-bearer`` (``authlib.oauth2.rfc7523.JWTBearerGrant``):
  the assertion's ``iss`` names a registered client, its signature is checked with that
  client's registered public JWK, ``aud`` must be the token URL, ``exp`` is essential (60 s
  leeway), ``sub`` must be a known user (``alice``). No client authentication.
* ``client_credentials`` (Authlib's ``ClientCredentialsGrant``) with client authentication
  ``client_assertion_jwt`` = private_key_jwt (``authlib.oauth2.rfc7523.JWTBearerClientAssertion``:
  iss = sub = client id, aud = the token URL, jti never reused) or ``client_secret_post``.

Answers are Authlib's: ``invalid_grant`` / ``invalid_client`` with its error_description
("The token is expired", "Invalid claim: 'aud'", or none at all for a bad signature).

API (``/api/...``): 200 ``{"sub", "iss"}`` when the bearer JWT verifies (PyJWT, RS256/PS256/
ES256) with the key registered for its ``iss`` by ``register_api_issuer``, ``aud`` equal to
``api_audience`` (default: ``api_url("")``); else 401 ``{"error": "invalid_token",
"error_description": ...}``. Every request is recorded in ``.requests``.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import jwt as pyjwt
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion, JWTBearerGrant
from joserfc import jwk as jose_jwk

from .fault_server import RecordedRequest

USERS = frozenset({"alice"})


@dataclass
class PeerClient(ClientMixin):
    client_id: str
    key: Any  # a joserfc key made from the registered public JWK
    grants: tuple[str, ...]
    auth_methods: tuple[str, ...]
    client_secret: str = ""

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return ""

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return bool(self.client_secret) and secrets.compare_digest(
            client_secret, self.client_secret
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grants


class _Request(OAuth2Request):
    def __init__(self, method: str, form: dict[str, str], headers: dict[str, str]) -> None:
        # Authlib refuses http:// URIs unless AUTHLIB_INSECURE_TRANSPORT is set for the whole
        # process; the URI is only checked, never used, so the peer names an https one.
        super().__init__(method, "https://127.0.0.1/token", headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class _ClientAssertion(JWTBearerClientAssertion):
    def __init__(self, peer: JwtPeer) -> None:
        super().__init__(validate_jti=True, leeway=60)
        self.peer = peer

    def get_audiences(self) -> list[str]:
        return [self.peer.token_url]

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        key = f"{claims['sub']}:{jti}"
        if key in self.peer.seen_jti:
            return False
        self.peer.seen_jti.add(key)
        return True

    def resolve_client_public_key(self, client: PeerClient) -> Any:
        return client.key


def _grant(peer: JwtPeer) -> type[JWTBearerGrant]:
    class Grant(JWTBearerGrant):
        def get_audiences(self) -> list[str]:
            return [peer.token_url]

        def resolve_issuer_client(self, issuer: str) -> PeerClient | None:
            return peer.clients.get(issuer)

        def resolve_client_public_key(self, client: PeerClient) -> Any:
            return client.key

        def authenticate_user(self, subject: str) -> str | None:
            return subject if subject in USERS else None

        def has_granted_permission(self, client: PeerClient, user: str) -> bool:
            return True

    return Grant


class _ClientCredentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post", "client_assertion_jwt"]


class _Server(AuthorizationServer):
    def __init__(self, peer: JwtPeer) -> None:
        super().__init__()
        self.peer = peer
        self.register_token_generator("default", self._token)
        self.register_client_auth_method("client_assertion_jwt", _ClientAssertion(peer))
        self.register_grant(_grant(peer))
        self.register_grant(_ClientCredentials)

    def query_client(self, client_id: str) -> PeerClient | None:
        return self.peer.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        self.peer.issued.append(token["access_token"])

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: Any) -> Any:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
        return status, body, headers

    @staticmethod
    def _token(
        grant_type: str,
        client: Any,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token = {
            "token_type": "Bearer",
            "access_token": "peer-" + secrets.token_urlsafe(16),
            "expires_in": 3600,
        }
        if scope:
            token["scope"] = scope
        return token


@dataclass
class JwtPeer:
    """The running peer; see the module docstring."""

    clients: dict[str, PeerClient] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    seen_jti: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)
    api_audience: str = ""

    def __post_init__(self) -> None:
        peer = self
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _record(self, body: bytes) -> RecordedRequest:
                recorded = RecordedRequest(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with peer._lock:
                    peer.requests.append(recorded)
                return recorded

            def _answer(self, status: int, body: Any, headers: Any = ()) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers or ():
                    if name.lower() != "content-type":
                        self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                self._record(body)
                if self.path != "/token":
                    self._answer(404, {"error": "not_found"})
                    return
                form = dict(parse_qsl(body.decode(), keep_blank_values=True))
                request = _Request("POST", form, dict(self.headers.items()))
                status, payload, headers = peer.server.create_token_response(request)
                self._answer(status, payload, headers)

            def do_GET(self) -> None:  # noqa: N802
                self._record(b"")
                if not self.path.startswith("/api/"):
                    self._answer(404, {"error": "not_found"})
                    return
                self._answer(*peer.verify_api_call(self.headers.get("Authorization", "")))

        self.server = _Server(self)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.token_url = f"{self.base_url}/token"
        self.api_audience = self.api_audience or self.api_url("")
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def api_url(self, path: str) -> str:
        return f"{self.base_url}/api{path}"

    def register_client(
        self,
        client_id: str,
        *,
        jwk: dict[str, Any],
        grants: tuple[str, ...] = (JWTBearerGrant.GRANT_TYPE, "client_credentials"),
        auth_methods: tuple[str, ...] = ("client_assertion_jwt",),
        client_secret: str = "",
    ) -> None:
        """A client whose assertions verify with `jwk` (the console's public JWK)."""
        self.clients[client_id] = PeerClient(
            client_id=client_id,
            key=jose_jwk.import_key(jwk),
            grants=grants,
            auth_methods=auth_methods,
            client_secret=client_secret,
        )

    def register_api_issuer(self, issuer: str, public_pem: str) -> None:
        self.api_keys[issuer] = public_pem

    def verify_api_call(self, authorization: str) -> tuple[int, dict[str, Any]]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return 401, {"error": "invalid_token", "error_description": "No bearer token."}
        try:
            issuer = pyjwt.decode(token, options={"verify_signature": False}).get("iss", "")
            key = self.api_keys.get(issuer)
            if key is None:
                raise pyjwt.InvalidIssuerError(f"Unknown issuer {issuer!r}")
            claims = pyjwt.decode(
                token,
                key,
                algorithms=["RS256", "PS256", "ES256"],
                audience=self.api_audience,
                options={"require": ["exp", "iat", "iss"]},
            )
        except pyjwt.PyJWTError as error:
            return 401, {"error": "invalid_token", "error_description": str(error)}
        return 200, {"sub": claims.get("sub"), "iss": claims["iss"]}

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> JwtPeer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
