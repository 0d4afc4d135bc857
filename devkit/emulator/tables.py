"""Server-side `Table` rendering, which `kubectl get` asks for (Accept: ...;as=Table).

Custom resources use their CRD's additionalPrinterColumns; a few built-ins get the columns
kubectl users expect. JSONPath support covers the forms printer columns use in practice:
`.a.b`, `.a[0]`, `.a[*].b` and `.a[?(@.k=="v")].b`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devkit.emulator.resources import ResourceType

Column = tuple[dict[str, Any], Callable[[dict[str, Any]], Any]]
_STEP = re.compile(r"\.([A-Za-z0-9_\-/]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_\-.]+)\s*==\s*"
                   r"[\"']([^\"']*)[\"']\)\]")


def jsonpath(obj: Any, path: str) -> list[Any]:
    """All values `path` selects in `obj` (empty when nothing matches)."""
    nodes = [obj]
    pos = 0
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    while pos < len(path):
        match = _STEP.match(path, pos)
        if not match:
            return []
        pos = match.end()
        key, index, filter_key, filter_value = match.groups()
        nxt: list[Any] = []
        for node in nodes:
            if key is not None and isinstance(node, dict) and key in node:
                nxt.append(node[key])
            elif index == "*" and isinstance(node, list):
                nxt.extend(node)
            elif index is not None and index != "*" and isinstance(node, list):
                if int(index) < len(node):
                    nxt.append(node[int(index)])
            elif filter_key is not None and isinstance(node, list):
                nxt.extend(item for item in node
                           if isinstance(item, dict)
                           and str(_dig(item, filter_key)) == filter_value)
        nodes = nxt
    return nodes


def _text(value: Any) -> str:
    """Cells show lists and maps as JSON, as the apiserver's JSONPath printer does."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _dig(obj: dict[str, Any], dotted: str) -> Any:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def human_age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<invalid>"
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _col(name: str, kind: str = "string", fmt: str = "", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


def _name(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def _age(obj: dict[str, Any]) -> str:
    return human_age(obj["metadata"].get("creationTimestamp"))


def _service_external(obj: dict[str, Any]) -> str:
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addresses = [i.get("ip") or i.get("hostname") for i in ingress if isinstance(i, dict)]
    if addresses:
        return ",".join(a for a in addresses if a)
    return "<pending>" if obj.get("spec", {}).get("type") == "LoadBalancer" else "<none>"


def _service_ports(obj: dict[str, Any]) -> str:
    ports = obj.get("spec", {}).get("ports") or []
    return ",".join(
        f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/"
        f"{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


_BUILTIN_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "services"): [
        (_col("Type"), lambda o: o.get("spec", {}).get("type", "")),
        (_col("Cluster-IP"), lambda o: o.get("spec", {}).get("clusterIP") or "<none>"),
        (_col("External-IP"), _service_external),
        (_col("Port(s)"), _service_ports),
    ],
    ("", "namespaces"): [(_col("Status"), lambda o: o.get("status", {}).get("phase", ""))],
    ("coordination.k8s.io", "leases"): [
        (_col("Holder"), lambda o: o.get("spec", {}).get("holderIdentity", "")),
    ],
    ("", "events"): [
        (_col("Type"), lambda o: o.get("type", "")),
        (_col("Reason"), lambda o: o.get("reason", "")),
        (_col("Object"), lambda o: f"{o.get('involvedObject', {}).get('kind', '').lower()}/"
                                   f"{o.get('involvedObject', {}).get('name', '')}"),
        (_col("Message"), lambda o: o.get("message", "")),
    ],
}


def _printer_column(spec: dict[str, Any]) -> Column:
    kind = spec.get("type", "string")

    def cell(obj: dict[str, Any]) -> Any:
        values = jsonpath(obj, spec.get("jsonPath", ""))
        if not values:
            return None
        if kind == "date":
            return human_age(str(values[0]))
        if len(values) > 1:
            return ",".join(_text(v) for v in values)
        value = values[0]
        return _text(value) if kind == "string" or isinstance(value, (list, dict)) else value

    definition = _col(spec["name"], "string" if kind == "date" else kind,
                      spec.get("format", ""), spec.get("priority", 0))
    definition["description"] = spec.get("description", spec["name"])
    return definition, cell


def columns_for(rt: ResourceType) -> list[Column]:
    name_col: Column = (_col("Name", fmt="name"), _name)
    age_col: Column = (_col("Age"), _age)
    if rt.printer_columns:
        return [name_col, *(_printer_column(c) for c in rt.printer_columns)]
    return [name_col, *_BUILTIN_COLUMNS.get((rt.group, rt.plural), []), age_col]


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"]}


def to_table(rt: ResourceType, objects: list[dict[str, Any]], resource_version: str,
             include_object: str = "Metadata", list_meta: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    columns = columns_for(rt)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [render(obj) for _, render in columns]}
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version, **(list_meta or {})},
        "columnDefinitions": [definition for definition, _ in columns],
        "rows": rows,
    }


def wants_table(accept: str) -> bool:
    return "as=Table" in accept.replace(" ", "")
