"""Dispatch by API group to the converters, then the checks only the whole output allows."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ccm.migrate import cilium, cilium_bgp, cilium_bgp_v1, cilium_bgp_v2, metallb
from ccm.migrate.checks import (
    check_advertisement_overlaps,
    check_multiprotocol,
    check_references,
)
from ccm.migrate.output import Output
from ccm.migrate.report import Report
from ccm.migrate.services import check_services

JSON = dict[str, Any]
NODE_OVERRIDE = "CiliumBGPNodeConfigOverride"


def _group(obj: JSON) -> str:
    return str(obj.get("apiVersion") or "").rpartition("/")[0]


def convert(objects: list[JSON], *, services_listed: bool = False) -> Output:
    """The vipam objects for ``objects`` and the report of what they could not carry.

    ``services_listed`` says the input holds every Service of the cluster (a live read), so
    that "no Service carries this label" may be concluded from the input.
    """
    out = Output(Report())
    by_group: dict[str, list[JSON]] = defaultdict(list)
    for obj in objects:
        by_group[_group(obj)].append(obj)
    services = [o for o in by_group.get("", []) if o.get("kind") == "Service"]
    known_services = services if services or services_listed else None
    if by_group.get(metallb.GROUP):
        metallb.convert(by_group[metallb.GROUP], out)
    if by_group.get(cilium.GROUP):
        _cilium(by_group[cilium.GROUP], out, known_services)
    for group in sorted(set(by_group) - {metallb.GROUP, cilium.GROUP, ""}):
        if group.endswith("metallb.io") or group.endswith("cilium.io"):
            for obj in by_group[group]:
                out.report.lose(f"{obj.get('kind')}/{cilium.name_of(obj)}", "",
                                f"API group {group} is not converted")
    check_references(out)
    check_multiprotocol(out)
    check_advertisement_overlaps(out)
    pools = out.check()
    if services:
        check_services(services, pools, out)
    return out


def _cilium(objects: list[JSON], out: Output, services: list[JSON] | None) -> None:
    out.projects.add("cilium")
    by_kind: dict[str, list[JSON]] = defaultdict(list)
    for obj in objects:
        by_kind[str(obj.get("kind"))].append(obj)
    for obj in by_kind.pop(cilium.POOL, []):
        cilium.convert_pool(obj, out)
    for obj in by_kind.pop(cilium.L2_POLICY, []):
        cilium.convert_l2_policy(obj, out)
    for obj in by_kind.pop(cilium_bgp.PEERING_POLICY, []):
        cilium_bgp_v1.convert_peering_policy(obj, out, services)
    cilium_bgp_v2.convert_v2(by_kind, out, services)
    for obj in by_kind.pop(NODE_OVERRIDE, []):
        out.report.lose(f"{NODE_OVERRIDE}/{cilium.name_of(obj)}", "",
                        "per-node BGP settings (router ID, local address, port) have no vipam "
                        "object; not converted")
    for kind in sorted(set(by_kind) - cilium_bgp.KINDS - {"CiliumBGPNodeConfig"}):
        # Cilium stays the CNI: its other kinds are not LB-IPAM's to migrate
        out.report.note(f"{kind}", "", f"{len(by_kind[kind])} object(s) ignored: not an LB-IPAM "
                                       "or BGP kind")
