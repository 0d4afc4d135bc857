"""Label and field selectors, parsed once per request and applied to stored objects."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devkit.emulator.errors import bad_request

_REQUIREMENT = re.compile(
    r"""\s*(?:
        (?P<not>!)\s*(?P<nkey>[^\s,=!()]+)                                   # !key
      | (?P<skey>[^\s,=!()]+)\s*(?P<setop>\bin\b|\bnotin\b)\s*\((?P<values>[^)]*)\)  # key in (a,b)
      | (?P<ekey>[^\s,=!()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s,=!()]*)      # key=value
      | (?P<xkey>[^\s,=!()]+)                                               # key (exists)
    )\s*(?:,|$)""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # "!=" and "notin" match objects without the label, as the apiserver does
        return not present or value not in self.values


LabelSelector = tuple[Requirement, ...]


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text:
        return ()
    requirements: list[Requirement] = []
    pos = 0
    while pos < len(text):
        match = _REQUIREMENT.match(text, pos)
        if not match or match.end() == pos:
            raise bad_request(f"unable to parse requirement: invalid label selector {text!r}")
        pos = match.end()
        if match["nkey"]:
            requirements.append(Requirement(match["nkey"], "!"))
        elif match["skey"]:
            values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
            requirements.append(Requirement(match["skey"], match["setop"], values))
        elif match["ekey"]:
            op = "=" if match["op"] in ("=", "==") else "!="
            requirements.append(Requirement(match["ekey"], op, frozenset({match["value"]})))
        else:
            requirements.append(Requirement(match["xkey"], "exists"))
    return tuple(requirements)


def labels_match(selector: LabelSelector, obj: Mapping[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(requirement.matches(labels) for requirement in selector)


FieldSelector = tuple[tuple[str, bool, str], ...]  # (path, equal?, value)


def parse_field_selector(text: str | None, allowed: frozenset[str]) -> FieldSelector:
    """Parse `a=b,c!=d`; fields outside metadata.name/namespace and `allowed` are rejected."""
    if not text:
        return ()
    terms: list[tuple[str, bool, str]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"([^=!]+)(==|=|!=)(.*)", part)
        if not match:
            raise bad_request(f"invalid field selector: {part!r}")
        path, op, value = match.group(1).strip(), match.group(2), match.group(3).strip()
        if path not in ("metadata.name", "metadata.namespace") and path not in allowed:
            raise bad_request(f'field label not supported: {path}')
        terms.append((path, op != "!=", value))
    return tuple(terms)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def fields_match(selector: FieldSelector, obj: Mapping[str, Any]) -> bool:
    return all((_field_value(obj, path) == value) == equal for path, equal, value in selector)


def make_filter(
    namespace: str | None, labels: LabelSelector, fields: FieldSelector
) -> Callable[[Mapping[str, Any]], bool]:
    """One predicate combining namespace scope and both selectors."""

    def accept(obj: Mapping[str, Any]) -> bool:
        if namespace is not None and obj.get("metadata", {}).get("namespace") != namespace:
            return False
        return labels_match(labels, obj) and fields_match(fields, obj)

    return accept
