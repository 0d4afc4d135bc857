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
            current = result.get(target) or []
            if not isinstance(current, list):  # as apimachinery: a bad argument type
                raise bad_request(f"invalid patch: {target} is not a list of primitives")
            result[target] = [item for item in current if item not in drop]
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
            order = patch.get(f"$setElementOrder/{key}")
            result[key] = _merge_list(result.get(key), value, child_path, keys,
                                      order if isinstance(order, list) else None)
        else:
            result[key] = clone(value)
    for key, value in patch.items():
        ordered = key.split("/", 1)[1] if key.startswith("$setElementOrder/") else None
        if ordered is not None and ordered not in clean:  # only an order, no items to merge
            result[ordered] = _merge_list(result.get(ordered), [], (*path, ordered), keys,
                                          value if isinstance(value, list) else None)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _identity(item: Any, merge_key: tuple[tuple[str, Any], ...]) -> Any:
    if not isinstance(item, dict):
        return None
    identity = tuple(item.get(name, default) for name, default in merge_key)
    if any(isinstance(value, (dict, list)) for value in identity):
        raise bad_request(f"invalid patch: a merge key must be a scalar: {identity!r}")
    return identity


def _merge_list(original: Any, patch: list[Any], path: Path, keys: dict[Path, Any],
                order: list[Any] | None = None) -> list[Any]:
    """Merge a patch list into the original. Atomic lists (no merge key) are replaced whole,
    directives and all, as upstream does. Merged lists come out in upstream's order: the
    patch's items in patch order (or `$setElementOrder`'s), the original's other items in
    their order, interleaved where the original orders both (mergeSortedSlice)."""
    merge_key = keys.get(path)
    if merge_key is None:
        return clone(patch)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [clone(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]

    def ident(item: Any) -> Any:
        if merge_key != SET:
            return _identity(item, merge_key)
        if isinstance(item, (dict, list)):
            raise bad_request(f"invalid patch: {'.'.join(path)} items must be scalars")
        return item

    base = list(original) if isinstance(original, list) else []
    merged: dict[Any, Any] = {}  # identity -> merged item, for the patch's items
    deleted: set[Any] = set()
    for item in patch:
        if merge_key != SET and not isinstance(item, dict):
            raise bad_request(f"invalid patch: {'.'.join(path)} items must be objects")
        identity = ident(item)
        if isinstance(item, dict) and item.get("$patch") == "delete":
            deleted.add(identity)
            continue
        current = next((o for o in base if ident(o) == identity), None)
        if merge_key == SET or current is None:
            merged[identity] = clone(item if merge_key == SET else {
                k: v for k, v in item.items() if not k.startswith("$")})
        else:
            combined = _merge_map(current, item, path, keys)
            if combined is None:
                deleted.add(identity)
            else:
                merged[identity] = combined
    server_order = [ident(o) for o in base]
    if order is not None:  # $setElementOrder: it decides which items count as the patch's
        wanted = [ident(o) for o in order]
        everything = {**{ident(o): o for o in base}, **merged}
        patch_items = [everything[i] for i in dict.fromkeys(wanted) if i in everything
                       and i not in deleted]
        server_only = [o for o in base if ident(o) not in wanted and ident(o) not in deleted]
        server_only += [m for i, m in merged.items() if i not in wanted
                        and i not in server_order]
    else:
        patch_items = list(merged.values())
        server_only = [o for o in base if ident(o) not in merged and ident(o) not in deleted]
    return _merge_sorted(server_only, patch_items, server_order, ident)


def _merge_sorted(left: list[Any], right: list[Any], server_order: list[Any],
                  ident: Any) -> list[Any]:
    """apimachinery's mergeSortedSlice: insert the original-only items (left) into the patch's
    (right), keeping each list's own order; a left item goes first only when the original
    lists both items and has it first."""
    def position(item: Any) -> int:
        key = ident(item)
        return server_order.index(key) if key in server_order else -1

    result: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            result.append(left[i])
            i += 1
        elif i >= len(left):
            result.append(right[j])
            j += 1
        else:
            li, ri = position(left[i]), position(right[j])
            if li >= 0 and ri >= 0 and li < ri:
                result.append(left[i])
                i += 1
            else:
                result.append(right[j])
                j += 1
    return result
