"""The README's first command: the playground prints who got which address from which pool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_playground_once_prints_the_allocation_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devkit.playground", "--once", "--health-port", "0",
         "--workdir", str(tmp_path), "--network", "none"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    table = {line.split()[0]: line.split() for line in lines if line.startswith(("default/",
                                                                                 "team-a/"))}
    assert table["default/web"][1:3] == ["192.0.2.2", "ipv4-default"]
    assert table["default/dns-tcp"][1] == table["default/dns-udp"][1]  # shared by key
    assert table["default/web-dual"][1:3] == ["198.51.100.0,", "2001:db8:0:2::100"]
    assert table["team-a/api"][2] == "team-a"
    assert all(row[-1] == "allocated" for row in table.values())
    assert (tmp_path / "kubeconfig").is_file()
    # --once stops everything before it returns: no URL or kubectl hint may point at nothing
    assert "status page" not in done.stdout and "http://" not in done.stdout, done.stdout
    assert "kubectl --kubeconfig" not in done.stdout, done.stdout
    assert "everything has stopped" in done.stdout
    assert not (tmp_path / "api.sock").exists()
