"""What a Service asks for and what it shows, read from its dict. Pure: no I/O.

Request precedence (DESIGN.md): `vipam.io/loadBalancerIPs` > compat IP annotations (when
enabled) > spec.loadBalancerIP (unless we wrote it ourselves) > `vipam.io/pool` (or a compat
pool annotation) > automatic selection.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import netaddr

from ccm.contract import names
from pools.allocator import Family, FamilyPolicy, ServiceRequest

JSON = dict[str, Any]


class BadServiceInput(ValueError):
    """An annotation or field the user wrote that we cannot honour; the message says which."""


@dataclass(frozen=True)
class ServiceOptions:
    """Controller flags that change how Services are read."""

    serve_unclassed: bool = True
    compat: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ServiceView:
    key: str
    namespace: str
    name: str
    uid: str
    served: bool  # type LoadBalancer, our class (or none, if allowed), not being deleted
    deleting: bool
    has_finalizer: bool
    shown_ips: tuple[str, ...]  # status.loadBalancer.ingress[].ip
    spec_ip_ours: bool  # spec.loadBalancerIP was written by us
    allocated_from: str | None
    request: ServiceRequest | None  # None when `error` is set or the Service is not served
    error: str | None = None
    ours: bool = field(default=False)  # carries anything we wrote (finalizer, annotation, ...)


def parse_service(
    obj: JSON, options: ServiceOptions, namespace_labels: Mapping[str, str] | None = None
) -> ServiceView:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    namespace = str(meta.get("namespace", ""))
    name = str(meta.get("name", ""))
    deleting = bool(meta.get("deletionTimestamp"))
    lb_class = spec.get("loadBalancerClass")
    our_class = lb_class == names.LOAD_BALANCER_CLASS or (
        lb_class is None and options.serve_unclassed
    )
    is_lb = spec.get("type") == "LoadBalancer"
    finalizers = meta.get("finalizers") or []
    shown = tuple(
        str(entry["ip"])
        for entry in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if entry.get("ip")
    )
    has_finalizer = names.FINALIZER in finalizers
    spec_ip_ours = annotations.get(names.ANN_SET_LB_IP) == "true"
    allocated_from = annotations.get(names.ANN_ALLOCATED_FROM)
    view = ServiceView(
        key=f"{namespace}/{name}",
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid", "")),
        served=is_lb and our_class and not deleting,
        deleting=deleting,
        has_finalizer=has_finalizer,
        shown_ips=shown,
        spec_ip_ours=spec_ip_ours,
        allocated_from=allocated_from,
        request=None,
        ours=has_finalizer or allocated_from is not None or spec_ip_ours
        or names.ANN_EXTERNAL_KEY in annotations,
    )
    if not view.served:
        return view
    try:
        request = build_request(obj, options, namespace_labels or {})
    except BadServiceInput as exc:
        return _replace(view, error=str(exc))
    return _replace(view, request=request)


def _replace(view: ServiceView, **changes: Any) -> ServiceView:
    from dataclasses import replace

    return replace(view, **changes)


def build_request(
    obj: JSON, options: ServiceOptions, namespace_labels: Mapping[str, str]
) -> ServiceRequest:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    requested_ips = _requested_ips(annotations, spec, options.compat)
    families = _families(spec, requested_ips)
    policy = str(spec.get("ipFamilyPolicy") or "SingleStack")
    if policy not in {"SingleStack", "PreferDualStack", "RequireDualStack"}:
        raise BadServiceInput(f"spec.ipFamilyPolicy: unknown policy {policy!r}")
    pools = _split(annotations.get(names.ANN_POOL, ""))
    if not pools:
        for project in sorted(options.compat):
            compat = names.COMPAT_POOL.get(project)
            if compat and annotations.get(compat):
                pools = _split(annotations[compat])
                break
    sharing = annotations.get(names.ANN_SHARING_KEY) or None
    if sharing is None:
        for project in sorted(options.compat):
            compat = names.COMPAT_SHARING_KEY.get(project)
            if compat and annotations.get(compat):
                sharing = annotations[compat]
                break
    ports = frozenset(
        (str(port.get("protocol") or "TCP"), int(port["port"]))
        for port in spec.get("ports") or []
        if port.get("port") is not None
    )
    return ServiceRequest(
        key=f"{meta.get('namespace', '')}/{meta.get('name', '')}",
        uid=str(meta.get("uid", "")),
        created=_timestamp(meta.get("creationTimestamp")),
        namespace=str(meta.get("namespace", "")),
        labels=dict(meta.get("labels") or {}),
        namespace_labels=dict(namespace_labels),
        families=families,
        family_policy=cast(FamilyPolicy, policy),
        ports=ports,
        sharing_key=sharing,
        requested_ips=requested_ips,
        requested_pools=pools,
    )


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _requested_ips(
    annotations: Mapping[str, str], spec: Mapping[str, Any], compat: Collection[str]
) -> tuple[str, ...]:
    source, raw = names.ANN_IPS, annotations.get(names.ANN_IPS, "")
    if not raw:
        for project in sorted(compat):
            key = names.COMPAT_IPS.get(project)
            if key and annotations.get(key):
                source, raw = key, annotations[key]
                break
    if not raw and spec.get("loadBalancerIP") and annotations.get(names.ANN_SET_LB_IP) != "true":
        source, raw = "spec.loadBalancerIP", str(spec["loadBalancerIP"])
    ips: list[str] = []
    seen: set[int] = set()
    for part in _split(raw):
        try:
            address = netaddr.IPAddress(part)
        except (netaddr.AddrFormatError, ValueError):
            raise BadServiceInput(f"{source}: {part!r} is not an IP address") from None
        if address.version in seen:
            raise BadServiceInput(f"{source}: more than one IPv{address.version} address")
        seen.add(address.version)
        ips.append(str(address))
    return tuple(ips)


def _families(spec: Mapping[str, Any], requested_ips: tuple[str, ...]) -> tuple[Family, ...]:
    declared = spec.get("ipFamilies") or []
    families: list[Family] = []
    for family in declared:
        if family not in ("IPv4", "IPv6"):
            raise BadServiceInput(f"spec.ipFamilies: unknown family {family!r}")
        families.append(cast(Family, family))
    if families:
        return tuple(families)
    # the API server always fills ipFamilies; an emulator or an old server may not
    guessed = [
        cast(Family, f"IPv{netaddr.IPAddress(ip).version}") for ip in requested_ips
    ]
    return tuple(guessed) or ("IPv4",)


def _timestamp(value: object) -> float:
    if not value:
        return 0.0
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
