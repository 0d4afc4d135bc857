"""Create-or-update of plain manifests, for the playground and tests (a tiny `kubectl apply`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ccm.kube import resources as r
from ccm.kube.client import JSON, ApiError, KubeClient

KINDS: dict[tuple[str, str], r.Resource] = {
    (res.api_version, res.kind): res
    for res in (
        r.SERVICES, r.NAMESPACES, r.NODES, r.EVENTS, r.SECRETS, r.ENDPOINTSLICES, r.LEASES,
        r.IPPOOLS, r.L2ADVERTISEMENTS, r.BGPADVERTISEMENTS, r.BGPPEERS,
    )
}


def load_manifests(paths: Iterable[Path]) -> list[JSON]:
    """Every document of every YAML file (directories: their *.yaml, sorted), kustomization
    files skipped."""
    documents: list[JSON] = []
    for path in paths:
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            if file.name == "kustomization.yaml":
                continue
            documents.extend(d for d in yaml.safe_load_all(file.read_text()) if d)
    return documents


async def apply(client: KubeClient, obj: JSON) -> JSON:
    """Create the object, or replace it (keeping its resourceVersion) when it exists."""
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    res = KINDS.get(key)
    if res is None:
        raise ValueError(f"don't know how to apply {key[1]} ({key[0]})")
    meta: dict[str, Any] = obj.setdefault("metadata", {})
    namespace = meta.get("namespace") or ("default" if res.namespaced else None)
    if res.namespaced:
        meta["namespace"] = namespace
    try:
        return await client.create(res, namespace, obj)
    except ApiError as exc:
        if exc.status != 409:
            raise
    current = await client.get(res, namespace, meta["name"])
    meta["resourceVersion"] = current["metadata"]["resourceVersion"]
    return await client.replace(res, namespace, meta["name"], obj)
