"""Builders for source objects and readers of the migration result, shared by these tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ccm.migrate.convert import convert
from ccm.migrate.output import Output
from tests.unit.manifests import schema as crdschema

JSON = dict[str, Any]
ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def metallb(kind: str, name: str, spec: JSON | None = None, *, version: str = "v1beta1",
            labels: dict[str, str] | None = None) -> JSON:
    meta: JSON = {"name": name, "namespace": "metallb-system"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": f"metallb.io/{version}", "kind": kind, "metadata": meta,
            "spec": spec or {}}


def cilium(kind: str, name: str, spec: JSON | None = None, *, version: str = "v2alpha1",
           labels: dict[str, str] | None = None) -> JSON:
    meta: JSON = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": f"cilium.io/{version}", "kind": kind, "metadata": meta,
            "spec": spec or {}}


def service(name: str, ips: list[str], *, namespace: str = "default",
            annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
            ports: list[int] | None = None, lb_class: str | None = None) -> JSON:
    spec: JSON = {"type": "LoadBalancer",
                  "ports": [{"port": p, "protocol": "TCP"} for p in ports or [80]]}
    if lb_class:
        spec["loadBalancerClass"] = lb_class
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {},
                     "labels": labels or {}},
        "spec": spec,
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
    }


def migrate(*objects: JSON, services_listed: bool = False) -> Output:
    return convert(list(objects), services_listed=services_listed)


def spec(out: Output, kind: str, name: str) -> JSON:
    assert (kind, name) in out.objects, f"{kind}/{name} not written; have {sorted(out.objects)}"
    result: JSON = out.objects[(kind, name)]["spec"]
    return result


def lines(findings: list[Any]) -> list[str]:
    return [str(f) for f in findings]


def lost(out: Output) -> list[str]:
    return lines(out.report.losses)


def noted(out: Output) -> list[str]:
    return lines(out.report.notes)


def errors(out: Output) -> list[str]:
    return lines(out.report.errors)


def crd_schemas() -> dict[str, crdschema.Schema]:
    crds = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "config" / "crd").glob("*.yaml"))
            if p.name != "kustomization.yaml"]
    return crdschema.schemas_by_kind(crds)


def schema_problems(out: Output) -> list[str]:
    """What the API server would refuse in the output, by the CRDs' own schemas and rules."""
    schemas = crd_schemas()
    return [
        f"{obj['kind']}/{obj['metadata']['name']}: {problem}"
        for obj in out.objects.values()
        for problem in crdschema.validate(obj, schemas[obj["kind"]])
    ]
