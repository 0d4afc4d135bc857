"""The shared pieces: allocation keys, the retry policy, Retry-After, NetBox owner records."""

from __future__ import annotations

import email.utils
import random

import pytest

from pools.external.base import AllocationKey, BackendError, RetryPolicy, parse_retry_after
from pools.external.netbox import NetBoxBackend, owner_description, parse_owner


def test_key_text_form_round_trips() -> None:
    key = AllocationKey("prod-eu", "6f1c2d3e-0000-4a4a-9b9b-1234567890ab", "IPv6")
    assert str(key) == "prod-eu/6f1c2d3e-0000-4a4a-9b9b-1234567890ab/IPv6"
    assert AllocationKey.parse(str(key)) == key


@pytest.mark.parametrize("cluster,uid,family", [
    ("a/b", "u", "IPv4"), ("c", "with space", "IPv4"), ("c", "u", "IPv5"), ("", "u", "IPv4"),
])
def test_key_refuses_text_that_would_not_parse_back(cluster: str, uid: str, family: str) -> None:
    with pytest.raises(ValueError):
        AllocationKey(cluster, uid, family)  # type: ignore[arg-type]


def test_key_parse_refuses_other_shapes() -> None:
    for text in ("c/u", "c/u/IPv4/x", "c/u/ipv4"):
        with pytest.raises(ValueError):
            AllocationKey.parse(text)


def test_retryable_follows_reason_unless_told() -> None:
    assert BackendError("Timeout", "x").retryable
    assert BackendError("Unavailable", "x").retryable
    assert not BackendError("Exhausted", "x").retryable
    assert not BackendError("Unavailable", "bad cert", retryable=False).retryable


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0, jitter=0.5, rng=random.Random(7))
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 4.0), (9, 4.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling * 0.3  # jitter really spreads them
    assert policy.delay(1, retry_after=10.0) == 10.0


async def test_policy_stops_at_the_attempt_bound() -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        raise BackendError("Unavailable", "down")

    with pytest.raises(BackendError):
        await RetryPolicy(attempts=3, base_delay=0.1, sleep=record).run(flaky)
    assert calls == 3 and len(slept) == 2


async def test_policy_stops_at_the_time_bound() -> None:
    now = [0.0]

    async def advance(seconds: float) -> None:
        now[0] += seconds

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        raise BackendError("Timeout", "slow")

    policy = RetryPolicy(attempts=100, base_delay=1.0, max_delay=1.0, jitter=0.0,
                         total_seconds=3.5, sleep=advance, clock=lambda: now[0])
    with pytest.raises(BackendError):
        await policy.run(flaky)
    assert calls == 4  # tries at t=0,1,2,3; a fifth would start past 3.5 s
    assert now[0] == 3.0


async def test_policy_returns_the_first_success() -> None:
    answers = iter([BackendError("Unavailable", "x"), "198.51.100.1"])

    async def once_flaky() -> str:
        answer = next(answers)
        if isinstance(answer, BackendError):
            raise answer
        return answer

    async def no_wait(seconds: float) -> None:
        return None

    assert await RetryPolicy(sleep=no_wait).run(once_flaky) == "198.51.100.1"


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == pytest.approx(30.0)
    assert parse_retry_after(date, now=2_000_000) == 0.0


def test_netbox_owner_description_round_trips() -> None:
    key = AllocationKey("lab", "0b9d1a2c-aaaa-bbbb-cccc-000000000001", "IPv4")
    text = owner_description(key, "shop/frontend")
    assert text == ("vipam cluster=lab service=shop/frontend "
                    "uid=0b9d1a2c-aaaa-bbbb-cccc-000000000001 family=IPv4")
    assert parse_owner(text) == (key, "shop/frontend")
    assert parse_owner("released by vipam: " + text) is None
    assert parse_owner("vipam cluster=lab service=a/b uid=x family=IPv7") is None


@pytest.mark.parametrize("options,error", [
    ({}, "exactly one of"),
    ({"prefixId": 1, "ipRangeId": 2}, "exactly one of"),
    ({"prefixId": 1, "vrf": "blue"}, "vrf only applies"),
    ({"prefixId": 1, "releaseMode": "keep"}, "releaseMode"),
    ({"prefixId": 1, "tag": "not a slug"}, "must be a slug"),
    ({"prefixId": 1, "prefixID": 2}, "unknown netbox provider options"),
])
def test_netbox_options_are_checked_up_front(options: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        NetBoxBackend("http://127.0.0.1:1", "t", options=options)


def test_netbox_owner_description_fits_netbox_limit() -> None:
    key = AllocationKey("production-eu-west", "0b9d1a2c-aaaa-bbbb-cccc-000000000001", "IPv6")
    service = "n" * 63 + "/" + "s" * 63
    text = owner_description(key, service)
    assert len(text) <= 200
    parsed = parse_owner(text)
    assert parsed is not None and parsed[0] == key
    assert parsed[1].endswith("~") and service.startswith(parsed[1][:-1])
    assert owner_description(key, "shop/web") == (
        "vipam cluster=production-eu-west service=shop/web "
        "uid=0b9d1a2c-aaaa-bbbb-cccc-000000000001 family=IPv6")
