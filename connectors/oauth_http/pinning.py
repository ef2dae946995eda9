"""Connections pinned to the addresses the outbound policy checked.

requests resolves a host name again when it connects, so a name checked against the policy could
answer differently a moment later (DNS rebinding). These classes dial the checked addresses
instead, and hand every socket to the exchange's watchdog.

The public hook requests-hardened uses (`HTTPAdapter.build_connection_pool_key_attributes`,
replacing the host by one address and passing `server_hostname`) pins a single address and never
shows the socket before the TLS handshake, which the watchdog must be able to end when a server
drips it. So the connection overrides `_new_conn`, as urllib3's own SOCKS connection does; it is
the only private hook used. The rest goes through public ones: the pool manager's classes and key
functions per scheme, the pool's `ConnectionCls`, and the adapter's
`build_connection_pool_key_attributes` (which checks the host the pins were made for).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import urllib3.exceptions
from requests import PreparedRequest
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from connectors.oauth_http.deadline import Watchdog
from connectors.oauth_http.policy import normalise_host

_PINS = ("pinned_addresses", "watchdog")


class _PinnedConnectionMixin:
    """Dials the addresses the policy checked instead of resolving the host name again.

    The connection's `host` stays the name from the URL, so the Host header, TLS SNI and the
    certificate host name check all use the name; only the TCP connect uses the pinned address.
    The pins arrive as connection keyword arguments from the exchange's own pool manager, so
    nothing here is shared between threads.
    """

    def __init__(
        self,
        *args: Any,
        pinned_addresses: tuple[str, ...],
        watchdog: Watchdog,
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


_POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {
    "http": _PinnedHTTPConnectionPool,
    "https": _PinnedHTTPSConnectionPool,
}
PoolKeyFn = Callable[[dict[str, Any]], Any]


def _without_pins(key_fn: PoolKeyFn) -> PoolKeyFn:
    """A pool key function that ignores the pins: urllib3's key has no field for them."""

    def key(request_context: dict[str, Any]) -> Any:
        return key_fn({k: v for k, v in request_context.items() if k not in _PINS})

    return key


class PinnedAdapter(HTTPAdapter):
    """A requests adapter for one host whose connections dial the checked addresses only."""

    def __init__(
        self, pinned_host: str, pinned_addresses: tuple[str, ...], watchdog: Watchdog
    ) -> None:
        self._pinned_host = pinned_host
        self._pins = {"pinned_addresses": pinned_addresses, "watchdog": watchdog}
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        # The pins travel as pool keyword arguments, which urllib3 hands to each connection.
        super().init_poolmanager(connections, maxsize, block, **self._pins, **pool_kwargs)
        manager = self.poolmanager
        manager.pool_classes_by_scheme = _POOL_CLASSES
        manager.key_fn_by_scheme = {
            scheme: _without_pins(key_fn) for scheme, key_fn in manager.key_fn_by_scheme.items()
        }

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: bool | str, cert: Any = None
    ) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if normalise_host(str(host_params.get("host") or "")) != self._pinned_host:
            # The pinned addresses were checked for one host only.
            raise urllib3.exceptions.LocationValueError(f"unexpected host {host_params['host']}")
        return host_params, pool_kwargs


__all__ = ["PinnedAdapter"]
