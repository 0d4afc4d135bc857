"""Mapping request paths onto resource types, namespaces, names and subresources."""

from __future__ import annotations

from dataclasses import dataclass

from devkit.emulator.errors import ApiError
from devkit.emulator.resources import Registry, ResourceType


@dataclass(frozen=True)
class ResourceRoute:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    legacy_watch: bool = False  # /api/v1/watch/... paths

    @property
    def stats_resource(self) -> str:
        return f"{self.rt.plural}/{self.subresource}" if self.subresource else self.rt.plural


def _not_found(path: str) -> ApiError:
    return ApiError(404, f"the server could not find the requested resource ({path})",
                    reason="NotFound")


def parse_resource_path(registry: Registry, path: str) -> ResourceRoute | None:
    """Return the route for a resource path, None for non-resource (discovery) paths."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = bool(rest) and rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = registry.get(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    if not rest:
        raise _not_found(path)
    rt = registry.get(group, version, rest[0])
    if rt is None:
        raise _not_found(path)
    if namespace is not None and not rt.namespaced:
        raise _not_found(path)
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if len(rest) > 3 or (subresource is not None and not (
        subresource == "status" and rt.status_subresource
    ) and not (subresource == "finalize" and rt.plural == "namespaces" and not rt.group)):
        raise _not_found(path)
    if rt.namespaced and name is not None and namespace is None:
        raise _not_found(path)
    return ResourceRoute(rt, namespace, name, subresource, legacy_watch)
