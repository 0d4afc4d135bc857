"""Drive ``tests.netns.prober`` from a test: start it in a namespace, read its rounds, judge them.

A :class:`Probe` collects every round in a background thread, so a test can wait on the latest
answer while the record of the whole run keeps growing. :func:`judge` turns a record into the
figures the issue asks for: time with no answer, time with two different answers.
"""

from __future__ import annotations

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
