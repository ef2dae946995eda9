"""`ConnectorAuth`: a requests auth object that applies a connector's configured credentials.

    session = ConnectorAuth(connector).session()      # the outbound client, with this auth
    response = session.get(connector.base_url + "/v1/me")

The session is the console's one outbound client (`oauth_http.outbound_session`): every request
is checked against the outbound policy, dialled on the checked address, bounded by one deadline
(CONNECTORS_TOKEN_TIMEOUT) and read up to the size cap; redirects are returned, not followed.
Used with plain requests (`requests.get(url, auth=ConnectorAuth(connector))`) the auth still
checks the origin and the outbound policy before it adds credentials, but the connection is not
pinned and the caller's timeout applies.

Credentials go only to URLs under the connector's Base URL origin (scheme, host, port); any other
URL is refused with ConnectorAuthError before anything is sent. For Jwks Auth each request
carries a short-lived JWT signed for it with the console's current key (connectors.jwks).
For Oauth2 the token is fetched with the stored credentials, through the same transport, kept
in Django's cache (encrypted with the field-encryption key, so a cache that writes to disk never
holds it in plaintext) until shortly before it expires, and fetched again when the API answers
401 (once).
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.core.cache import cache
from encrypted_model_fields.fields import decrypt_str, encrypt_str

from connectors import oauth_http
from connectors.authorization_code import connection_refresh
from connectors.connection_test import api_request_for, outbound_policy, token_request_for
from connectors.explain import FIELD_LABELS, ConsoleOutcome
from connectors.jwks import JwksError
from connectors.models import AuthConfig, Connector, GrantType
from connectors.oauth_http import Outcome, url_origin

logger = logging.getLogger(__name__)

# Tokens are dropped this long before they expire, so a request never carries a dying token.
EXPIRY_MARGIN_SECONDS = 30
# When the server does not say how long a token lives.
DEFAULT_TOKEN_LIFETIME = 300

Origin = tuple[str, str, int] | None


class ConnectorAuthError(Exception):
    """Credentials were not applied; `outcome` is an oauth_http.Outcome."""

    def __init__(self, connector_name: str, outcome: str, message: str) -> None:
        self.outcome = outcome
        super().__init__(f"{connector_name}: {outcome}: {message}")


class ConnectorAuth(requests.auth.AuthBase):
    """Applies a connector's Auth Config to outgoing requests under its Base URL."""

    def __init__(
        self, connector: Connector, *, resolver: oauth_http.Resolver = socket.getaddrinfo
    ) -> None:
        self.connector = connector
        self.resolver = resolver

    def __repr__(self) -> str:
        return f"ConnectorAuth({self.connector.name!r})"

    @property
    def cache_key(self) -> str:
        # The version changes with every saved edit, so a changed credential never reuses a token.
        return f"connector-token:{self.connector.pk}:{self.connector.version}"

    def session(
        self, *, max_body_bytes: int = oauth_http.DEFAULT_MAX_BODY_BYTES
    ) -> oauth_http.OutboundSession:
        """The outbound client with this auth: policy, pinning, deadline and size cap apply."""
        session = oauth_http.outbound_session(
            policy=outbound_policy(),
            timeout=settings.CONNECTORS_TOKEN_TIMEOUT,
            max_body_bytes=max_body_bytes,
            ca_bundle=self.connector.ca_bundle,
            resolver=self.resolver,
        )
        session.auth = _SessionConnectorAuth(self.connector, resolver=self.resolver)
        return session

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        connector = self.connector
        origin = self._checked_origin(request.url or "")
        # requests strips only the Authorization header when a redirect changes host; our
        # credentials may sit in other headers or the query, so such a redirect is refused.
        request.register_hook("response", functools.partial(self._refuse_redirect, origin=origin))
        if connector.auth_config == AuthConfig.OAUTH2:
            self._apply_token(request, self.access_token())
            request.register_hook("response", functools.partial(self._retry_on_401, origin=origin))
            return request
        # Basic, Api Key, Bearer, Jwt Auth and Jwks Auth are applied exactly as the connection
        # test applies them; Jwt and Jwks Auth sign a fresh short-lived JWT for every request.
        try:
            described = api_request_for(connector)
        except (JwksError, oauth_http.SigningError) as error:
            raise ConnectorAuthError(connector.name, Outcome.CONFIG_ERROR, str(error)) from None
        for param in described.headers:
            request.headers[param.key] = param.value
        if described.params:
            request.prepare_url(request.url, {p.key: p.value for p in described.params})
        if described.basic_auth:
            requests.auth.HTTPBasicAuth(*described.basic_auth)(request)
        return request

    def _checked_origin(self, url: str) -> Origin:
        """The URL's origin, when credentials may go there; ConnectorAuthError otherwise."""
        if not self.connector.enabled:
            # A disabled connector's credentials stay home, as its connection test does.
            raise ConnectorAuthError(
                self.connector.name,
                Outcome.CONFIG_ERROR,
                "The connector is disabled, so its credentials are not sent. Enable it first.",
            )
        origin = url_origin(url)
        base = url_origin(self.connector.base_url or "")
        if base is None or origin != base:
            where = urlsplit(url).hostname or url
            raise ConnectorAuthError(
                self.connector.name,
                Outcome.CONFIG_ERROR,
                f"Credentials are only sent under the connector's Base URL "
                f"({self.connector.base_url or 'not set'}), not to {where}.",
            )
        self._check_policy(url)
        return origin

    def _check_policy(self, url: str) -> None:
        """Plain requests neither checks nor pins: at least refuse a blocked address here."""
        try:
            oauth_http.outbound_check(
                url,
                policy=outbound_policy(),
                resolver=self.resolver,
                timeout=settings.CONNECTORS_TOKEN_TIMEOUT,
            )
        except oauth_http.OutboundError as exc:
            raise ConnectorAuthError(self.connector.name, exc.outcome, exc.message) from None

    def _cached_token(self) -> str:
        """The cached token if still valid; "" when none (or the cache is unreachable)."""
        try:
            cached = cache.get(self.cache_key)
        except Exception as exc:  # noqa: BLE001 - a cache outage costs a token request, no more
            _warn_cache_down("read", exc)
            return ""
        if cached:
            stored = json.loads(decrypt_str(cached))
            if stored["expires_at"] - EXPIRY_MARGIN_SECONDS > time.time():
                return str(stored["access_token"])
        return ""

    def _cache_call(self, what: str, call: Callable[[], Any]) -> None:
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - as above
            _warn_cache_down(what, exc)

    def access_token(self, *, refresh: bool = False) -> str:
        """A valid access token, from the cache unless `refresh` or expired.

        With the cache unreachable (e.g. Redis down) a token is fetched for each call, and a
        warning is logged; the caller never sees the outage.
        """
        if not refresh:
            cached = self._cached_token()
            if cached:
                return cached
        result, outcome = self._token_result()
        if not result.ok or not result.access_token:
            self._cache_call("delete", lambda: cache.delete(self.cache_key))
            raise ConnectorAuthError(self.connector.name, outcome, result.message)
        lifetime = DEFAULT_TOKEN_LIFETIME
        if result.token and result.token.expires_in is not None:
            lifetime = result.token.expires_in
        expires_at = time.time() + lifetime
        timeout = lifetime - EXPIRY_MARGIN_SECONDS
        if timeout > 0:
            payload = json.dumps({"access_token": result.access_token, "expires_at": expires_at})
            encrypted = encrypt_str(payload).decode()
            self._cache_call("write", lambda: cache.set(self.cache_key, encrypted, timeout=timeout))
        return result.access_token

    def _perform(self, request: oauth_http.TokenRequest) -> oauth_http.TokenResult:
        return oauth_http.token_request_perform(
            request, policy=outbound_policy(), resolver=self.resolver, labels=FIELD_LABELS
        )

    def _token_result(self) -> tuple[oauth_http.TokenResult, str]:
        """A token request as configured, and its outcome in the console's words.

        An Authorization Code Grant connector refreshes with its stored refresh token and keeps
        a rotated one (connectors.authorization_code); a refused one means "reconnect needed".
        """
        connector = self.connector
        if connector.oauth2_grant_type != GrantType.AUTHORIZATION_CODE:
            result = self._perform(token_request_for(connector))
            return result, result.outcome
        refreshed = connection_refresh(connector=connector, perform=self._perform)
        if refreshed is None:
            raise ConnectorAuthError(
                connector.name,
                ConsoleOutcome.NOT_CONNECTED,
                "The connector is not connected: an admin presses Connect on its page first.",
            )
        return refreshed.result, refreshed.outcome

    def _apply_token(self, request: requests.PreparedRequest, token: str) -> None:
        pattern = self.connector.oauth2_header_auth_value_pattern or "Bearer %s"
        key = self.connector.oauth2_header_auth_key or "Authorization"
        request.headers[key] = pattern.replace("%s", token, 1)

    def _refuse_redirect(
        self, response: requests.Response, *, origin: Origin, **kwargs: Any
    ) -> requests.Response:
        if response.is_redirect:
            target = urljoin(response.url, response.headers.get("location", ""))
            if url_origin(target) != origin:
                response.close()
                raise ConnectorAuthError(
                    self.connector.name,
                    Outcome.REDIRECT_REFUSED,
                    f"The API redirected to another server ({urlsplit(target).hostname}); the "
                    "connector's credentials are not sent there. Call the final URL instead.",
                )
        return response

    def _retry_on_401(
        self, response: requests.Response, *, origin: Origin, **kwargs: Any
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


def _warn_cache_down(what: str, exc: Exception) -> None:
    logger.warning(
        "The token cache is unreachable (%s on %s): tokens are fetched for each request until "
        "it is back. Check REDIS_URL.",
        type(exc).__name__,
        what,
    )


class _SessionConnectorAuth(ConnectorAuth):
    """ConnectorAuth inside its own session, whose adapter checks and pins every request."""

    def _check_policy(self, url: str) -> None:
        """Nothing to do: the adapter checks when it connects (twice would resolve twice)."""
