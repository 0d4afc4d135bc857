"""Speaker-side helper run inside a node namespace by the netns tests.

Reads one JSON request per line on stdin, runs it against the real ``L2Announcer`` /
``BGPSpeaker`` in this namespace, and answers one JSON line on stdout. EOF on stdin is a clean
shutdown (everything withdrawn); SIGKILL from the test is the unclean one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from typing import Any

from ccm.speaker.l2 import L2Announcer, interface_for


class Agent:
    def __init__(self) -> None:
        self.l2 = L2Announcer()
        self.bgp: Any = None

    async def handle(self, op: str, args: dict[str, Any]) -> Any:
        if op == "ping":
            return None
        if op == "l2_options":
            assert not self.l2.announced(), "configure before announcing"
            self.l2 = L2Announcer(**args)
            return None
        if op == "interface_for":
            return await interface_for(args["ip"], args.get("allowed"))
        if op == "refresh":
            await self.l2.refresh()
            return None
        if op == "announce":
            started = time.monotonic()
            await self.l2.announce(args["ip"], args["interface"])
            return {"seconds": time.monotonic() - started, "started": started,
                    "done": time.monotonic()}
        if op == "announce_many":  # for benchmarks: no per-address round trip to the test
            started = time.monotonic()
            for ip in args["ips"]:
                await self.l2.announce(ip, args["interface"])
            return {"seconds": time.monotonic() - started}
        if op == "withdraw":
            await self.l2.withdraw(args["ip"])
            return None
        if op == "wait_silent":  # True once nobody else answers for the address
            started = time.monotonic()
            silent = await self.l2.wait_silent(args["ip"], args["interface"],
                                               started + args.get("timeout", 3.0))
            return {"silent": silent, "seconds": time.monotonic() - started}
        if op == "hand_over":  # keep the address until another host claims it, then withdraw
            claimed = await self.l2.wait_claimed(args["ip"], args.get("timeout", 3.0))
            heard = time.monotonic()
            await self.l2.withdraw(args["ip"])
            return {"claimed": claimed, "heard": heard, "withdrawn": time.monotonic()}
        if op == "withdraw_during_refresh":  # a handover ending while lifetimes are renewed
            refreshing = asyncio.create_task(self.l2.refresh())
            await asyncio.sleep(0)  # the refresh has read what is announced, and goes on
            await self.l2.withdraw(args["ip"])
            await refreshing
            return None
        if op == "withdraw_all":
            await self.l2.withdraw_all()
            return None
        if op == "announced":
            return sorted(self.l2.announced())
        if op == "reclaim":
            return sorted(await self.l2.reclaim())
        if op.startswith("bgp_"):
            return await self.handle_bgp(op, args)
        raise ValueError(f"unknown op {op!r}")

    async def handle_bgp(self, op: str, args: dict[str, Any]) -> Any:
        from ccm.speaker.bgp import BGPSpeaker, Peer

        if op == "bgp_start":
            self.bgp = BGPSpeaker(**args.get("options", {}))
            await self.bgp.start([Peer(**peer) for peer in args["peers"]])
            return None
        if op == "bgp_announce":
            await self.bgp.announce(**args)
            return None
        if op == "bgp_withdraw":
            await self.bgp.withdraw(args["prefix"])
            return None
        if op == "bgp_announced":
            return sorted(self.bgp.announced())
        if op == "bgp_peer_states":
            return self.bgp.peer_states()
        if op == "bgp_pid":
            return self.bgp.pid
        if op == "bgp_stop":
            await self.bgp.stop()
            return None
        raise ValueError(f"unknown op {op!r}")

    async def close(self) -> None:
        await self.l2.withdraw_all()
        if self.bgp is not None:
            await self.bgp.stop()


async def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    agent = Agent()
    # SIGTERM is a clean shutdown, as for the real speaker: withdraw, stop ExaBGP, exit
    this = asyncio.current_task()
    assert this is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    # stdin through the event loop, not a reader thread: a thread blocked in readline would keep
    # the process alive after SIGTERM until the test closed the pipe
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        while True:
            line = (await reader.readline()).decode()
            if not line:
                break
            request = json.loads(line)
            op = request.pop("op")
            try:
                reply = {"ok": True, "result": await agent.handle(op, request)}
            except Exception as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    except asyncio.CancelledError:
        pass
    finally:
        await agent.close()


if __name__ == "__main__":
    asyncio.run(main())
