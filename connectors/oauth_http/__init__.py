"""The OAuth2 token request and the API test request, as plain HTTP with no Django.

`token_request_perform` sends one token request the way a connector would (RFC 6749 §4.3
password grant, §4.4 client credentials, §6 refresh), tries the client authentication methods
in automatic mode, and explains the outcome in the console's own vocabulary (`OUTCOMES`).
`api_request_perform` does the same for a GET against the connector's API.

Both go through one transport with the same guarantees: the outbound policy is checked on the
resolved addresses and the connection is pinned to the checked address; one total deadline covers
every attempt, even against a server that drips a byte a second; redirects are refused instead of
followed (following would resend credentials); response bodies are read up to a cap; TLS
verification is always on. Neither function raises for network or protocol faults. Secrets never
leave this module unmasked except in `TokenResult.access_token`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import errno
import hashlib
import html
import ipaddress
import json
import math
import os
import re
import shlex
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

from connectors.oauth_http.redaction import (
    key_looks_sensitive,
    redact_headers,
    redact_pairs,
    redact_text,
    redact_url,
)

__all__ = [
    "BLOCKED_MESSAGE",
    "CLIENT_AUTH_AUTO",
    "CLIENT_AUTH_BASIC",
    "CLIENT_AUTH_BASIC_UNENCODED",
    "CLIENT_AUTH_BASIC_USER",
    "CLIENT_AUTH_BODY",
    "CLIENT_AUTH_NONE",
    "DEFAULT_USER_AGENT",
    "OUTCOMES",
    "ApiRequest",
    "ApiResult",
    "Attempt",
    "Outcome",
    "OutboundPolicy",
    "Param",
    "PolicyDecision",
    "TokenInfo",
    "TokenRequest",
    "TokenResult",
    "api_request_perform",
    "token_request_as_curl",
    "token_request_perform",
]

DEFAULT_USER_AGENT = "ConnectorConsole/0.1"

CLIENT_AUTH_AUTO = ""
CLIENT_AUTH_BODY = "request_body"
CLIENT_AUTH_BASIC = "basic_client"
CLIENT_AUTH_BASIC_USER = "basic_user"
# Attempt labels only: Basic without the RFC 6749 §2.3.1 urlencoding step, and "no client
# authentication at all" (no Client ID configured).
CLIENT_AUTH_BASIC_UNENCODED = "basic_client_unencoded"
CLIENT_AUTH_NONE = ""

GRANT_PASSWORD = "password"
GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_REFRESH_TOKEN = "refresh_token"

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
EXCERPT_LIMIT = 2_000

Resolver = Callable[..., Sequence[tuple[Any, ...]]]


# --------------------------------------------------------------------------------------------
# Outcomes


@dataclass(frozen=True, slots=True)
class Outcome:
    code: str
    label: str
    explanation: str
    next_step: str


def _outcomes(*rows: tuple[str, str, str, str]) -> dict[str, Outcome]:
    return {row[0]: Outcome(*row) for row in rows}


OUTCOMES: dict[str, Outcome] = _outcomes(
    (
        "success",
        "Token received",
        "The server accepted the client and the grant and issued an access token.",
        "Nothing to fix. Save the connector; a new token is requested whenever one expires.",
    ),
    (
        "invalid_client",
        "Client rejected",
        "The server did not accept the client credentials: the Client ID is unknown, the "
        "Client Secret is wrong, or they were sent in a way this server does not accept.",
        "Check Client ID and Client Secret, then try the other Oauth2 Client Authentication "
        "method (Basic Auth header or Request Body).",
    ),
    (
        "invalid_grant",
        "Grant rejected",
        "The client was accepted but the grant was not: the username or password is wrong, "
        "the account is locked, or the refresh token is expired or revoked.",
        "Check Password Grant Username and Password Grant Password, or get a new refresh token.",
    ),
    (
        "unauthorized_client",
        "Grant type not allowed for this client",
        "The server knows this application but does not allow it to use this grant type.",
        "Enable this grant type for the client on the authorization server, or choose the "
        "grant type the client is registered for in Oauth2 Grant Type.",
    ),
    (
        "unsupported_grant_type",
        "Grant type not supported",
        "The server does not support the grant_type value that was sent.",
        "Check Oauth2 Grant Type; if the server expects another value, set Oauth2 Custom Oauth "
        "Request Options Custom Grant Type.",
    ),
    (
        "invalid_scope",
        "Scope rejected",
        "The server refused the requested scope: it is unknown, malformed, or more than this "
        "client may request.",
        "Check the scope field: use scopes the provider documents for this client, separated "
        "by spaces, or leave it blank.",
    ),
    (
        "invalid_request",
        "Request malformed",
        "The server says the token request is missing a parameter, repeats one, or is "
        "otherwise malformed.",
        "Read the server's description in the message; check Oauth2 Token Url, Additional "
        "Request Data and Additional Headers.",
    ),
    (
        "http_error",
        "HTTP error",
        "The server answered with an HTTP error status instead of a token or an OAuth error.",
        "Check the URL's host and path; for a 5xx status try again later or contact the provider.",
    ),
    (
        "invalid_response",
        "Unreadable response",
        "The server answered, but not with a readable token response (not JSON or "
        "form-encoded, or too large).",
        "Check that Oauth2 Token Url points at the token endpoint, and that Oauth2 Custom Oauth "
        "Response Response Type matches what the server sends.",
    ),
    (
        "no_token",
        "No access token in the response",
        "The server answered successfully, but there is no access token where Json Access "
        "Token Key says it is.",
        "Set Json Access Token Key to the key (or dotted path, e.g. data.access_token) that "
        "holds the token.",
    ),
    (
        "timeout",
        "Timed out",
        "The server did not answer completely within the time limit.",
        "The server may be slow, or a firewall may be dropping the traffic: check the URL and "
        "that this server can reach it, then try again.",
    ),
    (
        "connection_error",
        "Connection failed",
        "The connection was refused, reset or closed before a complete answer arrived.",
        "Check the host and port in the URL and that the service is running and reachable "
        "from this server.",
    ),
    (
        "dns_error",
        "Host not found",
        "The host name in the URL could not be resolved.",
        "Check the host name in the URL for typos; internal names must resolve from this server.",
    ),
    (
        "tls_error",
        "TLS certificate problem",
        "The secure connection could not be established: the certificate is not trusted, has "
        "expired, or was not issued for this host name.",
        "If the server uses a private certificate authority, paste its certificate into CA "
        "bundle; check that the URL's host name matches the certificate.",
    ),
    (
        "redirect_refused",
        "Redirect not followed",
        "The server answered with a redirect. Redirects are not followed because that would "
        "send the credentials to another address.",
        "Set the URL to the final address the server redirects to.",
    ),
    (
        "blocked",
        "Address not allowed",
        "The outbound policy does not allow connections to this address.",
        "If this server is meant to be reachable, ask an administrator to add it to "
        "CONNECTORS_OUTBOUND_ALLOW.",
    ),
    (
        "config_error",
        "Configuration error",
        "The configuration cannot be used to make a request, for example a malformed URL.",
        "Fix the field named in the message and try again.",
    ),
)

# The server-side OAuth error codes (RFC 6749 §5.2) that have an outcome of their own.
OAUTH_ERROR_OUTCOMES = frozenset(
    {
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_request",
    }
)
# An answer with one of these proves the client authenticated; the problem lies elsewhere.
_CLIENT_ACCEPTED_ERRORS = frozenset(
    {"invalid_grant", "invalid_scope", "unsupported_grant_type", "unauthorized_client"}
)

# One sentence for every refusal: different wording per reason would let the test button map
# the internal network (which names exist, which are loopback, which are metadata).
BLOCKED_MESSAGE = (
    "This address is not allowed by the outbound policy. If this server is meant to be "
    "reachable, ask an administrator to add it to CONNECTORS_OUTBOUND_ALLOW."
)

_CLIENT_AUTH_OPTION = {
    CLIENT_AUTH_BODY: "OAuth 2.0 with Request Body",
    CLIENT_AUTH_BASIC: "OAuth 2.0 with Basic Auth Header set to client id and client secret",
    CLIENT_AUTH_BASIC_USER: "OAuth 2.0 with Basic Auth Header set to username and password",
}
_SCOPE_FIELD = {
    GRANT_PASSWORD: "Password Grant Scope",
    GRANT_CLIENT_CREDENTIALS: "Client Credentials Grant Scope",
    GRANT_REFRESH_TOKEN: "Refresh Token Grant Scope",
}


# --------------------------------------------------------------------------------------------
# Requests and results


def _secret_values(fixed: Iterable[str], params: Iterable[Param]) -> tuple[str, ...]:
    """The non-empty secrets: the fixed ones plus the values of sensitive-looking params."""
    values = [*fixed, *(p.value for p in params if p.sensitive or key_looks_sensitive(p.key))]
    return tuple(value for value in values if value)


@dataclass(frozen=True, slots=True)
class Param:
    key: str
    value: str = field(repr=False)
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class TokenRequest:
    token_url: str
    grant_type: str
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    scope: str = ""
    client_authentication: str = CLIENT_AUTH_AUTO
    request_custom_grant_type: str = ""
    additional_headers: tuple[Param, ...] = ()
    additional_request_data: tuple[Param, ...] = ()
    response_type: str = "json"
    access_token_key: str = "access_token"
    expires_in_key: str = "expires_in"
    expires_in_format: str = "seconds"
    ca_bundle: str = ""
    timeout: float = 10.0
    max_body_bytes: int = 1_048_576
    user_agent: str = DEFAULT_USER_AGENT

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, including sensitive params, for redaction."""
        return _secret_values(
            (self.client_secret, self.password, self.refresh_token),
            (*self.additional_headers, *self.additional_request_data),
        )


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    allowed: bool
    addresses: tuple[str, ...]
    reason: str  # for logs only; users always see BLOCKED_MESSAGE


@dataclass(frozen=True, slots=True)
class Attempt:
    client_authentication: str
    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: tuple[tuple[str, str], ...]
    status_code: int | None
    response_headers: tuple[tuple[str, str], ...]
    response_excerpt: str
    duration_ms: int
    outcome: str
    message: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_type: str
    expires_in: int | None
    expires_at: float | None
    scope: str
    refresh_token_issued: bool
    token_hash: str
    jwt_header: dict[str, Any] | None
    jwt_claims: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class TokenResult:
    ok: bool
    outcome: str
    message: str
    hint: str
    attempts: tuple[Attempt, ...]
    client_authentication_used: str | None
    token: TokenInfo | None
    duration_ms: int
    access_token: str = field(default="", repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ApiRequest:
    url: str
    headers: tuple[Param, ...] = ()
    params: tuple[Param, ...] = ()
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    ca_bundle: str = ""
    timeout: float = 10.0
    max_body_bytes: int = 1_048_576
    user_agent: str = DEFAULT_USER_AGENT
    # Bare credentials inside composed header values (the token in "Bearer <token>"), so an
    # API that echoes just the credential is masked too.
    secret_values: tuple[str, ...] = field(default=(), repr=False)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value (Basic password, sensitive headers and params), for redaction."""
        basic_password = (self.basic_auth[1],) if self.basic_auth else ()
        return _secret_values((*basic_password, *self.secret_values), (*self.headers, *self.params))


@dataclass(frozen=True, slots=True)
class ApiResult:
    ok: bool
    outcome: str
    message: str
    hint: str
    attempt: Attempt


class _Failure(Exception):
    """A fault that ends one exchange with a given outcome; never escapes this module."""

    def __init__(self, outcome: str, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message
        self.hint = hint


# --------------------------------------------------------------------------------------------
# Outbound policy

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Cloud instance-metadata endpoints hand out credentials; only an exact allow entry unlocks one.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer
        "192.0.0.192",  # Oracle Cloud Classic
    )
)
METADATA_HOST_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.packet.net",
        "metadata.platformequinix.com",
    }
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _normalise_host(host: str) -> str:
    host = host.strip().strip("[]").rstrip(".").lower()
    if host and not host.isascii():
        # Resolve and compare IDNs in the form DNS sees.
        host = host.encode("idna").decode("ascii")
    return host


def _parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _embedded_ipv4(address: IPAddress) -> tuple[ipaddress.IPv4Address, ...] | None:
    """The IPv4 addresses a translation form (mapped, NAT64, 6to4, Teredo) really reaches."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if any(address in prefix for prefix in _NAT64_PREFIXES):
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    return None


def _special_range(address: IPAddress) -> str:
    """Why an address is not a public unicast one, or "" when it is."""
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared address space (CGNAT)", address in _CGNAT),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    return next((reason for reason, hit in checks if hit), "")


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    allow: tuple[str, ...] = ()
    allow_loopback: bool = False

    @classmethod
    def from_setting(cls, value: str, *, allow_loopback: bool) -> OutboundPolicy:
        """Parse CONNECTORS_OUTBOUND_ALLOW: CIDRs, addresses, host names; comma/space separated."""
        entries = tuple(entry for entry in re.split(r"[\s,]+", value or "") if entry)
        return cls(allow=entries, allow_loopback=allow_loopback)

    def _allow_entries(self) -> tuple[list[IPNetwork], set[IPAddress], set[str], list[str]]:
        networks: list[IPNetwork] = []
        exact: set[IPAddress] = set()
        names: set[str] = set()
        suffixes: list[str] = []
        for entry in self.allow:
            entry = entry.strip()
            try:
                network = ipaddress.ip_network(entry.strip("[]"), strict=False)
            except ValueError:
                name = _normalise_host(entry)
                if name.startswith("*."):
                    suffixes.append(name[1:])
                elif name:
                    names.add(name)
                continue
            networks.append(network)
            if network.num_addresses == 1:
                exact.add(network.network_address)
        return networks, exact, names, suffixes

    def check(
        self, host: str, port: int, *, resolver: Resolver = socket.getaddrinfo
    ) -> PolicyDecision:
        """Resolve `host` and decide whether every address may be contacted.

        Raises `socket.gaierror` (from the resolver) when the name does not resolve, so callers
        can tell a typo from a refusal.
        """
        networks, exact, names, suffixes = self._allow_entries()
        try:
            name = _normalise_host(host)
        except UnicodeError:
            raise socket.gaierror(socket.EAI_NONAME, "invalid host name") from None
        if not name:
            return PolicyDecision(False, (), "empty host")
        literal = _parse_address(name)
        name_allowed = literal is None and (
            name in names or any(name.endswith(suffix) for suffix in suffixes)
        )
        metadata_name_listed = name in METADATA_HOST_NAMES and name in names
        if literal is None and name in METADATA_HOST_NAMES and not metadata_name_listed:
            return PolicyDecision(False, (), f"metadata host name {name}")

        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            addresses = []
            for info in resolver(name, port, 0, socket.SOCK_STREAM):
                address = _parse_address(str(info[4][0]))
                if address is not None and address not in addresses:
                    addresses.append(address)
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, f"{name} resolved to no usable address")

        texts = tuple(str(address) for address in addresses)
        for address in addresses:
            reason = self._refusal(address, networks, exact, name_allowed, metadata_name_listed)
            if reason:
                # Any refused answer refuses the host: a mixed answer is how rebinding starts.
                return PolicyDecision(False, texts, f"{address}: {reason}")
        return PolicyDecision(True, texts, "allowed")

    def _refusal(
        self,
        address: IPAddress,
        networks: list[IPNetwork],
        exact: set[IPAddress],
        name_allowed: bool,
        metadata_name_listed: bool,
    ) -> str:
        # A translation form is judged by the IPv4 address it actually reaches; its own prefix
        # is only the translator (NAT64 would otherwise be refused as reserved).
        candidates: tuple[IPAddress, ...] = _embedded_ipv4(address) or (address,)
        for candidate in candidates:
            if candidate in METADATA_ADDRESSES:
                if candidate in exact or metadata_name_listed:
                    continue
                return "cloud metadata address"
            special = _special_range(candidate)
            if not special:
                continue
            if self.allow_loopback and candidate.is_loopback:
                continue
            if name_allowed or any(candidate in network for network in networks):
                continue
            return special
        return ""


# --------------------------------------------------------------------------------------------
# Deadline, watchdog and the pinned transport


class _Watchdog:
    """Enforces the total deadline by shutting down every socket of the exchange when it passes.

    Per-read socket timeouts restart with every byte, so a server that drips one byte a second
    would hold a request open indefinitely; shutting the socket down from this timer thread wakes
    any blocked read at once. It keeps a duplicate of each socket because TLS wrapping detaches
    the original, and shutdown on the duplicate reaches the same connection.
    """

    def __init__(self, seconds: float) -> None:
        self._started = time.monotonic()
        self._deadline = self._started + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._fired = False
        self._closed = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    @property
    def fired(self) -> bool:
        return self._fired or self.remaining() <= 0

    def remaining(self) -> float:
        return self._deadline - time.monotonic()

    def start(self) -> None:
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        duplicate = sock.dup()
        with self._lock:
            if not (self._fired or self._closed):
                self._sockets.append(duplicate)
                return
        with contextlib.suppress(OSError):
            duplicate.shutdown(socket.SHUT_RDWR)
        duplicate.close()

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


class _PinnedConnectionMixin:
    """Dials the addresses the policy checked instead of resolving the host name again.

    The connection's `host` stays the name from the URL, so the Host header, TLS SNI and the
    certificate host name check all use the name; only the TCP connect uses the pinned address.
    Each exchange builds its own pool manager, so nothing here is shared between threads.
    """

    def __init__(
        self,
        *args: Any,
        pinned_addresses: tuple[str, ...],
        watchdog: _Watchdog,
        **kwargs: Any,
    ) -> None:
        self._pinned_addresses = pinned_addresses
        self._watchdog = watchdog
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        connection: Any = self
        last_error: OSError | None = None
        for address in self._pinned_addresses:
            try:
                sock = socket.create_connection(
                    (address, connection.port),
                    connection.timeout,
                    source_address=connection.source_address,
                )
            except TimeoutError as exc:
                raise urllib3.exceptions.ConnectTimeoutError(
                    connection, f"Connection to {connection.host} timed out"
                ) from exc
            except OSError as exc:
                last_error = exc
                continue
            for option in connection.socket_options or ():
                sock.setsockopt(*option)
            self._watchdog.watch(sock)
            return sock
        raise urllib3.exceptions.NewConnectionError(
            connection, f"Failed to establish a new connection: {last_error}"
        ) from last_error


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedPoolManager(PoolManager):
    def __init__(
        self,
        *args: Any,
        pinned_host: str,
        pinned_addresses: tuple[str, ...],
        watchdog: _Watchdog,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.pool_classes_by_scheme = {
            "http": _PinnedHTTPConnectionPool,
            "https": _PinnedHTTPSConnectionPool,
        }
        self._pinned_host = pinned_host
        self._pinned = {"pinned_addresses": pinned_addresses, "watchdog": watchdog}

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        if _normalise_host(host) != self._pinned_host:
            # The pinned addresses were checked for one host only.
            raise urllib3.exceptions.LocationValueError(f"unexpected host {host}")
        context = dict(self.connection_pool_kw if request_context is None else request_context)
        context.update(self._pinned)
        return super()._new_pool(scheme, host, port, context)


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, pinned_host: str, pinned_addresses: tuple[str, ...], watchdog: _Watchdog):
        self._pinned_host = pinned_host
        self._pinned_addresses = pinned_addresses
        self._watchdog = watchdog
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _PinnedPoolManager(
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            pinned_host=self._pinned_host,
            pinned_addresses=self._pinned_addresses,
            watchdog=self._watchdog,
            **pool_kwargs,
        )


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class _RawResponse:
    status: int
    reason: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    too_large: bool


def _parse_target(url: str, field_label: str) -> _Target:
    if not url or not url.strip():
        raise _Failure("config_error", f"{field_label} is empty.")
    url = url.strip()
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise _Failure("config_error", f"{field_label} contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _Failure("config_error", f"{field_label} is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _Failure("config_error", f"{field_label} must start with https:// (or http://).")
    if "@" in parts.netloc:
        raise _Failure(
            "config_error",
            f"{field_label} must not contain a user name or password; use the credential "
            "fields instead.",
        )
    try:
        host = _normalise_host(parts.hostname or "")
    except UnicodeError:
        raise _Failure("config_error", f"{field_label} has an invalid host name.") from None
    if not host:
        raise _Failure("config_error", f"{field_label} has no host name.")
    if port == 0:
        raise _Failure("config_error", f"{field_label} has an invalid port.")
    # The fragment is never sent; dropping it keeps attempt records honest.
    clean = urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))
    return _Target(clean, scheme, host, port or (443 if scheme == "https" else 80))


def _check_limits(timeout: float, max_body_bytes: int) -> None:
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise _Failure("config_error", "The timeout must be a positive number of seconds.")
    if max_body_bytes <= 0:
        raise _Failure("config_error", "The response size limit must be positive.")


_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


def _check_headers(headers: Iterable[tuple[str, str]]) -> None:
    for name, value in headers:
        if not _HEADER_NAME.match(name):
            raise _Failure("config_error", f"Header name {name!r} is not a valid HTTP header name.")
        if "\r" in value or "\n" in value or "\0" in value:
            raise _Failure("config_error", f"Header {name} contains a line break.")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise _Failure(
                "config_error", f"Header {name} contains characters HTTP headers cannot carry."
            ) from None


def _run_within(seconds: float, work: Callable[[], PolicyDecision]) -> PolicyDecision:
    """Run a resolver-backed check with a bound: getaddrinfo itself cannot be interrupted."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # re-raised in the calling thread below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="outbound-policy-check", daemon=True)
    worker.start()
    worker.join(max(seconds, 0.0))
    if worker.is_alive():
        raise _Failure("timeout", "Resolving the host name did not finish within the time limit.")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything wrapped in it (requests wraps urllib3 wraps socket errors)."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending and len(seen) < 20:
        current = pending.pop(0)
        if any(current is item for item in seen):
            continue
        seen.append(current)
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
        pending += [item for item in linked if isinstance(item, BaseException)]
    return seen


def _is_timeout(exc: BaseException) -> bool:
    # urllib3's NewConnectionError subclasses ConnectTimeoutError for historical reasons only.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return False
    return isinstance(
        exc,
        (requests.exceptions.Timeout, TimeoutError, urllib3.exceptions.TimeoutError),
    )


def _first(chain: list[BaseException], kind: type[BaseException]) -> Any:
    return next((item for item in chain if isinstance(item, kind)), None)


class _Transport:
    """One host, one policy decision, one deadline, shared by all attempts of an exchange."""

    def __init__(
        self,
        target: _Target,
        *,
        policy: OutboundPolicy,
        resolver: Resolver,
        ca_bundle: str,
        timeout: float,
        max_body_bytes: int,
    ) -> None:
        self.target = target
        self._policy = policy
        self._resolver = resolver
        self._ca_bundle = ca_bundle
        self._max_body_bytes = max_body_bytes
        self.watchdog = _Watchdog(timeout)
        self._timeout = timeout
        self._adapter: _PinnedAdapter | None = None
        self._ca_file = ""

    def open(self) -> None:
        """Check the policy and prepare the pinned adapter; raises _Failure."""
        self.watchdog.start()
        if self._ca_bundle.strip():
            try:
                ssl.create_default_context(cadata=self._ca_bundle)
            except (ssl.SSLError, ValueError):
                raise _Failure(
                    "config_error",
                    "CA bundle is not valid: paste one or more PEM certificates "
                    "(-----BEGIN CERTIFICATE----- ...).",
                ) from None
        host, port = self.target.host, self.target.port
        try:
            check = lambda: self._policy.check(host, port, resolver=self._resolver)  # noqa: E731
            # An address literal needs no lookup that could hang, so no helper thread either.
            literal = _parse_address(_normalise_host(host)) is not None
            decision = check() if literal else _run_within(self.watchdog.remaining(), check)
        except OSError as exc:  # socket.gaierror and friends from the resolver
            raise _Failure(
                "dns_error", f"The host name {host} could not be resolved ({_oserror_text(exc)})."
            ) from None
        except UnicodeError:  # getaddrinfo refuses over-long labels this way
            raise _Failure("dns_error", f"The host name {host} could not be resolved.") from None
        if not decision.allowed:
            raise _Failure("blocked", BLOCKED_MESSAGE)
        if self._ca_bundle.strip():
            with tempfile.NamedTemporaryFile(
                "w", suffix=".pem", prefix="connector-ca-", delete=False
            ) as handle:
                handle.write(self._ca_bundle)
                self._ca_file = handle.name
        self._adapter = _PinnedAdapter(host, decision.addresses, self.watchdog)

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
        self.watchdog.close()
        if self._ca_file:
            with contextlib.suppress(OSError):
                os.unlink(self._ca_file)

    def send(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes | None
    ) -> _RawResponse:
        if self._adapter is None:
            raise _Failure("config_error", "The transport is not open.")
        remaining = self.watchdog.remaining()
        if remaining <= 0:
            raise self._timeout_failure()
        try:
            prepared = requests.Request(
                method, url, headers=CaseInsensitiveDict(list(headers)), data=body
            ).prepare()
        except (requests.RequestException, ValueError) as exc:
            raise _Failure("config_error", f"The request cannot be built: {exc}") from None
        try:
            response = self._adapter.send(
                prepared,
                stream=True,
                timeout=(remaining, remaining),
                verify=self._ca_file or True,
                proxies={},
            )
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,
        ) as exc:
            raise self._failure_from(exc) from None
        try:
            if 300 <= response.status_code < 400:
                body_bytes, too_large = b"", False  # never read: we do not follow it anyway
            else:
                body_bytes, too_large = self._read_body(response)
            if self.watchdog.fired:
                # The shutdown ends a dripping response early; what arrived is a fragment.
                raise self._timeout_failure()
            return _RawResponse(
                response.status_code,
                response.reason or "",
                response.headers,
                body_bytes,
                too_large,
            )
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,
        ) as exc:
            raise self._failure_from(exc) from None
        finally:
            response.close()

    def _read_body(self, response: requests.Response) -> tuple[bytes, bool]:
        cap = self._max_body_bytes
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            return b"", True
        received = bytearray()
        while True:
            # Ask for at most one byte past the cap: enough to know it is too large.
            piece = response.raw.read(min(65_536, cap + 1 - len(received)), decode_content=True)
            if not piece:
                return bytes(received), False
            received += piece
            if len(received) > cap:
                return bytes(received[:cap]), True

    def _timeout_failure(self) -> _Failure:
        return _Failure(
            "timeout",
            f"No complete answer from {self.target.host} within {self._timeout:g} s "
            "(the limit covers the whole exchange, all attempts).",
        )

    def _failure_from(self, exc: BaseException) -> _Failure:
        host = self.target.host
        if self.watchdog.fired:
            return self._timeout_failure()
        chain = _exception_chain(exc)
        verify_error = _first(chain, ssl.SSLCertVerificationError)
        if verify_error is not None:
            detail = verify_error.verify_message or str(verify_error)
            return _Failure("tls_error", f"The certificate of {host} was not accepted: {detail}.")
        tls_error = _first(chain, ssl.SSLError) or _first(chain, requests.exceptions.SSLError)
        if tls_error is not None:
            detail = getattr(tls_error, "reason", None) or tls_error.__class__.__name__
            return _Failure("tls_error", f"The TLS handshake with {host} failed ({detail}).")
        if _first(chain, ConnectionRefusedError):
            return _Failure(
                "connection_error",
                f"{host} port {self.target.port} refused the connection (nothing is listening).",
            )
        if _first(chain, ConnectionResetError):
            return _Failure("connection_error", f"{host} reset the connection.")
        if any(_is_timeout(item) for item in chain):
            return self._timeout_failure()
        if _first(chain, urllib3.exceptions.NameResolutionError) or _first(chain, socket.gaierror):
            return _Failure("dns_error", f"The host name {host} could not be resolved.")
        if _first(chain, urllib3.exceptions.DecodeError):
            return _Failure("invalid_response", f"The response from {host} could not be decoded.")
        if _first(chain, requests.exceptions.InvalidHeader) or _first(
            chain, urllib3.exceptions.LocationValueError
        ):
            return _Failure("config_error", f"The request cannot be sent: {exc}")
        os_error = next((item for item in chain if isinstance(item, OSError) and item.errno), None)
        if os_error is not None:
            return _Failure(
                "connection_error",
                f"The connection to {host} port {self.target.port} failed "
                f"({_oserror_text(os_error)}).",
            )
        return _Failure(
            "connection_error",
            f"The connection to {host} was closed before a complete answer arrived.",
        )


def _open_transport(
    target: _Target,
    request: TokenRequest | ApiRequest,
    *,
    policy: OutboundPolicy,
    resolver: Resolver,
) -> _Transport:
    """A transport past the outbound policy, or _Failure with nothing left open."""
    transport = _Transport(
        target,
        policy=policy,
        resolver=resolver,
        ca_bundle=request.ca_bundle,
        timeout=request.timeout,
        max_body_bytes=request.max_body_bytes,
    )
    try:
        transport.open()
    except _Failure:
        transport.close()
        raise
    return transport


def _oserror_text(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror) or not exc.errno:
        return exc.strerror or str(exc) or exc.__class__.__name__
    return exc.strerror or errno.errorcode.get(exc.errno, str(exc.errno))


# --------------------------------------------------------------------------------------------
# Building the token request


def _grant_type_sent(request: TokenRequest) -> str:
    return request.request_custom_grant_type or request.grant_type


def _basic_value(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _basic_client_value(client_id: str, client_secret: str) -> str:
    # RFC 6749 §2.3.1: form-urlencode each value before the Basic scheme joins them with ":".
    return _basic_value(quote_plus(client_id), quote_plus(client_secret))


def _client_auth_plan(request: TokenRequest) -> list[str]:
    mode = request.client_authentication
    if mode not in (CLIENT_AUTH_AUTO, CLIENT_AUTH_BODY, CLIENT_AUTH_BASIC, CLIENT_AUTH_BASIC_USER):
        raise _Failure("config_error", f"Oauth2 Client Authentication {mode!r} is not supported.")
    if mode == CLIENT_AUTH_BASIC_USER:
        return [CLIENT_AUTH_BASIC_USER]
    if not request.client_id:
        return [CLIENT_AUTH_NONE]  # a client without an id has nothing to authenticate with
    if mode == CLIENT_AUTH_AUTO:
        return [CLIENT_AUTH_BASIC, CLIENT_AUTH_BODY]
    return [mode]


def _token_request_parts(
    request: TokenRequest, label: str
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Headers and body fields, in the order sent, for one client authentication label."""
    headers: list[tuple[str, str]] = [
        ("User-Agent", request.user_agent or DEFAULT_USER_AGENT),
        ("Accept", "application/json"),
        ("Content-Type", FORM_CONTENT_TYPE),
    ]
    if label == CLIENT_AUTH_BASIC:
        authorization = _basic_client_value(request.client_id, request.client_secret)
        headers.append(("Authorization", f"Basic {authorization}"))
    elif label == CLIENT_AUTH_BASIC_UNENCODED:
        authorization = _basic_value(request.client_id, request.client_secret)
        headers.append(("Authorization", f"Basic {authorization}"))
    elif label == CLIENT_AUTH_BASIC_USER:
        # RFC 7617 Basic, as the "username and password" option means: no §2.3.1 encoding.
        authorization = _basic_value(request.username, request.password)
        headers.append(("Authorization", f"Basic {authorization}"))
    for param in request.additional_headers:
        # A configured header replaces a default of the same name instead of doubling it.
        headers = [(name, value) for name, value in headers if name.lower() != param.key.lower()]
        headers.append((param.key, param.value))

    body: list[tuple[str, str]] = [("grant_type", _grant_type_sent(request))]
    if request.grant_type == GRANT_PASSWORD:
        body += [("username", request.username), ("password", request.password)]
    elif request.grant_type == GRANT_REFRESH_TOKEN:
        body.append(("refresh_token", request.refresh_token))
    if request.scope:
        body.append(("scope", request.scope))
    body += [(param.key, param.value) for param in request.additional_request_data]
    if label == CLIENT_AUTH_BODY or (label == CLIENT_AUTH_BASIC_USER and request.client_id):
        body.append(("client_id", request.client_id))
        if request.client_secret:  # a public client has none (RFC 6749 §2.1)
            body.append(("client_secret", request.client_secret))
    return headers, body


def _exchange_secrets(request: TokenRequest) -> tuple[str, ...]:
    """The request's secrets plus the Basic credentials as they appear on the wire."""
    extra = []
    if request.client_id or request.client_secret:
        extra += [
            _basic_client_value(request.client_id, request.client_secret),
            _basic_value(request.client_id, request.client_secret),
        ]
    if request.password:
        extra.append(_basic_value(request.username, request.password))
    return (*request.secrets(), *extra)


def _masked_request(
    headers: Sequence[tuple[str, str]],
    body: Sequence[tuple[str, str]],
    params: Sequence[Param],
    secrets: Sequence[str],
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    sensitive = [param.key for param in params if param.sensitive]
    masked_headers = redact_headers(headers, sensitive_keys=sensitive)
    masked_body = redact_pairs(body, sensitive_keys=sensitive)
    return (
        tuple((name, redact_text(value, secrets=secrets)) for name, value in masked_headers),
        tuple((key, redact_text(value, secrets=secrets)) for key, value in masked_body),
    )


# --------------------------------------------------------------------------------------------
# Reading responses


def _content_type(headers: CaseInsensitiveDict[str]) -> str:
    return headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def _decode(body: bytes, headers: CaseInsensitiveDict[str]) -> str:
    match = re.search(r"charset=([\w.:-]+)", headers.get("Content-Type", ""), re.IGNORECASE)
    charset = match[1] if match else "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _looks_like_html(text: str, content_type: str) -> bool:
    start = text.lstrip()[:100].lower()
    return content_type in ("text/html", "application/xhtml+xml") or start.startswith(
        ("<!doctype html", "<html")
    )


def _html_title(text: str) -> str:
    match = re.search(r"<title[^>]*>(.*?)</title>", text[:65_536], re.IGNORECASE | re.DOTALL)
    if not match:
        return ""
    return " ".join(html.unescape(match[1]).split())[:120]


def _parse_document(text: str, content_type: str, response_type: str) -> dict[str, Any] | None:
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.startswith("{"):
        # Servers send OAuth errors as JSON even when the success response is form-encoded.
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    if response_type == "form" or content_type == FORM_CONTENT_TYPE:
        try:
            pairs = parse_qsl(stripped, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            return None
        return dict(pairs) if pairs else None
    return None


def _lookup(document: dict[str, Any], dotted_key: str) -> Any:
    """Follow a dotted path ("data.token"); a literal key containing dots wins."""
    if dotted_key in document:
        return document[dotted_key]
    current: Any = document
    for part in dotted_key.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def _token_paths(document: Any, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted paths to string values whose key mentions a token, to suggest a key."""
    if depth > 3 or not isinstance(document, dict):
        return []
    found = []
    for key, value in document.items():
        path = f"{prefix}{key}"
        if (
            isinstance(value, str)
            and value
            and "token" in str(key).lower()
            and "type" not in str(key).lower()
            and "refresh" not in str(key).lower()
        ):
            found.append(path)
        elif isinstance(value, dict):
            found += _token_paths(value, f"{path}.", depth + 1)
    return found


def _b64url_json(segment: str) -> dict[str, Any] | None:
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(decoded)
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None


_JWT_CLAIMS_SHOWN = ("iss", "sub", "aud", "exp", "iat", "scope")


def _jwt_parts(token: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Header and a few claims of a JWT, decoded without verification (display only)."""
    segments = token.split(".")
    if len(segments) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_-]+", s) for s in segments[:2]):
        return None, None
    header, payload = _b64url_json(segments[0]), _b64url_json(segments[1])
    if header is None or payload is None:
        return None, None
    return header, {key: payload[key] for key in _JWT_CLAIMS_SHOWN if key in payload}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _expiry(value: Any, expires_format: str, now: float) -> tuple[int | None, float | None]:
    """(expires_in seconds, expires_at epoch) from a configured expiry value."""
    if expires_format == "iso8601":
        if not isinstance(value, str):
            return None, None
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None, None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        expires_at = moment.timestamp()
        return round(expires_at - now), expires_at
    number = _number(value)
    if number is None:
        return None, None
    if expires_format == "epoch":
        # Some servers send milliseconds; no seconds timestamp is this large before year 5000.
        expires_at = number / 1000 if number > 1e11 else number
        return round(expires_at - now), expires_at
    return round(number), now + number


def _token_info(
    document: dict[str, Any], access_token: str, request: TokenRequest, now: float
) -> tuple[TokenInfo, str]:
    """Facts about the token, and a note when the configured expiry could not be read."""
    note = ""
    raw_expiry = _lookup(document, request.expires_in_key) if request.expires_in_key else None
    expires_in, expires_at = (None, None)
    if raw_expiry not in (None, ""):
        expires_in, expires_at = _expiry(raw_expiry, request.expires_in_format, now)
        if expires_in is None:
            note = (
                f" The expiry at Json Expires In Key {request.expires_in_key!r} could not be "
                f"read as {request.expires_in_format}."
            )
    jwt_header, jwt_claims = _jwt_parts(access_token)
    if expires_in is None and jwt_claims and _number(jwt_claims.get("exp")) is not None:
        expires_at = float(_number(jwt_claims["exp"]) or 0)
        expires_in = round(expires_at - now)
    scope = document.get("scope", "")
    if isinstance(scope, list):
        scope = " ".join(str(item) for item in scope)
    info = TokenInfo(
        token_type=str(document.get("token_type") or ""),
        expires_in=expires_in,
        expires_at=expires_at,
        scope=str(scope or ""),
        refresh_token_issued=bool(document.get("refresh_token")),
        token_hash=hashlib.sha256(access_token.encode()).hexdigest()[:12],
        jwt_header=jwt_header,
        jwt_claims=jwt_claims,
    )
    return info, note


def _describe_token(info: TokenInfo) -> str:
    facts = [info.token_type or "no token_type"]
    facts.append(f"expires in {info.expires_in} s" if info.expires_in is not None else "no expiry")
    if info.scope:
        facts.append(f"scope {info.scope!r}")
    if info.refresh_token_issued:
        facts.append("with a refresh token")
    return ", ".join(facts)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _excerpt(raw: _RawResponse, secrets: Sequence[str]) -> str:
    # Redact before truncating, so a cut cannot leave a secret's prefix unmasked.
    text = _decode(raw.body[: EXCERPT_LIMIT * 8], raw.headers)
    return redact_text(text, secrets=secrets)[:EXCERPT_LIMIT]


def _response_headers(raw: _RawResponse, secrets: Sequence[str]) -> tuple[tuple[str, str], ...]:
    kept = []
    for name in ("Content-Type", "Location", "WWW-Authenticate"):
        value = raw.headers.get(name)
        if value is None:
            continue
        if name == "Location":
            # Query and fragment of a redirect can carry codes or tokens; the path is what a
            # user needs to set the final URL.
            value = _without_query(value)
        kept.append((name, redact_text(value, secrets=secrets)))
    return redact_headers(kept)


def _without_query(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _location_host(raw: _RawResponse, target: _Target) -> str:
    location = raw.headers.get("Location", "")
    try:
        host = urlsplit(location).hostname if location else None
    except ValueError:
        host = None
    return host or (target.host if location else "")


def _size_text(size: int) -> str:
    if size % 1_048_576 == 0:
        return f"{size // 1_048_576} MiB"
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def _http_error_message(raw: _RawResponse, text: str, secrets: Sequence[str]) -> str:
    status = f"HTTP {raw.status}" + (f" {raw.reason}" if raw.reason else "")
    if _looks_like_html(text, _content_type(raw.headers)):
        title = _html_title(text)
        page = f"an HTML page titled {title!r}" if title else "an HTML page"
        return f"The server answered {status} with {page}."
    excerpt = _short(redact_text(text, secrets=secrets), 200)
    return f"The server answered {status}" + (f": {excerpt}" if excerpt else " with no body.")


@dataclass(frozen=True, slots=True)
class _Reading:
    outcome: str
    message: str
    oauth_error: str = ""
    client_rejected: bool = False
    token: TokenInfo | None = None
    access_token: str = ""
    keys_found: tuple[str, ...] = ()
    suggested_key: str = ""
    redirect_host: str = ""
    too_large: bool = False
    html_page: bool = False


def _client_rejected(status: int, error: str, description: str) -> bool:
    if error == "invalid_client":
        return True
    if status == 401 and not error:
        return True
    # Some servers answer a missing or unreadable Basic header this way.
    return error == "invalid_request" and bool(
        re.search(
            r"client.{0,30}(credential|auth|secret|id\b)|credential|authenticat",
            description,
            re.IGNORECASE,
        )
    )


def _read_token_response(
    raw: _RawResponse, request: TokenRequest, target: _Target, secrets: Sequence[str]
) -> _Reading:
    if 300 <= raw.status < 400:
        host = _location_host(raw, target)
        where = f" to {host}" if host else ""
        return _Reading(
            "redirect_refused",
            f"The server answered HTTP {raw.status} (a redirect{where}). Redirects are not "
            "followed because that would send the credentials again to the new address.",
            redirect_host=host,
        )
    if raw.too_large:
        return _Reading(
            "invalid_response",
            f"The response is larger than {_size_text(request.max_body_bytes)}; reading stopped "
            "there. A token response is a few kilobytes: this is not a token endpoint.",
            too_large=True,
        )
    text = _decode(raw.body, raw.headers)
    content_type = _content_type(raw.headers)
    document = _parse_document(text, content_type, request.response_type)
    error = ""
    if document is not None and isinstance(document.get("error"), str):
        error = document["error"].strip()
    if error and (200 <= raw.status < 300 or raw.status in (400, 401)):
        description = document.get("error_description") if document else ""
        description = redact_text(str(description or ""), secrets=secrets)
        uri = document.get("error_uri") if document else ""
        detail = f": {_short(description)}" if description else "."
        if uri:
            detail += f" (see {_short(redact_url(str(uri)), 200)})"
        rejected = _client_rejected(raw.status, error, description)
        if error in OAUTH_ERROR_OUTCOMES:
            return _Reading(
                error,
                f"The server answered {_short(error, 60)} (HTTP {raw.status}){detail}",
                oauth_error=error,
                client_rejected=rejected,
            )
        return _Reading(
            "http_error",
            f"The server answered HTTP {raw.status} with error {_short(error, 60)!r}{detail}",
            oauth_error=error,
            client_rejected=rejected,
        )
    if not 200 <= raw.status < 300:
        return _Reading(
            "http_error",
            _http_error_message(raw, text, secrets),
            client_rejected=_client_rejected(raw.status, "", ""),
            html_page=_looks_like_html(text, content_type),
        )
    if document is None:
        if _looks_like_html(text, content_type):
            title = _html_title(text)
            page = f"an HTML page titled {title!r}" if title else "an HTML page"
            return _Reading(
                "invalid_response",
                f"The server answered HTTP {raw.status} with {page}, not a token response.",
                html_page=True,
            )
        what = (
            "an empty body" if not text.strip() else f"a body that is not {request.response_type}"
        )
        if request.response_type != "form" and text.strip():
            what = "a body that is neither JSON nor form-encoded"
        return _Reading(
            "invalid_response",
            f"The server answered HTTP {raw.status} with {what} "
            f"(Content-Type {content_type or 'missing'}).",
        )
    access_token = _lookup(document, request.access_token_key or "access_token")
    if not isinstance(access_token, str) or not access_token:
        keys = tuple(str(key) for key in document)
        listed = ", ".join(keys[:20]) or "none"
        paths = _token_paths(document)
        return _Reading(
            "no_token",
            f"The response has no access token at Json Access Token Key "
            f"{request.access_token_key!r}. Top-level keys found: {listed}.",
            keys_found=keys,
            suggested_key=paths[0] if paths else "",
        )
    info, note = _token_info(document, access_token, request, time.time())
    return _Reading(
        "success",
        f"The server issued an access token ({_describe_token(info)}).{note}",
        token=info,
        access_token=access_token,
    )


# --------------------------------------------------------------------------------------------
# The token request


def _attempt_without_exchange(
    request: TokenRequest, label: str, url: str, failure: _Failure, secrets: Sequence[str]
) -> Attempt:
    headers, body = _token_request_parts(request, label)
    masked_headers, masked_body = _masked_request(
        headers, body, (*request.additional_headers, *request.additional_request_data), secrets
    )
    return Attempt(
        client_authentication=label,
        method="POST",
        url=redact_text(redact_url(url), secrets=secrets),
        request_headers=masked_headers,
        request_body=masked_body,
        status_code=None,
        response_headers=(),
        response_excerpt="",
        duration_ms=0,
        outcome=failure.outcome,
        message=redact_text(failure.message, secrets=secrets),
    )


def _token_attempt(
    transport: _Transport, request: TokenRequest, label: str, secrets: Sequence[str]
) -> tuple[Attempt, _Reading]:
    headers, body = _token_request_parts(request, label)
    masked_headers, masked_body = _masked_request(
        headers, body, (*request.additional_headers, *request.additional_request_data), secrets
    )
    started = time.monotonic()
    status: int | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    excerpt = ""
    try:
        raw = transport.send("POST", transport.target.url, headers, urlencode(body).encode())
    except _Failure as failure:
        reading = _Reading(failure.outcome, failure.message)
    else:
        reading = _read_token_response(raw, request, transport.target, secrets)
        status = raw.status
        response_headers = _response_headers(raw, secrets)
        token_secrets = (*secrets, reading.access_token) if reading.access_token else secrets
        excerpt = "" if raw.too_large else _excerpt(raw, token_secrets)
    attempt = Attempt(
        client_authentication=label,
        method="POST",
        url=redact_text(redact_url(transport.target.url), secrets=secrets),
        request_headers=masked_headers,
        request_body=masked_body,
        status_code=status,
        response_headers=response_headers,
        response_excerpt=excerpt,
        duration_ms=round((time.monotonic() - started) * 1000),
        outcome=reading.outcome,
        message=redact_text(reading.message, secrets=secrets),
    )
    return attempt, reading


def _encoding_matters(request: TokenRequest) -> bool:
    return (
        quote_plus(request.client_id) != request.client_id
        or quote_plus(request.client_secret) != request.client_secret
    )


def token_request_perform(
    request: TokenRequest,
    *,
    policy: OutboundPolicy,
    resolver: Resolver = socket.getaddrinfo,
) -> TokenResult:
    """Request a token as configured and explain what happened. Never raises for network faults.

    In automatic client authentication the Basic header is tried first, then the request body,
    never both in one request; when both are refused and the §2.3.1 urlencoding changed the
    credentials, Basic is tried once more without it. The first attempt that gets the client
    authenticated (a token, or an error about the grant or scope) ends the sequence.
    """
    started = time.monotonic()
    secrets = _exchange_secrets(request)
    attempts: list[Attempt] = []
    readings: list[_Reading] = []
    try:
        plan = _client_auth_plan(request)
    except _Failure as failure:
        plan = [CLIENT_AUTH_NONE]
        attempts.append(
            _attempt_without_exchange(request, plan[0], request.token_url, failure, secrets)
        )
        return _token_result(
            request, attempts, [_Reading(failure.outcome, failure.message)], started
        )
    try:
        target = _parse_target(request.token_url, "Oauth2 Token Url")
        _check_limits(request.timeout, request.max_body_bytes)
        if not _grant_type_sent(request):
            raise _Failure("config_error", "Oauth2 Grant Type is empty.")
        _check_headers(_token_request_parts(request, plan[0])[0])
        transport = _open_transport(target, request, policy=policy, resolver=resolver)
    except _Failure as failure:
        attempts.append(
            _attempt_without_exchange(request, plan[0], request.token_url, failure, secrets)
        )
        return _token_result(
            request, attempts, [_Reading(failure.outcome, failure.message)], started
        )

    try:
        pending = list(plan)
        while pending:
            label = pending.pop(0)
            attempt, reading = _token_attempt(transport, request, label, secrets)
            attempts.append(attempt)
            readings.append(reading)
            if not reading.client_rejected or request.client_authentication != CLIENT_AUTH_AUTO:
                break
            if (
                not pending
                and label == CLIENT_AUTH_BODY
                and all(item.client_rejected for item in readings)
                and _encoding_matters(request)
            ):
                pending.append(CLIENT_AUTH_BASIC_UNENCODED)
    finally:
        transport.close()
    return _token_result(request, attempts, readings, started)


def _used_client_authentication(attempt: Attempt, reading: _Reading) -> str | None:
    if reading.client_rejected or not attempt.client_authentication:
        return None
    # Only an answer produced by the server proves the client authentication worked.
    proven = (
        reading.outcome == "success"
        or reading.oauth_error in _CLIENT_ACCEPTED_ERRORS
        or (
            reading.outcome in ("no_token", "invalid_response")
            and attempt.status_code is not None
            and 200 <= attempt.status_code < 300
        )
    )
    if not proven:
        return None
    if attempt.client_authentication == CLIENT_AUTH_BASIC_UNENCODED:
        return CLIENT_AUTH_BASIC
    return attempt.client_authentication


def _token_result(
    request: TokenRequest,
    attempts: list[Attempt],
    readings: list[_Reading],
    started: float,
) -> TokenResult:
    last_attempt, last = attempts[-1], readings[-1]
    used = _used_client_authentication(last_attempt, last)
    message = last_attempt.message
    if last_attempt.client_authentication == CLIENT_AUTH_BASIC_UNENCODED and used:
        message += (
            " This only worked with the client credentials sent in the Basic header without "
            "the form-urlencoding RFC 6749 §2.3.1 requires: the server skips the §2.3.1 decoding."
        )
    secrets = _exchange_secrets(request)
    hint = _token_hint(request, attempts, readings, used)
    return TokenResult(
        ok=last.outcome == "success",
        outcome=last.outcome,
        message=redact_text(message, secrets=secrets),
        hint=redact_text(hint, secrets=secrets),
        attempts=tuple(attempts),
        client_authentication_used=used,
        token=last.token,
        duration_ms=round((time.monotonic() - started) * 1000),
        access_token=last.access_token,
    )


def _token_hint(
    request: TokenRequest, attempts: list[Attempt], readings: list[_Reading], used: str | None
) -> str:
    auto = request.client_authentication == CLIENT_AUTH_AUTO
    labels = [attempt.client_authentication for attempt in attempts]
    last = readings[-1]
    outcome = last.outcome
    body_option = _CLIENT_AUTH_OPTION[CLIENT_AUTH_BODY]
    basic_option = _CLIENT_AUTH_OPTION[CLIENT_AUTH_BASIC]
    scope_field = _SCOPE_FIELD.get(request.grant_type, "the scope field")

    if labels[-1] == CLIENT_AUTH_BASIC_UNENCODED and used:
        return (
            "The server does not decode the Basic credentials as RFC 6749 §2.3.1 requires, so "
            "credentials with characters like + / : % spaces or accents only work unencoded. "
            "Keep Oauth2 Client Authentication on automatic so this fallback is used, or use a "
            "Client Secret without such characters, and tell the provider about the bug."
        )
    if auto and used == CLIENT_AUTH_BODY and CLIENT_AUTH_BASIC in labels:
        prefix = (
            "This server wants the client credentials in the request body: set Oauth2 Client "
            f"Authentication to {body_option}."
        )
        return prefix if outcome == "success" else f"{prefix} {_outcome_hint(request, last)}"
    if auto and used == CLIENT_AUTH_BASIC and outcome == "success":
        return (
            "The Basic Auth header worked. To skip the fallback, set Oauth2 Client "
            f"Authentication to {basic_option}."
        )
    if outcome == "success":
        return ""
    if last.client_rejected:
        return _client_rejected_hint(request, labels)
    return _outcome_hint(request, last, scope_field=scope_field)


def _client_rejected_hint(request: TokenRequest, labels: list[str]) -> str:
    mode = request.client_authentication
    if labels[0] == CLIENT_AUTH_NONE:
        return "The server wants client authentication: fill in Client ID and Client Secret."
    if mode == CLIENT_AUTH_AUTO:
        return (
            "The server accepted the client credentials neither in the Basic Auth header nor "
            "in the request body: check Client ID and Client Secret (copy them again from the "
            "provider, without spaces around them)."
        )
    if mode == CLIENT_AUTH_BASIC:
        return (
            "Check Client ID and Client Secret. If they are right, the server may want them in "
            "the request body: set Oauth2 Client Authentication to "
            f"{_CLIENT_AUTH_OPTION[CLIENT_AUTH_BODY]} (or leave it on automatic to try both)."
        )
    if mode == CLIENT_AUTH_BODY:
        return (
            "Check Client ID and Client Secret. If they are right, the server may want them in "
            f"a Basic Auth header: set Oauth2 Client Authentication to "
            f"{_CLIENT_AUTH_OPTION[CLIENT_AUTH_BASIC]} (or leave it on automatic to try both)."
        )
    return (
        "The server did not accept the Basic Auth header built from Password Grant Username and "
        "Password Grant Password. Most servers want the client id and secret there instead: set "
        f"Oauth2 Client Authentication to {_CLIENT_AUTH_OPTION[CLIENT_AUTH_BASIC]}."
    )


def _outcome_hint(request: TokenRequest, reading: _Reading, *, scope_field: str = "") -> str:
    outcome = reading.outcome
    scope_field = scope_field or _SCOPE_FIELD.get(request.grant_type, "the scope field")
    if outcome == "invalid_grant":
        if request.grant_type == GRANT_REFRESH_TOKEN:
            return (
                "The client itself was accepted, but the refresh token is expired, revoked or "
                "was issued to another client: get a new one and paste it into Refresh Token "
                "Grant Refresh Token."
            )
        if request.grant_type == GRANT_PASSWORD:
            return (
                "The client itself was accepted: check Password Grant Username and Password "
                "Grant Password (and that the account is not locked or protected by MFA)."
            )
        return (
            "The client itself was accepted, but the server refused the grant: check Oauth2 "
            "Grant Type and Oauth2 Custom Oauth Request Options Custom Grant Type."
        )
    if outcome == "unauthorized_client":
        return (
            f"The application is not allowed the {_grant_type_sent(request)!r} grant type on the "
            "server: enable it for this client there, or choose the grant type the client is "
            "registered for in Oauth2 Grant Type."
        )
    if outcome == "unsupported_grant_type":
        return (
            f"The server does not support grant_type {_grant_type_sent(request)!r}: check Oauth2 "
            "Grant Type, or set Oauth2 Custom Oauth Request Options Custom Grant Type to the "
            "value the server documents."
        )
    if outcome == "invalid_scope":
        current = f" (now {request.scope!r})" if request.scope else ""
        return (
            f"Check {scope_field}{current}: use scopes this client may request, separated by "
            "spaces, or leave it blank for the default."
        )
    if outcome == "no_token":
        keys = ", ".join(reading.keys_found[:20]) or "none"
        suggestion = (
            f" The token seems to be at {reading.suggested_key!r}." if reading.suggested_key else ""
        )
        return f"Set Json Access Token Key to one of the keys found: {keys}.{suggestion}"
    if outcome == "timeout":
        return (
            f"The server did not answer within {request.timeout:g} s: it may be slow, or a "
            "firewall may be dropping the traffic. Check Oauth2 Token Url and that this server "
            "can reach it."
        )
    if outcome == "redirect_refused":
        where = f" on {reading.redirect_host}" if reading.redirect_host else ""
        return (
            f"Set Oauth2 Token Url to the final URL{where}: open the token URL in a browser or "
            "check the provider's documentation for the exact token endpoint."
        )
    if outcome == "invalid_response" and reading.too_large:
        return (
            "Check Oauth2 Token Url: it points at something that is not a token endpoint "
            f"(the response is larger than {_size_text(request.max_body_bytes)})."
        )
    if outcome in ("invalid_response", "http_error") and reading.html_page:
        return (
            "Check Oauth2 Token Url: it returned a web page, not a token endpoint (often a "
            "login page, or the authorize URL instead of the token URL)."
        )
    if outcome == "invalid_response" and request.response_type == "json":
        return (
            "If the server sends form-encoded responses, set Oauth2 Custom Oauth Response "
            "Response Type to Form Encoded; otherwise check Oauth2 Token Url."
        )
    if outcome == "http_error":
        return _http_error_hint(reading.message, "Oauth2 Token Url")
    if outcome == "invalid_request":
        return (
            "Read the server's description above; check Oauth2 Token Url, Additional Request "
            "Data and Additional Headers against the provider's documentation."
        )
    if outcome == "connection_error":
        return (
            "Check the host and port in Oauth2 Token Url, and that the service is running and "
            "reachable from this server."
        )
    if outcome == "dns_error":
        return "Check the host name in Oauth2 Token Url: it does not resolve from this server."
    if outcome == "tls_error":
        return OUTCOMES["tls_error"].next_step
    return OUTCOMES[outcome].next_step if outcome in OUTCOMES else ""


def _http_error_hint(message: str, url_field: str) -> str:
    match = re.search(r"HTTP (\d{3})", message)
    status = int(match[1]) if match else 0
    if status in (404, 405, 410):
        return f"Check {url_field}: the server has nothing that accepts this request at this path."
    if status in (401, 403):
        return (
            "The server refused the credentials: check the credential fields and, for OAuth2, "
            "Oauth2 Client Authentication."
        )
    if status == 429:
        return "The server is rate limiting: wait a minute and try again."
    if status >= 500:
        return "The server failed: try again later, or contact the provider if it persists."
    return OUTCOMES["http_error"].next_step


# --------------------------------------------------------------------------------------------
# curl


def _shell_variable(key: str) -> str:
    return "PARAM_" + (re.sub(r"[^A-Z0-9]", "_", key.upper()) or "VALUE")


_BASIC_CLIENT_SNIPPET = (
    "import base64,os,urllib.parse as u;print(base64.b64encode((u.quote_plus(os.environ"
    '["CLIENT_ID"])+":"+u.quote_plus(os.environ["CLIENT_SECRET"])).encode()).decode())'
)


def token_request_as_curl(request: TokenRequest, *, client_authentication: str) -> str:
    """A copy-pasteable curl command for one attempt, with secrets as shell variables.

    Secrets never appear: the command reads $CLIENT_SECRET, $PASSWORD, $REFRESH_TOKEN and
    $PARAM_<KEY> (sensitive params) from the shell. For `basic_client`, curl's `-u` would skip the
    RFC 6749 §2.3.1 form-urlencoding of id and secret, so a preamble line computes the header
    value with python3 (`BASIC=$(...)`) and the command sends `Authorization: Basic $BASIC`.
    `basic_client_unencoded` and `basic_user` are plain RFC 7617 Basic, which `-u` produces.
    """
    label = client_authentication
    headers, body = _token_request_parts(request, label)
    sensitive_headers = {
        p.key.lower()
        for p in request.additional_headers
        if p.sensitive or key_looks_sensitive(p.key)
    }
    sensitive_data = {
        p.key for p in request.additional_request_data if p.sensitive or key_looks_sensitive(p.key)
    }
    variables: list[str] = []

    def variable(name: str) -> str:
        if name not in variables:
            variables.append(name)
        return f'"${name}"'

    preamble: list[str] = []
    options = [
        "curl --silent --show-error",
        f"--max-time {shlex.quote(f'{request.timeout:g}')}",
        "-X POST",
    ]
    for name, value in headers:
        if (
            name.lower() == "authorization"
            and label in (CLIENT_AUTH_BASIC, CLIENT_AUTH_BASIC_UNENCODED, CLIENT_AUTH_BASIC_USER)
            and not any(p.key.lower() == "authorization" for p in request.additional_headers)
        ):
            continue  # built below, without writing the credentials out
        if name.lower() in sensitive_headers:
            options.append(f"-H {shlex.quote(f'{name}: ')}{variable(_shell_variable(name))}")
        else:
            options.append(f"-H {shlex.quote(f'{name}: {value}')}")
    if label == CLIENT_AUTH_BASIC:
        secret = variable("CLIENT_SECRET")
        preamble.append(
            f"BASIC=$(CLIENT_ID={shlex.quote(request.client_id)} CLIENT_SECRET={secret} "
            f"python3 -c {shlex.quote(_BASIC_CLIENT_SNIPPET)})"
        )
        options.append('-H "Authorization: Basic $BASIC"')
    elif label == CLIENT_AUTH_BASIC_UNENCODED:
        options.append(f"--user {shlex.quote(request.client_id + ':')}{variable('CLIENT_SECRET')}")
    elif label == CLIENT_AUTH_BASIC_USER:
        options.append(f"--user {shlex.quote(request.username + ':')}{variable('PASSWORD')}")

    secret_fields = {
        "password": "PASSWORD",
        "client_secret": "CLIENT_SECRET",
        "refresh_token": "REFRESH_TOKEN",
    }
    custom_keys = {p.key for p in request.additional_request_data}
    for key, value in body:
        name = f"{quote_plus(key)}="
        if key in secret_fields and key not in custom_keys:
            options.append(f"--data-urlencode {shlex.quote(name)}{variable(secret_fields[key])}")
        elif key in sensitive_data:
            options.append(f"--data-urlencode {shlex.quote(name)}{variable(_shell_variable(key))}")
        else:
            options.append(f"--data-urlencode {shlex.quote(name + value)}")
    options.append(shlex.quote(redact_url(request.token_url.strip())))

    lines = []
    if variables:
        lines.append(
            "# Set these shell variables first (for example: read -rs NAME): " + " ".join(variables)
        )
    lines += preamble
    lines.append(" \\\n  ".join(options))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The API test request


def api_request_perform(
    request: ApiRequest,
    *,
    policy: OutboundPolicy,
    resolver: Resolver = socket.getaddrinfo,
) -> ApiResult:
    """GET the connector's API with its credentials; ok on 2xx. Never raises for network faults."""
    secrets = _api_secrets(request)
    headers: list[tuple[str, str]] = [
        ("User-Agent", request.user_agent or DEFAULT_USER_AGENT),
        ("Accept", "application/json, */*;q=0.8"),
    ]
    if request.basic_auth is not None:
        user, password = request.basic_auth
        headers.append(("Authorization", f"Basic {_basic_value(user, password)}"))
    for param in request.headers:
        headers = [(name, value) for name, value in headers if name.lower() != param.key.lower()]
        headers.append((param.key, param.value))
    sensitive = [param.key for param in (*request.headers, *request.params) if param.sensitive]
    masked_headers = tuple(
        (name, redact_text(value, secrets=secrets))
        for name, value in redact_headers(headers, sensitive_keys=sensitive)
    )
    url = request.url.strip()
    if request.params:
        query = urlencode([(param.key, param.value) for param in request.params])
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    shown_url = redact_text(redact_url(url), secrets=secrets)

    def result(outcome: str, message: str, hint: str, **attempt_fields: Any) -> ApiResult:
        values: dict[str, Any] = {
            "status_code": None,
            "response_headers": (),
            "response_excerpt": "",
            "duration_ms": 0,
        }
        values.update(attempt_fields)
        message = redact_text(message, secrets=secrets)
        attempt = Attempt(
            client_authentication="",
            method="GET",
            url=shown_url,
            request_headers=masked_headers,
            request_body=(),
            outcome=outcome,
            message=message,
            **values,
        )
        return ApiResult(outcome == "success", outcome, message, hint, attempt)

    try:
        target = _parse_target(url, "The API URL (Base URL and Test request path)")
        _check_limits(request.timeout, request.max_body_bytes)
        _check_headers(headers)
        transport = _open_transport(target, request, policy=policy, resolver=resolver)
    except _Failure as failure:
        return result(failure.outcome, failure.message, _api_hint(failure.outcome, failure.message))

    started = time.monotonic()
    try:
        raw = transport.send("GET", target.url, headers, None)
    except _Failure as failure:
        return result(
            failure.outcome,
            failure.message,
            _api_hint(failure.outcome, failure.message),
            duration_ms=round((time.monotonic() - started) * 1000),
        )
    finally:
        transport.close()

    duration_ms = round((time.monotonic() - started) * 1000)
    fields = {
        "status_code": raw.status,
        "response_headers": _response_headers(raw, secrets),
        "response_excerpt": _excerpt(raw, secrets),
        "duration_ms": duration_ms,
    }
    if 300 <= raw.status < 400:
        host = _location_host(raw, target)
        where = f" to {host}" if host else ""
        message = (
            f"The API answered HTTP {raw.status} (a redirect{where}). Redirects are not followed "
            "because that would send the credentials again to the new address."
        )
        hint = (
            f"Use the final URL{(' on ' + host) if host else ''} in Base URL / Test request path."
        )
        return result("redirect_refused", message, hint, **fields)
    text = _decode(raw.body, raw.headers)
    if 200 <= raw.status < 300:
        size = (
            f"{len(raw.body)} bytes"
            if not raw.too_large
            else (f"more than {_size_text(request.max_body_bytes)}; reading stopped there")
        )
        content_type = _content_type(raw.headers) or "no Content-Type"
        message = f"The API answered HTTP {raw.status} ({content_type}, {size})."
        return result("success", message, "", **fields)
    message = _http_error_message(raw, text, secrets)
    if raw.status in (401, 403):
        hint = (
            f"The API refused the credentials (HTTP {raw.status}): check Username / Password, "
            "Api Key, Bearer Token or the OAuth2 token's scope, and Header Auth Key / Header Auth "
            "Value Pattern."
        )
    else:
        hint = _http_error_hint(message, "Base URL and Test request path")
    return result("http_error", message, hint, **fields)


def _api_secrets(request: ApiRequest) -> tuple[str, ...]:
    extra = [_basic_value(*request.basic_auth)] if request.basic_auth else []
    return (*request.secrets(), *extra)


def _api_hint(outcome: str, message: str) -> str:
    field_name = "Base URL / Test request path"
    hints = {
        "timeout": f"The API did not answer in time: it may be slow, or a firewall may be "
        f"dropping the traffic. Check {field_name}.",
        "connection_error": f"Check the host and port in {field_name}.",
        "dns_error": f"Check the host name in {field_name}: it does not resolve from this server.",
    }
    return hints.get(outcome) or (OUTCOMES[outcome].next_step if outcome in OUTCOMES else "")
