"""The health server (DESIGN.md, default :8081): /healthz, /readyz, /metrics, /status.

It only reads: every answer comes from a `HealthSource` the process supplies, so the same server
serves the controller and the speaker.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ccm.health.page import render_status_page


class HealthSource(Protocol):
    registry: CollectorRegistry

    def healthy(self) -> tuple[bool, str]: ...

    def ready(self) -> tuple[bool, str]: ...

    def status(self) -> dict[str, Any]: ...


class HealthServer:
    def __init__(self, source: HealthSource, host: str = "0.0.0.0", port: int = 8081) -> None:
        self.source = source
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/status", self._status)
        self.app.router.add_get("/", self._page)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            if sockets:
                self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    async def _healthz(self, _: web.Request) -> web.Response:
        return _verdict(*self.source.healthy(), "unhealthy")

    async def _readyz(self, _: web.Request) -> web.Response:
        return _verdict(*self.source.ready(), "not ready")

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self.source.registry)
        response = web.Response(body=body)
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response

    async def _page(self, _: web.Request) -> web.Response:
        return web.Response(
            text=render_status_page(self.source.status()), content_type="text/html"
        )

    async def _status(self, _: web.Request) -> web.Response:
        return web.Response(
            text=json.dumps(self.source.status(), indent=2, sort_keys=True, default=str),
            content_type="application/json",
        )


def _verdict(ok: bool, detail: str, failing: str) -> web.Response:
    return web.Response(status=200 if ok else 503, text=f"{'ok' if ok else failing}: {detail}\n")
