"""`kubectl apply -k config/` and `-k config/samples` install everything into the emulator."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from devkit.emulator import EmulatorThread
from tests.prereq import kubectl_binary, require

KUBECTL = kubectl_binary() or "kubectl"

ROOT = Path(__file__).resolve().parents[3]


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KUBECTL, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def rendered(path: Path) -> list[dict[str, object]]:
    done = kubectl("kustomize", str(path))
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_install_and_samples_apply_to_the_emulator(tmp_path: Path) -> None:
    require(kubectl_binary() is not None,
            "kubectl is needed")
    with EmulatorThread() as emu:
        kubeconfig = str(emu.write_kubeconfig(tmp_path / "kubeconfig"))
        for directory in (ROOT / "config", ROOT / "config" / "samples"):
            if directory.name == "samples":
                # the CRDs were installed by the first apply; wait until they are served
                done = kubectl("--kubeconfig", kubeconfig, "wait", "--for=condition=Established",
                               "crd", "--all", "--timeout=30s")
                assert done.returncode == 0, done.stderr
            done = kubectl("--kubeconfig", kubeconfig, "apply", "--validate=false", "-k",
                           str(directory))
            assert done.returncode == 0, done.stdout + done.stderr
            for obj in rendered(directory):
                meta = obj["metadata"]
                assert isinstance(meta, dict)
                args = ["get", str(obj["kind"]).lower(), str(meta["name"]), "-o", "name"]
                if meta.get("namespace"):
                    args += ["-n", str(meta["namespace"])]
                got = kubectl("--kubeconfig", kubeconfig, *args)
                assert got.returncode == 0, f"{obj['kind']}/{meta['name']}: {got.stderr}"
