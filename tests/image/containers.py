"""Running the built image with podman, the way the manifests run it.

`scripts/image` builds the image and writes podman's configuration (runc, file and process
limits this machine grants); everything here goes through `scripts/image podman`, so tests and
the build use one configuration and nothing under /etc is changed.

The security flags are read from the manifests (`config/controller/deployment.yaml`,
`config/speaker/daemonset.yaml`), not written out again here: if a manifest changes, the image
tests run with what users will run.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "image"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def podman(*args: str, check: bool = True, timeout: float = 120, input: str | None = None,
           ) -> subprocess.CompletedProcess[str]:
    """podman with scripts/image's configuration; stdout and stderr captured as text."""
    done = subprocess.run(
        [str(SCRIPT), "podman", *args], capture_output=True, text=True, timeout=timeout,
        input=input, check=False, stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return done


def pod_spec(manifest: str) -> dict[str, Any]:
    """The pod template spec of a workload manifest under config/."""
    document = yaml.safe_load((REPO / "config" / manifest).read_text())
    return dict(document["spec"]["template"]["spec"])


def security_flags(manifest: str) -> list[str]:
    """podman flags equivalent to the first container's securityContext, its resource limits
    and its emptyDir mounts (kubelet's translation, for the fields the manifests use)."""
    spec = pod_spec(manifest)
    container = spec["containers"][0]
    context = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
    flags: list[str] = []
    if "runAsUser" in context:
        flags += ["--user", f"{context['runAsUser']}:{context.get('runAsGroup', 0)}"]
    if context.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if context.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    capabilities = context.get("capabilities", {})
    flags += [f"--cap-drop={cap}" for cap in capabilities.get("drop", [])]
    flags += [f"--cap-add={cap}" for cap in capabilities.get("add", [])]
    seccomp = context.get("seccompProfile", {}).get("type")
    assert seccomp in (None, "RuntimeDefault"), f"seccomp {seccomp}: not translated"
    limits = container.get("resources", {}).get("limits", {})
    if "memory" in limits:
        flags += ["--memory", str(limits["memory"]).replace("Mi", "m").replace("Gi", "g")]
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        empty_dir = volumes[mount["name"]].get("emptyDir")
        assert empty_dir is not None, f"volume {mount['name']}: only emptyDir is translated"
        size = str(empty_dir.get("sizeLimit", "64Mi")).replace("Mi", "m")
        flags += ["--tmpfs", f"{mount['mountPath']}:rw,size={size},mode=1777"]
    return flags


def run_as_non_root(manifest: str) -> bool:
    spec = pod_spec(manifest)
    context = {**spec.get("securityContext", {}),
               **spec["containers"][0].get("securityContext", {})}
    return bool(context.get("runAsNonRoot"))


def service_account_dir(where: Path, token: str, ca_file: Path, namespace: str) -> Path:
    """What kubelet projects for a ServiceAccount: token, ca.crt and namespace, world-readable
    (defaultMode 0644), so that the image's non-root user can read them."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "token").write_text(token)
    (where / "ca.crt").write_bytes(ca_file.read_bytes())
    (where / "namespace").write_text(namespace)
    for path in (where / "token", where / "ca.crt", where / "namespace"):
        path.chmod(0o644)
    where.chmod(0o755)
    return where


def in_cluster_flags(sa_dir: Path, api_host: str, api_port: int) -> list[str]:
    """Where in-cluster configuration looks: the mounted ServiceAccount and the Service env."""
    return [
        "--volume", f"{sa_dir}:{SA_DIR}:ro",
        "--env", f"KUBERNETES_SERVICE_HOST={api_host}",
        "--env", f"KUBERNETES_SERVICE_PORT={api_port}",
    ]


def http_status(url: str, timeout: float = 1.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


@dataclass
class Containers:
    """Containers a test starts, each removed by its id at the end (never by name pattern)."""

    image: str
    started: list[str] = field(default_factory=list)

    def run(self, args: Sequence[str], command: Sequence[str], *, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`podman run --rm` to completion."""
        return podman("run", "--rm", *(["-i"] if input is not None else []), *args,
                      self.image, *command, check=False, input=input, timeout=timeout)

    def start(self, args: Sequence[str], command: Sequence[str], prefix: str) -> str:
        """`podman run -d`; returns the container id."""
        name = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
        done = podman("run", "-d", "--name", name, *args, self.image, *command)
        container = done.stdout.strip().splitlines()[-1]
        self.started.append(container)
        return container

    def logs(self, container: str) -> str:
        done = podman("logs", container, check=False)
        return done.stdout + done.stderr

    def inspect(self, container: str) -> dict[str, Any]:
        return dict(json.loads(podman("inspect", container).stdout)[0])

    def running(self, container: str) -> bool:
        return bool(self.inspect(container)["State"]["Running"])

    def stop(self, container: str, timeout: int = 10) -> int:
        """SIGTERM, wait, then the exit code."""
        podman("stop", "--time", str(timeout), container, timeout=timeout + 30)
        return int(self.inspect(container)["State"]["ExitCode"])

    def remove(self, container: str) -> None:
        podman("rm", "--force", "--time", "5", container, timeout=60)
        self.started.remove(container)

    def remove_all(self) -> list[str]:
        """Remove every container this object started; return the ids podman still lists."""
        for container in self.started:
            podman("rm", "--force", "--time", "5", container, check=False, timeout=60)
        listed = podman("ps", "--all", "--no-trunc", "--format", "{{.ID}}").stdout.split()
        return [c for c in self.started if any(full.startswith(c) for full in listed)]


def wait_until(predicate: Any, timeout: float, what: str, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)
