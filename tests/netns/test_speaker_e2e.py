"""The whole product in namespaces: emulator and controller on the router, a speaker per node.

The router's kernel neighbour table must map each VIP to the owning node's MAC, and after that
speaker is SIGKILLed, to the new owner's MAC within 2 s with the shipped defaults. Everything
talks over the lab segment (192.0.2.0/24, 2001:db8::/64); nothing leaves the namespaces.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.netns.cluster import apply_text, kubectl, start_controller, start_emulator, start_vipam
from tests.netns.lab import Lab, addresses, wait_for

API_PORT = 16443
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


def test_l2_failover_through_real_speakers(lab: Lab, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    start_emulator(lab, API_PORT, kubeconfig)
    apply_text(lab, kubeconfig, tmp_path / "objects.yaml", MANIFEST)
    start_controller(lab, kubeconfig, tmp_path)
    speakers: dict[str, subprocess.Popen[Any]] = {}
    for node in lab.nodes:
        speakers[node.mac] = start_vipam(lab, node.name, [
            "speaker", "--node-name", node.name, "--kubeconfig", str(kubeconfig),
            "--namespace", "kube-system", "--announcer", "kernel", "--no-bgp",
            "--health-port", "0", "--log-format", "text",
        ], tmp_path / f"speaker-{node.name}.log")

    jsonpath = "{.status.loadBalancer.ingress[*].ip}"
    ips = wait_for(
        lambda: kubectl(lab, kubeconfig, "get", "svc", "web", "-o", f"jsonpath={jsonpath}")
        .split(), 20, "addresses on the Service",
    )
    assert len(ips) == 2
    macs = {node.mac for node in lab.nodes}
    owners = {ip: wait_for(lambda ip=ip: lab.neighbour(ip) in macs and lab.neighbour(ip), 10,
                           f"router resolves {ip} to a node") for ip in ips}
    announcing = kubectl(lab, kubeconfig, "get", "svc", "web", "-o",
                          "jsonpath={.metadata.annotations.vipam\\.io/announcing-node}")
    assert announcing, "the speaker records the announcing node"

    # kill the speaker that owns the IPv4 address; every address it had moves
    victim_mac = owners[ips[0]]
    killed = time.monotonic()
    speakers[victim_mac].send_signal(signal.SIGKILL)
    speakers[victim_mac].wait(5)
    for ip, mac in owners.items():
        if mac != victim_mac:
            continue
        new = wait_for(lambda ip=ip: (lab.neighbour(ip) or victim_mac) != victim_mac
                       and lab.neighbour(ip), 5, f"router moves {ip}")
        assert new in macs - {victim_mac}
    failover = time.monotonic() - killed
    print(f"kernel-observed L2 failover after SIGKILL: {failover:.3f}s")
    assert failover < 2.0
    # the dead speaker can no longer extend its addresses' kernel lifetime (3 s by default):
    # they vanish from its node, so it stops answering ARP/NDP for them too
    victim = next(node for node in lab.nodes if node.mac == victim_mac)
    wait_for(lambda: not set(ips) & addresses(victim.name), 5, "the dead node's VIPs expire")
