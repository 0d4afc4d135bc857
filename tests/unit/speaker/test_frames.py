"""Announcement frames, checked with scapy's independent dissector."""

from __future__ import annotations

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from ccm.speaker.l2.frames import announcement_frames, mac_bytes

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
