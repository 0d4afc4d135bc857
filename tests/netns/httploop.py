"""A client that keeps asking: one new HTTP connection to each URL target every PERIOD seconds.

Usage: ``python -m tests.netns.httploop PERIOD TIMEOUT HOST:PORT [HOST:PORT ...]`` inside the
client's namespace (IPv6 hosts in brackets). Requests overlap, so a stalled one (a SYN lost to
a dead node is retried only after a second) never delays the next. One JSON line per finished
request: ``{"target": HOST, "sent": seconds since start, "took": seconds, "ok": bool,
"answer": "POD CLIENT-IP" or the error}``. Prints ``ready`` first; stops sending when stdin
closes, then waits for the requests in flight.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def get(host: str, port: int, timeout: float) -> str:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200"):
        raise ConnectionError(head[:40].decode(errors="replace"))
    return body.decode().strip()


async def one(target: str, timeout: float, started: float) -> None:
    host, _, port = target.rpartition(":")
    sent = time.monotonic()
    try:
        answer, ok = await get(host.strip("[]"), int(port), timeout), True
    except (OSError, TimeoutError, ConnectionError) as exc:
        answer, ok = f"{type(exc).__name__}: {exc}", False
    print(json.dumps({"target": host.strip("[]"), "sent": round(sent - started, 4),
                      "took": round(time.monotonic() - sent, 4), "ok": ok, "answer": answer}),
          flush=True)


async def main(period: float, timeout: float, targets: list[str]) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    closed = asyncio.ensure_future(stdin.read())
    print("ready", flush=True)
    started = time.monotonic()
    pending: set[asyncio.Task[None]] = set()
    tick = 0
    while not closed.done():
        for target in targets:
            task = asyncio.ensure_future(one(target, timeout, started))
            pending.add(task)
            task.add_done_callback(pending.discard)
        tick += 1
        delay = started + tick * period - time.monotonic()
        await asyncio.wait([closed], timeout=max(0.0, delay))
    if pending:
        await asyncio.wait(pending)


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]))
