"""JSON merge patches (RFC 7386) computed from two versions of an object.

The controller caches only the fields it reads (ccm/kube/transform.py), so it cannot PUT a
cached object back: a PUT replaces what it omits. It sends instead the difference between the
cached object and the one it wants, as a merge patch carrying the cached `resourceVersion`: the
server refuses it with 409 when the object changed meanwhile, exactly as it refuses a stale PUT,
and fields the cache never held are left as the server has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns `old` into `new`: changed keys, removed keys as null, lists
    whole (a merge patch cannot address list items). `{}` when nothing differs."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key, _MISSING)
        if before == value:
            continue
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[key] = merge_diff(before, value)
        else:
            patch[key] = _without_nulls(value)
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def guarded(patch: dict[str, Any], resource_version: str) -> dict[str, Any]:
    """The patch with `metadata.resourceVersion` set: the server's precondition (409 if stale)."""
    meta = dict(patch.get("metadata") or {})
    meta["resourceVersion"] = resource_version
    return {**patch, "metadata": meta}


def _without_nulls(value: Any) -> Any:
    """A new mapping sent whole: a null inside it would mean "delete", so nulls are left out."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


_MISSING = object()
