"""`vipam migrate --kubeconfig`: the old objects read live from a real API server.

MetalLB itself is not installed: the test installs minimal CRDs for two of its kinds (an
IPAddressPool served in v1beta1, a BGPPeer served in v1beta1 and stored in v1beta2, the way
MetalLB serves them) so that the read goes through the server's real discovery, versions and
RBAC. Every other MetalLB and Cilium kind has no CRD here and must simply read as empty.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.realkube import RealCluster

ROOT = Path(__file__).resolve().parents[3]
JSON = dict[str, Any]


def crd(plural: str, kind: str, versions: list[str], storage: str) -> JSON:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.metallb.io"},
        "spec": {
            "group": "metallb.io", "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "listKind": f"{kind}List"},
            "versions": [{
                "name": version, "served": True, "storage": version == storage,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}},
            } for version in versions],
        },
    }


CRDS = [crd("ipaddresspools", "IPAddressPool", ["v1beta1"], "v1beta1"),
        crd("bgppeers", "BGPPeer", ["v1beta1", "v1beta2"], "v1beta2")]


@pytest.fixture
def metallb_crds(real_cluster: RealCluster, tmp_path: Path) -> Iterator[str]:
    """The two CRDs and a namespace for MetalLB's objects; the CRDs (and so their objects)
    are deleted afterwards."""
    path = tmp_path / "crds.yaml"
    path.write_text(yaml.safe_dump_all(CRDS))
    server = real_cluster.server
    server.kubectl("apply", "-f", str(path))
    try:
        server.kubectl("wait", "--for", "condition=Established", "--timeout", "60s",
                       *[f"crd/{c['metadata']['name']}" for c in CRDS])
        yield real_cluster.namespace("metallb-system")
    finally:
        server.kubectl("delete", "--wait=true", "-f", str(path))


def apply(cluster: RealCluster, objects: list[JSON], tmp_path: Path) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    cluster.server.kubectl("apply", "-f", str(path))


def shown_service(cluster: RealCluster, namespace: str, name: str, ip: str) -> None:
    """A Service as MetalLB left it, written with the admin's plain requests."""
    server = cluster.server
    created = server.json("POST", f"/api/v1/namespaces/{namespace}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
    })
    created["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
    server.json("PUT", f"/api/v1/namespaces/{namespace}/services/{name}/status", created)


def migrate(kubeconfig: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The real command line, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "ccm", "migrate", "--kubeconfig", str(kubeconfig), *extra],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, timeout=120,
        check=False,
    )


def test_live_read_converts_what_the_cluster_holds(
    real_cluster: RealCluster, metallb_crds: str, tmp_path: Path
) -> None:
    namespace = metallb_crds
    apply(real_cluster, [
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
         "metadata": {"name": "lan", "namespace": namespace, "labels": {"zone": "a"}},
         "spec": {"addresses": ["192.0.2.0/26"], "avoidBuggyIPs": True}},
        {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
         "metadata": {"name": "tor", "namespace": namespace},
         "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "198.51.100.254",
                  "holdTime": "9s"}},
    ], tmp_path)
    apps = real_cluster.namespace("apps")
    shown_service(real_cluster, apps, "web", "192.0.2.5")

    result = migrate(real_cluster.admin_kubeconfig)
    assert result.returncode == 0, result.stderr
    objects = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(result.stdout)
               if o}
    assert set(objects) == {("IPPool", "lan"), ("BGPPeer", "tor")}
    assert objects[("IPPool", "lan")]["spec"] == {"addresses": ["192.0.2.0/26"],
                                                  "avoidBuggyIPs": True}
    assert objects[("IPPool", "lan")]["metadata"]["labels"] == {"zone": "a"}
    assert objects[("IPPool", "lan")]["metadata"]["annotations"]["vipam.io/migrated-from"] == (
        f"metallb.io/v1beta1 IPAddressPool {namespace}/lan")
    # read in the stored version, v1beta2
    assert objects[("BGPPeer", "tor")]["metadata"]["annotations"]["vipam.io/migrated-from"] == (
        f"metallb.io/v1beta2 BGPPeer {namespace}/tor")
    assert objects[("BGPPeer", "tor")]["spec"] == {
        "localASN": 64500, "asn": 64501, "address": "198.51.100.254", "holdTime": "9s"}
    assert "lost:" not in result.stderr and "error:" not in result.stderr
    assert result.stderr.strip().endswith("--compat metallb")


def test_live_read_checks_the_services_it_finds(
    real_cluster: RealCluster, metallb_crds: str, tmp_path: Path
) -> None:
    namespace = metallb_crds
    apply(real_cluster, [{"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                          "metadata": {"name": "lan", "namespace": namespace},
                          "spec": {"addresses": ["192.0.2.0/26"]}}], tmp_path)
    apps = real_cluster.namespace("apps")
    shown_service(real_cluster, apps, "stray", "203.0.113.77")
    result = migrate(real_cluster.admin_kubeconfig, "-o", str(tmp_path / "out.yaml"))
    assert result.returncode == 1
    assert not (tmp_path / "out.yaml").exists()
    assert f"lost: Service/{apps}/stray: status.loadBalancer.ingress[0].ip: 203.0.113.77 is in " \
           "no migrated pool" in result.stderr
    allowed = migrate(real_cluster.admin_kubeconfig, "--allow-loss", "-o",
                      str(tmp_path / "out.yaml"))
    assert allowed.returncode == 0, allowed.stderr
    assert "IPPool" in (tmp_path / "out.yaml").read_text()


def test_without_any_metallb_or_cilium_crd_nothing_is_found(real_cluster: RealCluster) -> None:
    result = migrate(real_cluster.admin_kubeconfig)
    assert result.returncode == 2
    assert "no MetalLB or Cilium LB-IPAM object found" in result.stderr


@pytest.mark.expect_forbidden
def test_a_refused_list_is_an_error_not_an_empty_kind(
    real_cluster: RealCluster, metallb_crds: str
) -> None:
    """The speaker's ServiceAccount may not list MetalLB's objects: 403, reported as such."""
    result = migrate(real_cluster.speaker_kubeconfig)
    assert result.returncode == 2
    assert "cannot list ipaddresspools.metallb.io: 403" in result.stderr
    assert json.dumps(result.stdout) == '""'


def test_read_only_rights_on_what_is_installed_are_enough(
    real_cluster: RealCluster, metallb_crds: str, tmp_path: Path
) -> None:
    """A user who may list MetalLB's installed kinds and Services, and nothing else (not the
    Cilium kinds, which have no CRD here), migrates: kinds without a CRD are never listed."""
    namespace = metallb_crds
    account = "vipam-migrate-reader"
    apply(real_cluster, [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": account, "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": account},
         "rules": [{"apiGroups": ["metallb.io"], "resources": ["ipaddresspools", "bgppeers"],
                    "verbs": ["list"]},
                   {"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": account},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": account},
         "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]},
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
         "metadata": {"name": "lan", "namespace": namespace},
         "spec": {"addresses": ["192.0.2.0/26"]}},
    ], tmp_path)
    try:
        token = real_cluster.server.create_token(account, namespace)
        kubeconfig = real_cluster.server.kubeconfig(tmp_path / "reader.kubeconfig", token)
        result = migrate(kubeconfig)
        assert result.returncode == 0, result.stderr
        assert [o["kind"] for o in yaml.safe_load_all(result.stdout) if o] == ["IPPool"]
    finally:
        real_cluster.server.kubectl("delete", "clusterrolebinding,clusterrole", account)
