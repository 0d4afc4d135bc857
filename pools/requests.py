"""What the controller hands the allocator and what it gets back.

Plain frozen dataclasses with slots: the allocator keeps one request and one assignment per
Service, so their size is most of its memory per allocation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pools.addresses import Family

FamilyPolicy = Literal["SingleStack", "PreferDualStack", "RequireDualStack"]
Port = tuple[str, int]

REASONS = frozenset(
    {
        "NoMatchingPool",
        "PoolExhausted",
        "UnknownPool",
        "PoolDisabled",
        "RequestedIPOutsidePools",
        "RequestedIPInUse",
        "SharingConflict",
        "FamilyMismatch",
        "InvalidRequest",
        "DualStackUnavailable",
        "ExternalPool",
    }
)


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """One LoadBalancer Service as the allocator needs to see it."""

    key: str  # "namespace/name"
    uid: str
    created: float  # creationTimestamp as epoch seconds: older wins conflicts, then uid
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    families: tuple[Family, ...] = ("IPv4",)  # spec.ipFamilies, in order
    family_policy: FamilyPolicy = "SingleStack"
    ports: frozenset[Port] = frozenset()  # (protocol, port)
    sharing_key: str | None = None
    requested_ips: tuple[str, ...] = ()  # at most one per family
    requested_pools: tuple[str, ...] = ()

    @property
    def age(self) -> tuple[float, str]:
        """Sort key for conflicts: the smaller one is older and wins."""
        return (self.created, self.uid)


@dataclass(frozen=True, slots=True)
class Assignment:
    """The addresses one Service holds: one per family, in the Service's family order."""

    key: str
    ips: tuple[str, ...]
    pools: tuple[str, ...]  # pool of each ip; "" when the ip is outside every pool
    sharing_key: str | None
    ports: frozenset[Port]


class AllocationError(Exception):
    """Why a Service got no address: a stable machine ``reason`` and a sentence for users."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown allocation error reason {reason!r}")
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")


class ExternalPoolRequired(AllocationError):
    """The chosen pool is external: ask its backend, then record the answer with adopt()."""

    def __init__(self, pool: str, families: tuple[Family, ...], key: str) -> None:
        self.pool = pool
        self.families = families
        super().__init__(
            "ExternalPool",
            f"pool {pool} is managed by an external IPAM: ask it for "
            f"{'/'.join(families)} addresses for Service {key}",
        )


@dataclass(frozen=True)
class Conflict:
    """A Service that claims an address someone older holds (or whose claim is unusable)."""

    key: str  # the Service that lost (or was evicted)
    ip: str
    holder: str  # who keeps the address ("" if the claim itself was invalid)
    message: str


@dataclass
class RestoreReport:
    restored: list[Assignment] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    outside: list[tuple[str, str]] = field(default_factory=list)  # (key, ip), kept as is


@dataclass(frozen=True)
class PoolStats:
    """Exact counts (an IPv6 /64 has 2**64 addresses); the CRD status writes them as strings."""

    capacity: int
    allocated: int
    available: int
