"""Allocation rules: order, requested IPs and pools, dual-stack, sharing, retiring, release."""

from __future__ import annotations

import pytest

from pools.allocator import Allocator, PoolStats
from tests.unit.pools.helpers import Refused, pool, svc, take, tcp


def reason_of(allocator: Allocator, request: object) -> str:
    with pytest.raises(Refused) as caught:
        take(allocator, request)  # type: ignore[arg-type]
    assert caught.value.message  # always a sentence for the user
    return caught.value.reason


# --- order and determinism ----------------------------------------------------------------------


def test_lowest_free_address_first_and_reused_at_once() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/30")])
    ips = [take(allocator, svc(f"s{i}")).ips for i in range(4)]
    assert ips == [("192.0.2.0",), ("192.0.2.1",), ("192.0.2.2",), ("192.0.2.3",)]
    assert allocator.release("default/s1") == ("192.0.2.1",)
    assert take(allocator, svc("again")).ips == ("192.0.2.1",)


def test_same_sequence_gives_same_answers() -> None:
    def run() -> list[tuple[str, ...]]:
        allocator = Allocator([pool("b", "198.51.100.0/29"), pool("a", "192.0.2.0/29")])
        answers = [take(allocator, svc(f"s{i}")).ips for i in range(6)]
        allocator.release("default/s2")
        answers.append(take(allocator, svc("late")).ips)
        return answers

    assert run() == run()


def test_priority_then_name_unset_last() -> None:
    allocator = Allocator(
        [
            pool("zeta", "192.0.2.0/32", priority=5),
            pool("alpha", "192.0.2.1/32", priority=5),
            pool("unset", "192.0.2.2/32"),
            pool("first", "192.0.2.3/32", priority=0),
        ]
    )
    assert [p.name for p in allocator.pools()] == ["first", "alpha", "zeta", "unset"]
    got = [take(allocator, svc(f"s{i}")).pools[0] for i in range(4)]
    assert got == ["first", "alpha", "zeta", "unset"]
    assert reason_of(allocator, svc("none-left")) == "PoolExhausted"


def test_auto_assign_false_and_disabled_are_skipped_automatically() -> None:
    allocator = Allocator(
        [
            pool("manual", "192.0.2.0/32", autoAssign=False, priority=1),
            pool("off", "192.0.2.1/32", disabled=True, priority=2),
            pool("auto", "192.0.2.2/32", priority=3),
        ]
    )
    assert take(allocator, svc("a")).ips == ("192.0.2.2",)
    assert reason_of(allocator, svc("b")) == "PoolExhausted"
    assert take(allocator, svc("c", requested_pools=("manual",))).ips == ("192.0.2.0",)
    assert reason_of(allocator, svc("d", requested_pools=("off",))) == "PoolDisabled"
    assert reason_of(allocator, svc("e", requested_ips=("192.0.2.1",))) == "PoolDisabled"


def test_no_pool_at_all() -> None:
    assert reason_of(Allocator(), svc("a")) == "NoMatchingPool"


def test_selectors_decide_which_pools_serve() -> None:
    allocator = Allocator(
        [
            pool(
                "team",
                "192.0.2.0/30",
                priority=1,
                serviceAllocation={"namespaceSelector": {"matchLabels": {"team": "net"}}},
            ),
            pool(
                "edge",
                "198.51.100.0/30",
                serviceAllocation={"serviceSelector": {"matchLabels": {"edge": "yes"}}},
            ),
        ]
    )
    assert take(allocator, svc("a", "net", namespace_labels={"team": "net"})).pools == ("team",)
    assert take(allocator, svc("b", labels={"edge": "yes"})).pools == ("edge",)
    assert reason_of(allocator, svc("c")) == "NoMatchingPool"
    assert reason_of(allocator, svc("d", requested_pools=("team",))) == "NoMatchingPool"
    assert reason_of(allocator, svc("e", requested_ips=("192.0.2.3",))) == "NoMatchingPool"


def test_full_first_pool_falls_through_to_next() -> None:
    allocator = Allocator([pool("a", "192.0.2.7/32", priority=1), pool("b", "198.51.100.0/31")])
    assert take(allocator, svc("s1")).pools == ("a",)
    assert take(allocator, svc("s2")).pools == ("b",)
    assert take(allocator, svc("s3")).pools == ("b",)
    assert reason_of(allocator, svc("s4")) == "PoolExhausted"


def test_exclusions_and_buggy_ips_are_never_handed_out() -> None:
    allocator = Allocator(
        [
            pool(
                "a",
                "192.0.2.253-192.0.3.2",
                exclude=["192.0.3.1"],
                avoidBuggyIPs=True,
            )
        ]
    )
    got = [take(allocator, svc(f"s{i}")).ips[0] for i in range(3)]
    assert got == ["192.0.2.253", "192.0.2.254", "192.0.3.2"]
    assert reason_of(allocator, svc("more")) == "PoolExhausted"


# --- requested IPs and pools --------------------------------------------------------------------


def test_requested_ip_rules() -> None:
    allocator = Allocator(
        [pool("a", "192.0.2.0/29", exclude=["192.0.2.5"]), pool("b", "2001:db8::/126")]
    )
    assert take(allocator, svc("x", requested_ips=("192.0.2.6",))).ips == ("192.0.2.6",)
    assert reason_of(allocator, svc("y", requested_ips=("192.0.2.6",))) == "RequestedIPInUse"
    assert reason_of(allocator, svc("z", requested_ips=("198.51.100.1",))) == (
        "RequestedIPOutsidePools"
    )
    assert reason_of(allocator, svc("w", requested_ips=("192.0.2.5",))) == (
        "RequestedIPOutsidePools"
    )
    assert reason_of(allocator, svc("v", requested_ips=("192.0.2.300",))) == "InvalidRequest"
    assert (
        reason_of(
            allocator,
            svc(
                "u",
                requested_ips=("192.0.2.1", "192.0.2.2"),
                families=("IPv4", "IPv6"),
                family_policy="RequireDualStack",
            ),
        )
        == "InvalidRequest"
    )
    assert reason_of(allocator, svc("t", requested_ips=("2001:db8::1",))) == "FamilyMismatch"
    assert reason_of(allocator, svc("s", requested_ips=("192.0.2.1",), requested_pools=("b",))) == (
        "RequestedIPOutsidePools"
    )
    got = take(allocator,
        svc("r", requested_ips=("2001:DB8::2",), families=("IPv6",), requested_pools=("b",))
    )
    assert (got.ips, got.pools) == (("2001:db8::2",), ("b",))


def test_unknown_pool() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/30")])
    assert reason_of(allocator, svc("x", requested_pools=("nope",))) == "UnknownPool"
    assert reason_of(allocator, svc("y", requested_pools=("a", "nope"))) == "UnknownPool"


def test_requested_pools_are_tried_in_the_order_given() -> None:
    allocator = Allocator(
        [pool("a", "192.0.2.0/32", priority=1), pool("b", "198.51.100.0/31", priority=2)]
    )
    assert take(allocator, svc("x", requested_pools=("b", "a"))).pools == ("b",)


# --- families -----------------------------------------------------------------------------------


def dual(name: str, policy: str = "RequireDualStack", **fields: object) -> object:
    fields.setdefault("families", ("IPv4", "IPv6"))
    return svc(name, family_policy=policy, **fields)


def test_require_dual_stack_from_a_mixed_pool() -> None:
    allocator = Allocator([pool("mixed", "192.0.2.0/31", "2001:db8::/127")])
    got = take(allocator, dual("a", families=("IPv6", "IPv4")))  # type: ignore[arg-type]
    assert got.ips == ("2001:db8::", "192.0.2.0")
    assert got.pools == ("mixed", "mixed")


def test_require_dual_stack_fails_atomically() -> None:
    allocator = Allocator([pool("v4", "192.0.2.0/30"), pool("v6", "2001:db8::/128")])
    take(allocator, svc("holds-v6", families=("IPv6",)))
    before = allocator.stats()
    assert reason_of(allocator, dual("a")) == "DualStackUnavailable"
    assert allocator.stats() == before
    assert allocator.lookup("default/a") is None


def test_require_dual_stack_without_any_ipv6_pool() -> None:
    allocator = Allocator([pool("v4", "192.0.2.0/30")])
    assert reason_of(allocator, dual("a")) == "DualStackUnavailable"
    assert allocator.stats()["v4"]["IPv4"].allocated == 0


def test_require_dual_stack_keeps_the_specific_reason_when_not_about_room() -> None:
    allocator = Allocator([pool("mixed", "192.0.2.0/30", "2001:db8::/126")])
    take(allocator, svc("x", requested_ips=("192.0.2.1",)))
    request = dual("a", requested_ips=("192.0.2.1",))
    assert reason_of(allocator, request) == "RequestedIPInUse"


def test_prefer_dual_stack_takes_what_exists_and_completes_later() -> None:
    allocator = Allocator([pool("v4", "192.0.2.0/30")])
    first = take(allocator, dual("a", "PreferDualStack"))  # type: ignore[arg-type]
    assert first.ips == ("192.0.2.0",)
    assert take(allocator, dual("a", "PreferDualStack")) == first  # type: ignore[arg-type]
    allocator.set_pools([*allocator.pools(), pool("v6", "2001:db8::/126")])
    second = take(allocator, dual("a", "PreferDualStack"))  # type: ignore[arg-type]
    assert second.ips == ("192.0.2.0", "2001:db8::")
    assert allocator.retiring("default/a") == ()


def test_prefer_dual_stack_fails_only_when_nothing_is_available() -> None:
    assert reason_of(
        Allocator([pool("x", "192.0.2.0/32", disabled=True)]), dual("a", "PreferDualStack")
    ) == ("NoMatchingPool")


def test_dual_stack_prefers_one_pool_with_both_families() -> None:
    allocator = Allocator(
        [
            pool("a-v4", "192.0.2.0/30", priority=1),
            pool("b-v6", "2001:db8::/126", priority=1),
            pool("c-mixed", "198.51.100.0/30", "2001:db8:1::/126", priority=2),
        ]
    )
    got = take(allocator, dual("a"))  # type: ignore[arg-type]
    assert got.pools == ("c-mixed", "c-mixed")
    single = take(allocator, svc("b"))
    assert single.pools == ("a-v4",)


def test_dual_stack_from_two_pools_when_no_pool_has_both() -> None:
    allocator = Allocator([pool("v6", "2001:db8::/126"), pool("v4", "192.0.2.0/30")])
    got = take(allocator, dual("a"))  # type: ignore[arg-type]
    assert got.ips == ("192.0.2.0", "2001:db8::")
    assert got.pools == ("v4", "v6")


@pytest.mark.parametrize(
    ("families", "policy"),
    [
        ((), "SingleStack"),
        (("IPv4", "IPv6"), "SingleStack"),
        (("IPv4",), "RequireDualStack"),
        (("IPv4", "IPv4"), "PreferDualStack"),
        (("IPv5",), "SingleStack"),
        (("IPv4",), "Whatever"),
    ],
)
def test_invalid_family_requests(families: tuple[str, ...], policy: str) -> None:
    allocator = Allocator([pool("a", "192.0.2.0/30", "2001:db8::/126")])
    assert reason_of(allocator, svc("a", families=families, family_policy=policy)) == (
        "InvalidRequest"
    )


def test_ipv6_only_pool_and_ipv4_service() -> None:
    allocator = Allocator([pool("v6", "2001:db8::/64")])
    assert take(allocator, svc("a", families=("IPv6",))).ips == ("2001:db8::",)
    assert reason_of(allocator, svc("b")) == "NoMatchingPool"
    assert allocator.stats()["v6"]["IPv6"] == PoolStats(2**64, 1, 2**64 - 1)


# --- sharing ------------------------------------------------------------------------------------


def test_sharing_needs_same_key_and_disjoint_ports() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    web = take(allocator, svc("web", sharing_key="k", ports=tcp(80)))
    tls = take(allocator, svc("tls", sharing_key="k", ports=tcp(443)))
    assert tls.ips == web.ips == ("192.0.2.0",)
    assert allocator.holders("192.0.2.0") == ("default/web", "default/tls")
    clash = take(allocator, svc("clash", sharing_key="k", ports=tcp(80)))
    other = take(allocator, svc("other", sharing_key="other", ports=tcp(22)))
    plain = take(allocator, svc("plain", ports=tcp(22)))
    assert {clash.ips, other.ips, plain.ips, web.ips} == {
        ("192.0.2.0",),
        ("192.0.2.1",),
        ("192.0.2.2",),
        ("192.0.2.3",),
    }
    assert allocator.stats()["a"]["IPv4"].allocated == 4


def test_udp_and_tcp_on_the_same_port_may_share() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    dns_tcp = take(allocator, svc("dns-tcp", sharing_key="dns", ports=tcp(53)))
    dns_udp = take(allocator, svc("dns-udp", sharing_key="dns", ports={("UDP", 53)}))
    assert dns_tcp.ips == dns_udp.ips


def test_joining_is_preferred_over_a_lower_free_address() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("first"))
    shared = take(allocator, svc("s1", sharing_key="k", ports=tcp(80)))
    allocator.release("default/first")
    joined = take(allocator, svc("s2", sharing_key="k", ports=tcp(443)))
    assert shared.ips == joined.ips == ("192.0.2.1",)


def test_requested_shared_ip() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("web", sharing_key="k", ports=tcp(80)))
    ok = svc("tls", sharing_key="k", ports=tcp(443), requested_ips=("192.0.2.0",))
    assert take(allocator, ok).ips == ("192.0.2.0",)
    clash = svc("c", sharing_key="k", ports=tcp(443), requested_ips=("192.0.2.0",))
    assert reason_of(allocator, clash) == "SharingConflict"
    wrong_key = svc("w", sharing_key="x", ports=tcp(8080), requested_ips=("192.0.2.0",))
    assert reason_of(allocator, wrong_key) == "RequestedIPInUse"
    no_key = svc("n", ports=tcp(8080), requested_ips=("192.0.2.0",))
    assert reason_of(allocator, no_key) == "RequestedIPInUse"


def test_port_change_into_a_clash_moves_and_leaves_the_shared_address() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("web", sharing_key="k", ports=tcp(80), created=1.0))
    take(allocator, svc("tls", sharing_key="k", ports=tcp(443), created=2.0))
    moved = take(allocator, svc("tls", sharing_key="k", ports=tcp(80, 443), created=2.0))
    assert moved.ips == ("192.0.2.1",)
    # The old address stays with web only: no retiring hold beside an incompatible sharer.
    assert allocator.holders("192.0.2.0") == ("default/web",)
    assert allocator.retiring("default/tls") == ()


def test_compatible_port_change_stays_and_is_rechecked_next_time() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("web", sharing_key="k", ports=tcp(80), created=1.0))
    take(allocator, svc("tls", sharing_key="k", ports=tcp(443), created=2.0))
    stays = take(allocator, svc("tls", sharing_key="k", ports=tcp(443, 8443), created=2.0))
    assert stays.ips == ("192.0.2.0",)
    assert stays.ports == tcp(443, 8443)
    # web now clashes with tls's new port set: web moves.
    assert take(allocator, svc("web", sharing_key="k", ports=tcp(80, 8443))).ips == (
        "192.0.2.1",
    )


def test_sole_holder_may_change_or_drop_its_key() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    first = take(allocator, svc("web", sharing_key="k", ports=tcp(80), created=1.0))
    renamed = take(allocator, svc("web", sharing_key="k2", ports=tcp(80), created=1.0))
    assert renamed.ips == first.ips and renamed.sharing_key == "k2"
    joiner = take(allocator, svc("tls", sharing_key="k2", ports=tcp(443)))
    assert joiner.ips == first.ips
    other = take(allocator, svc("old-key", sharing_key="k", ports=tcp(443)))
    assert other.ips != first.ips


def test_key_change_away_from_sharers_moves() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("web", sharing_key="k", ports=tcp(80), created=1.0))
    take(allocator, svc("tls", sharing_key="k", ports=tcp(443), created=2.0))
    moved = take(allocator, svc("tls", ports=tcp(443), created=2.0))
    assert moved.ips == ("192.0.2.1",) and moved.sharing_key is None


# --- replacing, retiring, releasing -------------------------------------------------------------


def test_allocate_is_idempotent_and_labels_do_not_move() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    request = svc("a", created=5.0)
    first = take(allocator, request)
    again = take(allocator, svc("a", created=5.0, labels={"new": "label"}))
    assert again is first


def test_changed_request_retires_the_old_address() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("a", created=1.0))
    moved = take(allocator, svc("a", created=1.0, requested_ips=("192.0.2.5",)))
    assert moved.ips == ("192.0.2.5",)
    assert allocator.retiring("default/a") == ("192.0.2.0",)
    assert allocator.holders("192.0.2.0") == ()
    assert allocator.stats()["a"]["IPv4"].allocated == 2
    assert take(allocator, svc("b")).ips == ("192.0.2.1",)  # .0 is not handed out
    assert reason_of(allocator, svc("c", requested_ips=("192.0.2.0",))) == "RequestedIPInUse"
    allocator.finish_retire("default/a")
    assert allocator.retiring("default/a") == ()
    assert take(allocator, svc("d")).ips == ("192.0.2.0",)


def test_retiring_address_can_be_taken_back_by_its_service() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("a", created=1.0))
    take(allocator, svc("a", created=1.0, requested_ips=("192.0.2.5",)))
    back = take(allocator, svc("a", created=1.0, requested_ips=("192.0.2.0",)))
    assert back.ips == ("192.0.2.0",)
    assert allocator.retiring("default/a") == ("192.0.2.5",)
    assert allocator.stats()["a"]["IPv4"].allocated == 2


def test_pool_request_change_moves_only_when_the_pool_no_longer_fits() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29"), pool("b", "198.51.100.0/29")])
    first = take(allocator, svc("x", created=1.0))
    assert take(allocator, svc("x", created=1.0, requested_pools=("a",))) == first
    moved = take(allocator, svc("x", created=1.0, requested_pools=("b",)))
    assert moved.pools == ("b",)
    assert allocator.retiring("default/x") == first.ips


def test_dual_to_single_retires_the_dropped_family() -> None:
    allocator = Allocator([pool("m", "192.0.2.0/30", "2001:db8::/126")])
    take(allocator, dual("a", created=1.0))  # type: ignore[arg-type]
    single = take(allocator, svc("a", created=1.0, families=("IPv6",)))
    assert single.ips == ("2001:db8::",)
    assert allocator.retiring("default/a") == ("192.0.2.0",)


def test_release_is_idempotent_and_frees_retiring_too() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/29")])
    take(allocator, svc("a", created=1.0))
    take(allocator, svc("a", created=1.0, requested_ips=("192.0.2.3",)))
    assert sorted(allocator.release("default/a")) == ["192.0.2.0", "192.0.2.3"]
    assert allocator.release("default/a") == ()
    assert allocator.release("default/never") == ()
    assert allocator.lookup("default/a") is None
    assert allocator.stats()["a"]["IPv4"] == PoolStats(8, 0, 8)


def test_failed_change_leaves_the_old_assignment() -> None:
    allocator = Allocator([pool("a", "192.0.2.0/30")])
    first = take(allocator, svc("a", created=1.0))
    assert reason_of(allocator, svc("a", created=1.0, requested_ips=("198.51.100.1",))) == (
        "RequestedIPOutsidePools"
    )
    assert allocator.lookup("default/a") == first
    assert allocator.retiring("default/a") == ()


def test_holders_of_garbage_is_empty() -> None:
    assert Allocator().holders("nope") == ()


# --- overlapping pools --------------------------------------------------------------------------


def test_overlapping_pools_never_hand_out_one_address_twice() -> None:
    allocator = Allocator(
        [pool("a", "192.0.2.0/30", priority=1), pool("b", "192.0.2.2-192.0.2.5", priority=2)]
    )
    got = [take(allocator, svc(f"s{i}")).ips[0] for i in range(6)]
    assert got == [f"192.0.2.{i}" for i in range(6)]
    stats = allocator.stats()
    assert stats["a"]["IPv4"] == PoolStats(4, 4, 0)
    assert stats["b"]["IPv4"] == PoolStats(4, 4, 0)
    allocator.release("default/s2")
    assert allocator.stats()["b"]["IPv4"].available == 1
    assert take(allocator, svc("again", requested_pools=("b",))).ips == ("192.0.2.2",)


@pytest.mark.parametrize(
    ("block", "family", "expected"),
    [
        ("192.0.2.9/32", "IPv4", ["192.0.2.9"]),
        ("192.0.2.8/31", "IPv4", ["192.0.2.8", "192.0.2.9"]),
        ("2001:db8::9/128", "IPv6", ["2001:db8::9"]),
        ("2001:db8::8/127", "IPv6", ["2001:db8::8", "2001:db8::9"]),
    ],
)
def test_smallest_blocks_hand_out_every_address_then_run_out(
    block: str, family: str, expected: list[str]
) -> None:
    allocator = Allocator([pool("tiny", block)])
    got = [take(allocator, svc(f"s{i}", families=(family,))).ips[0] for i in expected]
    assert got == expected
    assert reason_of(allocator, svc("one-more", families=(family,))) == "PoolExhausted"
    assert allocator.stats()["tiny"][family] == PoolStats(len(expected), len(expected), 0)  # type: ignore[index]


@pytest.mark.parametrize(("block", "family"), [("10.0.0.0/8", "IPv4"), ("2001:db8::/64", "IPv6")])
def test_sequential_allocations_keep_one_free_interval(block: str, family: str) -> None:
    """The free space of a big pool stays one interval however many addresses are handed out:
    the cost of the next allocation does not grow with the allocations."""
    allocator = Allocator([pool("big", block)])
    for index in range(1000):
        take(allocator, svc(f"s{index}", families=(family,)))
    (state,) = allocator._ledger.states
    (free,) = state.free.values()
    assert len(free) == 1
    assert allocator.stats()["big"][family].allocated == 1000  # type: ignore[index]
