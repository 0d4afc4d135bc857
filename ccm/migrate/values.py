"""Value translations shared by the MetalLB and Cilium converters.

Each function turns one peer spelling into the one vipam's CRDs accept (config/crd), or raises
``ValueError`` with a message fit for the report. None of them guesses: a value that cannot be
written exactly is refused here and reported by the caller.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from pools.addresses import parse_token
from pools.selectors import LabelSelector

JSON = dict[str, Any]

# --- addresses --------------------------------------------------------------------------


def address_entry(text: Any) -> tuple[str, str | None]:
    """A MetalLB ``addresses`` entry (CIDR or ``first-last``) as a vipam ``addresses`` entry.

    Returns the entry and, when it had to be rewritten, why (host bits masked, as the peer did
    itself). A bare address, which MetalLB refuses, becomes a /32 or /128.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{text!r} is not a CIDR or range")
    raw = text.strip()
    note = None
    try:
        if "/" in raw:
            network = ipaddress.ip_network(raw, strict=False)
            entry = str(network)
            if entry != raw and ipaddress.ip_interface(raw).ip != network.network_address:
                note = f"{raw!r} has host bits set; written as {entry!r} (the network it covers)"
        elif "-" in raw:
            first_text, last_text = (part.strip() for part in raw.split("-", 1))
            entry = range_entry(first_text, last_text)
        else:
            address = ipaddress.ip_address(raw)
            entry = f"{address}/{address.max_prefixlen}"
    except ValueError:
        raise ValueError(f"{text!r} is not a CIDR or range") from None
    parse_token(entry, allow_single=False)  # what the controller will accept
    return entry, note


def range_entry(first_text: str, last_text: str) -> str:
    """``first-last`` in canonical spelling; one address becomes a /32 or /128."""
    first = ipaddress.ip_address(first_text.strip())
    last = ipaddress.ip_address(last_text.strip())
    if first.version != last.version:
        raise ValueError(f"{first_text}-{last_text} mixes IPv4 and IPv6")
    if int(first) > int(last):
        raise ValueError(f"{first_text}-{last_text}: the first address is after the last")
    if first == last:
        return f"{first}/{first.max_prefixlen}"
    return f"{first}-{last}"


def families_of(entries: Iterable[str]) -> set[int]:
    """IP versions (4, 6) that vipam ``addresses`` entries cover."""
    versions: set[int] = set()
    for entry in entries:
        versions.add(ipaddress.ip_address(entry.split("/")[0].split("-")[0]).version)
    return versions


# --- selectors --------------------------------------------------------------------------


def selector(raw: Any) -> JSON:
    """A label selector as vipam writes it: only non-empty parts; refused if invalid."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected a label selector, got {type(raw).__name__}")
    unknown = set(raw) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise ValueError(f"unknown selector field(s) {sorted(unknown)}")
    try:
        LabelSelector.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"invalid label selector: {where}: {first['msg']}") from None
    out: JSON = {}
    if raw.get("matchLabels"):
        out["matchLabels"] = dict(raw["matchLabels"])
    expressions = []
    for requirement in raw.get("matchExpressions") or []:
        entry: JSON = {"key": requirement["key"], "operator": requirement["operator"]}
        if requirement.get("values"):
            entry["values"] = list(requirement["values"])
        expressions.append(entry)
    if expressions:
        out["matchExpressions"] = expressions
    return out


def _single_in(sel: JSON) -> tuple[str, list[str]] | None:
    """(key, values) when the selector is exactly one 'key in values' requirement."""
    labels = sel.get("matchLabels") or {}
    expressions = sel.get("matchExpressions") or []
    if len(labels) == 1 and not expressions:
        ((key, value),) = labels.items()
        return key, [value]
    if not labels and len(expressions) == 1 and expressions[0]["operator"] == "In":
        return expressions[0]["key"], list(expressions[0]["values"])
    return None


def any_of(selectors: list[JSON]) -> JSON | None:
    """One selector matching what any of ``selectors`` matches, if one exists.

    MetalLB ORs a list of selectors; vipam's pool takes one. An empty selector matches
    everything (so the union is "no restriction", returned as ``{}``); selectors that each
    require one key to take one of some values, all the same key, union into one ``In``.
    Anything else has no single-selector equivalent: None.
    """
    if not selectors:
        return None
    if any(not sel for sel in selectors):
        return {}
    if len(selectors) == 1:
        return selectors[0]
    singles = [_single_in(sel) for sel in selectors]
    if any(s is None for s in singles):
        return None
    keys = {s[0] for s in singles if s is not None}
    if len(keys) != 1:
        return None
    values: list[str] = []
    for single in singles:
        assert single is not None
        values.extend(v for v in single[1] if v not in values)
    return {"matchExpressions": [{"key": keys.pop(), "operator": "In", "values": values}]}


# --- BGP values -------------------------------------------------------------------------

_U16 = 65535
_U32 = 4294967295
# RFC 1997, RFC 3765, RFC 7999, RFC 8326, RFC 9494 well-known communities, as Cilium names them
WELL_KNOWN_COMMUNITIES = {
    "internet": "0:0",
    "planned-shut": "65535:0",
    "accept-own": "65535:1",
    "route-filter-translated-v4": "65535:2",
    "route-filter-v4": "65535:3",
    "route-filter-translated-v6": "65535:4",
    "route-filter-v6": "65535:5",
    "llgr-stale": "65535:6",
    "no-llgr": "65535:7",
    "blackhole": "65535:666",
    "no-export": "65535:65281",
    "no-advertise": "65535:65282",
    "no-export-subconfed": "65535:65283",
    "no-peer": "65535:65284",
}


def community(text: Any) -> str:
    """A standard (``65000:100``, or one 32-bit number) or large (``large:1:2:3`` or
    ``1:2:3``) community, or a well-known name, as vipam's ``communities`` entry."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a BGP community")
    raw = text.strip()
    if raw in WELL_KNOWN_COMMUNITIES:
        return WELL_KNOWN_COMMUNITIES[raw]
    large = raw.startswith("large:")
    parts = raw.removeprefix("large:").split(":")
    if not all(re.fullmatch(r"[0-9]{1,10}", part) for part in parts):
        raise ValueError(f"{text!r} is not a BGP community")
    numbers = [int(part) for part in parts]
    if len(numbers) == 1 and not large and numbers[0] <= _U32:
        return f"{numbers[0] >> 16}:{numbers[0] & _U16}"
    if len(numbers) == 2 and not large and all(n <= _U16 for n in numbers):
        return f"{numbers[0]}:{numbers[1]}"
    if len(numbers) == 3 and all(n <= _U32 for n in numbers):
        return ":".join(str(n) for n in numbers)
    raise ValueError(f"{text!r} is not a BGP community (out of range, or the wrong shape)")


_GO_DURATION = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0
}


def go_duration_seconds(text: Any) -> float:
    """Seconds in a Go duration string ("90s", "1m30s"), as metav1.Duration serialises."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"{text!r} is not a duration")
    if text == "0":
        return 0.0
    position = 0
    total = 0.0
    for match in _GO_DURATION.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text):
        raise ValueError(f"{text!r} is not a duration")
    return total


def hold_time(seconds: float) -> str:
    """vipam's ``holdTime``: whole seconds, 0 or 3..65535 (RFC 4271)."""
    if seconds != int(seconds):
        raise ValueError(f"{seconds}s is not a whole number of seconds")
    whole = int(seconds)
    if whole != 0 and not 3 <= whole <= _U16:
        raise ValueError(f"{whole}s is not 0 or 3..65535 seconds (RFC 4271)")
    return f"{whole}s"


def asn(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _U32:
        raise ValueError(f"{value!r} is not an AS number (1..4294967295)")
    return value


def ip_text(value: Any) -> str:
    """An address in canonical spelling (vipam's BGPPeer ``address`` takes no zone, no CIDR)."""
    if not isinstance(value, str) or "%" in value:
        raise ValueError(f"{value!r} is not an IP address (vipam takes no zone or prefix)")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


# --- names ------------------------------------------------------------------------------

_NOT_NAME = re.compile(r"[^a-z0-9.-]")  # one dash each: 2001:db8::1:2 and 2001:db8:1::2 differ


def object_name(*parts: str) -> str:
    """A DNS-1123 subdomain built from parts: lower case, other characters become '-'."""
    name = "-".join(_NOT_NAME.sub("-", part.lower()) for part in parts if part)
    name = re.sub(r"\.{2,}", ".", name).strip("-.")
    return name[:253].rstrip("-.") or "migrated"


INTERFACE = re.compile(r"^[^/\s:]{1,15}$")
