"""Cilium's BGP v1, ``CiliumBGPPeeringPolicy``, to vipam BGPPeers and BGPAdvertisements.

Each neighbour of each virtual router becomes a BGPPeer; a router that announces LoadBalancer
addresses becomes a BGPAdvertisement to its neighbours. Path attributes for
``CiliumLoadBalancerIPPool`` selectors become advertisements of the pools they select, which
are resolved against the migrated pools so that no two advertisements announce one pool.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ccm.migrate.cilium import labels_of, name_of, origin_of
from ccm.migrate.cilium_bgp import (
    PEERING_POLICY,
    Attributes,
    attribute_spec,
    communities_of,
    families,
    read_session,
    service_selector_loss,
)
from ccm.migrate.fields import Fields
from ccm.migrate.output import Output
from ccm.migrate.selection import one_selector
from ccm.migrate.values import asn, object_name
from pools.selectors import LabelSelector

JSON = dict[str, Any]


def convert_peering_policy(obj: JSON, out: Output, services: list[JSON] | None) -> None:
    policy = name_of(obj)
    ref = f"{PEERING_POLICY}/{policy}"
    report = out.report
    spec = Fields(obj.get("spec"), ref, "spec", report)
    node_selector = one_selector(spec, "nodeSelector")
    for index, router in enumerate(spec.items("virtualRouters")):
        try:
            local = asn(router.take("localASN"))
        except ValueError as exc:
            report.error(ref, router.at("localASN"), str(exc))
            continue
        router.drop("exportPodCIDR", "vipam announces Service addresses only, not pod CIDRs; "
                                     "dropped")
        router.drop("podIPPoolSelector", "vipam announces Service addresses only, not pod "
                                         "pools; dropped")
        kinds = router.take("serviceAdvertisements", ["LoadBalancerIP"])
        for k, kind in enumerate(kinds):
            if kind != "LoadBalancerIP":
                report.lose(ref, router.at(f"serviceAdvertisements[{k}]"),
                            f"{kind}: vipam announces LoadBalancer addresses only; dropped")
        has_selector = router.data.get("serviceSelector") is not None
        sel = one_selector(router, "serviceSelector")
        announces = "LoadBalancerIP" in kinds and has_selector
        if not has_selector:
            report.note(ref, router.at("serviceSelector"),
                        "unset: Cilium announces no Service from this router; no "
                        "BGPAdvertisement written")
        elif sel is not None:
            service_selector_loss(sel, services, ref, router.at("serviceSelector"), report)
        groups: dict[tuple[Any, ...], tuple[list[tuple[JSON | None, Attributes]], list[str]]]
        groups = {}
        for neighbor in router.items("neighbors"):
            peer = _neighbor(neighbor, policy, index, local, node_selector, out, origin_of(obj))
            if peer is not None:
                name, attributes = peer
                key = tuple((repr(s), a) for s, a in attributes)
                groups.setdefault(key, (attributes, []))[1].append(name)
        router.finish()
        if not announces:
            continue
        for number, (attributes, names) in enumerate(groups.values()):
            base = object_name(policy, str(index)) + (f"-{number}" if len(groups) > 1 else "")
            common: JSON = {"peers": sorted(names)}
            if node_selector:
                common["nodeSelectors"] = [node_selector]
            where = router.at("neighbors[].advertisedPathAttributes")
            _advertise(base, common, attributes, where, obj, out)
    spec.finish()


def _neighbor(nb: Fields, policy: str, router: int, local: int, node_selector: JSON | None,
              out: Output, origin: str) -> tuple[str, list[tuple[JSON | None, Attributes]]] | None:
    report, ref = nb.report, nb.ref
    raw = nb.take("peerAddress")
    try:
        interface = ipaddress.ip_interface(str(raw))
        if interface.network.prefixlen != interface.max_prefixlen:
            raise ValueError(f"{raw!r} is not a single host (/32 or /128)")
        address = str(interface.ip)
        peer: JSON = {"address": address, "asn": asn(nb.take("peerASN")), "localASN": local}
    except ValueError as exc:
        report.error(ref, nb.path, str(exc))
        return None
    port = nb.take("peerPort", 179)
    if port != 179:
        peer["port"] = port
    session = read_session(
        nb, nb.take("holdTimeSeconds"), nb.take("keepAliveTimeSeconds"),
        nb.take("connectRetryTimeSeconds"), nb.take("eBGPMultihopTTL"), nb.take("authSecretRef"),
    )
    peer.update(session.spec)
    restart = nb.sub("gracefulRestart")
    restart.drop("enabled", "vipam's speaker has no BGP graceful restart; dropped")
    restart.take("restartTimeSeconds")
    restart.finish()
    families(nb, "families", session)
    if node_selector:
        peer["nodeSelectors"] = [node_selector]
    attributes: list[tuple[JSON | None, Attributes]] = []
    for entry in nb.items("advertisedPathAttributes"):
        kind = entry.take("selectorType")
        sel = one_selector(entry, "selector")
        communities = communities_of(entry.sub("communities"))
        preference = entry.take("localPreference")
        entry.finish()
        if kind != "CiliumLoadBalancerIPPool":
            report.lose(ref, entry.path, f"{kind}: vipam announces no pod addresses; dropped")
            continue
        attributes.append((sel, (communities, preference)))
    nb.finish()
    name = object_name(policy, address)
    if ("BGPPeer", name) in out.objects:
        name = object_name(policy, str(router), address)
    if not out.add("BGPPeer", name, peer, source=ref, origin=origin):
        return None
    if session.multiprotocol:
        out.multiprotocol.append((name, ref, f"{nb.path}.families"))
    return name, attributes


def _advertise(base: str, common: JSON, attributes: list[tuple[JSON | None, Attributes]],
               where: str, obj: JSON, out: Output) -> None:
    """One advertisement per set of path attributes, over disjoint sets of pools."""
    origin, ref = origin_of(obj), f"{PEERING_POLICY}/{name_of(obj)}"
    if not attributes:
        out.add("BGPAdvertisement", base, dict(common), source=ref, origin=origin)
        return
    first_selector, first = attributes[0]
    if not first_selector:  # applies to every pool: the later entries can never apply
        out.add("BGPAdvertisement", base, {**common, **attribute_spec(first)}, source=ref,
                origin=origin)
        for number in range(1, len(attributes)):
            out.report.lose(ref, f"{where}[{number}]",
                            "an earlier entry already sets attributes for every pool; vipam "
                            "applies one set per address; dropped")
        return
    pools = {o["metadata"]["name"]: labels_of(o) for o in out.of_kind("IPPool")}
    if not pools:
        out.report.lose(ref, where, "selects pools by label, and no pool "
                        "is among the inputs to resolve it against; migrate the "
                        "CiliumLoadBalancerIPPools in the same run")
        return
    taken: set[str] = set()
    for number, (sel, attrs) in enumerate(attributes):
        parsed = LabelSelector.model_validate(sel or {})
        chosen = sorted(p for p, labels in pools.items() if parsed.matches(labels))
        again = [p for p in chosen if p in taken]
        if again:
            out.report.lose(ref, f"{where}[{number}]",
                            f"{', '.join(again)} already matched an earlier entry; vipam applies "
                            "one set of attributes per address; kept the earlier")
        chosen = [p for p in chosen if p not in taken]
        taken.update(chosen)
        if chosen:
            out.add("BGPAdvertisement", f"{base}-{number}",
                    {**common, "ipPools": chosen, **attribute_spec(attrs)},
                    source=ref, origin=origin)
    rest = sorted(set(pools) - taken)
    if rest:
        out.add("BGPAdvertisement", base, {**common, "ipPools": rest}, source=ref, origin=origin)
    out.report.note(ref, where,
                    "pool selectors were resolved to the pools they match now; name new pools "
                    "in the advertisements' spec.ipPools")
