"""Speaker API cost does not grow with Services: only node Leases are written periodically.

Realistic process layout: a real kube-apiserver (tests/realkube.py), the controller and three
speakers as separate `vipam` processes on their own ServiceAccounts' tokens (as on a cluster).
Writes are counted by the server itself (apiserver_request_total), whoever sent them.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp

from ccm.contract import names
from ccm.kube.client import KubeClient
from tests.integration.controller.harness import (
    ROOT,
    create_pool,
    create_service,
    ingress_ips,
    wait_for,
)
from tests.integration.speaker.harness import l2_everywhere, make_nodes
from tests.realkube import RealApi

NODES = ["node-a", "node-b", "node-c"]
RENEW_INTERVAL = 0.5


class Proc:
    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    def health_url(self) -> str | None:
        match = re.search(r"health on (http://\S+)", self.log.read_text(errors="replace"))
        return match.group(1) if match else None

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def spawn(tmp_path: Path, name: str, *args: str) -> Proc:
    log = tmp_path / f"{name}.log"
    handle = log.open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccm", *args, cwd=ROOT, stdout=handle, stderr=handle,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    handle.close()
    return Proc(proc, log)


async def status_of(http: aiohttp.ClientSession, proc: Proc) -> dict[str, Any] | None:
    url = proc.health_url()
    if url is None:
        return None
    try:
        async with http.get(f"{url}/status") as response:
            result: dict[str, Any] = await response.json()
            return result
    except aiohttp.ClientError:
        return None


def annotated(emu: RealApi) -> int:
    return sum(
        1 for svc in emu.list_objects("services")
        if (svc["metadata"].get("annotations") or {}).get(names.ANN_ANNOUNCING_NODE)
    )


async def slowly(probe: Any, timeout: float, what: str) -> None:
    """Poll a listing of 1000 Services twice a second, not fifty times: each one costs the
    server (and this 2-core machine) what the speakers are being measured against."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(probe):
        assert loop.time() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.5)


async def writes_per_second(emu: RealApi, seconds: float) -> float:
    emu.reset_stats()
    await asyncio.sleep(seconds)
    return emu.stats.writes / seconds


async def test_speaker_writes_per_second_with_10_and_1000_services(
    emu: RealApi, kube: KubeClient, kubeconfig: Path, speaker_kubeconfig: Path, tmp_path: Path
) -> None:
    await make_nodes(kube, NODES)
    await create_pool(kube, "v6", addresses=["2001:db8:7::/64"])
    await l2_everywhere(kube)
    common = ["--namespace", "kube-system", "--health-port", "0", "--log-format", "text"]
    as_controller = ["--kubeconfig", str(kubeconfig), *common]
    controller = await spawn(tmp_path, "controller", "controller", *as_controller)
    speakers = [
        await spawn(tmp_path, node, "speaker", "--node-name", node, "--announcer", "log",
                    "--no-bgp", "--renew-interval", str(RENEW_INTERVAL),
                    "--kubeconfig", str(speaker_kubeconfig), *common)
        for node in NODES
    ]
    processes = [controller, *speakers]
    try:
        async with aiohttp.ClientSession() as http:
            # every speaker sees all three live before the first Service: otherwise the first
            # to start owns everything for a moment and hands it over as the others join
            # (processes start seconds apart on a loaded machine), which is writes, not steady
            async def all_live() -> bool:
                statuses = [await status_of(http, s) for s in speakers]
                return all(st and st["live_nodes"] == sorted(NODES) for st in statuses)

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while not await all_live():
                assert loop.time() < deadline, "the speakers never all saw each other live"
                await asyncio.sleep(0.25)
            for i in range(10):
                await create_service(kube, f"s{i}", families=["IPv6"])
            await wait_for(lambda: annotated(emu) == 10, 30, "10 Services announced")
            await controller.stop()  # from here on only the speakers write
            few = await writes_per_second(emu, 4.0)
            assert emu.stats.count("patch", "services") == 0

            controller = await spawn(tmp_path, "controller2", "controller", *as_controller)
            processes.append(controller)
            sem = asyncio.Semaphore(32)

            async def make(i: int) -> None:
                async with sem:
                    await create_service(kube, f"more{i}", families=["IPv6"])

            await asyncio.gather(*(make(i) for i in range(990)))
            await slowly(
                lambda: sum(1 for s in emu.list_objects("services") if ingress_ips(s)) == 1000,
                180, "1000 allocated",
            )
            await slowly(lambda: annotated(emu) == 1000, 120, "1000 Services announced")
            await controller.stop()
            await asyncio.sleep(2.0)  # the last annotation writes and Events land
            many = await writes_per_second(emu, 4.0)
            statuses = [await status_of(http, s) for s in speakers]
        owned = [len(s["l2"]) for s in statuses if s]
        print(f"speaker API writes/s: {few:.2f} with 10 Services, {many:.2f} with 1000 "
              f"(addresses per node: {owned})")
        bound = len(NODES) * 2 / RENEW_INTERVAL  # a renewal is one get and one update
        assert emu.stats.count("update", "leases") <= len(NODES) * 4.0 / RENEW_INTERVAL * 1.2
        assert many <= bound, emu.stats
        assert many <= few * 1.25 + 0.5, emu.stats
        assert sum(owned) == 1000 and all(count > 200 for count in owned)
    finally:
        for proc in processes:
            await proc.stop()
