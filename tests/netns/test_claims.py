"""Hearing other hosts on the segment: the end of a make-before-break handover, and silence.

Two agents (real `L2Announcer`s in two node namespaces): the holder of an address lets it go
only once the other node's announcement is heard, and a node about to take an address over
sees whether someone still answers for it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.netns.lab import Agent, Lab, addresses

pytestmark = pytest.mark.netns

VIPS = {4: "192.0.2.10", 6: "2001:db8::10"}


@pytest.mark.parametrize("family", [4, 6])
def test_the_holder_lets_go_once_the_new_owner_is_heard(lab: Lab, family: int) -> None:
    vip = VIPS[family]
    old, new = Agent(lab, lab.nodes[0]), Agent(lab, lab.nodes[1])
    old.call("announce", ip=vip, interface="eth0")
    result: dict[str, Any] = {}
    waiting = threading.Thread(
        target=lambda: result.update(old.call("hand_over", ip=vip, timeout=5)))
    waiting.start()
    time.sleep(0.5)
    assert vip in addresses(old.node.name), "the holder keeps the address while nobody claims it"
    took = new.call("announce", ip=vip, interface="eth0")
    waiting.join(10)
    assert result["claimed"] is True
    overlap = result["withdrawn"] - took["started"]
    print(f"\n{vip}: the old owner withdrew {overlap * 1000:.1f} ms after the new owner began "
          "to announce")
    assert overlap < 0.5
    assert vip not in addresses(old.node.name)
    assert vip in addresses(new.node.name)
    old.close()
    new.close()


def test_a_claim_made_before_the_holder_listens_is_heard_at_once(lab: Lab) -> None:
    """The first probe catches an owner that announced before the hand-over began."""
    vip = VIPS[4]
    old, new = Agent(lab, lab.nodes[0]), Agent(lab, lab.nodes[1])
    old.call("announce", ip=vip, interface="eth0")
    new.call("announce", ip=vip, interface="eth0")
    started = time.monotonic()
    result = old.call("hand_over", ip=vip, timeout=5)
    assert result["claimed"] is True
    assert time.monotonic() - started < 0.4  # the answer to the probe, not the timeout
    old.close()
    new.close()


@pytest.mark.parametrize("family", [4, 6])
def test_silence_is_seen_only_once_nobody_answers(lab: Lab, family: int) -> None:
    vip = VIPS[family]
    holder, taker = Agent(lab, lab.nodes[0]), Agent(lab, lab.nodes[1])
    holder.call("announce", ip=vip, interface="eth0")
    busy = taker.call("wait_silent", ip=vip, interface="eth0", timeout=0.5)
    assert busy["silent"] is False and busy["seconds"] >= 0.5
    threading.Timer(0.4, lambda: holder.call("withdraw", ip=vip)).start()
    freed = taker.call("wait_silent", ip=vip, interface="eth0", timeout=3)
    assert freed["silent"] is True and 0.3 < freed["seconds"] < 1.0, freed
    holder.close()
    taker.close()
