"""The IPPool spec (pydantic v2) and the parsed :class:`Pool` the allocator works with.

``IPPoolSpec`` validates each field on its own (every address entry, selectors, the external
block); :class:`Pool` then checks what needs the whole pool (entries overlapping each other,
exclusions outside the pool) and turns the entries into a few integer intervals per family.
:func:`parse_pool` is the one entry point the controller and ``vipam check`` need: it turns
every problem into a readable ``field: message`` line, never a pydantic traceback.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, Field, ValidationError, model_validator

from pools.addresses import (
    FAMILIES,
    V6_FLAG,
    AddressError,
    Family,
    Interval,
    format_interval,
    merge,
    pack,
    parse_ip,
    parse_token,
    subtract,
    trim,
    usable_count,
)
from pools.selectors import LabelSelector, LabelSelectorRequirement, _CamelModel

__all__ = [
    "ExternalSpec",
    "IPPoolSpec",
    "LabelSelector",
    "LabelSelectorRequirement",
    "Overlap",
    "Pool",
    "PoolValidationError",
    "SecretRef",
    "ServiceAllocation",
    "find_overlaps",
    "parse_pool",
    "readable_errors",
]


def _address_entry(text: str) -> str:
    parse_token(text, allow_single=False)
    return text


def _exclude_entry(text: str) -> str:
    parse_token(text, allow_single=True)
    return text


_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # a namespace name
AddressEntry = Annotated[str, AfterValidator(_address_entry)]
ExcludeEntry = Annotated[str, AfterValidator(_exclude_entry)]


class ServiceAllocation(_CamelModel):
    """Which Services may take addresses from the pool.

    ``namespaces`` and ``namespaceSelector`` both describe namespaces, so a Service's namespace
    qualifies if it is listed OR its labels match (as in MetalLB); ``serviceSelector`` must
    match as well (AND). Unset parts do not restrict.
    """

    namespaces: list[Annotated[str, Field(pattern=_DNS_LABEL, max_length=63)]] = Field(
        default_factory=list
    )
    namespace_selector: LabelSelector | None = Field(default=None, alias="namespaceSelector")
    service_selector: LabelSelector | None = Field(default=None, alias="serviceSelector")

    def selects(
        self,
        namespace: str,
        namespace_labels: Mapping[str, str],
        service_labels: Mapping[str, str],
    ) -> bool:
        if self.namespaces or self.namespace_selector is not None:
            listed = namespace in self.namespaces
            selected = self.namespace_selector is not None and self.namespace_selector.matches(
                namespace_labels
            )
            if not (listed or selected):
                return False
        return self.service_selector is None or self.service_selector.matches(service_labels)


class SecretRef(_CamelModel):
    name: str = Field(min_length=1)
    namespace: str | None = None
    key: str = Field(default="token", min_length=1)


def _http_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return url


class ExternalSpec(_CamelModel):
    """An external IPAM backend; the provider options are checked by the backend, not here."""

    provider: Literal["http", "netbox"]
    url: Annotated[str, AfterValidator(_http_url)]
    secret_ref: SecretRef | None = Field(default=None, alias="secretRef")
    ca_bundle: str | None = Field(default=None, alias="caBundle")
    timeout_seconds: float = Field(default=5.0, gt=0, le=300, alias="timeoutSeconds")
    options: dict[str, Any] = Field(default_factory=dict)


class IPPoolSpec(_CamelModel):
    addresses: list[AddressEntry] = Field(default_factory=list)
    exclude: list[ExcludeEntry] = Field(default_factory=list)
    auto_assign: bool = Field(default=True, alias="autoAssign")
    avoid_buggy_ips: bool = Field(default=False, alias="avoidBuggyIPs")
    priority: int | None = Field(default=None, ge=0, le=2**31 - 1)
    disabled: bool = False
    service_allocation: ServiceAllocation | None = Field(default=None, alias="serviceAllocation")
    external: ExternalSpec | None = None

    @model_validator(mode="after")
    def _addresses_or_external(self) -> IPPoolSpec:
        if not self.addresses and self.external is None:
            raise ValueError("addresses: a pool needs at least one address entry (or external)")
        if self.addresses and self.external is not None:
            raise ValueError(
                "addresses: an external pool takes its addresses from the IPAM; "
                "leave addresses out (or drop external)"
            )
        return self


class PoolValidationError(ValueError):
    """Everything wrong with one pool, one readable line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _readable(error: Any) -> str:
    """One pydantic error as 'field.path: message', naming the bad value."""
    path = _field_path(tuple(error["loc"]))
    kind = error["type"]
    message = str(error["msg"])
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
        # Model-level checks already name their field.
        return message if not path or message.startswith(path) else f"{path}: {message}"
    if kind == "extra_forbidden":
        message = "unknown field (check the spelling)"
    elif kind == "missing":
        message = "is required"
    else:
        value = error.get("input")
        if not isinstance(value, dict | list):
            message = f"{message} (got {value!r})"
    return f"{path}: {message}" if path else message


def readable_errors(err: ValidationError) -> list[str]:
    """Every pydantic error of err as one 'field.path: message' line (shared by every kind)."""
    return [_readable(error) for error in err.errors()]


_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Pool:
    """A validated pool: its spec plus the usable addresses as merged intervals per family.

    Construction raises :class:`PoolValidationError` for overlapping entries inside the pool
    and for exclusions that touch none of its addresses (both are almost always typos).
    """

    name: str
    spec: IPPoolSpec
    _declared: dict[Family, tuple[Interval, ...]] = field(init=False, repr=False, compare=False)
    _usable: dict[Family, tuple[Interval, ...]] = field(init=False, repr=False, compare=False)
    _packed_starts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _packed_ends: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _capacity: dict[Family, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        errors: list[str] = []
        entries: dict[Family, list[tuple[int, int, int]]] = {family: [] for family in FAMILIES}
        for index, text in enumerate(self.spec.addresses):
            family, first, last = parse_token(text, allow_single=False)
            entries[family].append((first, last, index))
        declared: dict[Family, tuple[Interval, ...]] = {}
        for family, items in entries.items():
            items.sort()
            reach: tuple[int, int] | None = None  # (highest last so far, its entry index)
            for first, last, index in items:
                if reach is not None and first <= reach[0]:
                    other = reach[1]
                    low, high = sorted((index, other))
                    errors.append(
                        f"addresses[{high}]: {self.spec.addresses[high]!r} overlaps "
                        f"addresses[{low}] {self.spec.addresses[low]!r}"
                    )
                if reach is None or last > reach[0]:
                    reach = (last, index)
            if items:
                declared[family] = tuple(merge((first, last) for first, last, _ in items))
        holes: dict[Family, list[Interval]] = {family: [] for family in FAMILIES}
        for index, text in enumerate(self.spec.exclude):
            family, first, last = parse_token(text, allow_single=True)
            inside = family in declared and subtract([(first, last)], list(declared[family])) != [
                (first, last)
            ]
            if self.spec.addresses and not inside:
                errors.append(f"exclude[{index}]: {text!r} is outside the pool's addresses")
            holes[family].append((first, last))
        if errors:
            raise PoolValidationError(errors)
        usable: dict[Family, tuple[Interval, ...]] = {}
        capacity: dict[Family, int] = {}
        for family, intervals in declared.items():
            avoid = self._avoids_buggy(family)
            kept = []
            for first, last in subtract(list(intervals), merge(holes[family])):
                trimmed = trim(first, last, avoid)
                if trimmed is not None:
                    kept.append(trimmed)
            usable[family] = tuple(kept)
            capacity[family] = sum(usable_count(first, last, avoid) for first, last in kept)
        object.__setattr__(self, "_declared", declared)
        object.__setattr__(self, "_usable", usable)
        # Both families on one axis of packed values (IPv6 above every IPv4, see pack()), so
        # a containment test is one bisect whichever the family.
        spans = [
            (pack(family, first), pack(family, last))
            for family in FAMILIES
            for first, last in usable.get(family, ())
        ]
        object.__setattr__(self, "_packed_starts", tuple(first for first, _ in spans))
        object.__setattr__(self, "_packed_ends", tuple(last for _, last in spans))
        object.__setattr__(self, "_capacity", capacity)

    def __hash__(self) -> int:
        # The spec holds lists, so hash by name: equal pools always have equal names.
        return hash(self.name)

    def _avoids_buggy(self, family: Family) -> bool:
        return self.spec.avoid_buggy_ips and family == "IPv4"

    @property
    def is_external(self) -> bool:
        return self.spec.external is not None

    def families(self) -> tuple[Family, ...]:
        """Families the pool declares addresses for, IPv4 first."""
        return tuple(family for family in FAMILIES if family in self._declared)

    def usable_intervals(self, family: Family) -> tuple[Interval, ...]:
        """Addresses left after ``exclude``; ends trimmed to usable under avoidBuggyIPs."""
        return self._usable.get(family, ())

    def avoids_buggy(self, family: Family) -> bool:
        """Whether x.x.x.0 / x.x.x.255 inside the intervals are skipped for this family."""
        return self._avoids_buggy(family)

    def capacity(self, family: Family) -> int:
        return self._capacity.get(family, 0)

    def contains_value(self, family: Family, value: int) -> bool:
        return self.contains_packed(value if family == "IPv4" else value | V6_FLAG)

    def contains_packed(self, packed: int) -> bool:
        """:meth:`contains_value` for a packed address (see :func:`pools.addresses.pack`): one
        bisect and two comparisons, since a restore checks every address it attributes."""
        index = bisect_right(self._packed_starts, packed) - 1
        if index < 0 or packed > self._packed_ends[index]:
            return False
        # avoidBuggyIPs masks IPv4 only, and packed IPv4 values are the plain values
        return not (packed & 255 in (0, 255) and packed < V6_FLAG and self.spec.avoid_buggy_ips)

    def contains(self, ip: str) -> bool:
        """Whether ip is one of the pool's usable addresses (after exclude and avoidBuggyIPs)."""
        try:
            family, value = parse_ip(ip)
        except AddressError:
            return False
        return self.contains_value(family, value)

    def selects(
        self,
        namespace: str,
        namespace_labels: Mapping[str, str],
        service_labels: Mapping[str, str],
    ) -> bool:
        allocation = self.spec.service_allocation
        return allocation is None or allocation.selects(namespace, namespace_labels, service_labels)

    @property
    def sort_key(self) -> tuple[int, int, str]:
        """Lower priority first, unset priority last, then name."""
        priority = self.spec.priority
        return (0, priority, self.name) if priority is not None else (1, 0, self.name)


def parse_pool(name: str, spec: Mapping[str, Any]) -> Pool:
    """Validate an IPPool's name and spec (the custom resource's dict) into a :class:`Pool`."""
    errors: list[str] = []
    if not isinstance(name, str) or len(name) > 253 or not _NAME.match(name):
        errors.append(f"metadata.name: {name!r} is not a valid Kubernetes object name")
    if not isinstance(spec, Mapping):
        raise PoolValidationError([*errors, f"spec: expected a mapping, got {type(spec).__name__}"])
    try:
        parsed = IPPoolSpec.model_validate(dict(spec))
    except ValidationError as err:
        raise PoolValidationError(errors + readable_errors(err)) from None
    if errors:
        raise PoolValidationError(errors)
    return Pool(name, parsed)


@dataclass(frozen=True)
class Overlap:
    """Addresses usable in two pools (reported so the controller can set ``Overlapping``)."""

    pool_a: str
    pool_b: str
    ranges: str


def find_overlaps(pools: Iterable[Pool]) -> list[Overlap]:
    """Every pair of pools sharing usable addresses, with the shared ranges.

    A sweep over interval starts with a heap of the open intervals: O((n + k) log n) for n
    intervals and k overlapping pairs of intervals, never a walk over addresses.
    """
    pool_list = sorted(pools, key=lambda pool: pool.name)
    shared: dict[tuple[str, str], list[tuple[Family, int, int]]] = {}
    for family in FAMILIES:
        starts: list[tuple[int, int, int]] = []
        for index, pool in enumerate(pool_list):
            for first, last in pool.usable_intervals(family):
                starts.append((first, last, index))
        starts.sort()
        open_intervals: list[tuple[int, int, int]] = []  # (last, first, pool index)
        for first, last, index in starts:
            while open_intervals and open_intervals[0][0] < first:
                heapq.heappop(open_intervals)
            for other_last, _other_first, other in open_intervals:
                if other == index:
                    continue
                avoid = pool_list[index].avoids_buggy(family) or pool_list[other].avoids_buggy(
                    family
                )
                common = trim(first, min(last, other_last), avoid)
                if common is None:
                    continue
                names = sorted((pool_list[index].name, pool_list[other].name))
                shared.setdefault((names[0], names[1]), []).append((family, *common))
            heapq.heappush(open_intervals, (last, first, index))
    overlaps = []
    for (pool_a, pool_b), pieces in sorted(shared.items()):
        texts: list[str] = []
        for family in FAMILIES:
            family_pieces = merge((first, last) for fam, first, last in pieces if fam == family)
            texts.extend(format_interval(family, first, last) for first, last in family_pieces)
        overlaps.append(Overlap(pool_a, pool_b, ", ".join(texts)))
    return overlaps
