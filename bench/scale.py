"""Benchmark: the controller at scale on a REAL kube-apiserver (devkit.apiserver), as a process.

The API server, etcd, the controller and this client share the machine, as they would on a
small control-plane node. Services are IPv6 single-stack from 2001:db8:b::/112 (documentation
addresses only; 65,536 of them), with no NodePorts (the server has 2,768 to give).

Phases, each on a server of its own so that one phase's objects do not slow the next:
1. floor  — the same N creates plus one status write and one metadata write per Service,
            with no controller, at the same concurrency: what the writes alone cost.
            With --observed-floor also timed until a watch has seen every address, with the
            burst's watch running (the bench's own load, taken out of the comparison).
2. burst  — the controller process running and leading; N LoadBalancer Services created with
            C requests in flight; time until a watch has seen every address, p50/p99 from each
            create to its address, write requests per Service counted AT THE SERVER
            (apiserver_request_total), Events apart.
3. memory — the controller's RSS (/proc/PID/status VmRSS) idle, then with N allocated Services.
4. restart — with R allocated Services the controller is stopped and a new one started: time
            from start to /readyz, and the new controller's write requests, from the server's
            audit log (must be 0; the server's own repair loops are not the controller's).

The memory and restart phases can start from Services written directly (`--prefill`): through
the API, or cloned into etcd (`--prefill etcd`: the only way to hold 50,000 Services here, see
`prefill_etcd`).

    .venv/bin/python -m bench.scale [--services 1000 10000] [--memory 10000 50000] \
        [--restart 10000] [--concurrency 32] [--prefill [api|etcd]] [--repeat 5] \
        [--observed-floor]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ccm.contract import names
from ccm.kube.client import KubeClient
from ccm.kube.informer import Informer
from ccm.kube.resources import IPPOOLS, NAMESPACES, SERVICES, Resource
from devkit.apiserver import SERVICE_CIDRS, ApiServer, count_delta, die_with_parent

IPADDRESSES = Resource("networking.k8s.io", "v1", "ipaddresses", "IPAddress", False)

NAMESPACE = "bench"


def service(name: str, lb: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"type": "LoadBalancer" if lb else "ClusterIP", "ipFamilies": ["IPv6"],
                 "ipFamilyPolicy": "SingleStack", "allocateLoadBalancerNodePorts": False,
                 "ports": [{"port": 80, "protocol": "TCP"}]},
    }


@dataclass
class Cluster:
    server: ApiServer
    admin: KubeClient
    controller_kubeconfig: Path
    workdir: Path


@contextlib.asynccontextmanager
async def cluster(audit: bool = False) -> AsyncIterator[Cluster]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = ApiServer(work / "api", audit=audit)
        server.start()  # on the main thread, so etcd and the server die with this process
        try:
            await asyncio.to_thread(server.kubectl, "apply", "-k", str(ROOT / "config"))
            await asyncio.to_thread(server.kubectl, "wait", "--for", "condition=Established",
                                    "crd", "--all", "--timeout", "60s")
            token = await asyncio.to_thread(server.create_token, "vipam-controller",
                                            "kube-system")
            admin = await KubeClient.connect(str(server.kubeconfig(work / "admin")), qps=0)
            await admin.create(NAMESPACES, None, {"metadata": {"name": NAMESPACE}})
            await admin.create(IPPOOLS, None, {
                "apiVersion": "vipam.io/v1alpha1", "kind": "IPPool",
                "metadata": {"name": "big"}, "spec": {"addresses": ["2001:db8:b::/112"]}})
            try:
                yield Cluster(server, admin, server.kubeconfig(work / "controller", token,
                                                               "kube-system"), work)
            finally:
                await admin.close()
        finally:
            await asyncio.to_thread(server.stop)


class ControllerProcess:
    """`vipam controller` on its own ServiceAccount token, as a separate process."""

    def __init__(self, kubeconfig: Path, identity: str, log: Path, **flags: str) -> None:
        # BENCH_PROFILE=DIR: each controller runs under cProfile, its stats written to DIR
        profile = os.environ.get("BENCH_PROFILE")
        prefix = ["-m", "cProfile", "-o", f"{profile}/{identity}.prof"] if profile else []
        args = [sys.executable, *prefix, "-m", "ccm", "controller", "--kubeconfig", str(kubeconfig),
                "--namespace", "kube-system", "--identity", identity, "--health-port", "0",
                "--health-host", "127.0.0.1", "--log-level", "WARNING"]
        for name, value in flags.items():
            args += [f"--{name.replace('_', '-')}", value]
        self.log = log.open("w")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self.log, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True,
                                     preexec_fn=die_with_parent())
        self.started = time.perf_counter()
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        match = re.search(r"health on (\S+)", line)
        if not match:
            raise RuntimeError(f"controller did not start: {line}")
        self.url = match.group(1).rstrip("/")

    def ready(self, leading: bool) -> bool:
        """/readyz says 200; with `leading`, as the leader with its assignments restored (a
        replica that has not campaigned yet is ready as a standby, which is not the figure)."""
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=1) as resp:
                body = resp.read().decode(errors="replace")
                return bool(resp.status == 200) and (
                    not leading or "assignments restored" in body)
        except OSError:
            return False

    async def wait_ready(self, timeout: float = 120, leading: bool = True) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self.ready, leading):
                return time.perf_counter() - self.started
            await asyncio.sleep(0.01)
        raise RuntimeError("controller not ready")

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


async def run_limited(jobs: Iterator[Any], concurrency: int) -> None:
    async def worker() -> None:
        for job in jobs:
            await job()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before.get(name, 0.0), 2) for name in after}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class AddressWatch:
    """When each Service's address was first seen, by a watch in this process (the burst's
    clock; with `--observed-floor`, the floor's too)."""

    def __init__(self, c: Cluster) -> None:
        self.seen: dict[str, float] = {}
        self._informer = Informer(c.admin, SERVICES, self._changed, namespace=NAMESPACE)
        self._task: asyncio.Task[None] | None = None

    def _changed(self, key: str, old: Any, new: Any) -> None:
        if new and key not in self.seen and ((new.get("status") or {}).get("loadBalancer")
                                             or {}).get("ingress"):
            self.seen[key] = time.perf_counter()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._informer.run())
        await self._informer.synced.wait()

    async def every(self, n: int) -> None:
        while len(self.seen) < n:
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def floor(n: int, concurrency: int, observed: bool = False) -> dict[str, Any]:
    """N creates + a status write + a metadata write per Service, no controller. `observed`:
    with the burst's watch running, until it has seen every address (what the burst's clock
    includes besides the controller: the watch's load on the server and on this process)."""
    async with cluster() as c:
        watch = AddressWatch(c)
        if observed:
            await watch.start()
        def job(i: int) -> Any:
            async def run() -> None:
                # the controller's two writes: merge patches guarded by resourceVersion
                created = await c.admin.create(SERVICES, NAMESPACE, service(f"s{i}"))
                rv = created["metadata"]["resourceVersion"]
                patched = await c.admin.patch(SERVICES, NAMESPACE, f"s{i}", {
                    "metadata": {"resourceVersion": rv, "finalizers": [names.FINALIZER],
                                 "annotations": {names.ANN_ALLOCATED_FROM: "big"}}})
                await c.admin.patch(SERVICES, NAMESPACE, f"s{i}", {
                    "metadata": {"resourceVersion": patched["metadata"]["resourceVersion"]},
                    "status": {"loadBalancer": {"ingress": [{"ip": f"2001:db8:b::{i:x}"}]}}},
                    subresource="status")
            return run

        pids = {**c.server.pids(), "bench": os.getpid()}
        cpu_before = cpu_of(pids)
        started = time.perf_counter()
        try:
            await run_limited((job(i) for i in range(n)), concurrency)
            if observed:
                await watch.every(n)
        finally:
            watch.stop()
        total = time.perf_counter() - started
        return {"services": n, "floor_s": round(total, 3), "per_s": round(n / total, 1),
                "observed": observed, "cpu_s": cpu_used(cpu_before, cpu_of(pids))}


CONTROLLER_FLAGS: dict[str, str] = {}  # --qps/--burst given to every controller process


async def burst(n: int, concurrency: int) -> dict[str, Any]:
    async with cluster() as c:
        watch = AddressWatch(c)
        await watch.start()
        seen = watch.seen
        controller = ControllerProcess(c.controller_kubeconfig, "bench", c.workdir / "c.log",
                                       workers="16", **CONTROLLER_FLAGS)
        try:
            await controller.wait_ready()
            rss_idle = controller.rss_kb()
            before = await asyncio.to_thread(c.server.request_counts)
            sent: dict[str, float] = {}

            def job(i: int) -> Any:
                async def run() -> None:
                    sent[f"{NAMESPACE}/s{i}"] = time.perf_counter()
                    await c.admin.create(SERVICES, NAMESPACE, service(f"s{i}"))
                return run

            pids = {**c.server.pids(), "controller": controller.proc.pid, "bench": os.getpid()}
            cpu_before = cpu_of(pids)
            started = time.perf_counter()
            await run_limited((job(i) for i in range(n)), concurrency)
            await watch.every(n)
            total = time.perf_counter() - started
            cpu = cpu_used(cpu_before, cpu_of(pids))
            at_last_address = await asyncio.to_thread(c.server.request_counts)
            await asyncio.sleep(2.0)  # let late status/Event writes land before counting
            after = await asyncio.to_thread(c.server.request_counts)
            rss_loaded = controller.rss_kb()
            await asyncio.sleep(15.0)  # idle: the controller gives freed heap back (heap.py)
            rss_settled = controller.rss_kb()
        finally:
            controller.stop()
            watch.stop()
        writes = count_delta(before, after)
        events_in_burst = sum(count_delta(before, at_last_address, resource="events").values())
        service_writes = sum(v for (verb, _, res, _), v in writes.items() if res == "services"
                             and verb != "POST")
        event_writes = sum(count_delta(before, after, resource="events").values())
        latencies = [seen[k] - sent[k] for k in sent]
        return {
            "services": n, "all_allocated_s": round(total, 3), "per_s": round(n / total, 1),
            "cpu_s": cpu,
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "service_writes_per_service": round(service_writes / n, 2),
            "event_writes_per_service": round(event_writes / n, 2),
            "event_writes_until_the_last_address": events_in_burst,
            "writes": {"/".join(filter(None, k)): v for k, v in sorted(writes.items())},
            "rss_idle_kb": rss_idle, "rss_loaded_kb": rss_loaded,
            "rss_per_service_kb": round((rss_loaded - rss_idle) / n, 2),
            "rss_settled_kb": rss_settled,
            "rss_settled_per_service_kb": round((rss_settled - rss_idle) / n, 2),
        }


def allocated(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Service s{i} as the controller leaves it once allocated: the object, then its status."""
    ip = str(ipaddress.IPv6Address(f"2001:db8:b::{i:x}"))  # canonical, as the controller writes
    body = service(f"s{i}")
    body["metadata"].update({
        "finalizers": [names.FINALIZER],
        "annotations": {names.ANN_ALLOCATED_FROM: "big", names.ANN_SET_LB_IP: "true"}})
    body["spec"]["loadBalancerIP"] = ip
    status = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]},
              "conditions": [{"type": names.CONDITION_ALLOCATED, "status": "True",
                              "reason": names.REASON_ALLOCATED,
                              "message": f"allocated {ip} from pool big",
                              "lastTransitionTime": "2026-11-30T00:00:00Z"}]}
    return body, status


async def prefill(c: Cluster, n: int, concurrency: int) -> None:
    """N Services written as the controller writes them, without a controller: much faster
    than allocating them on a busy machine. Checked, not assumed: a restarted controller that
    found anything to change would write, and the restart phase counts its writes."""
    def job(i: int) -> Any:
        async def run() -> None:
            body, status = allocated(i)
            created = await c.admin.create(SERVICES, NAMESPACE, body)
            await c.admin.patch(SERVICES, NAMESPACE, f"s{i}", {
                "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
                "status": status}, subresource="status")
        return run

    await run_limited((job(i) for i in range(n)), concurrency)


async def prefill_etcd(c: Cluster, n: int) -> None:
    """N allocated Services, and the IPAddress object holding each one's ClusterIP, written
    straight into etcd: clones of one Service (s0) that went through the API and was allocated
    as `prefill` does, so every clone carries the server's own defaults and shape.

    Why not through the API: the 1.36 server's ClusterIP allocator counts every IPAddress
    object after each allocation (its allocator metrics list them all), so a create costs
    O(Services) of server CPU: 7, 10.5 and 19.3 ms per Service at 2,000, 4,000 and 6,000
    Services on this 2-core machine, and ~1 create/s past 34,000. What is measured after the
    fill (the controller listing, caching and restoring N Services through the real API
    server) does not depend on how the objects reached etcd; the restart's 0 counted writes
    still check that the clones match what the controller writes."""
    await prefill(c, 1, 1)
    template = await c.admin.get(SERVICES, NAMESPACE, "s0")
    held = await c.admin.get(IPADDRESSES, None, template["spec"]["clusterIP"])
    taken = {item["metadata"]["name"] for item in (await c.admin.list_all(IPADDRESSES))["items"]}
    cluster_ips = (str(a) for a in ipaddress.IPv6Network(SERVICE_CIDRS.split(",")[1]).hosts()
                   if str(a) not in taken)
    for stored in (template, held):  # what storage holds has no resourceVersion
        stored["metadata"].pop("resourceVersion", None)
    service_json, address_json = json.dumps(template), json.dumps(held)

    def objects() -> Iterator[tuple[str, bytes]]:
        for i in range(1, n):
            body, status = allocated(i)
            cluster_ip = next(cluster_ips)
            svc = json.loads(service_json)
            svc["metadata"].update(name=f"s{i}", uid=str(uuid.uuid4()))
            svc["spec"].update(clusterIP=cluster_ip, clusterIPs=[cluster_ip],
                               loadBalancerIP=body["spec"]["loadBalancerIP"])
            svc["status"] = status
            address = json.loads(address_json)
            address["metadata"].update(name=cluster_ip, uid=str(uuid.uuid4()))
            address["spec"]["parentRef"]["name"] = f"s{i}"
            yield f"/registry/services/specs/{NAMESPACE}/s{i}", json.dumps(svc).encode()
            yield f"/registry/ipaddresses/{cluster_ip}", json.dumps(address).encode()

    await asyncio.to_thread(c.server.etcd_put, objects())
    while len((await c.admin.list_all(SERVICES, NAMESPACE, page=5000))["items"]) < n:
        await asyncio.sleep(2.0)  # the server's watch on etcd is still catching up


async def create_allocated(c: Cluster, n: int, concurrency: int) -> None:
    """N Services with a running controller, until every one shows an address."""
    controller = ControllerProcess(c.controller_kubeconfig, "fill", c.workdir / "fill.log",
                                   workers="16", **CONTROLLER_FLAGS)
    try:
        await controller.wait_ready()

        def job(i: int) -> Any:
            async def run() -> None:
                await c.admin.create(SERVICES, NAMESPACE, service(f"s{i}"))
            return run

        await run_limited((job(i) for i in range(n)), concurrency)
        while True:
            listing = await c.admin.list_all(SERVICES, NAMESPACE)
            if sum(1 for s in listing["items"]
                   if ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress")) == n:
                break
            await asyncio.sleep(1.0)
        await asyncio.sleep(3.0)  # pool status catches up
    finally:
        controller.stop()


CONTROLLER_USER = "system:serviceaccount:kube-system:vipam-controller"


async def server_quiet(server: ApiServer, below: float = 0.2, limit: float = 180.0) -> None:
    """Until etcd and the API server together use less than `below` of a core over 2 s (at
    most `limit` s): a restart timed while the server still digests a fill measures both."""
    pids = server.pids()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = sum(cpu_of(pids).values())
        await asyncio.sleep(2.0)
        if (sum(cpu_of(pids).values()) - before) / 2.0 < below:
            return


async def memory_and_restart(n: int, concurrency: int, restart: bool,
                             direct: str | None = None) -> dict[str, Any]:
    # audited: the restart's writes are the controller's own, not the server's (its ClusterIP
    # repair loop may still be creating IPAddress objects after a fill)
    async with cluster(audit=True) as c:
        if direct:
            filled = time.perf_counter()
            if direct == "etcd":
                await prefill_etcd(c, n)
            else:
                await prefill(c, n, concurrency)
            print(f"prefill ({direct}) of {n} Services: {time.perf_counter() - filled:.1f} s",
                  file=sys.stderr, flush=True)
            # one controller run settles what a direct write cannot know (pool status); the
            # restart measured below must then find nothing to write
            settle_offset = c.server.audit_offset()
            settle = ControllerProcess(c.controller_kubeconfig, "settle",
                                       c.workdir / "settle.log", **CONTROLLER_FLAGS)
            try:
                await settle.wait_ready()
                await asyncio.sleep(10.0)
            finally:
                settle.stop()
            # the audit log does see the controller's writes: the settling run's pool status
            settle_writes = c.server.audit_writes(CONTROLLER_USER, settle_offset)
            print(f"settling controller wrote {settle_writes}", file=sys.stderr, flush=True)
        else:
            await create_allocated(c, n, concurrency)
        await server_quiet(c.server)
        offset = c.server.audit_offset()
        controller = ControllerProcess(c.controller_kubeconfig, "restarted",
                                       c.workdir / "restart.log", workers="16", **CONTROLLER_FLAGS)
        try:
            ready = await controller.wait_ready()
            await asyncio.sleep(5.0)  # anything the new leader would write, it writes by now
            writes = c.server.audit_writes(CONTROLLER_USER, offset)
            await asyncio.sleep(12.0)  # idle: the controller gives freed heap back (heap.py)
            rss = controller.rss_kb()
        finally:
            controller.stop()
        non_lease = {key: count for key, count in writes.items() if "/leases" not in key}
        # an idle controller (no Services) for the per-Service figure
        async with cluster() as empty:
            idle = ControllerProcess(empty.controller_kubeconfig, "idle",
                                     empty.workdir / "idle.log", **CONTROLLER_FLAGS)
            try:
                await idle.wait_ready()
                await asyncio.sleep(1.0)
                rss_idle = idle.rss_kb()
            finally:
                idle.stop()
        result: dict[str, Any] = {
            "services": n, "rss_idle_kb": rss_idle, "rss_kb": rss,
            "rss_per_service_kb": round((rss - rss_idle) / n, 2),
        }
        if restart:
            result.update({"restart_ready_s": round(ready, 3),
                           "restart_writes": sum(non_lease.values()),
                           "restart_writes_by_resource": non_lease})
        return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--services", type=int, nargs="*", default=[1000])
    parser.add_argument("--memory", type=int, nargs="*", default=[10000])
    parser.add_argument("--restart", type=int, default=10000,
                        help="also measure a restart at this memory size (0: no)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--qps", help="the controller's --qps (default: its own default)")
    parser.add_argument("--burst", help="the controller's --burst")
    parser.add_argument("--prefill", nargs="?", const="api", choices=("api", "etcd"),
                        help="memory/restart: write the allocated Services directly instead of "
                             "having a controller allocate them (the restart's 0 writes check "
                             "it): through the API, or cloned straight into etcd (fast at "
                             "50,000, see prefill_etcd)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="floor and burst this many times each, in turn; also prints the "
                             "ratio of their medians (one floor run is a noisy reference)")
    parser.add_argument("--observed-floor", action="store_true",
                        help="also the floor with the burst's watch running, timed until it "
                             "has seen every address (a second reference: the watch is the "
                             "bench's, not the controller's)")
    parser.add_argument("--skip-floor", action="store_true",
                        help="burst only (e.g. to compare --qps settings in one run)")
    args = parser.parse_args()
    if args.qps is not None:
        CONTROLLER_FLAGS["qps"] = args.qps
    if args.burst is not None:
        CONTROLLER_FLAGS["burst"] = args.burst
    results: dict[str, Any] = {"floor": [], "observed_floor": [], "burst": [], "memory": []}
    for n in args.services:
        for _ in range(args.repeat):  # floors and burst in turn, so drifts hit all alike
            if not args.skip_floor:
                results["floor"].append(await floor(n, args.concurrency))
            if args.observed_floor:
                results["observed_floor"].append(await floor(n, args.concurrency, True))
            results["burst"].append(b := await burst(n, args.concurrency))
            b["controller_flags"] = dict(CONTROLLER_FLAGS)
            if not args.skip_floor:
                b["ratio_to_floor"] = round(b["all_allocated_s"]
                                            / results["floor"][-1]["floor_s"], 2)
            if args.observed_floor:
                b["ratio_to_observed_floor"] = round(
                    b["all_allocated_s"] / results["observed_floor"][-1]["floor_s"], 2)
        if args.repeat > 1:
            bursts = [b["all_allocated_s"] for b in results["burst"] if b["services"] == n]
            row: dict[str, Any] = {"services": n, "runs": args.repeat,
                                   "all_seen_median_s": statistics.median(bursts)}
            for kind in ("floor", "observed_floor"):
                floors = [f["floor_s"] for f in results[kind] if f["services"] == n]
                if floors:
                    row[f"{kind}_median_s"] = statistics.median(floors)
                    row[f"ratio_to_{kind}_median"] = round(
                        statistics.median(bursts) / statistics.median(floors), 2)
            results.setdefault("medians", []).append(row)
    for n in args.memory:
        results["memory"].append(
            await memory_and_restart(n, args.concurrency, restart=n == args.restart,
                                     direct=args.prefill))
    print(json.dumps(results, indent=2))
    print()
    print(f"{'services':>9} {'floor':>8} {'observed':>9} {'all seen':>9} {'ratio':>6} "
          f"{'ratio o.':>8} {'p50 ms':>8} {'p99 ms':>8} {'svc writes':>10} "
          f"{'event writes':>12} {'in burst':>8}")
    blank = [{"floor_s": "-"}] * len(results["burst"])
    for f, o, b in zip(results["floor"] or blank, results["observed_floor"] or blank,
                       results["burst"], strict=True):
        print(f"{b['services']:>9} {f['floor_s']:>7}s {o['floor_s']:>8}s "
              f"{b['all_allocated_s']:>8}s {b.get('ratio_to_floor', '-'):>6} "
              f"{b.get('ratio_to_observed_floor', '-'):>8} {b['p50_ms']:>8} {b['p99_ms']:>8} "
              f"{b['service_writes_per_service']:>10} {b['event_writes_per_service']:>12} "
              f"{b['event_writes_until_the_last_address']:>8}")
    for m in results.get("medians", []):
        print(f"{m['services']:>9} Services, {m['runs']} runs: all seen median "
              f"{m['all_seen_median_s']}s; " + "; ".join(
                  f"{kind.replace('_', ' ')} median {m[f'{kind}_median_s']}s, ratio "
                  f"{m[f'ratio_to_{kind}_median']}" for kind in ("floor", "observed_floor")
                  if f"{kind}_median_s" in m))
    for b in results["burst"]:
        print(f"burst {b['services']}: controller RSS {b['rss_per_service_kb']} KB/Service just "
              f"after, {b['rss_settled_per_service_kb']} KB/Service after 15 s idle")
    for label, rows in (("floor", results["floor"]),
                        ("observed floor", results["observed_floor"]),
                        ("burst", results["burst"])):
        for row in rows:
            print(f"{label} {row['services']}: CPU seconds " + ", ".join(
                f"{name} {value}" for name, value in row["cpu_s"].items()))
    for m in results["memory"]:
        line = (f"{m['services']:>9} Services: RSS {m['rss_kb'] / 1024:.1f} MB "
                f"(idle {m['rss_idle_kb'] / 1024:.1f} MB), {m['rss_per_service_kb']} KB/Service")
        if "restart_ready_s" in m:
            line += (f"; restart ready in {m['restart_ready_s']}s with "
                     f"{m['restart_writes']} writes")
        print(line)


if __name__ == "__main__":
    asyncio.run(main())
