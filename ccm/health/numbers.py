"""Numbers and times as an operator reads them, next to the exact values that stay in status.

An IPv6 /64 holds 18446744073709551616 addresses: exact, and unreadable in `kubectl get ippools`
or on the status page. The IPPool status keeps the exact decimal strings (capacity, allocated,
available) and gains two fields for people, written by the controller's pool status code and
shown as printer columns:

* ``capacityReadable``: the capacity exactly below a million; a power of two as ``2^64`` (what a
  CIDR gives); anything else with two significant digits, ``1.8e19``.
* ``allocatedPercent``: allocated / capacity, at most two decimals, never rounded to ``0%`` or
  ``100%`` when neither is true (``<0.01%``, ``>99.99%``).

Times in `/status` are RFC 3339 in UTC with milliseconds, not epoch floats.
"""

from __future__ import annotations

from datetime import UTC, datetime

EXACT_BELOW = 1_000_000


def readable_count(count: int) -> str:
    """``126``, ``2^64`` or ``1.8e19``: see the module docstring."""
    if count < 0:
        raise ValueError(f"a count of addresses cannot be negative: {count}")
    if count < EXACT_BELOW:
        return str(count)
    if count & (count - 1) == 0:
        return f"2^{count.bit_length() - 1}"
    mantissa, exponent = f"{count:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` in percent for people: ``0%``, ``<0.01%``, ``2.38%``, ``100%``."""
    if part <= 0 or whole <= 0:
        return "0%"
    if part >= whole:
        return "100%"
    value = 100 * part / whole  # int / int: exact enough even for 2^128
    if value < 0.01:
        return "<0.01%"
    if value > 99.99:
        return ">99.99%"
    return f"{value:.2f}".rstrip("0").rstrip(".") + "%"


def family_usage(capacity: int, allocated: int, available: int) -> dict[str, str]:
    """One family's IPPool status block: the exact decimal strings plus the readable pair."""
    return {
        "capacity": str(capacity),
        "allocated": str(allocated),
        "available": str(available),
        "capacityReadable": readable_count(capacity),
        "allocatedPercent": percent(allocated, capacity),
    }


def rfc3339(epoch: float) -> str:
    """A Unix time as RFC 3339 in UTC with milliseconds: ``2026-11-21T09:14:03.250Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
