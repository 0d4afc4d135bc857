"""Render the kustomize trees the way an operator does (`kubectl kustomize`), once per session.

The tests check what `kubectl apply -k` would send, not the source files, so that kustomize's
own transformations (namespace, labels) are checked too.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests import prereq

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "config"
SAMPLES = CONFIG / "samples"
NAMESPACE = "kube-system"

Manifest = dict[str, Any]


def kubectl() -> str | None:
    """The kubectl binary, which has kustomize built in; None when it is not installed."""
    return prereq.kubectl_binary()


@functools.cache
def render(path: Path) -> tuple[Manifest, ...]:
    """Every object `kubectl kustomize path` produces, in its output order."""
    binary = kubectl()
    if binary is None:
        raise RuntimeError("kubectl not found")
    done = subprocess.run(
        [binary, "kustomize", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed: {done.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def of_kind(objects: tuple[Manifest, ...], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    """The one object of this kind and name; fails the test when absent or duplicated."""
    found = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


@functools.cache
def render_with_component(base: Path, component: Path) -> tuple[Manifest, ...]:
    """`base` with a kustomize Component added, as an overlay of the operator's own would.

    The overlay lives in a temporary folder: kustomize refuses an overlay inside the tree it
    includes, and Components can only be used from a kustomization that lists them.
    """
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources: [{os.path.relpath(base, folder)}]\n"
            f"components: [{os.path.relpath(component, folder)}]\n"
        )
        return render(Path(folder))
