"""Services as the old controller left them, checked against the migrated pools.

When the input includes Services (read live, or ``kubectl get svc -A -o yaml`` among the
files), every way the switch-over could disturb one is reported before anything is applied:

* a ``loadBalancerClass`` vipam never serves (the field is immutable);
* a shown address no migrated pool covers (vipam keeps it, but reports ``IPConflict``);
* two Services showing one address without a sharing key vipam reads, or with overlapping
  ports (vipam restores the older one and reports the other);
* MetalLB's older ``metallb.universe.tf/`` annotations, which vipam's ``--compat metallb``
  does not read.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ccm.contract import names
from ccm.migrate.output import Output
from pools.model import Pool

JSON = dict[str, Any]
OLD_METALLB_PREFIX = "metallb.universe.tf/"
READ_METALLB = ("address-pool", "loadBalancerIPs", "allow-shared-ip")
SHARING_KEYS = (
    names.ANN_SHARING_KEY, names.COMPAT_SHARING_KEY["cilium"], names.COMPAT_SHARING_KEY["metallb"]
)


def _key(service: JSON) -> str:
    meta = service.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name')}"


def _sharing_key(annotations: dict[str, str]) -> str | None:
    """The key vipam reads with --compat metallb,cilium (vipam's own first, then cilium's,
    then metallb's: the controller walks compat projects in sorted order)."""
    for annotation in SHARING_KEYS:
        if annotations.get(annotation):
            return annotations[annotation]
    return None


def _ports(service: JSON) -> set[tuple[str, int]]:
    return {
        (str(p.get("protocol") or "TCP"), int(p["port"]))
        for p in (service.get("spec") or {}).get("ports") or [] if p.get("port") is not None
    }


def check_services(services: list[JSON], pools: list[Pool], out: Output) -> None:
    holders: dict[str, list[JSON]] = defaultdict(list)
    for service in services:
        spec = service.get("spec") or {}
        if spec.get("type") != "LoadBalancer":
            continue
        ref = f"Service/{_key(service)}"
        annotations = (service.get("metadata") or {}).get("annotations") or {}
        lb_class = spec.get("loadBalancerClass")
        if lb_class not in (None, names.LOAD_BALANCER_CLASS):
            out.report.lose(
                ref, "spec.loadBalancerClass",
                f"{lb_class!r}: vipam serves only Services without a class or with "
                f"{names.LOAD_BALANCER_CLASS!r}, and the class cannot be changed: re-create the "
                "Service without it (its address annotation keeps the address)",
            )
            continue
        for suffix in READ_METALLB:
            old = OLD_METALLB_PREFIX + suffix
            if old in annotations and f"metallb.io/{suffix}" not in annotations:
                out.report.lose(
                    ref, f"metadata.annotations[{old}]",
                    f"vipam reads metallb.io/{suffix} only: add it with the same value before "
                    "switching",
                )
        ingress = (service.get("status") or {}).get("loadBalancer") or {}
        for index, entry in enumerate(ingress.get("ingress") or []):
            ip = entry.get("ip")
            if not ip:
                continue
            holders[ip].append(service)
            if not any(pool.contains(ip) for pool in pools):
                out.report.lose(
                    ref, f"status.loadBalancer.ingress[{index}].ip",
                    f"{ip} is in no migrated pool: vipam keeps it on the Service but reports "
                    "IPConflict, and cannot give it out again once released",
                )
    for ip, sharing in sorted(holders.items()):
        _check_sharing(ip, sharing, out)


def _check_sharing(ip: str, services: list[JSON], out: Output) -> None:
    if len(services) < 2:
        return
    keys = {_sharing_key((s.get("metadata") or {}).get("annotations") or {}) for s in services}
    refs = ", ".join(f"Service/{_key(s)}" for s in services)
    if None in keys or len(keys) > 1:
        out.report.lose(
            f"Service/{_key(services[1])}", "metadata.annotations",
            f"{refs} all show {ip} but do not share one sharing key vipam reads "
            f"({', '.join(SHARING_KEYS)}): vipam keeps the oldest and reports IPConflict on "
            "the others",
        )
        return
    seen: set[tuple[str, int]] = set()
    for service in services:
        ports = _ports(service)
        if seen & ports:
            out.report.lose(
                f"Service/{_key(service)}", "spec.ports",
                f"shares {ip} with ports another holder uses ({sorted(seen & ports)}): vipam "
                "reports IPConflict on it",
            )
        seen |= ports
