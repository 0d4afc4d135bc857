"""Headless Chromium driven over the Chrome DevTools Protocol, for layout facts and screenshots.

`--dump-dom` shows what a page says, not where things end up; the protocol lets a test set a
phone viewport, read element geometry after layout and take a screenshot. The protocol's
WebSocket is spoken with aiohttp (already a dependency); the page under test has no scripts of
its own, the expressions evaluated here come from the test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--force-device-scale-factor=1",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One tab, attached in flat mode: every command carries the session id."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.send(method, session=self.session, **params)

    async def open(self, url: str, width: int, height: int, *, mobile: bool) -> None:
        """Load url in a viewport of width x height CSS pixels (a phone when mobile)."""
        await self.send("Page.enable")
        await self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1, mobile=mobile)
        loaded = self.browser.expect("Page.loadEventFired", self.session)
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded, 30)

    async def evaluate(self, expression: str) -> Any:
        reply = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def screenshot(self, path: Path) -> Path:
        """The whole page (not only the viewport) as PNG."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        viewport = metrics["cssLayoutViewport"]
        shot = await self.send(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": max(size["width"], viewport["clientWidth"]),
                  "height": size["height"], "scale": 1},
        )
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path


class Browser:
    def __init__(self, process: asyncio.subprocess.Process, socket: aiohttp.ClientWebSocketResponse,
                 session: aiohttp.ClientSession) -> None:
        self.process = process
        self.socket = socket
        self.http = session
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[str, str | None, asyncio.Future[dict[str, Any]]]] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            data = json.loads(message.data)
            if "id" in data:
                future = self._replies.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            for waiter in list(self._waiters):
                method, session, future = waiter
                if data.get("method") == method and session in (None, data.get("sessionId")):
                    self._waiters.remove(waiter)
                    if not future.done():
                        future.set_result(data.get("params") or {})

    def expect(self, method: str, session: str | None = None) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((method, session, future))
        return future

    async def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.socket.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result") or {}
        return result

    async def new_page(self) -> Page:
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send("Target.attachToTarget", targetId=target["targetId"],
                                   flatten=True)
        return Page(self, attached["sessionId"])


async def _devtools_address(port_file: Path) -> list[str]:
    """Chromium writes its DevTools port and path into the profile once it listens."""
    for _ in range(300):
        text = await asyncio.to_thread(
            lambda: port_file.read_text() if port_file.exists() else "")
        if len(text.splitlines()) >= 2:
            return text.splitlines()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"chromium wrote no {port_file}")


@contextlib.asynccontextmanager
async def browser(binary: str, profile: Path) -> AsyncIterator[Browser]:
    """Chromium with a throw-away profile, ended (by its pid) when the block is left."""
    await asyncio.to_thread(profile.mkdir, parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        binary, *FLAGS, "--remote-debugging-port=0", f"--user-data-dir={profile}",
        "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the zygote and renderers end with it
    )
    session = aiohttp.ClientSession()
    try:
        lines = await _devtools_address(profile / "DevToolsActivePort")
        port, path = lines[0], lines[1]
        socket = await session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
        driver = Browser(process, socket, session)
        try:
            yield driver
        finally:
            driver._reader.cancel()
            await socket.close()
    finally:
        await session.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
