"""Benchmark: one speaker among N nodes with S Services, on a REAL kube-apiserver.

The cluster: N Nodes; the other N-1 speakers are simulated by their Lease objects
(`vipam-speaker-<node>`), which is all a live speaker shows the others. Like real speakers they
renew once per renew period, each at its own moment (spread evenly over the period, not all at
once), all through one client and its connection pool: 99 speakers at a 10 s period are ~10
PATCH/s. S LoadBalancer Services already show an address from one pool (written as the admin, as
the controller would have); one L2Advertisement selects every node. One real `vipam speaker`
process (announcer `log`, the speaker ServiceAccount's token, the same renew period) joins.

For each S, one server; the node counts run on it in ascending order, each with a node under
test that has not run before (its Services carry no annotation of its own yet).

Reported per (S, N):
* plan CPU in this process: `make_plan` over the server's objects for the node under test,
  best of 5 (thread CPU time);
* plan CPU in the speaker under test: its `vipam_speaker_plan_cpu_seconds` (sum/count) over
  the plans that three Node label changes trigger after the quiet window (each a full plan
  with every node live; none may write), and how many plans it made in the quiet window
  (renewals of the other speakers that change nobody's liveness must not trigger any);
* the cost of one Service change: after the Node label changes, Services are created,
  relabelled and deleted one at a time, each left to settle before the next; the speaker's
  `vipam_speaker_plan_cpu_seconds{kind="incremental"}` sum and count over them (per plan and
  per change: a create is two events and, when this node owns the address, its own
  annotation write is one more), and its writes (the annotations and Events of the Services it
  owns); the same in this process: `Planner.update` after one Service key changed, best of 5,
  and `Planner`'s full rebuild (what a global change costs the speaker), best of 5;
* another speaker leaving and rejoining: three simulated speakers release their Lease (a clean
  stop) and later renew again, one at a time, each left to settle; the speaker's
  `vipam_speaker_plan_cpu_seconds{kind="live"}` per plan (only the addresses whose owner can
  change are elected again, no Service read), the full plans (none expected) and its writes
  (the annotations of the addresses that moved to or from it); in this process,
  `Planner.update` with one node fewer or more, best of 6;
* the speaker's start: seconds from its first annotation (it writes none before it is settled,
  a lease duration after its first renewal) until it has written the announcing-node
  annotation of every address it owns (about S/N Services: writes proportional to its share,
  once), and its writes until they stop (the NodeAssigned Events drain behind the
  annotations at the Event recorder's rate);
* steady state: the speaker's write requests per second over a quiet window, from the server's
  audit log (only the speaker's ServiceAccount), by verb and resource: its own Lease renewals
  alone, whatever S and N are.

    KUBEBUILDER_ASSETS=.k8s-bin .venv/bin/python -m bench.speaker_scale \
        [--services 1000 10000] [--nodes 20 100] [--renew-interval 10] [--window 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import ipaddress
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ccm.kube.client import KubeClient
from ccm.kube.resources import IPPOOLS, L2ADVERTISEMENTS, LEASES, NAMESPACES, NODES, SERVICES
from ccm.speaker.plan import ClusterView, make_plan
from ccm.speaker.planner import Planner
from devkit.apiserver import ApiServer

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
    """The other speakers: each renews its Lease once per `period`, at its own offset in the
    period (as independently started speakers do), over one client's connection pool; the
    renewals due at one moment go out together, at most `concurrency` in flight."""

    def __init__(self, admin: KubeClient, period: float, concurrency: int = 8) -> None:
        self.admin, self.period, self.concurrency = admin, period, concurrency
        self.nodes: list[str] = []
        self.away: set[str] = set()  # stopped cleanly (Lease released), not renewing
        self.renewals = 0
        self.late = 0  # renewals that started more than a tenth of the period after their slot
        self.task: asyncio.Task[None] | None = None

    async def create(self, nodes: list[str]) -> None:
        """Every possible speaker's Lease, released (holder empty: not live until renewed)."""
        async def one(node: str) -> None:
            await self.admin.create(LEASES, "kube-system", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": f"vipam-speaker-{node}", "namespace": "kube-system"},
                "spec": {"holderIdentity": "", "leaseDurationSeconds": round(3 * self.period),
                         "renewTime": now_micro(), "acquireTime": now_micro()}})
        await limited(one(n) for n in nodes)

    async def leave(self, node: str) -> None:
        """``node``'s speaker stops cleanly: it releases its Lease and renews no more."""
        self.away.add(node)
        await self.admin.patch(LEASES, "kube-system", f"vipam-speaker-{node}",
                               {"spec": {"holderIdentity": "", "renewTime": now_micro()}})

    async def rejoin(self, node: str) -> None:
        self.away.discard(node)
        await self._renew(node)

    async def _renew(self, node: str) -> None:
        if node in self.away:
            return
        await self.admin.patch(LEASES, "kube-system", f"vipam-speaker-{node}",
                               {"spec": {"holderIdentity": node, "renewTime": now_micro()}})
        self.renewals += 1

    async def _run(self, nodes: list[str]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        slot = self.period / max(1, len(nodes))
        limit = asyncio.Semaphore(self.concurrency)
        pending: set[asyncio.Task[None]] = set()

        async def bounded(node: str) -> None:
            async with limit:
                await self._renew(node)

        for due_index in itertools.count():
            due = start + due_index * slot
            await asyncio.sleep(max(0.0, due - loop.time()))
            if loop.time() - due > self.period / 10:
                self.late += 1
            task = asyncio.create_task(bounded(nodes[due_index % len(nodes)]))
            pending.add(task)
            task.add_done_callback(pending.discard)

    async def start(self, nodes: list[str]) -> None:
        """Renew every one of `nodes` once now (they are live from here on), then keep going."""
        self.nodes = nodes
        await limited((self._renew(n) for n in nodes), self.concurrency)
        self.task = asyncio.create_task(self._run(nodes))

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None


@contextlib.asynccontextmanager
async def cluster(workdir: Path) -> AsyncIterator[tuple[ApiServer, KubeClient, Path]]:
    server = ApiServer(workdir / "api", audit=True)
    server.start()  # on the main thread, so etcd and the server die with this process
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


async def cluster_view(admin: KubeClient) -> ClusterView:
    async def keyed(res: Any, namespace: str | None = None) -> dict[str, Any]:
        items = (await admin.list_all(res, namespace))["items"]
        return {
            (f"{i['metadata']['namespace']}/{i['metadata']['name']}"
             if i["metadata"].get("namespace") else i["metadata"]["name"]): i
            for i in items
        }

    return ClusterView(
        services=await keyed(SERVICES, NAMESPACE), pools=await keyed(IPPOOLS),
        l2_advertisements=await keyed(L2ADVERTISEMENTS), bgp_advertisements={}, peers={},
        nodes=await keyed(NODES), endpoint_slices={},
    )


def plan_cpu_seconds(view: ClusterView, node: str, live: frozenset[str]) -> tuple[float, int]:
    """Best of 5 (thread CPU seconds), and how many addresses the node owns."""
    best = float("inf")
    owned = 0
    for _ in range(5):
        started = time.thread_time()
        plan = make_plan(view, node, live)
        best = min(best, time.thread_time() - started)
        owned = sum(duty.mine for duty in plan.l2.values())
    return best, owned


def planner_cpu_seconds(view: ClusterView, node: str, live: frozenset[str],
                        ) -> tuple[float, float, float]:
    """Best of 5 (thread CPU seconds): the Planner's full rebuild, its update after one
    Service changed (a different Service each time), and its re-election after another
    speaker left or came back."""
    planner = Planner(node)
    rebuild = incremental = re_elect = float("inf")
    for _ in range(5):
        planner.everything_changed()
        started = time.thread_time()
        planner.update(view, live)
        rebuild = min(rebuild, time.thread_time() - started)
    for key in list(view.services)[:5]:
        planner.service_changed(key)
        started = time.thread_time()
        changes = planner.update(view, live)
        incremental = min(incremental, time.thread_time() - started)
        assert not changes.full
    other = sorted(live - {node})[0]
    for members in [live - {other}, live] * 3:
        started = time.thread_time()
        changes = planner.update(view, members)
        re_elect = min(re_elect, time.thread_time() - started)
        assert changes.re_elected and not changes.full
    return rebuild, incremental, re_elect


TOUCHES = 3
CHANGES = 5  # Services created, relabelled and deleted one at a time
MEMBERSHIP_CHANGES = 3  # simulated speakers that leave, then rejoin, one at a time
SPEAKER_USER = "system:serviceaccount:kube-system:vipam-speaker"


def speaker_writes(server: ApiServer, offset: int) -> dict[str, int]:
    """The speaker's write requests since `offset`, by verb/resource, from the audit log."""
    return server.audit_writes(SPEAKER_USER, offset)


def _not_leases(writes: dict[str, int]) -> int:
    return sum(count for key, count in writes.items() if "/leases" not in key)


async def quiet_after(server: ApiServer, offset: int, quiet: float, limit: float,
                      ) -> dict[str, int]:
    """The speaker's writes since `offset`, once it has made none but Lease renewals for
    `quiet` seconds (at most `limit` seconds of waiting)."""
    deadline = time.monotonic() + limit
    writes = speaker_writes(server, offset)
    since = time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = speaker_writes(server, offset)
        if _not_leases(now) != _not_leases(writes):
            writes, since = now, time.monotonic()
    return speaker_writes(server, offset)


def scrape(url: str) -> dict[str, float]:
    """The speaker's plan metrics from its /metrics: `<name>` summed over kinds, and
    `<name>:<kind>` for each kind of plan (incremental, full)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = ("vipam_speaker_plan_cpu_seconds_sum", "vipam_speaker_plan_cpu_seconds_count",
              "vipam_speaker_reconciles_total")
    found = dict.fromkeys(wanted, 0.0)
    for line in text.splitlines():
        sample, _, value = line.partition(" ")
        name, _, labels = sample.partition("{")
        if name not in wanted:
            continue
        found[name] += float(value)
        kind = re.search(r'kind="([^"]+)"', labels)
        if kind:
            found[f"{name}:{kind.group(1)}"] = float(value)
    return found


def _delta(after: dict[str, float], before: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


async def settled_plans(url: str, before: dict[str, float], timeout: float = 20.0,
                        ) -> dict[str, float]:
    """Scrape until the speaker has planned since `before` and then made no plan for 1 s."""
    count = "vipam_speaker_plan_cpu_seconds_count"
    deadline = time.monotonic() + timeout
    seen = await asyncio.to_thread(scrape, url)
    while seen[count] == before[count] and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        seen = await asyncio.to_thread(scrape, url)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = await asyncio.to_thread(scrape, url)
        if now[count] == seen[count]:
            return now
        seen = now
    return seen


async def one_change_at_a_time(admin: KubeClient, url: str, services: int,
                               ) -> dict[str, Any]:
    """Create, relabel and delete CHANGES Services one at a time, each left to settle: the
    speaker's incremental plans and their CPU per change, by kind of change."""
    inc_sum = "vipam_speaker_plan_cpu_seconds_sum:incremental"
    inc_count = "vipam_speaker_plan_cpu_seconds_count:incremental"
    full_count = "vipam_speaker_plan_cpu_seconds_count:full"
    created = [services + j for j in range(CHANGES)]
    changes: dict[str, Any] = {
        "create": [allocated_service(admin, i) for i in created],
        # a value new on this server: a patch that changes nothing makes no event at all
        "relabel": [admin.patch(SERVICES, NAMESPACE, f"s{i}", {"metadata": {"labels": {
            "bench.vipam.io/touch": f"{time.time_ns()}"}}}) for i in range(CHANGES)],
        "delete": [admin.delete(SERVICES, NAMESPACE, f"s{i}") for i in created],
    }
    found: dict[str, Any] = {}
    for kind, jobs in changes.items():
        plans = cpu = full = 0.0
        for job in jobs:
            before = await asyncio.to_thread(scrape, url)
            await job
            after = await settled_plans(url, before)
            plans += _delta(after, before, inc_count)
            cpu += _delta(after, before, inc_sum)
            full += _delta(after, before, full_count)
        found[kind] = {
            "changes": len(jobs), "incremental_plans": int(plans), "full_plans": int(full),
            "cpu_ms_per_plan": round(1000 * cpu / max(1.0, plans), 3),
            "cpu_ms_per_change": round(1000 * cpu / len(jobs), 3),
        }
    return found


async def leave_and_rejoin(simulator: LeaseSimulator, url: str, nodes: list[str],
                           ) -> dict[str, Any]:
    """Simulated speakers stop cleanly and come back, one at a time, each step left to settle:
    the speaker under test re-elects (kind live), a full plan never."""
    live_sum = "vipam_speaker_plan_cpu_seconds_sum:live"
    live_count = "vipam_speaker_plan_cpu_seconds_count:live"
    full_count = "vipam_speaker_plan_cpu_seconds_count:full"
    found: dict[str, Any] = {}
    for step in ("leave", "rejoin"):
        plans = cpu = full = 0.0
        for node in nodes:
            before = await asyncio.to_thread(scrape, url)
            await (simulator.leave(node) if step == "leave" else simulator.rejoin(node))
            after = await settled_plans(url, before)
            plans += _delta(after, before, live_count)
            cpu += _delta(after, before, live_sum)
            full += _delta(after, before, full_count)
        found[step] = {"changes": len(nodes), "live_plans": int(plans),
                       "full_plans": int(full),
                       "cpu_ms_per_plan": round(1000 * cpu / max(1.0, plans), 2)}
    return found


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


async def health_url(log_path: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        match = re.search(r"health on (http://\S+)", await asyncio.to_thread(_read, log_path))
        if match:
            return match.group(1)
        await asyncio.sleep(0.2)
    tail = (await asyncio.to_thread(_read, log_path))[-2000:]
    raise RuntimeError(f"speaker printed no health URL: {tail}")


async def populate(admin: KubeClient, services: int, names: list[str]) -> None:
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


async def measure_nodes(server: ApiServer, admin: KubeClient, kubeconfig: Path, work: Path,
                        services: int, names: list[str], period: float, window: float,
                        ) -> dict[str, Any]:
    """One speaker under test (the last of `names`) among len(names) nodes."""
    node, others = names[-1], names[:-1]
    simulator = LeaseSimulator(admin, period)
    await simulator.start(others)
    try:
        view = await cluster_view(admin)
        plan_s, expected = plan_cpu_seconds(view, node, frozenset(names))
        rebuild_s, incremental_s, re_elect_s = planner_cpu_seconds(view, node,
                                                                   frozenset(names))
        log_path = work / f"speaker-{services}-{len(names)}.log"
        log = log_path.open("w")
        audit_start = server.audit_offset()
        proc = subprocess.Popen(
            [sys.executable, "-m", "ccm", "speaker", "--node-name", node,
             "--kubeconfig", str(kubeconfig), "--namespace", "kube-system",
             "--announcer", "log", "--no-bgp", "--health-port", "0",
             "--health-host", "127.0.0.1", "--log-level", "WARNING",
             "--renew-interval", str(period), "--lease-duration", str(3 * period),
             "--fence-after", str(2.4 * period)],
            cwd=ROOT, stdout=log, stderr=log, start_new_session=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))
        try:
            launched = time.monotonic()
            url = await health_url(log_path, launched + 60)
            # it announces nothing before it is settled, a lease duration after joining
            owned, stable_since = 0, time.monotonic()
            first_seen: float | None = None
            while owned != expected or time.monotonic() - stable_since < 2.0:
                await asyncio.sleep(0.25)
                listing = await admin.list_all(SERVICES, NAMESPACE)
                mine = sum(1 for item in listing["items"]
                           if (item["metadata"].get("annotations") or {}).get(
                               ANN_ANNOUNCING_NODE) == node)
                if mine and first_seen is None:
                    first_seen = time.monotonic()
                if mine != owned:
                    owned, stable_since = mine, time.monotonic()
                if time.monotonic() - launched > 300 + 3 * period:
                    raise RuntimeError(f"speaker never settled: {owned} of {expected}")
            # and its start-up writes are over: the NodeAssigned Events drain behind the
            # annotations at the recorder's own rate
            start_writes = await quiet_after(server, audit_start, 3.0, 180.0)
            at_start = await asyncio.to_thread(scrape, url)
            quiet_start = server.audit_offset()
            renewals_before, late_before = simulator.renewals, simulator.late
            await asyncio.sleep(window)
            quiet = speaker_writes(server, quiet_start)
            after = await asyncio.to_thread(scrape, url)
            renewals = simulator.renewals - renewals_before
            late = simulator.late - late_before
            # a change every plan must look at (a Node's labels): one full plan each, no write
            touch_start = server.audit_offset()
            for touch in range(TOUCHES):
                await admin.patch(NODES, None, names[0], {"metadata": {"labels": {
                    "bench.vipam.io/touch": str(touch)}}})
                await asyncio.sleep(1.5)
            touched = await asyncio.to_thread(scrape, url)
            touch_writes = speaker_writes(server, touch_start)
            change_start = server.audit_offset()
            per_change = await one_change_at_a_time(admin, url, services)
            change_writes = speaker_writes(server, change_start)
            membership_start = server.audit_offset()
            membership = await leave_and_rejoin(simulator, url, others[:MEMBERSHIP_CHANGES])
            membership_writes = speaker_writes(server, membership_start)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
            log.close()
    finally:
        await simulator.stop()
    plans_at_start = at_start["vipam_speaker_plan_cpu_seconds_count"]
    return {
        "services": services, "nodes": len(names), "renew_interval_s": period,
        "bench_plan_cpu_ms": round(plan_s * 1000, 2),
        "speaker_plans_at_start": int(plans_at_start),
        "owned_addresses": owned,
        "settle_s": round(stable_since - (first_seen or stable_since), 2),
        "start_writes": start_writes,
        "steady_window_s": window,
        "steady_plans": int(after["vipam_speaker_plan_cpu_seconds_count"] - plans_at_start),
        "steady_writes": quiet,
        "speaker_writes_per_s": round(sum(quiet.values()) / window, 3),
        "touch_plans": int(touched["vipam_speaker_plan_cpu_seconds_count"]
                           - after["vipam_speaker_plan_cpu_seconds_count"]),
        "speaker_plan_cpu_ms": round(
            1000 * (touched["vipam_speaker_plan_cpu_seconds_sum"]
                    - after["vipam_speaker_plan_cpu_seconds_sum"])
            / max(1, touched["vipam_speaker_plan_cpu_seconds_count"]
                  - after["vipam_speaker_plan_cpu_seconds_count"]), 2),
        "touch_writes": touch_writes,
        "touch_full_plans": int(_delta(touched, after,
                                       "vipam_speaker_plan_cpu_seconds_count:full")),
        "bench_rebuild_cpu_ms": round(rebuild_s * 1000, 2),
        "bench_incremental_cpu_ms": round(incremental_s * 1000, 3),
        "bench_re_elect_cpu_ms": round(re_elect_s * 1000, 2),
        "per_change": per_change,
        "per_change_writes": change_writes,
        "membership": membership,
        "membership_writes": membership_writes,
        "simulated_renewals_per_s": round(renewals / window, 2),
        "simulated_late_renewals": late,
    }


async def measure(services: int, node_counts: list[int], period: float, window: float,
                  ) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with cluster(work) as (server, admin, speaker_kubeconfig):
            names = [node_name(i) for i in range(max(node_counts))]
            started = time.monotonic()
            await populate(admin, services, names)
            print(f"{services} Services, {len(names)} Nodes written in "
                  f"{time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
            await LeaseSimulator(admin, period).create(names)
            results = []
            for count in sorted(node_counts):
                result = await measure_nodes(server, admin, speaker_kubeconfig, work, services,
                                             names[:count], period, window)
                print(json.dumps(result), file=sys.stderr, flush=True)
                results.append(result)
            return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--services", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--nodes", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--renew-interval", type=float, default=10.0,
                        help="renew period of every speaker (lease duration 3x, fence 2.4x)")
    parser.add_argument("--window", type=float, default=30.0, help="quiet window, seconds")
    args = parser.parse_args()
    results = []
    for services in args.services:
        results += await measure(services, args.nodes, args.renew_interval, args.window)
    print(json.dumps(results, indent=2))
    print()
    print(f"{'services':>9} {'nodes':>6} {'plan CPU ms':>11} {'speaker plan ms':>15} "
          f"{'owned':>6} {'start writes':>12} {'steady plans':>12} {'writes/s':>9}")
    for r in results:
        print(f"{r['services']:>9} {r['nodes']:>6} {r['bench_plan_cpu_ms']:>11} "
              f"{r['speaker_plan_cpu_ms']:>15} {r['owned_addresses']:>6} "
              f"{sum(r['start_writes'].values()):>12} {r['steady_plans']:>12} "
              f"{r['speaker_writes_per_s']:>9}")
    print()
    print("one Service change at a time: the speaker's incremental plans, CPU ms per change "
          "(plans per change); in this process: Planner update / full rebuild, ms")
    print(f"{'services':>9} {'nodes':>6} {'create':>14} {'relabel':>14} {'delete':>14} "
          f"{'full plans':>10} {'writes':>6} {'bench inc':>9} {'bench full':>10}")
    for r in results:
        cells = [f"{c['cpu_ms_per_change']:.3f} ({c['incremental_plans'] / c['changes']:.1f})"
                 for c in (r["per_change"][k] for k in ("create", "relabel", "delete"))]
        full = sum(c["full_plans"] for c in r["per_change"].values())
        print(f"{r['services']:>9} {r['nodes']:>6} {cells[0]:>14} {cells[1]:>14} "
              f"{cells[2]:>14} {full:>10} {sum(r['per_change_writes'].values()):>6} "
              f"{r['bench_incremental_cpu_ms']:>9} {r['bench_rebuild_cpu_ms']:>10}")
    print()
    print("another speaker leaves (Lease released) or rejoins, one at a time: the speaker's "
          "re-elections, CPU ms per plan (plans per change), full plans, its writes")
    print(f"{'services':>9} {'nodes':>6} {'leave':>14} {'rejoin':>14} {'full plans':>10} "
          f"{'writes':>6} {'bench re-elect':>14}")
    for r in results:
        steps = [r["membership"][k] for k in ("leave", "rejoin")]
        cells = [f"{c['cpu_ms_per_plan']:.2f} ({c['live_plans'] / c['changes']:.1f})"
                 for c in steps]
        full = sum(c["full_plans"] for c in steps)
        writes = sum(n for key, n in r["membership_writes"].items() if "/leases" not in key)
        print(f"{r['services']:>9} {r['nodes']:>6} {cells[0]:>14} {cells[1]:>14} "
              f"{full:>10} {writes:>6} {r['bench_re_elect_cpu_ms']:>14}")


if __name__ == "__main__":
    asyncio.run(main())
