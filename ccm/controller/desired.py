"""The Service as it should be: pure functions from (current object, decision) to a new object.

Each returns a modified copy, or None when the object is already right, so a sync that has
nothing to change makes no write (a restart of a converged cluster writes nothing). The copy is
new along the paths it changes (metadata, annotations, finalizers, spec, status, conditions)
and shares the rest with its argument, which is never modified: a deep copy of every Service
at every sync was the controller's largest CPU cost in a burst of allocations.
"""

from __future__ import annotations

from ccm.contract import names
from ccm.contract.views import Condition, ObjectMeta, Service, ServiceSpec, ServiceStatus
from ccm.kube.leader import micro_time


def _now_seconds() -> str:
    return micro_time()[:19] + "Z"


def _meta_copy(obj: Service) -> tuple[Service, ObjectMeta, dict[str, str]]:
    """A copy whose metadata, annotations, finalizers and spec are its own to change."""
    new = obj.copy()
    meta = (obj.get("metadata") or ObjectMeta()).copy()
    new["metadata"] = meta
    annotations = dict(meta.get("annotations") or {})
    meta["annotations"] = annotations
    if "finalizers" in meta:
        meta["finalizers"] = list(meta["finalizers"] or [])
    new["spec"] = (obj.get("spec") or ServiceSpec()).copy()
    return new, meta, annotations


def _status_copy(obj: Service) -> tuple[Service, ServiceStatus]:
    """A copy whose status and conditions (each one) are its own to change."""
    new = obj.copy()
    status = (obj.get("status") or ServiceStatus()).copy()
    new["status"] = status
    if "conditions" in status:
        status["conditions"] = [c.copy() for c in status["conditions"] or []]
    return new, status


def _finalized_copy(obj: Service) -> tuple[Service, dict[str, str]]:
    """A copy carrying our finalizer, and its annotations mapping."""
    new, meta, annotations = _meta_copy(obj)
    finalizers = meta.setdefault("finalizers", [])
    if names.FINALIZER not in finalizers:
        finalizers.append(names.FINALIZER)
    return new, annotations


def with_allocation(obj: Service, ips: tuple[str, ...], pools: str, set_lb_ip: bool,
                    adopted: bool = False) -> Service | None:
    """Finalizer, `vipam.io/allocated-from` and (single-stack) spec.loadBalancerIP.

    `adopted`: the Service already showed these addresses before we wrote anything (a migration
    from another allocator). Then spec.loadBalancerIP is left as the user has it: adopting must
    not write an address field, only our finalizer, annotation and condition.
    """
    new, annotations = _finalized_copy(obj)
    spec = new["spec"]
    if pools:
        annotations[names.ANN_ALLOCATED_FROM] = pools
    else:
        # every address is outside the pools: claim none (an empty value would read as a pool)
        annotations.pop(names.ANN_ALLOCATED_FROM, None)
    user_ip = spec.get("loadBalancerIP") and annotations.get(names.ANN_SET_LB_IP) != "true"
    ours = annotations.get(names.ANN_SET_LB_IP) == "true"
    if set_lb_ip and len(ips) == 1 and not user_ip and (ours or not adopted):
        spec["loadBalancerIP"] = ips[0]
        annotations[names.ANN_SET_LB_IP] = "true"
    elif annotations.get(names.ANN_SET_LB_IP) == "true" and (not set_lb_ip or len(ips) != 1):
        spec.pop("loadBalancerIP", None)
        annotations.pop(names.ANN_SET_LB_IP, None)
    return None if new == obj else new


def with_external_key(obj: Service, key: str) -> Service | None:
    """Finalizer and the external allocation key, before the backend is asked for anything."""
    new, annotations = _finalized_copy(obj)
    annotations[names.ANN_EXTERNAL_KEY] = key
    return None if new == obj else new


def without_allocation(obj: Service) -> Service | None:
    """Everything `with_allocation` wrote, removed; the finalizer goes in the same write, last."""
    new, meta, annotations = _meta_copy(obj)
    if annotations.pop(names.ANN_SET_LB_IP, None) == "true":
        new["spec"].pop("loadBalancerIP", None)
    annotations.pop(names.ANN_ALLOCATED_FROM, None)
    annotations.pop(names.ANN_EXTERNAL_KEY, None)
    if "annotations" not in (obj.get("metadata") or {}):
        del meta["annotations"]  # absent stays absent
    if "spec" not in obj and not new["spec"]:
        del new["spec"]
    if "finalizers" in meta:
        meta["finalizers"] = [f for f in meta["finalizers"] if f != names.FINALIZER]
    return None if new == obj else new


def _generation(obj: Service) -> int | None:
    """metadata.generation, or None: a real API server keeps none for Services."""
    value = (obj.get("metadata") or {}).get("generation")
    return int(value) if value else None


def _set_condition(
    status: ServiceStatus, generation: int | None, state: str, reason: str, message: str
) -> None:
    """Our condition in place. observedGeneration only when the object has a generation:
    writing 0 for "none" never compares equal to what the server stores (it drops a zero
    observedGeneration), so every sync would write status again."""
    conditions = status.setdefault("conditions", [])
    for condition in conditions:
        if condition.get("type") == names.CONDITION_ALLOCATED:
            if condition.get("status") != state:
                condition["lastTransitionTime"] = _now_seconds()
            condition["status"], condition["reason"] = state, reason
            condition["message"] = message
            if generation is None:
                condition.pop("observedGeneration", None)
            else:
                condition["observedGeneration"] = generation
            return
    condition = Condition(type=names.CONDITION_ALLOCATED, status=state, reason=reason,
                          message=message)
    if generation is not None:
        condition["observedGeneration"] = generation
    condition["lastTransitionTime"] = _now_seconds()
    conditions.append(condition)


def with_status(
    obj: Service, ips: tuple[str, ...], message: str, *, state: str = "True",
    reason: str = names.REASON_ALLOCATED,
) -> Service | None:
    """status.loadBalancer.ingress for `ips` and the `vipam.io/IPAllocated` condition (True,
    unless the addresses are kept for another reason, e.g. outside every pool)."""
    new, status = _status_copy(obj)
    status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in ips]}
    _set_condition(status, _generation(new), state, reason, message)
    return None if new == obj else new


def with_failure(obj: Service, reason: str, message: str) -> Service | None:
    """A False condition; the ingress stays as it is (a failed change keeps the old address)."""
    new, status = _status_copy(obj)
    _set_condition(status, _generation(new), "False", reason, message)
    return None if new == obj else new


def without_status(obj: Service) -> Service | None:
    """No ingress and no condition of ours."""
    if "status" not in obj:
        return None
    new, status = _status_copy(obj)
    if (status.get("loadBalancer") or {}).get("ingress"):
        status["loadBalancer"] = {}
    if "conditions" in status:
        status["conditions"] = [
            c for c in status["conditions"] if c.get("type") != names.CONDITION_ALLOCATED
        ]
    return None if new == obj else new
