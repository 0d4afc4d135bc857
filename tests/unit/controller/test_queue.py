"""Work queue guarantees: coalescing, one worker per key, re-queue while processing, backoff."""

from __future__ import annotations

import asyncio

from ccm.controller.queue import WorkQueue


async def test_duplicates_coalesce_and_order_is_fifo() -> None:
    queue = WorkQueue()
    for key in ["a", "b", "a", "c", "b"]:
        queue.add(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_added_while_processing_runs_again_after_done_never_concurrently() -> None:
    queue = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    assert len(queue) == 0  # not handed to a second worker while the first holds it
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_waiting_worker_is_woken_by_add() -> None:
    queue = WorkQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


async def test_cancelled_worker_does_not_swallow_a_key() -> None:
    queue = WorkQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("k")
    first.cancel()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert "k" in results or len(queue) == 1


async def test_retry_backs_off_exponentially_and_forget_resets() -> None:
    queue = WorkQueue(base_delay=0.01, max_delay=1.0)
    waits = [queue.retry("k") for _ in range(5)]
    bounds = [0.01 * 2**i for i in range(5)]
    for wait, bound in zip(waits, bounds, strict=True):
        assert bound / 2 <= wait <= bound
    assert queue.failures("k") == 5
    queue.forget("k")
    assert queue.failures("k") == 0
    queue.close()


async def test_retry_with_explicit_delay_requeues_after_it() -> None:
    queue = WorkQueue()
    queue.retry("k", delay=0.05)
    assert len(queue) == 0
    assert await asyncio.wait_for(queue.get(), 1) == "k"
