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
from ccm.migrate.output import Output
from ccm.migrate.selection import selectors_at
from ccm.migrate.values import (
    INTERFACE,
    address_entry,
    any_of,
    asn,
    community,
    go_duration_seconds,
    hold_time,
    ip_text,
)

JSON = dict[str, Any]
GROUP = "metallb.io"
STATUS_KINDS = frozenset({"ServiceL2Status", "ServiceBGPStatus", "ConfigurationState"})
NOT_CONVERTED = {
    "BFDProfile": "vipam has no BFD; not converted",
    "AddressPool": "the pre-0.13 AddressPool kind is not converted; convert it to an "
                   "IPAddressPool (and advertisements) with MetalLB first",
}


def _name(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _labels(obj: JSON) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _origin(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else meta.get("name")
    return f"{obj.get('apiVersion')} {obj.get('kind')} {where}"


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
        _peer(peer, out)
    _multiprotocol(peers, out)
    for kind, rest in sorted(by_kind.items()):
        if kind in STATUS_KINDS:
            continue  # status only: MetalLB writes them, nothing to carry
        for obj in rest:
            why = NOT_CONVERTED.get(kind, "a MetalLB kind vipam migrate does not convert")
            out.report.lose(f"{kind}/{_name(obj)}", "", why)


def _priority(pool: JSON) -> Any:
    allocation = (pool.get("spec") or {}).get("serviceAllocation") or {}
    return allocation.get("priority") if isinstance(allocation, dict) else None


# --- IPAddressPool ----------------------------------------------------------------------


def _pool(obj: JSON, out: Output, pinned_priority: int) -> None:
    ref = f"IPAddressPool/{_name(obj)}"
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
    out.add("IPPool", _name(obj), result, source=ref, origin=_origin(obj), labels=_labels(obj))


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
    ref = f"L2Advertisement/{_name(obj)}"
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
    out.add("L2Advertisement", _name(obj), result, source=ref, origin=_origin(obj),
            labels=_labels(obj))


def _bgp_advertisement(obj: JSON, out: Output, aliases: dict[str, str]) -> None:
    ref = f"BGPAdvertisement/{_name(obj)}"
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
    out.add("BGPAdvertisement", _name(obj), result, source=ref, origin=_origin(obj),
            labels=_labels(obj))


def _community_aliases(objects: list[JSON], out: Output) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for obj in objects:
        ref = f"Community/{_name(obj)}"
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


# --- BGPPeer ----------------------------------------------------------------------------


def _peer(obj: JSON, out: Output) -> None:
    ref = f"BGPPeer/{_name(obj)}"
    report = out.report
    spec = Fields(obj.get("spec"), ref, "spec", report)
    result: JSON = {}
    try:
        result["localASN"] = asn(spec.take("myASN"))
    except ValueError as exc:
        report.error(ref, "spec.myASN", str(exc))
    dynamic = spec.take("dynamicASN")
    try:
        if dynamic == "internal" and not spec.has("peerASN"):
            result["asn"] = result.get("localASN")
            report.note(ref, "spec.dynamicASN", "internal: written as asn = localASN (iBGP)")
        elif dynamic:
            report.lose(
                ref, "spec.dynamicASN",
                f"{dynamic!r}: vipam needs the peer's AS number; set spec.asn by hand",
            )
            spec.take("peerASN")
        else:
            result["asn"] = asn(spec.take("peerASN"))
    except ValueError as exc:
        report.error(ref, "spec.peerASN", str(exc))
    address = spec.take("peerAddress")
    spec.drop("interface", "vipam has no unnumbered BGP (a session over an interface); dropped")
    try:
        result["address"] = ip_text(address)
    except ValueError:
        report.error(ref, "spec.peerAddress", f"{address!r}: vipam needs the peer's IP address")
    if spec.has("sourceAddress"):
        try:
            result["sourceAddress"] = ip_text(spec.take("sourceAddress"))
        except ValueError as exc:
            report.error(ref, "spec.sourceAddress", str(exc))
    spec.take("sourceAddress")
    port = spec.take("peerPort", 179)
    if port != 179:
        result["port"] = port
    _timers(spec, result)
    selectors = selectors_at(spec, "nodeSelectors")
    if selectors:
        result["nodeSelectors"] = selectors
    secret = spec.sub("passwordSecret")
    if secret.has("name"):
        result["passwordSecretRef"] = {"name": secret.take("name"), "key": "password"}
        namespace = secret.take("namespace")
        report.note(
            ref, "spec.passwordSecret",
            f"the speaker reads Secrets only in its own namespace (kube-system by default): copy "
            f"Secret {namespace + '/' if namespace else ''}{secret.data.get('name')} (key "
            f"'password') there",
        )
    secret.take("namespace")
    secret.finish()
    spec.drop("password", "vipam reads a peer's password from a Secret only: create one with "
                          "key 'password' and set spec.passwordSecretRef; dropped")
    spec.drop("bfdProfile", "vipam has no BFD; dropped")
    spec.drop("enableGracefulRestart", "vipam's speaker has no BGP graceful restart; dropped")
    spec.drop("vrf", "vipam has no VRFs: the session would open in the default VRF; dropped")
    spec.drop("routerID", "a per-peer router ID has no field in vipam; set the speaker's "
                          "--bgp-router-id instead; dropped")
    spec.drop("connectTime", "vipam has no connect-retry timer; dropped")
    spec.drop("dualStackAddressFamily", "vipam announces each family only to peers of that "
                                        "family (no multiprotocol session); dropped")
    if spec.take("ebgpMultiHop", False) is True:
        result["ebgpMultiHop"] = True
    spec.take("disableMP")  # vipam always behaves as disableMP: true; see _multiprotocol
    spec.finish()
    required = {"address", "asn", "localASN"}
    if required <= set(result):
        out.add("BGPPeer", _name(obj), result, source=ref, origin=_origin(obj),
                labels=_labels(obj))
    elif not any(f.obj == ref for f in report.errors):
        report.lose(ref, "", "not written: vipam's BGPPeer needs address, asn and localASN")
        out.unwritten.add(("BGPPeer", _name(obj)))


def _timers(spec: Fields, result: JSON) -> None:
    report, ref = spec.report, spec.ref
    hold: float | None = None
    if spec.has("holdTime"):
        try:
            hold = go_duration_seconds(spec.take("holdTime"))
            written = hold_time(hold)
            if written != "90s":
                result["holdTime"] = written
        except ValueError as exc:
            report.error(ref, "spec.holdTime", str(exc))
    spec.take("holdTime")
    if spec.has("keepaliveTime"):
        try:
            keepalive = go_duration_seconds(spec.take("keepaliveTime"))
        except ValueError as exc:
            report.error(ref, "spec.keepaliveTime", str(exc))
            return
        if keepalive != (90.0 if hold is None else hold) / 3:
            report.lose(
                ref, "spec.keepaliveTime",
                "vipam sends keepalives at a third of the hold time and has no separate "
                "keepalive setting; dropped",
            )
    spec.take("keepaliveTime")


def _multiprotocol(peers: list[JSON], out: Output) -> None:
    """MetalLB (FRR mode) announces both families over one session unless ``disableMP``;
    checked once every object is converted (ccm.migrate.checks)."""
    for peer in peers:
        spec = peer.get("spec") or {}
        if not spec.get("disableMP") and not spec.get("dualStackAddressFamily"):
            out.multiprotocol.append((_name(peer), f"BGPPeer/{_name(peer)}", "spec.disableMP"))
