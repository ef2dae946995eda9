"""Connections pinned to the addresses the outbound policy checked.

requests resolves a host name again when it connects, so a name checked against the policy could
answer differently a moment later (DNS rebinding). These classes dial the checked addresses
instead, and hand every socket to the exchange's watchdog.

The public hook requests-hardened uses (`HTTPAdapter.build_connection_pool_key_attributes`,
replacing the host by one address and passing `server_hostname`) pins a single address and never
shows the socket before the TLS handshake, which the watchdog must be able to end when a server
drips it. So the connection overrides `_new_conn`, as urllib3's own SOCKS connection does; it is
the only private hook used. The rest goes through public ones: the pool classes per scheme, the
pool's `ConnectionCls`, and the adapter's `build_connection_pool_key_attributes`.
"""

from __future__ import annotations

import socket
from typing import Any

import urllib3.exceptions
from requests import PreparedRequest
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from connectors.oauth_http.deadline import Watchdog
from connectors.oauth_http.policy import normalise_host


class _PinnedConnectionMixin:
    """Dials the addresses the policy checked instead of resolving the host name again.

    The connection's `host` stays the name from the URL, so the Host header, TLS SNI and the
    certificate host name check all use the name; only the TCP connect uses the pinned address.
    Each exchange builds its own classes (see `_pinned_pool_classes`), so nothing here is shared
    between threads.
    """

    pinned_addresses: tuple[str, ...] = ()
    watchdog: Watchdog | None = None

    def _new_conn(self) -> socket.socket:
        connection: Any = self
        last_error: OSError | None = None
        for address in self.pinned_addresses:
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
            if self.watchdog is not None:
                self.watchdog.watch(sock)
            return sock
        raise urllib3.exceptions.NewConnectionError(
            connection, f"Failed to establish a new connection: {last_error}"
        ) from last_error


def _pinned_pool_classes(
    addresses: tuple[str, ...], watchdog: Watchdog
) -> dict[str, type[HTTPConnectionPool]]:
    """Pool classes whose connections dial `addresses`; built per exchange, never shared."""
    pinned = {"pinned_addresses": addresses, "watchdog": watchdog}
    http = type("PinnedHTTPConnection", (_PinnedConnectionMixin, HTTPConnection), pinned)
    https = type("PinnedHTTPSConnection", (_PinnedConnectionMixin, HTTPSConnection), pinned)
    return {
        "http": type("PinnedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type(
            "PinnedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https}
        ),
    }


class PinnedAdapter(HTTPAdapter):
    """A requests adapter for one host whose connections dial the checked addresses only."""

    def __init__(
        self, pinned_host: str, pinned_addresses: tuple[str, ...], watchdog: Watchdog
    ) -> None:
        self._pinned_host = pinned_host
        self._pool_classes = _pinned_pool_classes(pinned_addresses, watchdog)
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

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
