"""Cilium LB-IPAM (``cilium.io``) pools and L2 announcement policies to vipam objects.

Field meanings follow Cilium's published API for CiliumLoadBalancerIPPool and
CiliumL2AnnouncementPolicy (v2alpha1, and v2 where it exists). The BGP kinds live in
:mod:`ccm.migrate.cilium_bgp`.

Cilium reserves the first and last address of each CIDR block when ``allowFirstLastIPs`` is
``No`` (the default up to Cilium 1.15, which also had the ``cidrs`` field; from 1.16 on the
default is ``Yes``): those become ``exclude`` entries. Its service selectors may name two
pseudo-labels, ``io.kubernetes.service.namespace`` and ``io.kubernetes.service.name``; the
first becomes ``serviceAllocation.namespaces``, the second has no vipam equivalent.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ccm.migrate.fields import Fields
from ccm.migrate.output import Output
from ccm.migrate.report import Report
from ccm.migrate.selection import one_selector
from ccm.migrate.values import INTERFACE, address_entry, range_entry

JSON = dict[str, Any]
GROUP = "cilium.io"
POOL = "CiliumLoadBalancerIPPool"
L2_POLICY = "CiliumL2AnnouncementPolicy"
NAMESPACE_KEY = "io.kubernetes.service.namespace"
NAME_KEY = "io.kubernetes.service.name"
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def name_of(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def labels_of(obj: JSON) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def origin_of(obj: JSON) -> str:
    return f"{obj.get('apiVersion')} {obj.get('kind')} {name_of(obj)}"


# --- CiliumLoadBalancerIPPool -----------------------------------------------------------


def convert_pool(obj: JSON, out: Output) -> None:
    ref = f"{POOL}/{name_of(obj)}"
    report = out.report
    spec = Fields(obj.get("spec"), ref, "spec", report)
    legacy = spec.has("cidrs")  # only Cilium <= 1.15 had it
    blocks = spec.items("blocks") + spec.items("cidrs")
    allow = spec.take("allowFirstLastIPs")
    if allow not in (None, "Yes", "No"):
        report.error(ref, "spec.allowFirstLastIPs", f"{allow!r} is neither Yes nor No")
    reserve = allow == "No" or (allow is None and legacy)
    result: JSON = {"addresses": []}
    exclude: list[str] = []
    reserving_blocks = 0
    for block in blocks:
        cidr, start, stop = block.take("cidr"), block.take("start"), block.take("stop")
        block.finish()
        try:
            if cidr:
                if "/" not in str(cidr):
                    raise ValueError(f"{cidr!r} is not a CIDR")
                entry, note = address_entry(cidr)
                if note:
                    report.note(ref, block.path, note)
                network = ipaddress.ip_network(entry)
                if network.num_addresses > 2:
                    reserving_blocks += 1
                    if reserve:
                        exclude += [str(network.network_address), str(network.broadcast_address)]
            elif start:
                entry = range_entry(str(start), str(stop or start))
            else:
                raise ValueError("a block needs cidr, or start (and stop)")
        except ValueError as exc:
            report.error(ref, block.path, str(exc))
            continue
        result["addresses"].append(entry)
    if not result["addresses"]:
        report.error(ref, "spec.blocks", "no addresses: nothing to migrate")
    if exclude:
        result["exclude"] = exclude
    if allow is None and reserving_blocks:
        report.note(
            ref, "spec.allowFirstLastIPs",
            "unset: " + (
                "the pool uses spec.cidrs (Cilium 1.15 or older), where the first and last "
                "address of each CIDR block are reserved: written as exclude"
                if legacy else
                "Cilium 1.16 and later hand out the first and last address of each CIDR block, "
                "and so does the migrated pool (Cilium 1.15 reserved them: add them to exclude "
                "if that is your version)"
            ),
        )
    if spec.take("disabled", False) is True:
        result["disabled"] = True
    service_selector = one_selector(spec, "serviceSelector")
    if service_selector:
        allocation = service_allocation(service_selector, ref, "spec.serviceSelector", report)
        if allocation:
            result["serviceAllocation"] = allocation
    spec.finish()
    out.add("IPPool", name_of(obj), result, source=ref, origin=origin_of(obj),
            labels=labels_of(obj))


def service_allocation(sel: JSON, ref: str, where: str, report: Report) -> JSON:
    """A Cilium service selector as vipam's serviceAllocation (namespaces + serviceSelector)."""
    labels = dict(sel.get("matchLabels") or {})
    expressions = []
    namespaces: set[str] | None = None
    if NAMESPACE_KEY in labels:
        namespaces = {labels.pop(NAMESPACE_KEY)}
    if NAME_KEY in labels:
        report.lose(ref, f"{where}.matchLabels[{NAME_KEY}]",
                    "vipam cannot select a Service by name; dropped (the pool admits more)")
        labels.pop(NAME_KEY)
    for index, requirement in enumerate(sel.get("matchExpressions") or []):
        key, operator = requirement["key"], requirement["operator"]
        at = f"{where}.matchExpressions[{index}]"
        if key == NAMESPACE_KEY and operator == "In":
            values = set(requirement["values"])
            namespaces = values if namespaces is None else namespaces & values
        elif key in (NAMESPACE_KEY, NAME_KEY):
            what = "namespaces with" if key == NAMESPACE_KEY else "a Service by name with"
            report.lose(ref, at, f"vipam cannot select {what} {operator}; dropped "
                                 "(the pool admits more)")
        else:
            expressions.append(requirement)
    allocation: JSON = {}
    if namespaces is not None:
        bad = sorted(n for n in namespaces if not _NAMESPACE.match(n))
        if not namespaces:
            report.error(ref, where, "the namespace requirements exclude each other: "
                                     "the pool admits no Service")
        elif bad:
            report.error(ref, where, f"{bad} are not namespace names")
        else:
            allocation["namespaces"] = sorted(namespaces)
    rest: JSON = {}
    if labels:
        rest["matchLabels"] = labels
    if expressions:
        rest["matchExpressions"] = expressions
    if rest:
        allocation["serviceSelector"] = rest
    return allocation


# --- CiliumL2AnnouncementPolicy ---------------------------------------------------------


def convert_l2_policy(obj: JSON, out: Output) -> None:
    ref = f"{L2_POLICY}/{name_of(obj)}"
    report = out.report
    spec = Fields(obj.get("spec"), ref, "spec", report)
    spec.drop("externalIPs", "vipam announces LoadBalancer addresses only, not "
                             "spec.externalIPs; dropped")
    result: JSON = {}
    node_selector = one_selector(spec, "nodeSelector")
    if node_selector:
        result["nodeSelectors"] = [node_selector]
    service_selector = one_selector(spec, "serviceSelector")
    if service_selector:
        report.lose(
            ref, "spec.serviceSelector",
            "vipam's L2Advertisement selects pools, not Services: the advertisement announces "
            "the Services of every pool; dropped",
        )
    interfaces = _interfaces(spec, report)
    if interfaces:
        result["interfaces"] = interfaces
    announces = spec.take("loadBalancerIPs", False) is True
    spec.finish()
    if not announces:
        report.note(ref, "spec.loadBalancerIPs",
                    "not true: the policy announces no LoadBalancer address; nothing written")
        return
    out.add("L2Advertisement", name_of(obj), result, source=ref, origin=origin_of(obj),
            labels=labels_of(obj))


_REGEX_META = re.compile(r"[\\^$.|?*+()\[\]{}]")


def _interfaces(spec: Fields, report: Report) -> list[str]:
    """Cilium's interfaces are regular expressions (matched anywhere in the name); vipam's
    are names. ``^eth0$`` is exactly eth0; ``eth0`` also matches veth0a; others cannot be
    written."""
    raw = spec.take("interfaces", [])
    names: list[str] = []
    for index, pattern in enumerate(raw):
        at = f"spec.interfaces[{index}]"
        text = str(pattern)
        anchored = text.startswith("^") and text.endswith("$") and not text.endswith("\\$")
        core = text[1:-1] if anchored else text
        literal = re.sub(r"\\\.", ".", core)
        if _REGEX_META.search(core.replace("\\.", "")) or not INTERFACE.match(literal):
            report.lose(spec.ref, at,
                        f"{text!r} is a regular expression; vipam takes exact interface names; "
                        "dropped")
            continue
        if not anchored:
            report.lose(
                spec.ref, at,
                f"{text!r} matches every interface whose name contains {literal!r}; vipam "
                f"takes exact names: written as {literal!r}",
            )
        names.append(literal)
    if raw and not names:
        report.lose(spec.ref, "spec.interfaces",
                    "none could be written: the advertisement answers on every interface")
    return names
