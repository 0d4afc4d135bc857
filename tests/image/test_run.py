"""The image against a real kube-apiserver, configured in-cluster, as the manifests run it.

The controller container: host network (the API server listens on loopback), its own
ServiceAccount token, CA and namespace mounted where in-cluster configuration reads them, plus
KUBERNETES_SERVICE_HOST/PORT, and the Deployment's securityContext. A Service of type
LoadBalancer must get an address from a pool.

The speaker container: inside a network namespace this test creates (a node on a lab segment,
192.0.2.0/24, with a router namespace as its neighbour), with the DaemonSet's securityContext
(root, only NET_ADMIN and NET_RAW). It reaches the API server through a byte relay (a TCP port
inside the namespace, a Unix socket across, devkit.relay). It must renew its Lease, put the
address on its interface, and the router must learn it (gratuitous ARP); on SIGTERM it
withdraws the address and exits 0.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from devkit.apiserver import ApiServer, free_port
from devkit.relay import unix_to_tcp
from tests.image.containers import (
    REPO,
    Containers,
    http_status,
    in_cluster_flags,
    podman,
    security_flags,
    service_account_dir,
    wait_until,
)
from tests.netns.lab import Lab, addresses, namespaces
from tests.prereq import require
from tests.realkube import RealCluster

pytestmark = [pytest.mark.image, pytest.mark.slow]

NAMESPACE = "kube-system"


def create(server: ApiServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(server.json("POST", path, body))


def load_balancer(server: ApiServer, namespace: str, name: str) -> None:
    create(server, f"/api/v1/namespaces/{namespace}/services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80}]},
    })


def pool(server: ApiServer, name: str, addresses: list[str], l2: bool = False) -> None:
    create(server, "/apis/vipam.io/v1alpha1/ippools", {
        "apiVersion": "vipam.io/v1alpha1", "kind": "IPPool",
        "metadata": {"name": name}, "spec": {"addresses": addresses},
    })
    if l2:
        create(server, "/apis/vipam.io/v1alpha1/l2advertisements", {
            "apiVersion": "vipam.io/v1alpha1", "kind": "L2Advertisement",
            "metadata": {"name": name}, "spec": {"ipPools": [name]},
        })


def ingress(cluster: RealCluster, namespace: str, name: str) -> list[str]:
    service = cluster.api.get_object("services", namespace, name) or {}
    return [entry["ip"] for entry in
            service.get("status", {}).get("loadBalancer", {}).get("ingress") or []]


def start_controller(containers: Containers, cluster: RealCluster, token: str,
                     workdir: Path) -> tuple[str, int]:
    """The controller image as the Deployment runs it; returns (container id, health port)."""
    server = cluster.server
    sa = service_account_dir(workdir / "controller-sa", token, server.ca_file, NAMESPACE)
    health = free_port()
    container = containers.start(
        ["--network", "host", *security_flags("controller/deployment.yaml"),
         *in_cluster_flags(sa, "127.0.0.1", server.port),
         "--env", f"POD_NAMESPACE={NAMESPACE}", "--env", "POD_NAME=vipam-controller-image"],
        ["controller", "--health-host", "127.0.0.1", "--health-port", str(health),
         "--log-format", "text"],
        prefix="vipam-controller",
    )
    return container, health


def test_controller_image_gives_a_service_its_address(
    containers: Containers, real_cluster: RealCluster, service_account_tokens: Any, tmp_path: Path
) -> None:
    server, tokens = real_cluster.server, service_account_tokens
    pool(server, "image-pool", ["203.0.113.16/28"])
    namespace = real_cluster.namespace("image")
    load_balancer(server, namespace, "web")
    container, health = start_controller(containers, real_cluster, tokens.controller, tmp_path)

    def ready() -> bool:
        assert containers.running(container), containers.logs(container)
        return http_status(f"http://127.0.0.1:{health}/readyz")[0] == 200

    wait_until(ready, 60, "the controller's /readyz")
    (address,) = wait_until(lambda: ingress(real_cluster, namespace, "web"), 30,
                            "an address on the Service")
    assert address.startswith("203.0.113.") and 16 <= int(address.split(".")[-1]) < 32
    service = real_cluster.api.get_object("services", namespace, "web") or {}
    assert service["metadata"]["annotations"]["vipam.io/allocated-from"] == "image-pool"
    inspected = containers.inspect(container)
    assert inspected["Config"]["User"] == "65532:65532"
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True
    assert inspected["EffectiveCaps"] in (None, [])
    assert containers.stop(container, timeout=30) == 0, containers.logs(container)
    logs = containers.logs(container)
    assert "Traceback" not in logs, logs


@contextmanager
def api_relay(lab: Lab, ns: str, api_port: int, workdir: Path) -> Iterator[int]:
    """The API server's port, reachable on 127.0.0.1 inside `ns`: a relay process in the
    namespace forwards to a Unix socket, which a thread here forwards to the real port."""
    socket_path = workdir / "api.sock"
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(unix_to_tcp(str(socket_path), "127.0.0.1", api_port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    inner = lab.spawn(ns, [sys.executable, "-m", "devkit.relay", f"127.0.0.1:{api_port}",
                           str(socket_path)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert inner.stdout is not None and inner.stdout.readline().startswith("relay")
        yield api_port
    finally:
        inner.terminate()
        inner.wait(10)
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def one_node_lab() -> Iterator[Lab]:
    require(subprocess.run(["ip", "-V"], capture_output=True, check=False).returncode == 0,
            "the speaker test needs iproute2")
    lab = Lab.create(node_count=1)
    try:
        yield lab
    finally:
        strays = lab.destroy()
        assert not strays, f"processes outlived the test in its namespaces: {strays}"
        assert not set(lab.all_namespaces()) & namespaces(), "namespaces left behind"


def lease_renewals(cluster: RealCluster, name: str) -> str | None:
    lease = cluster.api.get_object("leases", NAMESPACE, name) or {}
    renew: str | None = lease.get("spec", {}).get("renewTime")
    return renew


def test_speaker_image_announces_inside_a_network_namespace(
    containers: Containers, real_cluster: RealCluster, service_account_tokens: Any, tmp_path: Path
) -> None:
    server, tokens = real_cluster.server, service_account_tokens
    pool(server, "image-lan", ["192.0.2.100-192.0.2.109"], l2=True)
    namespace = real_cluster.namespace("image")
    load_balancer(server, namespace, "web")
    controller, _ = start_controller(containers, real_cluster, tokens.controller, tmp_path)
    (address,) = wait_until(lambda: ingress(real_cluster, namespace, "web"), 60,
                            "an address on the Service")
    with one_node_lab() as lab, api_relay(lab, lab.nodes[0].name, server.port, tmp_path) as port:
        node = lab.nodes[0]
        sa = service_account_dir(tmp_path / "speaker-sa", tokens.speaker, server.ca_file,
                                 NAMESPACE)
        speaker = containers.start(
            ["--network", f"ns:/run/netns/{node.name}",
             *security_flags("speaker/daemonset.yaml"), *in_cluster_flags(sa, "127.0.0.1", port),
             "--env", f"NODE_NAME={node.name}", "--env", f"POD_NAMESPACE={NAMESPACE}",
             "--env", "POD_NAME=vipam-speaker-image"],
            ["speaker", "--log-format", "text"],
            prefix="vipam-speaker",
        )
        try:
            def announced() -> bool:
                assert containers.running(speaker), containers.logs(speaker)
                return address in addresses(node.name)

            wait_until(announced, 30, f"{address} on {node.name}'s interface")
            wait_until(lambda: lab.neighbour(address) == node.mac, 10,
                       f"the router resolving {address} to {node.mac}")
            lease = f"vipam-speaker-{node.name}"
            first = wait_until(lambda: lease_renewals(real_cluster, lease), 10, "the Lease")
            wait_until(lambda: lease_renewals(real_cluster, lease) not in (None, first), 5,
                       "a Lease renewal")
            status = podman("exec", speaker, "cat", "/proc/1/status").stdout
            caps = {line.split(":")[0]: int(line.split()[1], 16)
                    for line in status.splitlines() if line.startswith("Cap")}
            net_admin_and_raw = (1 << 12) | (1 << 13)
            assert caps["CapEff"] == caps["CapBnd"] == net_admin_and_raw, caps
            inspected = containers.inspect(speaker)
            assert inspected["Config"]["User"] == "0:0"
            assert inspected["HostConfig"]["ReadonlyRootfs"] is True
            assert containers.stop(speaker) == 0, containers.logs(speaker)
            assert address not in addresses(node.name), "withdrawn on a clean stop"
            logs = containers.logs(speaker)
            assert "Traceback" not in logs, logs
        finally:
            # before the namespaces go: a container left inside would be a stray
            containers.remove(speaker)
    assert containers.stop(controller, timeout=30) == 0, containers.logs(controller)
