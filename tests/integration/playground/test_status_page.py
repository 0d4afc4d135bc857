"""The status page, rendered by a real headless Chromium against a running playground.

The page must show what the API holds: every LoadBalancer Service with its addresses, pool and
announcing node (a failed one with its reason and message), and every pool with its usage in
numbers people read (an IPv6 /64 is 2^64, not 18446744073709551616). Its layout is checked after
Chromium laid it out, at a desktop width and at a phone's (390 CSS pixels): names never break
inside (not even at a hyphen), a percentage sits beside its bar, and the page itself never gets
wider than the screen (wide tables scroll in their own box). Screenshots of both are written to
$VIPAM_SCREENSHOTS (or the test's temporary folder). Ctrl-C (SIGINT) then stops the playground.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from ccm.kube.client import KubeClient
from ccm.kube.resources import IPPOOLS, SERVICES
from tests.integration.playground.cdp import browser, chromium
from tests.prereq import require

ROOT = Path(__file__).resolve().parents[3]
LONG_POOL = "team-b-frontend-production-ipv6"
LONG_SERVICE = "team-b-frontend-web-v6"
BROKEN_SERVICE = "checkout-api-broken"
VIEWPORTS = [("desktop", 1280, 900, False), ("phone", 390, 844, True)]

# Layout facts after Chromium laid the page out. NAMES is replaced by a JSON list of the names
# (pools, Services, nodes) whose cells must hold them on one line.
FACTS = """(() => {
  const names = new Set(NAMES);
  const lineCount = (el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = Array.from(range.getClientRects()).filter(r => r.width > 0)
      .map(r => Math.round(r.top));
    return new Set(tops).size;
  };
  const cells = Array.from(document.querySelectorAll('td'))
    .filter(td => names.has(td.textContent.trim()))
    .map(td => ({text: td.textContent.trim(), lines: lineCount(td)}));
  const usage = Array.from(document.querySelectorAll('.usage')).map(el => {
    const bar = el.querySelector('.bar').getBoundingClientRect();
    const pct = el.querySelector('.pct').getBoundingClientRect();
    return {text: el.textContent.trim(), barTop: bar.top, barBottom: bar.bottom,
            barRight: bar.right, pctTop: pct.top, pctBottom: pct.bottom, pctLeft: pct.left};
  });
  const tables = {};
  for (const table of document.querySelectorAll('table[id]')) {
    tables[table.id] = Array.from(table.rows).map(tr => Array.from(tr.cells)
      .map(td => td.innerText.trim()));
  }
  return JSON.stringify({innerWidth: window.innerWidth,
                         pageWidth: document.documentElement.scrollWidth,
                         cells, usage, tables});
})()"""


async def _create_objects(kube: KubeClient) -> None:
    """A pool and a Service with long hyphenated names, and a Service that cannot be served."""
    await kube.create(IPPOOLS, None, {
        "apiVersion": "vipam.io/v1alpha1", "kind": "IPPool", "metadata": {"name": LONG_POOL},
        "spec": {"addresses": ["2001:db8:0:3::/64"], "autoAssign": False},
    })
    for name, pool in ((LONG_SERVICE, LONG_POOL), (BROKEN_SERVICE, "no-such-pool")):
        await kube.create(SERVICES, "default", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "annotations": {"vipam.io/pool": pool}},
            "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv6"],
                     "ipFamilyPolicy": "SingleStack", "selector": {"app": name},
                     "ports": [{"port": 443, "protocol": "TCP"}]},
        })


async def _wait_for_status(health: str) -> dict[str, Any]:
    """/status once the new pool has usage and both new Services are decided."""
    deadline = asyncio.get_running_loop().time() + 30
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{health}/status") as response:
                status: dict[str, Any] = await response.json()
            rows = {row["service"]: row for row in status["services"]}
            long_row = rows.get(f"default/{LONG_SERVICE}") or {}
            broken = rows.get(f"default/{BROKEN_SERVICE}") or {}
            if (status["pools"].get(LONG_POOL, {}).get("usage")
                    and long_row.get("state") == "allocated"
                    and broken.get("state") not in (None, "pending") and broken.get("message")):
                return status
            assert asyncio.get_running_loop().time() < deadline, status
            await asyncio.sleep(0.2)


def _screenshot_folder(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VIPAM_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_status_page_in_chromium_shows_what_the_api_holds(tmp_path: Path) -> None:
    binary = chromium()
    require(binary is not None, "the status page test needs Debian's chromium")
    assert binary is not None
    workdir = tmp_path / "playground"
    workdir.mkdir()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devkit.playground", "--health-port", "0", "--workdir",
        str(workdir), "--network", "none", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    output = ""
    facts: dict[str, dict[str, Any]] = {}
    try:
        while "watching for changes" not in output:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, f"playground ended early: {output}"
            output += line.decode()
        match = re.search(r"status page:\s+(\S+)", output)
        assert match, output
        url = match.group(1)
        kube = await KubeClient.connect(str(workdir / "kubeconfig"), qps=0)
        try:
            await _create_objects(kube)
            status = await _wait_for_status(url.rstrip("/"))
            while True:  # the pool status write follows the allocation within its interval
                pools = (await kube.list(IPPOOLS))["items"]
                mine = next(p for p in pools if p["metadata"]["name"] == LONG_POOL)
                if ((mine.get("status") or {}).get("ipv6") or {}).get("allocated") == "1":
                    break
                await asyncio.sleep(0.2)
            services = (await kube.list(SERVICES))["items"]
        finally:
            await kube.close()
        names = [pool["metadata"]["name"] for pool in pools] + [
            row["service"] for row in status["services"]] + ["playground-node"]
        async with browser(binary, tmp_path / "chromium") as chrome:
            page = await chrome.new_page()
            for label, width, height, mobile in VIEWPORTS:
                await page.open(url, width, height, mobile=mobile)
                facts[label] = json.loads(await page.evaluate(FACTS.replace(
                    "NAMES", json.dumps(names))))
                shot = await page.screenshot(_screenshot_folder(tmp_path) /
                                             f"status-page-{label}.png")
                assert shot.stat().st_size > 10_000
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, rest.decode()
    assert "stopping" in rest.decode()

    for label, seen in facts.items():
        _check_layout(label, seen, names)
        _check_content(label, seen["tables"], services, pools)


def _check_layout(label: str, seen: dict[str, Any], names: list[str]) -> None:
    assert seen["innerWidth"] == dict((v[0], v[1]) for v in VIEWPORTS)[label]
    # the page never gets wider than the screen: wide tables scroll inside their own box
    assert seen["pageWidth"] <= seen["innerWidth"], (label, seen["pageWidth"])
    found = {cell["text"] for cell in seen["cells"]}
    assert {LONG_POOL, f"default/{LONG_SERVICE}", f"default/{BROKEN_SERVICE}"} <= found, found
    for cell in seen["cells"]:
        assert cell["lines"] == 1, f"{label}: {cell['text']!r} wraps over {cell['lines']} lines"
    pool_rows = seen["tables"]["pools"][1:]
    assert len(seen["usage"]) == len([r for r in pool_rows if r[1] in ("IPv4", "IPv6")]) > 0
    for bar in seen["usage"]:
        beside = bar["pctTop"] < bar["barBottom"] and bar["pctBottom"] > bar["barTop"]
        assert beside and bar["pctLeft"] >= bar["barRight"], f"{label}: {bar}"


def _check_content(label: str, tables: dict[str, list[list[str]]], services: list[Any],
                   pools: list[Any]) -> None:
    shown = {row[0]: row for row in tables["services"][1:]}
    for svc in services:
        if svc["spec"].get("type") != "LoadBalancer":
            continue
        key = f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"
        row = shown[key]
        condition = next(c for c in svc["status"]["conditions"]
                         if c["type"] == "vipam.io/IPAllocated")
        if condition["status"] != "True":
            # a failed Service: the reason, and below it the message in words
            assert row[4].splitlines() == [condition["reason"], condition["message"]], row
            assert row[1] == "-", row
            continue
        ips = [e["ip"] for e in svc["status"]["loadBalancer"]["ingress"]]
        annotations = svc["metadata"]["annotations"]
        assert row[1] == ", ".join(ips), row
        assert row[2] == annotations["vipam.io/allocated-from"], row
        assert row[3] == annotations.get("vipam.io/announcing-node", "-"), row
        assert row[4] == "allocated", row
    assert shown[f"default/{BROKEN_SERVICE}"][4].startswith("UnknownPool\n"), label
    pool_rows = tables["pools"][1:]
    for pool in pools:
        for family, figures in (pool.get("status") or {}).items():
            if family not in ("ipv4", "ipv6"):
                continue
            label_ = "IPv4" if family == "ipv4" else "IPv6"
            rows = [r for r in pool_rows if r[0] == pool["metadata"]["name"] and r[1] == label_]
            assert rows, (pool["metadata"]["name"], label_, pool_rows)
            usage, allocated = rows[0][2], rows[0][3]
            assert usage == figures["allocatedPercent"], rows[0]
            assert allocated.startswith(
                f"{figures['allocated']} / {figures['capacityReadable']} ("), rows[0]
    long_pool = next(r for r in pool_rows if r[0] == LONG_POOL)
    assert long_pool[2:4] == ["<0.01%", "1 / 2^64 (1.8e19 free)"], long_pool
