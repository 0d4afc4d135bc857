"""The IPPool CRD and the pydantic model in pools/model.py describe the same object.

The API server checks the CRD when a pool is applied, the controller checks the model when it
reads it; if they disagree on a field name or a default, a pool is either refused at apply time
for no reason or accepted and then ignored. Field names and defaults are compared recursively
here; the address rules (CEL's IP library, which needs a real API server) are compared with the
model case by case in tests/integration/operator/test_crd_messages.py, and the pre-1.31 fallback
in test_crd_fallback.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

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
