"""The contract's rules on Services (ccm.contract.views): the one place the controller, the
speaker and the tools learn whether a Service is ours and which addresses it shows."""

from __future__ import annotations

from typing import Any

import pytest

from ccm.contract import names, views


def svc(
    spec: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
) -> views.Service:
    obj: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "shop", **(meta or {})},
        "spec": {"type": "LoadBalancer", **(spec or {})},
    }
    if status is not None:
        obj["status"] = status
    return views.service(obj)


@pytest.mark.parametrize(
    ("spec", "serve_unclassed", "ours"),
    [
        ({}, True, True),
        ({}, False, False),  # no class, unclassed Services not served
        ({"loadBalancerClass": None}, True, True),  # an explicit null is no class
        ({"loadBalancerClass": None}, False, False),
        ({"loadBalancerClass": names.LOAD_BALANCER_CLASS}, False, True),
        ({"loadBalancerClass": names.LOAD_BALANCER_CLASS}, True, True),
        ({"loadBalancerClass": "other.io/lb"}, True, False),  # another class: never touched
        ({"loadBalancerClass": ""}, True, False),  # an empty class is a class, not none
        ({"type": "ClusterIP"}, True, False),
        ({"type": "NodePort", "loadBalancerClass": names.LOAD_BALANCER_CLASS}, True, False),
    ],
)
def test_is_ours_by_type_and_class(
    spec: dict[str, Any], serve_unclassed: bool, ours: bool
) -> None:
    assert views.is_ours(svc(spec), serve_unclassed) is ours


def test_has_our_class_ignores_type_and_deletion() -> None:
    deleting = svc({"type": "ClusterIP"}, {"deletionTimestamp": "2026-01-02T03:04:05Z"})
    assert views.has_our_class(deleting, serve_unclassed=True)
    assert not views.has_our_class(deleting, serve_unclassed=False)


def test_a_service_being_deleted_is_not_ours_to_serve() -> None:
    deleting = svc(
        {"loadBalancerClass": names.LOAD_BALANCER_CLASS},
        {"deletionTimestamp": "2026-01-02T03:04:05Z", "finalizers": [names.FINALIZER]},
    )
    assert not views.is_ours(deleting, serve_unclassed=True)


def test_missing_or_null_parts_are_not_ours() -> None:
    assert not views.is_ours(views.service({}), serve_unclassed=True)
    assert not views.is_ours(views.service({"spec": None, "metadata": None}), True)
    bare = views.service({"spec": {"type": "LoadBalancer"}})  # no metadata at all
    assert views.is_ours(bare, serve_unclassed=True)


@pytest.mark.parametrize(
    ("status", "ips"),
    [
        (None, ()),
        ({}, ()),
        ({"loadBalancer": None}, ()),
        ({"loadBalancer": {}}, ()),
        ({"loadBalancer": {"ingress": None}}, ()),
        ({"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}, ()),
        ({"loadBalancer": {"ingress": [{"ip": ""}]}}, ()),
        (
            {"loadBalancer": {"ingress": [
                {"ip": "2001:db8::1", "ipMode": "VIP"},
                {"hostname": "lb.example"},
                {"ip": "192.0.2.1", "hostname": "also.example"},
            ]}},
            ("2001:db8::1", "192.0.2.1"),  # in order, hostname-only entries skipped
        ),
    ],
)
def test_ingress_ips(status: dict[str, Any] | None, ips: tuple[str, ...]) -> None:
    assert views.ingress_ips(svc(status=status)) == ips


@pytest.mark.parametrize(
    ("annotations", "pools"),
    [
        (None, []),
        ({}, []),
        ({names.ANN_ALLOCATED_FROM: ""}, []),
        ({names.ANN_ALLOCATED_FROM: "lan"}, ["lan"]),
        ({names.ANN_ALLOCATED_FROM: "v4,v6"}, ["v4", "v6"]),
        ({names.ANN_ALLOCATED_FROM: "v4,,v6,"}, ["v4", "v6"]),
    ],
)
def test_allocated_from(annotations: dict[str, str] | None, pools: list[str]) -> None:
    meta: dict[str, Any] = {} if annotations is None else {"annotations": annotations}
    assert views.allocated_from(svc(meta=meta)) == pools


def test_metadata_accessors_tolerate_missing_and_null_parts() -> None:
    assert views.meta_of({}) == {}
    assert views.meta_of({"metadata": None}) == {}
    assert views.labels_of(None) == {}
    assert views.labels_of({"metadata": {"labels": None}}) == {}
    assert views.labels_of({"metadata": {"labels": {"a": "b"}}}) == {"a": "b"}
    assert views.annotations_of({"metadata": {}}) == {}
    assert views.annotations_of({"metadata": {"annotations": {"k": "v"}}}) == {"k": "v"}


def test_views_are_the_objects_themselves() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "x"}, "spec": {"holderIdentity": "n1"}}
    assert views.lease(obj) is obj and views.ippool(obj) is obj
    assert views.secret(obj) is obj and views.service(obj) is obj


def test_allocated_condition_is_ours_among_others() -> None:
    assert views.allocated_condition(svc()) is None
    assert views.allocated_condition(svc(status={"conditions": None})) is None
    other = {"type": "example.io/Ready", "status": "True"}
    assert views.allocated_condition(svc(status={"conditions": [other]})) is None
    ours = {"type": names.CONDITION_ALLOCATED, "status": "False", "reason": "PoolExhausted"}
    found = views.allocated_condition(svc(status={"conditions": [other, ours]}))
    assert found == ours
