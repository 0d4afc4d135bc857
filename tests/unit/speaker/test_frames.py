"""Announcement and probe frames, checked with scapy's independent dissector."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import ARP, Ether

from ccm.speaker.l2.frames import (
    announcement_frames,
    mac_bytes,
    neighbor_solicitation,
    probe_frame,
)

MAC = "02:00:5e:00:53:01"


def test_gratuitous_arp_request_and_reply() -> None:
    request, reply = (Ether(f) for f in announcement_frames(mac_bytes(MAC), "192.0.2.10"))
    for frame in (request, reply):
        assert frame.dst == "ff:ff:ff:ff:ff:ff"
        assert frame.src == MAC
        arp = frame[ARP]
        assert (arp.psrc, arp.pdst, arp.hwsrc) == ("192.0.2.10", "192.0.2.10", MAC)
    assert request[ARP].op == 1
    assert request[ARP].hwdst == "00:00:00:00:00:00"
    # Linux treats a reply as gratuitous only when target MAC equals sender MAC
    assert reply[ARP].op == 2
    assert reply[ARP].hwdst == MAC


def test_unsolicited_neighbor_advertisement() -> None:
    (raw,) = announcement_frames(mac_bytes(MAC), "2001:db8::10")
    frame = Ether(raw)
    assert frame.dst == "33:33:00:00:00:01"
    assert frame.src == MAC
    ip = frame[IPv6]
    assert (ip.src, ip.dst, ip.hlim) == ("2001:db8::10", "ff02::1", 255)
    na = frame[ICMPv6ND_NA]
    assert (na.tgt, na.O, na.S, na.R) == ("2001:db8::10", 1, 0, 0)
    assert frame[ICMPv6NDOptDstLLAddr].lladdr == MAC
    # scapy recomputes the checksum when the field is cleared: ours must match it
    reference = Ether(raw)
    del reference[ICMPv6ND_NA].cksum
    assert Ether(bytes(reference))[ICMPv6ND_NA].cksum == na.cksum


@pytest.mark.parametrize("bad", ["02:00:00:00:01", "not-a-mac"])
def test_mac_bytes_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        mac_bytes(bad)


def test_arp_probe_asks_without_an_address_of_its_own() -> None:
    frame = Ether(probe_frame(mac_bytes(MAC), "192.0.2.10"))
    assert frame.dst == "ff:ff:ff:ff:ff:ff"
    arp = frame[ARP]
    assert (arp.op, arp.psrc, arp.pdst, arp.hwsrc) == (1, "0.0.0.0", "192.0.2.10", MAC)


def test_dad_style_solicitation_goes_to_the_solicited_node_group() -> None:
    raw = probe_frame(mac_bytes(MAC), "2001:db8::1:abcd")
    frame = Ether(raw)
    assert frame.dst == "33:33:ff:01:ab:cd"
    ip = frame[IPv6]
    assert (ip.src, ip.dst, ip.hlim) == ("::", "ff02::1:ff01:abcd", 255)
    ns = frame[ICMPv6ND_NS]
    assert ns.tgt == "2001:db8::1:abcd"
    assert ICMPv6NDOptSrcLLAddr not in frame  # forbidden with source :: (RFC 4861 4.3)
    reference = Ether(raw)
    del reference[ICMPv6ND_NS].cksum
    assert Ether(bytes(reference))[ICMPv6ND_NS].cksum == ns.cksum


def test_solicitation_from_an_address_carries_our_link_layer_address() -> None:
    raw = neighbor_solicitation(mac_bytes(MAC), IPv6Address("2001:db8::fa"),
                                IPv6Address("2001:db8::10"))
    frame = Ether(raw)
    assert frame[IPv6].src == "2001:db8::fa"
    assert frame[ICMPv6NDOptSrcLLAddr].lladdr == MAC
    reference = Ether(raw)
    del reference[ICMPv6ND_NS].cksum
    assert Ether(bytes(reference))[ICMPv6ND_NS].cksum == frame[ICMPv6ND_NS].cksum
