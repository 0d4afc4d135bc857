"""The image lane's cold cost on this machine, phase by phase, beside the warm caches.

Run as root: ``.venv/bin/python -m bench.image_lane [--checkout DIR] [--no-apt] [--no-tests]``.
Prints one JSON document, then a table.

Nothing the warm path uses is read or changed: podman runs on a store of its own (a storage.conf
under a fresh directory, through CONTAINERS_STORAGE_CONF), the stand-in base is made into an
empty cache (VIPAM_IMAGE_CACHE) and the logs go to a state directory of their own
(VIPAM_IMAGE_STATE); pip keeps no cache. Afterwards the store's images are removed by that store
and the directory by its path.

Phases:
* apt: what a fresh machine pays for podman, runc and mmdebstrap. Measured in a copy-on-write
  view of this machine (an overlay of / on a fresh ext4 loop file, in a private mount namespace
  that takes every mount with it), where the three and everything installed with them are first
  purged and the apt lists and archives emptied: `apt-get update`, then `apt-get install`.
  The update is shared with scripts/bootstrap's transaction, which installs them now.
* base, import, build: `scripts/image build` of the checkout, from its own phase line (or, for a
  checkout that has none, from its "base made / imported / built in" lines); image_cpu_s is the
  CPU time of its processes (reaped children), which load from others does not inflate.
* smoke, run: tests/image on that image, from pytest's durations, less the start and stop of the
  real API server (a session fixture the rest of the suite shares in CI; reported apart).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("podman", "runc", "mmdebstrap")
# Purged in the overlay: the tools and what came with them on this machine (some were installed
# by hand for rootless podman; a fresh machine has none of them).
PURGE = (
    "podman buildah runc mmdebstrap conmon golang-github-containers-common "
    "golang-github-containers-image containernetworking-plugins libgpgme11 libsubid4 "
    "fuse-overlayfs fuse3 libfuse3-3 uidmap slirp4netns libslirp0"
)

APT_SCRIPT = r"""
set -euo pipefail
w=$1
mount --make-rprivate /
truncate -s 6G "$w/up.img"; mkfs.ext4 -q -F "$w/up.img"
mkdir -p "$w/upfs" "$w/merged"
mount -o loop "$w/up.img" "$w/upfs"
mkdir -p "$w/upfs/upper" "$w/upfs/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$w/upfs/upper,workdir=$w/upfs/work" "$w/merged"
mount --rbind /dev "$w/merged/dev"; mount -t proc proc "$w/merged/proc"
mount --rbind /sys "$w/merged/sys"
mount -t tmpfs tmpfs "$w/merged/run"; mount -t tmpfs tmpfs "$w/merged/tmp"
ch() {
  chroot "$w/merged" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"
}
ch dpkg --purge $PURGE >/dev/null 2>&1 || true
ch sh -c 'rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin; rm -rf /var/lib/apt/lists/*'
sync
t0=$EPOCHREALTIME
ch apt-get update -qq
t1=$EPOCHREALTIME
ch apt-get install -y -qq --no-install-recommends $TOOLS >/dev/null
t2=$EPOCHREALTIME
ch sh -c "command -v $TOOLS >/dev/null"
echo "update $t0 $t1"
echo "install $t1 $t2"
"""


# As a pytest plugin (`-p bench.image_lane`, which tests_phase passes): how long the session's
# API server took to start (with config/ applied) and to stop. In CI the whole suite shares that
# session fixture, so it is reported apart from the lane's own tests.
SHARED_LOG = "VIPAM_LANE_SHARED_LOG"


def _record(name: str, seconds: float) -> None:
    path = os.environ.get(SHARED_LOG)
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({name: seconds}) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: Any) -> Iterator[None]:
    begun = time.monotonic()
    yield
    if fixturedef.argname == "apiserver":
        _record("apiserver_start_s", time.monotonic() - begun)


def pytest_configure(config: pytest.Config) -> None:
    from devkit.apiserver import ApiServer

    stop = ApiServer.stop

    def timed_stop(self: ApiServer) -> None:
        begun = time.monotonic()
        try:
            stop(self)
        finally:
            _record("apiserver_stop_s", time.monotonic() - begun)

    ApiServer.stop = timed_stop  # type: ignore[method-assign]


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def apt_phase(work: Path) -> dict[str, float]:
    where = work / "apt"
    where.mkdir()
    env = {**os.environ, "PURGE": PURGE, "TOOLS": " ".join(TOOLS)}
    before = load()
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", "-c", APT_SCRIPT, "apt", str(where)],
        capture_output=True, text=True, env=env, check=False, timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"apt phase failed:\n{done.stdout}\n{done.stderr}")
    spans = {
        name: float(b) - float(a)
        for name, a, b in (line.split() for line in done.stdout.splitlines() if line)
    }
    shutil.rmtree(where)  # the loop file; its mounts ended with the namespace
    return {"apt_update_s": spans["update"], "apt_install_s": spans["install"],
            "apt_load_start": before, "apt_load_end": load()}


def isolated_env(work: Path) -> dict[str, str]:
    storage = work / "storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{work}/root"\nrunroot = "{work}/runroot"\n'
    )
    for sub in ("cache", "state"):
        (work / sub).mkdir()
    return {
        **os.environ,
        "CONTAINERS_STORAGE_CONF": str(storage),
        "VIPAM_IMAGE_CACHE": str(work / "cache"),
        "VIPAM_IMAGE_STATE": str(work / "state"),
        "PIP_NO_CACHE_DIR": "1",
    }


def seconds(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else None


def build_phase(checkout: Path, env: dict[str, str]) -> dict[str, object]:
    before, begun = load(), time.monotonic()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([str(checkout / "scripts" / "image"), "build"], capture_output=True,
                          text=True, env=env, check=False, timeout=1800,
                          stdin=subprocess.DEVNULL)
    wall = time.monotonic() - begun
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    if done.returncode != 0:
        raise RuntimeError(f"scripts/image build failed:\n{done.stderr[-4000:]}")
    log = done.stderr
    base = seconds(r"base made in ([\d.]+) s", log)
    imported = seconds(r"imported as \S+ in ([\d.]+) s", log)
    phases = re.search(r"^image: phases \(s\): (.*?); total", log, re.M)
    if phases:
        named = dict(part.rsplit(" ", 1) for part in phases.group(1).split(", "))
        build = float(named["build"])
    else:  # an older checkout: "built ... in" counts from the start of the build
        built = seconds(r"^image: built .* in ([\d.]+) s", log) or 0.0
        build = built - (base or 0.0) - (imported or 0.0)
    return {
        "base_s": base, "import_s": imported, "build_s": round(build, 1), "image_wall_s": wall,
        "image_cpu_s": round(cpu_s, 1),
        "image_load_start": before, "image_load_end": load(),
        "phase_lines": [line for line in log.splitlines()
                        if re.match(r"image: (phases|base steps|build steps)", line)],
    }


def tests_phase(checkout: Path, env: dict[str, str]) -> dict[str, float]:
    shared = Path(env["VIPAM_IMAGE_STATE"]) / "shared.jsonl"
    env = {**env, "PYTHONPATH": f"{checkout}:{REPO}", SHARED_LOG: str(shared),
           "KUBEBUILDER_ASSETS": env.get("KUBEBUILDER_ASSETS", str(REPO / ".k8s-bin"))}
    before, begun = load(), time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/image", "-q", "-p", "no:cacheprovider",
         "-p", "bench.image_lane", "--durations=0", "-vv"],
        cwd=checkout, capture_output=True, text=True, env=env, check=False, timeout=1800,
    )
    wall = time.monotonic() - begun
    if done.returncode != 0:
        raise RuntimeError(f"tests/image failed:\n{done.stdout[-6000:]}")
    smoke = run = 0.0
    for secs, module in re.findall(r"^([\d.]+)s \w+ +tests/image/(\w+)\.py::", done.stdout, re.M):
        if module == "test_run":
            run += float(secs)
        else:
            smoke += float(secs)
    result: dict[str, float] = {}
    for line in shared.read_text().splitlines() if shared.exists() else []:
        result.update(json.loads(line))
    # the start is in the first run test's setup; the stop in the last test's teardown (a smoke
    # test: pytest runs the session's finalizers there)
    run -= result.get("apiserver_start_s", 0.0)
    smoke -= result.get("apiserver_stop_s", 0.0)
    return {**result, "smoke_s": round(smoke, 1), "run_s": round(run, 1), "tests_wall_s": wall,
            "tests_load_start": before, "tests_load_end": load()}


def remove_store(work: Path, checkout: Path, env: dict[str, str] | None) -> None:
    """The bench's own store, by its paths (podman with the checkout's configuration and the
    store named twice: in CONTAINERS_STORAGE_CONF and as flags): containers, images, then any
    mount left under it, then the files."""
    if env is not None and (work / "root").exists():
        podman = [str(checkout / "scripts" / "image"), "podman",
                  "--root", str(work / "root"), "--runroot", str(work / "runroot")]
        for args in (["rm", "--all", "--force"], ["rmi", "--all", "--force"]):
            subprocess.run([*podman, *args], capture_output=True, env=env, check=False,
                           stdin=subprocess.DEVNULL)
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True,
                            check=False).stdout.split()
    for target in sorted((m for m in mounts if m.startswith(str(work) + "/")), reverse=True):
        subprocess.run(["umount", target], check=False)
    shutil.rmtree(work, ignore_errors=True)


def number(value: object) -> float:
    assert isinstance(value, (int, float)), value
    return float(value)


def table(result: dict[str, object]) -> str:
    rows = [
        ("apt-get update (separate, before)", "apt_update_s", "apt_load_start"),
        ("apt-get install podman runc mmdebstrap", "apt_install_s", "apt_load_start"),
        ("base (mmdebstrap)", "base_s", "image_load_start"),
        ("podman import", "import_s", "image_load_start"),
        ("podman build", "build_s", "image_load_end"),
        ("tests/image smoke", "smoke_s", "tests_load_start"),
        ("tests/image run", "run_s", "tests_load_end"),
        ("(shared) API server start, config/ applied", "apiserver_start_s", "tests_load_end"),
        ("(shared) API server stop", "apiserver_stop_s", "tests_load_end"),
    ]
    lines = [f"{'phase':42} {'s':>7} {'load':>6}"]
    for label, key, load_key in rows:
        if result.get(key) is not None:
            lines.append(f"{label:42} {number(result[key]):7.1f} {number(result[load_key]):6.2f}")
    total = number(result["lane_s"])
    lines.append(f"{'lane (install + image + tests, not shared)':42} {total:7.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=REPO,
                        help="the checkout whose scripts/image and tests/image run")
    parser.add_argument("--no-apt", action="store_true", help="skip the apt phase")
    parser.add_argument("--no-tests", action="store_true", help="skip tests/image")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("image_lane: needs root (podman, mounts)")
    work = Path(tempfile.mkdtemp(prefix="vipam-lane-"))
    result: dict[str, object] = {"checkout": str(args.checkout), "nproc": os.cpu_count()}
    env = None
    try:
        if not args.no_apt:
            result.update(apt_phase(work))
        env = isolated_env(work)
        result.update(build_phase(args.checkout, env))
        if not args.no_tests:
            result.update(tests_phase(args.checkout, env))
    finally:
        remove_store(work, args.checkout, env)
    lane = sum(number(result[k]) for k in ("apt_install_s", "base_s", "import_s", "build_s",
                                          "smoke_s", "run_s") if result.get(k) is not None)
    result["lane_s"] = round(lane, 1)
    print(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
