"""Every built-in object we ship (CRDs, RBAC, Deployment, DaemonSet, sample Services, ...) is
valid under the official Kubernetes OpenAPI schemas, strictly: an unknown or misspelt field
fails instead of being dropped silently by the API server. The emulator serves none of the
apps/rbac kinds, so this is where those objects are checked against the real API's shape.

Checked for the oldest Kubernetes vipam supports (1.29: CRD validation rules are GA there) and
for the newest release the schema package knows.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.prereq import require
from tests.unit.manifests.render import Manifest, named

OLDEST_SUPPORTED = "1.29"


def _validator() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        return None
    return kubernetes_validate


def versions() -> list[str]:
    validator = _validator()
    newest = validator.latest_version() if validator else "latest"
    return [OLDEST_SUPPORTED, newest]


def built_in(objects: tuple[Manifest, ...]) -> list[Manifest]:
    return [obj for obj in objects if not obj["apiVersion"].startswith("vipam.io/")]


@pytest.mark.parametrize("version", versions())
def test_install_and_samples_are_valid_kubernetes_objects(
    install: tuple[Manifest, ...], samples: tuple[Manifest, ...], version: str
) -> None:
    validator = _validator()
    require(validator is not None, "kubernetes-validate is not installed")
    checked = built_in(install) + built_in(samples)
    assert len(checked) >= 20
    for obj in checked:
        try:
            validator.validate(obj, version, strict=True)
        except validator.ValidationError as error:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} on {version}: {error.message}")


def test_a_misspelt_field_is_caught(install: tuple[Manifest, ...]) -> None:
    """The check above can fail: strict mode refuses a field Kubernetes does not know."""
    validator = _validator()
    require(validator is not None, "kubernetes-validate is not installed")
    deployment = copy.deepcopy(named(install, "Deployment", "vipam-controller"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(validator.ValidationError):
        validator.validate(deployment, OLDEST_SUPPORTED, strict=True)
