"""Defaulting and validation of every write, built-in or custom, before it is stored."""

from __future__ import annotations

import dataclasses
from typing import Any

from devkit.emulator import crds, schema, validation
from devkit.emulator.errors import bad_request, invalid
from devkit.emulator.resources import ResourceType


@dataclasses.dataclass
class WriteOptions:
    """Per-request write settings: dryRun=All, fieldValidation, and the warnings to return."""

    dry_run: bool = False
    field_validation: str = "Warn"  # Ignore | Warn | Strict, the apiserver's default is Warn
    warnings: list[str] = dataclasses.field(default_factory=list)


def admit(rt: ResourceType, obj: dict[str, Any],
          old: dict[str, Any] | None, options: WriteOptions) -> dict[str, Any]:
    """Default and validate an object about to be stored (what admission and the registry
    strategies do on a real apiserver); returns the object to store, raises 422/400."""
    if rt.builtin:
        if rt.group == "" and rt.plural == "services":
            if old is not None:
                for field in ("ipFamilies", "ipFamilyPolicy", "clusterIP", "clusterIPs"):
                    if field in old.get("spec", {}) and field not in obj.get("spec", {}):
                        obj.setdefault("spec", {})[field] = old["spec"][field]
                validation.drop_type_dependent_fields(obj, old)
            validation.default_service(obj)
        if rt.group == "" and rt.plural == "namespaces":
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {}).setdefault("phase", "Active")
        if rt.plural == "customresourcedefinitions":
            crds.check_crd(obj)
            obj["status"] = {**(obj.get("status") or {}), **crds.established_status(obj)}
        validation.check_builtin(rt, obj, old)
        return obj
    errors = validation.validate_metadata(rt, obj)
    if rt.schema is not None:
        meta = obj["metadata"]
        dropped: list[str] = []
        obj = schema.default_and_prune(obj, rt.schema, dropped)
        dropped = [d for d in dropped if d.split(".")[0] not in ("metadata", "apiVersion",
                                                                  "kind")]
        _report_unknown_fields(rt, dropped, options)
        obj["metadata"] = meta
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        body = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
        errors += schema.validate(body, {**rt.schema, "required": [
            r for r in rt.schema.get("required") or [] if r not in ("metadata", "apiVersion",
                                                                    "kind")]})
    if errors:
        raise invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), errors)
    return obj


def _report_unknown_fields(rt: ResourceType, dropped: list[str], options: WriteOptions) -> None:
    """fieldValidation: Strict rejects fields the schema would prune, Warn reports them."""
    if not dropped or options.field_validation == "Ignore":
        return
    unknown = [f'unknown field "{path}"' for path in dropped]
    if options.field_validation == "Strict":
        raise bad_request(f"{rt.kind} in version \"{rt.version}\" cannot be handled as a "
                          f"{rt.kind}: strict decoding error: {', '.join(unknown)}")
    options.warnings.extend(unknown)
