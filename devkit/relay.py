"""A byte relay from a TCP port to a Unix socket: `python -m devkit.relay LISTEN UNIX_PATH`.

The playground uses it to let a speaker inside a network namespace reach the API emulator in the
host namespace: TCP is bound to a namespace, a Unix socket path is not. It understands nothing
of what it carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def relay(host: str, port: int, unix_path: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(unix_path)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, host, port)
    print(f"relay {host}:{port} -> {unix_path}", flush=True)
    async with server:
        await server.serve_forever()


async def unix_to_tcp(unix_path: str, host: str, port: int) -> asyncio.Server:
    """The other half, run in the host namespace: a Unix socket that forwards to TCP."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_unix_server(handle, unix_path)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or ":" not in args[0]:
        print("usage: python -m devkit.relay HOST:PORT UNIX_PATH", file=sys.stderr)
        return 2
    host, port = args[0].rsplit(":", 1)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(relay(host, int(port), args[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
