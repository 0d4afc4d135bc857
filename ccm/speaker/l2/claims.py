"""Hearing another host claim an address: when a handover ends, and whether an address is free.

When an address moves between two live speakers (a node rejoins and wins it back, a node stops
cleanly, an endpoint moves under ``externalTrafficPolicy: Local``), the old owner keeps the
address until the new owner has announced it, so a host resolving it in between still gets an
answer. The new owner's announcement is heard on the segment itself, not through the API: its
gratuitous ARP or unsolicited neighbour advertisement, or its kernel's answer to the probes we
send meanwhile (an RFC 5227 ARP probe, a DAD-style neighbour solicitation), which catch an
announcement that went by before we listened. The old owner then withdraws after a short grace
(``announcer.HANDOVER_GRACE``, 0.2 s), which is all the time both nodes answer: a client that
sent a packet with its old neighbour entry as the announcement went by still reaches it.

The same listening tells a node taking an address over from a dead one when that node's kernel
has stopped answering for it (``wait_silent``, see ``ccm.speaker.fencing``).

Listening costs a packet socket that receives ARP only (IPv4) and an ICMPv6 socket that the
kernel filters down to neighbour advertisements (IPv6), open only while a handover waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import time
from typing import Protocol

from ccm.speaker.l2.frames import (
    ETH_P_ARP,
    ICMPV6_NEIGHBOR_ADVERTISEMENT,
    NDP_OPTION_TARGET_LLADDR,
    probe_frame,
)

PACKET_OUTGOING = 4  # linux/if_packet.h: a frame this host sent
ICMP6_FILTER = 1  # linux/icmpv6.h: the socket option, a bit set per type to block


class Sender(Protocol):
    def mac(self, interface: str) -> bytes: ...

    def send(self, interface: str, frames: list[bytes]) -> None: ...


def _block_all_but_advertisements() -> bytes:
    words = [0xFFFFFFFF] * 8
    words[ICMPV6_NEIGHBOR_ADVERTISEMENT >> 5] &= ~(1 << (ICMPV6_NEIGHBOR_ADVERTISEMENT & 31))
    return struct.pack("=8I", *words)


def arp_claim(frame: bytes, own_mac: bytes) -> str | None:
    """The address an ARP frame from another host claims (its sender address), if any."""
    if len(frame) < 42 or frame[12:14] != struct.pack("!H", ETH_P_ARP):
        return None
    sender_mac, sender_ip = frame[22:28], frame[28:32]
    if sender_mac == own_mac or sender_ip == b"\x00" * 4:
        return None
    return socket.inet_ntop(socket.AF_INET, sender_ip)


def advertisement_claim(message: bytes, own_mac: bytes) -> str | None:
    """The target of a neighbour advertisement (an ICMPv6 message) not sent by us, if any."""
    if len(message) < 24 or message[0] != ICMPV6_NEIGHBOR_ADVERTISEMENT:
        return None
    options = message[24:]
    while len(options) >= 8 and options[1]:
        if options[0] == NDP_OPTION_TARGET_LLADDR and options[2:8] == own_mac:
            return None  # our own, looped back to us
        options = options[options[1] * 8:]
    return socket.inet_ntop(socket.AF_INET6, message[8:24])


class ClaimListener:
    """Waits, per address, until another host on the segment claims it."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._arp: dict[str, socket.socket] = {}  # interface -> ARP packet socket
        self._icmp: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def wait(self, ip: str, interface: str, timeout: float, probe_every: float = 0.5
                   ) -> bool:
        """True once another host claims ``ip`` on ``interface``; False after ``timeout``.

        The first probe goes out as soon as we listen, so a claim made before that is heard at
        once; later claims announce themselves. The repeats only cover lost frames."""
        ip = str(ipaddress.ip_address(ip))
        loop = asyncio.get_running_loop()
        claimed: asyncio.Future[None] = loop.create_future()
        self._waiters.setdefault(ip, set()).add(claimed)
        try:
            mac = self._sender.mac(interface)
            self._listen(ip, interface, mac)
            probe = [probe_frame(mac, ip)]
            deadline = loop.time() + timeout
            while (left := deadline - loop.time()) > 0:
                with contextlib.suppress(OSError):  # the interface is going; time decides
                    self._sender.send(interface, probe)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(claimed), min(probe_every, left))
                    return True
            return claimed.done()
        finally:
            waiters = self._waiters.get(ip, set())
            waiters.discard(claimed)
            if not waiters:
                self._waiters.pop(ip, None)
            if not self._waiters:
                self.close()

    async def wait_silent(self, ip: str, interface: str, deadline: float, wait: float) -> bool:
        """Probe ``ip`` until a probe goes unanswered for ``wait`` s (True), or until the
        monotonic ``deadline`` (False: someone still answers)."""
        ip = str(ipaddress.ip_address(ip))
        loop = asyncio.get_running_loop()
        mac = self._sender.mac(interface)
        self._listen(ip, interface, mac)
        probe = [probe_frame(mac, ip)]
        try:
            while True:
                answered: asyncio.Future[None] = loop.create_future()
                self._waiters.setdefault(ip, set()).add(answered)
                try:
                    with contextlib.suppress(OSError):
                        self._sender.send(interface, probe)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(answered), wait)
                finally:
                    self._waiters.get(ip, set()).discard(answered)
                if not answered.done():
                    return True
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        finally:
            if not self._waiters.get(ip):
                self._waiters.pop(ip, None)
            if not self._waiters:
                self.close()

    def _listen(self, ip: str, interface: str, mac: bytes) -> None:
        loop = self._loop = asyncio.get_running_loop()
        if ipaddress.ip_address(ip).version == 4:
            if interface not in self._arp:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
                sock.bind((interface, ETH_P_ARP))
                sock.setblocking(False)
                loop.add_reader(sock.fileno(), self._on_arp, sock, mac)
                self._arp[interface] = sock
        elif self._icmp is None:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, _block_all_but_advertisements())
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), self._on_icmp, sock, mac)
            self._icmp = sock

    def _on_arp(self, sock: socket.socket, mac: bytes) -> None:
        for frame, address in self._drain(sock):
            if address[2] != PACKET_OUTGOING:
                self._claimed(arp_claim(frame, mac))

    def _on_icmp(self, sock: socket.socket, mac: bytes) -> None:
        for message, _ in self._drain(sock):
            self._claimed(advertisement_claim(message, mac))

    @staticmethod
    def _drain(sock: socket.socket) -> list[tuple[bytes, tuple[object, ...]]]:
        received = []
        while True:
            try:
                received.append(sock.recvfrom(2048))
            except (BlockingIOError, InterruptedError):
                return received
            except OSError:  # the interface went away: nothing more will come
                return received

    def _claimed(self, ip: str | None) -> None:
        for waiter in self._waiters.get(ip or "", ()):
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        for sock in [*self._arp.values(), *([self._icmp] if self._icmp else [])]:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._arp.clear()
        self._icmp = None
