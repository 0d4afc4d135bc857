"""Record announcement frames arriving in a namespace.

Usage: ``python -m tests.netns.capture IFACE SECONDS``.

Prints one JSON line per ARP or ICMPv6 neighbour advertisement frame seen on IFACE, with its
arrival time relative to the start of capture, then exits. Run inside a namespace with
``ip netns exec``; it prints "ready" first so the caller knows the socket is open.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def main(interface: str, seconds: float) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((interface, 0))
        sock.settimeout(0.05)
        print("ready", flush=True)
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            try:
                frame = sock.recv(2048)
            except TimeoutError:
                continue
            ethertype = struct.unpack("!H", frame[12:14])[0]
            if ethertype == 0x0806:
                op = struct.unpack("!H", frame[20:22])[0]
                ip = socket.inet_ntop(socket.AF_INET, frame[28:32])
                print(json.dumps({"t": elapsed, "kind": f"arp-{op}", "ip": ip}), flush=True)
            elif ethertype == 0x86DD and frame[20] == 58 and frame[54] == 136:
                target = socket.inet_ntop(socket.AF_INET6, frame[62:78])
                print(json.dumps({"t": elapsed, "kind": "na", "ip": target}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
