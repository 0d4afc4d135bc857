"""The resource types the emulator serves: built-ins plus whatever CRDs define.

A `ResourceType` carries everything routing, discovery, patching and validation need to know
about a kind, so those modules never special-case names beyond what is declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    builtin: bool = True  # strategic-merge-patch is only defined for built-in types
    schema: dict[str, Any] | None = None  # openAPIV3Schema for custom resources
    printer_columns: tuple[dict[str, Any], ...] = ()
    field_selectors: frozenset[str] = field(default_factory=frozenset)
    # every version the storage is served at; objects are stored once per (group, plural)
    served_versions: tuple[str, ...] = ()
    storage_group: str | None = None  # set when another group's storage holds the objects
    # PUT of a missing object creates it (the registry's AllowCreateOnUpdate)
    create_on_update: bool = False
    # PUT without a resourceVersion is allowed (AllowUnconditionalUpdate); custom resources
    # never allow it
    unconditional_update: bool = True

    @property
    def has_generation(self) -> bool:
        """Whether the server keeps metadata.generation: custom resources and the kinds whose
        registry strategy sets it. Services, Nodes, Leases, Events... carry none (vipam's
        controller once wrote every status because the emulator gave Services one)."""
        return not self.builtin or self.plural in _GENERATION_KINDS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        group = self.group if self.storage_group is None else self.storage_group
        return (group, self.plural)

    @property
    def gvr(self) -> str:
        return f"{self.api_version}/{self.plural}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


_GENERATION_KINDS = frozenset({"customresourcedefinitions", "deployments", "daemonsets"})


def _core(plural: str, kind: str, namespaced: bool, **extra: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, singular=kind.lower(), **extra)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", False, short_names=("ns",), status_subresource=True,
          field_selectors=frozenset({"status.phase"})),
    _core("services", "Service", True, short_names=("svc",), categories=("all",),
          status_subresource=True, create_on_update=True,
          field_selectors=frozenset({"spec.type", "spec.clusterIP"})),
    _core("events", "Event", True, short_names=("ev",), create_on_update=True,
          field_selectors=frozenset({
              "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
          })),
    _core("nodes", "Node", False, short_names=("no",), status_subresource=True,
          field_selectors=frozenset({"spec.unschedulable"})),
    _core("endpoints", "Endpoints", True, short_names=("ep",), create_on_update=True),
    _core("secrets", "Secret", True, field_selectors=frozenset({"type"})),
    _core("configmaps", "ConfigMap", True, short_names=("cm",)),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True,
                 singular="endpointslice"),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, singular="lease",
                 create_on_update=True, unconditional_update=False),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, singular="event",
                 short_names=("ev",), storage_group="", create_on_update=True,
                 field_selectors=frozenset({"reason", "type", "regarding.kind",
                                            "regarding.name", "regarding.namespace"})),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                 "CustomResourceDefinition", False, singular="customresourcedefinition",
                 short_names=("crd", "crds"), status_subresource=True),
    # Stored and served, never acted on (no pods are made): enough for `kubectl apply -k
    # config/` to install the whole product into the emulator.
    _core("serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
    ResourceType("apps", "v1", "deployments", "Deployment", True, singular="deployment",
                 short_names=("deploy",), categories=("all",), status_subresource=True),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True, singular="daemonset",
                 short_names=("ds",), categories=("all",), status_subresource=True),
    *(
        ResourceType("rbac.authorization.k8s.io", "v1", plural, kind, namespaced,
                     singular=kind.lower(), create_on_update=True)
        for plural, kind, namespaced in (
            ("roles", "Role", True), ("rolebindings", "RoleBinding", True),
            ("clusterroles", "ClusterRole", False),
            ("clusterrolebindings", "ClusterRoleBinding", False),
        )
    ),
)


class Registry:
    """The served resource types, looked up by URL parts or by a test's short spelling."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        for rt in BUILTIN_TYPES:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._by_gvr[(rt.group, rt.version, rt.plural)] = rt

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k in self._by_gvr if k[0] == group and k[2] == plural]:
            del self._by_gvr[key]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        return list(self._by_gvr.values())

    def group_versions(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for group, version, _ in self._by_gvr:
            versions = groups.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        return groups

    def resolve(self, spelling: str) -> ResourceType:
        """Accept `v1/services`, `vipam.io/v1alpha1/ippools`, `ippools.vipam.io`, `services`."""
        parts = spelling.strip("/").split("/")
        if len(parts) == 3:
            found = self.get(parts[0], parts[1], parts[2])
        elif len(parts) == 2:
            found = self.get("", parts[0], parts[1])
        else:
            plural, _, group = parts[0].partition(".")
            candidates = [rt for rt in self._by_gvr.values()
                          if rt.plural == plural and (not group or rt.group == group)]
            # prefer the core group for plain names ("events"), then the first served version
            candidates.sort(key=lambda rt: (rt.group != "", rt.group))
            found = candidates[0] if candidates else None
        if found is None:
            raise KeyError(f"no resource type {spelling!r} is served")
        return found
