"""What every node must announce, from the cluster's objects. Pure: no I/O, no clock.

An address is announced when an advertisement selects its pool (by name or by label selector;
an advertisement that names no pool selects all) and the node (node selectors; none = every
node). For L2 exactly one node answers for an address: the rendezvous-hash owner among the
eligible nodes whose speaker is live. For BGP every eligible live node announces. With
externalTrafficPolicy: Local only nodes with a ready endpoint of the Service are eligible, so
traffic never lands on a node that would drop it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ccm.controller import names
from ccm.speaker.election import owner
from pools.model import LabelSelector

JSON = dict[str, Any]


@dataclass(frozen=True)
class L2Duty:
    ip: str
    service: str  # namespace/name
    owner: str | None
    interfaces: tuple[str, ...]  # empty: the interface that routes to the address


@dataclass(frozen=True)
class BGPDuty:
    ip: str
    service: str
    communities: tuple[str, ...]
    local_pref: int | None
    peers: tuple[str, ...]  # BGPPeer names; empty: every peer of this node


@dataclass(frozen=True)
class ClusterView:
    """The informer caches the plan reads (dicts keyed as the informers key them)."""

    services: Mapping[str, JSON]
    pools: Mapping[str, JSON]
    l2_advertisements: Mapping[str, JSON]
    bgp_advertisements: Mapping[str, JSON]
    peers: Mapping[str, JSON]
    nodes: Mapping[str, JSON]
    endpoint_slices: Mapping[str, JSON]
    serve_unclassed: bool = True


@dataclass
class Plan:
    l2: dict[str, L2Duty] = field(default_factory=dict)  # every L2 address -> its owner
    bgp: dict[str, BGPDuty] = field(default_factory=dict)  # what *this* node announces
    peers: list[JSON] = field(default_factory=list)  # BGPPeer objects that select this node


def _labels(obj: JSON | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def _selects(selectors: Iterable[JSON], labels: Mapping[str, str]) -> bool:
    selectors = list(selectors)
    if not selectors:
        return True
    return any(LabelSelector.model_validate(s).matches(labels) for s in selectors)


def _selects_pool(spec: JSON, pool: str, pools: Mapping[str, JSON]) -> bool:
    named = spec.get("ipPools") or []
    selectors = spec.get("ipPoolSelectors") or []
    if not named and not selectors:
        return True
    if pool in named:
        return True
    return bool(selectors) and _selects(selectors, _labels(pools.get(pool)))


def _ready_nodes(service: JSON, slices: Mapping[str, JSON]) -> set[str]:
    meta = service.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    nodes: set[str] = set()
    for endpoint_slice in slices.values():
        slice_meta = endpoint_slice.get("metadata") or {}
        if slice_meta.get("namespace") != namespace:
            continue
        if _labels(endpoint_slice).get("kubernetes.io/service-name") != name:
            continue
        for endpoint in endpoint_slice.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready")
            if endpoint.get("nodeName") and ready is not False:
                nodes.add(str(endpoint["nodeName"]))
    return nodes


def _announced_addresses(view: ClusterView) -> Iterable[tuple[str, JSON, str, str]]:
    """(service key, service, ip, pool) for every address the controller wrote."""
    for key, svc in view.services.items():
        spec = svc.get("spec") or {}
        meta = svc.get("metadata") or {}
        if spec.get("type") != "LoadBalancer" or meta.get("deletionTimestamp"):
            continue
        lb_class = spec.get("loadBalancerClass")
        if lb_class != names.LOAD_BALANCER_CLASS and not (
            lb_class is None and view.serve_unclassed
        ):
            continue
        pools = [
            p for p in ((meta.get("annotations") or {}).get(names.ANN_ALLOCATED_FROM) or "")
            .split(",") if p
        ]
        if not pools:
            continue
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        for index, entry in enumerate(ingress):
            ip = entry.get("ip")
            if ip:
                # dual-stack from two pools: annotation order follows the address order
                yield key, svc, str(ip), pools[min(index, len(pools) - 1)]


def make_plan(view: ClusterView, node: str, live: frozenset[str]) -> Plan:
    plan = Plan()
    node_labels = {name: _labels(obj) for name, obj in view.nodes.items()}

    def eligible(selectors: Iterable[JSON], svc: JSON) -> set[str]:
        candidates = {n for n in live if _selects(selectors, node_labels.get(n, {}))}
        if (svc.get("spec") or {}).get("externalTrafficPolicy") == "Local":
            candidates &= _ready_nodes(svc, view.endpoint_slices)
        return candidates

    for key, svc, ip, pool in _announced_addresses(view):
        # L2: one owner over the union of nodes of every advertisement that selects the pool
        candidates: dict[str, set[str]] = {}  # node -> interfaces it would use
        for advertisement in view.l2_advertisements.values():
            spec = advertisement.get("spec") or {}
            if not _selects_pool(spec, pool, view.pools):
                continue
            for candidate in eligible(spec.get("nodeSelectors") or [], svc):
                candidates.setdefault(candidate, set()).update(spec.get("interfaces") or ())
        if candidates or any(
            _selects_pool(a.get("spec") or {}, pool, view.pools)
            for a in view.l2_advertisements.values()
        ):
            chosen = owner(ip, candidates)
            interfaces = tuple(sorted(candidates.get(chosen, set()))) if chosen else ()
            plan.l2[ip] = L2Duty(ip, key, chosen, interfaces)
        for advertisement in view.bgp_advertisements.values():
            spec = advertisement.get("spec") or {}
            if not _selects_pool(spec, pool, view.pools):
                continue
            if node not in eligible(spec.get("nodeSelectors") or [], svc):
                continue
            plan.bgp[ip] = BGPDuty(
                ip, key, tuple(spec.get("communities") or ()), spec.get("localPref"),
                tuple(spec.get("peers") or ()),
            )
    for peer in view.peers.values():
        if _selects((peer.get("spec") or {}).get("nodeSelectors") or [],
                    node_labels.get(node, {})):
            plan.peers.append(peer)
    return plan
