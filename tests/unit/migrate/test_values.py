"""The value translations: communities, durations, addresses, selectors, names."""

from __future__ import annotations

import pytest

from ccm.migrate.values import (
    address_entry,
    any_of,
    community,
    go_duration_seconds,
    hold_time,
    ip_text,
    object_name,
)


@pytest.mark.parametrize(("given", "written"), [
    ("64512:100", "64512:100"), ("large:64512:1:2", "64512:1:2"), ("4294967295:1:2",
                                                                   "4294967295:1:2"),
    ("4259840101", "65000:101"), ("no-export", "65535:65281"), ("blackhole", "65535:666"),
    (" 0:0 ", "0:0"),
])
def test_communities(given: str, written: str) -> None:
    assert community(given) == written


@pytest.mark.parametrize("bad", ["65536:1", "1:2:3:4", "large:1:2", "large:4294967296:1:1",
                                 "x:y", "", "4294967296"])
def test_bad_communities(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a BGP community"):
        community(bad)


@pytest.mark.parametrize(("given", "seconds"), [
    ("90s", 90), ("1m30s", 90), ("3m", 180), ("1h", 3600), ("1500ms", 1.5), ("0", 0),
    ("2m0.5s", 120.5),
])
def test_go_durations(given: str, seconds: float) -> None:
    assert go_duration_seconds(given) == seconds


@pytest.mark.parametrize("bad", ["90", "s", "1x", "1m 30s", ""])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        go_duration_seconds(bad)


def test_hold_times_follow_rfc_4271() -> None:
    assert hold_time(0) == "0s" and hold_time(3) == "3s" and hold_time(65535) == "65535s"
    for bad in (1, 2, 65536, 4.5):
        with pytest.raises(ValueError):
            hold_time(bad)


def test_addresses() -> None:
    assert address_entry("192.0.2.0/24") == ("192.0.2.0/24", None)
    assert address_entry(" 192.0.2.1 -192.0.2.9 ") == ("192.0.2.1-192.0.2.9", None)
    assert address_entry("192.0.2.9-192.0.2.9") == ("192.0.2.9/32", None)
    assert address_entry("2001:0db8::1") == ("2001:db8::1/128", None)
    assert address_entry("2001:db8::1/64")[0] == "2001:db8::/64"


def test_ip_text_refuses_zones_and_prefixes() -> None:
    assert ip_text("2001:DB8::1") == "2001:db8::1"
    for bad in ("fe80::1%eth0", "192.0.2.1/32", "router", 7):
        with pytest.raises(ValueError):
            ip_text(bad)


def test_any_of() -> None:
    assert any_of([]) is None
    assert any_of([{"matchLabels": {"a": "1"}}, {}]) == {}
    one = {"matchLabels": {"a": "1", "b": "2"}}
    assert any_of([one]) == one
    assert any_of([{"matchLabels": {"a": "1"}}, {"matchLabels": {"b": "2"}}]) is None
    assert any_of([one, {"matchLabels": {"a": "3"}}]) is None
    assert any_of([{"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
                   {"matchLabels": {"a": "2"}}]) is None


def test_object_names_are_dns_subdomains_and_keep_addresses_apart() -> None:
    assert object_name("Rack_1", "192.0.2.1") == "rack-1-192.0.2.1"
    assert object_name("p", "2001:db8::1:2") != object_name("p", "2001:db8:1::2")
    assert object_name("--", "") == "migrated"
