"""Kubernetes Events about the objects we act on, aggregated like client-go's recorder.

The same (object, reason, message) within `window` seconds bumps `count` on the existing Event
instead of creating a new one, so a Service stuck in a failure loop makes one Event, not one per
retry. Recording never raises: an Event that cannot be written is logged and dropped, because an
unreachable events API must not stop allocations.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

from ccm.kube.client import JSON, ApiError, KubeApi
from ccm.kube.leader import micro_time
from ccm.kube.resources import EVENTS

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]


class EventRecorder:
    def __init__(
        self,
        client: KubeApi,
        component: str,
        *,
        host: str | None = None,
        window: float = 600.0,
        allowed: Callable[[], bool] = lambda: True,
        max_tracked: int = 4096,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host or os.environ.get("NODE_NAME") or os.uname().nodename
        self.window = window
        self.allowed = allowed
        self._recent: OrderedDict[tuple[str, str, str, str], tuple[str, int, float]] = (
            OrderedDict()
        )
        self._max = max_tracked
        self.recorded = 0

    async def record(self, obj: JSON, event_type: EventType, reason: str, message: str) -> None:
        if not self.allowed():
            return
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        ident = (str(meta.get("uid", "")), namespace, reason, message)
        now = micro_time()
        previous = self._recent.get(ident)
        try:
            if previous and time.monotonic() - previous[2] < self.window:
                name, count, _ = previous
                patch = {"count": count + 1, "lastTimestamp": now[:19] + "Z"}
                await self.client.patch(EVENTS, namespace, name, patch)
                self._remember(ident, (name, count + 1, time.monotonic()))
            else:
                created = await self.client.create(
                    EVENTS, namespace, self._event(obj, namespace, event_type, reason, message)
                )
                name = str(created["metadata"]["name"])
                self._remember(ident, (name, 1, time.monotonic()))
            self.recorded += 1
        except ApiError as exc:
            if previous and exc.not_found:
                self._recent.pop(ident, None)
            log.warning("event %s on %s not recorded: %s", reason, meta.get("name"), exc)

    def _remember(self, ident: tuple[str, str, str, str], value: tuple[str, int, float]) -> None:
        self._recent[ident] = value
        self._recent.move_to_end(ident)
        while len(self._recent) > self._max:
            self._recent.popitem(last=False)

    def _event(
        self, obj: JSON, namespace: str, event_type: EventType, reason: str, message: str
    ) -> JSON:
        meta = obj.get("metadata") or {}
        stamp = micro_time()
        seconds = stamp[:19] + "Z"
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{meta.get('name', 'object')}.",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", "v1"),
                "kind": obj.get("kind", ""),
                "name": meta.get("name", ""),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": event_type,
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": f"vipam.io/{self.component}",
            "reportingInstance": self.host,
            "firstTimestamp": seconds,
            "lastTimestamp": seconds,
            "eventTime": None,
            "count": 1,
        }
