"""The `pattern`s on address, IP and community fields.

The API server runs patterns with Go's regexp (RE2 syntax), this suite with Python's `re`; the
patterns stay in the subset both read the same way, which RE2 itself checks here. Generated
addresses show the address pattern admits every IPv4/IPv6 form netaddr will parse later (the
controller rejects the rest with a condition); fixed junk shows it is not a free-for-all.
"""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.prereq import require
from tests.unit.manifests import schema as crdschema
from tests.unit.manifests.render import CONFIG, render
from tests.unit.manifests.walk import at, nodes


def _crd_schemas() -> dict[str, crdschema.Schema]:
    return crdschema.schemas_by_kind(
        [obj for obj in render(CONFIG / "crd") if obj["kind"] == "CustomResourceDefinition"]
    )


@pytest.fixture(scope="module")
def patterns(install: object) -> dict[str, re.Pattern[str]]:
    ippool = _crd_schemas()["IPPool"]
    peer = _crd_schemas()["BGPPeer"]
    return {
        "entry": re.compile(at(ippool, "spec.addresses.[]")["pattern"]),
        "exclude": re.compile(at(ippool, "spec.exclude.[]")["pattern"]),
        "ip": re.compile(at(peer, "spec.address")["pattern"]),
        "source": re.compile(at(peer, "spec.sourceAddress")["pattern"]),
    }


def test_every_pattern_is_valid_re2(install: object) -> None:
    try:
        import re2
    except ImportError:
        re2 = None
    require(re2 is not None, "google-re2 is not installed (it comes with cel-python)")
    assert re2 is not None
    found = 0
    for kind, root in _crd_schemas().items():
        for path, node in nodes(root):
            if "pattern" in node:
                found += 1
                try:
                    re2.compile(node["pattern"])
                except Exception as error:  # re2 raises its own error type
                    pytest.fail(f"{kind} {path}: not RE2: {error}")
    assert found >= 8


def test_exclude_is_addresses_plus_single_addresses(patterns: dict[str, re.Pattern[str]]) -> None:
    """pools.model: an address entry is a CIDR or a range; exclude also takes one address."""
    entry, exclude = patterns["entry"].pattern, patterns["exclude"].pattern
    assert entry.endswith(")$") and exclude == entry[:-2] + ")?$"
    assert patterns["ip"].pattern == patterns["source"].pattern


ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
ipv6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
address = st.one_of(ipv4, ipv6)


def forms(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    """How people write one address: compressed, exploded, and IPv4-mapped for IPv6."""
    if isinstance(ip, ipaddress.IPv4Address):
        return [str(ip)]
    return [ip.compressed, ip.exploded, ip.compressed.upper()]


@given(address, st.integers(0, 128))
def test_every_address_cidr_and_range_is_admitted(
    patterns: dict[str, re.Pattern[str]],
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
    bits: int,
) -> None:
    prefix = min(bits, ip.max_prefixlen)
    network = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
    for text in forms(ip):
        assert patterns["ip"].fullmatch(text), text
        assert patterns["exclude"].fullmatch(text), text
        assert not patterns["entry"].fullmatch(text), f"{text}: a lone address is not a pool entry"
    for entry in (str(network), f"{network[0]}-{network[-1]}"):
        assert patterns["entry"].fullmatch(entry), entry
        assert patterns["exclude"].fullmatch(entry), entry


@pytest.mark.parametrize(
    "text",
    [
        "::/128",
        "::1/128",
        "::ffff:192.0.2.1/128",
        "64:ff9b::192.0.2.1/128",
        "2001:db8::/32",
        "2001:db8:0:2::100-2001:db8:0:2::1ff",
        "192.0.2.0/24",
        "198.51.100.10-198.51.100.20",
        "0.0.0.0/0",
    ],
)
def test_written_forms_are_admitted(patterns: dict[str, re.Pattern[str]], text: str) -> None:
    assert patterns["entry"].fullmatch(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "pool-a",
        "abc",
        "192.0.2",
        "192.0.2.256",
        "300.1.1.1",
        "192.0.2.0/33x",
        "192.0.2.0/129",
        "2001:db8::/129",
        "192.0.2.0 /24",
        " 192.0.2.1",
        "192.0.2.0/24,198.51.100.0/24",
        "192.0.2.1-",
        "-192.0.2.1",
        "2001:db8::/64/1",
        "2001:db8:::g",
    ],
)
def test_junk_is_refused(patterns: dict[str, re.Pattern[str]], text: str) -> None:
    for kind in ("entry", "exclude", "ip"):
        assert not patterns[kind].fullmatch(text), kind


def test_a_single_address_field_refuses_networks(patterns: dict[str, re.Pattern[str]]) -> None:
    assert not patterns["ip"].fullmatch("192.0.2.0/24")
    assert not patterns["ip"].fullmatch("192.0.2.1-192.0.2.2")
