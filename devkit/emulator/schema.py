"""Structural-schema handling for custom resources: defaulting, pruning and validation.

A real apiserver prunes fields the CRD schema does not declare and applies `default`s before
validating; a controller that writes an undeclared field must see it disappear here too.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any

from devkit.emulator.objects import clone

Errors = list[tuple[str, str]]
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def default_and_prune(value: Any, schema: dict[str, Any], dropped: list[str] | None = None,
                      path: str = "") -> Any:
    """Return `value` with schema defaults filled in and undeclared object fields dropped;
    the paths of dropped fields are appended to `dropped` (for fieldValidation)."""
    if isinstance(value, dict) and schema.get("type", "object") == "object":
        properties: dict[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        keep_unknown = (bool(schema.get("x-kubernetes-preserve-unknown-fields"))
                        or additional is True)
        result: dict[str, Any] = {}
        for key, child in value.items():
            where = _join(path, key)
            if key in properties:
                result[key] = default_and_prune(child, properties[key], dropped, where)
            elif isinstance(additional, dict):
                result[key] = default_and_prune(child, additional, dropped, where)
            elif keep_unknown or (not properties and additional is None and _opaque(schema)):
                result[key] = child
            elif dropped is not None:
                dropped.append(where)
        for key, child_schema in properties.items():
            if key not in result and "default" in child_schema:
                default = clone(child_schema["default"])
                result[key] = default_and_prune(default, child_schema)
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [default_and_prune(item, schema["items"], dropped, f"{path}[{index}]")
                for index, item in enumerate(value)]
    return value


def _opaque(schema: dict[str, Any]) -> bool:
    """An object schema with no properties at all (e.g. `metadata: {type: object}`) keeps data."""
    return "properties" not in schema and "additionalProperties" not in schema


def validate(value: Any, schema: dict[str, Any], path: str = "") -> Errors:
    errors: Errors = []
    _validate(value, schema, path, errors)
    return errors


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    expected = schema.get("type")
    if not expected:
        return True
    if expected in ("integer", "number") and isinstance(value, bool):
        return False
    if expected == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(expected, (object,)))


def _validate(value: Any, schema: dict[str, Any], path: str, errors: Errors) -> None:
    where = path or "<root>"
    if value is None:
        if not schema.get("nullable"):
            errors.append((where, f"Invalid value: \"null\": {where} in body must be of type "
                                  f"{schema.get('type', 'object')}: \"null\""))
        return
    if not _type_ok(value, schema):
        errors.append((where, f"Invalid value: {_show(value)}: {where} in body must be of type "
                              f"{schema.get('type')}: {_show(type(value).__name__)}"))
        return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(_show(v) for v in schema["enum"])
        errors.append((where, f"Unsupported value: {_show(value)}: supported values: {allowed}"))
    if isinstance(value, str):
        _validate_string(value, schema, where, errors)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _validate_number(value, schema, where, errors)
    elif isinstance(value, list):
        _validate_array(value, schema, path, errors)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, errors)
    _validate_combinators(value, schema, path, errors)


def _validate_string(value: str, schema: dict[str, Any], where: str, errors: Errors) -> None:
    if "pattern" in schema and not _compiled(schema["pattern"]).search(value):
        errors.append((where, f"Invalid value: {_show(value)}: {where} in body should match "
                              f"'{schema['pattern']}'"))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append((where, f"Too long: may not be more than {schema['maxLength']} bytes"))
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append((where, f"Invalid value: {_show(value)}: {where} in body should be at "
                              f"least {schema['minLength']} chars long"))
    fmt = schema.get("format")
    if fmt and not _format_ok(value, fmt):
        errors.append((where, f"Invalid value: {_show(value)}: {where} in body must be of "
                              f"type {fmt}: {_show(value)}"))


_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _validate_number(value: float, schema: dict[str, Any], where: str, errors: Errors) -> None:
    low_high = _INT_RANGES.get(schema.get("format", ""))
    if low_high and not low_high[0] <= value <= low_high[1]:
        # kube-apiserver 1.36 reports this one without a field path ("<nil>") and with an
        # empty value, naming the field in the message only; reproduced as it is
        errors.append(("<nil>", f'Invalid value: "": Checked value must be of type integer '
                                f"with format {schema['format']} in {where}"))
    if "minimum" in schema:
        low = schema["minimum"]
        if value < low or (schema.get("exclusiveMinimum") is True and value == low):
            errors.append((where, f"Invalid value: {value}: {where} in body should be "
                                  f"greater than or equal to {low}"))
    if "maximum" in schema:
        high = schema["maximum"]
        if value > high or (schema.get("exclusiveMaximum") is True and value == high):
            errors.append((where, f"Invalid value: {value}: {where} in body should be less "
                                  f"than or equal to {high}"))


def _validate_array(value: list[Any], schema: dict[str, Any], path: str, errors: Errors) -> None:
    where = path or "<root>"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append((where, f"Too many: {len(value)}: must have at most "
                              f"{schema['maxItems']} items"))
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append((where, f"Invalid value: {len(value)}: {where} in body should have at "
                              f"least {schema['minItems']} items"))
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _validate(item, items, f"{path}[{index}]", errors)
    list_type = schema.get("x-kubernetes-list-type")
    if list_type in ("set", "map"):
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen: list[Any] = []
        for index, item in enumerate(value):
            identity = item
            if list_type == "map" and isinstance(item, dict):
                identity = {k: item.get(k) for k in keys}
            if identity in seen:
                errors.append((f"{path}[{index}]", f"Duplicate value: {_show(identity)}"))
            seen.append(identity)


def _validate_object(value: dict[str, Any], schema: dict[str, Any], path: str,
                     errors: Errors) -> None:
    for name in schema.get("required") or []:
        if name not in value:
            errors.append((_join(path, name), "Required value"))
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, child in value.items():
        if key in properties:
            _validate(child, properties[key], _join(path, key), errors)
        elif isinstance(additional, dict):
            _validate(child, additional, _join(path, key), errors)
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append((path or "<root>", f"Too many: {len(value)}: must have at most "
                                         f"{schema['maxProperties']} items"))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errors.append((path or "<root>", f"Invalid value: {len(value)}: should have at least "
                                         f"{schema['minProperties']} properties"))


def _validate_combinators(value: Any, schema: dict[str, Any], path: str, errors: Errors) -> None:
    for sub in schema.get("allOf") or []:
        _validate(value, {**sub, "nullable": True}, path, errors)
    if schema.get("anyOf"):
        if not any(not validate(value, sub, path) for sub in schema["anyOf"]):
            errors.append((path or "<root>", "Invalid value: must validate at least one schema "
                                             "(anyOf)"))
    if schema.get("oneOf"):
        passing = sum(1 for sub in schema["oneOf"] if not validate(value, sub, path))
        if passing != 1:
            errors.append((path or "<root>", "Invalid value: must validate one and only one "
                                             "schema (oneOf)"))
    if isinstance(schema.get("not"), dict) and not validate(value, schema["not"], path):
        errors.append((path or "<root>", "Invalid value: must not validate the schema (not)"))


def _format_ok(value: str, fmt: str) -> bool:
    try:
        if fmt == "ipv4":
            ipaddress.IPv4Address(value)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(value)
        elif fmt == "ip":
            ipaddress.ip_address(value)
        elif fmt == "cidr":
            ipaddress.ip_network(value, strict=False)
        elif fmt == "date-time":
            return _DATE_TIME.fullmatch(value) is not None
        else:
            return True  # formats the apiserver does not check (or we do not know) pass
    except ValueError:
        return False
    return True


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)
