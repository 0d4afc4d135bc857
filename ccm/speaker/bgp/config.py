"""What the speaker tells ExaBGP: its configuration file and its API commands, as text.

Pure and strict: every value is validated before it reaches a line of ExaBGP syntax, because a
newline or a quote in user input (a community, a password) would otherwise become a command.
Passwords travel base64-encoded (``md5-base64``) so no character needs quoting.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_ASN = 2**32 - 1
MAX_LOCAL_PREF = 2**32 - 1
#: Linux refuses longer TCP-MD5 keys (TCP_MD5SIG_MAXKEYLEN).
MAX_PASSWORD_BYTES = 80
WELL_KNOWN_COMMUNITIES = frozenset(
    {"no-export", "no-advertise", "no-export-subconfed", "no-peer", "blackhole"}
)
_STANDARD = re.compile(r"^(\d{1,5}):(\d{1,5})$")
_LARGE = re.compile(r"^(\d{1,10}):(\d{1,10}):(\d{1,10})$")


def _asn(value: int, what: str) -> int:
    if not 1 <= value <= MAX_ASN:
        raise ValueError(f"{what} {value} is not a valid AS number")
    return value


@dataclass(frozen=True)
class Peer:
    """One BGP neighbour of this node (a router, or a route reflector)."""

    address: str
    asn: int
    local_asn: int
    hold_time: int = 90
    password: str | None = None
    source_address: str | None = None
    port: int = 179

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", str(ipaddress.ip_address(self.address)))
        if self.source_address is not None:
            source = ipaddress.ip_address(self.source_address)
            if source.version != ipaddress.ip_address(self.address).version:
                raise ValueError(f"source {source} and peer {self.address} differ in family")
            object.__setattr__(self, "source_address", str(source))
        _asn(self.asn, "peer ASN")
        _asn(self.local_asn, "local ASN")
        # RFC 4271: hold time is 0 (no keepalives) or at least 3 seconds
        if self.hold_time != 0 and not 3 <= self.hold_time <= 65535:
            raise ValueError(f"hold time {self.hold_time} must be 0 or 3..65535")
        if self.password is not None and len(self.password.encode()) > MAX_PASSWORD_BYTES:
            raise ValueError(f"BGP password longer than {MAX_PASSWORD_BYTES} bytes")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")

    @property
    def internal(self) -> bool:
        """iBGP: the only kind of session on which LOCAL_PREF means anything."""
        return self.asn == self.local_asn


def _community(value: str) -> tuple[str, str]:
    """("community" | "large-community", canonical text) for one community string."""
    text = value.strip().lower()
    if text in WELL_KNOWN_COMMUNITIES:
        return "community", text
    standard = _STANDARD.match(text)
    if standard and all(int(part) <= 0xFFFF for part in standard.groups()):
        return "community", f"{int(standard[1])}:{int(standard[2])}"
    large = _LARGE.match(text)
    if large and all(int(part) <= MAX_ASN for part in large.groups()):
        return "large-community", ":".join(str(int(part)) for part in large.groups())
    raise ValueError(f"not a BGP community (ASN:VALUE, ASN:X:Y or a well-known name): {value!r}")


@dataclass(frozen=True)
class Route:
    """A host route for one service address, with the attributes the advertisement asks for."""

    prefix: str
    next_hop: str | None = None
    communities: tuple[str, ...] = ()
    local_pref: int | None = None
    peers: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        network = ipaddress.ip_network(self.prefix, strict=False)
        if "/" not in self.prefix:  # a bare address means its host route
            network = ipaddress.ip_network(f"{network.network_address}/{network.max_prefixlen}")
        object.__setattr__(self, "prefix", str(network))
        if self.next_hop is not None:
            hop = ipaddress.ip_address(self.next_hop)
            if hop.version != network.version:
                raise ValueError(f"next hop {hop} is not in the family of {network}")
            object.__setattr__(self, "next_hop", str(hop))
        object.__setattr__(
            self, "communities", tuple(dict.fromkeys(_community(c)[1] for c in self.communities))
        )
        if self.local_pref is not None and not 0 <= self.local_pref <= MAX_LOCAL_PREF:
            raise ValueError(f"local preference {self.local_pref} out of range")
        object.__setattr__(
            self, "peers", tuple(sorted(str(ipaddress.ip_address(p)) for p in self.peers))
        )


def _neighbor_selector(peers: Sequence[str]) -> str:
    return "".join(f"neighbor {peer}, " for peer in peers).removesuffix(", ") + (
        " " if peers else ""
    )


def announce_command(route: Route) -> str:
    """The ExaBGP API line that announces ``route`` (to ``route.peers``, or to every peer)."""
    parts = [f"announce route {route.prefix}", f"next-hop {route.next_hop or 'self'}"]
    if route.local_pref is not None:
        parts.append(f"local-preference {route.local_pref}")
    kinds: dict[str, list[str]] = {}
    for community in route.communities:
        kind, text = _community(community)
        kinds.setdefault(kind, []).append(text)
    for kind, values in kinds.items():
        parts.append(f"{kind} [{' '.join(values)}]")
    return _neighbor_selector(route.peers) + " ".join(parts)


def withdraw_command(route: Route) -> str:
    return f"{_neighbor_selector(route.peers)}withdraw route {route.prefix}"


def render_config(
    peers: Iterable[Peer], process_argv: Sequence[str], router_id: str | None = None
) -> str:
    """An ExaBGP configuration: one API process (our relay) and one block per peer.

    ``router_id`` must be an IPv4 address; when it is None, IPv4 peers with a source address
    use that address, and other peers make ExaBGP pick one when it connects.
    """
    peers = list(peers)
    addresses = [peer.address for peer in peers]
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"one session per peer address: {sorted(addresses)}")
    for argument in process_argv:
        if any(c in argument for c in ";\n{}\"' "):
            raise ValueError(f"process argument unsafe for ExaBGP syntax: {argument!r}")
    if router_id is not None:
        router_id = str(ipaddress.IPv4Address(router_id))
    lines = [
        "process vipam {",
        f"    run {' '.join(process_argv)};",
        "    encoder json;",
        # the speaker restarts ExaBGP as a whole when the relay is lost (see speaker.py)
        "    respawn false;",
        "}",
    ]
    for peer in peers:
        lines += [
            f"neighbor {peer.address} {{",
            f"    peer-as {peer.asn};",
            f"    local-as {peer.local_asn};",
            f"    hold-time {peer.hold_time};",
            "    passive false;",
            # keep what we announced so a session that comes back gets it again at once
            "    adj-rib-out true;",
        ]
        if peer.port != 179:
            lines.append(f"    connect {peer.port};")
        if peer.source_address is not None:
            lines.append(f"    local-address {peer.source_address};")
        if router_id is not None:
            lines.append(f"    router-id {router_id};")
        if peer.password is not None:
            encoded = base64.b64encode(peer.password.encode()).decode()
            lines += ["    md5-base64 true;", f"    md5-password {encoded};"]
        lines += [
            "    family {",
            "        ipv4 unicast;",
            "        ipv6 unicast;",
            "    }",
            "    api {",
            "        processes [ vipam ];",
            "        neighbor-changes;",
            "    }",
            "}",
        ]
    return "\n".join(lines) + "\n"
