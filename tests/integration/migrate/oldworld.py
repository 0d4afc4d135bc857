"""A cluster as MetalLB or Cilium left it, on the real API server, and the switch to vipam.

Services are created the way the old controller left them: no class (or the old one's),
its annotations, shared addresses with its sharing key, and `status.loadBalancer.ingress`
written through the status subresource, as a load-balancer controller writes it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

from ccm.check import check_files
from ccm.cli import main
from ccm.contract import names
from ccm.controller.manager import Controller
from ccm.kube.client import KubeClient
from ccm.kube.resources import SERVICES
from tests.integration.controller.harness import leading_controller, wait_for
from tests.realkube import RealCluster

JSON = dict[str, Any]


async def old_service(kube: KubeClient, namespace: str, name: str, ips: list[str], *,
                      annotations: dict[str, str] | None = None,
                      ports: list[tuple[str, int]] | None = None,
                      dual_stack: bool = False, conditions: list[JSON] | None = None) -> JSON:
    """Create a LoadBalancer Service and write the addresses (and conditions) the old
    controller gave it."""
    spec: JSON = {
        "type": "LoadBalancer",
        "ports": [{"name": f"{proto.lower()}-{port}", "protocol": proto, "port": port}
                  for proto, port in ports or [("TCP", 80)]],
    }
    if dual_stack:
        spec.update(ipFamilyPolicy="RequireDualStack", ipFamilies=["IPv4", "IPv6"])
    created = await kube.create(SERVICES, namespace, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": spec,
    })
    created["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}
    if conditions:
        created["status"]["conditions"] = conditions
    return await kube.replace(SERVICES, namespace, name, created, subresource="status")


def migrate_files(sources: list[Path], target: Path, *extra: str) -> tuple[int, str]:
    """`vipam migrate` as a user runs it; (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["migrate", "-o", str(target), *extra, *map(str, sources)])
    return code, err.getvalue()


def check_and_apply(cluster: RealCluster, target: Path) -> None:
    report = io.StringIO()
    assert check_files([str(target)], report) == 0, report.getvalue()
    cluster.server.kubectl("apply", "--validate=strict", "-f", str(target))


def write_yaml(path: Path, documents: list[JSON]) -> Path:
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def ingress(obj: JSON | None) -> list[str]:
    entries = (((obj or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(e["ip"]) for e in entries if e.get("ip")]


def our_condition(obj: JSON | None) -> JSON:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == names.CONDITION_ALLOCATED:
            return dict(condition)
    return {}


def services(cluster: RealCluster) -> dict[str, JSON]:
    return {f"{s['metadata']['namespace']}/{s['metadata']['name']}": s
            for s in cluster.api.list_objects("services")}


@contextlib.asynccontextmanager
async def vipam_controller(cluster: RealCluster, compat: str,
                           **settings: Any) -> AsyncIterator[Controller]:
    """The controller in-process on its own ServiceAccount, leading and restored."""
    async with leading_controller(cluster.controller_kubeconfig, compat=compat,
                                  **settings) as controller:
        yield controller


async def all_adopted(cluster: RealCluster, keys: list[str], timeout: float = 30) -> None:
    """Every key carries our finalizer and an IPAllocated condition (True or False)."""
    def done() -> bool:
        now = services(cluster)
        return all(
            names.FINALIZER in (now[k]["metadata"].get("finalizers") or [])
            and our_condition(now[k]) for k in keys
        )
    await wait_for(done, timeout, f"vipam to adopt {keys}")
