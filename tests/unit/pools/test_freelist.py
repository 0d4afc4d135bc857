"""The interval free list (pools/freelist.py) against a plain set of addresses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pools import freelist
from pools.addresses import is_buggy
from pools.freelist import FreeList

BASE = int.from_bytes(bytes([192, 0, 2, 0]), "big")


def test_empty_and_lowest() -> None:
    free = FreeList([(10, 12)])
    assert (free.count, free.lowest(), len(free)) == (3, 10, 1)
    for value in (10, 11, 12):
        assert free.lowest() == value
        free.take(value)
    assert free.count == 0
    assert free.lowest() is None
    assert list(free) == []


def test_take_splits_and_put_joins() -> None:
    free = FreeList([(0, 9)])
    free.take(5)
    assert list(free) == [(0, 4), (6, 9)]
    assert not free.contains(5)
    free.put(5)
    assert list(free) == [(0, 9)]


def test_take_of_used_or_outside_address_fails() -> None:
    free = FreeList([(0, 9)])
    free.take(3)
    with pytest.raises(KeyError):
        free.take(3)
    with pytest.raises(KeyError):
        free.take(42)
    with pytest.raises(KeyError):
        free.put(4)  # still free: a double free is a bug, not a no-op


def test_huge_interval_costs_one_entry() -> None:
    free = FreeList([(1 << 64, (1 << 65) - 1)])
    assert free.count == 1 << 64
    free.take(free.lowest() or 0)
    assert free.count == (1 << 64) - 1
    assert len(free) == 1


def test_avoid_buggy_trims_ends_and_skips_inside() -> None:
    # 192.0.2.250 - 192.0.3.5 crosses a /24 boundary: .2.255 and .3.0 are never handed out.
    free = FreeList([(BASE + 250, BASE + 256 + 5)], avoid_buggy=True)
    assert free.count == 10
    given_out = []
    while free.lowest() is not None:
        value = free.lowest() or 0
        given_out.append(value)
        free.take(value)
    assert BASE + 255 not in given_out and BASE + 256 not in given_out
    assert given_out == [*range(BASE + 250, BASE + 255), *range(BASE + 257, BASE + 262)]
    for value in given_out:
        free.put(value)
    assert list(free) == [(BASE + 250, BASE + 261)]  # joined across the masked pair


def test_interval_of_only_masked_addresses_is_dropped() -> None:
    assert FreeList([(BASE + 255, BASE + 256)], avoid_buggy=True).count == 0
    assert FreeList([(BASE, BASE)], avoid_buggy=True).lowest() is None


def test_put_of_masked_address_is_refused() -> None:
    free = FreeList([(BASE + 1, BASE + 254)], avoid_buggy=True)
    with pytest.raises(ValueError, match="avoidBuggyIPs"):
        free.put(BASE + 255)


def test_unsorted_input_is_refused() -> None:
    with pytest.raises(ValueError, match="sorted and disjoint"):
        FreeList([(10, 20), (15, 30)])


operations = st.lists(st.tuples(st.booleans(), st.integers(0, 10_000)), max_size=300)


@settings(max_examples=60)
@given(
    st.integers(0, 700),
    st.integers(0, 800),
    st.booleans(),
    operations,
)
def test_matches_a_set(low: int, width: int, avoid: bool, ops: list[tuple[bool, int]]) -> None:
    """Random take/put against a set, with tiny chunks so splitting and merging chunks happen."""
    original = freelist.LOAD
    freelist.LOAD = 3
    try:
        high = low + width
        free = FreeList([(low, high)], avoid_buggy=avoid)
        model = {v for v in range(low, high + 1) if not (avoid and is_buggy(v))}
        everything = sorted(model)
        for take, pick in ops:
            if take and model:
                value = min(model) if pick % 3 == 0 else sorted(model)[pick % len(model)]
                free.take(value)
                model.discard(value)
            elif not take and len(model) < len(everything):
                used = [v for v in everything if v not in model]
                value = used[pick % len(used)]
                free.put(value)
                model.add(value)
            assert free.count == len(model)
            assert free.lowest() == (min(model) if model else None)
            probe = low - 2 + pick % (width + 5)
            assert free.contains(probe) == (probe in model)
        for value in everything:
            if value not in model:
                free.put(value)
        assert len(free) <= 1  # all free again: back to one interval
    finally:
        freelist.LOAD = original
