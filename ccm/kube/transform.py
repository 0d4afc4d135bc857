"""Informer transforms: what the controller keeps of each object it caches.

As client-go's informer transforms do, objects are trimmed as they enter the cache, so memory
grows with what the controller reads, not with what the server stores. `managedFields` (the
server-side-apply bookkeeping, often half of a Service's JSON) is read by nothing here.

A Service keeps the fields the controller reads and nothing else. The controller never PUTs
a cached Service back (a PUT replaces what it omits): it sends merge patches guarded by the
cached resourceVersion (ccm/kube/patches.py), so what the cache leaves out stays untouched at
the server. Namespaces keep only their labels.
"""

from __future__ import annotations

from ccm.kube.client import JSON


def drop_managed_fields(obj: JSON) -> JSON:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


SERVICE_METADATA = frozenset({
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "labels", "annotations", "finalizers",
})
"""Identity and preconditions, labels for pool selectors, annotations for requests and what we
wrote, finalizers and deletion for release."""

SERVICE_SPEC = frozenset({
    "type", "loadBalancerClass", "loadBalancerIP", "ipFamilies", "ipFamilyPolicy", "ports",
})
"""What a request is built from (ccm/controller/service_view.py) and what is written back."""

PORT_FIELDS = ("port", "protocol")  # sharing rules compare (protocol, port) only

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
"""A copy of the whole object that `kubectl apply` keeps: often the largest annotation."""


def service_for_cache(obj: JSON) -> JSON:
    """Only the fields the controller reads (a new object; the argument is left as it was).

    status is kept whole (ingress and every condition, ours and others'): a status patch sends
    the conditions list whole, so the cache must hold all of it.
    """
    meta = obj.get("metadata") or {}
    kept_meta = {k: v for k, v in meta.items() if k in SERVICE_METADATA}
    annotations = kept_meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        kept_meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    spec = obj.get("spec") or {}
    kept_spec = {k: v for k, v in spec.items() if k in SERVICE_SPEC}
    if "ports" in kept_spec:
        kept_spec["ports"] = [
            {k: port[k] for k in PORT_FIELDS if k in port} for port in kept_spec["ports"] or []
        ]
    # kind set here: list items carry none, and Events name the kind of their object
    trimmed: JSON = {"apiVersion": "v1", "kind": "Service", "metadata": kept_meta,
                     "spec": kept_spec}
    if "status" in obj:
        trimmed["status"] = obj["status"]
    return trimmed


def namespace_for_cache(obj: JSON) -> JSON:
    """A Namespace is read for its labels only (namespace selectors of pools)."""
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "uid", "resourceVersion", "labels") if k in meta}
    return {"metadata": kept}
