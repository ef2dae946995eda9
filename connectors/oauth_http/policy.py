"""The outbound policy: which addresses a connector may reach, judged on resolved addresses.

Loopback, private, link-local, multicast, reserved and cloud-metadata addresses are refused unless
the allow list names them (metadata only when named exactly). Translation forms (IPv4-mapped,
NAT64, 6to4, Teredo) are judged by the IPv4 address they reach.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from connectors.oauth_http.types import PolicyDecision, Resolver

# One sentence for every refusal: different wording per reason would let the test button map
# the internal network (which names exist, which are loopback, which are metadata).
BLOCKED_MESSAGE = (
    "This address is not allowed by the outbound policy. If this server is meant to be "
    "reachable, ask an administrator to add it to CONNECTORS_OUTBOUND_ALLOW."
)

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


def normalise_host(host: str) -> str:
    """The host as DNS and the allow list see it: lower case, no brackets or final dot."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if host and not host.isascii():
        # Resolve and compare IDNs in the form DNS sees.
        host = host.encode("idna").decode("ascii")
    return host


def parse_address(text: str) -> IPAddress | None:
    """The IP address in `text` (a zone index dropped), or None for a host name."""
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


def _resolve(name: str, port: int, resolver: Resolver) -> list[IPAddress]:
    """The distinct addresses a name resolves to; gaierror when none is usable."""
    addresses: list[IPAddress] = []
    for info in resolver(name, port, 0, socket.SOCK_STREAM):
        address = parse_address(str(info[4][0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{name} resolved to no usable address")
    return addresses


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
                name = normalise_host(entry)
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
            name = normalise_host(host)
        except UnicodeError:
            raise socket.gaierror(socket.EAI_NONAME, "invalid host name") from None
        if not name:
            return PolicyDecision(False, (), "empty host")
        literal = parse_address(name)
        name_allowed = literal is None and (
            name in names or any(name.endswith(suffix) for suffix in suffixes)
        )
        metadata_name_listed = name in METADATA_HOST_NAMES and name in names
        if literal is None and name in METADATA_HOST_NAMES and not metadata_name_listed:
            return PolicyDecision(False, (), f"metadata host name {name}")

        addresses = [literal] if literal is not None else _resolve(name, port, resolver)
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


__all__ = [
    "BLOCKED_MESSAGE",
    "METADATA_ADDRESSES",
    "METADATA_HOST_NAMES",
    "OutboundPolicy",
    "normalise_host",
    "parse_address",
]
