"""Object storage with the write semantics a controller relies on.

One global resourceVersion counter, optimistic concurrency (409 on a stale version), status
subresource isolation, generation bumps on spec changes only, finalizers holding deletion, and
every committed change recorded in the watch hub. Stored dicts are never mutated after commit,
so watch history and responses can share them.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from devkit.emulator import admission, conversion, crds, shapes, validation
from devkit.emulator.admission import WriteOptions
from devkit.emulator.errors import (
    ApiError,
    DecodeError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
    patch_decode_error,
)
from devkit.emulator.objects import clone
from devkit.emulator.patch import json_patch, merge_patch, strategic_merge_patch
from devkit.emulator.resources import Registry, ResourceType
from devkit.emulator.service_ips import KUBERNETES_SERVICE, ServiceAddresses
from devkit.emulator.watch import Change, WatchHub

ObjKey = tuple[str, str]  # (namespace or "", name)
Predicate = Callable[[Mapping[str, Any]], bool]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self, registry: Registry, hub: WatchHub) -> None:
        self.registry = registry
        self.hub = hub
        self.rv = 0
        self._objects: dict[tuple[str, str], dict[ObjKey, dict[str, Any]]] = {}
        self.service_addresses = ServiceAddresses()
        ns_type = registry.resolve("v1/namespaces")
        for name in SYSTEM_NAMESPACES:
            self.create(ns_type, None, {"metadata": {"name": name}})
        self.create(registry.resolve("v1/services"), "default", KUBERNETES_SERVICE)

    # ------------------------------------------------------------------ reads

    def _bucket(self, rt: ResourceType) -> dict[ObjKey, dict[str, Any]]:
        return self._objects.setdefault(rt.storage_key, {})

    def peek(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._bucket(rt).get((namespace or "", name))

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.peek(rt, namespace, name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return obj

    def select(self, rt: ResourceType, accept: Predicate) -> list[dict[str, Any]]:
        bucket = self._bucket(rt)
        return [bucket[key] for key in sorted(bucket) if accept(bucket[key])]

    # ------------------------------------------------------------------ commit

    def _commit(self, rt: ResourceType, new: dict[str, Any], old: dict[str, Any] | None,
                kind: str) -> dict[str, Any]:
        self.rv += 1
        new["metadata"]["resourceVersion"] = str(self.rv)
        meta = new["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if kind == "DELETED":
            self._bucket(rt).pop(key, None)
        else:
            self._bucket(rt)[key] = new
        self.hub.record(rt.storage_key, Change(self.rv, kind, new, old))
        if _is_services(rt):
            self.service_addresses.note(None if kind == "DELETED" else new, old)
        if kind == "DELETED" and rt.namespaced:
            self._finish_namespace(key[0])  # a terminating namespace goes with its last object
        if rt.group == "apiextensions.k8s.io" and rt.plural == "customresourcedefinitions":
            self._crd_changed(new, kind)
        return new

    # ------------------------------------------------------------------ create

    def create(self, rt: ResourceType, namespace: str | None, body: Any,
               options: WriteOptions | None = None) -> dict[str, Any]:
        options = options or WriteOptions()
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        obj = clone(body)
        self._check_type(rt, obj)
        obj = conversion.to_storage(rt, obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        name = meta.get("name") or ""
        if not name:
            raise invalid(rt.kind, rt.group, "", [("metadata.name", "Required value: name or "
                                                                     "generateName is required")])
        if rt.namespaced:
            self._check_namespace(rt, obj, namespace)
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            # a controller re-creating an object it read must clear this; the real server
            # answers with its storage layer's error, a 500 without a reason
            raise ApiError(500, "resourceVersion should not be set on objects to be created",
                           reason="")
        if self.peek(rt, namespace if rt.namespaced else None, name) is not None:
            raise already_exists(rt.plural, rt.group, name)
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "managedFields"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.status_subresource:
            obj.pop("status", None)  # status is written through /status only
        obj = admission.admit(rt, obj, None, options)
        if _is_services(rt):
            self.service_addresses.allocate(obj, None)
        if options.dry_run:
            return obj
        return self._commit(rt, obj, None, "ADDED")

    def _check_type(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if not rt.builtin:
            _check_custom_type(rt, obj)
        if obj.get("kind", rt.kind) != rt.kind or obj.get("apiVersion", rt.api_version) not in (
            rt.api_version, *(f"{rt.group}/{v}" for v in rt.served_versions)
        ):
            raise bad_request(
                f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                f"expected API version ({rt.api_version})"
                if obj.get("kind", rt.kind) == rt.kind
                else f"the kind in the data ({obj.get('kind')}) does not match {rt.kind}"
            )
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        shapes.check_shape(rt, obj)
        if _is_services(rt):
            # decoding defaults, from the body as sent (before a status write restores spec)
            validation.default_ingress_ip_mode(obj)

    def _check_namespace(self, rt: ResourceType, obj: dict[str, Any],
                         namespace: str | None) -> None:
        meta = obj["metadata"]
        if not namespace:
            raise bad_request("a namespaced resource must be created in a namespace")
        if meta.get("namespace", namespace) != namespace:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        meta["namespace"] = namespace
        ns = self.peek(self.registry.resolve("v1/namespaces"), None, namespace)
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(403, f'{rt.plural} "{meta.get("name")}" is forbidden: unable to '
                                f"create new content in namespace {namespace} because it is "
                                "being terminated", reason="Forbidden")

    # ------------------------------------------------------------------ update / patch

    def update(self, rt: ResourceType, namespace: str | None, name: str, body: Any,
               subresource: str | None = None, options: WriteOptions | None = None
               ) -> dict[str, Any]:
        """PUT. For kinds that allow it (Services, Leases, Events...) a PUT of a missing object
        creates it, whatever resourceVersion it carries, unless it names a uid: then the uid
        precondition fails (409). `update_or_create` tells which happened."""
        return self.update_or_create(rt, namespace, name, body, subresource, options)[0]

    def update_or_create(self, rt: ResourceType, namespace: str | None, name: str, body: Any,
                         subresource: str | None = None, options: WriteOptions | None = None
                         ) -> tuple[dict[str, Any], bool]:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        old = self.peek(rt, namespace, name)
        if old is None and rt.create_on_update and subresource is None:
            meta = body.get("metadata")
            if isinstance(meta, dict) and meta.get("uid"):
                raise conflict(rt.plural, rt.group, name,
                               f"Precondition failed: UID in precondition: {meta['uid']}, "
                               "UID in object meta: ")
            fresh = clone(body)
            if isinstance(fresh.get("metadata"), dict):
                fresh["metadata"].pop("resourceVersion", None)
            return self.create(rt, namespace, fresh, options), True
        if old is None:
            raise not_found(rt.plural, rt.group, name)
        candidate = clone(body)
        self._check_type(rt, candidate)
        if not (rt.unconditional_update and rt.builtin) and not (
                candidate.get("metadata") or {}).get("resourceVersion"):
            raise invalid(rt.plural, rt.group, name, [(
                "metadata.resourceVersion", "Invalid value: 0: must be specified for an update")])
        candidate = conversion.to_storage(rt, candidate)
        return self._replace(rt, old, candidate, subresource, options or WriteOptions()), False

    def patch(self, rt: ResourceType, namespace: str | None, name: str, content_type: str,
              body: Any, subresource: str | None = None, options: WriteOptions | None = None,
              ) -> dict[str, Any]:
        old = self.get(rt, namespace, name)
        base = clone(conversion.served(old, rt))
        if content_type == MERGE_PATCH:
            if not isinstance(body, dict):
                raise bad_request("a merge patch must be a JSON object")
            patched = merge_patch(base, body)
        elif content_type == JSON_PATCH:
            patched = json_patch(base, body)
        elif content_type == STRATEGIC_PATCH:
            if not rt.builtin:
                raise ApiError(415, f'the body of the request was in an unknown format - '
                                    f'accepted media types include: {JSON_PATCH}, {MERGE_PATCH}, '
                                    "application/apply-patch+yaml")
            patched = strategic_merge_patch(base, body, rt.kind)
        else:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted "
                                f"media types include: {JSON_PATCH}, {MERGE_PATCH}, "
                                f"{STRATEGIC_PATCH}")
        if not isinstance(patched, dict):
            raise bad_request("the patched object is not a JSON object")
        try:
            self._check_type(rt, patched)
        except DecodeError as error:
            raise patch_decode_error(patched, error.decoding) from None
        patched = conversion.to_storage(rt, patched)
        return self._replace(rt, old, patched, subresource, options or WriteOptions())

    def _replace(self, rt: ResourceType, old: dict[str, Any], candidate: dict[str, Any],
                 subresource: str | None, options: WriteOptions) -> dict[str, Any]:
        old_meta = old["metadata"]
        name = old_meta["name"]
        meta = candidate.get("metadata")
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if meta.get("name", name) != name:
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the "
                              f"name on the URL ({name})")
        if rt.namespaced and meta.get("namespace", old_meta["namespace"]) != old_meta["namespace"]:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        if meta.get("uid") not in (None, "", old_meta["uid"]):
            raise conflict(rt.plural, rt.group, name, f"Precondition failed: UID in precondition: "
                                                      f"{meta['uid']}, UID in object meta: "
                                                      f"{old_meta['uid']}")
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv not in (None, "") and wanted_rv != old_meta["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        if subresource == "status" and not _status_writes_metadata(rt):
            new = clone(old)  # custom resources: a status write changes status only
            if "status" in candidate:
                new["status"] = candidate["status"]
            else:
                new.pop("status", None)
        else:
            new = candidate
            # the other half: a built-in kind's status write keeps the stored spec (and
            # every field but status and metadata); a main write keeps the stored status
            kept = ({k for k in set(old) | set(new) if k not in ("metadata", "status",
                                                                "apiVersion", "kind")}
                    if subresource == "status" else
                    {"status"} if rt.status_subresource else set())
            for field in kept:
                if field in old:
                    new[field] = clone(old[field])
                else:
                    new.pop(field, None)
            for field in ("uid", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"):
                if field in old_meta:
                    new["metadata"][field] = old_meta[field]
                else:
                    new["metadata"].pop(field, None)
            new["metadata"]["name"] = name
            if rt.namespaced:
                new["metadata"]["namespace"] = old_meta["namespace"]
            new["metadata"].pop("managedFields", None)
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if old_meta.get("deletionTimestamp"):
            added = set(new["metadata"].get("finalizers") or []) - set(
                old_meta.get("finalizers") or [])
            if added:
                raise invalid(rt.kind, rt.group, name, [(
                    "metadata.finalizers",
                    f"Forbidden: no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {sorted(added)}")])
        new = admission.admit(rt, new, old, options)
        if _is_services(rt):
            self.service_addresses.allocate(new, old)
        if new == old:
            return old  # a no-op write changes nothing, not even the resourceVersion
        if rt.has_generation and _spec_changed(rt, old, new):
            new["metadata"]["generation"] = old_meta.get("generation", 1) + 1
        if options.dry_run:
            return new
        if old_meta.get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._commit(rt, new, old, "DELETED")
        return self._commit(rt, new, old, "MODIFIED")

    # ------------------------------------------------------------------ delete

    def delete(self, rt: ResourceType, namespace: str | None, name: str,
               options: Mapping[str, Any] | None = None, dry_run: bool = False,
               ) -> tuple[dict[str, Any], bool]:
        """Delete or, with finalizers, mark for deletion. Returns (object, gone_now)."""
        old = self.get(rt, namespace, name)
        preconditions = (options or {}).get("preconditions") or {}
        meta = old["metadata"]
        if preconditions.get("uid") not in (None, meta["uid"]):
            raise conflict(rt.plural, rt.group, name,
                           f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                           f"UID in object meta: {meta['uid']}")
        if preconditions.get("resourceVersion") not in (None, meta["resourceVersion"]):
            raise conflict(rt.plural, rt.group, name,
                           f"Precondition failed: ResourceVersion in precondition: "
                           f"{preconditions['resourceVersion']}, ResourceVersion in object "
                           f"meta: {meta['resourceVersion']}")
        if rt.group == "" and rt.plural == "namespaces":
            return self._delete_namespace(rt, old, dry_run)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp") or dry_run:
                return old, False
            marked = clone(old)
            marked["metadata"]["deletionTimestamp"] = now_rfc3339()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            return self._commit(rt, marked, old, "MODIFIED"), False
        if dry_run:
            return old, True
        return self._commit(rt, clone(old), old, "DELETED"), True

    def _delete_namespace(self, rt: ResourceType, ns: dict[str, Any],
                          dry_run: bool) -> tuple[dict[str, Any], bool]:
        """Delete everything inside, then the namespace itself once nothing is left (objects
        with finalizers keep it Terminating until they are released)."""
        name = ns["metadata"]["name"]
        if dry_run:
            return ns, False
        if not ns["metadata"].get("deletionTimestamp"):
            marked = clone(ns)
            marked["metadata"]["deletionTimestamp"] = now_rfc3339()
            marked["status"] = {**(marked.get("status") or {}), "phase": "Terminating"}
            ns = self._commit(rt, marked, ns, "MODIFIED")
        for inner in [t for t in self._unique_types() if t.namespaced]:
            for key in [k for k in self._bucket(inner) if k[0] == name]:
                self.delete(inner, name, key[1])
        return self._finish_namespace(name) or ns, self.peek(rt, None, name) is None

    def _finish_namespace(self, name: str) -> dict[str, Any] | None:
        ns_type = self.registry.resolve("v1/namespaces")
        ns = self.peek(ns_type, None, name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        if any(k[0] == name for t in self._unique_types() if t.namespaced
               for k in self._bucket(t)):
            return None
        return self._commit(ns_type, clone(ns), ns, "DELETED")

    def _unique_types(self) -> list[ResourceType]:
        seen: dict[tuple[str, str], ResourceType] = {}
        for rt in self.registry.all():
            seen.setdefault(rt.storage_key, rt)
        return list(seen.values())

    # ------------------------------------------------------------------ CRDs

    def _crd_changed(self, crd: dict[str, Any], kind: str) -> None:
        spec = crd["spec"]
        group, plural = spec["group"], spec["names"]["plural"]
        self.registry.remove_group_resource(group, plural)
        if kind == "DELETED":
            for obj in list(self._objects.pop((group, plural), {}).values()):
                self.rv += 1
                gone = clone(obj)
                gone["metadata"]["resourceVersion"] = str(self.rv)
                self.hub.record((group, plural), Change(self.rv, "DELETED", gone, obj))
            return
        for rt in crds.resource_types(crd):
            self.registry.add(rt)


def _check_custom_type(rt: ResourceType, obj: dict[str, Any]) -> None:
    """A custom resource is decoded without a Go type to fall back on: its body must name
    its kind and apiVersion (built-in kinds take them from the URL)."""
    versions = (rt.api_version, *(f"{rt.group}/{v}" for v in rt.served_versions))
    if not obj.get("kind"):
        text = json.dumps(obj, separators=(",", ":"))
        raise bad_request(f"the object provided is unrecognized (must be of type {rt.kind}): "
                          f"Object 'Kind' is missing in '{text}' ({text[:30]} ...)")
    if obj.get("apiVersion") not in versions:
        raise bad_request(f"the API version in the data ({obj.get('apiVersion') or ''}) does "
                          f"not match the expected API version ({rt.api_version})")
    if obj["kind"] != rt.kind:
        name = (obj.get("metadata") or {}).get("name", "") if isinstance(
            obj.get("metadata"), dict) else ""
        raise invalid(obj["kind"], rt.group, name, [
            ("kind", f'Invalid value: "{obj["kind"]}": must be {rt.kind}')])


def _status_writes_metadata(rt: ResourceType) -> bool:
    """Built-in kinds' status strategies reset only spec: labels, annotations and finalizers
    sent to /status are written (a Service's too). Custom resources and CRDs keep status only."""
    return rt.builtin and rt.plural != "customresourcedefinitions"


def _is_services(rt: ResourceType) -> bool:
    return rt.builtin and rt.group == "" and rt.plural == "services"


def _spec_changed(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> bool:
    ignored = {"metadata", "status"} if rt.status_subresource else {"metadata"}
    return any(old.get(k) != new.get(k) for k in (set(old) | set(new)) - ignored)
