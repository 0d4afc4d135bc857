"""The program ExaBGP runs as its API process: a byte relay to the speaker's Unix socket.

ExaBGP only talks to processes it spawns itself (commands on their stdout, acknowledgements and
events on their stdin). The speaker is ExaBGP's parent, not its child, so this relay connects
the two: ExaBGP's pipes on one side, the speaker's socket on the other.

When the speaker's side goes away (the speaker died) or cannot be reached, the relay tells
ExaBGP to shut down before exiting: ExaBGP then closes its sessions with a Cease NOTIFICATION
and the peers drop our routes at once, instead of after the hold time. A speaker that is not
running must not keep attracting traffic. (A parent-death signal cannot do this: ExaBGP drops
privileges after start, and the kernel clears the parent-death signal on that change.)
If the relay itself dies, the speaker restarts ExaBGP as a whole (ExaBGP's own respawn is off:
after dropping privileges it could not start the relay with the speaker's rights).

Deliberately tiny and stdlib-only: it starts on every ExaBGP (re)start.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import time

CONNECT_ATTEMPTS = 50
CONNECT_INTERVAL = 0.1


SHUTDOWN = b"shutdown\n"


def connect(path: str) -> socket.socket | None:
    for _ in range(CONNECT_ATTEMPTS):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            time.sleep(CONNECT_INTERVAL)
    return None


def relay(sock: socket.socket, stdin_fd: int, stdout_fd: int) -> str:
    """Copy bytes both ways until one side closes; returns which side ("exabgp"/"speaker")."""
    selector = selectors.DefaultSelector()
    selector.register(stdin_fd, selectors.EVENT_READ, "exabgp")
    selector.register(sock, selectors.EVENT_READ, "speaker")
    while True:
        for key, _ in selector.select():
            if key.data == "exabgp":
                data = os.read(stdin_fd, 65536)
                if not data:
                    return "exabgp"
                sock.sendall(data)
            else:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    return "speaker"
                view = memoryview(data)
                while view:
                    view = view[os.write(stdout_fd, view) :]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m ccm.speaker.bgp.relay SOCKET", file=sys.stderr)
        return 2
    sock = connect(argv[1])
    if sock is None:
        print(f"vipam relay: speaker unreachable at {argv[1]}; stopping ExaBGP", file=sys.stderr)
        os.write(sys.stdout.fileno(), SHUTDOWN)
        return 1
    with sock:
        closed = relay(sock, sys.stdin.fileno(), sys.stdout.fileno())
    if closed == "speaker":
        print("vipam relay: speaker went away; stopping ExaBGP", file=sys.stderr)
        os.write(sys.stdout.fileno(), SHUTDOWN)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
