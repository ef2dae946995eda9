"""`ConnectorAuth`: a requests auth object that applies a connector's configured credentials.

    response = requests.get(url, auth=ConnectorAuth(connector), timeout=10)

For Oauth2 it fetches a token with the stored credentials, keeps it in Django's cache (encrypted
with the field-encryption key, so a cache that writes to disk never holds it in plaintext)
until shortly before it expires, and fetches a new one when the API answers 401 (once).
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.core.cache import cache
from encrypted_model_fields.fields import decrypt_str, encrypt_str

from connectors import oauth_http
from connectors.connection_test import api_request_for, outbound_policy, token_request_for
from connectors.domain import url_origin
from connectors.models import AuthConfig, Connector

# Tokens are dropped this long before they expire, so a request never carries a dying token.
EXPIRY_MARGIN_SECONDS = 30
# When the server does not say how long a token lives.
DEFAULT_TOKEN_LIFETIME = 300


class ConnectorAuthError(Exception):
    """No token could be obtained; `outcome` is one of oauth_http.OUTCOMES."""

    def __init__(self, connector_name: str, outcome: str, message: str) -> None:
        self.outcome = outcome
        super().__init__(f"{connector_name}: {outcome}: {message}")


class ConnectorAuth(requests.auth.AuthBase):
    """Applies a connector's Auth Config to outgoing requests."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector

    def __repr__(self) -> str:
        return f"ConnectorAuth({self.connector.name!r})"

    @property
    def cache_key(self) -> str:
        # The version changes with every saved edit, so a changed credential never reuses a token.
        return f"connector-token:{self.connector.pk}:{self.connector.version}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        connector = self.connector
        origin = url_origin(request.url or "")
        # requests strips only the Authorization header when a redirect changes host; our
        # credentials may sit in other headers or the query, so such a redirect is refused.
        request.register_hook("response", functools.partial(self._refuse_redirect, origin=origin))
        if connector.auth_config == AuthConfig.OAUTH2:
            self._apply_token(request, self.access_token())
            request.register_hook("response", functools.partial(self._retry_on_401, origin=origin))
            return request
        # Basic, Api Key and Bearer are applied exactly as the connection test applies them.
        described = api_request_for(connector)
        for param in described.headers:
            request.headers[param.key] = param.value
        if described.params:
            request.prepare_url(request.url, {p.key: p.value for p in described.params})
        if described.basic_auth:
            requests.auth.HTTPBasicAuth(*described.basic_auth)(request)
        return request

    def access_token(self, *, refresh: bool = False) -> str:
        """A valid access token, from the cache unless `refresh` or expired."""
        if not refresh:
            cached = cache.get(self.cache_key)
            if cached:
                stored = json.loads(decrypt_str(cached))
                if stored["expires_at"] - EXPIRY_MARGIN_SECONDS > time.time():
                    return stored["access_token"]
        result = oauth_http.token_request_perform(
            token_request_for(self.connector), policy=outbound_policy()
        )
        if not result.ok or not result.access_token:
            cache.delete(self.cache_key)
            raise ConnectorAuthError(self.connector.name, result.outcome, result.message)
        lifetime = DEFAULT_TOKEN_LIFETIME
        if result.token and result.token.expires_in is not None:
            lifetime = result.token.expires_in
        expires_at = time.time() + lifetime
        timeout = lifetime - EXPIRY_MARGIN_SECONDS
        if timeout > 0:
            payload = json.dumps({"access_token": result.access_token, "expires_at": expires_at})
            cache.set(self.cache_key, encrypt_str(payload).decode(), timeout=timeout)
        return result.access_token

    def _apply_token(self, request: requests.PreparedRequest, token: str) -> None:
        pattern = self.connector.oauth2_header_auth_value_pattern or "Bearer %s"
        key = self.connector.oauth2_header_auth_key or "Authorization"
        request.headers[key] = pattern.replace("%s", token, 1)

    def _refuse_redirect(
        self, response: requests.Response, *, origin: Any, **kwargs: Any
    ) -> requests.Response:
        if response.is_redirect:
            target = urljoin(response.url, response.headers.get("location", ""))
            if url_origin(target) != origin:
                response.close()
                raise ConnectorAuthError(
                    self.connector.name,
                    "redirect_refused",
                    f"The API redirected to another server ({urlsplit(target).hostname}); the "
                    "connector's credentials are not sent there. Call the final URL instead.",
                )
        return response

    def _retry_on_401(
        self, response: requests.Response, *, origin: Any, **kwargs: Any
    ) -> requests.Response:
        request = response.request
        if response.status_code != 401 or getattr(request, "_connector_auth_retried", False):
            return response
        if url_origin(request.url or "") != origin:
            return response  # a fresh token is only ever sent where the first one went
        token = self.access_token(refresh=True)
        response.content  # noqa: B018 - drain the body so the connection can be reused
        response.close()
        retry = request.copy()
        retry._connector_auth_retried = True  # type: ignore[attr-defined]
        self._apply_token(retry, token)
        second = response.connection.send(retry, **kwargs)
        second.history.append(response)
        second.request = retry
        return second
