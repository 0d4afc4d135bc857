"""Benchmark: API writes per second that one kubernetes-asyncio client gets from the emulator.

The emulator runs in its own process (`python -m ccm.emulator`), as the playground runs it, so
client and server each have a core. One ApiClient (one aiohttp keep-alive connection pool) does
every request. Workloads: create ConfigMaps, strategic-merge-patch a Service's status, replace
a Lease (a leader's renew); each run one-at-a-time (latency-bound) and with N requests in
flight (throughput-bound). Prints JSON, then a table.

    .venv/bin/python bench/emulator_writes.py [--writes 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

Write = Callable[[int], Awaitable[Any]]


async def setup_workloads(api: client.ApiClient) -> dict[str, Write]:
    core = client.CoreV1Api(api)
    leases = client.CoordinationV1Api(api)
    await core.create_namespaced_service("default", {
        "metadata": {"name": "bench"},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80}]}})
    await leases.create_namespaced_lease("kube-system", {
        "metadata": {"name": "bench"}, "spec": {"holderIdentity": "bench",
                                                "leaseDurationSeconds": 15}})

    async def create(i: int) -> Any:
        return await core.create_namespaced_config_map(
            "default", {"metadata": {"name": f"bench-{time.monotonic_ns()}-{i}"},
                        "data": {"i": str(i)}})

    async def patch_status(i: int) -> Any:
        return await core.patch_namespaced_service_status("bench", "default", {"status": {
            "loadBalancer": {"ingress": [{"ip": f"192.0.2.{i % 250 + 1}"}]}}})

    async def renew_lease(i: int) -> Any:
        # unconditional replace (no resourceVersion) so concurrent renewals do not conflict
        body = {"metadata": {"name": "bench"}, "spec": {
            "holderIdentity": "bench", "leaseDurationSeconds": 15,
            "renewTime": f"2026-01-01T00:00:{i % 60:02d}.{i % 1_000_000:06d}Z"}}
        return await leases.replace_namespaced_lease("bench", "kube-system", body)

    return {"create-configmap": create, "patch-service-status": patch_status,
            "replace-lease": renew_lease}


async def run(write: Write, total: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            began = time.perf_counter()
            await write(i)
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "writes": total,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "writes_per_s": round(total / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


async def bench(url_kubeconfig: Path, writes: int, concurrency: int) -> list[dict[str, Any]]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(url_kubeconfig),
                                  client_configuration=configuration)
    results = []
    async with client.ApiClient(configuration) as api:
        workloads = await setup_workloads(api)
        for name, write in workloads.items():
            await run(write, 100, 1)  # warm up connections and caches
            for level in (1, concurrency):
                results.append({"workload": name, **await run(write, writes, level)})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        server = subprocess.Popen(
            [sys.executable, "-m", "ccm.emulator", "--kubeconfig", str(kubeconfig)],
            stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            server.stdout.readline()  # the URL: the kubeconfig is written by then
            results = asyncio.run(bench(kubeconfig, args.writes, args.concurrency))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    print(json.dumps({"benchmark": "emulator_writes", "results": results}, indent=2))
    header = f"{'workload':<22} {'conc':>4} {'writes':>7} {'sec':>7} {'writes/s':>9} " \
             f"{'p50 ms':>7} {'p99 ms':>7}"
    print(header)
    for r in results:
        print(f"{r['workload']:<22} {r['concurrency']:>4} {r['writes']:>7} {r['seconds']:>7} "
              f"{r['writes_per_s']:>9} {r['p50_ms']:>7} {r['p99_ms']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
