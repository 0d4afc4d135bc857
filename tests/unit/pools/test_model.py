"""The IPPool spec, its validation messages, selectors and overlap detection (pools/model.py)."""

from __future__ import annotations

from typing import Any

import pytest

from pools.model import (
    IPPoolSpec,
    LabelSelector,
    Overlap,
    Pool,
    PoolValidationError,
    find_overlaps,
    parse_pool,
)


def errors_of(spec: Any, name: str = "p") -> list[str]:
    with pytest.raises(PoolValidationError) as caught:
        parse_pool(name, spec)
    assert str(caught.value) == "; ".join(caught.value.errors)
    return caught.value.errors


# --- parsing a full spec -----------------------------------------------------------------------


def test_full_spec_in_camel_case() -> None:
    pool = parse_pool(
        "dual",
        {
            "addresses": ["192.0.2.0/28", "2001:db8::/120", "198.51.100.10-198.51.100.20"],
            "exclude": ["192.0.2.5", "2001:db8::/124"],
            "autoAssign": False,
            "avoidBuggyIPs": True,
            "priority": 3,
            "disabled": True,
            "serviceAllocation": {
                "namespaces": ["web"],
                "namespaceSelector": {"matchLabels": {"team": "a"}},
                "serviceSelector": {
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["edge"]}]
                },
            },
        },
    )
    spec = pool.spec
    assert (spec.auto_assign, spec.avoid_buggy_ips, spec.priority, spec.disabled) == (
        False,
        True,
        3,
        True,
    )
    assert pool.families() == ("IPv4", "IPv6")
    # 16 - .0 (buggy) - .5 (excluded) = 14, plus 11 in the range; IPv6 256 - 16 excluded.
    assert pool.capacity("IPv4") == 14 + 11
    assert pool.capacity("IPv6") == 240
    assert not pool.contains("192.0.2.0")
    assert not pool.contains("192.0.2.5")
    assert pool.contains("192.0.2.6")
    assert not pool.contains("2001:db8::f")
    assert pool.contains("2001:db8::10")
    assert not pool.contains("not an ip")


def test_defaults_and_python_names() -> None:
    spec = IPPoolSpec(addresses=["192.0.2.0/30"], auto_assign=False)
    assert spec.auto_assign is False
    assert (spec.avoid_buggy_ips, spec.priority, spec.disabled) == (False, None, False)
    pool = Pool("p", spec)
    assert pool.capacity("IPv4") == 4
    assert pool.capacity("IPv6") == 0


def test_huge_pools_are_exact_ints() -> None:
    pool = parse_pool("big", {"addresses": ["2001:db8::/48", "10.0.0.0/8"]})
    assert pool.capacity("IPv6") == 2**80
    assert pool.capacity("IPv4") == 2**24


@pytest.mark.parametrize(
    ("entry", "usable", "capacity"),
    [
        ("192.0.2.7/32", ["192.0.2.7"], 1),
        ("192.0.2.6/31", ["192.0.2.6", "192.0.2.7"], 2),
        ("2001:db8::/127", ["2001:db8::", "2001:db8::1"], 2),
        ("2001:db8::9/128", ["2001:db8::9"], 1),
    ],
)
def test_smallest_blocks_are_fully_usable(entry: str, usable: list[str], capacity: int) -> None:
    pool = parse_pool("p", {"addresses": [entry]})
    assert pool.capacity(pool.families()[0]) == capacity
    assert all(pool.contains(ip) for ip in usable)


def test_avoid_buggy_at_edges_of_a_range_crossing_a_24() -> None:
    pool = parse_pool("p", {"addresses": ["198.51.100.254-198.51.101.1"], "avoidBuggyIPs": True})
    assert [
        ip
        for ip in ["198.51.100.254", "198.51.100.255", "198.51.101.0", "198.51.101.1"]
        if pool.contains(ip)
    ] == ["198.51.100.254", "198.51.101.1"]
    assert pool.capacity("IPv4") == 2


def test_avoid_buggy_does_not_touch_ipv6() -> None:
    pool = parse_pool("p", {"addresses": ["2001:db8::/120"], "avoidBuggyIPs": True})
    assert pool.contains("2001:db8::") and pool.contains("2001:db8::ff")
    assert pool.capacity("IPv6") == 256


def test_exclusions_at_the_edges() -> None:
    pool = parse_pool(
        "p", {"addresses": ["192.0.2.0/29"], "exclude": ["192.0.2.0", "192.0.2.6-192.0.2.7"]}
    )
    assert pool.usable_intervals("IPv4")[0] == (
        int.from_bytes(bytes([192, 0, 2, 1]), "big"),
        int.from_bytes(bytes([192, 0, 2, 5]), "big"),
    )
    assert pool.capacity("IPv4") == 5


def test_everything_excluded_leaves_an_empty_family() -> None:
    pool = parse_pool("p", {"addresses": ["192.0.2.0/30"], "exclude": ["192.0.2.0/30"]})
    assert pool.families() == ("IPv4",)
    assert pool.capacity("IPv4") == 0


# --- bad input, one message per problem --------------------------------------------------------


def test_issue_example_message() -> None:
    errors = errors_of({"addresses": ["192.0.2.0/24", "198.51.100.0/24", "10.0.0.300/24"]})
    assert errors == ["addresses[2]: '10.0.0.300/24' is not a CIDR or range"]


def test_every_bad_field_is_reported_at_once() -> None:
    errors = errors_of(
        {
            "addresses": ["192.0.2.0/28", 5],
            "exclude": ["x"],
            "autoassign": True,
            "priority": "high",
            "disabled": "maybe",
        }
    )
    assert "addresses[1]: Input should be a valid string (got 5)" in errors
    assert "exclude[0]: 'x' is not a CIDR, range or IP" in errors
    assert "autoassign: unknown field (check the spelling)" in errors
    assert any(e.startswith("priority: ") and "(got 'high')" in e for e in errors)
    assert any(e.startswith("disabled: ") and "(got 'maybe')" in e for e in errors)
    assert len(errors) == 5


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, "addresses: a pool needs at least one address entry (or external)"),
        ({"addresses": []}, "addresses: a pool needs at least one address entry (or external)"),
        ({"addresses": "192.0.2.0/24"}, "addresses: Input should be a valid list"),
        (
            {"addresses": ["192.0.2.0/24", "192.0.2.128/25"]},
            "addresses[1]: '192.0.2.128/25' overlaps addresses[0] '192.0.2.0/24'",
        ),
        (
            {"addresses": ["2001:db8::/64", "2001:db8::1-2001:db8::5"]},
            "addresses[1]: '2001:db8::1-2001:db8::5' overlaps addresses[0] '2001:db8::/64'",
        ),
        (
            {"addresses": ["192.0.2.0/28"], "exclude": ["198.51.100.1"]},
            "exclude[0]: '198.51.100.1' is outside the pool's addresses",
        ),
        (
            {"addresses": ["192.0.2.0/24"], "serviceAllocation": {"namespaces": [""]}},
            "serviceAllocation.namespaces[0]: String should match pattern",
        ),
        (
            {"addresses": ["192.0.2.0/24"], "serviceAllocation": {"namespaces": ["Kube_System"]}},
            "serviceAllocation.namespaces[0]: String should match pattern",
        ),
        (
            {"addresses": ["192.0.2.0/24"], "priority": -1},
            "priority: Input should be greater than or equal to 0 (got -1)",
        ),
        (
            {"addresses": ["192.0.2.0/24"], "priority": 2**31},
            "priority: Input should be less than or equal to 2147483647",
        ),
        (
            {"addresses": ["192.0.2.0/24"], "external": {"provider": "http", "url": "https://x"}},
            "addresses: an external pool takes its addresses from the IPAM",
        ),
        (
            {
                "addresses": ["192.0.2.0/24"],
                "serviceAllocation": {
                    "serviceSelector": {"matchExpressions": [{"key": "a", "operator": "in"}]}
                },
            },
            "serviceAllocation.serviceSelector.matchExpressions[0].operator: Input should be",
        ),
        (
            {
                "addresses": ["192.0.2.0/24"],
                "serviceAllocation": {
                    "serviceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}
                },
            },
            "serviceAllocation.serviceSelector.matchExpressions[0]: operator In needs at least",
        ),
        (
            {
                "addresses": ["192.0.2.0/24"],
                "serviceAllocation": {
                    "namespaceSelector": {
                        "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
                    }
                },
            },
            "serviceAllocation.namespaceSelector.matchExpressions[0]: operator Exists takes no",
        ),
        (
            {"external": {"provider": "ldap", "url": "https://ipam.example"}},
            "external.provider: Input should be 'http' or 'netbox' (got 'ldap')",
        ),
        (
            {"external": {"provider": "http", "url": "ftp://ipam.example"}},
            "external.url: 'ftp://ipam.example' is not an http:// or https:// URL",
        ),
        (
            {"external": {"provider": "http", "url": "https://x", "timeoutSeconds": 0}},
            "external.timeoutSeconds: Input should be greater than 0 (got 0)",
        ),
        (
            {"external": {"provider": "http", "url": "https://x", "timeoutSeconds": 301}},
            "external.timeoutSeconds: Input should be less than or equal to 300 (got 301)",
        ),
        (
            {"external": {"provider": "http", "url": "https://x", "secretRef": {}}},
            "external.secretRef.name: is required",
        ),
        (
            {"external": {"provider": "netbox", "url": "https://x", "prefixId": 3}},
            "external.prefixId: unknown field (check the spelling)",
        ),
    ],
)
def test_bad_specs(spec: dict[str, Any], expected: str) -> None:
    errors = errors_of(spec)
    assert any(error.startswith(expected) for error in errors), errors


@pytest.mark.parametrize("name", ["", "Upper", "-lead", "has space", "a" * 254, 7])
def test_bad_names(name: Any) -> None:
    errors = errors_of({"addresses": ["192.0.2.0/24"]}, name=name)
    assert errors[0].startswith("metadata.name: ")


def test_spec_must_be_a_mapping() -> None:
    assert errors_of(["192.0.2.0/24"]) == ["spec: expected a mapping, got list"]


def test_overlap_inside_a_pool_is_refused_when_built_directly() -> None:
    with pytest.raises(PoolValidationError, match="overlaps"):
        Pool("p", IPPoolSpec(addresses=["192.0.2.0/24", "192.0.2.10-192.0.2.12"]))


# --- external pools -----------------------------------------------------------------------------


def test_external_pool_without_addresses() -> None:
    pool = parse_pool(
        "nb",
        {
            "external": {
                "provider": "netbox",
                "url": "https://netbox.example/",
                "secretRef": {"name": "netbox-token", "namespace": "kube-system"},
                "caBundle": "-----BEGIN CERTIFICATE-----",
                "timeoutSeconds": 2.5,
                "options": {"prefixId": 7, "releaseMode": "delete"},
            }
        },
    )
    external = pool.spec.external
    assert external is not None and pool.is_external
    assert external.secret_ref is not None and external.secret_ref.key == "token"
    assert external.options == {"prefixId": 7, "releaseMode": "delete"}
    assert external.timeout_seconds == 2.5
    assert pool.families() == ()


# --- selectors ----------------------------------------------------------------------------------


def selector(**spec: Any) -> LabelSelector:
    return LabelSelector.model_validate(spec)


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        ("In", ["a", "b"], {"k": "a"}, True),
        ("In", ["a", "b"], {"k": "c"}, False),
        ("In", ["a"], {}, False),
        ("NotIn", ["a"], {"k": "b"}, True),
        ("NotIn", ["a"], {"k": "a"}, False),
        ("NotIn", ["a"], {}, True),  # Kubernetes: a missing key satisfies NotIn
        ("Exists", [], {"k": ""}, True),
        ("Exists", [], {}, False),
        ("DoesNotExist", [], {}, True),
        ("DoesNotExist", [], {"k": "x"}, False),
    ],
)
def test_expressions(
    operator: str, values: list[str], labels: dict[str, str], expected: bool
) -> None:
    sel = selector(matchExpressions=[{"key": "k", "operator": operator, "values": values}])
    assert sel.matches(labels) is expected


def test_empty_selector_matches_everything_and_parts_are_anded() -> None:
    assert selector().matches({})
    sel = selector(
        matchLabels={"app": "web"},
        matchExpressions=[{"key": "env", "operator": "NotIn", "values": ["dev"]}],
    )
    assert sel.matches({"app": "web", "env": "prod"})
    assert not sel.matches({"app": "web", "env": "dev"})
    assert not sel.matches({"app": "db", "env": "prod"})


def test_service_allocation() -> None:
    pool = parse_pool(
        "p",
        {
            "addresses": ["192.0.2.0/24"],
            "serviceAllocation": {
                "namespaces": ["listed"],
                "namespaceSelector": {"matchLabels": {"team": "net"}},
                "serviceSelector": {"matchLabels": {"expose": "yes"}},
            },
        },
    )
    svc = {"expose": "yes"}
    assert pool.selects("listed", {}, svc)
    assert pool.selects("other", {"team": "net"}, svc)  # namespace listed OR selected
    assert not pool.selects("other", {"team": "db"}, svc)
    assert not pool.selects("listed", {}, {"expose": "no"})  # service selector is ANDed
    open_pool = parse_pool("q", {"addresses": ["192.0.2.0/24"]})
    assert open_pool.selects("any", {}, {})


# --- overlaps between pools ---------------------------------------------------------------------


def test_find_overlaps_between_pools() -> None:
    a = parse_pool("a", {"addresses": ["192.0.2.0/24", "2001:db8::/64"]})
    b = parse_pool("b", {"addresses": ["192.0.2.128-192.0.3.10", "2001:db8::/120"]})
    c = parse_pool("c", {"addresses": ["198.51.100.0/24"]})
    d = parse_pool("d", {"addresses": ["192.0.2.200/29"], "exclude": ["192.0.2.200/29"]})
    assert find_overlaps([c, b, a, d]) == [
        Overlap("a", "b", "192.0.2.128/25, 2001:db8::/120"),
    ]


def test_find_overlaps_respects_exclusions_and_buggy_mask() -> None:
    a = parse_pool("a", {"addresses": ["192.0.2.0/24"], "exclude": ["192.0.2.0/25"]})
    b = parse_pool("b", {"addresses": ["192.0.2.0/25"]})
    c = parse_pool("c", {"addresses": ["192.0.2.255/32"]})
    d = parse_pool("d", {"addresses": ["192.0.2.250-192.0.3.0"], "avoidBuggyIPs": True})
    assert find_overlaps([a, b, c, d]) == [
        Overlap("a", "c", "192.0.2.255"),
        Overlap("a", "d", "192.0.2.250-192.0.2.254"),
    ]


def test_find_overlaps_many_pools_chained() -> None:
    pools = [
        parse_pool(f"p{i:02d}", {"addresses": [f"2001:db8::{i * 16:x}-2001:db8::{i * 16 + 20:x}"]})
        for i in range(10)
    ]
    overlaps = find_overlaps(pools)
    assert [(o.pool_a, o.pool_b) for o in overlaps] == [
        (f"p{i:02d}", f"p{i + 1:02d}") for i in range(9)
    ]
    assert overlaps[0].ranges == "2001:db8::10-2001:db8::14"


def test_pools_compare_by_name_and_spec_and_are_hashable() -> None:
    one = parse_pool("a", {"addresses": ["192.0.2.0/24"]})
    same = parse_pool("a", {"addresses": ["192.0.2.0/24"]})
    changed = parse_pool("a", {"addresses": ["192.0.2.0/25"]})
    assert one == same and one != changed
    assert len({one, same, changed}) == 2
