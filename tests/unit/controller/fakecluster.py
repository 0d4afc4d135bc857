"""A Controller running on the in-memory FakeKube: builders, start/stop and waiting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from ccm.controller.manager import Controller
from ccm.controller.settings import ControllerSettings
from ccm.kube.resources import EVENTS, IPPOOLS, NAMESPACES, SERVICES
from tests.fakekube import FakeKube

T = TypeVar("T")


def settings(**overrides: Any) -> ControllerSettings:
    values: dict[str, Any] = {
        "namespace": "kube-system", "lease_duration": 3.0, "renew_deadline": 2.0,
        "retry_period": 0.5, "workers": 2, "health_port": 0, "pool_status_interval": 0.05,
        "watch_timeout": 30, "qps": 0, "log_format": "text", "identity": "test",
    }
    values.update(overrides)
    return ControllerSettings(**values)


async def namespace(kube: FakeKube, name: str, labels: dict[str, str] | None = None) -> None:
    await kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": name, "labels": labels or {}}})


async def pool(kube: FakeKube, name: str, *addresses: str, **spec: Any) -> dict[str, Any]:
    return await kube.create(IPPOOLS, None, {
        "apiVersion": "vipam.io/v1alpha1", "kind": "IPPool", "metadata": {"name": name},
        "spec": {"addresses": list(addresses), **spec},
    })


def service_body(name: str, namespace: str = "default", *,
                 annotations: dict[str, str] | None = None, ip: str | None = None,
                 created: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack",
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}], **spec},
    }
    if created:
        body["metadata"]["creationTimestamp"] = created
    if ip:
        body["status"] = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}
    return body


async def service(kube: FakeKube, name: str, namespace: str = "default", **kw: Any) -> None:
    """Create a Service; a shown address (``ip=``) is written as the previous owner left it."""
    body = service_body(name, namespace, **kw)
    status = body.pop("status", None)
    created = await kube.create(SERVICES, namespace, body)
    if status is not None:
        created["status"] = status
        await kube.replace(SERVICES, namespace, name, created, subresource="status")


def stored_service(kube: FakeKube, key: str) -> dict[str, Any]:
    namespace, name = key.split("/", 1)
    return kube.stored(SERVICES, namespace, name)


def shown(kube: FakeKube, key: str) -> tuple[str, ...]:
    ingress = ((stored_service(kube, key).get("status") or {}).get("loadBalancer") or {}).get(
        "ingress") or []
    return tuple(entry["ip"] for entry in ingress)


def condition(kube: FakeKube, key: str) -> dict[str, Any]:
    for entry in (stored_service(kube, key).get("status") or {}).get("conditions") or []:
        if entry.get("type") == "vipam.io/IPAllocated":
            return dict(entry)
    return {}


def events(kube: FakeKube, name: str, reason: str | None = None) -> list[dict[str, Any]]:
    return [
        obj for (resource, _, _), obj in kube.objects.items()
        if resource == str(EVENTS) and obj["involvedObject"]["name"] == name
        and (reason is None or obj["reason"] == reason)
    ]


async def wait_for(probe: Callable[[], T | None], timeout: float = 5.0, what: str = "it") -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


async def settled(controller: Controller, timeout: float = 5.0) -> None:
    """Queue empty and no worker busy, twice in a row 50 ms apart."""
    async def idle() -> bool:
        return (controller.queue.depth == 0 and not controller.queue.busy
                and controller.recorder.pending == 0)

    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        quiet = quiet + 1 if await idle() else 0
        if quiet >= 5:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("controller did not settle")


@contextlib.asynccontextmanager
async def leading(kube: FakeKube, **overrides: Any) -> AsyncIterator[Controller]:
    controller = Controller(settings(**overrides), client=kube)
    await controller.start()
    try:
        await wait_for(controller.restored.is_set, 5.0, "leadership and restore")
        await settled(controller)
        yield controller
    finally:
        await controller.stop()
