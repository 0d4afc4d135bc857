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

from ccm.contract import names
from ccm.speaker.election import owner
from pools.model import LabelSelector

JSON = dict[str, Any]


@dataclass(frozen=True)
class L2Duty:
    ip: str
    services: tuple[str, ...]  # namespace/name of every Service showing the address (sharing)
    owner: str | None
    interfaces: tuple[str, ...]  # empty: the interface that routes to the address


@dataclass(frozen=True)
class BGPDuty:
    ip: str
    services: tuple[str, ...]
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


def _selectors(raw: Iterable[JSON]) -> list[LabelSelector]:
    return [LabelSelector.model_validate(s) for s in raw]


def _selects(selectors: list[LabelSelector], labels: Mapping[str, str]) -> bool:
    """Any selector matches; no selector at all means everything."""
    return not selectors or any(s.matches(labels) for s in selectors)


@dataclass
class _Advertisement:
    """One advertisement, parsed once per plan (a plan covers every Service)."""

    spec: JSON
    pool_names: frozenset[str]
    pool_selectors: list[LabelSelector]
    nodes: frozenset[str]  # live nodes its node selectors admit
    _pool_answers: dict[str, bool] = field(default_factory=dict)

    def selects_pool(self, pool: str, pools: Mapping[str, JSON]) -> bool:
        answer = self._pool_answers.get(pool)
        if answer is None:
            answer = (not self.pool_names and not self.pool_selectors) or pool in self.pool_names
            if not answer and self.pool_selectors:
                answer = _selects(self.pool_selectors, _labels(pools.get(pool)))
            self._pool_answers[pool] = answer
        return answer


def _parse(advertisements: Mapping[str, JSON], live: frozenset[str],
           node_labels: Mapping[str, Mapping[str, str]]) -> list[_Advertisement]:
    parsed = []
    for obj in advertisements.values():
        spec = obj.get("spec") or {}
        node_selectors = _selectors(spec.get("nodeSelectors") or [])
        parsed.append(_Advertisement(
            spec=spec,
            pool_names=frozenset(spec.get("ipPools") or ()),
            pool_selectors=_selectors(spec.get("ipPoolSelectors") or []),
            nodes=frozenset(n for n in live if _selects(node_selectors, node_labels.get(n, {}))),
        ))
    return parsed


def _ready_nodes_index(slices: Mapping[str, JSON]) -> dict[tuple[str, str], set[str]]:
    """(namespace, service name) -> nodes with a ready endpoint, from every EndpointSlice."""
    index: dict[tuple[str, str], set[str]] = {}
    for endpoint_slice in slices.values():
        namespace = str((endpoint_slice.get("metadata") or {}).get("namespace", ""))
        service = _labels(endpoint_slice).get("kubernetes.io/service-name")
        if not service:
            continue
        nodes = index.setdefault((namespace, service), set())
        for endpoint in endpoint_slice.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready")
            if endpoint.get("nodeName") and ready is not False:
                nodes.add(str(endpoint["nodeName"]))
    return index


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
    l2_ads = _parse(view.l2_advertisements, live, node_labels)
    bgp_ads = _parse(view.bgp_advertisements, live, node_labels)
    ready_index: dict[tuple[str, str], set[str]] | None = None

    def eligible(advertisement: _Advertisement, svc: JSON) -> frozenset[str]:
        nonlocal ready_index
        if (svc.get("spec") or {}).get("externalTrafficPolicy") != "Local":
            return advertisement.nodes
        if ready_index is None:
            ready_index = _ready_nodes_index(view.endpoint_slices)
        meta = svc.get("metadata") or {}
        ready = ready_index.get((str(meta.get("namespace")), str(meta.get("name"))), set())
        return advertisement.nodes & ready

    for key, svc, ip, pool in _announced_addresses(view):
        # L2: one owner over the union of nodes of every advertisement that selects the pool
        selecting = [a for a in l2_ads if a.selects_pool(pool, view.pools)]
        if selecting:
            candidates: dict[str, set[str]] = {}  # node -> interfaces it would use
            for advertisement in selecting:
                for candidate in eligible(advertisement, svc):
                    candidates.setdefault(candidate, set()).update(
                        advertisement.spec.get("interfaces") or ()
                    )
            chosen = owner(ip, candidates)
            interfaces = tuple(sorted(candidates.get(chosen, set()))) if chosen else ()
            previous = plan.l2.get(ip)
            services = (*previous.services, key) if previous else (key,)
            plan.l2[ip] = L2Duty(ip, services, chosen, interfaces)
        for advertisement in bgp_ads:
            if not advertisement.selects_pool(pool, view.pools):
                continue
            if node not in eligible(advertisement, svc):
                continue
            spec = advertisement.spec
            known = plan.bgp.get(ip)
            plan.bgp[ip] = BGPDuty(
                ip, (*known.services, key) if known else (key,),
                tuple(spec.get("communities") or ()), spec.get("localPref"),
                tuple(spec.get("peers") or ()),
            )
    for peer in view.peers.values():
        selectors = _selectors((peer.get("spec") or {}).get("nodeSelectors") or [])
        if _selects(selectors, node_labels.get(node, {})):
            plan.peers.append(peer)
    return plan
