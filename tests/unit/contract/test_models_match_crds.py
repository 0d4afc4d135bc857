"""The advertisement and peer models describe the same fields, defaults and required set as
their CRDs (as tests/unit/manifests/test_crd_matches_model does for IPPool)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from ccm.contract.models import (
    BGPAdvertisementSpec,
    BGPPeerSpec,
    L2AdvertisementSpec,
    SecretKeyRef,
)
from tests.unit.manifests import schema as crdschema

ROOT = Path(__file__).resolve().parents[3]
CASES: list[tuple[str, str, type[BaseModel]]] = [
    ("L2Advertisement", "", L2AdvertisementSpec),
    ("BGPAdvertisement", "", BGPAdvertisementSpec),
    ("BGPPeer", "", BGPPeerSpec),
    ("BGPPeer", "passwordSecretRef", SecretKeyRef),
]


def _spec_schema(kind: str) -> dict[str, Any]:
    crds = [yaml.safe_load(p.read_text()) for p in (ROOT / "config/crd").glob("vipam.io_*.yaml")]
    spec: dict[str, Any] = crdschema.schemas_by_kind(crds)[kind]["properties"]["spec"]
    return spec


@pytest.mark.parametrize(("kind", "path", "model"), CASES, ids=[f"{k}.{p}" for k, p, _ in CASES])
def test_fields_defaults_and_required_agree(kind: str, path: str, model: type[BaseModel]) -> None:
    node = _spec_schema(kind)
    if path:
        node = node["properties"][path]
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    assert set(node["properties"]) == set(fields)
    for name, info in fields.items():
        prop = node["properties"][name]
        if "default" in prop:
            assert info.default == prop["default"], name
        assert info.is_required() == (name in node.get("required", [])), name
