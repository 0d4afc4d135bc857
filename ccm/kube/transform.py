"""Informer transforms: what the controller keeps of each object it caches.

As client-go's informer transforms do, objects are trimmed as they enter the cache, so memory
grows with what the controller reads, not with what the server stores. `managedFields` (the
server-side-apply bookkeeping, often half of a Service's JSON) is read by nothing here.

Services keep every other field: the controller writes a Service with a PUT of the cached
object, and a PUT replaces what it omits. managedFields is the exception the server makes: an
update whose body has none keeps the stored ones. Objects never written back (Namespaces,
Leases) keep only the fields that are read.
"""

from __future__ import annotations

import sys

from ccm.kube.client import JSON


def drop_managed_fields(obj: JSON) -> JSON:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def service_for_cache(obj: JSON) -> JSON:
    """managedFields dropped; the strings every Service repeats shared (interned)."""
    obj = drop_managed_fields(obj)
    _intern_keys(obj)
    return obj


def namespace_for_cache(obj: JSON) -> JSON:
    """A Namespace is read for its labels only (namespace selectors of pools)."""
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "uid", "resourceVersion", "labels") if k in meta}
    return {"metadata": kept}


def _intern_keys(value: object) -> None:
    """Share the dict keys (and short repeated values) of all cached objects: json.loads makes
    a new string for each, so 10,000 Services hold 10,000 copies of "loadBalancerIP"."""
    if isinstance(value, dict):
        for key in list(value):
            item = value[key]
            if isinstance(item, str) and len(item) <= 32:
                item = sys.intern(item)
            else:
                _intern_keys(item)
            value[sys.intern(key)] = item
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str) and len(item) <= 32:
                value[index] = sys.intern(item)
            else:
                _intern_keys(item)
