"""desired.*: the argument is never modified (the copies share what they do not change), and an
object that is already right gives None, so no write is made."""

from __future__ import annotations

import copy
from typing import Any

from ccm.contract import names
from ccm.controller import desired


def allocated() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "5",
                     "finalizers": ["other", names.FINALIZER],
                     "annotations": {names.ANN_ALLOCATED_FROM: "lan", names.ANN_SET_LB_IP: "true",
                                     "keep": "me"}},
        "spec": {"type": "LoadBalancer", "loadBalancerIP": "192.0.2.1",
                 "ports": [{"port": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}]},
                   "conditions": [{"type": "other", "status": "True"},
                                  {"type": names.CONDITION_ALLOCATED, "status": "True",
                                   "reason": names.REASON_ALLOCATED, "message": "m",
                                   "lastTransitionTime": "2026-11-30T00:00:00Z"}]},
    }


def test_no_function_modifies_its_argument() -> None:
    obj = allocated()
    before = copy.deepcopy(obj)
    results = [
        desired.with_allocation(obj, ("192.0.2.7",), "lan", True),
        desired.with_external_key(obj, "c/u"),
        desired.without_allocation(obj),
        desired.with_status(obj, ("192.0.2.7",), "allocated"),
        desired.with_failure(obj, "PoolExhausted", "full"),
        desired.without_status(obj),
    ]
    assert obj == before
    assert all(result is not None for result in results)
    released = desired.without_allocation(obj)
    assert released is not None
    assert released["metadata"]["finalizers"] == ["other"]
    assert released["metadata"]["annotations"] == {"keep": "me"}
    assert "loadBalancerIP" not in released["spec"]
    failed = desired.with_failure(obj, "PoolExhausted", "full")
    assert failed is not None and failed["status"]["conditions"][0] == {"type": "other",
                                                                         "status": "True"}
    assert failed["status"]["conditions"][1]["status"] == "False"


def test_what_is_already_right_gives_none() -> None:
    obj = allocated()
    assert desired.with_allocation(obj, ("192.0.2.1",), "lan", True) is None
    assert desired.with_status(obj, ("192.0.2.1",), "m") is None
    bare: dict[str, Any] = {"metadata": {"name": "web"}, "spec": {"type": "ClusterIP"}}
    assert desired.without_allocation(bare) is None
    assert desired.without_status(bare) is None
