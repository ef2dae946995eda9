"""The outbound policy: which resolved addresses a connection test may reach.

Nothing here connects anywhere except the loopback server in the pinning test; every other
address only goes through `OutboundPolicy.check` with a stub resolver.
"""

from __future__ import annotations

import socket
import threading

import pytest

from connectors.explain import token_hint
from connectors.oauth_http import (
    BLOCKED_MESSAGE,
    OutboundPolicy,
    TokenRequest,
    token_request_perform,
)


def hint_of(result) -> str:
    """The advice for a result, as the console words it (connectors.explain)."""
    return token_hint(result)


def resolve_to(*addresses: str):
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        calls.append((host, port))
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (address, port, 0, 0) if ":" in address else (address, port),
            )
            for address in addresses
        ]

    resolver.calls = calls  # type: ignore[attr-defined]
    return resolver


def must_not_resolve(*args: object, **kwargs: object) -> list:
    raise AssertionError("an address literal must not be resolved")


REFUSED_ADDRESSES = [
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.1",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.1.1",
    "100.64.0.1",
    "100.127.255.254",
    "100.100.100.200",
    "127.0.0.1",
    "127.8.9.10",
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",
    "::1",
    "::",
    "fd00:ec2::254",
    "fc00::1",
    "fe80::1",
    "ff02::1",
    "::ffff:10.0.0.1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::10.0.0.1",
    "64:ff9b::127.0.0.1",
    "2002:a00:1::1",  # 6to4 around 10.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_refused_address_behind_a_public_looking_name(address: str) -> None:
    decision = OutboundPolicy().check("api.example.com", 443, resolver=resolve_to(address))
    assert not decision.allowed
    assert decision.reason


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_refused_address_literal_is_not_resolved(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    decision = OutboundPolicy().check(host, 443, resolver=must_not_resolve)
    assert not decision.allowed


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "64:ff9b::808:808"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    decision = OutboundPolicy().check("api.example.com", 443, resolver=resolve_to(address))
    assert decision.allowed
    assert decision.addresses == (address,)


@pytest.mark.parametrize(
    "name",
    [
        "metadata.google.internal",
        "METADATA.google.internal.",
        "metadata",
        "instance-data",
        "metadata.azure.com",
    ],
)
def test_metadata_names_are_refused_even_resolving_public(name: str) -> None:
    decision = OutboundPolicy().check(name, 80, resolver=resolve_to("8.8.8.8"))
    assert not decision.allowed


def test_mixed_answer_is_refused() -> None:
    decision = OutboundPolicy().check(
        "rebind.example.com", 443, resolver=resolve_to("8.8.8.8", "10.0.0.1")
    )
    assert not decision.allowed
    assert decision.addresses == ("8.8.8.8", "10.0.0.1")


def test_loopback_allowed_only_with_allow_loopback() -> None:
    for address in ("127.0.0.1", "::1", "127.0.0.53"):
        assert (
            OutboundPolicy(allow_loopback=True)
            .check("localhost", 80, resolver=resolve_to(address))
            .allowed
        )
        assert not OutboundPolicy().check("localhost", 80, resolver=resolve_to(address)).allowed
    # allow_loopback is about loopback only.
    assert (
        not OutboundPolicy(allow_loopback=True)
        .check("x.test", 80, resolver=resolve_to("10.0.0.1"))
        .allowed
    )
    assert (
        OutboundPolicy(allow_loopback=True)
        .check("x.test", 80, resolver=resolve_to("::ffff:127.0.0.1"))
        .allowed
    )


def test_allow_list_cidr_and_host_name() -> None:
    policy = OutboundPolicy.from_setting(
        "10.20.0.0/16, idp.corp.example\n*.internal.example fd12::/16", allow_loopback=False
    )
    assert policy.allow == ("10.20.0.0/16", "idp.corp.example", "*.internal.example", "fd12::/16")
    assert policy.check("a.test", 443, resolver=resolve_to("10.20.3.4")).allowed
    assert not policy.check("a.test", 443, resolver=resolve_to("10.21.3.4")).allowed
    assert policy.check("IDP.corp.example", 443, resolver=resolve_to("192.168.7.7")).allowed
    assert policy.check("sso.internal.example", 443, resolver=resolve_to("172.16.1.1")).allowed
    assert not policy.check("other.corp.example", 443, resolver=resolve_to("192.168.7.7")).allowed
    assert policy.check("v6.test", 443, resolver=resolve_to("fd12::5")).allowed
    assert policy.check("m.test", 443, resolver=resolve_to("::ffff:10.20.0.9")).allowed


def test_metadata_stays_refused_under_a_broad_allow() -> None:
    broad = OutboundPolicy(allow=("169.254.0.0/16", "100.64.0.0/10", "fd00::/8", "0.0.0.0/0"))
    assert broad.check("link.test", 80, resolver=resolve_to("169.254.1.1")).allowed
    for address in (
        "169.254.169.254",
        "100.100.100.200",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
    ):
        assert not broad.check("x.test", 80, resolver=resolve_to(address)).allowed, address
    # A host name in the allow list does not unlock a metadata address behind it either.
    named = OutboundPolicy(allow=("idp.corp.example",))
    assert not named.check("idp.corp.example", 80, resolver=resolve_to("169.254.169.254")).allowed


def test_metadata_unlocked_only_by_exact_entry() -> None:
    exact = OutboundPolicy(allow=("169.254.169.254",))
    assert exact.check("x.test", 80, resolver=resolve_to("169.254.169.254")).allowed
    assert not exact.check("metadata.google.internal", 80, resolver=resolve_to("8.8.8.8")).allowed
    by_name = OutboundPolicy(allow=("metadata.google.internal",))
    assert by_name.check(
        "metadata.google.internal", 80, resolver=resolve_to("169.254.169.254")
    ).allowed


def test_resolver_failure_raises_gaierror() -> None:
    def failing(*args: object, **kwargs: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(socket.gaierror):
        OutboundPolicy().check("nowhere.test", 443, resolver=failing)


# --------------------------------------------------------------------------------------------
# Enforcement inside token_request_perform


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch):
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a blocked request must not connect")

    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket.socket, "connect_ex", forbidden)
    import urllib3.util.connection

    monkeypatch.setattr(urllib3.util.connection, "create_connection", forbidden)


@pytest.mark.parametrize(
    ("url", "resolved", "policy"),
    [
        ("https://token.example.test/token", "10.0.0.1", OutboundPolicy()),
        ("https://token.example.test/token", "169.254.169.254", OutboundPolicy()),
        ("https://token.example.test/token", "::ffff:192.168.0.1", OutboundPolicy()),
        ("https://metadata.google.internal/token", "8.8.8.8", OutboundPolicy()),
        ("http://127.0.0.1:8080/token", None, OutboundPolicy()),
        ("http://[::1]:8080/token", None, OutboundPolicy()),
        (
            "https://token.example.test/token",
            "169.254.169.254",
            OutboundPolicy(allow=("169.254.0.0/16",)),
        ),
    ],
    ids=["private", "metadata-ip", "mapped", "metadata-name", "loopback", "loopback6", "broad"],
)
def test_blocked_request_never_connects_and_reads_the_same(
    no_connections: None, url: str, resolved: str | None, policy: OutboundPolicy
) -> None:
    resolver = resolve_to(resolved) if resolved else must_not_resolve
    result = token_request_perform(
        TokenRequest(url, "client_credentials", client_id="c", client_secret="s-secret-1"),
        policy=policy,
        resolver=resolver,
    )
    assert result.outcome == "blocked"
    assert result.message == BLOCKED_MESSAGE
    assert "CONNECTORS_OUTBOUND_ALLOW" in hint_of(result)
    [attempt] = result.attempts
    assert attempt.status_code is None
    assert attempt.message == BLOCKED_MESSAGE
    # Nothing about the internal address leaks into what the user sees.
    if resolved:
        assert resolved not in result.message + hint_of(result) + attempt.message


def test_refusal_reasons_differ_only_in_the_log_field() -> None:
    reasons = set()
    for address in ("10.0.0.1", "127.0.0.1", "169.254.169.254", "224.0.0.1", "100.64.0.1"):
        decision = OutboundPolicy().check("a.test", 443, resolver=resolve_to(address))
        assert not decision.allowed
        reasons.add(decision.reason)
    assert len(reasons) == 5


# --------------------------------------------------------------------------------------------
# Pinning: the connection goes to the address that was checked


class RecordingServer:
    """Answers one token response per connection and records the Host header."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.hosts: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65_536)
                    if not chunk:
                        break
                    data += chunk
                for line in data.decode("latin-1").split("\r\n"):
                    if line.lower().startswith("host:"):
                        self.hosts.append(line.split(":", 1)[1].strip())
                body = b'{"access_token": "pinned-token-1"}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self.sock.close()


def test_connection_goes_to_the_checked_address_with_the_original_host() -> None:
    server = RecordingServer()
    try:
        resolver = resolve_to("127.0.0.1")
        result = token_request_perform(
            TokenRequest(f"http://token.example.test:{server.port}/token", "client_credentials"),
            policy=OutboundPolicy(allow_loopback=True),
            resolver=resolver,
        )
    finally:
        server.close()
    assert result.ok, result.message
    # token.example.test does not resolve in real DNS: reaching the server proves the pin.
    assert server.hosts == [f"token.example.test:{server.port}"]
    assert resolver.calls == [("token.example.test", server.port)]  # resolved once, not twice
