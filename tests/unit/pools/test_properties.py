"""Property tests: random allocate / release / retire / restore / reconfigure sequences, checked
against a brute-force model that enumerates every address of a few tiny pools.

Invariants after every step:
* no address is held by two Services without the same sharing key and disjoint ports;
* a retiring address is used by nobody else;
* stats equal a recount of used addresses inside each pool (and capacity a recount of it);
* an automatic, unshared, single-stack allocation gets the brute-force lowest free address;
* a failed allocation changes nothing; a released address can be requested again;
* restoring a snapshot into a fresh allocator gives the same assignments, and restoring it on
  top of the live allocator changes nothing.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pools.addresses import Family
from pools.allocator import Allocator, Assignment, ServiceRequest
from pools.model import Pool, parse_pool
from tests.unit.pools.helpers import Refused, bulk_threshold, take

# Small universes: one plain IPv4 block, one IPv4 block crossing a /24 (for avoidBuggyIPs) and
# one IPv6 block.
UNIVERSES: list[tuple[Family, int, int]] = [
    ("IPv4", int(ipaddress.ip_address("192.0.2.0")), int(ipaddress.ip_address("192.0.2.15"))),
    (
        "IPv4",
        int(ipaddress.ip_address("198.51.100.252")),
        int(ipaddress.ip_address("198.51.101.3")),
    ),
    ("IPv6", int(ipaddress.ip_address("2001:db8::")), int(ipaddress.ip_address("2001:db8::f"))),
]
KEYS = [f"ns/s{i}" for i in range(6)]
PORTS = [("TCP", 80), ("TCP", 443), ("UDP", 53)]


def text(family: Family, value: int) -> str:
    return str(ipaddress.ip_address(value) if family == "IPv4" else ipaddress.IPv6Address(value))


def every_address() -> list[tuple[Family, int]]:
    return [(fam, v) for fam, low, high in UNIVERSES for v in range(low, high + 1)]


@st.composite
def pool_specs(draw: st.DrawFn, name: str) -> dict[str, Any]:
    addresses = []
    exclude = []
    for family, low, high in UNIVERSES:
        if not draw(st.booleans()):
            continue
        first = draw(st.integers(low, high))
        last = draw(st.integers(first, high))
        addresses.append(f"{text(family, first)}-{text(family, last)}")
        if draw(st.booleans()):
            exclude.append(text(family, draw(st.integers(first, last))))
    if not addresses:
        family, low, _ = UNIVERSES[0]
        addresses.append(f"{text(family, low)}/{32 if family == 'IPv4' else 128}")
    return {
        "addresses": addresses,
        "exclude": exclude,
        "avoidBuggyIPs": draw(st.booleans()),
        "autoAssign": draw(st.integers(0, 4)) > 0,
        "disabled": draw(st.integers(0, 9)) == 0,
        "priority": draw(st.one_of(st.none(), st.integers(0, 2))),
    }


@st.composite
def pool_sets(draw: st.DrawFn) -> list[Pool]:
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    return [parse_pool(name, draw(pool_specs(name))) for name in names]


_USABLE: dict[int, tuple[Pool, set[tuple[Family, int]]]] = {}


def brute_usable(pool: Pool) -> set[tuple[Family, int]]:
    """Every usable address of a pool, by enumeration (independent of the interval code)."""
    cached = _USABLE.get(id(pool))
    if cached is not None and cached[0] is pool:
        return cached[1]
    usable = _enumerate(pool)
    _USABLE[id(pool)] = (pool, usable)
    return usable


def _enumerate(pool: Pool) -> set[tuple[Family, int]]:
    usable = set()
    excluded = set()
    for entry in pool.spec.exclude:
        ip = ipaddress.ip_address(entry)
        excluded.add(("IPv4" if ip.version == 4 else "IPv6", int(ip)))
    for entry in pool.spec.addresses:
        if "-" in entry:
            first, last = (ipaddress.ip_address(part) for part in entry.split("-"))
        else:
            net = ipaddress.ip_network(entry)
            first, last = net[0], net[-1]
        family: Family = "IPv4" if first.version == 4 else "IPv6"
        for value in range(int(first), int(last) + 1):
            if (family, value) in excluded:
                continue
            if pool.spec.avoid_buggy_ips and family == "IPv4" and value % 256 in (0, 255):
                continue
            usable.add((family, value))
    return usable


def parse(ip: str) -> tuple[Family, int]:
    address = ipaddress.ip_address(ip)
    return ("IPv4" if address.version == 4 else "IPv6"), int(address)


class AllocatorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.allocator = Allocator()
        self.pools: list[Pool] = []

    # --- helpers ---------------------------------------------------------------------------

    def assignments(self) -> dict[str, Assignment]:
        found = {}
        for key in [*KEYS, "ns/probe"]:
            assignment = self.allocator.lookup(key)
            if assignment is not None:
                found[key] = assignment
        return found

    def used(self) -> set[tuple[Family, int]]:
        used = {parse(ip) for a in self.assignments().values() for ip in a.ips}
        for key in KEYS:
            used |= {parse(ip) for ip in self.allocator.retiring(key)}
        return used

    def state(self) -> tuple[Any, ...]:
        return (
            self.assignments(),
            {key: self.allocator.retiring(key) for key in KEYS},
            self.allocator.stats(),
        )

    def request(self, index: int, shape: dict[str, Any]) -> ServiceRequest:
        return ServiceRequest(
            key=KEYS[index], uid=f"uid-{index}", created=float(index), namespace="ns", **shape
        )

    def expected_lowest(self, family: Family) -> tuple[str, str] | None:
        used = self.used()
        ordered = sorted(self.pools, key=lambda p: p.sort_key)
        for pool in ordered:
            if pool.spec.disabled or not pool.spec.auto_assign:
                continue
            free = sorted(v for fam, v in brute_usable(pool) - used if fam == family)
            if free:
                return text(family, free[0]), pool.name
        return None

    # --- rules -----------------------------------------------------------------------------

    @initialize(pools=pool_sets())
    def start(self, pools: list[Pool]) -> None:
        self.allocator.set_pools(pools)
        self.pools = pools

    @rule(pools=pool_sets())
    def reconfigure(self, pools: list[Pool]) -> None:
        before = self.assignments()
        outside = self.allocator.set_pools(pools)
        self.pools = pools
        assert {k: a.ips for k, a in self.assignments().items()} == {
            k: a.ips for k, a in before.items()
        }, "reconfiguration moved an assignment"
        everywhere = set().union(*(brute_usable(p) for p in pools)) if pools else set()
        expected = sorted(
            (key, ip)
            for key, assignment in before.items()
            for ip in assignment.ips
            if parse(ip) not in everywhere
        )
        assert outside == expected

    @rule(
        index=st.integers(0, len(KEYS) - 1),
        families=st.sampled_from(
            [
                (("IPv4",), "SingleStack"),
                (("IPv6",), "SingleStack"),
                (("IPv4", "IPv6"), "RequireDualStack"),
                (("IPv6", "IPv4"), "PreferDualStack"),
            ]
        ),
        sharing_key=st.sampled_from([None, "k", "k", "j"]),
        ports=st.one_of(
            st.builds(lambda p: {p}, st.sampled_from(PORTS)),
            st.sets(st.sampled_from(PORTS), min_size=1),
        ),
        requested=st.one_of(st.none(), st.none(), st.none(), st.sampled_from(every_address())),
        requested_pool=st.sampled_from([None, None, None, None, "a", "b", "c"]),
    )
    def allocate(
        self,
        index: int,
        families: tuple[tuple[Family, ...], str],
        sharing_key: str | None,
        ports: set[tuple[str, int]],
        requested: tuple[Family, int] | None,
        requested_pool: str | None,
    ) -> None:
        family_list, policy = families
        requested_ips = ()
        if requested is not None and requested[0] in family_list:
            requested_ips = (text(*requested),)
        req = self.request(
            index,
            {
                "families": family_list,
                "family_policy": policy,
                "sharing_key": sharing_key,
                "ports": frozenset(ports),
                "requested_ips": requested_ips,
                "requested_pools": (requested_pool,) if requested_pool else (),
            },
        )
        simple = (
            policy == "SingleStack"
            and sharing_key is None
            and not requested_ips
            and requested_pool is None
            and self.allocator.lookup(req.key) is None
        )
        expected = self.expected_lowest(family_list[0]) if simple else None
        before = self.state()
        try:
            got = take(self.allocator, req)
        except Refused as err:
            event(f"allocate failed: {err.reason}")
            assert self.state() == before, f"failed allocation ({err.reason}) changed state"
            if simple:
                assert expected is None, f"{err} but {expected} was free"
            return
        event(
            "allocate ok, shared" if len(self.allocator.holders(got.ips[0])) > 1 else "allocate ok"
        )
        if simple:
            assert expected is not None
            assert (got.ips[0], got.pools[0]) == expected
        assert got == self.allocator.lookup(req.key)
        if requested_ips:
            assert requested_ips[0] in {text(*parse(ip)) for ip in got.ips}
        assert take(self.allocator, req) == got, "allocate is not idempotent"

    @rule(index=st.integers(0, len(KEYS) - 1))
    def release(self, index: int) -> None:
        key = KEYS[index]
        freed = self.allocator.release(key)
        assert self.allocator.lookup(key) is None and self.allocator.retiring(key) == ()
        assert self.allocator.release(key) == ()
        used = self.used()
        for ip in freed:
            address = parse(ip)
            usable_in = [
                p for p in self.pools if not p.spec.disabled and address in brute_usable(p)
            ]
            if address in used or not usable_in:
                continue
            probe = ServiceRequest(
                key="ns/probe",
                uid="probe",
                created=99.0,
                namespace="ns",
                families=(address[0],),
                requested_ips=(ip,),
            )
            assert take(self.allocator, probe).ips == (text(*address),)
            self.allocator.release("ns/probe")

    @rule(index=st.integers(0, len(KEYS) - 1))
    def finish_retire(self, index: int) -> None:
        if self.allocator.retiring(KEYS[index]):
            event("retiring hold finished")
        self.allocator.finish_retire(KEYS[index])
        assert self.allocator.retiring(KEYS[index]) == ()

    @rule(bulk=st.booleans())
    def restore_snapshot(self, bulk: bool) -> None:
        snapshot = self.allocator.snapshot()
        fresh = Allocator(self.pools)
        with bulk_threshold(0 if bulk else 10**9):
            report = fresh.restore(snapshot)
        assert report.conflicts == []
        assert {k: fresh.lookup(k) for k in KEYS} == {k: self.allocator.lookup(k) for k in KEYS}
        before = self.state()
        with bulk_threshold(0 if bulk else 10**9):
            again = self.allocator.restore(snapshot)
        assert again.conflicts == []
        assert self.state() == before, "restoring the live state changed it"

    @rule(
        entries=st.lists(
            st.tuples(
                st.integers(0, len(KEYS) - 1),
                st.sampled_from(every_address()),
                st.sampled_from([None, "k"]),
                st.sets(st.sampled_from(PORTS), min_size=1),
            ),
            max_size=4,
        ),
        bulk=st.booleans(),
        exploded=st.booleans(),
    )
    def restore_claims(
        self,
        entries: list[tuple[int, tuple[Family, int], str | None, set[Any]]],
        bulk: bool,
        exploded: bool,
    ) -> None:
        claims = []
        for index, address, sharing_key, ports in entries:
            req = self.request(
                index,
                {"families": (address[0],), "sharing_key": sharing_key, "ports": frozenset(ports)},
            )
            shown = text(*address)
            if exploded and address[0] == "IPv6":  # a spelling the allocator must canonicalize
                shown = ipaddress.IPv6Address(address[1]).exploded.upper()
            claims.append((req, [shown], None))
        with bulk_threshold(0 if bulk else 10**9):
            report = self.allocator.restore(claims)
        if report.conflicts:
            event("restore with conflicts")
        for conflict in report.conflicts:
            holder = self.allocator.lookup(conflict.holder)
            loser = self.allocator.lookup(conflict.key)
            assert holder is not None and conflict.ip in holder.ips
            assert loser is None or conflict.ip not in loser.ips

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def sharing_is_always_compatible(self) -> None:
        by_address: dict[tuple[Family, int], list[Assignment]] = {}
        for assignment in self.assignments().values():
            for ip in assignment.ips:
                by_address.setdefault(parse(ip), []).append(assignment)
        for address, holders in by_address.items():
            assert sorted(self.allocator.holders(text(*address))) == sorted(a.key for a in holders)
            if len(holders) > 1:
                keys = {a.sharing_key for a in holders}
                assert len(keys) == 1 and None not in keys, (address, holders)
                seen: set[tuple[str, int]] = set()
                for a in holders:
                    assert not (seen & a.ports), (address, holders)
                    seen |= a.ports
        retiring: dict[tuple[Family, int], list[str]] = {}
        for key in KEYS:
            for ip in self.allocator.retiring(key):
                retiring.setdefault(parse(ip), []).append(key)
        for address, keys in retiring.items():
            assert len(keys) == 1 and address not in by_address, (address, keys)

    @invariant()
    def stats_equal_a_recount(self) -> None:
        used = self.used()
        stats = self.allocator.stats()
        assert set(stats) == {p.name for p in self.pools}
        for pool in self.pools:
            usable = brute_usable(pool)
            for family in pool.families():
                in_family = {a for a in usable if a[0] == family}
                got = stats[pool.name][family]
                assert got.capacity == len(in_family)
                assert got.allocated == len(in_family & used)
                assert got.available == got.capacity - got.allocated


AllocatorMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("VIPAM_PROPERTY_EXAMPLES", "100")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAllocatorProperties = AllocatorMachine.TestCase
