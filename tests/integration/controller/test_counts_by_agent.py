"""Requests counted by who sent them (User-Agent), on the real server and on the emulator alike.

The restart tests count the restarted controller's writes alone: a request the stopped one
still had on the wire can reach the server after the count started. This shows the count sees
exactly one client's requests, and none of another's, on both servers.
"""

from __future__ import annotations

from pathlib import Path

from ccm.kube.client import KubeClient, user_agent
from ccm.kube.resources import SERVICES
from devkit.emulator import Emulator
from tests.integration.controller.harness import service_body
from tests.realkube import RealApi


async def _count_one_client(stats_owner: RealApi | Emulator, admin: KubeClient,
                            kubeconfig: Path) -> None:
    """``kubeconfig``: the controller's ServiceAccount (it may patch Services, not create)."""
    counted = await KubeClient.connect(str(kubeconfig), qps=0,
                                       user_agent=user_agent("test", "counted"))
    other = await KubeClient.connect(str(kubeconfig), qps=0,
                                     user_agent=user_agent("test", "other"))
    try:
        await admin.create(SERVICES, "default", service_body("by-agent"))
        stats_owner.reset_stats()
        await counted.patch(SERVICES, "default", "by-agent",
                            {"metadata": {"annotations": {"counted": "yes"}}})
        await other.patch(SERVICES, "default", "by-agent",
                          {"metadata": {"annotations": {"other": "yes"}}})
        await counted.get(SERVICES, "default", "by-agent")
        await other.get(SERVICES, "default", "by-agent")
        await other.get(SERVICES, "default", "by-agent")
        stats = stats_owner.stats
        mine = {verb: stats.count(verb, "services", agent="(counted)")
                for verb in ("patch", "get", "update")}
        theirs = {verb: stats.count(verb, "services", agent="(other)")
                  for verb in ("patch", "get", "update")}
        assert mine == {"patch": 1, "get": 1, "update": 0}, stats
        assert theirs == {"patch": 1, "get": 2, "update": 0}, stats
        assert stats.count("patch", "services", agent="vipam-test/") == 2, stats
    finally:
        await counted.close()
        await other.close()


async def test_real_server_counts_by_user_agent(
    emu: RealApi, kube: KubeClient, kubeconfig: Path
) -> None:
    """With the controller's ServiceAccount token: the audit log records its requests."""
    await _count_one_client(emu, kube, kubeconfig)


async def test_emulator_counts_by_user_agent(
    emulator: Emulator, emulator_kube: KubeClient, emulator_kubeconfig: Path
) -> None:
    await _count_one_client(emulator, emulator_kube, emulator_kubeconfig)
