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


@dataclass(frozen=True, slots=True)
class Failed:
    """No address: a stable machine ``reason`` and a sentence for users. A value, not an
    exception: the allocator answers with it, the controller reports it."""

    reason: str
    message: str

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown allocation failure reason {self.reason!r}")


@dataclass(frozen=True, slots=True)
class Assigned:
    """The Service's addresses (new, kept, or both), already recorded."""

    assignment: Assignment


@dataclass(frozen=True, slots=True)
class AskExternal:
    """The first pool with room for ``families`` is external: ask its backend for them, then
    record the answer with :meth:`pools.allocator.Allocator.adopt`. Local families are settled:
    a request that fails anyway never reaches the backend."""

    pool: str
    families: tuple[Family, ...]


Decision = Assigned | AskExternal | Failed
"""What the allocator answers a request with; the controller carries out the side effects."""


@dataclass(frozen=True)
class Conflict:
    """A Service that claims an address someone older holds (or whose claim is unusable)."""

    key: str  # the Service that lost (or was evicted)
    ip: str
    holder: str  # who keeps the address ("" if the claim itself was invalid)
    message: str


@dataclass
class Claim:
    """The answer to "this Service shows these addresses": what it holds now and who lost.

    ``assignment`` is None when an older Service holds an address and the claim lost
    (``conflict`` says why); ``evicted`` lists the younger Services that lost an address to
    this claim (each released entirely: the caller must sync them again); ``outside`` the
    addresses kept although no pool contains them.
    """

    assignment: Assignment | None = None
    conflict: Conflict | None = None
    evicted: list[Conflict] = field(default_factory=list)
    outside: tuple[str, ...] = ()


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
