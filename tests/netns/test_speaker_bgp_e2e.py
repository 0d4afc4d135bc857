"""BGP end to end: controller and emulator on the router, the speaker on a node, BIRD peering.

BIRD must receive each VIP's /32 and /128 with the advertisement's communities and local
preference over sessions of the route's own family, lose a route when its Service goes, and lose
every route when the speaker stops.
"""

from __future__ import annotations

import base64
import signal
from pathlib import Path

from tests.netns.bird import Bird, BirdNeighbor
from tests.netns.cluster import apply_text, kubectl, start_controller, start_emulator, start_vipam
from tests.netns.lab import Lab, wait_for

API_PORT = 16444
ASN = 64512
PASSWORD = "vipam-test"


def manifest(lab: Lab) -> str:
    node = lab.nodes[0]
    secret = base64.b64encode(PASSWORD.encode()).decode()
    return f"""
apiVersion: v1
kind: Namespace
metadata: {{name: kube-system}}
---
apiVersion: v1
kind: Secret
metadata: {{name: bgp-auth, namespace: kube-system}}
data: {{password: {secret}}}
---
apiVersion: vipam.io/v1alpha1
kind: IPPool
metadata: {{name: routed}}
spec:
  addresses: ["203.0.113.10-203.0.113.19", "2001:db8:1::10-2001:db8:1::19"]
---
apiVersion: vipam.io/v1alpha1
kind: BGPPeer
metadata: {{name: router-v4}}
spec:
  address: {lab.router.ipv4}
  asn: {ASN}
  localASN: {ASN}
  holdTime: 9s
  sourceAddress: {node.ipv4}
  passwordSecretRef: {{name: bgp-auth, namespace: kube-system, key: password}}
---
apiVersion: vipam.io/v1alpha1
kind: BGPPeer
metadata: {{name: router-v6}}
spec:
  address: "{lab.router.ipv6}"
  asn: {ASN}
  localASN: {ASN}
  holdTime: 9s
  sourceAddress: "{node.ipv6}"
  passwordSecretRef: {{name: bgp-auth, namespace: kube-system, key: password}}
---
apiVersion: vipam.io/v1alpha1
kind: BGPAdvertisement
metadata: {{name: routed}}
spec:
  ipPools: [routed]
  communities: ["64512:100"]
  localPref: 200
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  ports: [{{name: http, port: 80}}]
"""


def test_bgp_routes_follow_services_and_the_speaker(bgp_lab: Lab, tmp_path: Path) -> None:
    lab = bgp_lab
    node = lab.nodes[0]
    (tmp_path / "bird").mkdir()
    bird = Bird(lab, tmp_path / "bird", ASN, [
        BirdNeighbor("v4", node, ASN), BirdNeighbor("v6", node, ASN, over_ipv6=True),
    ], PASSWORD)
    kubeconfig = tmp_path / "kubeconfig"
    start_emulator(lab, API_PORT, kubeconfig)
    apply_text(lab, kubeconfig, tmp_path / "objects.yaml", manifest(lab))
    start_controller(lab, kubeconfig, tmp_path)
    speaker = start_vipam(lab, node.name, [
        "speaker", "--node-name", node.name, "--kubeconfig", str(kubeconfig),
        "--namespace", "kube-system", "--announcer", "log", "--bgp-router-id", node.ipv4,
        "--bgp-workdir", str(tmp_path / "exabgp"), "--health-port", "0", "--log-format", "text",
    ], tmp_path / "speaker.log")

    wanted = {"203.0.113.10/32", "2001:db8:1::10/128"}
    wait_for(lambda: set(bird.bgp_routes()) == wanted, 30, "both VIP routes at BIRD")
    routes = bird.bgp_routes()
    for prefix in wanted:
        assert routes[prefix]["BGP.local_pref"] == "200"
        assert routes[prefix]["BGP.community"] == "(64512,100)"
    assert routes["203.0.113.10/32"]["BGP.next_hop"] == node.ipv4
    assert routes["2001:db8:1::10/128"]["BGP.next_hop"].startswith(node.ipv6)

    kubectl(lab, kubeconfig, "delete", "svc", "web")
    wait_for(lambda: not bird.bgp_routes(), 15, "routes withdrawn with the Service")

    apply_text(lab, kubeconfig, tmp_path / "second.yaml",
               "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: default}\n"
               "spec: {type: LoadBalancer, ports: [{name: http, port: 443}]}\n")
    wait_for(lambda: bool(bird.bgp_routes()), 15, "route for the second Service")
    speaker.send_signal(signal.SIGTERM)
    speaker.wait(15)
    wait_for(lambda: not bird.bgp_routes(), 10, "every route gone after the speaker stops")
