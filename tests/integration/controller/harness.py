"""Helpers for driving a real controller against the API emulator over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ccm.controller.manager import Controller
from ccm.controller.settings import ControllerSettings
from ccm.kube.client import ApiError, KubeClient
from ccm.kube.resources import IPPOOLS, NAMESPACES, SERVICES
from devkit.emulator import Emulator

ROOT = Path(__file__).resolve().parents[3]
CRD_DIR = ROOT / "config" / "crd"

T = TypeVar("T")


def fast_settings(kubeconfig: Path, **overrides: Any) -> ControllerSettings:
    """Settings with short election timings so failover tests take seconds."""
    values: dict[str, Any] = {
        "kubeconfig": str(kubeconfig),
        "namespace": "kube-system",
        "lease_duration": 3.0,
        "renew_deadline": 2.0,
        "retry_period": 0.5,
        "workers": 4,
        "health_port": 0,
        "pool_status_interval": 0.2,
        "watch_timeout": 30,
        "qps": 0,
        "log_format": "text",
    }
    values.update(overrides)
    return ControllerSettings(**values)


async def wait_for(
    probe: Callable[[], T | Awaitable[T | None] | None], timeout: float = 10.0,
    what: str = "condition",
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        result = probe()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        last = result
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


async def ensure_namespace(
    kube: KubeClient, name: str, labels: dict[str, str] | None = None
) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels or {}}}
    try:
        await kube.create(NAMESPACES, None, body)
    except ApiError as exc:
        if exc.status != 409:
            raise


async def create_pool(kube: KubeClient, name: str, **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": "vipam.io/v1alpha1", "kind": "IPPool",
            "metadata": {"name": name}, "spec": spec}
    return await kube.create(IPPOOLS, None, body)


def service_body(
    name: str, namespace: str = "default", *, annotations: dict[str, str] | None = None,
    ports: list[tuple[str, int]] | None = None, families: list[str] | None = None,
    policy: str | None = None, lb_class: str | None = None, **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "LoadBalancer",
        "ports": [
            {"name": f"{proto.lower()}-{port}", "port": port, "protocol": proto}
            for proto, port in (ports or [("TCP", 80)])
        ],
    }
    if families:
        body["ipFamilies"] = families
    if policy:
        body["ipFamilyPolicy"] = policy
    if lb_class:
        body["loadBalancerClass"] = lb_class
    body.update(spec)
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": body,
    }


async def create_service(kube: KubeClient, name: str, namespace: str = "default",
                         **kw: Any) -> dict[str, Any]:
    return await kube.create(SERVICES, namespace, service_body(name, namespace, **kw))


def ingress_ips(obj: dict[str, Any] | None) -> tuple[str, ...]:
    if not obj:
        return ()
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return tuple(entry["ip"] for entry in ingress)


def condition(obj: dict[str, Any] | None, type_: str = "vipam.io/IPAllocated") -> dict[str, Any]:
    for entry in ((obj or {}).get("status") or {}).get("conditions") or []:
        if entry.get("type") == type_:
            return dict(entry)
    return {}


def get_service(emu: Emulator, namespace: str, name: str) -> dict[str, Any] | None:
    return emu.get_object("v1/services", namespace, name)


async def addresses_of(
    emu: Emulator, namespace: str, name: str, timeout: float = 10.0
) -> tuple[str, ...]:
    return await wait_for(
        lambda: ingress_ips(get_service(emu, namespace, name)), timeout,
        f"an address on {namespace}/{name}",
    )


async def failure_of(
    emu: Emulator, namespace: str, name: str, timeout: float = 10.0
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found = condition(get_service(emu, namespace, name))
        return found if found.get("status") == "False" else None

    return await wait_for(probe, timeout, f"a failure condition on {namespace}/{name}")


def events_for(emu: Emulator, name: str, reason: str | None = None) -> list[dict[str, Any]]:
    return [
        e for e in emu.list_objects("events")
        if (e.get("involvedObject") or {}).get("name") == name
        and (reason is None or e.get("reason") == reason)
    ]


async def start_controller(kubeconfig: Path, **overrides: Any) -> Controller:
    controller = Controller(fast_settings(kubeconfig, **overrides))
    await controller.start()
    return controller


@contextlib.asynccontextmanager
async def leading_controller(kubeconfig: Path, **overrides: Any) -> AsyncIterator[Controller]:
    """A controller that holds the lease and has restored; always stopped afterwards."""
    controller = await start_controller(kubeconfig, **overrides)
    try:
        await leader_ready(controller)
        yield controller
    finally:
        await controller.stop()


async def leader_ready(controller: Controller, timeout: float = 10.0) -> None:
    await wait_for(lambda: controller.restored.is_set(), timeout, "leadership and restore")
