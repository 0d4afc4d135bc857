"""Readable pool sizes, percentages and times (ccm/health/numbers.py)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccm.health.numbers import family_usage, percent, readable_count, rfc3339


@pytest.mark.parametrize(("count", "shown"), [
    (0, "0"), (1, "1"), (126, "126"), (65536, "65536"), (999_999, "999999"),
    (2**20, "2^20"), (2**24, "2^24"), (2**64, "2^64"), (2**128, "2^128"),
    (2**64 - 2, "1.8e19"), (4_194_302, "4.2e6"), (1_000_000, "1.0e6"), (2**128 - 1, "3.4e38"),
])
def test_readable_count(count: int, shown: str) -> None:
    assert readable_count(count) == shown


@given(st.integers(0, 2**128))
def test_readable_count_is_exact_or_close(count: int) -> None:
    shown = readable_count(count)
    if shown.startswith("2^"):
        assert 2 ** int(shown[2:]) == count
    elif "e" in shown:
        assert count >= 1_000_000
        assert abs(float(shown) - count) <= 0.05 * count
    else:
        assert int(shown) == count < 1_000_000
    assert len(shown) <= 8


@pytest.mark.parametrize(("part", "whole", "shown"), [
    (0, 254, "0%"), (0, 0, "0%"), (3, 254, "1.18%"), (1, 256, "0.39%"), (128, 256, "50%"),
    (1, 3, "33.33%"), (254, 254, "100%"), (1, 2**64, "<0.01%"), (2**64 - 1, 2**64, ">99.99%"),
    (1, 10_000, "0.01%"), (9_999, 10_000, "99.99%"), (1, 8, "12.5%"),
])
def test_percent(part: int, whole: int, shown: str) -> None:
    assert percent(part, whole) == shown


@given(st.integers(1, 2**128).flatmap(lambda whole: st.tuples(st.integers(0, whole),
                                                              st.just(whole))))
def test_percent_is_never_falsely_empty_or_full(pair: tuple[int, int]) -> None:
    part, whole = pair
    shown = percent(part, whole)
    assert re.fullmatch(r"(<0\.01|>99\.99|[0-9]{1,3}(\.[0-9]{1,2})?)%", shown), shown
    assert (shown == "0%") == (part == 0)
    assert (shown == "100%") == (part == whole)


def test_family_usage_keeps_the_exact_strings() -> None:
    usage = family_usage(2**64, 1, 2**64 - 1)
    assert usage == {
        "capacity": "18446744073709551616", "allocated": "1",
        "available": "18446744073709551615", "capacityReadable": "2^64",
        "allocatedPercent": "<0.01%",
    }


def test_rfc3339_is_utc_with_milliseconds() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1795770843.25) == "2026-11-27T09:14:03.250Z"
    parsed = datetime.fromisoformat(rfc3339(1795770843.25).replace("Z", "+00:00"))
    assert parsed.timestamp() == 1795770843.25
