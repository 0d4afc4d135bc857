"""The status page's HTML from a /status dictionary (the layout itself is checked in Chromium,
tests/integration/playground/test_status_page.py)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from ccm.health.page import render_status_page

STATUS: dict[str, Any] = {
    "identity": "vipam-controller-7d9f", "leader": "vipam-controller-7d9f", "is_leader": True,
    "api": {"reachable": False, "last_contact": "2026-11-21T09:14:03.250Z",
            "seconds_since_contact": 42.4, "last_failure": "no answer to get leases at "
            "2026-11-21T09:14:45.000Z"},
    "pools": {"lab-v6": {"errors": [], "overlaps": [], "usage": {"IPv6": {
        "capacity": str(2**64), "allocated": "3", "available": str(2**64 - 3),
        "capacityReadable": "2^64", "allocatedPercent": "<0.01%"}}}},
    "services": [
        {"service": "shop/checkout", "addresses": [], "pool": None, "node": None,
         "state": "PoolExhausted", "message": "pool lab-v4 has no free IPv4 address; add "
         "addresses to it or release some"},
        {"service": "shop/web", "addresses": ["2001:db8::10"], "pool": "lab-v6",
         "node": "node-a", "state": "allocated", "message": None},
    ],
    "services_total": 2, "speakers": [],
    "failures_by_reason": {"PoolExhausted": 1},
    "recent_failures": [{"at": "2026-11-21T09:14:02.125Z", "service": "shop/checkout",
                         "reason": "PoolExhausted", "message": "no free address"}],
}


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def text_of(html: str) -> str:
    parser = Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def test_an_api_outage_is_on_the_page() -> None:
    text = text_of(render_status_page(STATUS))
    assert ("API server: unreachable for 42s, last answer 2026-11-21T09:14:03Z; no answer to get "
            "leases") in text


def test_numbers_people_read_with_the_exact_ones_in_a_title() -> None:
    html = render_status_page(STATUS)
    assert "3 / 2^64 (1.8e19 free)" in text_of(html)
    assert f'title="3 of {2**64}, {2**64 - 3} free"' in html
    assert '<span class="pct">&lt;0.01%</span>' in html


def test_a_failed_service_shows_reason_and_message() -> None:
    text = text_of(render_status_page(STATUS))
    assert ("PoolExhausted pool lab-v4 has no free IPv4 address; add addresses to it or release "
            "some") in text
    assert "2026-11-21T09:14:02Z shop/checkout PoolExhausted no free address" in text


def test_cells_are_labelled_for_the_phone_layout() -> None:
    html = render_status_page(STATUS)
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in html
    assert '<td data-label="pool" class=\'name\'>lab-v6</td>' in html
    assert '<td data-label="announcing node" class=\'name\'>node-a</td>' in html
