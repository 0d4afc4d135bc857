"""MetalLB (``metallb.io``) objects to vipam objects.

Field meanings follow MetalLB's published API (IPAddressPool, L2Advertisement,
BGPAdvertisement and Community v1beta1, BGPPeer v1beta1/v1beta2). Names are kept, so the names
advertisements use for pools and peers stay valid. Two MetalLB behaviours are written out
explicitly because vipam's defaults differ:

* a pool with ``serviceAllocation`` is tried before pools without one, whatever its priority
  (MetalLB's "pinned" pools); a pinned pool without a priority therefore gets one just after
  every explicit priority, and unpinned pools stay unprioritised (vipam tries those last);
* a pool whose ``serviceAllocation`` names no namespace and no selector is never chosen
  automatically by MetalLB: it becomes ``autoAssign: false``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ccm.migrate.fields import Fields
from ccm.migrate.metallb_peer import (
    convert_peer,
    labels_of,
    name_of,
    note_multiprotocol,
    origin_of,
)
from ccm.migrate.output import Output
from ccm.migrate.selection import selectors_at
from ccm.migrate.values import (
    INTERFACE,
    address_entry,
    any_of,
    community,
)

JSON = dict[str, Any]
GROUP = "metallb.io"
STATUS_KINDS = frozenset({"ServiceL2Status", "ServiceBGPStatus", "ConfigurationState"})
NOT_CONVERTED = {
    "BFDProfile": "vipam has no BFD; not converted",
    "AddressPool": "the pre-0.13 AddressPool kind is not converted; convert it to an "
                   "IPAddressPool (and advertisements) with MetalLB first",
}


def convert(objects: list[JSON], out: Output) -> None:
    """Add the vipam equivalents of MetalLB objects to ``out``; report what cannot be carried."""
    by_kind: dict[str, list[JSON]] = defaultdict(list)
    for obj in objects:
        by_kind[str(obj.get("kind"))].append(obj)
    out.projects.add("metallb")
    aliases = _community_aliases(by_kind.pop("Community", []), out)
    pools = by_kind.pop("IPAddressPool", [])
    explicit = [
        p for p in (_priority(pool) for pool in pools) if isinstance(p, int) and p > 0
    ]
    pinned_priority = max(explicit, default=0) + 1
    for pool in pools:
        _pool(pool, out, pinned_priority)
    for adv in by_kind.pop("L2Advertisement", []):
        _l2_advertisement(adv, out)
    for adv in by_kind.pop("BGPAdvertisement", []):
        _bgp_advertisement(adv, out, aliases)
    peers = by_kind.pop("BGPPeer", [])
    for peer in peers:
        convert_peer(peer, out)
    note_multiprotocol(peers, out)
    for kind, rest in sorted(by_kind.items()):
        if kind in STATUS_KINDS:
            continue  # status only: MetalLB writes them, nothing to carry
        for obj in rest:
            why = NOT_CONVERTED.get(kind, "a MetalLB kind vipam migrate does not convert")
            out.report.lose(f"{kind}/{name_of(obj)}", "", why)


def _priority(pool: JSON) -> Any:
    allocation = (pool.get("spec") or {}).get("serviceAllocation") or {}
    return allocation.get("priority") if isinstance(allocation, dict) else None


# --- IPAddressPool ----------------------------------------------------------------------


def _pool(obj: JSON, out: Output, pinned_priority: int) -> None:
    ref = f"IPAddressPool/{name_of(obj)}"
    spec = Fields(obj.get("spec"), ref, "spec", out.report)
    result: JSON = {"addresses": []}
    for index, entry in enumerate(spec.take("addresses", [])):
        where = f"spec.addresses[{index}]"
        try:
            address, note = address_entry(entry)
        except ValueError as exc:
            out.report.error(ref, where, str(exc))
            continue
        result["addresses"].append(address)
        if note:
            out.report.note(ref, where, note)
    if not result["addresses"]:
        out.report.error(ref, "spec.addresses", "no addresses: nothing to migrate")
    if spec.take("autoAssign", True) is False:
        result["autoAssign"] = False
    if spec.take("avoidBuggyIPs", False) is True:
        result["avoidBuggyIPs"] = True
    raw_allocation = spec.data.get("serviceAllocation")
    allocation = spec.sub("serviceAllocation")
    if raw_allocation is not None:
        _allocation(allocation, result, pinned_priority)
    allocation.finish()
    spec.finish()
    out.add("IPPool", name_of(obj), result, source=ref, origin=origin_of(obj),
            labels=labels_of(obj))


def _allocation(allocation: Fields, result: JSON, pinned_priority: int) -> None:
    report, ref = allocation.report, allocation.ref
    vipam: JSON = {}
    namespaces = allocation.take("namespaces", [])
    if namespaces:
        vipam["namespaces"] = list(namespaces)
    for field, target in (("namespaceSelectors", "namespaceSelector"),
                          ("serviceSelectors", "serviceSelector")):
        selectors = selectors_at(allocation, field)
        if not selectors:
            continue
        union = any_of(selectors)
        if union is None:
            report.lose(
                ref, allocation.at(f"{field}[1:]"),
                f"vipam's pool takes one {target} and these {len(selectors)} selectors do not "
                f"combine into one; kept {field}[0] only (the pool now admits fewer Services)",
            )
            union = selectors[0]
        vipam[target] = union
    priority = allocation.take("priority", 0)
    pinned = bool(vipam)
    if not pinned:
        if result.get("autoAssign", True):
            report.note(
                ref, allocation.path,
                "names no namespace and no selector, so MetalLB never picks this pool by "
                "itself; written as autoAssign: false",
            )
        result["autoAssign"] = False
        return
    result["serviceAllocation"] = vipam
    if isinstance(priority, int) and priority > 0:
        result["priority"] = priority
    else:
        result["priority"] = pinned_priority
        report.note(
            ref, allocation.at("priority"),
            f"unset; MetalLB tries pools with a serviceAllocation before pools without one, "
            f"so the pool gets priority {pinned_priority} (after every explicit priority)",
        )


# --- advertisements ---------------------------------------------------------------------


def _pool_refs(spec: Fields, result: JSON) -> None:
    """ipAddressPools / ipAddressPoolSelectors / nodeSelectors, shared by both advertisements."""
    names = [str(n) for n in spec.take("ipAddressPools", [])]
    if names:
        result["ipPools"] = names
    for field, target in (("ipAddressPoolSelectors", "ipPoolSelectors"),
                          ("nodeSelectors", "nodeSelectors")):
        selectors = selectors_at(spec, field)
        if selectors:
            result[target] = selectors


def _l2_advertisement(obj: JSON, out: Output) -> None:
    ref = f"L2Advertisement/{name_of(obj)}"
    spec = Fields(obj.get("spec"), ref, "spec", out.report)
    result: JSON = {}
    _pool_refs(spec, result)
    interfaces = []
    for index, name in enumerate(spec.take("interfaces", [])):
        if isinstance(name, str) and INTERFACE.match(name):
            interfaces.append(name)
        else:
            out.report.lose(
                ref, f"spec.interfaces[{index}]",
                f"{name!r} is not an interface name vipam accepts; dropped",
            )
    if interfaces:
        result["interfaces"] = interfaces
    spec.finish()
    out.add("L2Advertisement", name_of(obj), result, source=ref, origin=origin_of(obj),
            labels=labels_of(obj))


def _bgp_advertisement(obj: JSON, out: Output, aliases: dict[str, str]) -> None:
    ref = f"BGPAdvertisement/{name_of(obj)}"
    spec = Fields(obj.get("spec"), ref, "spec", out.report)
    result: JSON = {}
    _pool_refs(spec, result)
    peers = [str(p) for p in spec.take("peers", [])]
    if peers:
        result["peers"] = peers
    communities: list[str] = []
    for index, text in enumerate(spec.take("communities", [])):
        value = aliases.get(text, text) if isinstance(text, str) else text
        try:
            written = community(value)
        except ValueError as exc:
            out.report.error(
                ref, f"spec.communities[{index}]",
                f"{exc}; nor the name of an alias in a Community object",
            )
            continue
        if written not in communities:
            communities.append(written)
    if communities:
        result["communities"] = communities
    local_pref = spec.take("localPref", 0)
    if local_pref:
        result["localPref"] = local_pref
    for field, default, top in (("aggregationLength", 32, 32), ("aggregationLengthV6", 128, 128)):
        length = spec.take(field, default)
        if not isinstance(length, int) or not 0 <= length <= top:
            out.report.error(ref, spec.at(field), f"{length!r} is not a prefix length 0..{top}")
        elif length != default:
            result[field] = length
    spec.finish()
    out.add("BGPAdvertisement", name_of(obj), result, source=ref, origin=origin_of(obj),
            labels=labels_of(obj))


def _community_aliases(objects: list[JSON], out: Output) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for obj in objects:
        ref = f"Community/{name_of(obj)}"
        spec = Fields(obj.get("spec"), ref, "spec", out.report)
        for entry in spec.items("communities"):
            name, value = entry.take("name"), entry.take("value")
            entry.finish()
            if not name or not value:
                out.report.error(ref, entry.path, "an alias needs a name and a value")
            elif aliases.get(name, value) != value:
                out.report.error(ref, entry.path, f"alias {name!r} is defined twice, differently")
            else:
                aliases[name] = value
        spec.finish()
    return aliases
