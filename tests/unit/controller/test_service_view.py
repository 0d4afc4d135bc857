"""How a Service dict becomes a request: precedence, compat, families, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from ccm.contract import names, views
from ccm.controller.service_view import ServiceOptions, parse_service, requests_addresses

DEFAULT = ServiceOptions()
COMPAT_ALL = ServiceOptions(compat=frozenset({"metallb", "kube-vip", "cilium"}))


def service(
    annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}
    body.update(spec)
    return {
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u-1",
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "annotations": annotations or {},
            "labels": {"app": "web"},
        },
        "spec": body,
    }


def test_plain_service_asks_for_automatic_ipv4() -> None:
    view = parse_service(service(), DEFAULT)
    assert view.served and view.request is not None
    assert view.request.key == "shop/web"
    assert view.request.families == ("IPv4",)
    assert view.request.requested_ips == () and view.request.requested_pools == ()
    assert view.request.ports == frozenset({("TCP", 80)})
    assert view.request.created == pytest.approx(1767323045.0)


def test_our_annotation_beats_compat_and_spec_ip() -> None:
    obj = service(
        {names.ANN_IPS: "192.0.2.7", "metallb.io/loadBalancerIPs": "192.0.2.8"},
        loadBalancerIP="192.0.2.9",
    )
    view = parse_service(obj, COMPAT_ALL)
    assert view.request is not None and view.request.requested_ips == ("192.0.2.7",)


def test_compat_annotations_only_when_enabled() -> None:
    obj = service({"metallb.io/loadBalancerIPs": "192.0.2.8", "metallb.io/address-pool": "p"})
    off = parse_service(obj, DEFAULT)
    on = parse_service(obj, COMPAT_ALL)
    assert off.request is not None and off.request.requested_ips == ()
    assert off.request.requested_pools == ()
    assert on.request is not None and on.request.requested_ips == ("192.0.2.8",)
    assert on.request.requested_pools == ("p",)


@pytest.mark.parametrize(
    ("annotation", "value"),
    [("kube-vip.io/loadbalancerIPs", "198.51.100.4"), ("lbipam.cilium.io/ips", "198.51.100.4")],
)
def test_other_compat_ip_annotations(annotation: str, value: str) -> None:
    view = parse_service(service({annotation: value}), COMPAT_ALL)
    assert view.request is not None and view.request.requested_ips == (value,)


def test_spec_load_balancer_ip_is_a_request_unless_we_wrote_it() -> None:
    user = parse_service(service(loadBalancerIP="192.0.2.20"), DEFAULT)
    ours = parse_service(
        service({names.ANN_SET_LB_IP: "true"}, loadBalancerIP="192.0.2.20"), DEFAULT
    )
    assert user.request is not None and user.request.requested_ips == ("192.0.2.20",)
    assert ours.request is not None and ours.request.requested_ips == ()
    assert ours.spec_ip_ours and ours.ours


def test_dual_stack_request_and_families() -> None:
    obj = service(
        {names.ANN_IPS: "2001:db8::5, 192.0.2.5", names.ANN_POOL: "a, b"},
        ipFamilies=["IPv6", "IPv4"], ipFamilyPolicy="RequireDualStack",
    )
    view = parse_service(obj, DEFAULT)
    assert view.request is not None
    assert view.request.requested_ips == ("2001:db8::5", "192.0.2.5")
    assert view.request.families == ("IPv6", "IPv4")
    assert view.request.family_policy == "RequireDualStack"
    assert view.request.requested_pools == ("a", "b")


def test_sharing_key_and_compat_sharing_key() -> None:
    ours = parse_service(service({names.ANN_SHARING_KEY: "k"}), DEFAULT)
    metallb = parse_service(service({"metallb.io/allow-shared-ip": "m"}), COMPAT_ALL)
    assert ours.request is not None and ours.request.sharing_key == "k"
    assert metallb.request is not None and metallb.request.sharing_key == "m"


@pytest.mark.parametrize(
    ("annotations", "spec", "fragment"),
    [
        ({names.ANN_IPS: "192.0.2.300"}, {}, "'192.0.2.300' is not an IP address"),
        ({names.ANN_IPS: "192.0.2.1,192.0.2.2"}, {}, "more than one IPv4 address"),
        ({}, {"ipFamilies": ["IPv5"]}, "unknown family 'IPv5'"),
        ({}, {"ipFamilyPolicy": "Sometimes"}, "unknown policy 'Sometimes'"),
        ({}, {"loadBalancerIP": "not-an-ip"}, "spec.loadBalancerIP: 'not-an-ip'"),
    ],
)
def test_bad_input_is_reported_not_raised(
    annotations: dict[str, str], spec: dict[str, Any], fragment: str
) -> None:
    view = parse_service(service(annotations, **spec), DEFAULT)
    assert view.served and view.request is None
    assert view.error is not None and fragment in view.error


def test_classes_and_types_that_are_not_ours() -> None:
    assert not parse_service(service(loadBalancerClass="other.io/lb"), DEFAULT).served
    assert parse_service(service(loadBalancerClass=names.LOAD_BALANCER_CLASS), DEFAULT).served
    assert not parse_service(service(), ServiceOptions(serve_unclassed=False)).served
    assert not parse_service(service(type="ClusterIP"), DEFAULT).served


def test_deleting_service_is_not_served_and_shows_what_we_wrote() -> None:
    obj = service({names.ANN_ALLOCATED_FROM: "p"})
    obj["metadata"]["deletionTimestamp"] = "2026-01-02T03:04:05Z"
    obj["metadata"]["finalizers"] = [names.FINALIZER]
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    view = parse_service(obj, DEFAULT)
    assert not view.served and view.deleting and view.has_finalizer and view.ours
    assert view.shown_ips == ("192.0.2.1",)


@pytest.mark.parametrize(
    ("annotations", "spec", "options", "expected"),
    [
        ({}, {}, DEFAULT, False),
        ({names.ANN_IPS: "192.0.2.7"}, {}, DEFAULT, True),
        ({}, {"loadBalancerIP": "192.0.2.20"}, DEFAULT, True),
        # an address we wrote ourselves is no request (restored, not asked for)
        ({names.ANN_SET_LB_IP: "true"}, {"loadBalancerIP": "192.0.2.20"}, DEFAULT, False),
        # compat annotations count only where they are honoured, in their exact spelling
        ({"kube-vip.io/loadbalancerIPs": "198.51.100.4"}, {}, COMPAT_ALL, True),
        ({"kube-vip.io/loadbalancerIPs": "198.51.100.4"}, {}, DEFAULT, False),
        ({"metallb.io/loadBalancerIPs": "198.51.100.4"}, {}, DEFAULT, False),
        ({"lbipam.cilium.io/ips": "198.51.100.4"}, {}, COMPAT_ALL, True),
        # an invalid request still names addresses: it is synced early and fails there
        ({names.ANN_IPS: "not-an-ip"}, {}, DEFAULT, True),
    ],
)
def test_requests_addresses_reads_what_the_request_reads(
    annotations: dict[str, str], spec: dict[str, Any], options: ServiceOptions, expected: bool
) -> None:
    obj = service(annotations, **spec)
    assert requests_addresses(views.service(obj), options) is expected
    view = parse_service(obj, options)
    if view.request is not None:
        assert bool(view.request.requested_ips) is expected


@pytest.mark.parametrize(
    ("value", "allocated_from"),
    [("lan", "lan"), ("v4,v6", "v4,v6"), ("v4,,v6,", "v4,v6"), ("", None)],
)
def test_allocated_from_as_the_contract_reads_it(value: str, allocated_from: str | None) -> None:
    view = parse_service(service({names.ANN_ALLOCATED_FROM: value}), DEFAULT)
    assert view.allocated_from == allocated_from
    assert view.ours  # the annotation is ours to clean up, even emptied


def test_hostname_only_ingress_shows_no_address() -> None:
    obj = service()
    obj["status"] = {"loadBalancer": {"ingress": [{"hostname": "lb.example"}, {"ip": "192.0.2.3"}]}}
    assert parse_service(obj, DEFAULT).shown_ips == ("192.0.2.3",)
