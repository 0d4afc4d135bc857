"""`python -m devkit.emulator` (used by the playground) and the thread wrapper for sync code."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

from devkit.emulator import EmulatorThread
from tests.integration.emulator.conftest import WIDGETS_CRD

PROJECT_CRDS = Path(__file__).resolve().parents[3] / "config" / "crd"


def fetch(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.load(response))


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.emulator", "--host", "127.0.0.1", "--port", "0",
         "--kubeconfig", str(kubeconfig), "--crd", str(WIDGETS_CRD), str(PROJECT_CRDS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == url
        groups = fetch(url + "/apis")["groups"]
        assert {"example.test", "vipam.io"} <= {g["name"] for g in groups}  # type: ignore[union-attr]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_rejects_missing_crd_paths(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "devkit.emulator", "--crd",
                             str(tmp_path / "absent.yaml")], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2 and "no such file or directory" in result.stderr


def test_thread_wrapper_serves_sync_callers() -> None:
    wrapper = EmulatorThread()
    with wrapper as emulator:
        assert fetch(emulator.url + "/version")["major"] == "1"
        wrapper.run(emulator.faults.fail_next, 1, 503)
        try:
            urllib.request.urlopen(emulator.url + "/api/v1/namespaces", timeout=10)
            raise AssertionError("the planned failure did not happen")
        except urllib.error.HTTPError as error:
            assert error.code == 503
        port = emulator.port
        wrapper.call(emulator.stop())
        wrapper.call(emulator.start())
        assert emulator.port == port
        names = [n["metadata"]["name"] for n in fetch(emulator.url + "/api/v1/namespaces")[
            "items"]]  # type: ignore[index]
        assert "kube-system" in names
