"""The fast paths of a restore give exactly what the general ones give.

A bulk restore records the common case (one address, nobody holding it) inline, parses each
address once with :func:`pools.addresses.parse_packed` and attributes it with
:meth:`pools.model.Pool.contains_packed`. Each of those is checked here against the slower
code it stands in for, on random input: addresses in many spellings, and restores that mix
conflicts, evictions, sharing, retiring holds, unknown and external pools and garbage.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pools.addresses import AddressError, Family, format_ip, pack, parse_ip, parse_packed
from pools.allocator import Allocator, Assigned, RestoreReport, ServiceRequest
from pools.model import parse_pool
from tests.unit.pools.helpers import bulk_threshold

EXTERNAL = {"provider": "http", "url": "https://ipam.example/"}
V4_LOW, V4_HIGH = int(ipaddress.IPv4Address("198.51.100.250")), int(
    ipaddress.IPv4Address("198.51.101.5")
)
V6_LOW = int(ipaddress.IPv6Address("2001:db8::"))
ADDRESSES: list[tuple[Family, int]] = [
    *(("IPv4", value) for value in range(V4_LOW, V4_HIGH + 1)),
    *(("IPv6", value) for value in range(V6_LOW, V6_LOW + 12)),
]
POOLS = [
    parse_pool("a", {"addresses": ["198.51.100.250-198.51.101.1", "2001:db8::/125"]}),
    parse_pool("b", {
        "addresses": ["198.51.100.254-198.51.101.5"], "avoidBuggyIPs": True, "priority": 1,
    }),
    parse_pool("ext", {"external": EXTERNAL, "autoAssign": False}),
]


# --- parsing --------------------------------------------------------------------------------


@st.composite
def spellings(draw: st.DrawFn) -> str:
    """Addresses as a user or a buggy client might write them, valid or not."""
    address = draw(st.ip_addresses())
    style = draw(st.sampled_from(["plain", "upper", "exploded", "padded", "mapped", "noise"]))
    if style == "upper":
        return str(address).upper()
    if style == "exploded":
        return address.exploded
    if style == "padded" and address.version == 4:
        return ".".join(f"{int(part):03d}" for part in str(address).split("."))
    if style == "mapped" and address.version == 4:
        return f"::ffff:{address}"
    if style == "noise":
        return draw(st.text(alphabet="0123456789abcdefABCDEF.:% /-\x00", max_size=45))
    return str(address)


@given(text=spellings())
@settings(max_examples=400)
def test_parse_packed_is_parse_ip_then_pack_and_format(text: str) -> None:
    try:
        family, value = parse_ip(text)
    except AddressError:
        with pytest.raises(AddressError):
            parse_packed(text)
        return
    assert parse_packed(text) == (pack(family, value), format_ip(family, value))


def test_parse_packed_keeps_strictness() -> None:
    for bad in ["010.0.0.1", "192.0.2.01", " 192.0.2.1", "192.0.2.1 ", "192.0.2", "1::2::3",
                "fe80::1%eth0", "192.0.2.1/32", "", "192.0.2.1\x00"]:
        with pytest.raises(AddressError):
            parse_packed(bad)
    assert parse_packed("2001:DB8:0:0::1") == (pack("IPv6", (0x20010DB8 << 96) + 1), "2001:db8::1")


# --- containment ----------------------------------------------------------------------------


@given(
    spans=st.lists(st.tuples(st.integers(0, 600), st.integers(0, 40)), min_size=1, max_size=4),
    v6=st.booleans(),
    avoid=st.booleans(),
    excluded=st.integers(0, 700),
)
def test_contains_packed_is_a_recount(
    spans: list[tuple[int, int]], v6: bool, avoid: bool, excluded: int
) -> None:
    """Against every address enumerated: inside an entry, not excluded, not masked."""
    base = int(ipaddress.IPv4Address("192.0.2.0"))
    entries, ranges, taken = [], [], -1
    for offset, length in sorted(spans):
        first = max(base + offset, taken + 1)
        last = first + length
        entries.append(f"{ipaddress.IPv4Address(first)}-{ipaddress.IPv4Address(last)}")
        ranges.append(("IPv4", first, last))
        taken = last
    if v6:
        entries.append("2001:db8::/126")
        ranges.append(("IPv6", V6_LOW, V6_LOW + 3))
    inside = any(first <= base + excluded <= last for _, first, last in ranges)
    spec: dict[str, Any] = {"addresses": entries, "avoidBuggyIPs": avoid}
    if inside:
        spec["exclude"] = [str(ipaddress.IPv4Address(base + excluded))]
    pool = parse_pool("p", spec)
    probes = [("IPv4", value) for value in range(base - 2, taken + 3)]
    probes += [("IPv6", V6_LOW + delta) for delta in range(-1, 6)] + [("IPv6", base + 5)]
    for family, value in probes:
        expected = (
            any(fam == family and first <= value <= last for fam, first, last in ranges)
            and not (inside and family == "IPv4" and value == base + excluded)
            and not (avoid and family == "IPv4" and value % 256 in (0, 255))
        )
        assert pool.contains_packed(pack(family, value)) == expected, (family, value)
        assert pool.contains_value(family, value) == expected


# --- restore --------------------------------------------------------------------------------


def _text(family: Family, value: int, style: int) -> str:
    if family == "IPv6" and style == 1:
        return ipaddress.IPv6Address(value).exploded.upper()
    return format_ip(family, value)


@st.composite
def entries(draw: st.DrawFn) -> list[tuple[ServiceRequest, list[str], str | None]]:
    result = []
    for _ in range(draw(st.integers(0, 14))):
        index = draw(st.integers(0, 9))
        shown = draw(st.lists(st.sampled_from(ADDRESSES), min_size=0, max_size=2))
        ips = [_text(family, value, draw(st.integers(0, 1))) for family, value in shown]
        if draw(st.integers(0, 12)) == 0:
            ips = ["not-an-ip"]
        families = tuple(dict.fromkeys(family for family, _ in shown)) or ("IPv4",)
        request = ServiceRequest(
            key=f"ns/s{index}",
            uid=f"uid-{index}",
            created=float(draw(st.integers(0, 4))),
            namespace="ns",
            families=families,
            family_policy="SingleStack" if len(families) == 1 else "PreferDualStack",
            ports=frozenset(draw(st.sets(st.sampled_from([("TCP", 80), ("TCP", 443)]),
                                         min_size=1))),
            sharing_key=draw(st.sampled_from([None, None, "k"])),
            requested_pools=draw(st.sampled_from([(), (), ("a",), ("b",), ("ext",)])),
        )
        annotation = draw(st.sampled_from([None, "a", "a", "b", "ext", "gone", "a,b", "b,a", ""]))
        result.append((request, ips, annotation))
    return result


@st.composite
def live_states(draw: st.DrawFn) -> list[tuple[int, tuple[Family, int] | None]]:
    """Services allocated before the restore: (index, requested address or automatic)."""
    return draw(st.lists(
        st.tuples(st.integers(0, 12), st.one_of(st.none(), st.sampled_from(ADDRESSES))),
        max_size=6,
    ))


def _prepare(live: list[tuple[int, tuple[Family, int] | None]]) -> Allocator:
    allocator = Allocator(POOLS)
    for index, requested in live:
        request = ServiceRequest(
            key=f"ns/s{index}", uid=f"live-{index}", created=float(index % 5),
            namespace="ns", families=(requested[0],) if requested else ("IPv4",),
            requested_ips=(format_ip(*requested),) if requested else (),
        )
        allocator.allocate(request)  # a refusal is fine: it changes nothing
    return allocator


def _claimed_one_by_one(
    allocator: Allocator, items: list[tuple[ServiceRequest, list[str], str | None]]
) -> RestoreReport:
    """What restore promises: claim each key's last entry, oldest first."""
    report = RestoreReport()
    latest = {item[0].key: item for item in items}
    for req, ips, annotation in sorted(latest.values(), key=lambda item: item[0].age):
        claim = allocator.claim(req, ips, annotation)
        if claim.assignment is not None:
            report.restored.append(claim.assignment)
        if claim.conflict is not None:
            report.conflicts.append(claim.conflict)
        report.conflicts.extend(claim.evicted)
        report.outside.extend((req.key, ip) for ip in claim.outside)
    return report


def _observable(allocator: Allocator) -> dict[str, Any]:
    keys = [f"ns/s{index}" for index in range(13)]
    return {
        "assignments": {key: allocator.lookup(key) for key in keys},
        "retiring": {key: allocator.retiring(key) for key in keys},
        "holders": {
            format_ip(*address): allocator.holders(format_ip(*address)) for address in ADDRESSES
        },
        "stats": allocator.stats(),
        "snapshot": allocator.snapshot(),
    }


@given(items=entries(), live=live_states())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_bulk_restore_equals_claims_in_age_order(
    items: list[tuple[ServiceRequest, list[str], str | None]],
    live: list[tuple[int, tuple[Family, int] | None]],
) -> None:
    bulk = _prepare(live)
    with bulk_threshold(0):
        report = bulk.restore(items)
    single = _prepare(live)
    expected = _claimed_one_by_one(single, items)
    assert report == expected
    assert _observable(bulk) == _observable(single)
    # The free lists rebuilt after the bulk restore hand out what the live ones do.
    # A probe with the sharing key joins the same address in both (the sharing index agrees).
    for family, sharing_key in [("IPv4", None), ("IPv6", None), ("IPv4", "k"), ("IPv6", "k")]:
        probe = ServiceRequest(key="ns/probe", uid="probe", created=99.0, namespace="ns",
                               families=(family,), sharing_key=sharing_key,
                               ports=frozenset({("UDP", 53)}))
        got, want = bulk.allocate(probe), single.allocate(probe)
        assert got == want
        if isinstance(got, Assigned):
            bulk.release(probe.key)
            single.release(probe.key)


def test_bulk_restore_of_a_mixed_snapshot_takes_every_path() -> None:
    """Every branch of the bulk loop once, by hand: fast, outside, external, annotation
    naming the wrong pool, two addresses, duplicate key, conflict, garbage."""
    def req(index: int, created: float, **fields: Any) -> ServiceRequest:
        return ServiceRequest(key=f"ns/s{index}", uid=f"u{index}", created=created,
                              namespace="ns", **fields)

    items: list[tuple[ServiceRequest, list[str], str | None]] = [
        (req(0, 1.0), ["198.51.100.250"], "a"),
        (req(1, 2.0), ["203.0.113.9"], "a"),  # outside every pool
        (req(2, 3.0), ["203.0.113.10"], "ext"),
        (req(3, 4.0), ["198.51.101.3"], "a"),  # the annotation is wrong: it lies in b
        (req(4, 5.0, families=("IPv4", "IPv6"), family_policy="PreferDualStack"),
         ["198.51.100.251", "2001:DB8::2"], "a"),
        (req(5, 6.0), ["198.51.100.250"], "a"),  # younger: loses to s0
        (req(6, 7.0), ["bogus"], None),
        (req(7, 8.0), ["198.51.100.252"], "b"),  # first entry of s7 ...
        (req(7, 8.0), ["198.51.100.253"], "a"),  # ... its last one counts
    ]
    single = Allocator(POOLS)
    expected = _claimed_one_by_one(single, items)
    bulk = Allocator(POOLS)
    with bulk_threshold(0):
        report = bulk.restore(items)
    assert report == expected
    assert _observable(bulk) == _observable(single)
    assert [(a.key, a.ips, a.pools) for a in report.restored] == [
        ("ns/s0", ("198.51.100.250",), ("a",)),
        ("ns/s1", ("203.0.113.9",), ("",)),
        ("ns/s2", ("203.0.113.10",), ("ext",)),
        ("ns/s3", ("198.51.101.3",), ("b",)),
        ("ns/s4", ("198.51.100.251", "2001:db8::2"), ("a", "a")),
        ("ns/s7", ("198.51.100.253",), ("a",)),
    ]
    assert [(c.key, c.holder) for c in report.conflicts] == [("ns/s5", "ns/s0"), ("ns/s6", "")]
    assert report.outside == [("ns/s1", "203.0.113.9")]
