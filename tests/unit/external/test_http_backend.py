"""The http provider against the reference server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio

import netaddr
import pytest
from aiohttp import web

from devkit.reference_ipam import ReferenceIPAM, ReferenceServer
from pools.external import backend_for, make_backend
from pools.external.base import AllocationKey, BackendError, RetryPolicy
from pools.external.http import HTTPBackend
from pools.external.transport import JsonClient
from tests.unit.external.conftest import TOKEN, RecordingSleep


def key(uid: str, family: str = "IPv4", cluster: str = "c1") -> AllocationKey:
    return AllocationKey(cluster, uid, family)  # type: ignore[arg-type]


async def test_allocate_is_idempotent_by_key(backend: HTTPBackend) -> None:
    first = await backend.allocate(key("u1"), service="default/web")
    again = await backend.allocate(key("u1"), service="default/web")
    other = await backend.allocate(key("u2"), service="default/api")
    assert first == again
    assert other != first
    assert netaddr.IPAddress(first) in netaddr.IPNetwork("198.51.100.0/28")


async def test_ipv6_comes_from_the_ipv6_range(backend: HTTPBackend) -> None:
    ip = await backend.allocate(key("u1", "IPv6"), service="default/web")
    assert netaddr.IPAddress(ip) in netaddr.IPNetwork("2001:db8::/124")


async def test_requested_ip_is_honoured_and_guarded(backend: HTTPBackend) -> None:
    ip = await backend.allocate(key("u1"), service="default/web", requested_ip="198.51.100.9")
    assert ip == "198.51.100.9"
    with pytest.raises(BackendError) as taken:
        await backend.allocate(key("u2"), service="default/x", requested_ip="198.51.100.9")
    assert taken.value.reason == "Rejected" and taken.value.status == 409
    with pytest.raises(BackendError) as outside:
        await backend.allocate(key("u3"), service="default/y", requested_ip="192.0.2.1")
    assert outside.value.reason == "Rejected" and outside.value.status == 400


async def test_exhausted_pool_is_reported_and_not_retried(
    server: ReferenceServer, retry: RetryPolicy
) -> None:
    tiny = HTTPBackend(server.url, TOKEN, options={"pool": "tiny"}, retry=retry)
    try:
        got = {await tiny.allocate(key(f"u{i}"), service=f"default/s{i}") for i in range(2)}
        assert got == {"203.0.113.8", "203.0.113.9"}
        server.requests.clear()
        with pytest.raises(BackendError) as full:
            await tiny.allocate(key("u9"), service="default/s9")
        assert full.value.reason == "Exhausted"
        assert not full.value.retryable
        assert len(server.requests) == 1
    finally:
        await tiny.close()


async def test_release_is_idempotent_and_frees_the_address(
    backend: HTTPBackend, server: ReferenceServer
) -> None:
    ip = await backend.allocate(key("u1"), service="default/web")
    await backend.release(key("u1"), "198.51.100.200")  # not what the key holds: no effect
    assert [a.ip for a in await backend.list("c1")] == [ip]
    await backend.release(key("u1"), ip)
    await backend.release(key("u1"), ip)
    assert await backend.list("c1") == []
    assert await backend.allocate(key("u2"), service="default/next") == ip


async def test_list_returns_only_this_cluster_with_owners(backend: HTTPBackend) -> None:
    mine = await backend.allocate(key("u1"), service="default/web")
    await backend.allocate(key("u2", cluster="other"), service="default/web")
    listed = await backend.list("c1")
    assert len(listed) == 1
    assert listed[0].ip == mine
    assert listed[0].key == key("u1")
    assert listed[0].service == "default/web"


async def test_wrong_token_is_unauthorized_and_not_retried(
    server: ReferenceServer, retry: RetryPolicy, sleeps: RecordingSleep
) -> None:
    intruder = HTTPBackend(server.url, "wrong", retry=retry)
    try:
        with pytest.raises(BackendError) as denied:
            await intruder.health()
        assert denied.value.reason == "Unauthorized"
        assert sleeps.delays == []
    finally:
        await intruder.close()


async def test_5xx_is_retried_with_growing_backoff(
    backend: HTTPBackend, server: ReferenceServer, sleeps: RecordingSleep
) -> None:
    server.faults.fail(503, times=2)
    ip = await backend.allocate(key("u1"), service="default/web")
    assert netaddr.IPAddress(ip) in netaddr.IPNetwork("198.51.100.0/28")
    assert server.requests.count("PUT /v1/clusters/c1/allocations/u1/IPv4") == 3
    assert len(sleeps.delays) == 2
    # attempt n waits base * 2**(n-1) scaled by a jitter factor in [0.5, 1]
    assert 0.025 <= sleeps.delays[0] <= 0.05
    assert 0.05 <= sleeps.delays[1] <= 0.1


async def test_5xx_beyond_the_attempt_bound_fails_as_unavailable(
    backend: HTTPBackend, server: ReferenceServer
) -> None:
    server.faults.fail(502, times=10)
    with pytest.raises(BackendError) as down:
        await backend.health()
    assert down.value.reason == "Unavailable"
    assert len(server.requests) == 4  # RetryPolicy(attempts=4)


async def test_429_waits_for_retry_after(
    backend: HTTPBackend, server: ReferenceServer, sleeps: RecordingSleep
) -> None:
    server.faults.fail(429, retry_after=3)
    await backend.list("c1")
    assert sleeps.delays == [3.0]


async def test_retry_after_longer_than_the_budget_gives_up_at_once(
    server: ReferenceServer, sleeps: RecordingSleep
) -> None:
    policy = RetryPolicy(total_seconds=2.0, sleep=sleeps)
    client = HTTPBackend(server.url, TOKEN, retry=policy)
    try:
        server.faults.fail(429, retry_after=60)
        with pytest.raises(BackendError) as throttled:
            await client.list("c1")
        assert throttled.value.reason == "Unavailable" and throttled.value.status == 429
        assert sleeps.delays == []
    finally:
        await client.close()


async def test_slow_server_times_out_per_request(server: ReferenceServer) -> None:
    server.faults.delay_seconds = 1.0
    calls: list[tuple[str, str, str, float]] = []
    client = HTTPBackend(
        server.url, TOKEN, timeout=0.2, retry=RetryPolicy(attempts=2, base_delay=0.01),
        name="pool-a", on_call=lambda *call: calls.append(call),
    )
    try:
        with pytest.raises(BackendError) as slow:
            await client.allocate(key("u1"), service="default/web")
        assert slow.value.reason == "Timeout" and slow.value.retryable
        assert len(server.requests) == 2
        [(name, op, result, seconds)] = calls
        assert (name, op, result) == ("pool-a", "allocate", "Timeout")
        assert 0.4 <= seconds < 3.0  # two 0.2 s timeouts; the upper bound only catches hangs
    finally:
        await client.close()


async def test_crash_after_commit_converges_on_the_same_address(
    backend: HTTPBackend, server: ReferenceServer
) -> None:
    server.faults.crash_after_commit = 1
    ip = await backend.allocate(key("u1"), service="default/web")
    # The first PUT committed an address and lost its reply; the retry got that same address.
    assert server.requests.count("PUT /v1/clusters/c1/allocations/u1/IPv4") == 2
    assert [(r.key, r.ip) for r in server.ipam.records.values()] == [(key("u1"), ip)]


async def test_concurrent_allocations_never_duplicate(
    backend: HTTPBackend, server: ReferenceServer
) -> None:
    keys = [key(f"u{i}") for i in range(12)]
    ips = await asyncio.gather(*(backend.allocate(k, service="default/s") for k in keys))
    assert len(set(ips)) == len(keys)
    same = await asyncio.gather(*(backend.allocate(key("u0"), service="default/s")
                                  for _ in range(5)))
    assert set(same) == {ips[0]}
    assert len(server.ipam.records) == len(keys)


async def test_observer_sees_each_operation(server: ReferenceServer) -> None:
    calls: list[tuple[str, str, str, float]] = []
    client = make_backend("http", url=server.url, token=TOKEN, name="lab",
                          on_call=lambda *call: calls.append(call))
    try:
        ip = await client.allocate(key("u1"), service="default/web")
        await client.list("c1")
        await client.release(key("u1"), ip)
        await client.health()
    finally:
        await client.close()
    assert [(c[0], c[1], c[2]) for c in calls] == [
        ("lab", "allocate", "ok"), ("lab", "list", "ok"),
        ("lab", "release", "ok"), ("lab", "health", "ok"),
    ]
    assert all(c[3] >= 0 for c in calls)


async def test_backend_down_is_unavailable(retry: RetryPolicy) -> None:
    server = ReferenceServer({"p": ["192.0.2.0/30"]})
    url = await server.start()
    await server.stop()  # nothing listens on that port any more
    client = HTTPBackend(url, None, retry=retry)
    try:
        with pytest.raises(BackendError) as down:
            await client.health()
        assert down.value.reason == "Unavailable" and down.value.retryable
    finally:
        await client.close()


def test_unknown_options_and_providers_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown http provider options"):
        HTTPBackend("http://127.0.0.1:1", None, options={"pool": "a", "poool": "b"})
    with pytest.raises(ValueError, match="unknown external IPAM provider"):
        make_backend("infoblox", url="http://127.0.0.1:1", token=None)


async def test_faults_can_be_set_over_http(backend: HTTPBackend, server: ReferenceServer) -> None:
    client = JsonClient(server.url, authorization=f"Bearer {TOKEN}")
    try:
        await client.request("POST", "/_faults", body={
            "failNext": [{"status": 503, "times": 2}], "crashAfterCommit": 1,
        })
    finally:
        await client.close()
    ip = await backend.allocate(key("u1"), service="default/web")
    # two injected 503s, one committed-then-dropped PUT, and the PUT that got the answer
    assert server.requests.count("PUT /v1/clusters/c1/allocations/u1/IPv4") == 4
    assert [r.ip for r in server.ipam.records.values()] == [ip]


async def test_an_address_of_the_wrong_family_is_refused(retry: RetryPolicy) -> None:
    async def confused(request: web.Request) -> web.Response:
        return web.json_response({"clusterId": "c1", "serviceUid": "u1", "family": "IPv4",
                                  "ip": "2001:db8::1", "service": "default/web"}, status=201)

    app = web.Application()
    app.router.add_put("/v1/clusters/{c}/allocations/{u}/{f}", confused)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = HTTPBackend(f"http://127.0.0.1:{port}", None, retry=retry)
    try:
        with pytest.raises(BackendError) as wrong:
            await client.allocate(key("u1"), service="default/web")
        assert wrong.value.reason == "Rejected" and "2001:db8::1" in wrong.value.message
    finally:
        await client.close()
        await runner.cleanup()


async def test_backend_for_reads_an_ippool_external_spec(server: ReferenceServer) -> None:
    from pools.model import ExternalSpec

    spec = ExternalSpec.model_validate({
        "provider": "http", "url": server.url, "timeoutSeconds": 3,
        "secretRef": {"name": "ipam", "namespace": "kube-system"},
        "options": {"pool": "tiny"},
    })
    calls: list[tuple[str, str, str, float]] = []
    client = backend_for(spec, TOKEN, name="corp", on_call=lambda *c: calls.append(c))
    try:
        ip = await client.allocate(key("u1"), service="default/web")
    finally:
        await client.close()
    assert ip in {"203.0.113.8", "203.0.113.9"}  # the "tiny" pool named in the options
    assert [c[:3] for c in calls] == [("corp", "allocate", "ok")]


def test_reference_pools_skip_ipv4_network_and_broadcast() -> None:
    ipam = ReferenceIPAM({"p": ["192.0.2.0/30", "192.0.2.8/31", "192.0.2.20-192.0.2.21"]})
    got = [ipam.allocate(key(f"u{i}"), "default/s", None, None, None)[0].ip for i in range(5)]
    assert got == ["192.0.2.1", "192.0.2.2", "192.0.2.8", "192.0.2.9", "192.0.2.20"]
