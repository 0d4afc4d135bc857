"""Link-layer frames that tell a segment "this address now lives at this MAC".

Pure byte builders (no sockets), so they are unit-testable against an independent dissector.

IPv4 — gratuitous ARP, both forms, because receivers differ in which they honour: a request
(sender IP = target IP = the address, target MAC zero, what ``arping -U`` sends) and a reply
(target MAC = sender MAC, which Linux requires before it treats a reply as gratuitous).

IPv6 — an unsolicited neighbour advertisement to all-nodes with the Override flag set and the
Solicited flag clear (RFC 4861 §7.2.6): Override makes receivers replace a cached link-layer
address; a multicast NA must not claim to be solicited.

Probes — "does anyone else hold this address now?": an ARP probe (RFC 5227: sender IP
0.0.0.0, so nobody's cache learns from it) and a duplicate-address-detection style neighbour
solicitation (source ::, to the solicited-node group). A holder answers the ARP probe to our
MAC and the solicitation to all-nodes (RFC 4862 §5.4.3), so a node handing an address over
hears the new owner's answer without using an address of its own.
"""

from __future__ import annotations

import ipaddress
import struct

BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ARP_REQUEST = 1
ARP_REPLY = 2
ICMPV6 = 58
ICMPV6_NEIGHBOR_SOLICITATION = 135
ICMPV6_NEIGHBOR_ADVERTISEMENT = 136
NDP_OPTION_SOURCE_LLADDR = 1
NA_FLAG_OVERRIDE = 0x20000000
NDP_OPTION_TARGET_LLADDR = 2
ALL_NODES = ipaddress.IPv6Address("ff02::1")


def mac_bytes(mac: str) -> bytes:
    """``"02:00:00:00:00:01"`` -> 6 bytes."""
    raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not an Ethernet MAC address: {mac!r}")
    return raw


def _ethernet(destination: bytes, source: bytes, ethertype: int) -> bytes:
    return destination + source + struct.pack("!H", ethertype)


def _arp(op: int, mac: bytes, ip: bytes, target_mac: bytes, target_ip: bytes | None = None
         ) -> bytes:
    # hardware type Ethernet, protocol IPv4, hardware size 6, protocol size 4
    return (struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac + ip + target_mac
            + (ip if target_ip is None else target_ip))


def arp_request(mac: bytes, sender: ipaddress.IPv4Address, target: ipaddress.IPv4Address
                ) -> bytes:
    """A broadcast "who has ``target``"; ``sender`` 0.0.0.0 makes it an RFC 5227 probe."""
    return _ethernet(BROADCAST_MAC, mac, ETH_P_ARP) + _arp(
        ARP_REQUEST, mac, sender.packed, ZERO_MAC, target.packed
    )


def gratuitous_arp(mac: bytes, address: ipaddress.IPv4Address) -> list[bytes]:
    """A broadcast gratuitous ARP request and reply announcing ``address`` at ``mac``."""
    ip = address.packed
    header = _ethernet(BROADCAST_MAC, mac, ETH_P_ARP)
    return [
        header + _arp(ARP_REQUEST, mac, ip, ZERO_MAC),
        header + _arp(ARP_REPLY, mac, ip, mac),
    ]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _multicast_mac(group: ipaddress.IPv6Address) -> bytes:
    # RFC 2464 §7: 33:33 followed by the group's low 32 bits
    return b"\x33\x33" + group.packed[-4:]


def unsolicited_neighbor_advertisement(mac: bytes, address: ipaddress.IPv6Address) -> bytes:
    """An all-nodes NA (Override set, Solicited clear) announcing ``address`` at ``mac``.

    The source address is the announced address itself: it is assigned to the interface
    (without DAD), and receivers validate only hop limit 255 and the ICMPv6 checksum.
    """
    option = struct.pack("!BB", NDP_OPTION_TARGET_LLADDR, 1) + mac
    body = struct.pack("!I", NA_FLAG_OVERRIDE) + address.packed + option
    return _ipv6_icmp(mac, address, ALL_NODES, ICMPV6_NEIGHBOR_ADVERTISEMENT, body)


def solicited_node_group(address: ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    """ff02::1:ffXX:XXXX, the group a holder of ``address`` listens on (RFC 4291 §2.7.1)."""
    return ipaddress.IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff" + address.packed[-3:])


def _ipv6_icmp(mac: bytes, source: ipaddress.IPv6Address, destination: ipaddress.IPv6Address,
               icmp_type: int, body: bytes) -> bytes:
    """Ethernet + IPv6 (hop limit 255, as NDP requires) + ICMPv6 with its checksum."""
    pseudo_header = (
        source.packed + destination.packed + struct.pack("!I3xB", 4 + len(body), ICMPV6)
    )
    checksum = _checksum(pseudo_header + struct.pack("!BBH", icmp_type, 0, 0) + body)
    icmp = struct.pack("!BBH", icmp_type, 0, checksum) + body
    ipv6 = (
        struct.pack("!IHBB", 6 << 28, len(icmp), ICMPV6, 255)
        + source.packed
        + destination.packed
    )
    return _ethernet(_multicast_mac(destination), mac, ETH_P_IPV6) + ipv6 + icmp


def neighbor_solicitation(mac: bytes, source: ipaddress.IPv6Address,
                          target: ipaddress.IPv6Address) -> bytes:
    """"Who has ``target``" to its solicited-node group; source :: makes it a DAD probe,
    which carries no source link-layer option (RFC 4861 §4.3)."""
    body = b"\x00" * 4 + target.packed
    if not source.is_unspecified:
        body += struct.pack("!BB", NDP_OPTION_SOURCE_LLADDR, 1) + mac
    return _ipv6_icmp(mac, source, solicited_node_group(target), ICMPV6_NEIGHBOR_SOLICITATION,
                      body)


def probe_frame(mac: bytes, address: str) -> bytes:
    """The frame that asks whether another host holds ``address`` (see the module text)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        return arp_request(mac, ipaddress.IPv4Address(0), ip)
    return neighbor_solicitation(mac, ipaddress.IPv6Address(0), ip)


def announcement_frames(mac: bytes, address: str) -> list[bytes]:
    """The frames that announce ``address`` (IPv4 or IPv6) at ``mac``."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        return gratuitous_arp(mac, ip)
    return [unsolicited_neighbor_advertisement(mac, ip)]
