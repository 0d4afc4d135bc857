"""The IPPool CRD (served by the emulator from config/crd) and the pydantic model agree.

Each sample is created through the API and parsed by `pools.model.parse_pool`; both must accept
or both must reject. Samples are limited to what an OpenAPI schema can judge: types, required
fields, enums, patterns and bounds (address arithmetic, e.g. a /24 with host bits, is the
model's job and is reported by the controller as a condition). CEL rules are not evaluated by
the emulator, so the CEL-only case is checked on the CRD text instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ccm.kube.client import ApiError, KubeClient
from pools.model import PoolValidationError, parse_pool
from tests.integration.controller.harness import CRD_DIR, create_pool

SAMPLES: list[tuple[str, dict[str, Any], bool]] = [
    ("minimal", {"addresses": ["192.0.2.0/24"]}, True),
    ("range", {"addresses": ["192.0.2.10-192.0.2.20", "2001:db8::/64"]}, True),
    ("full", {
        "addresses": ["198.51.100.0/24"], "exclude": ["198.51.100.1"], "autoAssign": False,
        "avoidBuggyIPs": True, "priority": 5, "disabled": False,
        "serviceAllocation": {
            "namespaces": ["a"],
            "namespaceSelector": {"matchLabels": {"x": "y"}},
            "serviceSelector": {"matchExpressions": [
                {"key": "app", "operator": "In", "values": ["web"]}]},
        },
    }, True),
    ("external", {"external": {"provider": "netbox", "url": "https://netbox.example",
                               "secretRef": {"name": "nb"}, "timeoutSeconds": 3,
                               "options": {"prefixId": 7}}}, True),
    ("addresses-not-list", {"addresses": "192.0.2.0/24"}, False),
    ("priority-negative", {"addresses": ["192.0.2.0/24"], "priority": -1}, False),
    ("priority-string", {"addresses": ["192.0.2.0/24"], "priority": "high"}, False),
    ("autoassign-string", {"addresses": ["192.0.2.0/24"], "autoAssign": "maybe"}, False),
    ("bad-operator", {"addresses": ["192.0.2.0/24"], "serviceAllocation": {
        "serviceSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}}, False),
    ("bad-provider", {"external": {"provider": "infoblox", "url": "https://x"}}, False),
    ("bad-url", {"external": {"provider": "http", "url": "ftp://x"}}, False),
    ("timeout-zero", {"external": {"provider": "http", "url": "https://x",
                                   "timeoutSeconds": 0}}, False),
    ("timeout-huge", {"external": {"provider": "http", "url": "https://x",
                                   "timeoutSeconds": 301}}, False),
    ("junk-address", {"addresses": ["not an address!"]}, False),
]


def _model_accepts(spec: dict[str, Any]) -> bool:
    try:
        parse_pool("sample", spec)
    except PoolValidationError:
        return False
    return True


async def _api_accepts(kube: KubeClient, name: str, spec: dict[str, Any]) -> bool:
    try:
        await create_pool(kube, name, **spec)
    except ApiError as exc:
        assert exc.status == 422, exc
        return False
    return True


@pytest.mark.parametrize(("name", "spec", "valid"), SAMPLES, ids=[s[0] for s in SAMPLES])
async def test_crd_and_model_agree(
    kube: KubeClient, name: str, spec: dict[str, Any], valid: bool
) -> None:
    assert _model_accepts(spec) is valid, f"model on {name}"
    assert await _api_accepts(kube, name, spec) is valid, f"CRD on {name}"


def test_crd_requires_addresses_or_external_like_the_model() -> None:
    crd = yaml.safe_load(Path(CRD_DIR / "vipam.io_ippools.yaml").read_text())
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = " ".join(r["rule"] for r in spec_schema.get("x-kubernetes-validations", []))
    assert "external" in rules and "addresses" in rules
    assert not _model_accepts({})
    assert not _model_accepts({"addresses": []})
