"""Recognising another host's claim on an address (the end of a make-before-break handover)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from ccm.speaker.l2.claims import _block_all_but_advertisements, advertisement_claim, arp_claim
from ccm.speaker.l2.frames import announcement_frames, arp_request, mac_bytes

OURS = mac_bytes("02:00:5e:00:53:01")
THEIRS = mac_bytes("02:00:5e:00:53:02")


def test_gratuitous_arp_and_probe_answers_from_another_host_are_claims() -> None:
    for frame in announcement_frames(THEIRS, "192.0.2.10"):
        assert arp_claim(frame, OURS) == "192.0.2.10"
    # a holder's answer to our RFC 5227 probe: sender is the address, target 0.0.0.0
    answer = bytes(Ether(src="02:00:5e:00:53:02", dst="02:00:5e:00:53:01")
                   / ARP(op=2, hwsrc="02:00:5e:00:53:02", psrc="192.0.2.10",
                         hwdst="02:00:5e:00:53:01", pdst="0.0.0.0"))
    assert arp_claim(answer, OURS) == "192.0.2.10"


def test_our_own_frames_questions_and_probes_are_not_claims() -> None:
    for frame in announcement_frames(OURS, "192.0.2.10"):
        assert arp_claim(frame, OURS) is None
    # a router asking for the address names itself as sender, not the address
    question = arp_request(THEIRS, IPv4Address("192.0.2.1"), IPv4Address("192.0.2.10"))
    assert arp_claim(question, OURS) == "192.0.2.1"
    probe = arp_request(THEIRS, IPv4Address(0), IPv4Address("192.0.2.10"))
    assert arp_claim(probe, OURS) is None
    assert arp_claim(b"\x00" * 20, OURS) is None


def test_neighbour_advertisements_claim_their_target_unless_they_are_ours() -> None:
    theirs = announcement_frames(THEIRS, "2001:db8::10")[0][14 + 40:]  # the ICMPv6 message
    assert advertisement_claim(theirs, OURS) == "2001:db8::10"
    ours = announcement_frames(OURS, "2001:db8::10")[0][14 + 40:]
    assert advertisement_claim(ours, OURS) is None
    # a kernel's answer to a DAD probe, as scapy builds it independently
    answer = bytes(IPv6(src="2001:db8::10", dst="ff02::1") / ICMPv6ND_NA(
        tgt=IPv6Address("2001:db8::10").compressed, R=0, S=0, O=1)
        / ICMPv6NDOptDstLLAddr(lladdr="02:00:5e:00:53:02"))[40:]
    assert advertisement_claim(answer, OURS) == "2001:db8::10"
    assert advertisement_claim(b"\x87" + b"\x00" * 30, OURS) is None  # a solicitation


def test_icmpv6_filter_passes_only_neighbour_advertisements() -> None:
    # the kernel blocks type T when bit T&31 of word T>>5 is set (linux/icmpv6.h)
    words = struct.unpack("=8I", _block_all_but_advertisements())
    passed = {t for t in range(256) if not words[t >> 5] >> (t & 31) & 1}
    assert passed == {136}
