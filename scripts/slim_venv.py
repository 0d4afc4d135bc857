"""Remove the parts of the image's dependencies that vipam never imports (run in the Dockerfile's
builder stage, with the runtime venv's interpreter, before the venv is copied into the image).

Why: the venv was 95 MB, 44 MB of it kubernetes-asyncio's generated API classes and models.
vipam uses kubernetes-asyncio only for configuration (kubeconfig, in-cluster ServiceAccount,
exec plugins) and for ApiClient/Configuration; it sends its own requests and never builds a
model (ccm/kube/client.py says why). netaddr ships the IEEE MAC-vendor registry (9 MB), read
only by EUI(...).oui/.iab lookups, which vipam does not make.

Each rule must match something, so a dependency update that moves files fails the build here
instead of silently shipping them. The package __init__ files that import removed modules lose
exactly those import lines (and their names in __all__); everything else stays byte for byte.
Afterwards every trimmed package is imported again, so a broken import fails the build.

    python slim_venv.py [SITE_PACKAGES]     (default: this interpreter's purelib)
"""

from __future__ import annotations

import importlib
import re
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    """Glob patterns under site-packages to delete, and why they are safe to delete."""

    why: str
    patterns: tuple[str, ...]
    keep: tuple[str, ...] = ("__init__.py",)


RULES = (
    Rule(
        "kubernetes-asyncio's generated API classes: vipam sends its own requests",
        ("kubernetes_asyncio/client/api/*.py",),
    ),
    Rule(
        "kubernetes-asyncio's generated models: vipam reads and writes JSON dicts",
        ("kubernetes_asyncio/client/models/*.py",),
    ),
    Rule(
        "kubernetes-asyncio's own tests and docs",
        (
            "kubernetes_asyncio/**/*_test.py",
            "kubernetes_asyncio/client/test_*.py",
            "kubernetes_asyncio/README.md",
        ),
    ),
    Rule(
        "netaddr's IEEE MAC-vendor registry (EUI.oui/EUI.iab lookups only) and its tests",
        ("netaddr/eui/oui.*", "netaddr/eui/iab.*", "netaddr/tests"),
    ),
)

# Packages whose __init__ files may import removed modules: they are rewritten, then imported.
REWRITTEN = (
    "kubernetes_asyncio/client/__init__.py",
    "kubernetes_asyncio/client/api/__init__.py",
    "kubernetes_asyncio/client/models/__init__.py",
)
IMPORTED_AFTERWARDS = (
    "kubernetes_asyncio",
    "kubernetes_asyncio.client",
    "kubernetes_asyncio.config",
    "netaddr",
)

FROM_IMPORT = re.compile(r"^from ([\w.]+) import (\w+)\s*$")
ALL_ENTRY = re.compile(r"^\s*[\"'](\w+)[\"'],?\s*$")


def remove(site: Path, rule: Rule) -> int:
    """Delete what the rule matches; return the number of bytes freed. No match is an error."""
    freed = 0
    for pattern in rule.patterns:
        matches = [p for p in site.glob(pattern) if p.name not in rule.keep]
        if not matches:
            raise SystemExit(f"slim_venv: {pattern!r} matches nothing ({rule.why}): update RULES")
        for path in matches:
            if path.is_dir():
                freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path)
            else:
                freed += path.stat().st_size
                path.unlink()
    return freed


def removed_module(site: Path, module: str) -> bool:
    """A module of a package in `site` (not the stdlib's, not __future__) that is not there."""
    parts = module.split(".")
    if not (site / parts[0]).is_dir():
        return False
    base = site.joinpath(*parts)
    return not (base.with_suffix(".py").is_file() or (base / "__init__.py").is_file())


def drop_dangling_imports(site: Path, init: Path) -> int:
    """Drop `from X import Name` lines whose module X is gone, and those names from __all__.

    Only single-line imports of a single name are touched (the form these generated files use);
    the function returns how many imports it dropped."""
    kept: list[str] = []
    dropped: set[str] = set()
    for line in init.read_text().splitlines(keepends=True):
        match = FROM_IMPORT.match(line)
        if match and removed_module(site, match.group(1)):
            dropped.add(match.group(2))
            continue
        kept.append(line)
    if dropped:
        kept = [
            line for line in kept
            if not ((m := ALL_ENTRY.match(line)) and m.group(1) in dropped)
        ]
        init.write_text("".join(kept))
    return len(dropped)


def slim(site: Path) -> list[str]:
    """Apply every rule, rewrite the affected __init__ files; return a report, one line each."""
    report = []
    for rule in RULES:
        freed = remove(site, rule)
        report.append(f"{freed / 1e6:6.1f} MB  {rule.why}")
    for relative in REWRITTEN:
        dropped = drop_dangling_imports(site, site / relative)
        report.append(f"{dropped:6d} imports dropped from {relative}")
    return report


def main(argv: list[str]) -> int:
    site = Path(argv[1]) if len(argv) > 1 else Path(sysconfig.get_paths()["purelib"])
    for line in slim(site):
        print(f"slim_venv: {line}")
    for module in IMPORTED_AFTERWARDS:
        importlib.import_module(module)
    print(f"slim_venv: imported {', '.join(IMPORTED_AFTERWARDS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
