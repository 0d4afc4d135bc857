"""A real kube-apiserver (and its etcd) inside a lab namespace, reachable only from the lab.

`devkit.apiserver.ApiServer` runs its processes under `wrap`, so `ip netns exec NS` puts the
control plane in the namespace; but its own helpers (readiness, TokenRequest, metrics, kubectl)
talk to the server from the calling process, which lives in the host namespace and cannot reach
an address inside the lab. This subclass makes those calls from inside the namespace: HTTP
from a short-lived thread that has entered it (a network namespace is a per-thread attribute on
Linux), kubectl through `ip netns exec`. Nothing is added to the host namespace.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from devkit.apiserver import ApiServer

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def in_namespace(netns: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``call(*args, **kwargs)`` on a thread that has joined network namespace ``netns``.

    Sockets keep the namespace they were created in, so everything ``call`` opens talks from
    inside the lab; the thread ends with the call, so no other code runs in the namespace.
    """
    result: dict[str, Any] = {}

    def enter_and_call() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns into {netns}: {os.strerror(errno)}")
            finally:
                os.close(fd)
            result["value"] = call(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=enter_and_call, name=f"in-{netns}")
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


class NamespacedApiServer(ApiServer):
    """`ApiServer` whose processes and test-side calls all live in network namespace `netns`."""

    def __init__(self, workdir: Path, netns: str, host: str, **kwargs: Any) -> None:
        self.netns = netns
        super().__init__(workdir, host=host, wrap=("ip", "netns", "exec", netns), **kwargs)

    def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                content_type: str = "application/json", timeout: float = 10.0
                ) -> tuple[int, bytes]:
        answer: tuple[int, bytes] = in_namespace(
            self.netns, super().request, method, path, body, token, content_type, timeout)
        return answer

    def kubectl(self, *args: str, kubeconfig: Path | None = None, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        config = kubeconfig or self.kubeconfig(self.workdir / "admin.kubeconfig")
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, self.kubectl_path, "--kubeconfig", str(config),
             *args],
            check=check, capture_output=True, text=True, input=input, timeout=120,
        )
