"""Speakers (logging announcer) and a controller against one emulator."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ccm.kube.client import KubeClient
from ccm.kube.resources import L2ADVERTISEMENTS, NODES
from ccm.speaker.process import Speaker
from ccm.speaker.settings import SpeakerSettings


async def make_nodes(kube: KubeClient, names: list[str]) -> None:
    for name in names:
        await kube.create(NODES, None, {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        })


async def l2_everywhere(kube: KubeClient, name: str = "all", **spec: Any) -> None:
    await kube.create(L2ADVERTISEMENTS, None, {
        "apiVersion": "vipam.io/v1alpha1", "kind": "L2Advertisement",
        "metadata": {"name": name}, "spec": spec,
    })


async def start_speaker(kubeconfig: Path, node: str, **overrides: Any) -> Speaker:
    values: dict[str, Any] = {
        "node_name": node, "kubeconfig": str(kubeconfig), "namespace": "kube-system",
        "announcer": "log", "bgp": False, "health_port": 0, "log_format": "text", "qps": 0,
    }
    values.update(overrides)
    speaker = Speaker(SpeakerSettings(**values))
    await speaker.start()
    return speaker


@contextlib.asynccontextmanager
async def running_speakers(kubeconfig: Path, nodes: list[str]) -> AsyncIterator[list[Speaker]]:
    """A speaker per node; every one stopped afterwards (a test may stop some itself)."""
    speakers: list[Speaker] = []
    try:
        for node in nodes:
            speakers.append(await start_speaker(kubeconfig, node))
        yield speakers
    finally:
        for speaker in speakers:
            await speaker.stop()


def announcers(speakers: list[Speaker]) -> dict[str, list[str]]:
    """address -> nodes announcing it right now."""
    result: dict[str, list[str]] = {}
    for speaker in speakers:
        for ip in speaker.announcer.announced():
            result.setdefault(ip, []).append(speaker.node)
    return result
