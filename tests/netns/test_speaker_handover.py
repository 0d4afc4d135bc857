"""Handovers of an L2 address between real speakers, as a host that resolves afresh sees them.

One shared site for the module: the API and the controller in their own namespace, a speaker
(shipped timing defaults) in each of three node namespaces, and a probe host that sends an
ARP request and a neighbour solicitation for each VIP every 50 ms from raw sockets, so no
neighbour cache hides a gap or a second answer. What the issue asked to be true:

* a node never makes a VIP its own source address (the VIP only receives);
* a speaker that rejoins, and a rolling restart of every speaker, leave no round unanswered;
* after a SIGKILL, no round gets two different answers, and another node answers within 2 s.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from ccm.speaker.election import owner
from tests.netns.cluster import start_vipam
from tests.netns.lab import REPO, Lab, Member, namespaces, run, wait_for
from tests.netns.probing import Probe, first_answer, judge
from tests.prereq import require

pytestmark = pytest.mark.netns

API_PORT = 16445
PERIOD = 0.05
MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: vipam.io/v1alpha1
kind: IPPool
metadata: {name: lan}
spec:
  addresses: ["192.0.2.100-192.0.2.109", "2001:db8::100-2001:db8::109"]
---
apiVersion: vipam.io/v1alpha1
kind: L2Advertisement
metadata: {name: lan}
spec: {ipPools: [lan]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  ports: [{name: http, port: 80}]
"""


@dataclass
class Site:
    lab: Lab
    workdir: Path
    kubeconfig: Path
    ips: list[str] = field(default_factory=list)
    speakers: dict[str, subprocess.Popen[Any]] = field(default_factory=dict)
    starts: int = 0

    @property
    def probe_host(self) -> Member:
        return self.lab.hosts["probe"]

    def node(self, name: str) -> Member:
        return next(node for node in self.lab.nodes if node.name == name)

    def start_speaker(self, node: Member) -> None:
        self.starts += 1
        self.speakers[node.name] = start_vipam(self.lab, node.name, [
            "speaker", "--node-name", node.name, "--kubeconfig", str(self.kubeconfig),
            "--namespace", "kube-system", "--announcer", "kernel", "--no-bgp",
            "--health-port", "0", "--log-format", "text",
        ], self.workdir / f"speaker-{node.name}-{self.starts}.log")

    def stop_speaker(self, node: Member, sig: signal.Signals) -> None:
        process = self.speakers.pop(node.name)
        process.send_signal(sig)
        process.wait(timeout=15)

    def owner_of(self, ip: str, live: list[Member] | None = None) -> Member:
        """The node the rendezvous election gives ``ip`` among ``live`` (default: all)."""
        chosen = owner(ip, [node.name for node in (live or self.lab.nodes)])
        assert chosen is not None
        return self.node(chosen)

    def settled(self, probe: Probe, since: float = 0.0) -> bool:
        """Every VIP answered by exactly its elected owner among the running speakers, in a
        round that started at or after ``since``."""
        live = [node for node in self.lab.nodes if node.name in self.speakers]
        return all(probe.answered_by(ip, self.owner_of(ip, live).mac, since) for ip in self.ips)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require(run("id", "-u").stdout.strip() == "0", "netns tests need root and iproute2")
    workdir = tmp_path_factory.mktemp("handover")
    lab = Lab.create(node_count=3, hosts={"ctl": 5, "probe": 250})
    try:
        ctl = lab.hosts["ctl"]
        kubeconfig = workdir / "kubeconfig"
        emulator = lab.spawn(
            ctl.name,
            [sys.executable, "-m", "devkit.emulator", "--host", ctl.ipv4, "--port",
             str(API_PORT), "--kubeconfig", str(kubeconfig), "--crd",
             str(REPO / "config" / "crd")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, text=True,
        )
        assert emulator.stdout is not None
        assert emulator.stdout.readline().strip().endswith(f":{API_PORT}")

        def ctl_kubectl(*args: str) -> str:
            done = subprocess.run(
                ["ip", "netns", "exec", ctl.name, "kubectl", "--kubeconfig", str(kubeconfig),
                 *args], capture_output=True, text=True, timeout=30, check=False)
            assert done.returncode == 0, done.stderr
            return done.stdout

        (workdir / "objects.yaml").write_text(MANIFEST)
        ctl_kubectl("apply", "--validate=false", "-f", str(workdir / "objects.yaml"))
        start_vipam(lab, ctl.name, [
            "controller", "--kubeconfig", str(kubeconfig), "--namespace", "kube-system",
            "--health-port", "0", "--log-format", "text",
        ], workdir / "controller.log")
        built = Site(lab, workdir, kubeconfig)
        for node in lab.nodes:
            built.start_speaker(node)
        jsonpath = "{.status.loadBalancer.ingress[*].ip}"
        built.ips = wait_for(
            lambda: ctl_kubectl("get", "svc", "web", "-o", f"jsonpath={jsonpath}").split(),
            20, "addresses on the Service")
        assert len(built.ips) == 2
        yield built
    finally:
        for process in lab.processes[::-1]:  # speakers first, the API last: clean stops
            if process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
        strays = lab.destroy()
        assert not strays, f"processes outlived the module in its namespaces: {strays}"
        assert not set(lab.all_namespaces()) & namespaces(), "namespaces left behind"


def _probe(site: Site) -> tuple[Probe, float]:
    """A running probe, and the time from which every VIP is answered by its owner."""
    probe = Probe(site.lab, site.probe_host, site.ips, PERIOD)
    wait_for(lambda: site.settled(probe), 15, "every VIP answered by its elected owner")
    return probe, probe.now()


def _source_seen_by_peer(site: Site, node: Member, family: int) -> str:
    """Connect from ``node`` to the probe host over TCP; the peer address the server saw."""
    peer = site.probe_host.ipv4 if family == 4 else site.probe_host.ipv6
    server = site.lab.spawn(site.probe_host.name, [sys.executable, "-c", (
        "import socket,sys\n"
        f"s=socket.socket(socket.AF_INET{'6' if family == 6 else ''})\n"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f"s.bind(('{peer}',8099));s.listen();print('ready',flush=True)\n"
        "c,a=s.accept();print(a[0],flush=True)\n"
    )], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    run("ip", "netns", "exec", node.name, sys.executable, "-c",
        f"import socket;socket.create_connection(('{peer}',8099),timeout=5).close()")
    seen: str = server.stdout.readline().strip()
    server.wait(timeout=5)
    return seen


def test_a_vip_is_never_the_nodes_source_address(site: Site) -> None:
    """A /128 VIP beats the node's /64 address for any peer on the segment (longest match,
    RFC 6724 rule 8): unless deprecated, the node sources its own traffic from it."""
    probe, _ = _probe(site)
    probe.stop()
    seen: dict[str, tuple[str, str, str]] = {}
    for ip in sorted(site.ips, key=lambda ip: ":" not in ip):  # IPv6 first: the defect
        family = 6 if ":" in ip else 4
        holder = site.owner_of(ip)
        peer = site.probe_host.ipv6 if family == 6 else site.probe_host.ipv4
        (route,) = json.loads(run("ip", "-j", "-n", holder.name, "route", "get", peer).stdout)
        seen[ip] = (holder.ipv6 if family == 6 else holder.ipv4, route.get("prefsrc", ""),
                    _source_seen_by_peer(site, holder, family))
        print(f"\n{holder.name} holds {ip}: own address, route src, TCP peer saw: {seen[ip]}")
    for ip, (own, route_source, peer_saw) in seen.items():
        assert peer_saw == own, f"a connection from the node was sourced from VIP {ip}"
        assert route_source == own
    for ip in site.ips:  # still there, answering (the probe above) and receiving: deprecated
        holder = site.owner_of(ip)
        links = json.loads(run("ip", "-j", "-n", holder.name, "addr", "show", "to", ip).stdout)
        (info,) = [a for link in links for a in link["addr_info"] if a.get("local") == ip]
        assert info.get("preferred_life_time") == 0, info


def test_rejoin_and_rolling_restart_leave_no_unanswered_moment(site: Site) -> None:
    probe, since = _probe(site)
    try:
        marks: list[tuple[str, float]] = []
        for node in site.lab.nodes:  # a DaemonSet rollout: one node after the other
            site.stop_speaker(node, signal.SIGTERM)
            stopped = probe.now()
            marks.append((f"{node.name} stopped", round(stopped, 2)))
            wait_for(partial(site.settled, probe, stopped), 10, f"hand-over from {node.name}")
            site.start_speaker(node)
            started = probe.now()
            marks.append((f"{node.name} started", round(started, 2)))
            wait_for(partial(site.settled, probe, started + 1.5), 15, f"{node.name} to rejoin")
            time.sleep(0.3)  # a late second answer would show here
    finally:
        rounds = probe.stop()
    print(f"\nrolling restart: {marks}")
    for ip in site.ips:
        verdict = judge(rounds, ip, start=since)
        print(verdict)
        assert verdict.rounds > 100
        assert verdict.silent == [], f"nobody answered for {ip}: {verdict}"
        # make-before-break: both answer from the new owner's announcement until the old owner
        # hears it, a few milliseconds, so a 50 ms round may catch it, never two in a row
        assert verdict.longest_double_run <= 1, f"two nodes answered for {ip}: {verdict}"


def test_sigkill_takeover_never_gives_two_answers(site: Site) -> None:
    probe, _ = _probe(site)
    victim = site.owner_of(site.ips[0])
    moved = [ip for ip in site.ips if site.owner_of(ip) == victim]
    survivors = [node for node in site.lab.nodes if node != victim]
    try:
        time.sleep(0.5)
        killed = probe.now()
        site.stop_speaker(victim, signal.SIGKILL)
        for ip in moved:
            heir = site.owner_of(ip, survivors)
            wait_for(partial(probe.answered_by, ip, heir.mac, killed), 5,
                     f"{heir.name} alone to answer for {ip}")
        time.sleep(1.0)  # the killed node's addresses would still answer here if they outlived
        restarted = probe.now()
        site.start_speaker(victim)
        wait_for(lambda: site.settled(probe, restarted + 1.5), 15, f"{victim.name} to rejoin")
        time.sleep(0.3)
    finally:
        rounds = probe.stop()
    for ip in moved:
        heir = site.owner_of(ip, survivors)
        verdict = judge(rounds, ip, start=killed, end=restarted)
        takeover = first_answer(rounds, ip, heir.mac, killed)
        print(f"\nSIGKILL of {victim.name}: {ip} answered by {heir.name} after "
              f"{None if takeover is None else round(takeover - killed, 3)} s; {verdict}")
        assert verdict.double == [], f"two nodes answered for {ip} after the SIGKILL: {verdict}"
        assert takeover is not None and takeover - killed < 2.0
    for ip in site.ips:
        rejoin = judge(rounds, ip, start=restarted)
        print(f"\n{victim.name} rejoins after its SIGKILL: {rejoin}")
        assert rejoin.silent == [] and rejoin.longest_double_run <= 1, rejoin
