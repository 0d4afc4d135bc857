"""What hosts on the segment see during a failover, as figures a test can assert on.

A :class:`Probe` drives ``tests.netns.prober`` (a host resolving the VIPs afresh every 50 ms)
and :func:`judge` turns its rounds into time with no answer and time with two different
answers. A :class:`RequestLoop` drives ``tests.netns.httploop`` (a client opening a new
connection every 50 ms) and :func:`outage` turns its requests into the gap the client saw.
Both collect in a background thread, so a test can wait on the latest result meanwhile.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.netns.lab import REPO, Lab, Member


@dataclass(frozen=True)
class Round:
    t: float  # seconds since the probe started
    d: float  # seconds until the next round
    answers: dict[str, tuple[str, ...]]  # ip -> MACs that answered this round


class Probe:
    """A fresh resolver on ``host`` asking for ``ips`` every ``period`` seconds."""

    def __init__(self, lab: Lab, host: Member, ips: list[str], period: float = 0.05) -> None:
        self.period = period
        self.ips = ips
        self.rounds: list[Round] = []
        self._lock = threading.Lock()
        self.process: subprocess.Popen[str] = lab.spawn(
            host.name,
            [sys.executable, "-m", "tests.netns.prober", "eth0", host.ipv4, host.ipv6,
             str(period), *ips],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, bufsize=1,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the prober did not start")
        self.started = time.monotonic()
        self.wall_started = time.time()  # to put the speakers' log lines on the probe's clock
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            raw: dict[str, Any] = json.loads(line)
            answers = {ip: tuple(macs) for ip, macs in raw["answers"].items()}
            entry = Round(raw["t"], raw["d"], answers)
            with self._lock:
                self.rounds.append(entry)

    def now(self) -> float:
        """The probe's clock: seconds since it started (comparable with ``Round.t``)."""
        return time.monotonic() - self.started

    def latest(self, ip: str, since: float = 0.0) -> tuple[str, ...] | None:
        """The answers of the last round, if it started at or after ``since``."""
        with self._lock:
            if not self.rounds or self.rounds[-1].t < since:
                return None
            return self.rounds[-1].answers.get(ip)

    def answered_by(self, ip: str, mac: str, since: float = 0.0) -> bool:
        """The last round (started at or after ``since``) got one answer, from ``mac``."""
        return self.latest(ip, since) == (mac,)

    def record(self) -> list[Round]:
        with self._lock:
            return list(self.rounds)

    def stop(self) -> list[Round]:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        return self.record()


@dataclass(frozen=True)
class Verdict:
    ip: str
    rounds: int
    silent: list[Round]  # rounds with no answer
    double: list[Round]  # rounds with two or more different answers

    @property
    def longest_double(self) -> float:
        """Seconds of the longest run of consecutive rounds that got two answers."""
        longest = run = 0.0
        previous: Round | None = None
        for entry in self.double:
            consecutive = previous is not None and abs(previous.t + previous.d - entry.t) < 1e-3
            run = run + entry.d if consecutive else entry.d
            longest = max(longest, run)
            previous = entry
        return longest

    @property
    def longest_double_run(self) -> int:
        """The most consecutive rounds that got two answers (0: never two)."""
        longest = run = 0
        previous: Round | None = None
        for entry in self.double:
            consecutive = previous is not None and abs(previous.t + previous.d - entry.t) < 1e-3
            run = run + 1 if consecutive else 1
            longest = max(longest, run)
            previous = entry
        return longest

    @property
    def silent_seconds(self) -> float:
        return sum(r.d for r in self.silent)

    @property
    def double_seconds(self) -> float:
        return sum(r.d for r in self.double)

    def __str__(self) -> str:
        return (f"{self.ip}: {self.rounds} rounds, "
                f"no answer {self.silent_seconds:.2f} s {[r.t for r in self.silent][:6]}, "
                f"two answers {self.double_seconds:.2f} s {[r.t for r in self.double][:6]}")


def judge(rounds: list[Round], ip: str, start: float = 0.0, end: float = float("inf")
          ) -> Verdict:
    """The rounds in [start, end) for ``ip``: which had no answer, which had two."""
    window = [r for r in rounds if start <= r.t < end]
    return Verdict(
        ip=ip,
        rounds=len(window),
        silent=[r for r in window if not r.answers.get(ip)],
        double=[r for r in window if len(r.answers.get(ip, ())) > 1],
    )


def first_answer(rounds: list[Round], ip: str, mac: str, after: float) -> float | None:
    """Time of the first round at or after ``after`` in which ``mac`` answered for ``ip``."""
    for entry in rounds:
        if entry.t >= after and mac in entry.answers.get(ip, ()):
            return entry.t
    return None


@dataclass(frozen=True)
class Request:
    target: str
    sent: float  # seconds since the loop started
    took: float
    ok: bool
    answer: str  # "POD CLIENT-IP", or the error


class RequestLoop:
    """A client on ``host`` opening a new HTTP connection to each target every ``period``."""

    def __init__(self, lab: Lab, host: Member, targets: list[str], period: float = 0.05,
                 timeout: float = 0.8) -> None:
        self.results: list[Request] = []
        self._lock = threading.Lock()
        urls = [f"[{ip}]:80" if ":" in ip else f"{ip}:80" for ip in targets]
        self.process: subprocess.Popen[str] = lab.spawn(
            host.name,
            [sys.executable, "-m", "tests.netns.httploop", str(period), str(timeout), *urls],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, bufsize=1,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the request loop did not start")
        self.started = time.monotonic()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            raw = json.loads(line)
            with self._lock:
                self.results.append(Request(raw["target"], raw["sent"], raw["took"], raw["ok"],
                                            raw["answer"]))

    def now(self) -> float:
        return time.monotonic() - self.started

    def stop(self) -> list[Request]:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=15)
        self._reader.join(timeout=5)
        with self._lock:
            return sorted(self.results, key=lambda r: r.sent)


@dataclass(frozen=True)
class Outage:
    """What a client saw of one target around an event: the longest time between two requests
    that succeeded (from the last success before the event on; about the period when nothing
    failed), and the requests that failed."""

    target: str
    gap: float | None  # None: never answered again
    failed: int
    sent: int
    failures: tuple[str, ...] = ()  # each failed request: when it was sent, what it got
    failed_in_a_row: int = 0  # the longest run of consecutive failed requests

    def __str__(self) -> str:
        gap = "never answered again" if self.gap is None else f"{self.gap:.2f} s"
        seen = f"{self.target}: longest gap {gap}, {self.failed} of {self.sent} requests failed"
        return seen + (f" ({'; '.join(self.failures)})" if self.failures else "")

    def lost_only_at_a_switch(self) -> bool:
        """What an L2 handover can cost a client and no more: each failed request reset at
        once (a connection opened through the old owner whose next packet went to the new
        one, which has no connection-tracking state for it, when the client's neighbour entry
        switched mid-connection), never a timeout (nobody answering), never two in a row."""
        resets = all("ConnectionResetError" in failure for failure in self.failures)
        return resets and self.failed_in_a_row <= 1 and self.gap is not None


def outage(requests: list[Request], target: str, event: float, end: float = float("inf")
           ) -> Outage:
    mine = [r for r in requests if r.target == target and r.sent < end]
    window = [r for r in mine if r.sent >= event]
    before = [r.sent for r in mine if r.sent < event and r.ok]
    after = [r.sent for r in window if r.ok]
    points = before[-1:] + after
    gap = max((b - a for a, b in itertools.pairwise(points)), default=None) if after else None
    if after and not before:
        gap = max(gap or 0.0, after[0] - event)
    failed = [r for r in window if not r.ok]
    run = longest = 0
    for r in window:
        run = 0 if r.ok else run + 1
        longest = max(longest, run)
    return Outage(target, gap, len(failed), len(window),
                  tuple(f"at {r.sent:.2f} s after {r.took:.2f} s: {r.answer}" for r in failed),
                  longest)
