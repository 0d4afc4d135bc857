"""What a Service asks for and what it shows, read through the contract's typed view. Pure.

Which Services are ours, which addresses one shows and where they came from are the contract's
rules (``ccm.contract.views``), shared with the speaker and the tools; this module adds only
what the controller needs on top: the request the allocator answers.

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

from ccm.contract import names, views
from pools.allocator import Family, FamilyPolicy, ServiceRequest


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
    allocated_from: str | None  # views.allocated_from, comma-joined; None when it names none
    request: ServiceRequest | None  # None when `error` is set or the Service is not served
    error: str | None = None
    ours: bool = field(default=False)  # carries anything we wrote (finalizer, annotation, ...)


def parse_service(
    obj: Mapping[str, Any],
    options: ServiceOptions,
    namespace_labels: Mapping[str, str] | None = None,
) -> ServiceView:
    svc = views.service(obj)
    meta = views.meta_of(svc)
    annotations = views.annotations_of(svc)
    namespace = meta.get("namespace", "")
    name = meta.get("name", "")
    has_finalizer = names.FINALIZER in (meta.get("finalizers") or [])
    spec_ip_ours = annotations.get(names.ANN_SET_LB_IP) == "true"
    # the pools as the contract reads them, joined again: the allocator takes the annotation
    allocated_from = ",".join(views.allocated_from(svc)) or None
    view = ServiceView(
        key=f"{namespace}/{name}",
        namespace=namespace,
        name=name,
        uid=meta.get("uid", ""),
        served=views.is_ours(svc, options.serve_unclassed),
        deleting=bool(meta.get("deletionTimestamp")),
        has_finalizer=has_finalizer,
        shown_ips=views.ingress_ips(svc),
        spec_ip_ours=spec_ip_ours,
        allocated_from=allocated_from,
        request=None,
        # anything we write marks the Service, even an annotation a user emptied
        ours=has_finalizer or spec_ip_ours or names.ANN_ALLOCATED_FROM in annotations
        or names.ANN_EXTERNAL_KEY in annotations,
    )
    if not view.served:
        return view
    try:
        request = build_request(svc, options, namespace_labels or {})
    except BadServiceInput as exc:
        return _replace(view, error=str(exc))
    return _replace(view, request=request)


def _replace(view: ServiceView, **changes: Any) -> ServiceView:
    from dataclasses import replace

    return replace(view, **changes)


def build_request(
    svc: views.Service, options: ServiceOptions, namespace_labels: Mapping[str, str]
) -> ServiceRequest:
    meta = views.meta_of(svc)
    spec = svc.get("spec") or {}
    annotations = views.annotations_of(svc)
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
        (port.get("protocol") or "TCP", int(port["port"]))
        for port in spec.get("ports") or []
        if port.get("port") is not None
    )
    namespace = meta.get("namespace", "")
    return ServiceRequest(
        key=f"{namespace}/{meta.get('name', '')}",
        uid=meta.get("uid", ""),
        created=_timestamp(meta.get("creationTimestamp")),
        namespace=namespace,
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


def requests_addresses(svc: views.Service, options: ServiceOptions) -> bool:
    """The Service names its own addresses (read as the request is, valid or not): such
    Services are synced first after a restart, so automatic picks cannot take them."""
    annotations = views.annotations_of(svc)
    return bool(_address_source(annotations, svc.get("spec") or {}, options.compat)[1])


def _address_source(
    annotations: Mapping[str, str], spec: views.ServiceSpec, compat: Collection[str]
) -> tuple[str, str]:
    """(where, the raw value) of the addresses a Service requests, by precedence."""
    raw = annotations.get(names.ANN_IPS, "")
    if raw:
        return names.ANN_IPS, raw
    for project in sorted(compat):
        key = names.COMPAT_IPS.get(project)
        if key and annotations.get(key):
            return key, annotations[key]
    if spec.get("loadBalancerIP") and annotations.get(names.ANN_SET_LB_IP) != "true":
        return "spec.loadBalancerIP", str(spec["loadBalancerIP"])
    return names.ANN_IPS, ""


def _requested_ips(
    annotations: Mapping[str, str], spec: views.ServiceSpec, compat: Collection[str]
) -> tuple[str, ...]:
    source, raw = _address_source(annotations, spec, compat)
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


def _families(spec: views.ServiceSpec, requested_ips: tuple[str, ...]) -> tuple[Family, ...]:
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
