"""The product inside a lab: the API emulator and `vipam` processes run in lab namespaces.

The emulator listens on the router's lab address, so speakers in node namespaces reach it over
the lab segment; kubectl runs inside the router namespace too. Nothing leaves the namespaces.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.netns.lab import REPO, Lab
from tests.prereq import kubectl_binary

KUBECTL = kubectl_binary() or "kubectl"


def start_emulator(lab: Lab, port: int, kubeconfig: Path) -> subprocess.Popen[Any]:
    emulator = lab.spawn(
        lab.router.name,
        [sys.executable, "-m", "devkit.emulator", "--host", lab.router.ipv4, "--port", str(port),
         "--kubeconfig", str(kubeconfig), "--crd", str(REPO / "config" / "crd")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, text=True,
    )
    assert emulator.stdout is not None
    assert emulator.stdout.readline().strip().endswith(f":{port}")  # the URL: it is serving
    return emulator


def kubectl(lab: Lab, kubeconfig: Path, *args: str) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", lab.router.name, KUBECTL, "--kubeconfig", str(kubeconfig),
         *args], capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def apply_text(lab: Lab, kubeconfig: Path, path: Path, text: str) -> None:
    path.write_text(text)
    kubectl(lab, kubeconfig, "apply", "--validate=false", "-f", str(path))


def start_vipam(lab: Lab, ns: str, args: list[str], log: Path) -> subprocess.Popen[Any]:
    """`python -m ccm ARGS` inside `ns`, its output in `log`."""
    with log.open("wb") as handle:
        return lab.spawn(ns, [sys.executable, "-m", "ccm", *args], stdout=handle,
                         stderr=handle, cwd=REPO)


def start_controller(lab: Lab, kubeconfig: Path, workdir: Path) -> subprocess.Popen[Any]:
    return start_vipam(lab, lab.router.name, [
        "controller", "--kubeconfig", str(kubeconfig), "--namespace", "kube-system",
        "--health-port", "0", "--log-format", "text",
    ], workdir / "controller.log")
