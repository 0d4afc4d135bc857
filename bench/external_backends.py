"""External IPAM benchmark: what one backend call costs, alone and under concurrency.

Run: ``.venv/bin/python -m bench.external_backends`` (``--count N``, ``--concurrency C``).
Prints one JSON document, then a table.

Against the in-process reference server (provider http) and, when scripts/netbox has a NetBox
running (.netbox/env), against that real NetBox in a VRF and /24 of its own that is deleted
afterwards. For each it times N sequential allocations (new keys), N repeated allocations of
existing keys (the idempotent path: a lookup, no write), one list of the cluster, N releases, and
N allocations issued C at a time (NetBox serialises available-ips with one advisory lock, so this
shows whether concurrency buys anything).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devkit.reference_ipam import ReferenceServer
from pools.external.base import AllocationKey, IPAMBackend
from pools.external.http import HTTPBackend
from pools.external.netbox import NetBoxBackend
from pools.external.transport import JsonClient

REPO = Path(__file__).resolve().parent.parent


async def _timed(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    seconds = []
    for call in calls:
        began = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - began)
    return seconds


def _summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2),
        "per_s": round(len(ordered) / sum(ordered), 1) if sum(ordered) else 0.0,
    }


async def _measure(backend: IPAMBackend, count: int, concurrency: int) -> dict[str, Any]:
    cluster = f"bench-{uuid.uuid4().hex[:8]}"
    keys = [AllocationKey(cluster, f"uid-{i}", "IPv4") for i in range(count)]
    results: dict[str, Any] = {}
    ips: dict[AllocationKey, str] = {}

    async def allocate(k: AllocationKey) -> None:
        ips[k] = await backend.allocate(k, service=f"bench/{k.service_uid}")

    results["allocate_new"] = _summary(await _timed([lambda k=k: allocate(k) for k in keys]))
    results["allocate_existing"] = _summary(
        await _timed([lambda k=k: allocate(k) for k in keys]))
    results["list"] = _summary(await _timed([lambda: backend.list(cluster)]))
    results["release"] = _summary(
        await _timed([lambda k=k: backend.release(k, ips[k]) for k in keys]))

    more = [AllocationKey(cluster, f"par-{i}", "IPv4") for i in range(count)]
    limit = asyncio.Semaphore(concurrency)

    async def bounded(k: AllocationKey) -> None:
        async with limit:
            await allocate(k)

    began = time.perf_counter()
    await asyncio.gather(*(bounded(k) for k in more))
    wall = time.perf_counter() - began
    assert len({ips[k] for k in more}) == count, "concurrent allocations duplicated"
    results[f"allocate_new_x{concurrency}"] = {"n": count, "wall_s": round(wall, 3),
                                               "per_s": round(count / wall, 1)}
    for k in more:
        await backend.release(k, ips[k])
    return results


async def _reference(count: int, concurrency: int) -> dict[str, Any]:
    server = ReferenceServer({"bench": ["198.51.100.0/24"]}, token="bench")
    await server.start()
    backend = HTTPBackend(server.url, "bench")
    try:
        return await _measure(backend, count, concurrency)
    finally:
        await backend.close()
        await server.stop()


async def _netbox(count: int, concurrency: int) -> dict[str, Any] | None:
    env_file = REPO / ".netbox" / "env"
    if not env_file.exists():
        return None
    env = dict(line.split("=", 1) for line in env_file.read_text().split() if "=" in line)
    admin = JsonClient(env["NETBOX_URL"], authorization=f"Token {env['NETBOX_TOKEN']}",
                       timeout=30)
    try:
        await admin.request("GET", "/api/status/")
    except Exception:
        await admin.close()
        return None
    _, vrf = await admin.request("POST", "/api/ipam/vrfs/",
                                 body={"name": f"vipam-bench-{uuid.uuid4().hex[:8]}"})
    _, prefix = await admin.request("POST", "/api/ipam/prefixes/",
                                    body={"prefix": "203.0.113.0/24", "vrf": vrf["id"]})
    backend = NetBoxBackend(env["NETBOX_URL"], env["NETBOX_TOKEN"], timeout=30,
                            options={"prefixId": prefix["id"]})
    try:
        return await _measure(backend, count, concurrency)
    finally:
        await backend.close()
        await admin.request("DELETE", f"/api/ipam/prefixes/{prefix['id']}/")
        await admin.request("DELETE", f"/api/ipam/vrfs/{vrf['id']}/")
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    report: dict[str, Any] = {"count": args.count, "concurrency": args.concurrency,
                              "backends": {}}
    report["backends"]["http (reference server)"] = asyncio.run(
        _reference(args.count, args.concurrency))
    netbox = asyncio.run(_netbox(args.count, args.concurrency))
    if netbox is not None:
        report["backends"]["netbox (real, scripts/netbox)"] = netbox
    print(json.dumps(report, indent=2))
    print()
    print(f"{'backend':32} {'operation':22} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'ops/s':>8}")
    for name, ops in report["backends"].items():
        for op, s in ops.items():
            print(f"{name:32} {op:22} {s['n']:>5} {s.get('p50_ms', ''):>9} "
                  f"{s.get('p95_ms', ''):>9} {s['per_s']:>8}")


if __name__ == "__main__":
    main()
