"""Versions of one stored kind: core/v1 Events and events.k8s.io/v1 Events share storage.

A controller writing events.k8s.io/v1 events and a user running `kubectl get events` (core/v1)
must see the same objects, as on a real cluster; so events are stored in core form and
converted on the way in and out. Other kinds only need their apiVersion rewritten.
"""

from __future__ import annotations

from typing import Any

from devkit.emulator.resources import ResourceType

# (core/v1 field, events.k8s.io/v1 field)
_EVENT_FIELDS = (
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
)


def _is_events_v1(rt: ResourceType) -> bool:
    return rt.group == "events.k8s.io" and rt.plural == "events"


def _rename(obj: dict[str, Any], pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    renamed = dict(obj)
    for _source, target in pairs:
        renamed.pop(target, None)
    for source, target in pairs:
        if source in obj:
            renamed.pop(source, None)
            renamed[target] = obj[source]
    return renamed


def to_storage(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The stored (core) form of an object sent to `rt`."""
    if not _is_events_v1(rt):
        return obj
    core = _rename(obj, tuple((new, old) for old, new in _EVENT_FIELDS))
    core["apiVersion"], core["kind"] = "v1", "Event"
    return core


def served(obj: dict[str, Any], rt: ResourceType) -> dict[str, Any]:
    """A stored object as `rt` shows it."""
    if _is_events_v1(rt) and obj.get("apiVersion") != rt.api_version:
        converted = _rename(obj, _EVENT_FIELDS)
        converted["apiVersion"], converted["kind"] = rt.api_version, rt.kind
        return converted
    if obj.get("apiVersion") == rt.api_version:
        return obj
    return {**obj, "apiVersion": rt.api_version}


def storage_field_path(rt: ResourceType, path: str) -> str:
    """Translate a field-selector path of `rt` into the stored form's path."""
    if not _is_events_v1(rt):
        return path
    head, dot, rest = path.partition(".")
    for core, new in _EVENT_FIELDS:
        if head == new:
            return core + dot + rest
    return path
