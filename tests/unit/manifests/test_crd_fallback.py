"""config/crd-pre-1.31: the CRDs for API servers without CEL's IP and CIDR library (1.29, 1.30).

The address rules of config/crd call isIP, isCIDR, ip() and cidr(), which an older server does
not know: it refuses such a CRD outright. The Component swaps exactly those rules for one rule in
standard CEL (`matches`) with the same words. Checked here: nothing else differs, nothing of the
library is left, the fallback never refuses what the controller's model accepts (the model then
reports what the fallback lets through), and it refuses junk in words. The real server runs the
fallback too (tests/integration/operator/test_crd_messages.py).
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pools.addresses import AddressError, parse_token
from tests.prereq import require
from tests.unit.manifests import schema as crdschema
from tests.unit.manifests.render import CONFIG, Manifest, of_kind, render, render_with_component
from tests.unit.manifests.walk import Schema, at, nodes

COMPONENT = CONFIG / "crd-pre-1.31"
# (kind, field whose rules the fallback replaces)
SWAPPED = [
    ("IPPool", "spec.addresses.[]"),
    ("IPPool", "spec.exclude.[]"),
    ("BGPPeer", "spec.address"),
    ("BGPPeer", "spec.sourceAddress"),
]
# What CEL environments newer than 1.29 added besides the IP and CIDR library (format, semver,
# image, two-variable comprehensions): the fallback must not need any of it either.
NEWER_THAN_1_29 = (".format(", "semver(", "isSemver(", "image(", "isImage(", "transformList(",
                   "transformMap(", "existsOne(")


@pytest.fixture(scope="module")
def schemas(install: tuple[Manifest, ...]) -> tuple[dict[str, Schema], dict[str, Schema]]:
    """(config/crd, config/crd with the Component) schemas by kind."""
    def by_kind(objects: tuple[Manifest, ...]) -> dict[str, Schema]:
        return crdschema.schemas_by_kind(of_kind(objects, "CustomResourceDefinition"))

    return by_kind(render(CONFIG / "crd")), by_kind(render_with_component(CONFIG / "crd",
                                                                          COMPONENT))


def _rules(schema: Schema) -> list[tuple[str, str]]:
    return [(path, rule["rule"]) for path, node in nodes(schema)
            for rule in node.get("x-kubernetes-validations", [])]


def test_only_the_address_rules_differ(
    schemas: tuple[dict[str, Schema], dict[str, Schema]],
) -> None:
    main, fallback = schemas
    assert set(main) == set(fallback) == {"IPPool", "BGPPeer", "BGPAdvertisement",
                                          "L2Advertisement"}
    for kind in main:
        stripped = [copy.deepcopy(main[kind]), copy.deepcopy(fallback[kind])]
        for swapped_kind, field in SWAPPED:
            if swapped_kind == kind:
                before, after = (at(s, field)["x-kubernetes-validations"] for s in stripped)
                assert before != after, f"{kind} {field} is not swapped"
                for schema in stripped:
                    del at(schema, field)["x-kubernetes-validations"]
        assert stripped[0] == stripped[1], f"{kind}: the fallback differs beyond the swap"


def test_the_ip_library_is_gone_and_was_only_where_swapped(
    schemas: tuple[dict[str, Schema], dict[str, Schema]],
) -> None:
    main, fallback = schemas
    for kind, schema in fallback.items():
        for path, rule in _rules(schema):
            assert not crdschema.uses_ip_library(rule), f"{kind} {path}: {rule}"
            assert not any(name in rule for name in NEWER_THAN_1_29), f"{kind} {path}: {rule}"
    swapped = {(kind, "." + field.replace(".[]", "[]")) for kind, field in SWAPPED}
    library_users = {(kind, path) for kind, schema in main.items()
                     for path, rule in _rules(schema) if crdschema.uses_ip_library(rule)}
    assert library_users == swapped


class Compiled:
    """The fallback's address rules, compiled once (cel-python compiles slowly)."""

    def __init__(self, fallback: dict[str, Schema]) -> None:
        import celpy

        env = celpy.Environment()
        self.programs: dict[tuple[str, str], Any] = {}
        for kind, field in SWAPPED:
            (rule,) = at(fallback[kind], field)["x-kubernetes-validations"]
            self.programs[(kind, field)] = env.program(env.compile(rule["rule"]))

    def admits(self, kind: str, field: str, value: str) -> bool:
        from celpy import celtypes
        from celpy.adapter import json_to_cel

        result = self.programs[(kind, field)].evaluate({"self": json_to_cel(value)})
        return isinstance(result, celtypes.BoolType) and bool(result)

    def __repr__(self) -> str:
        return "Compiled(fallback address rules)"


@pytest.fixture(scope="module")
def compiled(schemas: tuple[dict[str, Schema], dict[str, Schema]]) -> Compiled:
    require(crdschema.cel_available(), "cel-python is not installed")
    return Compiled(schemas[1])


def _accepted(text: str, allow_single: bool) -> bool:
    try:
        parse_token(text, allow_single=allow_single)
    except AddressError:
        return False
    return True


network = st.one_of(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
        lambda t: ipaddress.ip_network((ipaddress.IPv4Address(t[0]), t[1]), strict=False)
    ),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
        lambda t: ipaddress.ip_network((ipaddress.IPv6Address(t[0]), t[1]), strict=False)
    ),
)
entry_text = st.one_of(
    network.map(str),
    network.map(lambda n: f"{n.network_address}"),
    network.map(lambda n: n.network_address.exploded),
    st.tuples(network, st.sampled_from(["-", " - ", "- ", "\t-"])).map(
        lambda t: f"{t[0][0]}{t[1]}{t[0][-1]}"
    ),
    st.text(alphabet="0123456789abcdefABCDEF.:/- ", max_size=24),
)


@given(entry_text)
def test_what_the_model_accepts_the_fallback_admits(compiled: Compiled, text: str) -> None:
    """Never stricter than the model: a pool the controller would use is never refused."""
    if _accepted(text, allow_single=False):
        assert compiled.admits("IPPool", "spec.addresses.[]", text), text
    if _accepted(text, allow_single=True):
        assert compiled.admits("IPPool", "spec.exclude.[]", text), text
        if "/" not in text and "-" not in text:
            assert compiled.admits("BGPPeer", "spec.address", text), text


JUNK: list[tuple[str, str, str, str]] = [
    ("IPPool", "spec.addresses.[]", "pool-a", "'pool-a' is not a CIDR or range"),
    ("IPPool", "spec.addresses.[]", "192.0.2.1", "'192.0.2.1' is not a CIDR or range"),
    ("IPPool", "spec.addresses.[]", "192.0.2.0/24,198.51.100.0/24",
     "'192.0.2.0/24,198.51.100.0/24' is not a CIDR or range"),
    ("IPPool", "spec.exclude.[]", "192.0.2.1-", "'192.0.2.1-' is not a CIDR, range or IP"),
    ("BGPPeer", "spec.address", "router.example.com",
     "'router.example.com' is not an IPv4 or IPv6 address"),
    ("BGPPeer", "spec.sourceAddress", "192.0.2.1/32",
     "'192.0.2.1/32' is not an IPv4 or IPv6 address"),
]


@pytest.mark.parametrize(("kind", "field", "value", "words"), JUNK,
                         ids=[f"{j[0]}-{j[2]}" for j in JUNK])
def test_the_fallback_refuses_junk_in_words(
    schemas: tuple[dict[str, Schema], dict[str, Schema]], compiled: Compiled, kind: str,
    field: str, value: str, words: str,
) -> None:
    (rule,) = at(schemas[1][kind], field)["x-kubernetes-validations"]
    assert not compiled.admits(kind, field, value), value
    assert _message(rule, value) == words


def _message(rule: dict[str, Any], value: str) -> str:
    """The rule's messageExpression evaluated as the server would (plain concatenation)."""
    import celpy
    from celpy.adapter import json_to_cel

    env = celpy.Environment()
    program = env.program(env.compile(rule["messageExpression"]))
    return str(program.evaluate({"self": json_to_cel(value)}))
