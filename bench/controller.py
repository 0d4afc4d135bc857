"""Benchmark: the controller end to end, against the API emulator in its own process.

Services are IPv6 single-stack, from 2001:db8:b::/64 (documentation addresses only).

1. Burst: create N LoadBalancer Services at once; report the time until all show an address and
   the p50/p99 latency from each create to its status.loadBalancer.ingress being seen by a watch.
2. Floor: the same number of plain Service creates by a minimal client, alone; the ratio of the
   two says what allocation (three writes per Service: spec, status, Event) costs beyond the
   API's own write rate.
3. Restart: with R allocated Services, stop the controller, start a new one; time to ready
   (restore done) and the number of writes it makes (must be 0).

    .venv/bin/python bench/controller.py [--services 1000 5000] [--restart 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ccm.controller.manager import Controller
from ccm.controller.settings import ControllerSettings
from ccm.kube.client import ApiError, KubeClient
from ccm.kube.informer import Informer
from ccm.kube.resources import IPPOOLS, NAMESPACES, SERVICES

WRITE_VERBS = ("create", "update", "patch", "delete")


async def start_emulator(workdir: Path) -> tuple[asyncio.subprocess.Process, Path]:
    kubeconfig = workdir / "kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devkit.emulator", "--port", "0", "--kubeconfig", str(kubeconfig),
        "--crd", str(ROOT / "config" / "crd"), "--history-size", "200000",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT,
    )
    assert proc.stdout is not None
    await asyncio.wait_for(proc.stdout.readline(), 30)  # the URL: the server is up
    return proc, kubeconfig


def settings(kubeconfig: Path, identity: str) -> ControllerSettings:
    return ControllerSettings(
        kubeconfig=str(kubeconfig), namespace="kube-system", identity=identity, workers=16,
        qps=0, health_port=0, log_format="text", log_level="WARNING",
    )


def service(name: str, namespace: str, lb: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "LoadBalancer" if lb else "ClusterIP",
                 "ipFamilies": ["IPv6"], "ports": [{"port": 80, "protocol": "TCP"}]},
    }


async def create_all(kube: KubeClient, bodies: list[dict[str, Any]], sent: dict[str, float],
                     concurrency: int = 64) -> None:
    queue = iter(bodies)

    async def worker() -> None:
        for body in queue:
            meta = body["metadata"]
            sent[f"{meta['namespace']}/{meta['name']}"] = time.perf_counter()
            await kube.create(SERVICES, meta["namespace"], body)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def writes_of(controller: Controller) -> dict[str, int]:
    """Writes by resource, from the controller's own request metrics (Lease renewals left out)."""
    counts: dict[str, int] = {}
    for metric in controller.metrics.api_requests.collect():
        for sample in metric.samples:
            labels = sample.labels
            resource = labels.get("resource", "")
            if (sample.name.endswith("_total") and labels.get("verb") in WRITE_VERBS
                    and "leases" not in resource):
                counts[resource] = counts.get(resource, 0) + int(sample.value)
    return counts


async def burst(kube: KubeClient, kubeconfig: Path, n: int) -> dict[str, Any]:
    namespace = f"burst-{n}"
    await kube.create(NAMESPACES, None, {"metadata": {"name": namespace}})
    seen: dict[str, float] = {}

    def on_change(key: str, old: Any, new: Any) -> None:
        if new and key not in seen and (new.get("status") or {}).get("loadBalancer", {}).get(
                "ingress"):
            seen[key] = time.perf_counter()

    watcher = Informer(kube, SERVICES, on_change, namespace=namespace)
    watch_task = asyncio.create_task(watcher.run())
    await watcher.synced.wait()
    controller = Controller(settings(kubeconfig, f"bench-{n}"))
    await controller.start()
    while not controller.restored.is_set():
        await asyncio.sleep(0.01)
    sent: dict[str, float] = {}
    started = time.perf_counter()
    await create_all(kube, [service(f"s{i}", namespace) for i in range(n)], sent)
    while len(seen) < n:
        await asyncio.sleep(0.01)
    total = time.perf_counter() - started
    latencies = sorted(seen[k] - sent[k] for k in sent)
    requests = writes_of(controller)
    conflicts = sum(
        int(sample.value) for metric in controller.metrics.api_errors.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("code") == "409"
    )
    await controller.stop()
    watch_task.cancel()
    return {
        "services": n,
        "all_allocated_s": round(total, 3),
        "per_s": round(n / total, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "controller_writes": requests,
        "conflicts_409": conflicts,
    }


async def floor(kube: KubeClient, n: int) -> dict[str, Any]:
    namespace = f"floor-{n}"
    await kube.create(NAMESPACES, None, {"metadata": {"name": namespace}})
    sent: dict[str, float] = {}
    started = time.perf_counter()
    await create_all(kube, [service(f"s{i}", namespace, lb=False) for i in range(n)], sent)
    total = time.perf_counter() - started
    return {"services": n, "plain_creates_s": round(total, 3), "per_s": round(n / total, 1)}


async def restart(kube: KubeClient, kubeconfig: Path, n: int) -> dict[str, Any]:
    namespace = "restart"
    await kube.create(NAMESPACES, None, {"metadata": {"name": namespace}})
    first = Controller(settings(kubeconfig, "restart-1"))
    await first.start()
    await create_all(kube, [service(f"s{i}", namespace) for i in range(n)], {})
    while True:
        listing = await kube.list_all(SERVICES, namespace)
        done = sum(1 for s in listing["items"]
                   if (s.get("status") or {}).get("loadBalancer", {}).get("ingress"))
        if done == n:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(2 * first.settings.pool_status_interval)  # let pool status catch up
    await first.stop()
    second = Controller(settings(kubeconfig, "restart-2"))
    started = time.perf_counter()
    await second.start()
    synced = time.perf_counter() - started
    while not second.restored.is_set():
        await asyncio.sleep(0.005)
    ready = time.perf_counter() - started
    while second.queue.depth or second.queue._processing:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    writes = writes_of(second)
    await second.stop()
    return {"services": n, "time_to_ready_s": round(ready, 3), "caches_synced_s": round(synced, 3),
            "writes_after_restart": sum(writes.values()), "writes_by_resource": writes}


@contextlib.asynccontextmanager
async def fresh_api() -> AsyncIterator[tuple[KubeClient, Path]]:
    """An emulator process with the namespaces and one big IPv6 pool, and a client to it."""
    with tempfile.TemporaryDirectory() as tmp:
        emulator, kubeconfig = await start_emulator(Path(tmp))
        kube = await KubeClient.connect(str(kubeconfig), qps=0)
        try:
            for ns in ("default", "kube-system"):
                with contextlib.suppress(ApiError):
                    await kube.create(NAMESPACES, None, {"metadata": {"name": ns}})
            await kube.create(IPPOOLS, None, {
                "apiVersion": "vipam.io/v1alpha1", "kind": "IPPool", "metadata": {"name": "big"},
                "spec": {"addresses": ["2001:db8:b::/64"]}})
            yield kube, kubeconfig
        finally:
            await kube.close()
            emulator.terminate()
            await emulator.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--restart", type=int, default=10000)
    args = parser.parse_args()
    results: dict[str, Any] = {"burst": [], "floor": []}
    # the restart phase gets an API of its own, holding exactly the Services it measures
    async with fresh_api() as (kube, kubeconfig):
        for n in args.services:
            results["burst"].append(await burst(kube, kubeconfig, n))
            results["floor"].append(await floor(kube, n))
    for b, f in zip(results["burst"], results["floor"], strict=True):
        b["ratio_to_plain_writes"] = round(b["all_allocated_s"] / f["plain_creates_s"], 2)
    if args.restart:
        async with fresh_api() as (kube, kubeconfig):
            results["restart"] = await restart(kube, kubeconfig, args.restart)
    print(json.dumps(results, indent=2))
    print()
    print(f"{'services':>9} {'all allocated':>14} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'plain creates':>14} {'ratio':>6}")
    for b, f in zip(results["burst"], results["floor"], strict=True):
        print(f"{b['services']:>9} {b['all_allocated_s']:>13}s {b['per_s']:>8} {b['p50_ms']:>8} "
              f"{b['p99_ms']:>8} {f['plain_creates_s']:>13}s {b['ratio_to_plain_writes']:>6}")
    if "restart" in results:
        r = results["restart"]
        print(f"restart with {r['services']} allocated Services: caches synced in "
              f"{r['caches_synced_s']}s, ready in {r['time_to_ready_s']}s, "
              f"{r['writes_after_restart']} writes")


if __name__ == "__main__":
    asyncio.run(main())
