"""Restore after a restart, reconfiguration, snapshots and external (adopted) addresses."""

from __future__ import annotations

import pytest

from pools.allocator import Allocator, PoolStats
from pools.model import parse_pool
from tests.unit.pools.helpers import Refused, adopted, pool, svc, take, tcp

EXTERNAL = {"provider": "http", "url": "https://ipam.example/"}


# --- restore ------------------------------------------------------------------------------------


def test_restore_keeps_addresses_exactly_as_shown() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29"), pool("m", "2001:db8::/126")])
    report = allocator.restore(
        [
            (svc("x"), ["192.0.2.5"], "a"),
            (svc("y", families=("IPv6",)), ["2001:db8::3"], None),  # no annotation
        ]
    )
    assert report.conflicts == [] and report.outside == []
    assert [(a.key, a.ips, a.pools) for a in report.restored] == [
        ("default/x", ("192.0.2.5",), ("a",)),
        ("default/y", ("2001:db8::3",), ("m",)),
    ]
    # Nothing moved, and new Services get the lowest address around them.
    assert take(allocator, svc("z")).ips == ("192.0.2.0",)
    assert allocator.stats()["a"]["IPv4"] == PoolStats(8, 2, 6)


def test_older_service_wins_whatever_the_input_order() -> None:
    older = svc("older", created=10.0)
    newer = svc("newer", created=20.0)
    for entries in (
        [(newer, ["192.0.2.1"], "a"), (older, ["192.0.2.1"], "a")],
        [(older, ["192.0.2.1"], "a"), (newer, ["192.0.2.1"], "a")],
    ):
        allocator = Allocator([pool("a", "192.0.2.0/29")])
        report = allocator.restore(entries)
        assert [(c.key, c.ip, c.holder) for c in report.conflicts] == [
            ("default/newer", "192.0.2.1", "default/older")
        ]
        assert allocator.lookup("default/newer") is None  # never silently given another address
        assert allocator.holders("192.0.2.1") == ("default/older",)


def test_same_creation_time_falls_back_to_uid() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    report = allocator.restore(
        [
            (svc("b", created=1.0, uid="bbb"), ["192.0.2.1"], None),
            (svc("a", created=1.0, uid="aaa"), ["192.0.2.1"], None),
        ]
    )
    assert [c.key for c in report.conflicts] == ["default/b"]


def test_compatible_sharers_are_both_restored() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    report = allocator.restore(
        [
            (svc("web", sharing_key="k", ports=tcp(80)), ["192.0.2.1"], "a"),
            (svc("tls", sharing_key="k", ports=tcp(443)), ["192.0.2.1"], "a"),
            (svc("bad", sharing_key="k", ports=tcp(443)), ["192.0.2.1"], "a"),
        ]
    )
    assert allocator.holders("192.0.2.1") == ("default/web", "default/tls")
    assert [(c.key, c.holder) for c in report.conflicts] == [("default/bad", "default/tls")]


def test_restore_on_top_is_a_no_op_for_known_entries() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    first = take(allocator, svc("x", created=1.0))
    report = allocator.restore([(svc("x", created=1.0), list(first.ips), "a")])
    assert report.restored == [first] and report.conflicts == []
    assert allocator.stats()["a"]["IPv4"].allocated == 1


def test_restored_older_entry_evicts_a_newer_holder() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("newer", created=50.0, requested_ips=("192.0.2.4",)))
    report = allocator.restore([(svc("older", created=1.0), ["192.0.2.4"], "a")])
    assert [(c.key, c.ip, c.holder) for c in report.conflicts] == [
        ("default/newer", "192.0.2.4", "default/older")
    ]
    assert allocator.lookup("default/newer") is None
    assert allocator.holders("192.0.2.4") == ("default/older",)
    assert allocator.stats()["a"]["IPv4"].allocated == 1


def test_restore_replaces_what_a_key_held_before() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("x", created=1.0))
    allocator.restore([(svc("x", created=1.0), ["192.0.2.6"], "a")])
    assert allocator.holders("192.0.2.0") == ()
    assert allocator.stats()["a"]["IPv4"].allocated == 1


def test_restore_forgets_retiring_holds_on_a_shown_address() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("mover", created=1.0))
    take(allocator, svc("mover", created=1.0, requested_ips=("192.0.2.5",)))
    assert allocator.retiring("default/mover") == ("192.0.2.0",)
    allocator.restore([(svc("shown", created=2.0), ["192.0.2.0"], "a")])
    assert allocator.retiring("default/mover") == ()
    assert allocator.holders("192.0.2.0") == ("default/shown",)
    allocator.release("default/shown")
    assert take(allocator, svc("next")).ips == ("192.0.2.0",)


def test_restore_reports_outside_and_bad_entries() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    report = allocator.restore(
        [
            (svc("out"), ["203.0.113.9"], "gone"),
            (svc("garbage"), ["not-an-ip"], None),
            (svc("two-v4"), ["192.0.2.1", "192.0.2.2"], None),
            (svc("nothing"), [], None),
        ]
    )
    assert report.outside == [("default/out", "203.0.113.9")]
    assert [(c.key, c.holder) for c in report.conflicts] == [
        ("default/garbage", ""),
        ("default/two-v4", ""),
    ]
    out = allocator.lookup("default/out")
    assert out is not None and out.pools == ("",)
    assert allocator.lookup("default/nothing") is None


def test_bulk_restore_equals_one_by_one() -> None:
    pools = [pool("a", "192.0.2.0/24", "2001:db8::/120", avoidBuggyIPs=True)]
    entries = []
    for index in range(1, 255):
        entries.append((svc(f"v4-{index}", created=float(index)), [f"192.0.2.{index}"], "a"))
        entries.append(
            (
                svc(f"v6-{index}", created=float(index), families=("IPv6",)),
                [f"2001:db8::{index:x}"],
                "a",
            )
        )
    entries.append((svc("loser", created=999.0), ["192.0.2.7"], "a"))
    bulk = Allocator(pools)
    bulk_report = bulk.restore(entries)
    single = Allocator(pools)
    reports = [single.restore([entry]) for entry in entries]
    assert bulk.stats() == single.stats()
    assert bulk.snapshot() == single.snapshot()
    assert [c.key for c in bulk_report.conflicts] == ["default/loser"]
    assert [c.key for r in reports for c in r.conflicts] == ["default/loser"]
    assert take(bulk, svc("next", families=("IPv6",))).ips == ("2001:db8::",)
    with pytest.raises(Refused) as caught:
        take(bulk, svc("next4"))
    assert caught.value.reason == "PoolExhausted"  # .1-.254 restored, .0/.255 are masked


def test_snapshot_round_trip_with_mixed_pools_and_sharing() -> None:
    pools = [
        pool("v4", "192.0.2.0/29"),
        pool("v6", "2001:db8::/126"),
        pool("ext", external=EXTERNAL, autoAssign=False),
    ]
    allocator = Allocator(pools)
    take(allocator, svc("d", families=("IPv6", "IPv4"), family_policy="RequireDualStack"))
    take(allocator, svc("s1", sharing_key="k", ports=tcp(80)))
    take(allocator, svc("s2", sharing_key="k", ports=tcp(443)))
    adopted(allocator, svc("e"), ["203.0.113.7"], "ext")
    allocator.restore([(svc("o"), ["198.51.100.1"], None)])
    rebuilt = Allocator(pools)
    report = rebuilt.restore(allocator.snapshot())
    assert report.conflicts == []
    assert report.outside == [("default/o", "198.51.100.1")]
    for request, _, _ in allocator.snapshot():
        assert rebuilt.lookup(request.key) == allocator.lookup(request.key)
    assert rebuilt.stats() == allocator.stats()


# --- reconfiguration ----------------------------------------------------------------------------


def test_removing_shrinking_disabling_never_moves() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29"), pool("b", "198.51.100.0/29")])
    in_a = take(allocator, svc("x", created=1.0, requested_pools=("a",)))
    in_b = take(allocator, svc("y", created=2.0, requested_pools=("b",)))
    late = take(allocator, svc("z", created=3.0, requested_ips=("192.0.2.6",)))
    outside = allocator.set_pools([pool("a", "192.0.2.0/30", disabled=True)])
    assert outside == [("default/y", "198.51.100.0"), ("default/z", "192.0.2.6")]
    assert allocator.lookup("default/x") == in_a
    assert take(allocator, svc("x", created=1.0, requested_pools=("a",))) == in_a
    kept = take(allocator, svc("y", created=2.0, requested_pools=("b",)))
    assert kept.ips == in_b.ips and kept.pools == ("",)
    assert take(allocator, svc("z", created=3.0, requested_ips=("192.0.2.6",))).ips == late.ips
    assert allocator.stats() == {"a": {"IPv4": PoolStats(4, 1, 3)}}
    # Re-adding the pool brings the kept addresses back into its accounting.
    allocator.set_pools([pool("a", "192.0.2.0/29"), pool("b", "198.51.100.0/29")])
    assert allocator.stats()["a"]["IPv4"] == PoolStats(8, 2, 6)
    assert allocator.stats()["b"]["IPv4"] == PoolStats(8, 1, 7)
    assert allocator.lookup("default/y") is not None
    assert allocator.lookup("default/y").pools == ("b",)  # type: ignore[union-attr]
    assert take(allocator, svc("new", requested_pools=("b",))).ips == ("198.51.100.1",)


def test_released_outside_address_is_simply_forgotten() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("x"))
    allocator.set_pools([])
    assert allocator.release("default/x") == ("192.0.2.0",)
    allocator.set_pools([pool("a", "192.0.2.0/29")])
    assert allocator.stats()["a"]["IPv4"].allocated == 0


def test_duplicate_pool_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate pool names: a"):
        Allocator([pool("a", "192.0.2.0/29"), pool("a", "198.51.100.0/29")])


def test_empty_ipv6_48_has_one_free_interval() -> None:
    allocator = Allocator([pool("huge", "2001:db8::/48"), pool("tiny", "192.0.2.0/30")])
    assert allocator.stats()["huge"]["IPv6"] == PoolStats(2**80, 0, 2**80)
    for state in allocator._ledger.states:  # the structure, not the count, is what costs
        assert [len(free) for free in state.free.values()] == [1]


# --- external pools -----------------------------------------------------------------------------


def test_external_pool_is_delegated_then_adopted() -> None:
    allocator = Allocator([pool("nb", external=EXTERNAL, priority=1), pool("a", "192.0.2.0/29")])
    with pytest.raises(Refused) as caught:
        take(allocator,
            svc("x", created=1.0, families=("IPv4", "IPv6"), family_policy="RequireDualStack")
        )
    assert (caught.value.pool, caught.value.families, caught.value.reason) == (
        "nb",
        ("IPv4", "IPv6"),
        "ExternalPool",
    )
    got = adopted(allocator,
        svc("x", created=1.0, families=("IPv4", "IPv6"), family_policy="RequireDualStack"),
        ["203.0.113.10", "2001:db8:ff::10"],
        "nb",
    )
    assert got.pools == ("nb", "nb")
    again = take(allocator,
        svc("x", created=1.0, families=("IPv4", "IPv6"), family_policy="RequireDualStack")
    )
    assert again == got
    assert "nb" not in allocator.stats()
    assert allocator.set_pools(allocator.pools()) == []  # external addresses are not "outside"


def test_adopt_conflicts_and_bad_input() -> None:
    allocator = Allocator([pool("nb", external=EXTERNAL), pool("a", "192.0.2.0/29")])
    take(allocator, svc("holder", requested_pools=("a",)))
    for ips, pool_name, reason in [
        (["192.0.2.0"], "nb", "RequestedIPInUse"),
        (["203.0.113.1"], "missing", "UnknownPool"),
        (["2001:db8::1"], "nb", "FamilyMismatch"),
        (["nope"], "nb", "InvalidRequest"),
    ]:
        with pytest.raises(Refused) as caught:
            adopted(allocator, svc("x"), ips, pool_name)
        assert caught.value.reason == reason


def test_adopted_address_inside_a_local_pool_is_taken_from_it() -> None:
    allocator = Allocator([pool("nb", external=EXTERNAL), pool("a", "192.0.2.0/29")])
    adopted(allocator, svc("x"), ["192.0.2.0"], "nb")
    assert allocator.stats()["a"]["IPv4"].allocated == 1
    assert take(allocator, svc("y", requested_pools=("a",))).ips == ("192.0.2.1",)


def test_requested_ip_outside_local_pools_goes_to_the_external_pool() -> None:
    allocator = Allocator([pool("nb", external=EXTERNAL), pool("a", "192.0.2.0/29")])
    with pytest.raises(Refused) as caught:
        take(allocator, svc("x", requested_ips=("203.0.113.5",), requested_pools=("nb",)))
    assert caught.value.pool == "nb"


def test_parse_pool_round_trip_for_external() -> None:
    assert parse_pool("nb", {"external": EXTERNAL}).is_external


def test_dual_stack_combines_a_local_and_an_external_family() -> None:
    allocator = Allocator(
        [pool("v4", "192.0.2.0/30", priority=1), pool("nb", external=EXTERNAL, priority=2)]
    )

    def request() -> object:
        return svc("x", created=1.0, families=("IPv4", "IPv6"), family_policy="RequireDualStack")

    with pytest.raises(Refused) as caught:
        take(allocator, request())  # type: ignore[arg-type]
    assert (caught.value.pool, caught.value.families) == ("nb", ("IPv6",))
    assert allocator.lookup("default/x") is None  # nothing half-allocated meanwhile
    adopted(allocator, request(), ["2001:db8:ff::1"], "nb")  # type: ignore[arg-type]
    final = take(allocator, request())  # type: ignore[arg-type]
    assert (final.ips, final.pools) == (("192.0.2.0", "2001:db8:ff::1"), ("v4", "nb"))
    # Adopting again for one family keeps the other family's address.
    again = adopted(allocator, request(), ["2001:db8:ff::1"], "nb")  # type: ignore[arg-type]
    assert again == final


def test_full_local_pool_overflows_to_the_external_one() -> None:
    allocator = Allocator(
        [pool("v4", "192.0.2.0/32", priority=1), pool("nb", external=EXTERNAL, priority=2)]
    )
    assert take(allocator, svc("first")).pools == ("v4",)
    with pytest.raises(Refused) as caught:
        take(allocator, svc("second"))
    assert caught.value.pool == "nb"


def test_doomed_request_does_not_ask_the_external_ipam() -> None:
    allocator = Allocator(
        [pool("v4", "192.0.2.0/32", priority=1), pool("nb", external=EXTERNAL, priority=2)]
    )
    take(allocator, svc("holder", requested_pools=("v4",)))
    taken = svc(
        "x",
        families=("IPv4", "IPv6"),
        family_policy="RequireDualStack",
        requested_ips=("192.0.2.0",),
    )
    with pytest.raises(Refused) as caught:
        take(allocator, taken)
    assert caught.value.reason == "RequestedIPInUse"
