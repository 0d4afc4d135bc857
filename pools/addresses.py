"""Address arithmetic shared by the pool model and the allocator.

Addresses are handled as plain integers per family: a pool is a handful of closed intervals
``(first, last)``, never a set of addresses, so an IPv6 /48 costs what an IPv4 /30 costs.
Addresses are parsed with inet_pton, strict as the API server's IP library is: no leading
zeros, no zone ids, no short forms, no IPv4-mapped IPv6 in pools, prefix lengths in plain
decimal; :func:`format_ip` gives every string vipam writes one canonical spelling.

``avoidBuggyIPs`` (skip IPv4 x.x.x.0 and x.x.x.255) is a periodic mask, not a list of holes:
the helpers below count and skip those addresses arithmetically.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from typing import Literal

Family = Literal["IPv4", "IPv6"]
FAMILIES: tuple[Family, ...] = ("IPv4", "IPv6")
Interval = tuple[int, int]

V6_FLAG = 1 << 128  # set in every packed IPv6 address (see pack)


class AddressError(ValueError):
    """Text that is not the expected kind of address."""


def family_of_version(version: int) -> Family:
    return "IPv4" if version == 4 else "IPv6"


def parse_ip(text: str) -> tuple[Family, int]:
    """Parse one address ('192.0.2.1', '2001:db8::1') into (family, integer value).

    inet_pton is what netaddr's strict mode uses too (no leading zeros, no zone ids, no
    short forms), called directly because restore parses one address per Service.
    """
    if not isinstance(text, str):
        raise AddressError(f"{text!r} is not an IP address")
    try:
        if ":" in text:
            return "IPv6", int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
        return "IPv4", int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):
        raise AddressError(f"{text!r} is not an IP address") from None


def parse_packed(text: str) -> tuple[int, str]:
    """Parse one address into its packed value (see :func:`pack`) and canonical text, at once.

    The claim path needs both for every address a Service shows (100,000 of them on a
    restore), so the text is not formatted back from the integer: an IPv4 address inet_pton
    accepts is already canonical (four decimal octets, no leading zeros, nothing else), and an
    IPv6 one is formatted from the bytes inet_pton returned. Accepts exactly what
    :func:`parse_ip` accepts.
    """
    if type(text) is not str:  # a str subclass might not compare or print as its text
        family, value = parse_ip(text)
        return pack(family, value), format_ip(family, value)
    try:
        if ":" in text:
            raw = socket.inet_pton(socket.AF_INET6, text)
            return int.from_bytes(raw, "big") | V6_FLAG, socket.inet_ntop(socket.AF_INET6, raw)
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big"), text
    except (OSError, ValueError):
        raise AddressError(f"{text!r} is not an IP address") from None


def format_ip(family: Family, value: int) -> str:
    """Canonical text for an address: dotted quad, or RFC 5952 IPv6 (as netaddr prints it)."""
    if family == "IPv4":
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def pack(family: Family, value: int) -> int:
    """One integer for an address of either family, used as a dictionary key.

    IPv4 values stay as they are; IPv6 values get bit 128 set, so '::c000:201' and
    '192.0.2.1' never collide while the key stays a single small object.
    """
    return value if family == "IPv4" else value | V6_FLAG


def unpack(packed: int) -> tuple[Family, int]:
    if packed & V6_FLAG:
        return "IPv6", packed ^ V6_FLAG
    return "IPv4", packed


_PREFIX = re.compile(r"0|[1-9][0-9]{0,2}")
_V4_MAPPED = (0xFFFF << 32, (0xFFFF << 32) | 0xFFFFFFFF)


def _parse_pool_ip(address: str, entry: str, kind: str) -> tuple[Family, int]:
    """One address of a pool entry; IPv4-mapped IPv6 addresses ('::ffff:192.0.2.1') are refused,
    as the API server's IP library refuses them: the same address would have two spellings."""
    family, value = parse_ip(address)
    if family == "IPv6" and _V4_MAPPED[0] <= value <= _V4_MAPPED[1]:
        raise AddressError(
            f"{entry!r} is not {kind} (IPv4-mapped IPv6 addresses are not allowed)")
    return family, value


def parse_token(text: str, *, allow_single: bool) -> tuple[Family, int, int]:
    """Parse a pool entry: a CIDR, a 'first-last' range, or (if allowed) a single address.

    A CIDR with host bits set ('192.0.2.1/24') is refused rather than silently widened.
    """
    kind = "a CIDR, range or IP" if allow_single else "a CIDR or range"
    bad = AddressError(f"{text!r} is not {kind}")
    if not isinstance(text, str) or text != text.strip() or not text:
        raise bad
    try:
        if "/" in text:
            address_text, prefix_text = text.split("/", 1)
            family, value = _parse_pool_ip(address_text, text, kind)
            width = 32 if family == "IPv4" else 128
            # decimal without leading zeros, as the API server's CIDR library reads it
            if not _PREFIX.fullmatch(prefix_text) or int(prefix_text) > width:
                raise bad
            size = 1 << (width - int(prefix_text))
            first = value & ~(size - 1)
            if value != first:
                cidr = f"{format_ip(family, first)}/{prefix_text}"
                raise AddressError(f"{text!r} has host bits set (did you mean '{cidr}'?)")
            return family, first, first + size - 1
        if "-" in text:
            first_text, last_text = (part.strip() for part in text.split("-", 1))
            first_family, first = _parse_pool_ip(first_text, text, kind)
            last_family, last = _parse_pool_ip(last_text, text, kind)
            if first_family != last_family:
                raise AddressError(f"{text!r} mixes IPv4 and IPv6")
            if first > last:
                raise AddressError(f"{text!r} is a range whose first address is after its last")
            return first_family, first, last
        family, value = _parse_pool_ip(text, text, kind)
    except AddressError as err:
        if any(words in str(err) for words in ("host bits", "mixes", "range whose", "mapped")):
            raise
        raise bad from None
    except (ValueError, TypeError):
        raise bad from None
    if not allow_single:
        width = 32 if family == "IPv4" else 128
        raise AddressError(
            f"{text!r} is not a CIDR or range (write '{text}/{width}' for a single address)"
        )
    return family, value, value


def format_interval(family: Family, first: int, last: int) -> str:
    """'192.0.2.0/28' when the interval is exactly one CIDR block, else 'first-last'."""
    if first == last:
        return format_ip(family, first)
    size = last - first + 1
    if size & (size - 1) == 0 and first % size == 0:
        width = 32 if family == "IPv4" else 128
        return f"{format_ip(family, first)}/{width - size.bit_length() + 1}"
    return f"{format_ip(family, first)}-{format_ip(family, last)}"


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted union of closed intervals; touching intervals are joined."""
    merged: list[Interval] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def subtract(base: list[Interval], holes: list[Interval]) -> list[Interval]:
    """``base`` minus ``holes``; both sorted and merged. Linear in their lengths."""
    result: list[Interval] = []
    index = 0
    for first, last in base:
        start = first
        while index < len(holes) and holes[index][1] < start:
            index += 1
        probe = index
        while probe < len(holes) and holes[probe][0] <= last:
            hole_first, hole_last = holes[probe]
            if hole_first > start:
                result.append((start, hole_first - 1))
            start = max(start, hole_last + 1)
            probe += 1
        if start <= last:
            result.append((start, last))
    return result


# --- avoidBuggyIPs: the x.x.x.0 / x.x.x.255 mask ------------------------------------------


def is_buggy(value: int) -> bool:
    """True for IPv4 x.x.x.0 and x.x.x.255 (some old clients mishandle them)."""
    return value & 255 in (0, 255)


def buggy_count(first: int, last: int) -> int:
    """How many x.x.x.0 / x.x.x.255 addresses lie in [first, last], in O(1)."""
    if first > last:
        return 0
    # Floor division by 256 (>> 8) counts multiples; x.x.x.255 are the x.x.x.0 of value + 1.
    zeros = (last >> 8) - ((first - 1) >> 8)
    nines = ((last + 1) >> 8) - (first >> 8)
    return zeros + nines


def trim(first: int, last: int, avoid_buggy: bool) -> Interval | None:
    """Shrink an interval so both ends are usable addresses; None if nothing is left."""
    if avoid_buggy:
        low = first & 255
        if low == 0:
            first += 1
        elif low == 255:
            first += 2
        high = last & 255
        if high == 255:
            last -= 1
        elif high == 0:
            last -= 2
    if first > last:
        return None
    return first, last


def next_usable(value: int, avoid_buggy: bool) -> int:
    """The lowest address >= value that the mask allows."""
    if avoid_buggy:
        low = value & 255
        if low == 0:
            return value + 1
        if low == 255:
            return value + 2
    return value


def usable_count(first: int, last: int, avoid_buggy: bool) -> int:
    if first > last:
        return 0
    size = last - first + 1
    return size - buggy_count(first, last) if avoid_buggy else size
