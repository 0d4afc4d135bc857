"""Incremental planning: a Service change re-plans that Service's addresses, not every Service.

``plan.make_plan`` reads every Service: ~10 µs per address, so 100 ms at 10,000 Services for
one Service created. The ``Planner`` keeps, for each Service, the addresses it shows (with
their pools) and, for each address, which Services show it; a batch of changed Service keys is
re-planned in time proportional to the batch: each touched address folds its few Services
again (as ``make_plan`` does, from the view) and runs its election among its candidate nodes
(the O(nodes) part, usually ~5 weights). EndpointSlices are indexed by the Service they belong
to, so an endpoint change re-plans that one Service (``externalTrafficPolicy: Local``).

Another speaker joining or leaving (a live set that differs from the last one, whoever
reported it) refreshes each field in use once, in place (an L2 duty refers to its field's
candidates), and elects again only the addresses whose owner can have changed: when a node
joins, those this node owns (it keeps each unless the newcomer outweighs it: one weight);
when one leaves, those it blocked (``election.Electorate.blocker``: the node this one lost
to, spread evenly over the others). With 10,000 addresses over 100 nodes that is about 100
addresses either way, not 10,000. No Service is read or folded again. What is reported is
what this node acts on: the addresses it gains or loses, and the Services whose annotation
it may write (those with one of its addresses and another that may have a new owner); the
candidates every other address now shows changed in place, with nothing to apply.

Everything else a plan reads — pools, L2/BGP advertisements, BGPPeers, Node labels, our own
liveness (on which our BGP duties depend) — is a *global* change: it rebuilds the whole plan,
which costs about what ``make_plan`` costs (10-20% more: it also records the addresses;
bench/speaker_scale measures both). These are rare next to Service and endpoint changes (an
operator editing an advertisement, a node relabelled).

The result always equals ``make_plan`` over the same view (a hypothesis test applies random
changes and compares after each step), and ``update`` says which addresses may have changed
and which Services' announcing-node annotation may need a write, so the process applies only
those. Pure: no I/O, no clock; the plan is updated in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
from ccm.speaker.rolls import Rolls

# Local Services with endpoints that keep moving make new candidate sets; past this many more
# than the duties refer to, the ones no duty refers to any more are forgotten
FIELD_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class Changes:
    """What an ``update`` changed. ``full``: the plan was rebuilt, any address and any
    Service may have changed (the sets are left empty: apply everything). ``re_elected``:
    the set of live speakers changed; the addresses this node gained or lost and the
    Services it may annotate are in the sets, besides what the Service changes touched
    (another address's candidates changed in place, with nothing to apply)."""

    full: bool
    addresses: frozenset[str]  # every L2 or BGP address whose duty may differ (see above)
    services: frozenset[str]  # Services whose announcing-node annotation may need a write
    re_elected: bool = False

    @property
    def kind(self) -> str:
        """For the plan CPU metric: full, live (re-elected) or incremental."""
        return "full" if self.full else "live" if self.re_elected else "incremental"


class Planner:
    """One node's plan, kept current by the changes the informers report."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.plan = Plan()
        self._planning: Planning | None = None
        # Service key -> the (address, pool) it shows, when ours (``plan.service_addresses``)
        self._addresses: dict[str, list[tuple[str, str]]] = {}
        # address -> the Service keys showing it, sorted (the order make_plan folds them in)
        self._sharers: dict[str, tuple[str, ...]] = {}
        # (namespace, Service name) <-> EndpointSlice keys, for Local readiness
        self._slices: dict[tuple[str, str], set[str]] = {}
        self._slice_owner: dict[str, tuple[str, str]] = {}
        self._dirty: set[str] = set()
        self._everything = True
        # every field the L2 duties refer to, with its addresses indexed for a re-election
        self._rolls = Rolls()

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
        if (self._everything or planning is None
                or (self.node in live) != (self.node in planning.live)):
            # our own liveness decides our BGP duties too: rare, planned from scratch
            return self._rebuild(view, live)
        changed: set[str] = set()
        services: set[str] = set()
        re_elected = live != planning.live
        if re_elected:
            self._re_elect(planning, live, changed, services)
        if len(planning.fields) > len(self._rolls) + FIELD_CACHE_LIMIT:
            planning.keep_fields(self._rolls)
        dirty, self._dirty = self._dirty, set()
        touched: set[str] = set()
        for key in dirty:
            for ip, _ in self._addresses.pop(key, ()):
                _leave(self._sharers, ip, key)
                touched.add(ip)
            obj = view.services.get(key)
            addresses = [] if obj is None else service_addresses(
                views.service(obj), planning.serve_unclassed)
            if addresses:
                self._addresses[key] = addresses
                for ip, _ in addresses:
                    _join(self._sharers, ip, key)
                    touched.add(ip)
        services.update(dirty)
        for ip in touched:
            l2, blocker, bgp = self._duties(planning, view, ip)
            before, was = self.plan.l2.get(ip), self.plan.bgp.get(ip)
            if before != l2 or (before and l2 and before.field is not l2.field):
                # (equal candidates from another field still move the address there: the
                # fields part ways at the next join or leave, e.g. two sets of ready nodes
                # that are both empty of live ones now)
                self._store_l2(ip, before, l2, blocker)
                changed.add(ip)
                services.update(_services(before, l2))
            if was != bgp:
                _store_bgp(self.plan.bgp, ip, bgp)
                changed.add(ip)
                services.update(_services(was, bgp))
        return Changes(False, frozenset(changed), frozenset(services), re_elected)

    def _re_elect(self, planning: Planning, live: frozenset[str], changed: set[str],
                  services: set[str]) -> None:
        """Other speakers joined or left: refresh every field in use and elect again the
        addresses whose owner may have changed (``rolls.Roll.re_elect``).

        Nothing else a plan reads changed (that would have been a rebuild), and neither did
        our own liveness, the one thing our BGP duties take from it."""
        moved = planning.live ^ live
        planning.relive(live)  # (a field no duty refers to is refreshed when next looked up)
        l2 = self.plan.l2
        for field, roll in self._rolls.reached_by(moved):
            joined, left = planning.fields.refresh(field)
            if not (joined or left) or not field.electorate.eligible:
                continue  # (an address we are not eligible for stays someone else's)
            for ip, mine in roll.re_elect(field.electorate, joined, left):
                before = l2[ip]
                l2[ip] = L2Duty(ip, before.services, field, mine)
                changed.add(ip)
                services.update(before.services)
        # another address of a Service we own one of may have a new owner: its annotation
        for ip in self._rolls.owned:
            for key in l2[ip].services:
                if len(self._addresses.get(key, ())) > 1:
                    services.add(key)

    def _store_l2(self, ip: str, before: L2Duty | None, duty: L2Duty | None,
                  blocker: str | None) -> None:
        """Put ``duty`` (None: no duty) in the plan and in its field's roll."""
        if before is not None:
            self._rolls.remove(ip, before.field)
        if duty is None:
            del self.plan.l2[ip]
            return
        self.plan.l2[ip] = duty
        self._rolls.add(ip, duty.field, duty.mine, blocker)

    def _rebuild(self, view: ClusterView, live: frozenset[str]) -> Changes:
        planning = Planning(view, self.node, live)
        self._planning, self._everything, self._dirty = planning, False, set()
        self._slices, self._slice_owner = {}, {}
        for key, obj in view.endpoint_slices.items():
            owner = slice_service(obj)
            if owner is not None:
                self._slices.setdefault(owner, set()).add(key)
                self._slice_owner[key] = owner
        plan = Plan(peers=planning.peers, invalid=planning.invalid)
        l2, bgp = plan.l2, plan.bgp
        # what did not change is kept, not replaced by an equal copy: a rebuild then leaves
        # little new long-lived garbage behind (each copy would survive into the oldest
        # generation, and enough of them make the collector walk the whole heap)
        known_addresses, known_sharers = self._addresses, self._sharers
        self._addresses, self._sharers = {}, {}
        blockers: dict[str, str | None] = {}
        sharers = self._sharers
        services = view.services
        for key in sorted(services):  # as make_plan folds them
            svc = views.service(services[key])
            addresses = service_addresses(svc, planning.serve_unclassed)
            if not addresses:
                continue
            kept = known_addresses.get(key)
            self._addresses[key] = kept if kept == addresses else addresses
            ready = self._ready(view, svc) if is_local(svc) else None
            for ip, pool in addresses:
                known = sharers.get(ip)
                if known is None:
                    alone = known_sharers.get(ip)
                    sharers[ip] = alone if alone == (key,) else (key,)
                elif known[-1] != key:
                    sharers[ip] = (*known, key)
                # a shared address takes its last Service's candidates
                field = planning.l2_field(pool, ready)
                if field is not None:
                    was = l2.get(ip)
                    electorate = field.electorate
                    blocker = electorate.blocker(ip) if electorate.eligible else None
                    l2[ip] = L2Duty(ip, (*was.services, key) if was else (key,), field,
                                    electorate.eligible and blocker is None)
                    blockers[ip] = blocker
                for spec in planning.bgp_specs(pool, ready):
                    seen = bgp.get(ip)
                    bgp[ip] = bgp_duty(ip, (*seen.services, key) if seen else (key,), spec)
        self.plan = plan
        rolls = self._rolls = Rolls()
        for ip, duty in l2.items():
            rolls.add(ip, duty.field, duty.mine, blockers[ip])
        return Changes(True, frozenset(), frozenset())

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

    def _duties(self, planning: Planning, view: ClusterView, ip: str,
                ) -> tuple[L2Duty | None, str | None, BGPDuty | None]:
        """One address's duties, folded over the Services showing it as make_plan folds, and
        (when this node is eligible but does not win it) the node it lost to."""
        l2_services: list[str] = []
        field: Candidates | None = None
        bgp_services: list[str] = []
        spec: BGPAdvertisementSpec | None = None
        for key in self._sharers.get(ip, ()):
            svc = views.service(view.services[key])
            ready = self._ready(view, svc) if is_local(svc) else None
            for address, pool in self._addresses[key]:
                if address != ip:
                    continue
                found = planning.l2_field(pool, ready)
                if found is not None:
                    l2_services.append(key)
                    field = found
                specs = planning.bgp_specs(pool, ready)
                if specs:  # one entry per advertisement; the last one's attributes
                    bgp_services.extend([key] * len(specs))
                    spec = specs[-1]
        l2 = blocker = None
        if field is not None:
            electorate = field.electorate
            blocker = electorate.blocker(ip) if electorate.eligible else None
            l2 = L2Duty(ip, tuple(l2_services), field, electorate.eligible and blocker is None)
        bgp = None if spec is None else bgp_duty(ip, tuple(bgp_services), spec)
        return l2, blocker, bgp

    # -- what the process reads --------------------------------------------------------------

    def l2_services(self) -> set[str]:
        """Every Service with an L2 address in the plan."""
        return {key for duty in self.plan.l2.values() for key in duty.services}

    def l2_addresses(self, key: str) -> list[str]:
        """The Service's addresses in the L2 plan, in its address order."""
        return [ip for ip in dict.fromkeys(ip for ip, _ in self._addresses.get(key, ()))
                if (duty := self.plan.l2.get(ip)) is not None and key in duty.services]


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


def _store_bgp(duties: dict[str, BGPDuty], ip: str, duty: BGPDuty | None) -> None:
    if duty is None:
        duties.pop(ip, None)
    else:
        duties[ip] = duty


def _services(*duties: L2Duty | BGPDuty | None) -> Iterator[str]:
    for duty in duties:
        if duty is not None:
            yield from duty.services
