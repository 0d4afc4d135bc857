"""The three PATCH flavours: JSON merge patch, JSON patch (RFC 6902) and strategic merge patch.

Strategic merge needs per-kind list metadata (which lists merge by key, which merge as sets);
those are declared in `MERGE_KEYS` and only exist for built-in kinds, as on a real apiserver.
Lists not declared there are atomic (a patch replaces them whole). That includes
Service `status.loadBalancer.ingress`: upstream declares no merge key for it (listType=atomic),
so a controller must always send the full list, and this emulator holds it to that.
Service ports merge by (port, protocol), the key server-side apply uses; upstream's strategic
merge keys them by port alone, which mangles a TCP+UDP pair on the same port.
"""

from __future__ import annotations

from typing import Any

from devkit.emulator.errors import ApiError, bad_request
from devkit.emulator.objects import clone

Path = tuple[str, ...]
# A merge key: a tuple of field names (with a default per field) or SET for primitive lists.
SET: tuple[tuple[str, Any], ...] = ()
_COMMON: dict[Path, tuple[tuple[str, Any], ...]] = {
    ("metadata", "finalizers"): SET,
    ("metadata", "ownerReferences"): (("uid", None),),
}
_CONDITIONS: dict[Path, tuple[tuple[str, Any], ...]] = {
    ("status", "conditions"): (("type", None),),
}
MERGE_KEYS: dict[str, dict[Path, tuple[tuple[str, Any], ...]]] = {
    "Service": {
        ("spec", "ports"): (("port", None), ("protocol", "TCP")),
        **_CONDITIONS,
    },
    "Node": {**_CONDITIONS, ("status", "addresses"): (("type", None),)},
    "Namespace": _CONDITIONS,
    "CustomResourceDefinition": _CONDITIONS,
}


def merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------------------- JSON patch (RFC 6902)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        node = _child(node, part, path)
    return node, parts[-1]


def _child(node: Any, part: str, path: str) -> Any:
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    raise ApiError(422, f"the server rejected our request: path {path!r} does not exist")


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise ApiError(422, f"the server rejected our request: index {path!r} out of range")
    else:
        raise ApiError(422, f"the server rejected our request: cannot add at {path!r}")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    parts = _pointer(path)
    if not parts:
        raise ApiError(422, "the server rejected our request: cannot remove the whole document")
    parent, last = _parent(doc, parts, path)
    value = _child(parent, last, path)
    if isinstance(parent, dict):
        del parent[last]
    else:
        del parent[int(last)]
    return doc, value


def json_patch(original: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    doc = clone(original)
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(
                op.get("path"), str) or not isinstance(op.get("from", ""), str):
            raise bad_request(f"invalid json patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, clone(op.get("value")))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc, _ = _remove(doc, path)
            doc = _add(doc, path, clone(op.get("value")))
        elif kind in ("move", "copy") and "from" not in op:
            raise bad_request(f"json patch {kind} needs a 'from' path: {op!r}")
        elif kind == "move":
            doc, value = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "copy":
            value = _resolve(doc, op["from"])
            doc = _add(doc, path, clone(value))
        elif kind == "test":
            if _resolve(doc, path) != op.get("value"):
                raise ApiError(
                    422, f"the server rejected our request: test operation on {path!r} failed"
                )
        else:
            raise bad_request(f"unknown json patch operation {kind!r}")
    return doc


def _resolve(doc: Any, path: str) -> Any:
    node = doc
    for part in _pointer(path):
        node = _child(node, part, path)
    return node


# ---------------------------------------------------------------- strategic merge patch


def strategic_merge_patch(original: dict[str, Any], patch: Any, kind: str) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    keys = {**_COMMON, **MERGE_KEYS.get(kind, {})}
    result = _merge_map(original, patch, (), keys)
    return result if isinstance(result, dict) else {}


def _merge_map(
    original: Any, patch: dict[str, Any], path: Path, keys: dict[Path, Any]
) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    clean = {k: v for k, v in patch.items() if not k.startswith("$")}
    if directive == "replace":
        return clone(clean)
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            target = key.split("/", 1)[1]
            drop = value if isinstance(value, list) else []
            result[target] = [item for item in result.get(target) or [] if item not in drop]
    for key, value in clean.items():
        child_path = (*path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _merge_map(result.get(key), value, child_path, keys)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, child_path, keys)
        else:
            result[key] = clone(value)
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            target = key.split("/", 1)[1]
            result[target] = _reorder(result.get(target), value, keys.get((*path, target)))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _identity(item: Any, merge_key: tuple[tuple[str, Any], ...]) -> Any:
    if not isinstance(item, dict):
        return None
    return tuple(item.get(name, default) for name, default in merge_key)


def _merge_list(original: Any, patch: list[Any], path: Path, keys: dict[Path, Any]) -> list[Any]:
    merge_key = keys.get(path)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [clone(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if merge_key is None:
        return clone(patch)
    base = list(original) if isinstance(original, list) else []
    if merge_key == SET:
        return base + [clone(item) for item in patch if item not in base]
    for item in patch:
        identity = _identity(item, merge_key)
        index = next((i for i, o in enumerate(base) if _identity(o, merge_key) == identity), None)
        if isinstance(item, dict) and item.get("$patch") == "delete":
            if index is not None:
                del base[index]
            continue
        if index is None:
            base.append(clone({k: v for k, v in item.items() if not k.startswith("$")}))
        else:
            merged = _merge_map(base[index], item, path, keys)
            if merged is not None:
                base[index] = merged
    return base


def _reorder(current: Any, order: Any, merge_key: Any) -> Any:
    """Apply `$setElementOrder`: listed elements first, in the given order, others after."""
    if not isinstance(current, list) or not isinstance(order, list):
        return current

    def ident(item: Any) -> Any:
        return item if merge_key in (None, SET) else _identity(item, merge_key)

    wanted = [ident(item) for item in order]

    def rank(item: Any) -> int:
        return wanted.index(ident(item)) if ident(item) in wanted else len(wanted)

    return sorted(current, key=rank)
