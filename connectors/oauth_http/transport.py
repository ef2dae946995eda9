"""One exchange with one host: policy, pinning, deadline, body cap, no redirects.

`open_transport` checks the URL and the outbound policy and prepares a pinned adapter; `send`
returns the raw answer with the body read up to a cap, or raises `Failure` with an outcome.
Exceptions become outcomes through `EXCEPTION_OUTCOMES`, a table read top to bottom, as httpx's
transports map theirs. TLS verification is always on; proxies from the environment are ignored.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from connectors.oauth_http.deadline import DeadlinePassed, Watchdog, run_within
from connectors.oauth_http.pinning import PinnedAdapter
from connectors.oauth_http.policy import (
    BLOCKED_MESSAGE,
    OutboundPolicy,
    normalise_host,
    parse_address,
)
from connectors.oauth_http.types import PolicyDecision, Resolver
from connectors.oauth_http.vocabulary import Outcome


class Failure(Exception):
    """A fault that ends one exchange with a given outcome."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


def config_error(message: str) -> Failure:
    return Failure(Outcome.CONFIG_ERROR, message)


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    reason: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    too_large: bool


# --------------------------------------------------------------------------------------------
# Checks before anything is sent


def _url_parts(url: str, field_label: str) -> tuple[str, str, int | None, str]:
    """(clean url, scheme, port, netloc) of a URL that parses; Failure otherwise."""
    if not url or not url.strip():
        raise config_error(f"{field_label} is empty.")
    url = url.strip()
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise config_error(f"{field_label} contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise config_error(f"{field_label} is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise config_error(f"{field_label} must start with https:// (or http://).")
    if "@" in parts.netloc:
        raise config_error(
            f"{field_label} must not contain a user name or password; use the credential "
            "fields instead."
        )
    # The fragment is never sent; dropping it keeps attempt records honest.
    clean = urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))
    return clean, scheme, port, parts.hostname or ""


def parse_target(url: str, field_label: str) -> Target:
    """The URL's scheme, host and port, checked; `field_label` names it in the message."""
    clean, scheme, port, hostname = _url_parts(url, field_label)
    try:
        host = normalise_host(hostname)
    except UnicodeError:
        raise config_error(f"{field_label} has an invalid host name.") from None
    if not host:
        raise config_error(f"{field_label} has no host name.")
    if port == 0:
        raise config_error(f"{field_label} has an invalid port.")
    return Target(clean, scheme, host, port or (443 if scheme == "https" else 80))


def check_limits(timeout: float, max_body_bytes: int) -> None:
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise config_error("The timeout must be a positive number of seconds.")
    if max_body_bytes <= 0:
        raise config_error("The response size limit must be positive.")


# RFC 9110 §5.6.2 token: the only characters a header name may use.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


def check_headers(headers: Iterable[tuple[str, str]]) -> None:
    for name, value in headers:
        if not HEADER_NAME.match(name):
            raise config_error(f"Header name {name!r} is not a valid HTTP header name.")
        if "\r" in value or "\n" in value or "\0" in value:
            raise config_error(f"Header {name} contains a line break.")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise config_error(
                f"Header {name} contains characters HTTP headers cannot carry."
            ) from None


def check_ca_bundle(pem: str, field_label: str) -> None:
    """A CA bundle, when given, must be PEM certificates Python's TLS can load."""
    if not pem.strip():
        return
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise config_error(
            f"{field_label} is not valid: paste one or more PEM certificates "
            "(-----BEGIN CERTIFICATE----- ...)."
        ) from None


def oserror_text(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror) or not exc.errno:
        return exc.strerror or str(exc) or exc.__class__.__name__
    return exc.strerror or errno.errorcode.get(exc.errno, str(exc.errno))


# --------------------------------------------------------------------------------------------
# Exceptions to outcomes


def exception_chain(exc: BaseException) -> list[BaseException]:
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


def _kind(*kinds: type[BaseException]) -> Callable[[BaseException], bool]:
    return lambda exc: isinstance(exc, kinds)


def _has_errno(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and bool(exc.errno)


# The message of a row: (transport, the exception the row matched, the exception raised).
Describe = Callable[["Transport", BaseException, BaseException], str]


@dataclass(frozen=True, slots=True)
class ExceptionOutcome:
    matches: Callable[[BaseException], bool]
    outcome: Outcome
    describe: Describe


def _certificate(t: Transport, found: BaseException, raised: BaseException) -> str:
    detail = getattr(found, "verify_message", None) or str(found)
    return f"The certificate of {t.target.host} was not accepted: {detail}."


def _handshake(t: Transport, found: BaseException, raised: BaseException) -> str:
    detail = getattr(found, "reason", None) or found.__class__.__name__
    return f"The TLS handshake with {t.target.host} failed ({detail})."


def _os_error(t: Transport, found: BaseException, raised: BaseException) -> str:
    text = oserror_text(found) if isinstance(found, OSError) else str(found)
    return f"The connection to {t.target.host} port {t.target.port} failed ({text})."


# First match wins, over the whole chain of wrapped exceptions: the most specific fault first.
EXCEPTION_OUTCOMES: tuple[ExceptionOutcome, ...] = (
    ExceptionOutcome(_kind(ssl.SSLCertVerificationError), Outcome.TLS_ERROR, _certificate),
    ExceptionOutcome(_kind(ssl.SSLError), Outcome.TLS_ERROR, _handshake),
    ExceptionOutcome(_kind(requests.exceptions.SSLError), Outcome.TLS_ERROR, _handshake),
    ExceptionOutcome(
        _kind(ConnectionRefusedError),
        Outcome.CONNECTION_ERROR,
        lambda t, found, raised: (
            f"{t.target.host} port {t.target.port} refused the connection (nothing is listening)."
        ),
    ),
    ExceptionOutcome(
        _kind(ConnectionResetError),
        Outcome.CONNECTION_ERROR,
        lambda t, found, raised: f"{t.target.host} reset the connection.",
    ),
    ExceptionOutcome(_is_timeout, Outcome.TIMEOUT, lambda t, found, raised: t.timeout_message()),
    ExceptionOutcome(
        _kind(urllib3.exceptions.NameResolutionError, socket.gaierror),
        Outcome.DNS_ERROR,
        lambda t, found, raised: f"The host name {t.target.host} could not be resolved.",
    ),
    ExceptionOutcome(
        _kind(urllib3.exceptions.DecodeError),
        Outcome.INVALID_RESPONSE,
        lambda t, found, raised: f"The response from {t.target.host} could not be decoded.",
    ),
    ExceptionOutcome(
        _kind(requests.exceptions.InvalidHeader, urllib3.exceptions.LocationValueError),
        Outcome.CONFIG_ERROR,
        lambda t, found, raised: f"The request cannot be sent: {raised}",
    ),
    ExceptionOutcome(_has_errno, Outcome.CONNECTION_ERROR, _os_error),
)
# Raised by the network layers while sending or reading; anything else is a bug and propagates.
NETWORK_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError)


# --------------------------------------------------------------------------------------------
# The transport


class Transport:
    """One host, one policy decision, one deadline, shared by all attempts of an exchange."""

    def __init__(
        self,
        target: Target,
        *,
        policy: OutboundPolicy,
        resolver: Resolver,
        ca_bundle: str,
        timeout: float,
        max_body_bytes: int,
    ) -> None:
        self.target: Target = target
        self._policy = policy
        self._resolver = resolver
        self._ca_bundle = ca_bundle
        self.max_body_bytes = max_body_bytes
        self.watchdog = Watchdog(timeout)
        self.timeout = timeout
        self._adapter: PinnedAdapter | None = None
        self._ca_file = ""

    def open(self) -> None:
        """Check the policy and prepare the pinned adapter; raises Failure.

        The CA bundle must have passed `check_ca_bundle` first.
        """
        self.watchdog.start()
        decision = self._decide()
        if not decision.allowed:
            raise Failure(Outcome.BLOCKED, BLOCKED_MESSAGE)
        if self._ca_bundle.strip():
            with tempfile.NamedTemporaryFile(
                "w", suffix=".pem", prefix="connector-ca-", delete=False
            ) as handle:
                handle.write(self._ca_bundle)
                self._ca_file = handle.name
        self._adapter = PinnedAdapter(self.target.host, decision.addresses, self.watchdog)

    def _decide(self) -> PolicyDecision:
        host, port = self.target.host, self.target.port

        def check() -> PolicyDecision:
            return self._policy.check(host, port, resolver=self._resolver)

        try:
            # An address literal needs no lookup that could hang, so no helper thread either.
            if parse_address(normalise_host(host)) is not None:
                return check()
            return run_within(self.watchdog.remaining(), check)
        except DeadlinePassed:
            raise Failure(
                Outcome.TIMEOUT, "Resolving the host name did not finish within the time limit."
            ) from None
        except OSError as exc:  # socket.gaierror and friends from the resolver
            raise Failure(
                Outcome.DNS_ERROR,
                f"The host name {host} could not be resolved ({oserror_text(exc)}).",
            ) from None
        except UnicodeError:  # getaddrinfo refuses over-long labels this way
            raise Failure(
                Outcome.DNS_ERROR, f"The host name {host} could not be resolved."
            ) from None

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
        self.watchdog.close()
        if self._ca_file:
            with contextlib.suppress(OSError):
                os.unlink(self._ca_file)

    def send(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes | str | None
    ) -> RawResponse:
        """One request within the deadline; the body read up to the cap. Raises Failure."""
        if self._adapter is None:
            raise config_error("The transport is not open.")
        remaining = self.watchdog.remaining()
        if remaining <= 0:
            raise self.timeout_failure()
        try:
            prepared = requests.Request(
                method, url, headers=CaseInsensitiveDict(list(headers)), data=body
            ).prepare()
        except (requests.RequestException, ValueError) as exc:
            raise config_error(f"The request cannot be built: {exc}") from None
        try:
            response = self._adapter.send(
                prepared,
                stream=True,
                timeout=(remaining, remaining),
                verify=self._ca_file or True,
                proxies={},
            )
        except NETWORK_ERRORS as exc:
            raise self.failure_from(exc) from None
        try:
            return self._receive(response)
        except NETWORK_ERRORS as exc:
            raise self.failure_from(exc) from None
        finally:
            response.close()

    def _receive(self, response: requests.Response) -> RawResponse:
        if 300 <= response.status_code < 400:
            body, too_large = b"", False  # never read: we do not follow it anyway
        else:
            body, too_large = self._read_body(response)
        if self.watchdog.fired:
            # The shutdown ends a dripping response early; what arrived is a fragment.
            raise self.timeout_failure()
        return RawResponse(
            response.status_code, response.reason or "", response.headers, body, too_large
        )

    def _read_body(self, response: requests.Response) -> tuple[bytes, bool]:
        cap = self.max_body_bytes
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isascii() and declared.isdigit() and int(declared) > cap:
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

    def timeout_message(self) -> str:
        return (
            f"No complete answer from {self.target.host} within {self.timeout:g} s "
            "(the limit covers the whole exchange, all attempts)."
        )

    def timeout_failure(self) -> Failure:
        return Failure(Outcome.TIMEOUT, self.timeout_message())

    def failure_from(self, exc: BaseException) -> Failure:
        """The outcome of a network exception, by the first row of EXCEPTION_OUTCOMES it meets."""
        if self.watchdog.fired:
            return self.timeout_failure()
        chain = exception_chain(exc)
        for row in EXCEPTION_OUTCOMES:
            found = next((item for item in chain if row.matches(item)), None)
            if found is not None:
                return Failure(row.outcome, row.describe(self, found, exc))
        return Failure(
            Outcome.CONNECTION_ERROR,
            f"The connection to {self.target.host} was closed before a complete answer arrived.",
        )


def open_transport(
    target: Target,
    *,
    policy: OutboundPolicy,
    resolver: Resolver,
    ca_bundle: str,
    timeout: float,
    max_body_bytes: int,
) -> Transport:
    """The one factory for outbound exchanges: a transport past the outbound policy.

    Raises Failure with nothing left open. Every outbound call of the console (the connection
    test, `ConnectorAuth`, later notifications) starts here, directly or through
    `outbound_session`.
    """
    transport = Transport(
        target,
        policy=policy,
        resolver=resolver,
        ca_bundle=ca_bundle,
        timeout=timeout,
        max_body_bytes=max_body_bytes,
    )
    try:
        transport.open()
    except Failure:
        transport.close()
        raise
    return transport


__all__ = [
    "EXCEPTION_OUTCOMES",
    "HEADER_NAME",
    "Failure",
    "RawResponse",
    "Target",
    "Transport",
    "check_ca_bundle",
    "check_headers",
    "check_limits",
    "config_error",
    "open_transport",
    "parse_target",
]
