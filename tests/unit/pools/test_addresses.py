"""Address parsing and interval arithmetic (pools/addresses.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pools.addresses import (
    AddressError,
    buggy_count,
    format_interval,
    format_ip,
    is_buggy,
    merge,
    pack,
    parse_ip,
    parse_token,
    subtract,
    unpack,
)

V4_BASE = int.from_bytes(bytes([192, 0, 2, 0]), "big")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.7", ("IPv4", V4_BASE + 7)),
        ("2001:DB8::1", ("IPv6", (0x20010DB8 << 96) + 1)),
        ("::ffff:192.0.2.1", ("IPv6", (0xFFFF << 32) + V4_BASE + 1)),
    ],
)
def test_parse_ip_accepts_canonical_and_uppercase(text: str, expected: tuple[str, int]) -> None:
    assert parse_ip(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "192.0.2",
        "192.0.2.256",
        "010.0.0.1",
        " 192.0.2.1",
        "192.0.2.1/32",
        "fe80::1%eth0",
        "1::2::3",
        "192.0.2.1-192.0.2.2",
        "banana",
    ],
)
def test_parse_ip_rejects_everything_else(text: str) -> None:
    with pytest.raises(AddressError, match="is not an IP address"):
        parse_ip(text)


def test_format_ip_is_canonical() -> None:
    assert format_ip(*parse_ip("2001:0DB8:0000:0000:0000:0000:0000:0001")) == "2001:db8::1"
    assert format_ip(*parse_ip("2001:db8:0:1:0:0:0:1")) == "2001:db8:0:1::1"
    assert format_ip("IPv4", V4_BASE + 255) == "192.0.2.255"


def test_pack_keeps_families_apart() -> None:
    v4 = pack("IPv4", V4_BASE)
    v6 = pack("IPv6", V4_BASE)  # ::c000:200 has the same integer value
    assert v4 != v6
    assert unpack(v4) == ("IPv4", V4_BASE)
    assert unpack(v6) == ("IPv6", V4_BASE)


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("192.0.2.0/24", "192.0.2.0", "192.0.2.255"),
        ("192.0.2.7/32", "192.0.2.7", "192.0.2.7"),
        ("192.0.2.6/31", "192.0.2.6", "192.0.2.7"),
        ("2001:db8::/127", "2001:db8::", "2001:db8::1"),
        ("2001:db8::5/128", "2001:db8::5", "2001:db8::5"),
        ("198.51.100.250-198.51.101.3", "198.51.100.250", "198.51.101.3"),
        ("2001:db8::1 - 2001:db8::9", "2001:db8::1", "2001:db8::9"),
    ],
)
def test_parse_token_cidrs_and_ranges(text: str, first: str, last: str) -> None:
    family, low, high = parse_token(text, allow_single=False)
    assert (format_ip(family, low), format_ip(family, high)) == (first, last)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.300/24", "is not a CIDR or range"),
        ("192.0.2.0/33", "is not a CIDR or range"),
        ("192.0.2.1/24", "has host bits set (did you mean '192.0.2.0/24'?)"),
        ("192.0.2.9-192.0.2.3", "first address is after its last"),
        ("192.0.2.1-2001:db8::1", "mixes IPv4 and IPv6"),
        ("192.0.2.7", "write '192.0.2.7/32' for a single address"),
        ("", "is not a CIDR or range"),
        (" 192.0.2.0/24", "is not a CIDR or range"),
        ("192.0.2.0/24-192.0.3.0/24", "is not a CIDR or range"),
        ("192.0.2.0/024", "is not a CIDR or range"),
        ("192.0.2.0/+24", "is not a CIDR or range"),
        ("2001:db8::/64/1", "is not a CIDR or range"),
        ("::ffff:192.0.2.0/120", "IPv4-mapped IPv6 addresses are not allowed"),
        ("::ffff:192.0.2.1-::ffff:192.0.2.9", "IPv4-mapped IPv6 addresses are not allowed"),
        ("2001:db8::1/64", "has host bits set (did you mean '2001:db8::/64'?)"),
    ],
)
def test_parse_token_errors_name_the_value(text: str, message: str) -> None:
    with pytest.raises(AddressError) as caught:
        parse_token(text, allow_single=False)
    assert message in str(caught.value)
    assert repr(text) in str(caught.value)


def test_single_ip_allowed_where_asked() -> None:
    assert parse_token("192.0.2.7", allow_single=True) == ("IPv4", V4_BASE + 7, V4_BASE + 7)


def test_format_interval_prefers_cidr() -> None:
    assert format_interval("IPv4", V4_BASE, V4_BASE + 15) == "192.0.2.0/28"
    assert format_interval("IPv4", V4_BASE + 1, V4_BASE + 16) == "192.0.2.1-192.0.2.16"
    assert format_interval("IPv4", V4_BASE + 8, V4_BASE + 8) == "192.0.2.8"


def test_merge_and_subtract() -> None:
    assert merge([(5, 9), (1, 3), (4, 4), (20, 30), (25, 26)]) == [(1, 9), (20, 30)]
    assert subtract([(0, 10), (20, 30)], [(0, 0), (5, 6), (10, 22), (30, 40)]) == [
        (1, 4),
        (7, 9),
        (23, 29),
    ]


@given(st.integers(0, 5000), st.integers(0, 3000))
def test_buggy_count_matches_a_recount(first: int, width: int) -> None:
    last = first + width
    assert buggy_count(first, last) == sum(1 for v in range(first, last + 1) if is_buggy(v))


interval_sets = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 20)), max_size=8).map(
    lambda items: merge((start, start + width) for start, width in items)
)


@given(interval_sets, interval_sets)
def test_subtract_matches_sets(base: list[tuple[int, int]], holes: list[tuple[int, int]]) -> None:
    def expand(intervals: list[tuple[int, int]]) -> set[int]:
        return {v for first, last in intervals for v in range(first, last + 1)}

    result = subtract(base, holes)
    assert expand(result) == expand(base) - expand(holes)
    assert result == merge(result)
