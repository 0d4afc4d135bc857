"""Incremental planning: a Service change re-plans that Service's addresses, not every Service.

``plan.make_plan`` reads every Service: ~12 µs per address, so 120 ms at 10,000 Services for
one Service created. The ``Planner`` keeps what each Service contributes (its addresses, the
L2 candidates and BGP advertisements each one gets) and, for each address, which Services
show it; a batch of changed Service keys is re-planned in time proportional to the batch:
each touched address folds its few Services again and runs its election among its candidate
nodes (the O(nodes) part, usually ~5 weights). EndpointSlices are indexed by the Service they
belong to, so an endpoint change re-plans that one Service (``externalTrafficPolicy: Local``).

Everything else a plan reads — pools, L2/BGP advertisements, BGPPeers, Node labels, the set of
live speakers — is a *global* change: it rebuilds the whole plan, which costs what
``make_plan`` costs. These are rare next to Service and endpoint changes (a speaker joining
or leaving, an operator editing an advertisement); a live set that differs from the last one
rebuilds too, whoever reported it.

The result always equals ``make_plan`` over the same view (a hypothesis test applies random
changes and compares after each step), and ``update`` says which addresses may have changed
and which Services' announcing-node annotation may need a write, so the process applies only
those. Pure: no I/O, no clock; the plan is updated in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from ccm.contract import views
from ccm.contract.models import BGPAdvertisementSpec
from ccm.speaker.plan import (
    JSON,
    BGPDuty,
    Candidates,
    ClusterView,
    L2Duty,
    Plan,
    Planning,
    bgp_duty,
    is_local,
    ready_nodes_of,
    service_addresses,
    slice_service,
)

Duty = TypeVar("Duty", L2Duty, BGPDuty)

# Local Services with endpoints that keep moving make new candidate sets; past this many the
# cache of candidate sets is dropped (it is only a cache: duties compare by value)
FIELD_CACHE_LIMIT = 4096


class _Share(NamedTuple):
    """What one Service contributes, in its address order (an address may repeat)."""

    l2: tuple[tuple[str, Candidates], ...]
    bgp: tuple[tuple[str, BGPAdvertisementSpec], ...]  # one per (address, advertisement)


@dataclass(frozen=True)
class Changes:
    """What an ``update`` changed. ``full``: the plan was rebuilt, any address and any
    Service may have changed (the sets are left empty: apply everything)."""

    full: bool
    addresses: frozenset[str]  # every L2 or BGP address whose duty may differ
    services: frozenset[str]  # Services whose announcing-node annotation may need a write


class Planner:
    """One node's plan, kept current by the changes the informers report."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.plan = Plan()
        self._planning: Planning | None = None
        self._shares: dict[str, _Share] = {}
        # address -> the Service keys showing it, sorted (the order make_plan folds them in)
        self._l2_sharers: dict[str, tuple[str, ...]] = {}
        self._bgp_sharers: dict[str, tuple[str, ...]] = {}
        # (namespace, Service name) <-> EndpointSlice keys, for Local readiness
        self._slices: dict[tuple[str, str], set[str]] = {}
        self._slice_owner: dict[str, tuple[str, str]] = {}
        self._dirty: set[str] = set()
        self._everything = True

    # -- what changed ------------------------------------------------------------------------

    def service_changed(self, key: str) -> None:
        self._dirty.add(key)

    def slice_changed(self, key: str, old: JSON | None, new: JSON | None) -> None:
        """An EndpointSlice changed: re-plan the Service(s) it belonged to and belongs to."""
        was = self._slice_owner.pop(key, None)
        if was is not None:
            self._forget_slice(was, key)
        now = slice_service(new)
        if now is not None:
            self._slices.setdefault(now, set()).add(key)
            self._slice_owner[key] = now
        for owner in {was, slice_service(old), now}:
            if owner is not None:
                self._dirty.add(f"{owner[0]}/{owner[1]}")

    def everything_changed(self) -> None:
        """A global change (or a failed apply): the next ``update`` rebuilds the whole plan."""
        self._everything = True

    @property
    def pending(self) -> bool:
        return self._everything or bool(self._dirty)

    # -- planning ----------------------------------------------------------------------------

    def update(self, view: ClusterView, live: frozenset[str]) -> Changes:
        """Bring the plan up to date with ``view`` and the ``live`` speakers."""
        planning = self._planning
        if self._everything or planning is None or live != planning.live:
            return self._rebuild(view, live)
        if len(planning.fields) > FIELD_CACHE_LIMIT:
            planning.fields.clear()
        dirty, self._dirty = self._dirty, set()
        touched_l2: set[str] = set()
        touched_bgp: set[str] = set()
        for key in dirty:
            old = self._shares.pop(key, None)
            if old is not None:
                for ip, _ in old.l2:
                    _leave(self._l2_sharers, ip, key)
                    touched_l2.add(ip)
                for ip, _ in old.bgp:
                    _leave(self._bgp_sharers, ip, key)
                    touched_bgp.add(ip)
            obj = view.services.get(key)
            share = None if obj is None else self._share(planning, view, views.service(obj))
            if share is not None:
                self._shares[key] = share
                for ip, _ in share.l2:
                    _join(self._l2_sharers, ip, key)
                    touched_l2.add(ip)
                for ip, _ in share.bgp:
                    _join(self._bgp_sharers, ip, key)
                    touched_bgp.add(ip)
        changed: set[str] = set()
        services = set(dirty)
        for ip in touched_l2:
            before, after = self.plan.l2.get(ip), self._l2_duty(ip)
            if before != after:
                _store(self.plan.l2, ip, after)
                changed.add(ip)
                services.update(_services(before, after))
        for ip in touched_bgp:
            was, now = self.plan.bgp.get(ip), self._bgp_duty(ip)
            if was != now:
                _store(self.plan.bgp, ip, now)
                changed.add(ip)
                services.update(_services(was, now))
        return Changes(False, frozenset(changed), frozenset(services))

    def _rebuild(self, view: ClusterView, live: frozenset[str]) -> Changes:
        planning = Planning(view, self.node, live)
        self._planning, self._everything, self._dirty = planning, False, set()
        self._slices, self._slice_owner = {}, {}
        for key, obj in view.endpoint_slices.items():
            owner = slice_service(obj)
            if owner is not None:
                self._slices.setdefault(owner, set()).add(key)
                self._slice_owner[key] = owner
        self._shares = {}
        l2_keys: dict[str, list[str]] = {}
        l2_fields: dict[str, Candidates] = {}
        bgp_keys: dict[str, list[str]] = {}
        bgp_specs: dict[str, BGPAdvertisementSpec] = {}
        services = view.services
        for key in sorted(services):
            share = self._share(planning, view, views.service(services[key]))
            if share is None:
                continue
            self._shares[key] = share
            for ip, field in share.l2:  # a shared address takes its last Service's field
                known = l2_keys.get(ip)
                if known is None:
                    l2_keys[ip] = [key]
                else:
                    known.append(key)
                l2_fields[ip] = field
            for ip, spec in share.bgp:
                seen = bgp_keys.get(ip)
                if seen is None:
                    bgp_keys[ip] = [key]
                else:
                    seen.append(key)
                bgp_specs[ip] = spec
        plan = Plan(peers=planning.peers, invalid=planning.invalid)
        self._l2_sharers, self._bgp_sharers = {}, {}
        for ip, keys in l2_keys.items():
            field, names = l2_fields[ip], tuple(keys)
            plan.l2[ip] = L2Duty(ip, names, field.nodes, field.electorate.wins(ip),
                                 field.interfaces)
            self._l2_sharers[ip] = names if len(names) == 1 else tuple(dict.fromkeys(names))
        for ip, keys in bgp_keys.items():
            names = tuple(keys)
            plan.bgp[ip] = bgp_duty(ip, names, bgp_specs[ip])
            self._bgp_sharers[ip] = names if len(names) == 1 else tuple(dict.fromkeys(names))
        self.plan = plan
        return Changes(True, frozenset(), frozenset())

    def _share(self, planning: Planning, view: ClusterView, svc: views.Service) -> _Share | None:
        addresses = service_addresses(svc, planning.serve_unclassed)
        if not addresses:
            return None
        ready = self._ready(view, svc) if is_local(svc) else None
        l2_field = planning.l2_field
        l2 = tuple([(ip, found) for ip, pool in addresses
                    if (found := l2_field(pool, ready)) is not None])
        bgp = tuple([(ip, spec) for ip, pool in addresses
                     for spec in planning.bgp_specs(pool, ready)]) if planning.bgp_ads else ()
        return _Share(l2, bgp) if l2 or bgp else None

    def _ready(self, view: ClusterView, svc: views.Service) -> frozenset[str]:
        meta = svc.get("metadata") or {}
        nodes: set[str] = set()
        for key in self._slices.get((meta.get("namespace", ""), meta.get("name", "")), ()):
            endpoint_slice = view.endpoint_slices.get(key)
            if endpoint_slice is not None:
                nodes |= ready_nodes_of(endpoint_slice)
        return frozenset(nodes)

    def _forget_slice(self, owner: tuple[str, str], key: str) -> None:
        keys = self._slices.get(owner)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._slices[owner]

    def _l2_duty(self, ip: str) -> L2Duty | None:
        services: list[str] = []
        field: Candidates | None = None
        for key in self._l2_sharers.get(ip, ()):
            for address, found in self._shares[key].l2:
                if address == ip:
                    services.append(key)
                    field = found
        if field is None:
            return None
        return L2Duty(ip, tuple(services), field.nodes, field.electorate.wins(ip),
                      field.interfaces)

    def _bgp_duty(self, ip: str) -> BGPDuty | None:
        services: list[str] = []
        spec: BGPAdvertisementSpec | None = None
        for key in self._bgp_sharers.get(ip, ()):
            for address, found in self._shares[key].bgp:
                if address == ip:
                    services.append(key)
                    spec = found
        return None if spec is None else bgp_duty(ip, tuple(services), spec)

    # -- what the process reads --------------------------------------------------------------

    def l2_services(self) -> Iterator[str]:
        """Every Service with an L2 address in the plan."""
        return (key for key, share in self._shares.items() if share.l2)

    def l2_addresses(self, key: str) -> list[str]:
        """The Service's addresses in the L2 plan, in its address order."""
        share = self._shares.get(key)
        return list(dict.fromkeys(ip for ip, _ in share.l2)) if share is not None else []


def _join(sharers: dict[str, tuple[str, ...]], ip: str, key: str) -> None:
    known = sharers.get(ip, ())
    if key not in known:
        sharers[ip] = tuple(sorted((*known, key)))


def _leave(sharers: dict[str, tuple[str, ...]], ip: str, key: str) -> None:
    rest = tuple(k for k in sharers.get(ip, ()) if k != key)
    if rest:
        sharers[ip] = rest
    else:
        sharers.pop(ip, None)


def _store(duties: dict[str, Duty], ip: str, duty: Duty | None) -> None:
    if duty is None:
        duties.pop(ip, None)
    else:
        duties[ip] = duty


def _services(*duties: L2Duty | BGPDuty | None) -> Iterator[str]:
    for duty in duties:
        if duty is not None:
            yield from duty.services
