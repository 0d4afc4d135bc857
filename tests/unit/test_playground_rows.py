"""The playground's table reads Services with the contract's rules (ccm.contract.views)."""

from __future__ import annotations

from typing import Any

from ccm.contract import names
from devkit.playground import service_row


def svc(spec: dict[str, Any], status: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations or {}},
        "spec": {"type": "LoadBalancer", **spec},
        "status": status or {},
    }


def test_allocated_row_shows_addresses_pools_and_node() -> None:
    obj = svc(
        {},
        {
            "loadBalancer": {"ingress": [{"ip": "192.0.2.2"}, {"ip": "2001:db8::2"}]},
            "conditions": [{"type": names.CONDITION_ALLOCATED, "status": "True"}],
        },
        {names.ANN_ALLOCATED_FROM: "v4,v6", names.ANN_ANNOUNCING_NODE: "n1"},
    )
    assert service_row(obj) == ("shop/web", "192.0.2.2, 2001:db8::2", "v4,v6", "n1", "allocated")


def test_hostname_only_ingress_entries_are_no_address() -> None:
    only = service_row(svc({}, {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}))
    assert only is not None and only[1] == "-" and only[4] == "pending"
    ingress = [{"hostname": "lb.example"}, {"ip": "192.0.2.2"}]
    mixed = svc({}, {"loadBalancer": {"ingress": ingress}})
    row = service_row(mixed)
    assert row is not None and row[1] == "192.0.2.2"


def test_other_class_and_unclassed_when_not_served() -> None:
    other = service_row(svc({"loadBalancerClass": "other.io/lb"}))
    assert other is not None and other[4] == "not ours (class other.io/lb)"
    plain = svc({})
    served = service_row(plain)
    unserved = service_row(plain, serve_unclassed=False)
    assert served is not None and served[4] == "pending"
    assert unserved is not None and unserved[4] == "not ours (class none)"


def test_not_a_load_balancer_has_no_row() -> None:
    assert service_row(svc({"type": "ClusterIP"})) is None
