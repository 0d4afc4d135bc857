"""The playground as root: the speaker announces for real inside namespaces of its own.

The client namespace must resolve every L2-announced VIP to the speaker node's MAC, learnt from
its gratuitous ARP / unsolicited NA, and every namespace must be gone after the playground exits.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.netns.lab import REPO, namespaces
from tests.prereq import require


def test_playground_announces_into_its_namespaces_and_cleans_up(tmp_path: Path) -> None:
    require(os.geteuid() == 0 and shutil.which("ip") is not None, "needs root and iproute2")
    before = namespaces()
    done = subprocess.run(
        [sys.executable, "-m", "devkit.playground", "--once", "--health-port", "0",
         "--workdir", str(tmp_path), "--network", "namespace"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    mac = re.search(r"network namespace \S+ \(MAC ([0-9a-f:]{17})\)", out)
    assert mac, out
    rows = [line.split() for line in out.splitlines() if line.startswith(("default/", "team-a/"))]
    announced = {
        ip.rstrip(",") for row in rows if "playground-node" in row
        for ip in row[1:row.index("playground-node") - 1]
    }
    assert {"192.0.2.2", "192.0.2.53", "203.0.113.64", "2001:db8:0:1::"} <= announced, rows
    learnt = dict(re.findall(r"^\s+(\S+)\s+-> (\S+)$", out, re.MULTILINE))
    for ip in announced:
        assert learnt.get(ip) == mac.group(1), (ip, learnt)
    assert namespaces() == before, "the playground left namespaces behind"
    assert not (tmp_path / "api.sock").exists(), "the relay's Unix socket was left behind"
    assert "status page" not in out, "--once printed the URL of a page that is gone"
