"""Benchmark: one speaker among 100 nodes with 10,000 Services, on a REAL kube-apiserver.

The cluster: N Nodes; the other N-1 speakers are simulated by their Lease objects
(`vipam-speaker-<node>`), renewed by this script every second, which is all a live speaker
shows the others; S LoadBalancer Services whose status already shows an address from one pool
(written as the admin, as the controller would have); an L2Advertisement for every node. One real
`vipam speaker` process (announcer `log`, on the speaker ServiceAccount's token) joins.

Reported:
* plan time: `make_plan` over the server's objects for one node (what the speaker recomputes on
  every change), best of 5, for S Services and N live nodes;
* the speaker's start: time until it has written the announcing-node annotation of every
  address it owns (about S/N Services: writes proportional to its share, once);
* steady state: the speaker's write requests per second over a quiet window, counted at the
  server (apiserver_request_total) minus this script's own Lease renewals, which must be its
  own renewals alone (2/s at the shipped 0.5 s period) whatever S is.

    .venv/bin/python -m bench.speaker_scale [--services 1000 10000] [--nodes 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ccm.kube.client import KubeClient
from ccm.kube.resources import IPPOOLS, L2ADVERTISEMENTS, LEASES, NAMESPACES, NODES, SERVICES
from ccm.speaker.plan import ClusterView, make_plan
from devkit.apiserver import ApiServer, count_delta

NAMESPACE = "bench"
POOL = "2001:db8:c::/112"
ANN_ALLOCATED_FROM = "vipam.io/allocated-from"
ANN_ANNOUNCING_NODE = "vipam.io/announcing-node"


def now_micro() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_name(i: int) -> str:
    return f"n{i:03d}"


async def limited(jobs: Iterator[Any], concurrency: int = 32) -> None:
    async def worker() -> None:
        for job in jobs:
            await job

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def allocated_service(admin: KubeClient, i: int) -> None:
    address = str(ipaddress.ip_network(POOL)[i + 1])
    body = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"s{i}", "namespace": NAMESPACE,
                     "annotations": {ANN_ALLOCATED_FROM: "big"}},
        "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv6"], "ipFamilyPolicy": "SingleStack",
                 "allocateLoadBalancerNodePorts": False,
                 "ports": [{"port": 80, "protocol": "TCP"}]},
    }
    created = await admin.create(SERVICES, NAMESPACE, body)
    created["status"] = {"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}}
    await admin.replace(SERVICES, NAMESPACE, f"s{i}", created, subresource="status")


class LeaseSimulator:
    """The N-1 other speakers: each renews its Lease every `period` seconds."""

    def __init__(self, admin: KubeClient, nodes: list[str], period: float = 1.0) -> None:
        self.admin, self.nodes, self.period = admin, nodes, period
        self.renewals = 0
        self.task: asyncio.Task[None] | None = None

    async def create(self) -> None:
        async def one(node: str) -> None:
            await self.admin.create(LEASES, "kube-system", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": f"vipam-speaker-{node}", "namespace": "kube-system"},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": 2,
                         "renewTime": now_micro(), "acquireTime": now_micro()}})
        await limited(one(n) for n in self.nodes)

    async def _renew_all(self) -> None:
        async def one(node: str) -> None:
            name = f"vipam-speaker-{node}"
            await self.admin.patch(LEASES, "kube-system", name,
                                   {"spec": {"renewTime": now_micro()}})
            self.renewals += 1
        await limited(one(n) for n in self.nodes)

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            await self._renew_all()
            await asyncio.sleep(max(0.0, self.period - (time.monotonic() - started)))

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@contextlib.asynccontextmanager
async def cluster(workdir: Path) -> AsyncIterator[tuple[ApiServer, KubeClient, Path]]:
    server = ApiServer(workdir / "api")
    await asyncio.to_thread(server.start)
    try:
        await asyncio.to_thread(server.kubectl, "apply", "-k", str(ROOT / "config"))
        await asyncio.to_thread(server.kubectl, "wait", "--for", "condition=Established", "crd",
                                "--all", "--timeout", "60s")
        token = await asyncio.to_thread(server.create_token, "vipam-speaker", "kube-system")
        admin = await KubeClient.connect(str(server.kubeconfig(workdir / "admin")), qps=0)
        try:
            yield server, admin, server.kubeconfig(workdir / "speaker", token, "kube-system")
        finally:
            await admin.close()
    finally:
        await asyncio.to_thread(server.stop)


async def plan_seconds(admin: KubeClient, node: str, live: frozenset[str]) -> float:
    async def keyed(res: Any, namespace: str | None = None) -> dict[str, Any]:
        items = (await admin.list_all(res, namespace))["items"]
        return {
            (f"{i['metadata']['namespace']}/{i['metadata']['name']}"
             if i["metadata"].get("namespace") else i["metadata"]["name"]): i
            for i in items
        }

    view = ClusterView(
        services=await keyed(SERVICES, NAMESPACE), pools=await keyed(IPPOOLS),
        l2_advertisements=await keyed(L2ADVERTISEMENTS), bgp_advertisements={}, peers={},
        nodes=await keyed(NODES), endpoint_slices={},
    )
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        make_plan(view, node, live)
        best = min(best, time.perf_counter() - started)
    return best


async def measure(services: int, nodes: int, window: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with cluster(work) as (server, admin, speaker_kubeconfig):
            names = [node_name(i) for i in range(nodes)]
            await admin.create(NAMESPACES, None, {"metadata": {"name": NAMESPACE}})
            await limited(admin.create(NODES, None, {"metadata": {
                "name": n, "labels": {"kubernetes.io/hostname": n}}}) for n in names)
            await admin.create(IPPOOLS, None, {
                "apiVersion": "vipam.io/v1alpha1", "kind": "IPPool",
                "metadata": {"name": "big"}, "spec": {"addresses": [POOL]}})
            await admin.create(L2ADVERTISEMENTS, None, {
                "apiVersion": "vipam.io/v1alpha1", "kind": "L2Advertisement",
                "metadata": {"name": "all"}, "spec": {}})
            await limited(allocated_service(admin, i) for i in range(services))
            others = LeaseSimulator(admin, names[1:])
            await others.create()
            others.start()
            plan_s = await plan_seconds(admin, names[0], frozenset(names))

            log = (work / "speaker.log").open("w")
            proc = subprocess.Popen(
                [sys.executable, "-m", "ccm", "speaker", "--node-name", names[0],
                 "--kubeconfig", str(speaker_kubeconfig), "--namespace", "kube-system",
                 "--announcer", "log", "--no-bgp", "--health-port", "0",
                 "--health-host", "127.0.0.1", "--log-level", "WARNING"],
                cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
            try:
                started = time.perf_counter()
                owned = 0
                stable_since = time.monotonic()
                # started: every address it owns carries its annotation, and nothing changed
                # for two seconds
                while time.monotonic() - stable_since < 2.0:
                    await asyncio.sleep(0.25)
                    listing = await admin.list_all(SERVICES, NAMESPACE)
                    mine = sum(1 for s in listing["items"]
                               if (s["metadata"].get("annotations") or {}).get(
                                   ANN_ANNOUNCING_NODE) == names[0])
                    if mine != owned or mine == 0:
                        owned, stable_since = mine, time.monotonic()
                    if time.perf_counter() - started > 300:
                        raise RuntimeError("speaker never settled")
                settled_s = time.perf_counter() - started - 2.0
                before = await asyncio.to_thread(server.request_counts)
                renewals_before = others.renewals
                await asyncio.sleep(window)
                after = await asyncio.to_thread(server.request_counts)
                bench_renewals = others.renewals - renewals_before
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
                log.close()
                await others.stop()
            writes = count_delta(before, after)
            lease_writes = sum(v for k, v in writes.items() if k[2] == "leases")
            other_writes = {"/".join(filter(None, k)): v for k, v in writes.items()
                            if k[2] != "leases"}
            speaker_writes = lease_writes - bench_renewals + sum(other_writes.values())
            return {
                "services": services, "nodes": nodes,
                "plan_ms": round(plan_s * 1000, 1),
                "owned_addresses": owned, "settled_s": round(settled_s, 2),
                "steady_window_s": window,
                "speaker_writes_per_s": round(speaker_writes / window, 2),
                "lease_writes_at_server": lease_writes, "simulated_renewals": bench_renewals,
                "speaker_non_lease_writes": other_writes,
            }


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--services", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    results = [await measure(s, args.nodes, args.window) for s in args.services]
    print(json.dumps(results, indent=2))
    print()
    print(f"{'services':>9} {'nodes':>6} {'plan ms':>8} {'owned':>6} {'settled s':>10} "
          f"{'writes/s':>9}")
    for r in results:
        print(f"{r['services']:>9} {r['nodes']:>6} {r['plan_ms']:>8} {r['owned_addresses']:>6} "
              f"{r['settled_s']:>10} {r['speaker_writes_per_s']:>9}")


if __name__ == "__main__":
    asyncio.run(main())
