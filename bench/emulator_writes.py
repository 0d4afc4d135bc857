"""Benchmark: API writes per second that one kubernetes-asyncio client gets from the emulator.

The emulator runs in its own process (`python -m devkit.emulator`), as the playground runs it, so
client and server each have a core. One ApiClient (one aiohttp keep-alive connection pool) does
every request. Workloads: create ConfigMaps, strategic-merge-patch a Service's status, replace
a Lease (a leader's renew); each run one-at-a-time (latency-bound) and with N requests in
flight (throughput-bound). Prints JSON, then a table.

Besides wall-clock rates and latencies it reports CPU microseconds per write spent by the
client process and by the server process, which shows which side limits the rate.

Two client set-ups are measured. `default` is kubernetes-asyncio as it comes: its aiohttp
session has trust_env=True, so aiohttp makes two thread-pool hops per request (netrc lookup,
proxy environment lookup). `no-trust-env` swaps in an equivalent session with trust_env=False
(same keep-alive connector settings); nothing else changes.

    .venv/bin/python bench/emulator_writes.py [--writes 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config

Write = Callable[[int], Awaitable[Any]]


async def setup_workloads(api: client.ApiClient, tag: str) -> dict[str, Write]:
    core = client.CoreV1Api(api)
    leases = client.CoordinationV1Api(api)
    await core.create_namespaced_service("default", {
        "metadata": {"name": tag},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80}]}})
    await leases.create_namespaced_lease("kube-system", {
        "metadata": {"name": tag}, "spec": {"holderIdentity": "bench",
                                                "leaseDurationSeconds": 15}})

    serial = itertools.count()

    async def create(i: int) -> Any:
        return await core.create_namespaced_config_map(
            "default", {"metadata": {"name": f"{tag}-{next(serial)}"},
                        "data": {"i": str(i)}})

    async def patch_status(i: int) -> Any:
        return await core.patch_namespaced_service_status(tag, "default", {"status": {
            "loadBalancer": {"ingress": [{"ip": f"192.0.2.{i % 250 + 1}"}]}}})

    async def renew_lease(i: int) -> Any:
        # unconditional replace (no resourceVersion) so concurrent renewals do not conflict
        body = {"metadata": {"name": tag}, "spec": {
            "holderIdentity": "bench", "leaseDurationSeconds": 15,
            "renewTime": f"2026-01-01T00:00:{i % 60:02d}.{i % 1_000_000:06d}Z"}}
        return await leases.replace_namespaced_lease(tag, "kube-system", body)

    return {"create-configmap": create, "patch-service-status": patch_status,
            "replace-lease": renew_lease}


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process, from /proc (Linux), to show which side is the bottleneck."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(write: Write, total: int, concurrency: int, server_pid: int) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            began = time.perf_counter()
            await write(i)
            latencies.append(time.perf_counter() - began)

    began, client_cpu, server_cpu = time.perf_counter(), time.process_time(), cpu_seconds(
        server_pid)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    client_cpu, server_cpu = time.process_time() - client_cpu, cpu_seconds(server_pid) - server_cpu
    latencies.sort()
    return {
        "writes": total,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "writes_per_s": round(total / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "client_cpu_us_per_write": round(client_cpu / total * 1e6),
        "server_cpu_us_per_write": round(server_cpu / total * 1e6),
    }


async def without_trust_env(api: client.ApiClient, configuration: client.Configuration) -> None:
    """Replace the client's session with one that skips aiohttp's per-request env lookups."""
    old = api.rest_client.pool_manager
    api.rest_client.pool_manager = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=configuration.connection_pool_maxsize),
        trust_env=False, read_bufsize=2**21)
    await old.close()


async def bench(kubeconfig: Path, writes: int, concurrency: int, setups: list[str],
                server_pid: int) -> list[dict[str, Any]]:
    results = []
    for setup in setups:
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig),
                                      client_configuration=configuration)
        async with client.ApiClient(configuration) as api:
            if setup == "no-trust-env":
                await without_trust_env(api, configuration)
            workloads = await setup_workloads(api, setup)
            for name, write in workloads.items():
                await run(write, 100, 1, server_pid)  # warm up connections and caches
                for level in (1, concurrency):
                    results.append({"client": setup, "workload": name,
                                    **await run(write, writes, level, server_pid)})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--client", choices=["default", "no-trust-env", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        server = subprocess.Popen(
            [sys.executable, "-m", "devkit.emulator", "--kubeconfig", str(kubeconfig)],
            stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            server.stdout.readline()  # the URL: the kubeconfig is written by then
            setups = ["default", "no-trust-env"] if args.client == "both" else [args.client]
            results = asyncio.run(bench(kubeconfig, args.writes, args.concurrency, setups,
                                        server.pid))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    print(json.dumps({"benchmark": "emulator_writes", "results": results}, indent=2))
    header = (f"{'client':<13} {'workload':<22} {'conc':>4} {'writes':>7} {'sec':>7} "
              f"{'writes/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'cli us':>7} {'srv us':>7}")
    print(header)
    for r in results:
        print(f"{r['client']:<13} {r['workload']:<22} {r['concurrency']:>4} {r['writes']:>7} "
              f"{r['seconds']:>7} {r['writes_per_s']:>9} {r['p50_ms']:>7} {r['p99_ms']:>7} "
              f"{r['client_cpu_us_per_write']:>7} {r['server_cpu_us_per_write']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
