"""What /healthz and /readyz answer, on a clock the test moves (ccm/health/probes.py); the real
outage is tests/integration/operator/test_api_outage.py."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from ccm.health.probes import ApiContact, liveness, readiness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = 1_795_770_843.0

    def tick(self, seconds: float) -> None:
        self.now += seconds
        self.wall += seconds


def contact(clock: Clock, grace: float = 10.0) -> ApiContact:
    return ApiContact(grace, clock=lambda: clock.now, wall=lambda: clock.wall)


def test_any_answer_below_500_is_contact() -> None:
    clock = Clock()
    api = contact(clock)
    assert not api.reachable() and api.status()["last_contact"] is None
    for status in (200, 201, 404, 409, 410, 429):
        clock.tick(20)
        api.observe("get", "leases", status)
        assert api.reachable(), status
    for status in (0, 500, 503):
        clock.tick(20)
        api.observe("get", "leases", status)
        assert not api.reachable(), status
    assert api.failures_since_contact == 3
    assert api.last_failure == "HTTP 503 to get leases at 2026-11-27T09:17:03.000Z"


def test_outage_is_visible_in_status_and_metrics() -> None:
    clock = Clock()
    registry = CollectorRegistry()
    api = ApiContact(10.0, registry, clock=lambda: clock.now, wall=lambda: clock.wall)
    api.observe("update", "leases", 200)
    clock.tick(4)
    api.observe("update", "leases", 0)
    clock.tick(38)
    status = api.status()
    assert status == {
        "reachable": False, "last_contact": "2026-11-27T09:14:03.000Z",
        "seconds_since_contact": 42.0, "grace_seconds": 10.0,
        "failing_since": "2026-11-27T09:14:07.000Z", "failures_since_contact": 1,
        "last_failure": "no answer to update leases at 2026-11-27T09:14:07.000Z",
    }
    text = generate_latest(registry).decode()
    assert "vipam_api_last_contact_timestamp_seconds 1.795770843e+09" in text
    assert "vipam_api_contact_age_seconds 42.0" in text
    assert readiness((True, "leader"), api) == (
        False, "API server unreachable for 42s (last answer 2026-11-27T09:14:03.000Z)")


def test_liveness_ignores_an_outage_but_not_a_stalled_loop() -> None:
    clock = Clock()
    api = contact(clock)
    api.observe("get", "leases", 200)
    heartbeat = clock.now
    clock.tick(600)  # the API server has been away for ten minutes; the watches too
    ok, text = liveness(heartbeat=clock.now - 1, contact=api, watches={"services": heartbeat},
                        watch_limit=360, clock=lambda: clock.now)
    assert ok and "API server unreachable for 600s" in text and "restart would not help" in text
    ok, text = liveness(heartbeat=heartbeat, contact=api, clock=lambda: clock.now)
    assert not ok and text == "event loop stalled for 600s"


def test_a_stuck_watch_fails_liveness_only_while_the_server_answers() -> None:
    clock = Clock()
    api = contact(clock)
    watch_seen = clock.now

    def probe() -> tuple[bool, str]:
        return liveness(heartbeat=clock.now, contact=api, watches={"services": watch_seen,
                        "ippools": clock.now}, watch_limit=360, clock=lambda: clock.now)

    for _ in range(50):  # the server answers every 5 s, the services watch is silent
        clock.tick(5)
        api.observe("update", "leases", 200)
    assert probe() == (True, "event loop alive, watches progressing")  # 250 s: within limit
    for _ in range(30):
        clock.tick(5)
        api.observe("update", "leases", 200)
    assert probe() == (False, "watches not progressing for over 360s although the API server "
                              "answers: services")
    # after an outage the watch gets the whole limit again, counted from the first answer
    clock.tick(100)
    api.observe("get", "leases", 200)
    assert probe()[0] and api.up_for() == 0.0
    clock.tick(5)
    api.observe("get", "leases", 200)
    assert probe()[0] and api.up_for() == 5.0


def test_attach_keeps_the_observer_already_there() -> None:
    seen: list[tuple[str, int]] = []

    class Client:
        def __init__(self) -> None:
            self.observer = lambda verb, resource, status, seconds: seen.append((verb, status))

    clock = Clock()
    api = contact(clock)
    client = Client()
    api.attach(client)
    assert client.observer is not None
    client.observer("list", "services", 200, 0.01)
    assert seen == [("list", 200)] and api.reachable()
