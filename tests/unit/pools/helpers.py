"""Small builders shared by the allocator tests."""

from __future__ import annotations

import itertools
from typing import Any

from pools.allocator import ServiceRequest
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
