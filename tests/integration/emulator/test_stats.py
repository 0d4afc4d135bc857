"""The request counters the suite's "0 writes" claims rest on: the emulator's own `stats`, and
on a real server tests.realkube.RealStats over kube-apiserver's apiserver_request_total. Both
must count the same requests under the same names, so a claim means the same on either."""

from __future__ import annotations

from kubernetes_asyncio import watch
from kubernetes_asyncio.client import CoreV1Api

from devkit.emulator.stats import RequestStats
from tests.integration.emulator.conftest import Server, lb_service
from tests.realkube import RealStats


async def test_request_counts_agree(server: Server, core: CoreV1Api) -> None:
    ns = server.ns
    stats: RequestStats | RealStats
    if server.emulator is not None:
        stats = server.emulator.stats
        server.emulator.reset_stats()
    else:
        assert server.real_server is not None
        stats = RealStats(server.real_server)
    await core.create_namespaced_service(ns, lb_service("s"))
    await core.read_namespaced_service("s", ns)
    listed = await core.list_namespaced_service(ns)
    await core.patch_namespaced_service_status("s", ns, {"status": {}})
    await core.replace_namespaced_service("s", ns,
                                          await core.read_namespaced_service("s", ns))
    await core.delete_namespaced_service("s", ns)
    # from the list's version, as an informer watches: a watch with no version asks a real
    # server for a read as fresh as etcd's newest revision, and when that revision is another
    # resource's write (its own Lease renewals, every 10 s) the Services watch cache cannot
    # show it has caught up without etcd's progress notifications (Debian's etcd 3.4 lacks
    # them): 504 "Too large resource version" after 3 s, unless a Service changes meanwhile
    async for _ in watch.Watch().stream(core.list_namespaced_service, ns, timeout_seconds=1,
                                        resource_version=listed.metadata.resource_version):
        pass
    counted = {verb: stats.count(verb, "services")
               for verb in ("create", "get", "list", "watch", "patch", "update", "delete")}
    assert counted == {"create": 1, "get": 2, "list": 1, "watch": 1, "patch": 1, "update": 1,
                       "delete": 1}
    assert stats.count("patch", "services/status") == 1
    assert stats.count("update", "services/status") == 0
