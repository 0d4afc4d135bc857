"""Checks on a Service request before any address is chosen, and the failures they answer.

Kept apart from the allocator so the rules a user can trip over (family policy, requested
addresses) read in one place, each with the sentence the user will see. Every check returns
its result or a :class:`Failed`; nothing raises.
"""

from __future__ import annotations

from collections.abc import Sequence

from pools.addresses import (
    FAMILIES,
    AddressError,
    Family,
    format_ip,
    parse_ip,
    parse_packed,
    unpack,
)
from pools.ledger import PoolState
from pools.requests import Failed, ServiceRequest


def family_plan(req: ServiceRequest) -> tuple[tuple[Family, ...], bool] | Failed:
    """The families to serve, in the Service's order, and whether all of them are required."""
    families = tuple(req.families)
    if (
        not families
        or any(f not in FAMILIES for f in families)
        or len(set(families)) != len(families)
    ):
        return Failed(
            "InvalidRequest",
            f"Service {req.key} has ipFamilies {list(families)}; expected one or two distinct "
            f"of IPv4, IPv6",
        )
    policy = req.family_policy
    if policy == "SingleStack":
        if len(families) != 1:
            return Failed(
                "InvalidRequest",
                f"Service {req.key} is SingleStack but lists ipFamilies {list(families)}",
            )
        return families, True
    if policy == "RequireDualStack":
        if len(families) != 2:
            return Failed(
                "InvalidRequest",
                f"Service {req.key} is RequireDualStack but lists ipFamilies {list(families)}",
            )
        return families, True
    if policy == "PreferDualStack":
        return families, False
    return Failed("InvalidRequest", f"Service {req.key} has unknown ipFamilyPolicy {policy!r}")


def parse_ips(req: ServiceRequest, ips: Sequence[str]) -> list[tuple[Family, int]] | Failed:
    parsed: list[tuple[Family, int]] = []
    for ip in ips:
        try:
            family, value = parse_ip(ip)
        except AddressError:
            return Failed("InvalidRequest", f"Service {req.key}: {ip!r} is not an IP address")
        if parsed and any(family == seen for seen, _ in parsed):
            return Failed(
                "InvalidRequest",
                f"Service {req.key} lists two {family} addresses ({', '.join(ips)}); "
                f"give at most one per family",
            )
        parsed.append((family, value))
    return parsed


def parse_shown(req: ServiceRequest, ips: Sequence[str]) -> list[tuple[int, str]] | Failed:
    """What a Service shows, as (packed address, canonical text) pairs: the claim path keeps
    both, so each address is parsed once and never formatted back. Same rules and messages
    as :func:`parse_ips`."""
    parsed: list[tuple[int, str]] = []
    for ip in ips:
        try:
            packed, text = parse_packed(ip)
        except AddressError:
            return Failed("InvalidRequest", f"Service {req.key}: {ip!r} is not an IP address")
        if parsed:
            family = unpack(packed)[0]
            if any(unpack(seen)[0] == family for seen, _ in parsed):
                return Failed(
                    "InvalidRequest",
                    f"Service {req.key} lists two {family} addresses ({', '.join(ips)}); "
                    f"give at most one per family",
                )
        parsed.append((packed, text))
    return parsed


def requested_addresses(
    req: ServiceRequest, families: tuple[Family, ...]
) -> dict[Family, int] | Failed:
    parsed = parse_ips(req, req.requested_ips)
    if isinstance(parsed, Failed):
        return parsed
    requested: dict[Family, int] = {}
    for family, value in parsed:
        if family not in families:
            return Failed(
                "FamilyMismatch",
                f"Service {req.key} requests {format_ip(family, value)} ({family}) but its "
                f"ipFamilies are {list(families)}",
            )
        requested[family] = value
    return requested


def unavailable(req: ServiceRequest, family: Family, candidates: list[PoolState]) -> Failed:
    with_family = [state.pool.name for state in candidates if family in state.free]
    if not with_family:
        names = ", ".join(state.pool.name for state in candidates)
        return Failed(
            "NoMatchingPool",
            f"no pool with {family} addresses may serve Service {req.key} (candidates: {names})",
        )
    return Failed(
        "PoolExhausted",
        f"no free {family} address left in pool {', '.join(with_family)} for Service {req.key}",
    )


def combined(req: ServiceRequest, errors: dict[Family, Failed]) -> Failed:
    """One failure for a request: the family's own, or DualStackUnavailable when a
    RequireDualStack Service cannot get one family for lack of room or pools."""
    if len(errors) == 1 and req.family_policy != "RequireDualStack":
        return next(iter(errors.values()))
    if req.family_policy == "RequireDualStack" and all(
        err.reason in ("NoMatchingPool", "PoolExhausted") for err in errors.values()
    ):
        detail = " ".join(err.message for err in errors.values())
        return Failed(
            "DualStackUnavailable",
            f"Service {req.key} requires both IPv4 and IPv6 and cannot get "
            f"{' and '.join(errors)}: {detail}",
        )
    return next(iter(errors.values()))
