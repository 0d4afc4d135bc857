"""A pod's workload: answers every HTTP request with its own name and the client it saw.

Usage: ``python -m tests.netns.podserver NAME PORT`` inside the pod's network namespace. One
socket for both families; the body is ``NAME CLIENT-IP``, so a test can tell which pod answered
and whether the client's address survived the path (``externalTrafficPolicy: Local``) or was
masqueraded to a node's (Cluster). It prints ``ready`` once it listens.
"""

from __future__ import annotations

import asyncio
import socket
import sys


async def main(name: str, port: int) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            peer = str(writer.get_extra_info("peername")[0]).removeprefix("::ffff:")
            body = f"{name} {peer}\n".encode()
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    server = await asyncio.start_server(answer, sock=sock, backlog=512)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
