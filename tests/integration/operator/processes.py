"""The controller and the speaker as an operator runs them: `python -m ccm ...` processes with
their health server on a loopback port, read over HTTP like a kubelet or Prometheus would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from devkit.apiserver import free_port

ROOT = Path(__file__).resolve().parents[3]
T = TypeVar("T")

# short Lease timings, so that an outage test sees the fence in seconds, not tens of seconds
FAST_LEASE = ["--lease-duration", "4", "--renew-deadline", "3", "--retry-period", "0.5"]


class VipamProcess:
    def __init__(self, kind: str, args: list[str], log: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ccm", kind, *args, "--health-host", "127.0.0.1",
                 "--health-port", str(self.port), "--log-format", "text"],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode()

    def status(self) -> dict[str, Any]:
        code, body = self.get("/status")
        assert code == 200, body
        result: dict[str, Any] = json.loads(body)
        return result

    def metrics(self) -> str:
        code, body = self.get("/metrics")
        assert code == 200, body
        return body

    def wait(self, what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"{self.kind} exited: {self.log_tail()}"
            try:
                result = check()
            except (OSError, urllib.error.URLError):
                result = None
            if result:
                return result
            assert time.monotonic() < deadline, f"{self.kind}: no {what}: {self.log_tail()}"
            time.sleep(0.1)

    def ready(self, timeout: float = 60.0) -> str:
        return self.wait("200 from /readyz", lambda: self._ok("/readyz"), timeout)

    def _ok(self, path: str) -> str | None:
        code, body = self.get(path)
        return body if code == 200 else None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM by pid (its own process group), SIGKILL if it does not end in 20 s."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
