"""The whole path of a VIP on real parts, in network namespaces: one site for a test module.

    client/router .1 ── lan (bridge) ── node1 .2   node2 .3   node3 .4   ctl .5   probe .250
         BIRD 2                          speaker    speaker    speaker    etcd, kube-apiserver,
         curl loop                       kube-proxy kube-proxy kube-proxy vipam controller
                                          └ cbr0 ── pods (198.51.100.16i/28, 2001:db8:1:i::/64)

Everything is a namespace the site creates: the control plane (a real kube-apiserver v1.36 and
etcd, `tests.netns.controlplane`) in `ctl`, each node with its speaker (shipped defaults) and a
real kube-proxy, pods as namespaces on a bridge in their node running `tests.netns.podserver`,
a client that is also the BGP router, and a probe host that resolves VIPs afresh. There is no
kubelet: the site creates the Node objects (status.addresses, from which kube-proxy learns the
node's addresses and that the cluster is dual-stack) and the EndpointSlices. The processes run
with the ServiceAccount tokens of `config/rbac` (and kube-proxy with one bound to
`system:node-proxier`), so the server enforces what a cluster would.

Addresses: documentation ranges only. L2 VIPs are on the segment (192.0.2.100-119,
2001:db8::100-11f); BGP VIPs are routed (203.0.113.0/28, 2001:db8:ffff::/124).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from ccm.speaker.election import owner
from tests.netns import httploop
from tests.netns.controlplane import NamespacedApiServer, in_namespace
from tests.netns.lab import REPO, Lab, Member, run, wait_for

POD_PORT = 8080
HEALTH_PORT = 8081  # each speaker's, inside its own node namespace
SERVICE_PORT = 80
CLUSTER_CIDRS = "198.51.100.0/24,2001:db8:1::/48"
PROXY_MODES = ("iptables", "nftables")


def kube_proxy_binary(assets: Path) -> Path | None:
    """kube-proxy beside kube-apiserver (scripts/k8s-assets puts it there), or $VIPAM_KUBE_PROXY."""
    given = os.environ.get("VIPAM_KUBE_PROXY")
    path = Path(given) if given else assets / "kube-proxy"
    return path if path.exists() else None


def _service(name: str, **spec: object) -> str:
    extra = "".join(f"\n  {key}: {value}" for key, value in spec.items())
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  ports: [{{name: http, port: {SERVICE_PORT}, targetPort: {POD_PORT}}}]{extra}
"""


BASE_OBJECTS = "---".join([
    """
apiVersion: vipam.io/v1alpha1
kind: IPPool
metadata: {name: lan}
spec: {addresses: ["192.0.2.100-192.0.2.119", "2001:db8::100-2001:db8::11f"]}
---
apiVersion: vipam.io/v1alpha1
kind: L2Advertisement
metadata: {name: lan}
spec: {ipPools: [lan]}
""",
    _service("web"),
    _service("web-local", externalTrafficPolicy="Local"),
    _service("web-ranged", loadBalancerSourceRanges='["192.0.2.1/32", "2001:db8::1/128"]'),
])


@dataclass
class Pod:
    name: str
    node: Member
    ns: str
    ipv4: str
    ipv6: str


@dataclass
class Site:
    lab: Lab
    workdir: Path
    api: NamespacedApiServer
    kube_proxy: Path
    kubeconfigs: dict[str, Path] = field(default_factory=dict)
    speakers: dict[str, subprocess.Popen[Any]] = field(default_factory=dict)
    proxies: dict[str, subprocess.Popen[Any]] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)
    proxy_mode: str = ""
    vips: dict[str, list[str]] = field(default_factory=dict)  # Service -> [IPv4, IPv6]
    _starts: int = 0

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def build(cls, workdir: Path, kube_proxy: Path, nodes: int = 3) -> Site:
        lab = Lab.create(node_count=nodes, hosts={"ctl": 5, "probe": 250})
        site: Site | None = None
        try:
            api = NamespacedApiServer(workdir / "api", lab.hosts["ctl"].name,
                                      lab.hosts["ctl"].ipv4)
            site = cls(lab, workdir, api, kube_proxy)
            site._network()
            api.start()
            site._cluster()
            return site
        except BaseException:
            if site is not None:
                site.destroy()
            else:
                lab.destroy()
            raise

    @property
    def client(self) -> Member:
        return self.lab.router

    @property
    def probe(self) -> Member:
        return self.lab.hosts["probe"]

    @property
    def ctl(self) -> Member:
        return self.lab.hosts["ctl"]

    def node(self, name: str) -> Member:
        return next(node for node in self.lab.nodes if node.name == name)

    def _network(self) -> None:
        """Forwarding on the nodes (kube-proxy does not turn it on), a pod bridge per node,
        routes to the other nodes' pods, and ECMP hashing by port on the client/router."""
        for key in ("net.ipv4.fib_multipath_hash_policy", "net.ipv6.fib_multipath_hash_policy"):
            self.lab.sysctl(self.client.name, key, "1")
        for index, node in enumerate(self.lab.nodes, start=1):
            for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
                self.lab.sysctl(node.name, key, "1")
            ip = ("ip", "-n", node.name)
            run(*ip, "link", "add", "cbr0", "type", "bridge", "forward_delay", "0")
            run(*ip, "addr", "add", f"198.51.100.{16 * index + 1}/28", "dev", "cbr0")
            run(*ip, "addr", "add", f"2001:db8:1:{index}::1/64", "dev", "cbr0", "nodad")
            run(*ip, "link", "set", "cbr0", "up")
            self._routes(index, node)

    def _routes(self, index: int, node: Member) -> None:
        """Routes from ``node`` to the other nodes' pods (``replace``: also to restore them)."""
        for other_index, other in enumerate(self.lab.nodes, start=1):
            if other is node:
                continue
            run("ip", "-n", node.name, "route", "replace", f"198.51.100.{16 * other_index}/28",
                "via", other.ipv4)
            run("ip", "-n", node.name, "-6", "route", "replace",
                f"2001:db8:1:{other_index}::/64", "via", other.ipv6)

    def unplug(self, node: Member) -> None:
        run("ip", "-n", node.name, "link", "set", "eth0", "down")

    def plug(self, node: Member) -> None:
        """Link up, and what a node's network configuration restores with it: the kernel drops
        IPv6 addresses and the routes through a link that goes down."""
        run("ip", "-n", node.name, "link", "set", "eth0", "up")
        run("ip", "-n", node.name, "addr", "replace", f"{node.ipv6}/64", "dev", "eth0", "nodad")
        self._routes(self.lab.nodes.index(node) + 1, node)

    def restore(self) -> None:
        """After a scenario, whatever it did: every link up, every speaker running and ready."""
        for node in self.lab.nodes:
            if json.loads(run("ip", "-j", "-n", node.name, "link", "show", "eth0").stdout)[0][
                    "operstate"] != "UP":
                self.plug(node)
            if node.name not in self.speakers:
                self.start_speaker(node)
        self.wait_speakers_ready()

    def _cluster(self) -> None:
        """config/ (CRDs, RBAC, ServiceAccounts), kube-proxy's identity, tokens, Node objects."""
        self.api.kubectl("apply", "-k", str(REPO / "config"))
        self.api.kubectl("wait", "--for", "condition=Established", "--timeout", "60s",
                         "crd", "--all")
        self.apply("""
apiVersion: v1
kind: ServiceAccount
metadata: {name: kube-proxy, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: vipam-test-kube-proxy}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node-proxier}
subjects: [{kind: ServiceAccount, name: kube-proxy, namespace: kube-system}]
""")
        self.kubeconfigs["admin"] = self.api.kubeconfig(self.workdir / "admin.kubeconfig")
        for who, account in (("controller", "vipam-controller"), ("speaker", "vipam-speaker"),
                             ("proxy", "kube-proxy")):
            token = self.api.create_token(account, "kube-system")
            self.kubeconfigs[who] = self.api.kubeconfig(
                self.workdir / f"{who}.kubeconfig", token, namespace="kube-system")
        for node in self.lab.nodes:
            self.api.json("POST", "/api/v1/nodes", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name}},
                "status": {"addresses": [
                    {"type": "InternalIP", "address": node.ipv4},
                    {"type": "InternalIP", "address": node.ipv6},
                    {"type": "Hostname", "address": node.name},
                ]},
            })

    def populate(self) -> None:
        """The controller, a speaker and a kube-proxy (iptables mode) per node, three pods and
        the Services every scenario uses:
        ``web`` (Cluster: pods on node1 and node2), ``web-local`` (Local: a pod on node3) and
        ``web-ranged`` (Cluster, loadBalancerSourceRanges: the client only)."""
        self.start_controller()
        for node in self.lab.nodes:
            self.start_speaker(node)
        first, second, third = self.lab.nodes[:3]
        web = [self.add_pod("web-a", first), self.add_pod("web-b", second)]
        local = [self.add_pod("local-a", third)]
        self.apply(BASE_OBJECTS)
        for name, pods in (("web", web), ("web-ranged", web), ("web-local", local)):
            self.set_endpoints(name, pods)
        for name in ("web", "web-ranged", "web-local"):
            self.vips[name] = self.wait_service_ips(name, 2, timeout=60)
        self.use_proxies(PROXY_MODES[0])
        self.wait_speakers_ready()

    # -- objects ---------------------------------------------------------------------------------
    def apply(self, manifest: str) -> None:
        self.api.kubectl("apply", "-f", "-", input=manifest)

    def get(self, path: str) -> Any:
        return self.api.json("GET", path)

    def service_ips(self, name: str, namespace: str = "default") -> list[str]:
        svc = self.get(f"/api/v1/namespaces/{namespace}/services/{name}")
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        return [entry["ip"] for entry in ingress if entry.get("ip")]

    def wait_service_ips(self, name: str, count: int, timeout: float = 20) -> list[str]:
        def found() -> list[str] | None:
            ips = self.service_ips(name)
            return ips if len(ips) == count else None

        return wait_for(found, timeout, f"{count} address(es) on Service {name}")

    def set_endpoints(self, service: str, pods: list[Pod], namespace: str = "default") -> None:
        """The EndpointSlices (one per family) a controller-manager would write: ``pods``."""
        for family, attribute in (("IPv4", "ipv4"), ("IPv6", "ipv6")):
            name = f"{service}-{family.lower()}"
            body = {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {"kubernetes.io/service-name": service,
                                        "endpointslice.kubernetes.io/managed-by": "vipam-test"}},
                "addressType": family,
                "ports": [{"name": "http", "port": POD_PORT, "protocol": "TCP"}],
                "endpoints": [
                    {"addresses": [getattr(pod, attribute)], "nodeName": pod.node.name,
                     "conditions": {"ready": True, "serving": True, "terminating": False}}
                    for pod in pods
                ],
            }
            path = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
            status, _ = self.api.request("PUT", f"{path}/{name}", body)
            if status == 404:
                self.api.json("POST", path, body)
            elif status >= 300:
                raise RuntimeError(f"EndpointSlice {name}: {status}")

    # -- processes -------------------------------------------------------------------------------
    def _log(self, name: str) -> Path:
        self._starts += 1
        return self.workdir / f"{name}-{self._starts}.log"

    def _spawn(self, ns: str, argv: list[str], log: str) -> subprocess.Popen[Any]:
        with self._log(log).open("wb") as handle:
            return self.lab.spawn(ns, argv, stdout=handle, stderr=handle, cwd=REPO)

    def start_controller(self) -> None:
        self._spawn(self.ctl.name, [
            sys.executable, "-m", "ccm", "controller",
            "--kubeconfig", str(self.kubeconfigs["controller"]), "--namespace", "kube-system",
            "--health-port", "0", "--log-format", "text",
        ], "controller")

    def start_speaker(self, node: Member) -> None:
        self.speakers[node.name] = self._spawn(node.name, [
            sys.executable, "-m", "ccm", "speaker", "--node-name", node.name,
            "--kubeconfig", str(self.kubeconfigs["speaker"]), "--namespace", "kube-system",
            "--announcer", "kernel", "--bgp-router-id", node.ipv4,
            "--bgp-workdir", str(self.workdir / f"exabgp-{node.name}"),
            "--health-host", "127.0.0.1", "--health-port", str(HEALTH_PORT),
            "--log-format", "text",
        ], f"speaker-{node.name}")

    def speaker_timeline(self, ips: list[str], wall_started: float, since: float = 0.0) -> str:
        """What the speakers logged about ``ips``, their stops and who they saw live, on a
        probe's clock (``Probe.wall_started``), from ``since`` on: the story behind a verdict."""
        entries: list[tuple[float, str]] = []
        for path in self.workdir.glob("speaker-*.log"):
            who = path.stem.removeprefix("speaker-").rsplit("-", 1)[0]
            for line in path.read_text(errors="replace").splitlines():
                stamp, _, rest = line[:23], line[23:24], line[24:]
                if not (any(ip in rest for ip in ips) or "stopping" in rest
                        or "live speakers" in rest):
                    continue
                try:
                    at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
                except ValueError:
                    continue
                if at - wall_started >= since:
                    entries.append((at - wall_started, f"{who}: {rest}"))
        return "\n".join(f"    {at:7.3f} {text}" for at, text in sorted(entries))

    def speaker_ready(self, node: Member) -> bool:
        """The speaker's /readyz inside its node: caches synced and its membership settled,
        what a DaemonSet rollout waits for before it moves on to the next node."""
        def readyz() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{HEALTH_PORT}/readyz",
                                            timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        return node.name in self.speakers and bool(in_namespace(node.name, readyz))

    def wait_speakers_ready(self, timeout: float = 60) -> None:
        for node in self.lab.nodes:
            if node.name in self.speakers:
                wait_for(partial(self.speaker_ready, node), timeout,
                         f"the speaker on {node.name} to be ready", poll=0.1)

    def stop_speaker(self, node: Member, sig: signal.Signals = signal.SIGTERM) -> None:
        process = self.speakers.pop(node.name)
        process.send_signal(sig)
        process.wait(timeout=15)

    def start_proxies(self, mode: str) -> None:
        """A kube-proxy per node in ``mode``; rules for existing Services within seconds."""
        self.proxy_mode = mode
        for node in self.lab.nodes:
            config = self.workdir / f"kube-proxy-{node.name}.yaml"
            config.write_text(yaml.safe_dump({
                "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                "kind": "KubeProxyConfiguration",
                "clientConnection": {"kubeconfig": str(self.kubeconfigs["proxy"])},
                "hostnameOverride": node.name,
                "mode": mode,
                "clusterCIDR": CLUSTER_CIDRS,
                "detectLocalMode": "ClusterCIDR",
                # kube-proxy would otherwise size the host-wide conntrack table
                "conntrack": {"maxPerCore": 0, "min": 0},
                "iptables": {"minSyncPeriod": "1s", "syncPeriod": "30s"},
                "nftables": {"minSyncPeriod": "1s", "syncPeriod": "30s"},
                "healthzBindAddress": "127.0.0.1:10256",
                "metricsBindAddress": "127.0.0.1:10249",
            }))
            self.proxies[node.name] = self._spawn(
                node.name, [str(self.kube_proxy), "--config", str(config), "--v", "1"],
                f"kube-proxy-{mode}-{node.name}")

    def use_proxies(self, mode: str) -> None:
        """kube-proxy in ``mode`` on every node (switching from another mode cleans up first)."""
        if self.proxy_mode != mode:
            self.stop_proxies()
            self.start_proxies(mode)

    def stop_proxies(self) -> None:
        """Stop every kube-proxy; a stopped one leaves its rules, so clean them up as well."""
        for name, process in self.proxies.items():
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            run("ip", "netns", "exec", name, str(self.kube_proxy), "--cleanup", check=False)
        self.proxies.clear()
        self.proxy_mode = ""

    def add_pod(self, name: str, node: Member) -> Pod:
        index = self.lab.nodes.index(node) + 1
        host = 2 + sum(1 for pod in self.pods.values() if pod.node is node)
        pod = Pod(name, node, f"{self.lab.prefix}-{name}", f"198.51.100.{16 * index + host}",
                  f"2001:db8:1:{index}::{host:x}")
        self.lab.add_namespace(pod.ns)
        port = f"v{name}"[:15]
        run("ip", "-n", node.name, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", pod.ns)
        run("ip", "-n", node.name, "link", "set", port, "master", "cbr0", "up")
        ip = ("ip", "-n", pod.ns)
        run(*ip, "addr", "add", f"{pod.ipv4}/28", "dev", "eth0")
        run(*ip, "addr", "add", f"{pod.ipv6}/64", "dev", "eth0", "nodad")
        run(*ip, "link", "set", "eth0", "up")
        run(*ip, "route", "add", "default", "via", f"198.51.100.{16 * index + 1}")
        run(*ip, "-6", "route", "add", "default", "via", f"2001:db8:1:{index}::1")
        server = self.lab.spawn(pod.ns, [sys.executable, "-m", "tests.netns.podserver", name,
                                         str(POD_PORT)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO,
                                text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        self.pods[name] = pod
        return pod

    # -- looking -----------------------------------------------------------------------------------
    def owner_of(self, ip: str, live: list[Member] | None = None) -> Member:
        """The node the rendezvous election gives an L2 ``ip`` among ``live`` (default: the
        nodes whose speaker runs); ``externalTrafficPolicy: Cluster`` only."""
        nodes = live if live is not None else [
            node for node in self.lab.nodes if node.name in self.speakers]
        chosen = owner(ip, [node.name for node in nodes])
        assert chosen is not None, f"no node for {ip}"
        return self.node(chosen)

    def ingress_node(self, seen: str) -> Member | None:
        """The node a request entered through, from the client address a Cluster-policy pod
        saw: kube-proxy masquerades to the node's address (or, for a pod on that same node,
        to its bridge address)."""
        for index, node in enumerate(self.lab.nodes, start=1):
            if seen in {node.ipv4, node.ipv6, f"198.51.100.{16 * index + 1}",
                        f"2001:db8:1:{index}::1"}:
                return node
        return None

    def get_once(self, ns: str, ip: str, timeout: float = 1.0) -> str | None:
        """One HTTP request from ``ns`` to ``ip``:80; the answer (POD CLIENT-IP) or None."""
        async def fetch() -> str:
            return await httploop.get(ip, SERVICE_PORT, timeout)

        try:
            answer: str = in_namespace(ns, asyncio.run, fetch())
            return answer
        except (OSError, TimeoutError, ConnectionError):
            return None

    def rules(self, node: Member, vip: str) -> list[str]:
        """kube-proxy's rules on ``node`` that name ``vip`` (iptables-save or nft), with the
        source-range chain they jump to (iptables names the VIP only in the jump)."""
        if self.proxy_mode == "nftables":
            dump = run("ip", "netns", "exec", node.name, "nft", "list", "ruleset").stdout
        else:
            dump = "\n".join(
                run("ip", "netns", "exec", node.name, tool).stdout
                for tool in ("iptables-save", "ip6tables-save")
            )
        lines = [line.strip() for line in dump.splitlines()]
        found = [line for line in lines if vip in line]
        chains = {word for line in found for word in line.split() if word.startswith("KUBE-FW-")}
        found += [line for line in lines
                  if any(line.startswith(f"-A {chain} ") for chain in chains)]
        return found

    # -- cleaning up -------------------------------------------------------------------------------
    def destroy(self) -> set[int]:
        """Speakers first (clean stops), kube-proxies with --cleanup, then the control plane,
        then every process and namespace the lab knows of; returns stray pids (a leak)."""
        for name in list(self.speakers):
            with contextlib.suppress(Exception):
                self.stop_speaker(self.node(name))
        with contextlib.suppress(Exception):
            self.stop_proxies()
        self.api.stop()
        return self.lab.destroy()


def wait_rules(site: Site, vip: str, timeout: float = 10) -> dict[str, list[str]]:
    """Every node's kube-proxy rules for ``vip``, once each node has some."""
    found: dict[str, list[str]] = {}

    def ready() -> bool:
        for node in site.lab.nodes:
            found[node.name] = site.rules(node, vip)
        return all(found.values())

    wait_for(ready, timeout, f"kube-proxy rules for {vip} on every node")
    return found

def next_hops(site: Site, ip: str) -> set[str]:
    """The client/router's kernel next hops for ``ip`` (an ECMP route has several)."""
    family = "-6" if ":" in ip else "-4"
    routes = json.loads(run("ip", "-j", family, "-n", site.client.name, "route", "show", ip)
                        .stdout or "[]")
    hops: set[str] = set()
    for route in routes:
        hops.update(hop["gateway"] for hop in route.get("nexthops", []) if "gateway" in hop)
        if "gateway" in route:
            hops.add(route["gateway"])
    return hops


# The routed pool, its BGPAdvertisement, one BGPPeer per family (the client, which routes,
# runs BIRD) and a dual-stack Service from the pool; fill with str.format(v4, v6, asn, hold).
BGP_OBJECTS = """
apiVersion: vipam.io/v1alpha1
kind: IPPool
metadata: {{name: routed}}
spec: {{addresses: ["203.0.113.0/28", "2001:db8:ffff::/124"], autoAssign: false}}
---
apiVersion: vipam.io/v1alpha1
kind: BGPAdvertisement
metadata: {{name: routed}}
spec: {{ipPools: [routed]}}
---
apiVersion: vipam.io/v1alpha1
kind: BGPPeer
metadata: {{name: router-v4}}
spec: {{address: "{v4}", asn: {asn}, localASN: {asn}, holdTime: {hold}s}}
---
apiVersion: vipam.io/v1alpha1
kind: BGPPeer
metadata: {{name: router-v6}}
spec: {{address: "{v6}", asn: {asn}, localASN: {asn}, holdTime: {hold}s}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-bgp, namespace: default, annotations: {{vipam.io/pool: routed}}}}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"""
