"""The pure writers: what changes, and that a converged Service needs no write."""

from __future__ import annotations

from typing import Any

from ccm.contract import names
from ccm.controller import desired


def base() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop", "generation": 3, "resourceVersion": "7"},
        "spec": {"type": "LoadBalancer"},
    }


def test_allocation_adds_finalizer_annotation_and_spec_ip_once() -> None:
    first = desired.with_allocation(base(), ("192.0.2.1",), "pool-a", set_lb_ip=True)
    assert first is not None
    assert first["metadata"]["finalizers"] == [names.FINALIZER]
    assert first["metadata"]["annotations"][names.ANN_ALLOCATED_FROM] == "pool-a"
    assert first["metadata"]["annotations"][names.ANN_SET_LB_IP] == "true"
    assert first["spec"]["loadBalancerIP"] == "192.0.2.1"
    assert desired.with_allocation(first, ("192.0.2.1",), "pool-a", set_lb_ip=True) is None


def test_user_spec_ip_is_never_overwritten_and_dual_stack_sets_none() -> None:
    obj = base()
    obj["spec"]["loadBalancerIP"] = "192.0.2.9"
    new = desired.with_allocation(obj, ("192.0.2.9",), "p", set_lb_ip=True)
    assert new is not None and names.ANN_SET_LB_IP not in new["metadata"]["annotations"]
    dual = desired.with_allocation(base(), ("192.0.2.1", "2001:db8::1"), "p", set_lb_ip=True)
    assert dual is not None and "loadBalancerIP" not in dual["spec"]


def test_adopting_a_shown_address_writes_no_address_field() -> None:
    adopted = desired.with_allocation(base(), ("192.0.2.1",), "p", set_lb_ip=True, adopted=True)
    assert adopted is not None
    assert "loadBalancerIP" not in adopted["spec"]
    assert names.ANN_SET_LB_IP not in adopted["metadata"]["annotations"]
    # what we set before a restart stays ours: restoring it changes nothing
    ours = desired.with_allocation(base(), ("192.0.2.1",), "p", set_lb_ip=True)
    assert ours is not None
    assert desired.with_allocation(ours, ("192.0.2.1",), "p", set_lb_ip=True,
                                   adopted=True) is None


def test_release_removes_only_what_we_wrote() -> None:
    ours = desired.with_allocation(base(), ("192.0.2.1",), "p", set_lb_ip=True)
    assert ours is not None
    cleared = desired.without_allocation(ours)
    assert cleared is not None
    assert "loadBalancerIP" not in cleared["spec"]
    assert cleared["metadata"]["finalizers"] == []
    assert cleared["metadata"]["annotations"] == {}
    user = base()
    user["spec"]["loadBalancerIP"] = "192.0.2.9"
    user["metadata"]["finalizers"] = [names.FINALIZER, "other/keep"]
    released = desired.without_allocation(user)
    assert released is not None and released["spec"]["loadBalancerIP"] == "192.0.2.9"
    assert released["metadata"]["finalizers"] == ["other/keep"]
    assert desired.without_allocation(base()) is None


def test_status_is_idempotent_and_transition_time_moves_only_on_change() -> None:
    shown = desired.with_status(base(), ("192.0.2.1",), "allocated 192.0.2.1 from pool p")
    assert shown is not None
    assert shown["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.1", "ipMode": "VIP"}]
    (condition,) = shown["status"]["conditions"]
    assert condition["type"] == names.CONDITION_ALLOCATED and condition["status"] == "True"
    assert condition["observedGeneration"] == 3
    assert desired.with_status(shown, ("192.0.2.1",), "allocated 192.0.2.1 from pool p") is None
    failed = desired.with_failure(shown, "PoolExhausted", "pool p is full")
    assert failed is not None
    (after,) = failed["status"]["conditions"]
    assert after["status"] == "False" and after["reason"] == "PoolExhausted"
    assert failed["status"]["loadBalancer"]["ingress"][0]["ip"] == "192.0.2.1"
    assert desired.with_failure(failed, "PoolExhausted", "pool p is full") is None


def test_without_status_clears_ingress_and_our_condition_only() -> None:
    obj = base()
    obj["status"] = {
        "loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]},
        "conditions": [{"type": names.CONDITION_ALLOCATED}, {"type": "other/Thing"}],
    }
    new = desired.without_status(obj)
    assert new is not None
    assert new["status"]["loadBalancer"] == {}
    assert new["status"]["conditions"] == [{"type": "other/Thing"}]
    assert desired.without_status(new) is None
