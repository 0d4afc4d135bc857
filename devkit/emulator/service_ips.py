"""ClusterIPs and NodePorts for Services, allocated as kube-apiserver allocates them.

The emulator plays a dual-stack cluster with the service ranges `devkit.apiserver` gives the
real server (10.96.0.0/16 and fd00:10:96::/112; IPv4 first, so single-stack Services are
IPv4 unless they ask) and the default NodePort range 30000-32767. Like the real server it
holds the `default/kubernetes` Service (10.96.0.1, port 443), so `kubectl get svc -A` and a
controller's informer see what they see on a cluster. Addresses are handed out lowest-free
first (the real server picks at random): nothing may depend on which one a Service gets.
"""

from __future__ import annotations

import ipaddress
from typing import Any

SERVICE_RANGES = {
    "IPv4": ipaddress.ip_network("10.96.0.0/16"),
    "IPv6": ipaddress.ip_network("fd00:10:96::/112"),
}
NODE_PORTS = range(30000, 32768)
OTHER_FAMILY = {"IPv4": "IPv6", "IPv6": "IPv4"}

KUBERNETES_SERVICE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "kubernetes", "namespace": "default",
                 "labels": {"component": "apiserver", "provider": "kubernetes"}},
    "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
             "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
}


def family_of(address: str) -> str | None:
    try:
        return "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"
    except ValueError:
        return None


def default_families(spec: dict[str, Any]) -> None:
    """ipFamilyPolicy and ipFamilies: SingleStack unless asked (headless Services without a
    selector are RequireDualStack), families from the ClusterIPs asked for, else IPv4 first;
    a dual-stack policy adds the other family after those given."""
    headless = spec.get("clusterIP") == "None"
    policy = spec.setdefault(
        "ipFamilyPolicy",
        "RequireDualStack" if headless and not spec.get("selector") else "SingleStack")
    families = [f for f in spec.get("ipFamilies") or [] if f in OTHER_FAMILY]
    if not families:
        asked = [family_of(ip) for ip in spec.get("clusterIPs") or [spec.get("clusterIP", "")]]
        families = [f for f in asked if f is not None] or ["IPv4"]
    if policy != "SingleStack" and len(families) == 1:
        families.append(OTHER_FAMILY[families[0]])
    spec["ipFamilies"] = families


class ServiceAddresses:
    """What stored Services hold (ClusterIPs, NodePorts), kept current by the store's
    commits, so that allocating is a cursor step rather than a scan of every Service."""

    def __init__(self) -> None:
        self.ips: set[str] = set()
        self.ports: set[int] = set()
        self._next_ip = {family: 2 for family in SERVICE_RANGES}  # .1 is the kubernetes one
        self._next_port = NODE_PORTS.start

    def note(self, new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        """A committed change: release what `old` held, take what `new` holds."""
        for service, held in ((old, False), (new, True)):
            ips, ports = _held(service)
            if held:
                self.ips |= ips
                self.ports |= ports
            else:
                self.ips -= ips
                self.ports -= ports

    def allocate(self, service: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Fill clusterIP(s), nodePorts and healthCheckNodePort in place; `old` is the stored
        version on an update (what it held is kept)."""
        spec = service.setdefault("spec", {})
        kind = spec.get("type", "ClusterIP")
        if kind == "ExternalName":
            return
        self._cluster_ips(spec)
        old_spec = (old or {}).get("spec") or {}
        wants_node_ports = kind == "NodePort" or (
            kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True))
        mine = _held(old)[1]
        if wants_node_ports:
            before = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                      for p in old_spec.get("ports") or [] if isinstance(p, dict)}
            for port in spec.get("ports") or []:
                if isinstance(port, dict) and not port.get("nodePort"):
                    kept = before.get((port.get("port"), port.get("protocol", "TCP")))
                    port["nodePort"] = kept or self._free_port(mine)
        if kind == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local":
            if not spec.get("healthCheckNodePort"):
                spec["healthCheckNodePort"] = (old_spec.get("healthCheckNodePort")
                                               or self._free_port(mine))
        else:
            spec.pop("healthCheckNodePort", None)

    def _cluster_ips(self, spec: dict[str, Any]) -> None:
        if spec.get("clusterIP") == "None":
            spec["clusterIPs"] = ["None"]
            return
        given = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip]
        addresses = []
        for index, family in enumerate(spec.get("ipFamilies") or ["IPv4"]):
            if index < len(given):
                addresses.append(str(given[index]))
                continue
            network = SERVICE_RANGES[family]
            for _ in range(network.num_addresses):
                offset = self._next_ip[family]
                self._next_ip[family] = offset + 1 if offset + 2 < network.num_addresses else 2
                text = str(network.network_address + offset)
                if text not in self.ips:
                    addresses.append(text)
                    break
            else:
                raise ValueError(f"the {family} service range is full")
        spec["clusterIPs"] = addresses
        spec["clusterIP"] = addresses[0]

    def _free_port(self, mine: set[int]) -> int:
        for _ in NODE_PORTS:
            port = self._next_port
            self._next_port = port + 1 if port + 1 < NODE_PORTS.stop else NODE_PORTS.start
            if port not in self.ports and port not in mine:
                mine.add(port)
                return port
        raise ValueError("the NodePort range is full")


def _held(service: dict[str, Any] | None) -> tuple[set[str], set[int]]:
    spec = (service or {}).get("spec") or {}
    ips = {ip for ip in spec.get("clusterIPs") or [] if ip != "None"}
    ports = {p["nodePort"] for p in spec.get("ports") or []
             if isinstance(p, dict) and p.get("nodePort")}
    if spec.get("healthCheckNodePort"):
        ports.add(spec["healthCheckNodePort"])
    return ips, ports
