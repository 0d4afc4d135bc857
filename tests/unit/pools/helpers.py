"""Small builders shared by the allocator tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pools.allocator
from pools.allocator import (
    Allocator,
    AskExternal,
    Assigned,
    Assignment,
    Failed,
    ServiceRequest,
)
from pools.model import Pool, parse_pool

_clock = itertools.count(1)


def pool(name: str, *addresses: str, **spec: Any) -> Pool:
    """A pool from its addresses and camelCase spec fields."""
    return parse_pool(name, {"addresses": list(addresses), **spec})


def svc(name: str, namespace: str = "default", **fields: Any) -> ServiceRequest:
    """A Service request; each call is created one second after the previous one."""
    fields.setdefault("created", float(next(_clock)))
    fields.setdefault("uid", f"uid-{namespace}-{name}")
    if "ports" in fields and not isinstance(fields["ports"], frozenset):
        fields["ports"] = frozenset(fields["ports"])
    return ServiceRequest(key=f"{namespace}/{name}", namespace=namespace, **fields)


def tcp(*ports: int) -> frozenset[tuple[str, int]]:
    return frozenset(("TCP", port) for port in ports)


class Refused(Exception):
    """Test convenience only: the decision that was not an assignment."""

    def __init__(self, decision: Failed | AskExternal) -> None:
        super().__init__(repr(decision))
        self.decision = decision
        self.reason = decision.reason if isinstance(decision, Failed) else "ExternalPool"
        self.message = decision.message if isinstance(decision, Failed) else ""
        self.pool = decision.pool if isinstance(decision, AskExternal) else ""
        self.families = decision.families if isinstance(decision, AskExternal) else ()


def take(allocator: Allocator, req: ServiceRequest) -> Assignment:
    """allocate(), expecting an assignment (Refused carries any other decision)."""
    decision = allocator.allocate(req)
    if not isinstance(decision, Assigned):
        raise Refused(decision)
    return decision.assignment


def adopted(allocator: Allocator, req: ServiceRequest, ips: Any, pool: str) -> Assignment:
    """adopt(), expecting an assignment (Refused carries the failure)."""
    decision = allocator.adopt(req, ips, pool)
    if not isinstance(decision, Assigned):
        raise Refused(decision)
    return decision.assignment


@contextmanager
def bulk_threshold(value: int) -> Iterator[None]:
    """Restore in bulk (deferred free lists, the common case inline) from ``value`` entries on,
    so small test inputs take the path a restart with thousands of Services takes."""
    saved = pools.allocator.BULK_RESTORE
    pools.allocator.BULK_RESTORE = value
    try:
        yield
    finally:
        pools.allocator.BULK_RESTORE = saved
