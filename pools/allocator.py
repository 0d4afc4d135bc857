"""The allocator: which address a Service gets, deterministically and without moving anyone.

Rules:

* **Order.** Requested IPs first (one per family; must lie in a pool that is not disabled and
  selects the Service). Otherwise the requested pools (``vipam.io/pool``, in the order given;
  ``autoAssign: false`` allowed, disabled refused), else every pool that selects the Service,
  is not disabled and has ``autoAssign``, by priority (lower first, unset last) then name.
* **Lowest free address** of the first pool with room, so a rebuild gives the same answers.
  A dual-stack Service prefers the first pool with room in every family it needs; failing that
  each family is served by its own first pool with room.
* **Sharing.** An address carries the sharing key of its holders; a Service joins only with the
  same key and a (protocol, port) set disjoint from every holder's. A Service with a key first
  looks for such an address to join (the lowest, in the first candidate pool holding one)
  before taking a new one, as MetalLB and Cilium do, so Services meant to share end up
  sharing. A changed port set or key is re-checked against the other holders on every call.
* **Families.** SingleStack: exactly one family. PreferDualStack: every listed family it can
  get, at least one. RequireDualStack: both or nothing (``DualStackUnavailable``).
* **Replacing an assignment** (the Service changed its request): addresses still valid for the
  new request are kept; the others are *retiring* for that Service -- used, given to nobody --
  until :meth:`Allocator.finish_retire`. An old address that other Services still hold is
  dropped at once instead (they keep it, so nobody else can be given it, and the moving
  Service must not stay attached to an address whose sharers it no longer fits).
* **Reconfiguration** (pools added, removed, shrunk, disabled, selectors changed) never moves
  an assignment; addresses now outside every pool are reported and kept until released.
* **Requested IPs** are never silently dropped: a PreferDualStack Service that cannot get the
  address it asked for fails instead of getting only its other family.
* **External pools** are never allocated here; one counts as having room, and when it comes
  first for some families the decision is :class:`AskExternal`: the controller asks its
  backend for them and records the answer with :meth:`Allocator.adopt` -- only once the local
  families are settled, so a request that fails anyway never reaches the backend.
* **Claims.** What a Service shows is claimed back with :meth:`Allocator.claim` (a restart, a
  conflict that cleared). The older Service wins an address; the answer names the Services
  that lost one, so the controller syncs them again. A claimed address that lies in a pool the
  Service does not ask for is not kept past its next :meth:`Allocator.allocate` (it is
  treated like a changed request); one outside every pool is kept and reported.

Answers are values (:data:`Decision`: :class:`Assigned`, :class:`AskExternal`,
:class:`Failed`), never exceptions. Per Service the allocator keeps its assignment, its age
and its requested pools -- not its labels or its namespace's.

Cost: per operation O(log n) in the number of allocations (see :mod:`pools.freelist`) and
O(log p) in the number of pools (see :mod:`pools.index`), independent of pool size.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Sequence

from pools.addresses import (
    AddressError,
    Family,
    format_ip,
    pack,
    parse_ip,
    parse_packed,
    unpack,
)
from pools.checks import (
    combined,
    family_plan,
    parse_ips,
    parse_shown,
    requested_addresses,
    unavailable,
)
from pools.ledger import Ledger, PoolState
from pools.model import Pool
from pools.requests import (
    AskExternal,
    Assigned,
    Assignment,
    Claim,
    Conflict,
    Decision,
    Failed,
    FamilyPolicy,
    PoolStats,
    RestoreReport,
    ServiceRequest,
)

__all__ = [
    "Allocator",
    "AskExternal",
    "Assigned",
    "Assignment",
    "Claim",
    "Conflict",
    "Decision",
    "Failed",
    "Family",
    "FamilyPolicy",
    "PoolStats",
    "RestoreReport",
    "ServiceRequest",
]

Choice = tuple[int, str]  # (address value, pool name)
# Restoring more entries than this rebuilds the free lists once at the end (O(n log n) in the
# addresses in use) instead of splitting intervals per address.
BULK_RESTORE = 256


class _Entry:
    """What the allocator keeps per Service: only what its rules read again later.

    ``requested_pools`` is None for a claimed entry whose pools were never checked against a
    request: its next :meth:`Allocator.allocate` treats the request as changed.
    """

    __slots__ = ("age", "assignment", "packed", "requested_pools")

    def __init__(
        self,
        assignment: Assignment,
        packed: tuple[int, ...],
        age: tuple[float, str],
        requested_pools: tuple[str, ...] | None,
    ) -> None:
        self.assignment = assignment
        self.packed = packed
        self.age = age
        self.requested_pools = requested_pools


class _Plan:
    """What choosing found per missing family: an address, a failure, or an external pool."""

    __slots__ = ("chosen", "errors", "external")

    def __init__(self) -> None:
        self.chosen: dict[Family, Choice] = {}
        self.errors: dict[Family, Failed] = {}
        self.external: dict[str, list[Family]] = {}  # external pool -> families it must serve


class Allocator:
    """Pools, the addresses Services hold in them, and the rules for handing out more."""

    def __init__(self, pools: Iterable[Pool] = ()) -> None:
        self.reset()
        self.set_pools(pools)

    def reset(self) -> None:
        """Forget every assignment and pool: a new leadership term restores from scratch into
        the same allocator (one per process, so nobody holds a stale one)."""
        self._ledger = Ledger()
        self._pools: dict[str, PoolState] = {}
        self._entries: dict[str, _Entry] = {}
        self._pool_tuples: dict[tuple[str, ...], tuple[str, ...]] = {}

    # --- pools ------------------------------------------------------------------------------

    def set_pools(self, pools: Iterable[Pool]) -> list[tuple[str, str]]:
        """Replace the pool set. Never moves an assignment.

        Returns every (key, ip) now outside every pool (kept until released), sorted, so the
        controller can report each. Unchanged pools keep their free lists; changed ones are
        rebuilt from the addresses in use.
        """
        pool_list = list(pools)
        names = [pool.name for pool in pool_list]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate pool names: {', '.join(duplicates)}")
        used = None
        states: dict[str, PoolState] = {}
        for pool in pool_list:
            old = self._pools.get(pool.name)
            if old is not None and old.pool == pool:
                states[pool.name] = old
                continue
            if used is None:
                used = self._ledger.used_sorted()
            states[pool.name] = PoolState(pool, used)
        self._pools = states
        self._ledger.states = sorted(states.values(), key=lambda state: state.pool.sort_key)
        outside: list[tuple[str, str]] = []
        for key, entry in self._entries.items():
            old_pools = entry.assignment.pools
            new_pools = tuple(
                self._attribute(packed, [name])
                for packed, name in zip(entry.packed, old_pools, strict=True)
            )
            if new_pools != old_pools:
                entry.assignment = _with(entry.assignment, pools=new_pools)
            outside.extend(
                (key, ip)
                for ip, name in zip(entry.assignment.ips, new_pools, strict=True)
                if not name
            )
        return sorted(outside)

    def pools(self) -> list[Pool]:
        """The pools in allocation order (priority, then name)."""
        return [state.pool for state in self._ledger.states]

    def _attribute(self, packed: int, hints: Sequence[str]) -> str:
        """The pool an address counts as allocated from: the first hint that still contains it
        (an external pool named by a hint always qualifies), else the first local pool that
        contains it, else "" (outside every pool)."""
        family, value = unpack(packed)
        for name in hints:
            state = self._pools.get(name)
            if state is not None and (
                state.pool.is_external or state.pool.contains_value(family, value)
            ):
                return name
        for state in self._ledger.containing(family, value):
            return state.pool.name
        return ""

    # --- queries ----------------------------------------------------------------------------

    def lookup(self, key: str) -> Assignment | None:
        entry = self._entries.get(key)
        return entry.assignment if entry is not None else None

    def holders(self, ip: str) -> tuple[str, ...]:
        """Services actively holding ip (retiring holds are reported by :meth:`retiring`)."""
        try:
            packed = pack(*parse_ip(ip))
        except AddressError:
            return ()
        return self._ledger.holders.get(packed, ())

    def retiring(self, key: str) -> tuple[str, ...]:
        return tuple(format_ip(*unpack(packed)) for packed in self._ledger.retiring.get(key, ()))

    def stats(self) -> dict[str, dict[Family, PoolStats]]:
        """Capacity / allocated / available per local pool and family, read from counters.

        "Allocated" counts every used address inside the pool, whichever pool it was taken
        from (pools may overlap) and including retiring ones. External pools are left out:
        their backend knows their size.
        """
        result: dict[str, dict[Family, PoolStats]] = {}
        for state in self._ledger.states:
            if state.pool.is_external:
                continue
            per_family: dict[Family, PoolStats] = {}
            for family, free in state.free.items():
                capacity = state.pool.capacity(family)
                per_family[family] = PoolStats(capacity, capacity - free.count, free.count)
            result[state.pool.name] = per_family
        return result

    def snapshot(self) -> list[tuple[ServiceRequest, tuple[str, ...], str | None]]:
        """Every assignment as (request, ips, pool annotation), ready for :meth:`restore`.

        The request carries what the allocator keeps (key, age, sharing, ports, pools), not
        labels. The annotation is the pool name, or comma-separated names (one per ip) when
        the addresses come from different pools; None when every address is outside the
        pools. Retiring holds are not included: after a restart only what Services show counts.
        """
        result = []
        for key, entry in self._entries.items():
            assignment = entry.assignment
            names = assignment.pools
            annotation: str | None
            if len(set(names)) == 1:
                annotation = names[0] or None
            else:
                annotation = ",".join(names)
            families = tuple(unpack(packed)[0] for packed in entry.packed)
            request = ServiceRequest(
                key=key, uid=entry.age[1], created=entry.age[0],
                namespace=key.split("/", 1)[0], families=families or ("IPv4",),
                family_policy="SingleStack" if len(families) < 2 else "PreferDualStack",
                ports=assignment.ports, sharing_key=assignment.sharing_key,
                requested_pools=entry.requested_pools or (),
            )
            result.append((request, assignment.ips, annotation))
        return result

    # --- allocation -------------------------------------------------------------------------

    def allocate(self, req: ServiceRequest) -> Decision:
        """The Service's addresses: its current ones if they still fit the request, otherwise
        a new assignment made atomically -- or where to ask, or why not (nothing changes)."""
        planned = family_plan(req)
        if isinstance(planned, Failed):
            return planned
        families, all_required = planned
        requested = requested_addresses(req, families)
        if isinstance(requested, Failed):
            return requested
        entry = self._entries.get(req.key)
        kept: dict[Family, Choice] = {}
        if entry is not None:
            # Only a changed pool request (or a claim never checked against one) can
            # invalidate the pool an address came from; a reconfigured pool never does.
            claimed = entry.requested_pools is None
            pools_changed = entry.requested_pools != req.requested_pools
            for packed, name in zip(entry.packed, entry.assignment.pools, strict=True):
                family, value = unpack(packed)
                check = name if pools_changed and not (claimed and not name) else None
                if family in families and self._still_fits(req, family, value, check, requested):
                    kept[family] = (value, name)
        missing = [family for family in families if family not in kept]
        plan = self._choose(req, missing, requested) if missing else _Plan()
        chosen, errors = {**plan.chosen, **kept}, plan.errors
        # A family that cannot be served fails a PreferDualStack Service only when nothing
        # else can be served, but an explicitly requested address is never silently dropped.
        # Checked before any external IPAM is asked, so a doomed request costs it nothing.
        if errors and (
            all_required
            or any(f in requested for f in errors)
            or (not chosen and not plan.external)
        ):
            return combined(req, errors)
        if plan.external:
            pool, external_families = next(iter(plan.external.items()))
            return AskExternal(pool, tuple(f for f in families if f in external_families))
        result = [(family, *chosen[family]) for family in families if family in chosen]
        return Assigned(self._commit(req, result, req.requested_pools))

    def adopt(self, req: ServiceRequest, ips: Sequence[str], pool: str) -> Assigned | Failed:
        """Record addresses chosen elsewhere (an external IPAM) for req, taken from ``pool``.

        Addresses the Service holds in other families are kept, so a dual-stack Service can
        combine a local address with an external one.
        """
        if pool not in self._pools:
            return Failed("UnknownPool", f"pool {pool} does not exist")
        parsed = parse_ips(req, ips)
        if isinstance(parsed, Failed):
            return parsed
        for family, value in parsed:
            if family not in req.families:
                return Failed(
                    "FamilyMismatch",
                    f"{format_ip(family, value)} is {family} but Service {req.key} "
                    f"has ipFamilies {list(req.families)}",
                )
            taken = self._taken(req, family, value)
            if taken is not None:
                return taken
        # Families the backend was not asked for keep the addresses the Service already has.
        adopted = {family: (value, pool) for family, value in parsed}
        entry = self._entries.get(req.key)
        if entry is not None:
            for packed, name in zip(entry.packed, entry.assignment.pools, strict=True):
                family, value = unpack(packed)
                if family in req.families and family not in adopted:
                    adopted[family] = (value, name)
        result = [(f, *adopted[f]) for f in req.families if f in adopted]
        return Assigned(self._commit(req, result, req.requested_pools))

    def release(self, key: str) -> tuple[str, ...]:
        """Free everything key holds, retiring addresses included; a no-op when it holds nothing."""
        freed: list[int] = []
        entry = self._entries.pop(key, None)
        if entry is not None:
            for packed in entry.packed:
                self._ledger.unhold(packed, key, entry.assignment.sharing_key, retire=False)
            freed.extend(entry.packed)
        freed.extend(self._ledger.drop_retiring(key))
        return tuple(format_ip(*unpack(packed)) for packed in freed)

    def finish_retire(self, key: str) -> None:
        """The Service no longer shows its old addresses: free them."""
        self._ledger.drop_retiring(key)

    # --- choosing ---------------------------------------------------------------------------

    def _still_fits(
        self,
        req: ServiceRequest,
        family: Family,
        value: int,
        pool: str | None,
        requested: dict[Family, int],
    ) -> bool:
        """Whether an address key already holds still satisfies its (possibly changed) request.

        ``pool`` is checked against the requested pools only when given (the request changed);
        pool contents are deliberately not rechecked: reconfiguration never moves anyone.
        """
        if family in requested and requested[family] != value:
            return False
        if pool is not None and req.requested_pools and pool not in req.requested_pools:
            return False
        return self._blocker(pack(family, value), req) is None

    def _blocker(self, packed: int, req: ServiceRequest) -> tuple[str, tuple[str, ...]] | None:
        """Why req may not hold packed beside its current users: (reason, their keys), or None."""
        retiring = tuple(k for k in self._ledger.retired_by.get(packed, ()) if k != req.key)
        if retiring:
            return "RequestedIPInUse", retiring
        others = tuple(k for k in self._ledger.holders.get(packed, ()) if k != req.key)
        if not others:
            return None
        if req.sharing_key is None:
            return "RequestedIPInUse", others
        other_keys = tuple(
            k for k in others if self._entries[k].assignment.sharing_key != req.sharing_key
        )
        if other_keys:
            return "RequestedIPInUse", other_keys
        clashing = tuple(k for k in others if self._entries[k].assignment.ports & req.ports)
        if clashing:
            return "SharingConflict", clashing
        return None

    def _taken(self, req: ServiceRequest, family: Family, value: int) -> Failed | None:
        """Why req may not take the address (someone holds it), or None."""
        blocker = self._blocker(pack(family, value), req)
        if blocker is None:
            return None
        reason, keys = blocker
        ip = format_ip(family, value)
        if reason == "SharingConflict":
            message = (
                f"{ip} is shared under key {req.sharing_key!r} by {', '.join(keys)}, whose "
                f"ports overlap Service {req.key}'s; use different ports or another address"
            )
        else:
            message = (
                f"{ip} is already used by {', '.join(keys)}; Service {req.key} can share it "
                f"only with the same sharing key and ports that do not overlap"
            )
        return Failed(reason, message)

    def _choose(
        self, req: ServiceRequest, missing: list[Family], requested: dict[Family, int]
    ) -> _Plan:
        plan = _Plan()
        automatic = []
        for family in missing:
            if family in requested:
                answer = self._requested_choice(req, family, requested[family])
                if isinstance(answer, Failed):
                    plan.errors[family] = answer
                elif isinstance(answer, AskExternal):
                    plan.external.setdefault(answer.pool, []).append(family)
                else:
                    plan.chosen[family] = answer
            else:
                automatic.append(family)
        if automatic:
            self._choose_automatic(req, automatic, plan)
        return plan

    def _choose_automatic(self, req: ServiceRequest, automatic: list[Family], plan: _Plan) -> None:
        candidates = self._candidates(req)
        if isinstance(candidates, Failed):
            plan.errors.update({family: candidates for family in automatic})
            return
        if req.sharing_key is not None:
            for family in list(automatic):
                joined = self._joinable(req, family, candidates)
                if joined is not None:
                    plan.chosen[family] = joined
                    automatic.remove(family)
        # An external pool counts as having room: the families it comes first for go to the
        # controller (AskExternal), which adopts the backend's answer.
        local: list[tuple[Family, PoolState]] = []
        for family in automatic:
            first = next(
                (
                    state
                    for state in candidates
                    if state.pool.is_external or (family in state.free and state.free[family].count)
                ),
                None,
            )
            if first is None:
                plan.errors[family] = unavailable(req, family, candidates)
            elif first.pool.is_external:
                plan.external.setdefault(first.pool.name, []).append(family)
            else:
                local.append((family, first))
        if len(local) > 1:
            for state in candidates:
                if all(f in state.free and state.free[f].count for f, _ in local):
                    local = [(family, state) for family, _ in local]
                    break
        for family, state in local:
            plan.chosen[family] = (_lowest(state, family), state.pool.name)

    def _candidates(self, req: ServiceRequest) -> list[PoolState] | Failed:
        """Pools the Service may take a new address from, in the order to try them."""
        if req.requested_pools:
            unknown = [name for name in req.requested_pools if name not in self._pools]
            if unknown:
                return _unknown_pools(req, unknown)
            named = [self._pools[name] for name in dict.fromkeys(req.requested_pools)]
            return _admitting(
                named, req,
                disabled=lambda pools: f"pool {pools} is disabled; "
                f"Service {req.key} cannot get a new address from it",
                excluded=lambda pools: f"pool {pools} does not allow Service "
                f"{req.key} (its serviceAllocation excludes it)",
            )
        candidates = self._ledger.candidates.candidates(
            req.namespace, req.namespace_labels, req.labels
        )
        if not candidates:
            return Failed(
                "NoMatchingPool",
                f"no enabled pool with autoAssign selects Service {req.key}; add a pool or "
                f"name one with the vipam.io/pool annotation",
            )
        return candidates

    def _requested_choice(
        self, req: ServiceRequest, family: Family, value: int
    ) -> Choice | AskExternal | Failed:
        ip = format_ip(family, value)
        containing = [
            state
            for state in self._ledger.containing(family, value)
            if not req.requested_pools or state.pool.name in req.requested_pools
        ]
        if not containing:
            if req.requested_pools:
                unknown = [name for name in req.requested_pools if name not in self._pools]
                if unknown:
                    return _unknown_pools(req, unknown)
                external = [
                    self._pools[name]
                    for name in req.requested_pools
                    if self._pools[name].pool.is_external
                    and not self._pools[name].pool.spec.disabled
                ]
                if external:
                    return AskExternal(external[0].pool.name, (family,))
                where = f"requested pool {', '.join(req.requested_pools)}"
            else:
                where = "any pool"
            return Failed(
                "RequestedIPOutsidePools",
                f"{ip} requested by Service {req.key} is not a usable address of {where} "
                f"(outside it, excluded, or skipped by avoidBuggyIPs)",
            )
        selecting = _admitting(
            containing, req,
            disabled=lambda pools: f"{ip} is in pool {pools}, which is disabled; "
            f"Service {req.key} cannot get it",
            excluded=lambda pools: f"{ip} is in pool {pools}, whose serviceAllocation does "
            f"not allow Service {req.key}",
        )
        if isinstance(selecting, Failed):
            return selecting
        taken = self._taken(req, family, value)
        if taken is not None:
            return taken
        return value, selecting[0].pool.name

    def _joinable(
        self, req: ServiceRequest, family: Family, candidates: list[PoolState]
    ) -> Choice | None:
        """The lowest address in the first candidate pool that req can share."""
        assert req.sharing_key is not None
        shared = sorted(
            unpack(packed)[1]
            for packed in self._ledger.by_sharing_key.get(req.sharing_key, ())
            if unpack(packed)[0] == family and packed not in self._ledger.retired_by
        )
        for state in candidates:
            if family not in state.free:
                continue
            for value in shared:
                if state.pool.contains_value(family, value) and (
                    self._blocker(pack(family, value), req) is None
                ):
                    return value, state.pool.name
        return None

    # --- committing -------------------------------------------------------------------------

    def _commit(
        self,
        req: ServiceRequest,
        result: list[tuple[Family, int, str]],
        requested_pools: tuple[str, ...] | None,
    ) -> Assignment:
        """Make ``result`` key's assignment; everything was checked, so this cannot fail."""
        return self._record(
            req,
            tuple([pack(family, value) for family, value, _ in result]),
            tuple([format_ip(family, value) for family, value, _ in result]),
            tuple([name for _, _, name in result]),
            requested_pools,
        )

    def _record(
        self,
        req: ServiceRequest,
        packed: tuple[int, ...],
        ips: tuple[str, ...],
        pool_names: tuple[str, ...],
        requested_pools: tuple[str, ...] | None,
    ) -> Assignment:
        """Record key's addresses (packed, their canonical texts, their pools) as its assignment.

        Everything was checked, so this cannot fail.
        """
        ledger = self._ledger
        key, sharing_key = req.key, req.sharing_key
        # Most Services share a few pool tuples; keeping one copy saves an object per Service.
        pool_names = self._pool_tuples.setdefault(pool_names, pool_names)
        if requested_pools:
            requested_pools = self._pool_tuples.setdefault(requested_pools, requested_pools)
        assignment = Assignment(key, ips, pool_names, sharing_key, req.ports)
        old = self._entries.get(key)
        if old is None:
            if key in ledger.retiring:
                ledger.drop_retiring(key, only=packed)
            for address in packed:
                ledger.hold(address, key, sharing_key)
            self._entries[key] = _Entry(assignment, packed, (req.created, req.uid), requested_pools)
            return assignment
        old_packed, old_key = old.packed, old.assignment.sharing_key
        # Reclaiming an address key itself was retiring: its retiring hold becomes a holding.
        ledger.drop_retiring(key, only=[p for p in packed if p not in old_packed])
        for address in packed:
            if address in old_packed:
                ledger.reindex(address, old_key, sharing_key)
            else:
                ledger.hold(address, key, sharing_key)
        for address in old_packed:
            if address not in packed:
                ledger.unhold(address, key, old_key, retire=True)
        if old.assignment == assignment:
            assignment = old.assignment
        self._entries[key] = _Entry(assignment, packed, (req.created, req.uid), requested_pools)
        return assignment

    # --- claims and restore -----------------------------------------------------------------

    def claim(self, req: ServiceRequest, ips: Sequence[str], annotation: str | None) -> Claim:
        """The Service shows ``ips`` (``annotation``: its vipam.io/allocated-from): hold them.

        The older Service wins: an address held by an incompatible older Service is not
        granted (``conflict``); incompatible younger holders are released entirely and named
        in ``evicted``, so the caller syncs them again. Claiming what is already recorded is a
        no-op. Retiring holds of other Services on a claimed address are forgotten: the
        Service showing it is the owner. Whether the addresses fit the Service's request is
        left to its next :meth:`allocate` (a claimed address in a pool it does not ask for is
        not kept; one outside every pool is).
        """
        assignment, conflict, evicted = self._claim(req, ips, annotation)
        if assignment is None:
            return Claim(conflict=conflict)
        return Claim(assignment, None, evicted, _outside(assignment))

    def _claim(
        self, req: ServiceRequest, ips: Sequence[str], annotation: str | None
    ) -> tuple[Assignment | None, Conflict | None, list[Conflict]]:
        """:meth:`claim` without the answer object (restore calls this once per Service).

        Each shown address is parsed once into its packed value and canonical text, both kept.
        """
        parsed = parse_shown(req, ips)
        if isinstance(parsed, Failed):
            return None, Conflict(req.key, ",".join(ips), "", parsed.message), []
        if not parsed:
            return None, None, []
        if len(parsed) == 1:
            packed: tuple[int, ...] = (parsed[0][0],)
        else:
            packed = tuple([address for address, _ in parsed])
        key = req.key
        current = self._entries.get(key)
        if current is not None and current.packed == packed:
            return current.assignment, None, []
        evict: dict[str, int] = {}
        holders = self._ledger.holders
        for address in packed:
            for holder in holders.get(address, ()):
                if (
                    holder == key
                    or holder in evict
                    or _compatible(self._entries[holder].assignment, req)
                ):
                    continue
                if self._entries[holder].age < req.age:
                    ip = format_ip(*unpack(address))
                    return None, Conflict(
                        key, ip, holder,
                        f"{ip} is held by the older Service {holder}; Service {key} "
                        f"keeps no address until its request is changed",
                    ), []
                evict[holder] = address
        evicted = []
        for holder, address in evict.items():
            ip = format_ip(*unpack(address))
            self.release(holder)
            evicted.append(Conflict(
                holder, ip, key,
                f"{ip} belongs to the older Service {key}; Service {holder} lost it",
            ))
        if current is not None:
            self.release(key)
        assignment = self._record(
            req, packed, tuple([text for _, text in parsed]),
            self._claimed_pools(req, packed, annotation), None,
        )
        retired_by = self._ledger.retired_by
        if retired_by:
            for address in packed:
                if address in retired_by:
                    self._ledger.drop_others_retiring(address, key)
        return assignment, None, evicted

    def _claimed_pools(
        self, req: ServiceRequest, packed: tuple[int, ...], annotation: str | None
    ) -> tuple[str, ...]:
        """The pool each claimed address counts as taken from: the annotation's name for it
        (one name for all, or one per address), else its other names, else a requested pool,
        else the first local pool containing it (see :meth:`_attribute`)."""
        if annotation and "," not in annotation:
            # The common case, answered without building hint lists: one pool named.
            state = self._pools.get(annotation)
            if state is not None and len(packed) == 1:
                family, value = unpack(packed[0])
                if state.pool.is_external or state.pool.contains_value(family, value):
                    return (annotation,)
        names = annotation.split(",") if annotation else []
        result = []
        for index, address in enumerate(packed):
            hints = [names[index], *names] if len(names) == len(packed) else list(names)
            result.append(self._attribute(address, [*hints, *req.requested_pools]))
        return tuple(result)

    def restore(
        self, entries: Iterable[tuple[ServiceRequest, Sequence[str], str | None]]
    ) -> RestoreReport:
        """Claim what every Service shows, oldest first (creation time, then uid), in bulk.

        A key listed twice counts once, with its last entry. See :meth:`claim`.
        """
        report = RestoreReport()
        latest = {item[0].key: item for item in entries}
        bulk = len(latest) > BULK_RESTORE
        # A bulk restore creates many long-lived objects and no cycles (sorting included, which
        # makes a key per entry; rebuilding the free lists at the end too): the cyclic
        # collector would walk them again and again (a third of the time for 100k Services).
        collecting = gc.isenabled() and bulk
        if collecting:
            gc.disable()
        try:
            items = sorted(latest.values(), key=lambda item: item[0].age)
            self._ledger.deferred = bulk
            if bulk:
                self._restore_bulk(items, report)
            else:
                for req, ips, annotation in items:
                    self._restore_one(req, ips, annotation, report)
        finally:
            if bulk:
                self._ledger.deferred = False
                self._ledger.rebuild_free()
                self._pools = {state.pool.name: state for state in self._ledger.states}
            if collecting:
                gc.enable()
        return report

    def _restore_one(
        self,
        req: ServiceRequest,
        ips: Sequence[str],
        annotation: str | None,
        report: RestoreReport,
    ) -> None:
        """Claim one Service's addresses and add the answer to the report."""
        assignment, conflict, evicted = self._claim(req, ips, annotation)
        if assignment is not None:
            report.restored.append(assignment)
            if "" in assignment.pools:
                report.outside.extend((req.key, ip) for ip in _outside(assignment))
        if conflict is not None:
            report.conflicts.append(conflict)
        report.conflicts.extend(evicted)

    def _restore_bulk(
        self,
        items: list[tuple[ServiceRequest, Sequence[str], str | None]],
        report: RestoreReport,
    ) -> None:
        """:meth:`_restore_one` for each item, with the common case written out inline.

        After a restart nearly every Service shows one address that nobody else holds, in the
        pool its annotation names. That case is the whole cost of a restore (the target is
        100,000 Services in under 1.5 s of CPU), so it is recorded here directly -- exactly what
        :meth:`_claim` would record, without its calls and intermediate objects. Anything else
        (two addresses, a key already known, an address already held or retiring, unparsable
        text) goes through :meth:`_claim`. A retiring hold of the key itself needs no check: on
        this address it would be in ``retired_by``, on others :meth:`_claim` keeps it too.
        Only while the ledger defers free-list updates.
        """
        assert self._ledger.deferred
        entries, pools, pool_tuples = self._entries, self._pools, self._pool_tuples
        ledger = self._ledger
        holders, retired_by, by_key = ledger.holders, ledger.retired_by, ledger.by_sharing_key
        restored, outside = report.restored, report.outside
        annotated: dict[str, tuple[tuple[str, ...], Pool | None]] = {}
        for req, ips, annotation in items:
            key = req.key
            if len(ips) != 1 or key in entries:
                self._restore_one(req, ips, annotation, report)
                continue
            try:
                packed, text = parse_packed(ips[0])
            except AddressError:
                self._restore_one(req, ips, annotation, report)
                continue
            if packed in holders or packed in retired_by:
                self._restore_one(req, ips, annotation, report)
                continue
            names: tuple[str, ...] | None = None
            named = annotated.get(annotation) if annotation else None
            if named is None and annotation and "," not in annotation:
                # one pool named: remember its tuple and pool (None for an external pool,
                # which counts as holding whatever its backend gave)
                state = pools.get(annotation)
                if state is not None:
                    single = pool_tuples.setdefault((annotation,), (annotation,))
                    named = annotated[annotation] = (
                        single, None if state.pool.is_external else state.pool
                    )
            if named is not None:
                pool = named[1]
                if pool is None or pool.contains_packed(packed):
                    names = named[0]
            if names is None:
                names = self._claimed_pools(req, (packed,), annotation)
                names = pool_tuples.setdefault(names, names)
            sharing_key = req.sharing_key
            assignment = Assignment(key, (text,), names, sharing_key, req.ports)
            holders[packed] = (key,)
            if sharing_key is not None:
                by_key.setdefault(sharing_key, set()).add(packed)
            entries[key] = _Entry(assignment, (packed,), (req.created, req.uid), None)
            restored.append(assignment)
            if not names[0]:
                outside.append((key, text))


# --- helpers ----------------------------------------------------------------------------------


def _with(assignment: Assignment, *, pools: tuple[str, ...]) -> Assignment:
    return Assignment(
        assignment.key, assignment.ips, pools, assignment.sharing_key, assignment.ports
    )


def _outside(assignment: Assignment) -> tuple[str, ...]:
    if "" not in assignment.pools:
        return ()
    return tuple(ip for ip, name in zip(assignment.ips, assignment.pools, strict=True) if not name)


def _compatible(holder: Assignment, req: ServiceRequest) -> bool:
    return (
        req.sharing_key is not None
        and holder.sharing_key == req.sharing_key
        and not (holder.ports & req.ports)
    )


def _lowest(state: PoolState, family: Family) -> int:
    value = state.free[family].lowest()
    assert value is not None
    return value


def _unknown_pools(req: ServiceRequest, unknown: list[str]) -> Failed:
    return Failed(
        "UnknownPool",
        f"Service {req.key} asks for pool {', '.join(unknown)}, which does not exist",
    )


def _admitting(
    states: list[PoolState], req: ServiceRequest, *,
    disabled: Callable[[str], str], excluded: Callable[[str], str],
) -> list[PoolState] | Failed:
    """The pools of `states` that may give `req` a new address: not disabled, and selecting it.

    One place for that policy; the callers only word the failure (given the pool names).
    """
    enabled = [state for state in states if not state.pool.spec.disabled]
    if not enabled:
        return Failed("PoolDisabled", disabled(", ".join(s.pool.name for s in states)))
    selecting = [
        state for state in enabled
        if state.pool.selects(req.namespace, req.namespace_labels, req.labels)
    ]
    if not selecting:
        return Failed("NoMatchingPool", excluded(", ".join(s.pool.name for s in enabled)))
    return selecting
