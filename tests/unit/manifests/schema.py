"""Validate custom resources against their CRD the way the API server does, minus the server.

Three steps, in the server's order: apply the schema's defaults, check the OpenAPI v3 schema
(JSON Schema draft 4 semantics: `exclusiveMinimum` is a boolean there), then evaluate every
`x-kubernetes-validations` CEL rule on the value it is attached to. CEL runs on cel-python, which
has the standard CEL functions; the string extension the API server also has (split, trim,
lowerAscii) is added here, with the same meaning.

cel-python has no counterpart of Kubernetes' IP and CIDR library (isIP, isCIDR, ip, cidr; API
servers 1.31+), which the address rules use. Those rules are not evaluated here, and
`kubernetes_only_rules` lists them: tests/integration/operator/test_crd_messages.py runs them on a
real kube-apiserver instead, case by case against the pydantic models.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

from tests.unit.manifests.render import Manifest

Schema = dict[str, Any]


def cel_available() -> bool:
    try:
        import celpy  # noqa: F401
    except ImportError:
        return False
    return True


def jsonschema_available() -> bool:
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        return False
    return True


def served_schema(crd: Manifest) -> Schema:
    """The openAPIV3Schema of the storage version (vipam has one version)."""
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    schema: Schema = version["schema"]["openAPIV3Schema"]
    return schema


def schemas_by_kind(crds: list[Manifest]) -> dict[str, Schema]:
    return {crd["spec"]["names"]["kind"]: served_schema(crd) for crd in crds}


def with_defaults(value: Any, schema: Schema) -> Any:
    """A copy of value with the schema's defaults filled in where a field is absent."""
    value = copy.deepcopy(value)
    _default_in_place(value, schema)
    return value


def _default_in_place(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default_in_place(value[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                if name not in schema.get("properties", {}):
                    _default_in_place(item, extra)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default_in_place(item, schema["items"])


def schema_errors(value: Any, schema: Schema) -> list[str]:
    from jsonschema import Draft4Validator

    validator = Draft4Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(value)
    ]


def rules_with_values(value: Any, schema: Schema, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, rule, value) for every CEL rule whose field is present in value."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path or "<root>", rule["rule"], value
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                yield from rules_with_values(value[name], sub, f"{path}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                if name not in schema.get("properties", {}):
                    yield from rules_with_values(item, extra, f"{path}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from rules_with_values(item, schema["items"], f"{path}[{index}]")


# Functions of Kubernetes' CEL IP and CIDR library (k8s.io/apiserver/pkg/cel/library ip.go,
# cidr.go), called as functions or as methods of their IP and CIDR values.
IP_LIBRARY = re.compile(
    r"\b(isIP|isCIDR|ip|cidr)\(|\.(family|isCanonical|isUnspecified|isLoopback|isLinkLocalMulticast"
    r"|isLinkLocalUnicast|isGlobalUnicast|containsIP|containsCIDR|prefixLength|masked|ip)\("
)


def uses_ip_library(rule: str) -> bool:
    return IP_LIBRARY.search(rule) is not None


def kubernetes_only_rules(value: Any, schema: Schema) -> list[tuple[str, str]]:
    """(path, rule) of the rules on value that cel_errors cannot evaluate (IP library)."""
    return [(path, rule) for path, rule, _ in rules_with_values(value, schema)
            if uses_ip_library(rule)]


def _string_extension() -> dict[str, Callable[..., Any]]:
    """cel-go's strings extension as the API server has it, for the rules that use it."""
    from celpy import celtypes

    def split(text: Any, separator: Any) -> Any:
        return celtypes.ListType([celtypes.StringType(p) for p in str(text).split(str(separator))])

    def trim(text: Any) -> Any:
        return celtypes.StringType(str(text).strip())

    def lower_ascii(text: Any) -> Any:
        return celtypes.StringType(
            "".join(c.lower() if c.isascii() else c for c in str(text))
        )

    return {"split": split, "trim": trim, "lowerAscii": lower_ascii}


def cel_errors(value: Any, schema: Schema) -> list[str]:
    import celpy
    from celpy.adapter import json_to_cel
    from celpy.evaluation import CELEvalError

    env = celpy.Environment()
    functions = _string_extension()
    errors = []
    for path, rule, field in rules_with_values(value, schema):
        if uses_ip_library(rule):
            continue  # see kubernetes_only_rules
        program = env.program(env.compile(rule), functions=functions)
        try:
            result = program.evaluate({"self": json_to_cel(field)})
        except CELEvalError as error:
            # The API server rejects an object whose rule fails to evaluate, too.
            errors.append(f"{path}: rule {rule!r} failed: {error.args[0]}")
            continue
        if not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            errors.append(f"{path}: rule {rule!r} gave {result!r}")
    return errors


def validate(obj: Manifest, schema: Schema) -> list[str]:
    """Everything the API server would reject obj for; an empty list means it would accept it."""
    defaulted = with_defaults(obj, schema)
    return schema_errors(defaulted, schema) + cel_errors(defaulted, schema)
