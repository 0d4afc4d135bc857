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
from typing import Any

from ccm.kube.client import JSON


def drop_managed_fields(obj: JSON) -> JSON:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def service_for_cache(obj: JSON) -> JSON:
    """managedFields dropped; the short values every Service repeats shared."""
    obj = drop_managed_fields(obj)
    _share_values(obj)
    return obj


def namespace_for_cache(obj: JSON) -> JSON:
    """A Namespace is read for its labels only (namespace selectors of pools)."""
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "uid", "resourceVersion", "labels") if k in meta}
    return {"metadata": kept}


_intern = sys.intern


def _share_values(value: Any) -> None:
    """Intern short string values in place ("TCP", "LoadBalancer", "Cluster", "IPv6", ...):
    json.loads makes a new string for each, 10,000 Services hold 10,000 copies of each.
    (Keys are left alone: re-assigning an existing key keeps the old key object, and
    rebuilding the dicts to share keys measured larger, not smaller.)"""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in list(items):
        if isinstance(item, str):
            if len(item) <= 32:
                value[key] = _intern(item)
        elif isinstance(item, dict | list):
            _share_values(item)
