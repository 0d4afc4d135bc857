"""The IPPool CRD and the pydantic model in pools/model.py describe the same object.

The API server checks the CRD when a pool is applied, the controller checks the model when it
reads it; if they disagree on a field name or a default, a pool is either refused at apply time
for no reason or accepted and then ignored. Field names and defaults are compared recursively,
and generated address entries are run through both the CRD pattern and the model's parser.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from pools.addresses import AddressError, parse_token
from pools.model import ExternalSpec, IPPoolSpec, LabelSelector, SecretRef, ServiceAllocation
from pools.selectors import LabelSelectorRequirement
from tests.unit.manifests import schema as crdschema
from tests.unit.manifests.render import SAMPLES, Manifest, named, of_kind
from tests.unit.manifests.walk import Schema, at


@pytest.fixture(scope="module")
def spec_schema(install: tuple[Manifest, ...]) -> Schema:
    crd = named(install, "CustomResourceDefinition", "ippools.vipam.io")
    return at(crdschema.served_schema(crd), "spec")


def aliases(model: type[BaseModel]) -> dict[str, Any]:
    """CRD field name -> pydantic FieldInfo."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


# (path in the CRD spec, model describing the object there)
PAIRS: list[tuple[str, type[BaseModel]]] = [
    ("", IPPoolSpec),
    ("serviceAllocation", ServiceAllocation),
    ("serviceAllocation.namespaceSelector", LabelSelector),
    ("serviceAllocation.serviceSelector", LabelSelector),
    ("serviceAllocation.serviceSelector.matchExpressions.[]", LabelSelectorRequirement),
    ("external", ExternalSpec),
    ("external.secretRef", SecretRef),
]


@pytest.mark.parametrize(("path", "model"), PAIRS, ids=[p or "spec" for p, _ in PAIRS])
def test_field_names_and_defaults_agree(
    spec_schema: Schema, path: str, model: type[BaseModel]
) -> None:
    node = at(spec_schema, path) if path else spec_schema
    fields = aliases(model)
    assert set(node["properties"]) == set(fields), f"{path or 'spec'}"
    for name, info in fields.items():
        prop = node["properties"][name]
        if "default" in prop:
            assert info.default == prop["default"], f"{path}.{name}"
        elif info.is_required():
            assert name in node.get("required", []), f"{path}.{name} is required by the model"
        if name in node.get("required", []):
            assert info.is_required(), f"{path}.{name} is optional in the model"


def test_every_sample_pool_is_accepted_by_the_model(samples: tuple[Manifest, ...]) -> None:
    from pools.model import parse_pool

    pools = of_kind(samples, "IPPool")
    assert pools
    for pool in pools:
        parse_pool(pool["metadata"]["name"], pool["spec"])


@pytest.fixture(scope="module")
def entry_patterns(spec_schema: Schema) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Compiled outside the property test, so that rendering never counts against a deadline."""
    return (
        re.compile(at(spec_schema, "addresses.[]")["pattern"]),
        re.compile(at(spec_schema, "exclude.[]")["pattern"]),
    )


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
    st.tuples(network, st.sampled_from(["-", " - ", "- "])).map(
        lambda t: f"{t[0][0]}{t[1]}{t[0][-1]}"
    ),
    st.text(alphabet="0123456789abcdef.:/- ", max_size=24),
)


@given(entry_text)
def test_what_the_model_accepts_the_crd_admits(
    entry_patterns: tuple[re.Pattern[str], re.Pattern[str]], text: str
) -> None:
    """The CRD is never stricter than the model: a pool the controller would use is never
    refused by the API server. (It may be looser: the model then reports a condition.)"""
    addresses, exclude = entry_patterns
    if _accepted(text, allow_single=False):
        assert addresses.fullmatch(text), text
    if _accepted(text, allow_single=True):
        assert exclude.fullmatch(text), text


def test_vipam_check_accepts_every_sample_file() -> None:
    """`vipam check` is what the README tells users to run before applying: the samples must
    pass it (pools valid and not overlapping each other)."""
    import io

    from ccm.check import check_files

    files = sorted(
        str(path) for path in SAMPLES.glob("*.yaml") if path.name != "kustomization.yaml"
    )
    out = io.StringIO()
    assert check_files(files, out) == 0, out.getvalue()
    assert "ok:" in out.getvalue()
