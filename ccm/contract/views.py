"""Typed views of the Kubernetes objects vipam reads, and the rules several places apply to them.

The API server sends JSON; these TypedDicts name the fields we read (all optional, as any of
them may be missing on a half-written object), so code that reads a Service is checked by
mypy instead of walking ``dict[str, Any]``. Converting is free: a view is the dict itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, cast

from ccm.contract import names


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    creationTimestamp: str
    deletionTimestamp: str
    labels: dict[str, str]
    annotations: dict[str, str]
    finalizers: list[str]


class Condition(TypedDict, total=False):
    type: str
    status: str
    reason: str
    message: str
    observedGeneration: int
    lastTransitionTime: str


class LoadBalancerIngress(TypedDict, total=False):
    ip: str
    hostname: str
    ipMode: str


class LoadBalancerStatus(TypedDict, total=False):
    ingress: list[LoadBalancerIngress]


class ServicePort(TypedDict, total=False):
    name: str
    protocol: str
    port: int


class ServiceSpec(TypedDict, total=False):
    type: str
    loadBalancerClass: str | None
    loadBalancerIP: str
    ipFamilies: list[str]
    ipFamilyPolicy: str
    ports: list[ServicePort]
    externalTrafficPolicy: str


class ServiceStatus(TypedDict, total=False):
    loadBalancer: LoadBalancerStatus
    conditions: list[Condition]


class Service(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: ServiceSpec
    status: ServiceStatus


class LeaseSpec(TypedDict, total=False):
    holderIdentity: str
    leaseDurationSeconds: int
    acquireTime: str
    renewTime: str
    leaseTransitions: int


class Lease(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: LeaseSpec


class IPPoolStatus(TypedDict, total=False):
    """What the controller writes: usage per family (``ccm.health.numbers.family_usage``)."""

    ipv4: dict[str, str]
    ipv6: dict[str, str]
    conditions: list[Condition]


class IPPool(TypedDict, total=False):
    """The spec stays a mapping: :func:`pools.model.parse_pool` validates it into a model."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any]
    status: IPPoolStatus


class EndpointConditions(TypedDict, total=False):
    ready: bool | None


class Endpoint(TypedDict, total=False):
    nodeName: str
    conditions: EndpointConditions


class EndpointSlice(TypedDict, total=False):
    metadata: ObjectMeta
    endpoints: list[Endpoint]


class Node(TypedDict, total=False):
    metadata: ObjectMeta


class Namespace(TypedDict, total=False):
    """Only its labels are read (pool selectors match them)."""

    metadata: ObjectMeta


class Secret(TypedDict, total=False):
    """An external IPAM's token: ``data`` is base64, ``stringData`` plain (as written)."""

    metadata: ObjectMeta
    data: dict[str, str]
    stringData: dict[str, str]


def service(obj: Mapping[str, Any]) -> Service:
    """The dict as a Service view (no copy, no check: the API server checked its shape)."""
    return cast(Service, obj)


def lease(obj: Mapping[str, Any]) -> Lease:
    """The dict as a Lease view (no copy, no check)."""
    return cast(Lease, obj)


def ippool(obj: Mapping[str, Any]) -> IPPool:
    """The dict as an IPPool view (no copy, no check)."""
    return cast(IPPool, obj)


def secret(obj: Mapping[str, Any]) -> Secret:
    """The dict as a Secret view (no copy, no check)."""
    return cast(Secret, obj)


def meta_of(obj: Mapping[str, Any]) -> ObjectMeta:
    return cast(ObjectMeta, obj.get("metadata") or {})


def labels_of(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return meta_of(obj or {}).get("labels") or {}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return meta_of(obj).get("annotations") or {}


def ingress_ips(svc: Service) -> tuple[str, ...]:
    """The addresses a Service shows in ``status.loadBalancer.ingress[].ip``, in order."""
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return tuple(str(entry["ip"]) for entry in ingress if entry.get("ip"))


def allocated_condition(svc: Service) -> Condition | None:
    """The ``vipam.io/IPAllocated`` condition the controller keeps on a Service, if any (the
    last one, should a client have written it twice)."""
    found: Condition | None = None
    for condition in (svc.get("status") or {}).get("conditions") or []:
        if condition.get("type") == names.CONDITION_ALLOCATED:
            found = condition
    return found


def has_our_class(svc: Service, serve_unclassed: bool) -> bool:
    """Our loadBalancerClass, or none at all when unclassed Services are served."""
    lb_class = (svc.get("spec") or {}).get("loadBalancerClass")
    return lb_class == names.LOAD_BALANCER_CLASS or (lb_class is None and serve_unclassed)


def is_ours(svc: Service, serve_unclassed: bool) -> bool:
    """The one rule for "vipam serves this Service": type LoadBalancer, our class (or none, if
    allowed), not being deleted. Services with any other class are never touched."""
    return (
        (svc.get("spec") or {}).get("type") == "LoadBalancer"
        and has_our_class(svc, serve_unclassed)
        and not (svc.get("metadata") or {}).get("deletionTimestamp")
    )


def allocated_from(svc: Service) -> list[str]:
    """The pools named in ``vipam.io/allocated-from``, one per shown address (or one for all)."""
    raw = annotations_of(svc).get(names.ANN_ALLOCATED_FROM) or ""
    return [part for part in raw.split(",") if part]
