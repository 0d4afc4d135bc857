"""A host that resolves addresses afresh, again and again: who answers ARP/NDP right now?

Usage (inside a namespace, with ``ip netns exec``)::

    python -m tests.netns.prober IFACE MY_IPV4 MY_IPV6 PERIOD IP [IP ...]

Every PERIOD seconds it sends an ARP request (IPv4) or a neighbour solicitation (IPv6) for
each IP from raw sockets, so no neighbour cache hides anything, and collects the answers that
arrive before the next round: unicast ARP replies to our request and solicited neighbour
advertisements to our address. Gratuitous ARP and unsolicited NAs are not answers and are not
counted. One JSON line per round: ``{"t": seconds since start, "d": seconds until the next
round, "answers": {ip: [MAC, ...]}}``; an answer belongs to the round whose request came before
it, by the kernel's receive time.
It prints ``ready`` first and stops when its stdin closes.

A round with no MAC is a moment nobody answered; a round with two MACs is two nodes claiming
the address. The round is the resolution: a window shorter than PERIOD may go unseen.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import select
import socket
import struct
import sys
import time

from ccm.speaker.l2.frames import (
    ARP_REPLY,
    ETH_P_ARP,
    ETH_P_IPV6,
    ICMPV6,
    ICMPV6_NEIGHBOR_ADVERTISEMENT,
    arp_request,
    neighbor_solicitation,
)

ETH_P_ALL = 0x0003
NA_FLAG_SOLICITED = 0x40000000
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python 3.11 lacks the name


def answer(frame: bytes, mac: bytes, me4: bytes, me6: bytes) -> tuple[str, str] | None:
    """(address, MAC) if ``frame`` answers one of our requests, else None."""
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype == ETH_P_ARP and len(frame) >= 42:
        op = struct.unpack("!H", frame[20:22])[0]
        if op == ARP_REPLY and frame[32:38] == mac and frame[38:42] == me4:
            return socket.inet_ntop(socket.AF_INET, frame[28:32]), frame[22:28].hex(":")
    if ethertype == ETH_P_IPV6 and len(frame) >= 78 and frame[20] == ICMPV6:
        if frame[54] == ICMPV6_NEIGHBOR_ADVERTISEMENT and frame[38:54] == me6:
            flags = struct.unpack("!I", frame[58:62])[0]
            if flags & NA_FLAG_SOLICITED:
                return socket.inet_ntop(socket.AF_INET6, frame[62:78]), frame[6:12].hex(":")
    return None


def main(interface: str, me4: str, me6: str, period: float, targets: list[str]) -> None:
    ips = [ipaddress.ip_address(ip) for ip in targets]
    own4, own6 = ipaddress.IPv4Address(me4), ipaddress.IPv6Address(me6)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((interface, 0))
        # the kernel's receive time, so a busy prober still files each answer under the round
        # whose request it answers, not under the round in which it got around to reading it
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setblocking(False)
        mac: bytes = sock.getsockname()[4]
        requests = [
            arp_request(mac, own4, ip) if isinstance(ip, ipaddress.IPv4Address)
            else neighbor_solicitation(mac, own6, ip)
            for ip in ips
        ]
        print("ready", flush=True)
        started = time.time()
        sent: list[float] = []  # send time of each round (wall clock, as kernel timestamps)
        answers: list[dict[str, list[str]]] = []
        printed = 0

        def drain() -> None:
            while True:
                try:
                    frame, ancillary, _, address = sock.recvmsg(2048, 64)
                except BlockingIOError:
                    return
                if address[2] == PACKET_OUTGOING:
                    continue
                found = answer(frame, mac, own4.packed, own6.packed)
                if found is None:
                    continue
                stamp = next(
                    (struct.unpack("qq", data[:16]) for level, kind, data in ancillary
                     if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS), None)
                arrived = stamp[0] + stamp[1] / 1e9 if stamp else time.time()
                index = bisect.bisect_right(sent, arrived) - 1
                if index >= 0 and found[1] not in answers[index].setdefault(found[0], []):
                    answers[index][found[0]].append(found[1])

        while True:
            for request in requests:
                sock.send(request)
            sent.append(time.time())
            answers.append({})
            drain()  # everything that arrived before this send is in the queue by now
            while printed < len(sent) - 1:
                print(json.dumps({
                    "t": round(sent[printed] - started, 4),
                    "d": round(sent[printed + 1] - sent[printed], 4),
                    "answers": {str(ip): answers[printed].get(str(ip), []) for ip in ips},
                }), flush=True)
                printed += 1
            # the next round starts on the period's grid; a round that overran is not made up
            # for with a burst
            next_round = started + period * (int((time.time() - started) / period) + 1)
            while (left := next_round - time.time()) > 0:
                readable, _, _ = select.select([sock, sys.stdin], [], [], left)
                if sys.stdin in readable and not sys.stdin.readline():
                    return
                drain()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5:])
