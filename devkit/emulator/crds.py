"""CustomResourceDefinitions: turning a CRD object into served `ResourceType`s, and reading
CRD YAML from disk (files or directories) so an emulator can start with the project's CRDs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from devkit.emulator.errors import invalid
from devkit.emulator.resources import ResourceType

CRD_API_VERSION = "apiextensions.k8s.io/v1"


def check_crd(crd: dict[str, Any]) -> None:
    """The structural checks that keep a broken CRD from being served."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    name = (crd.get("metadata") or {}).get("name", "")
    errors: list[tuple[str, str]] = []
    for field in ("group",):
        if not spec.get(field):
            errors.append((f"spec.{field}", "Required value"))
    for field in ("plural", "kind"):
        if not names.get(field):
            errors.append((f"spec.names.{field}", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append(("spec.scope", f'Unsupported value: "{spec.get("scope")}": supported '
                                     'values: "Cluster", "Namespaced"'))
    versions = spec.get("versions") or []
    if not versions:
        errors.append(("spec.versions", "Required value"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errors.append(("spec.versions", "Invalid value: must have exactly one version marked "
                                        "as storage version"))
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if not errors and name != expected:
        errors.append(("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."'
                                        "+spec.group"))
    if errors:
        raise invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, errors)


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One `ResourceType` per served version of an (already checked) CRD."""
    spec = crd["spec"]
    names = spec["names"]
    served = tuple(v["name"] for v in spec["versions"] if v.get("served", True))
    types: list[ResourceType] = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        types.append(ResourceType(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec["scope"] == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            status_subresource="status" in (version.get("subresources") or {}),
            builtin=False,
            schema=schema,
            printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            field_selectors=frozenset(
                f["jsonPath"].lstrip(".") for f in version.get("selectableFields") or ()
            ),
            served_versions=served,
        ))
    return types


def established_status(crd: dict[str, Any]) -> dict[str, Any]:
    spec = crd["spec"]
    names = spec["names"]
    accepted = {
        "plural": names["plural"], "singular": names.get("singular") or names["kind"].lower(),
        "kind": names["kind"], "listKind": names.get("listKind") or f"{names['kind']}List",
    }
    for optional in ("shortNames", "categories"):
        if names.get(optional):
            accepted[optional] = names[optional]
    return {
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted"},
        ],
        "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
    }


def _yaml_files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        path = Path(path)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        else:
            yield path


def load_crd_documents(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition document in the given files/directories (others skipped,
    e.g. a kustomization.yaml next to the CRDs)."""
    crds: list[dict[str, Any]] = []
    for file in _yaml_files(paths):
        for document in yaml.safe_load_all(file.read_text()):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                crds.append(document)
    return crds
