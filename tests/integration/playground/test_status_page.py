"""The status page, rendered by a real headless Chromium against a running playground.

The page must show what the API holds: every LoadBalancer Service with its addresses, pool and
announcing node, and every pool with its usage. Ctrl-C (SIGINT) then stops the playground
cleanly.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from ccm.kube.client import KubeClient
from ccm.kube.resources import IPPOOLS, SERVICES
from tests.prereq import require

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


class Tables(HTMLParser):
    """Rows of the tables with an id, as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id")
            if self._table:
                self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._table and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


async def test_status_page_in_chromium_shows_what_the_api_holds() -> None:
    browser = chromium()
    require(browser is not None, "the status page test needs Debian's chromium")
    assert browser is not None
    with tempfile.TemporaryDirectory() as workdir:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devkit.playground", "--health-port", "0", "--workdir",
            workdir, "--network", "none", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        output = ""
        try:
            while "watching for changes" not in output:
                line = await asyncio.wait_for(proc.stdout.readline(), 60)
                assert line, f"playground ended early: {output}"
                output += line.decode()
            match = re.search(r"status page:\s+(\S+)", output)
            assert match, output
            page = await asyncio.create_subprocess_exec(
                browser, *CHROMIUM_FLAGS, f"--user-data-dir={workdir}/chromium",
                "--dump-dom", match.group(1),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )
            dom, _ = await asyncio.wait_for(page.communicate(), 60)
            tables = Tables()
            tables.feed(dom.decode())

            kube = await KubeClient.connect(str(Path(workdir) / "kubeconfig"), qps=0)
            services = (await kube.list(SERVICES))["items"]
            pools = (await kube.list(IPPOOLS))["items"]
            await kube.close()
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
            rest, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, rest.decode()
        assert "stopping" in rest.decode()

    shown = {row[0]: row for row in tables.tables["services"][1:]}
    for svc in services:
        if svc["spec"].get("type") != "LoadBalancer":
            continue
        key = f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"
        ips = [e["ip"] for e in svc["status"]["loadBalancer"]["ingress"]]
        annotations = svc["metadata"]["annotations"]
        row = shown[key]
        assert row[1] == ", ".join(ips), row
        assert row[2] == annotations["vipam.io/allocated-from"], row
        assert row[3] == annotations.get("vipam.io/announcing-node", "-"), row
        assert row[4] == "allocated"
    pool_rows = tables.tables["pools"][1:]
    for pool in pools:
        for family, figures in (pool.get("status") or {}).items():
            if family not in ("ipv4", "ipv6"):
                continue
            label = "IPv4" if family == "ipv4" else "IPv6"
            rows = [r for r in pool_rows if r[0] == pool["metadata"]["name"] and r[1] == label]
            assert rows, (pool["metadata"]["name"], label, pool_rows)
            assert rows[0][3].startswith(f"{figures['allocated']} / {figures['capacity']}")
