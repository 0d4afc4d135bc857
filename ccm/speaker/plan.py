"""What every node must announce, from the cluster's objects. Pure: no I/O, no clock.

An address is announced when an advertisement selects its pool (by name or by label selector;
an advertisement that names no pool selects all) and the node (node selectors; none = every
node). For L2 exactly one node answers for an address: the rendezvous-hash owner among the
eligible nodes whose speaker is live. For BGP every eligible live node announces. With
externalTrafficPolicy: Local only nodes with a ready endpoint of the Service are eligible, so
traffic never lands on a node that would drop it.

The objects are read through the API contract (``ccm.contract``): which Services are ours and
what they show, and the advertisement and peer specs validated by the same models as the CRDs
and ``vipam check``. An object the models refuse is left out of the plan and listed in
``Plan.invalid``; everything else is still served.

Cost: a plan touches every announced address once, but never ranks every node for it. The
eligible node set depends only on which advertisements select the address's pool (and, under
the Local policy, on the Service's ready endpoints), so it is built once per set of selecting
advertisements; whether *this* node wins an address is an early-exit comparison
(``election.Electorate``), and the full owner of an address is computed only when asked
(``L2Duty.owner``: for the addresses this node holds or annotates). 10,000 addresses over 100
nodes cost tens of milliseconds, not the S x N weights a full ranking would. A plan still
reads every Service; ``ccm.speaker.planner`` keeps one current change by change, and this full
plan is its reference.

Services are folded in key order (the order a fresh list returns them), so a shared address
lists its Services, and takes the candidates of the last one, the same way on every speaker,
whatever order its informer learnt them in.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from ccm.contract import views
from ccm.contract.models import (
    BGPAdvertisementSpec,
    BGPPeerSpec,
    L2AdvertisementSpec,
    ObjectError,
    parse_spec,
)
from ccm.speaker.election import Electorate, outranks, owner

JSON = dict[str, Any]
Spec = TypeVar("Spec", L2AdvertisementSpec, BGPAdvertisementSpec)


class L2Duty:
    """One L2 address: who may answer for it and whether this node does.

    The candidates are its field's (``Candidates``), shared by every address of that field
    and refreshed in place when a speaker joins or leaves, so that only the addresses whose
    election changed get a new duty. ``owner`` and ``interfaces`` are derived when asked: a
    speaker needs them only for the addresses it holds or annotates, not for the other nodes'
    share. Two duties are equal when they say the same (the same candidates by value)."""

    __slots__ = ("field", "ip", "mine", "services")

    def __init__(self, ip: str, services: tuple[str, ...], field: Candidates,
                 mine: bool) -> None:
        self.ip = ip
        self.services = services  # namespace/name of every Service showing it (sharing)
        self.field = field
        self.mine = mine  # this node is the owner (exactly ``owner == node``)

    @property
    def candidates(self) -> frozenset[str]:
        """The live eligible nodes: the election's field."""
        return self.field.nodes

    @property
    def node_interfaces(self) -> Mapping[str, frozenset[str]]:
        return self.field.interfaces

    @property
    def owner(self) -> str | None:
        return self.field.electorate.node if self.mine else self.field.owner(self.ip)

    @property
    def interfaces(self) -> tuple[str, ...]:
        """The owner's interfaces from its advertisements; empty: the one routing the VIP."""
        chosen = self.owner
        return tuple(sorted(self.field.interfaces.get(chosen, ()))) if chosen else ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, L2Duty):
            return NotImplemented
        return (self.ip == other.ip and self.mine == other.mine
                and self.services == other.services
                and (self.field is other.field
                     or (self.field.nodes == other.field.nodes
                         and self.field.interfaces == other.field.interfaces)))

    __hash__ = None  # type: ignore[assignment]  # compared by value, and the field changes

    def __repr__(self) -> str:
        return (f"L2Duty(ip={self.ip!r}, services={self.services!r}, "
                f"candidates={sorted(self.candidates)!r}, mine={self.mine!r})")


@dataclass(frozen=True)
class BGPDuty:
    ip: str
    services: tuple[str, ...]
    communities: tuple[str, ...]
    local_pref: int | None
    peers: tuple[str, ...]  # BGPPeer names; empty: every peer of this node


@dataclass(frozen=True)
class PeerChoice:
    """A BGPPeer that selects this node, its spec validated by the contract model."""

    name: str
    spec: BGPPeerSpec
    obj: JSON  # the object itself, for Events


@dataclass(frozen=True)
class Invalid:
    """An object the contract models refuse: left out of the plan, reported by the process."""

    kind: str
    name: str
    message: str
    obj: JSON


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
    l2: dict[str, L2Duty] = field(default_factory=dict)  # every L2 address -> its duty
    bgp: dict[str, BGPDuty] = field(default_factory=dict)  # what *this* node announces
    peers: list[PeerChoice] = field(default_factory=list)  # BGPPeers that select this node
    invalid: list[Invalid] = field(default_factory=list)  # refused objects, left out


@dataclass
class _Advertisement(Generic[Spec]):
    """One advertisement, parsed once per plan (a plan covers every Service)."""

    name: str
    spec: Spec
    nodes: frozenset[str]  # live nodes its node selectors admit
    _pool_answers: dict[str, bool] = field(default_factory=dict)
    _node_answers: dict[str, bool] = field(default_factory=dict)

    def admit(self, live: frozenset[str], node_labels: Mapping[str, Mapping[str, str]]) -> None:
        """Take the live nodes its node selectors admit as ``nodes``."""
        answers = self._node_answers
        admitted = []
        for node in live:
            answer = answers.get(node)
            if answer is None:
                answer = answers[node] = self.spec.selects_node(node_labels.get(node, {}))
            if answer:
                admitted.append(node)
        self.nodes = frozenset(admitted)

    def selects_pool(self, pool: str, pools: Mapping[str, JSON]) -> bool:
        answer = self._pool_answers.get(pool)
        if answer is None:
            answer = self.spec.selects_pool(pool, views.labels_of(pools.get(pool)))
            self._pool_answers[pool] = answer
        return answer


def _parse(kind: str, model: type[Spec], objects: Mapping[str, JSON], live: frozenset[str],
           node_labels: Mapping[str, Mapping[str, str]], invalid: list[Invalid],
           ) -> list[_Advertisement[Spec]]:
    parsed = []
    for key, obj in objects.items():
        name = views.meta_of(obj).get("name") or key
        try:
            spec = parse_spec(kind, name, obj.get("spec") or {})
        except ObjectError as exc:
            invalid.append(Invalid(kind, name, str(exc), obj))
            continue
        assert isinstance(spec, model)
        advertisement = _Advertisement(name=name, spec=spec, nodes=frozenset())
        advertisement.admit(live, node_labels)
        parsed.append(advertisement)
    return parsed


def ready_nodes_of(endpoint_slice: JSON) -> set[str]:
    """The nodes with a ready endpoint in one EndpointSlice (readiness unknown counts)."""
    nodes = set()
    for endpoint in cast(views.EndpointSlice, endpoint_slice).get("endpoints") or []:
        ready = (endpoint.get("conditions") or {}).get("ready")
        node = endpoint.get("nodeName")
        if node and ready is not False:
            nodes.add(node)
    return nodes


def slice_service(endpoint_slice: JSON | None) -> tuple[str, str] | None:
    """(namespace, Service name) an EndpointSlice belongs to (its service-name label)."""
    if endpoint_slice is None:
        return None
    service = views.labels_of(endpoint_slice).get("kubernetes.io/service-name")
    if not service:
        return None
    return views.meta_of(endpoint_slice).get("namespace", ""), service


def _ready_nodes_index(slices: Mapping[str, JSON]) -> dict[tuple[str, str], set[str]]:
    """(namespace, service name) -> nodes with a ready endpoint, from every EndpointSlice."""
    index: dict[tuple[str, str], set[str]] = {}
    for obj in slices.values():
        owner_key = slice_service(obj)
        if owner_key is not None:
            index.setdefault(owner_key, set()).update(ready_nodes_of(obj))
    return index


def is_local(svc: views.Service) -> bool:
    """externalTrafficPolicy: Local: only nodes with a ready endpoint are eligible."""
    return (svc.get("spec") or {}).get("externalTrafficPolicy") == "Local"


def service_addresses(svc: views.Service, serve_unclassed: bool) -> list[tuple[str, str]]:
    """(ip, pool) for every address the controller wrote on one Service (none: not ours)."""
    if not views.is_ours(svc, serve_unclassed):
        return []
    pools = views.allocated_from(svc)
    if not pools:
        return []
    # dual-stack from two pools: annotation order follows the address order
    return [(ip, pools[min(index, len(pools) - 1)])
            for index, ip in enumerate(views.ingress_ips(svc))]


class Candidates:
    """The L2 candidates of the addresses one set of selecting advertisements covers (under
    the Local policy: and one set of ready nodes), with this node's electorate over them.

    Duties refer to their field rather than carry its nodes, so when a speaker joins or
    leaves a planner refreshes each field once, in place (``refresh``), and touches only the
    addresses whose election changed. The owners asked for are cached here and kept right
    through refreshes (a joining node takes an address only if it outweighs the owner; a
    leaving one gives up only its own)."""

    __slots__ = ("_owners", "_ready", "_selecting", "electorate", "epoch", "interfaces", "nodes")

    def __init__(self, node: str, selecting: list[_Advertisement[L2AdvertisementSpec]],
                 ready: frozenset[str] | None, epoch: int = 0) -> None:
        self._selecting = selecting
        self._ready = ready
        self.epoch = epoch  # the live set it was last refreshed for (``_L2Fields``)
        self.nodes: frozenset[str] = frozenset()
        self.interfaces: dict[str, frozenset[str]] = {}
        self.electorate = Electorate(node, ())
        self._owners: dict[str, str | None] = {}
        self.refresh()

    def refresh(self) -> tuple[frozenset[str], frozenset[str]]:
        """Take the advertisements' nodes as they are now; the nodes that (joined, left)."""
        interfaces: dict[str, set[str]] = {}
        ready = self._ready
        for advertisement in self._selecting:
            nodes = advertisement.nodes if ready is None else advertisement.nodes & ready
            for candidate in nodes:
                interfaces.setdefault(candidate, set()).update(advertisement.spec.interfaces)
        members = frozenset(interfaces)
        before = self.nodes
        self.interfaces = {n: frozenset(i) for n, i in interfaces.items()}
        if members == before:
            return _NONE, _NONE
        joined, left = members - before, before - members
        self.nodes = members
        self.electorate = Electorate(self.electorate.node, members)
        owners = self._owners
        if len(owners) > OWNER_CACHE_LIMIT:
            owners.clear()
        for ip, held in list(owners.items()):
            if held is None or held in left:
                del owners[ip]  # asked again when needed
            else:
                for node in joined:
                    if outranks(ip, node, held):
                        held = owners[ip] = node
        return joined, left

    @property
    def ready(self) -> frozenset[str] | None:
        """The ready nodes it is limited to (Local), None when it is not."""
        return self._ready

    def owner(self, ip: str) -> str | None:
        """The owner of ``ip`` among these candidates (all of them ranked, then cached)."""
        try:
            return self._owners[ip]
        except KeyError:
            found = self._owners[ip] = owner(ip, self.nodes)
            return found


_NONE: frozenset[str] = frozenset()
# owners remembered per field before the cache starts over (each entry is kept right through
# a join or leave at the cost of a weight per joining node)
OWNER_CACHE_LIMIT = 65536
_FieldKey = tuple[int, ...] | tuple[tuple[int, ...], frozenset[str]]


class _L2Fields:
    """Candidate sets, built once per distinct set of selecting advertisements (and, under the
    Local policy, per distinct set of ready nodes): a plan of 10,000 Services over a handful of
    advertisements builds a handful of them, never one per address."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._fields: dict[_FieldKey, Candidates] = {}
        self._epoch = 0  # one more for each new live set (``Planning.relive``)

    def __len__(self) -> int:
        return len(self._fields)

    def advance(self) -> None:
        """The live set changed: every field is stale until refreshed."""
        self._epoch += 1

    def refresh(self, found: Candidates) -> tuple[frozenset[str], frozenset[str]]:
        """Bring one field up to the current live set: the nodes that (joined, left)."""
        found.epoch = self._epoch
        return found.refresh()

    def retain(self, keep: Container[Candidates]) -> None:
        self._fields = {key: found for key, found in self._fields.items() if found in keep}

    def get(self, selecting: list[_Advertisement[L2AdvertisementSpec]],
            ready: frozenset[str] | None) -> Candidates:
        ids = tuple(id(a) for a in selecting)
        key = ids if ready is None else (ids, ready)
        found = self._fields.get(key)
        if found is None:
            found = self._fields[key] = Candidates(self.node, selecting, ready, self._epoch)
        elif found.epoch != self._epoch:
            self.refresh(found)  # one no duty refers to (a planner refreshes those it uses)
        return found


class Planning:
    """Everything a plan reads besides the Services and endpoints: the advertisements parsed
    and matched to nodes, the pools, the peers. Built once per plan (``make_plan``), or once
    per global change and kept (``ccm.speaker.planner``)."""

    def __init__(self, view: ClusterView, node: str, live: frozenset[str]) -> None:
        self.node = node
        self.live = live
        self.pools = view.pools
        self.serve_unclassed = view.serve_unclassed
        self.invalid: list[Invalid] = []
        node_labels = self._node_labels = {
            name: views.labels_of(obj) for name, obj in view.nodes.items()}
        self.l2_ads = _parse("L2Advertisement", L2AdvertisementSpec, view.l2_advertisements,
                             live, node_labels, self.invalid)
        self.bgp_ads = _parse("BGPAdvertisement", BGPAdvertisementSpec,
                              view.bgp_advertisements, live, node_labels, self.invalid)
        self.peers = list(_peers(view.peers.items(), node_labels.get(node, {}), self.invalid))
        self.fields = _L2Fields(node)
        self._l2_by_pool: dict[str, list[_Advertisement[L2AdvertisementSpec]]] = {}
        self._field_by_pool: dict[str, Candidates | None] = {}  # the candidates, not Local
        self._bgp_by_pool: dict[str, list[BGPAdvertisementSpec]] = {}

    def relive(self, live: frozenset[str]) -> None:
        """Other speakers joined or left (ours is the same): the advertisements take the new
        live set. The fields the caller's duties use are its to refresh
        (``fields.refresh``); any other is refreshed when next looked up."""
        self.live = live
        self.fields.advance()
        for l2 in self.l2_ads:
            l2.admit(live, self._node_labels)
        for bgp in self.bgp_ads:
            bgp.admit(live, self._node_labels)
        self._field_by_pool.clear()

    def keep_fields(self, keep: Container[Candidates]) -> None:
        """Forget every field not in ``keep``: a later lookup builds it afresh."""
        self.fields.retain(keep)
        self._field_by_pool = {pool: found for pool, found in self._field_by_pool.items()
                               if found is None or found in keep}

    def l2_field(self, pool: str, ready: frozenset[str] | None) -> Candidates | None:
        """The candidates of an address from ``pool`` (None: no L2Advertisement selects it)."""
        if ready is None and pool in self._field_by_pool:
            return self._field_by_pool[pool]
        selecting = self._l2_by_pool.get(pool)
        if selecting is None:
            selecting = self._l2_by_pool[pool] = [
                a for a in self.l2_ads if a.selects_pool(pool, self.pools)]
        found = self.fields.get(selecting, ready) if selecting else None
        if ready is None:
            self._field_by_pool[pool] = found
        return found

    def bgp_specs(self, pool: str, ready: frozenset[str] | None) -> list[BGPAdvertisementSpec]:
        """The BGPAdvertisements (in order) under which this node announces an address."""
        if ready is not None and self.node not in ready:
            return []
        found = self._bgp_by_pool.get(pool)
        if found is None:
            found = self._bgp_by_pool[pool] = [
                a.spec for a in self.bgp_ads
                if self.node in a.nodes and a.selects_pool(pool, self.pools)]
        return found


def bgp_duty(ip: str, services: tuple[str, ...], spec: BGPAdvertisementSpec) -> BGPDuty:
    return BGPDuty(ip, services, tuple(spec.communities), spec.local_pref, tuple(spec.peers))


def make_plan(view: ClusterView, node: str, live: frozenset[str]) -> Plan:
    """The whole plan, every Service in key order (the order a fresh list returns them).

    A shared address lists its Services in that order and takes the candidates of the last
    one: every speaker sees the same order whatever order its informer learnt them in."""
    planning = Planning(view, node, live)
    plan = Plan(peers=planning.peers, invalid=planning.invalid)
    ready_index: dict[tuple[str, str], set[str]] | None = None

    def ready_nodes(svc: views.Service) -> frozenset[str] | None:
        """None: every node is eligible; else the nodes with a ready endpoint (Local)."""
        nonlocal ready_index
        if not is_local(svc):
            return None
        if ready_index is None:
            ready_index = _ready_nodes_index(view.endpoint_slices)
        meta = svc.get("metadata") or {}
        return frozenset(ready_index.get((meta.get("namespace", ""), meta.get("name", "")), ()))

    services = view.services
    for key in sorted(services):
        svc = views.service(services[key])
        addresses = service_addresses(svc, view.serve_unclassed)
        if not addresses:
            continue
        ready = ready_nodes(svc)
        for ip, pool in addresses:
            # L2: one owner over the union of nodes of every advertisement that selects the pool
            found = planning.l2_field(pool, ready)
            if found is not None:
                previous = plan.l2.get(ip)
                plan.l2[ip] = L2Duty(ip, (*previous.services, key) if previous else (key,),
                                     found, found.electorate.wins(ip))
            for spec in planning.bgp_specs(pool, ready):
                known = plan.bgp.get(ip)
                plan.bgp[ip] = bgp_duty(ip, (*known.services, key) if known else (key,), spec)
    return plan


def _peers(objects: Iterable[tuple[str, JSON]], labels: Mapping[str, str],
           invalid: list[Invalid]) -> Iterator[PeerChoice]:
    for key, obj in objects:
        name = views.meta_of(obj).get("name") or key
        try:
            spec = parse_spec("BGPPeer", name, obj.get("spec") or {})
        except ObjectError as exc:
            invalid.append(Invalid("BGPPeer", name, str(exc), obj))
            continue
        assert isinstance(spec, BGPPeerSpec)
        if spec.selects_node(labels):
            yield PeerChoice(name, spec, obj)
