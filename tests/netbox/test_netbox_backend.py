"""The netbox provider against a real NetBox 4 (scripts/netbox), each test in its own VRF."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import netaddr
import pytest

from pools.external import make_backend as backend_from_provider
from pools.external.base import AllocationKey, BackendError
from pools.external.netbox import NetBoxBackend, owner_description
from tests.netbox.conftest import NetBoxEnv, Sandbox

pytestmark = pytest.mark.netbox

Build = Callable[..., NetBoxBackend]


def key(uid: str, family: str = "IPv4", cluster: str = "lab") -> AllocationKey:
    return AllocationKey(cluster, uid, family)  # type: ignore[arg-type]


def ours(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """IP address objects by bare address."""
    return {item["address"].split("/")[0]: item for item in items}


async def test_allocate_is_idempotent_and_recorded(sandbox: Sandbox, make_backend: Build) -> None:
    prefix_id = await sandbox.prefix("198.51.100.0/28")
    backend = make_backend(prefixId=prefix_id)
    await backend.health()
    first = await backend.allocate(key("u1"), service="shop/web", dns_name="web.shop.example")
    again = await backend.allocate(key("u1"), service="shop/web", dns_name="web.shop.example")
    other = await backend.allocate(key("u2"), service="shop/api")
    assert first == again != other
    assert netaddr.IPAddress(first) in netaddr.IPNetwork("198.51.100.0/28")

    objects = ours(await sandbox.addresses())
    assert set(objects) == {first, other}
    record = objects[first]
    assert record["description"] == owner_description(key("u1"), "shop/web")
    assert record["dns_name"] == "web.shop.example"
    assert [t["slug"] for t in record["tags"]] == ["vipam"]
    assert record["status"]["value"] == "active"
    assert record["address"] == f"{first}/28"


async def test_list_and_release(sandbox: Sandbox, make_backend: Build) -> None:
    backend = make_backend(prefixId=await sandbox.prefix("198.51.100.16/28"))
    a = await backend.allocate(key("u1"), service="shop/web")
    b = await backend.allocate(key("u2"), service="shop/api")
    elsewhere = await backend.allocate(key("u3", cluster="other"), service="shop/web")
    listed = {x.ip: x for x in await backend.list("lab")}
    assert set(listed) == {a, b}
    assert listed[a].key == key("u1") and listed[a].service == "shop/web"
    assert [x.ip for x in await backend.list("other")] == [elsewhere]

    await backend.release(key("u1"), b)  # u1 does not hold b: nothing happens
    assert {x.ip for x in await backend.list("lab")} == {a, b}
    await backend.release(key("u1"), a)
    await backend.release(key("u1"), a)  # idempotent
    assert {x.ip for x in await backend.list("lab")} == {b}
    assert a not in ours(await sandbox.addresses())


async def test_prefix_chosen_by_cidr_and_vrf_name(sandbox: Sandbox, make_backend: Build) -> None:
    await sandbox.prefix("198.51.100.32/28")
    backend = make_backend(prefix="198.51.100.32/28", vrf=sandbox.vrf_name)
    ip = await backend.allocate(key("u1"), service="shop/web")
    assert netaddr.IPAddress(ip) in netaddr.IPNetwork("198.51.100.32/28")
    missing = make_backend(prefix="198.51.100.48/28", vrf=sandbox.vrf_name)
    with pytest.raises(BackendError) as not_there:
        await missing.allocate(key("u2"), service="shop/web")
    assert not_there.value.reason == "NotFound"


async def test_small_prefix_is_exhausted(sandbox: Sandbox, make_backend: Build) -> None:
    backend = make_backend(prefixId=await sandbox.prefix("198.51.100.0/29"))
    got = [await backend.allocate(key(f"u{i}"), service=f"shop/s{i}") for i in range(6)]
    # NetBox hands out a non-pool IPv4 prefix without its network and broadcast addresses.
    assert sorted(got, key=netaddr.IPAddress) == [f"198.51.100.{i}" for i in range(1, 7)]
    with pytest.raises(BackendError) as full:
        await backend.allocate(key("u9"), service="shop/s9")
    assert full.value.reason == "Exhausted" and full.value.status == 409
    assert not full.value.retryable
    assert len(await sandbox.addresses()) == 6


async def test_ip_range_is_used_and_exhausted(sandbox: Sandbox, make_backend: Build) -> None:
    range_id = await sandbox.ip_range("203.0.113.10/24", "203.0.113.12/24")
    backend = make_backend(ipRangeId=range_id)
    got = {await backend.allocate(key(f"u{i}"), service="shop/s") for i in range(3)}
    assert got == {"203.0.113.10", "203.0.113.11", "203.0.113.12"}
    with pytest.raises(BackendError) as full:
        await backend.allocate(key("u9"), service="shop/s")
    assert full.value.reason == "Exhausted"


async def test_concurrent_allocations_get_distinct_addresses(
    sandbox: Sandbox, make_backend: Build
) -> None:
    prefix_id = await sandbox.prefix("198.51.100.64/27")
    # Ten controllers' worth of clients at once, each with its own connection pool.
    backends = [make_backend(prefixId=prefix_id) for _ in range(10)]
    ips = await asyncio.gather(*(
        b.allocate(key(f"u{i}"), service=f"shop/s{i}") for i, b in enumerate(backends)
    ))
    assert len(set(ips)) == 10
    assert sorted(ours(await sandbox.addresses())) == sorted(ips)


async def test_ipv6_prefix(sandbox: Sandbox, make_backend: Build) -> None:
    backend = make_backend(prefixId=await sandbox.prefix("2001:db8:5:1::/120"))
    ip = await backend.allocate(key("u1", "IPv6"), service="shop/web")
    assert netaddr.IPAddress(ip) in netaddr.IPNetwork("2001:db8:5:1::/120")
    assert await backend.allocate(key("u1", "IPv6"), service="shop/web") == ip
    with pytest.raises(BackendError) as wrong_family:
        await backend.allocate(key("u2", "IPv4"), service="shop/web")
    assert wrong_family.value.reason == "Rejected"


async def test_requested_ip(sandbox: Sandbox, make_backend: Build) -> None:
    backend = make_backend(prefixId=await sandbox.prefix("198.51.100.96/28"))
    assert await backend.allocate(key("u1"), service="shop/web",
                                  requested_ip="198.51.100.100") == "198.51.100.100"
    with pytest.raises(BackendError) as taken:
        await backend.allocate(key("u2"), service="shop/api", requested_ip="198.51.100.100")
    assert taken.value.reason == "Rejected"
    with pytest.raises(BackendError) as outside:
        await backend.allocate(key("u3"), service="shop/x", requested_ip="192.0.2.1")
    assert outside.value.reason == "Rejected"
    # The next automatic allocation skips the requested address.
    auto = await backend.allocate(key("u4"), service="shop/y")
    assert auto != "198.51.100.100"


async def test_crash_after_the_post_converges_on_one_address(
    sandbox: Sandbox, make_backend: Build
) -> None:
    prefix_id = await sandbox.prefix("198.51.100.128/28")
    crashing = make_backend(prefixId=prefix_id)
    real_request = crashing._client.request

    async def die_after_post(method: str, path: str, **kw: Any) -> Any:
        answer = await real_request(method, path, **kw)
        if method == "POST" and "available-ips" in path:
            # NetBox committed the address; the controller dies before it reads the reply.
            raise asyncio.CancelledError
        return answer

    crashing._client.request = die_after_post  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await crashing.allocate(key("u1"), service="shop/web")
    [orphan] = await sandbox.addresses()

    restarted = make_backend(prefixId=prefix_id)
    # Reconciliation sees the address with its owner, and allocation adopts it.
    assert [(x.ip, x.key) for x in await restarted.list("lab")] == \
        [(orphan["address"].split("/")[0], key("u1"))]
    ip = await restarted.allocate(key("u1"), service="shop/web")
    assert ip == orphan["address"].split("/")[0]
    assert len(await sandbox.addresses()) == 1


async def test_cancel_in_flight_never_leaves_two(sandbox: Sandbox, make_backend: Build) -> None:
    prefix_id = await sandbox.prefix("198.51.100.144/28")
    crashing = make_backend(prefixId=prefix_id)
    real_request = crashing._client.request
    posted = asyncio.Event()

    async def signal_post(method: str, path: str, **kw: Any) -> Any:
        if method == "POST":
            posted.set()
        return await real_request(method, path, **kw)

    crashing._client.request = signal_post  # type: ignore[method-assign]
    task = asyncio.create_task(crashing.allocate(key("u1"), service="shop/web"))
    await posted.wait()
    await asyncio.sleep(0.02)  # the request is on the wire; NetBox may or may not commit it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    restarted = make_backend(prefixId=prefix_id)
    ip = await restarted.allocate(key("u1"), service="shop/web")
    await asyncio.sleep(1.0)  # let a slow NetBox worker finish the cancelled POST, if any
    assert await restarted.allocate(key("u1"), service="shop/web") == ip
    assert [x["address"].split("/")[0] for x in await sandbox.addresses()] == [ip]


async def _duplicate(sandbox: Sandbox, owner: AllocationKey, address: str) -> None:
    """What a retry after a lost reply can leave behind: a second object with the same owner."""
    tag = (await sandbox.addresses())[0]["tags"][0]["id"]
    await sandbox.admin.request("POST", "/api/ipam/ip-addresses/", body={
        "address": address, "vrf": sandbox.vrf_id, "tags": [tag],
        "description": owner_description(owner, "shop/web"),
    })


async def test_duplicates_from_a_lost_reply_settle_on_the_oldest(
    sandbox: Sandbox, make_backend: Build
) -> None:
    backend = make_backend(prefixId=await sandbox.prefix("198.51.100.160/28"))
    first = await backend.allocate(key("u1"), service="shop/web")
    await _duplicate(sandbox, key("u1"), "198.51.100.170/28")
    assert await backend.allocate(key("u1"), service="shop/web") == first
    assert list(ours(await sandbox.addresses())) == [first]


async def test_list_settles_duplicates_too(sandbox: Sandbox, make_backend: Build) -> None:
    backend = make_backend(prefixId=await sandbox.prefix("198.51.100.216/29"))
    first = await backend.allocate(key("u1"), service="shop/web")
    other = await backend.allocate(key("u2"), service="shop/api")
    await _duplicate(sandbox, key("u1"), "198.51.100.222/29")
    assert len(await sandbox.addresses()) == 3
    listed = await backend.list("lab")
    assert sorted((x.ip, str(x.key)) for x in listed) == sorted(
        [(first, str(key("u1"))), (other, str(key("u2")))])
    assert sorted(ours(await sandbox.addresses())) == sorted([first, other])


async def test_release_by_status_keeps_the_address_out_of_use(
    sandbox: Sandbox, make_backend: Build
) -> None:
    backend = make_backend(prefixId=await sandbox.prefix("198.51.100.176/29"),
                           releaseMode="status:deprecated")
    ip = await backend.allocate(key("u1"), service="shop/web")
    await backend.release(key("u1"), ip)
    await backend.release(key("u1"), ip)
    assert await backend.list("lab") == []
    [kept] = await sandbox.addresses()
    assert kept["status"]["value"] == "deprecated"
    assert kept["tags"] == []
    assert kept["description"].startswith("released by vipam: ")
    assert await backend.allocate(key("u2"), service="shop/api") != ip


async def test_bad_token_is_unauthorized(sandbox: Sandbox, make_backend: Build) -> None:
    backend = make_backend(token="0" * 40, prefixId=await sandbox.prefix("198.51.100.184/29"))
    with pytest.raises(BackendError) as denied:
        await backend.health()
    assert denied.value.reason == "Unauthorized"


async def test_v2_token_works_through_the_factory(sandbox: Sandbox, netbox_env: NetBoxEnv) -> None:
    # NetBox 4.5+ creates v2 tokens by default; they travel as "Bearer nbt_<key>.<secret>".
    _, users = await sandbox.admin.request("GET", "/api/users/users/",
                                           params={"username": "vipam"})
    _, token = await sandbox.admin.request("POST", "/api/users/tokens/", body={
        "user": users["results"][0]["id"], "version": 2, "description": "vipam test"})
    backend = backend_from_provider(
        "netbox", url=netbox_env.url, token=f"nbt_{token['key']}.{token['token']}",
        options={"prefixId": await sandbox.prefix("198.51.100.192/29")},
    )
    try:
        await backend.health()
        ip = await backend.allocate(key("u1"), service="shop/web")
        assert netaddr.IPAddress(ip) in netaddr.IPNetwork("198.51.100.192/29")
    finally:
        await backend.close()
        await sandbox.admin.request("DELETE", f"/api/users/tokens/{token['id']}/")


async def test_missing_prefix_is_not_found(sandbox: Sandbox, make_backend: Build) -> None:
    backend = make_backend(prefixId=2_000_000_000)
    with pytest.raises(BackendError) as missing:
        await backend.health()
    assert missing.value.reason == "NotFound" and not missing.value.retryable


async def test_list_follows_pages(
    sandbox: Sandbox, make_backend: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pools.external.netbox.PAGE", 2)
    backend = make_backend(prefixId=await sandbox.prefix("198.51.100.200/29"))
    got = {await backend.allocate(key(f"u{i}"), service="shop/s") for i in range(5)}
    assert {x.ip for x in await backend.list("lab")} == got
    assert len(got) == 5


async def test_dns_name_can_be_left_out(sandbox: Sandbox, make_backend: Build) -> None:
    backend = make_backend(prefixId=await sandbox.prefix("198.51.100.208/29"), dnsName=False)
    ip = await backend.allocate(key("u1"), service="shop/web", dns_name="web.shop.example")
    assert ours(await sandbox.addresses())[ip]["dns_name"] == ""
