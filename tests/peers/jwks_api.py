"""A loopback API that accepts only JWTs it can verify against a published JWK Set.

It does what an API provider does with Jwks Auth: fetch the JWKS URL it was given (the
console's live server `/.well-known/jwks.json`), pick the key by the token's `kid`, and verify
the RS256 signature, `exp`, `iss` and `aud` with PyJWT's `PyJWKClient`. Nothing of the console
is imported here: the published document is the only link.

    with JwksApi(jwks_url, issuer="console", audience="https://api") as api:
        api.url("/v1/me")      # GET with Authorization: Bearer <jwt>: 200 or 401
        api.results            # [Verified(ok, kid, claims, error), ...]
        api.tokens             # every bearer token received

The key set is fetched again for every request (no cache): a key that left the document fails
at once, as it would for a verifier whose cache expired.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt


@dataclass(frozen=True)
class Verified:
    ok: bool
    kid: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    error: str = ""


class JwksApi:
    def __init__(self, jwks_url: str, *, issuer: str, audience: str) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.results: list[Verified] = []
        # Every bearer token received, so a canary test can look for its signature elsewhere.
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                result = api.verify(self.headers.get("Authorization", ""))
                with api._lock:
                    api.results.append(result)
                if result.ok:
                    status, body = 200, {"sub": result.claims.get("sub"), "kid": result.kid}
                else:
                    status, body = (
                        401,
                        {"error": "invalid_token", "error_description": result.error},
                    )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verify(self, authorization: str) -> Verified:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return Verified(ok=False, error="no bearer token")
        with self._lock:
            self.tokens.append(token)
        try:
            kid = str(jwt.get_unverified_header(token).get("kid", ""))
        except jwt.PyJWTError as exc:
            return Verified(ok=False, error=f"unreadable: {type(exc).__name__}")
        client = jwt.PyJWKClient(self.jwks_url, cache_jwk_set=False, cache_keys=False)
        try:
            signing_key = client.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "jti", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            return Verified(ok=False, kid=kid, error=f"{type(exc).__name__}: {exc}")
        return Verified(ok=True, kid=kid, claims=claims)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/v1/me") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> JwksApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
