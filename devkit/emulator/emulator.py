"""The `Emulator`: a Kubernetes API server on 127.0.0.1 that tests and the playground run
in-process. Its data outlives stop()/start(), and it keeps its port, like an apiserver restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from aiohttp import web

from devkit.emulator.conversion import served
from devkit.emulator.crds import load_crd_documents
from devkit.emulator.faults import Faults
from devkit.emulator.objects import clone
from devkit.emulator.resources import Registry
from devkit.emulator.server import ApiServer
from devkit.emulator.stats import RequestStats
from devkit.emulator.store import Store
from devkit.emulator.watch import ABORT, WatchHub

T = TypeVar("T")


class Emulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, history_size: int = 10_000,
                 crd_paths: Sequence[Path] = (), bookmark_interval: float = 1.0) -> None:
        self.host = host
        self.port = port
        self.registry = Registry()
        self.hub = WatchHub(history_size)
        self.store = Store(self.registry, self.hub)
        self.stats = RequestStats()
        self.faults = Faults(self.hub, lambda: self.store.rv)
        self._api = ApiServer(self.store, self.hub, self.registry, self.faults, self.stats,
                              bookmark_interval)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        crd_type = self.registry.resolve("apiextensions.k8s.io/v1/customresourcedefinitions")
        for crd in load_crd_documents(list(crd_paths)):
            self.store.create(crd_type, None, crd)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(self._api.make_app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            server = site._server
            assert isinstance(server, asyncio.base_events.Server)
            self.port = server.sockets[0].getsockname()[1]
        self._api.server_address = f"{self.host}:{self.port}"
        self._runner = runner
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        """Drop every connection, watches included, as a crashed apiserver would."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.hub.close_all(ABORT)
        await asyncio.sleep(0)  # let watch handlers see the abort before the server closes
        await runner.cleanup()

    async def restart(self, *, expire_history: bool = False) -> None:
        """stop() then start(). A real apiserver rebuilds its watch cache on start, so watches
        resumed from before the restart usually get 410; expire_history=True models that."""
        await self.stop()
        if expire_history:
            self.faults.expire_history()
        await self.start()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    def reset_stats(self) -> None:
        self._on_loop(self.stats.clear)

    # ------------------------------------------------------------- test helpers

    def _on_loop(self, function: Callable[[], T]) -> T:
        """Run `function` on the emulator's loop: direct when called from it (or before
        start), marshalled when called from another thread (EmulatorThread users), so a
        sync test never reads the store while the loop is changing it."""
        loop = self._loop
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if loop is None or loop is current or not loop.is_running():
            return function()

        async def call() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(30)

    def get_object(self, group_version_resource: str, namespace: str | None,
                   name: str) -> dict[str, Any] | None:
        """A deep copy of one stored object, or None; for assertions, never for the code
        under test (which must go through the API)."""
        rt = self.registry.resolve(group_version_resource)

        def peek() -> dict[str, Any] | None:
            obj = self.store.peek(rt, namespace if rt.namespaced else None, name)
            return clone(served(obj, rt)) if obj is not None else None

        return self._on_loop(peek)

    def list_objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Deep copies of stored objects of one resource (optionally one namespace). The
        server's own `default/kubernetes` Service is left out (no test made it), as by
        tests.realkube's view of a real server."""
        rt = self.registry.resolve(resource)

        def wanted(obj: Mapping[str, Any]) -> bool:
            meta = obj["metadata"]
            if rt.plural == "services" and not rt.group and (
                    meta.get("namespace"), meta["name"]) == ("default", "kubernetes"):
                return False
            return namespace is None or meta.get("namespace") == namespace

        def select() -> list[dict[str, Any]]:
            return [clone(served(o, rt)) for o in self.store.select(rt, wanted)]

        return self._on_loop(select)

    def write_kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        """A kubeconfig for kubectl and kubernetes_asyncio.config.load_kube_config."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "vipam-emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "vipam-emulator", "user": {"token": "emulator"}}],
            "contexts": [{"name": "vipam-emulator", "context": {
                "cluster": "vipam-emulator", "user": "vipam-emulator", "namespace": namespace}}],
            "current-context": "vipam-emulator",
            "preferences": {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path
