"""`vipam check`: precise errors, exit codes, the shipped samples pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ccm.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_samples_are_valid(capsys: object) -> None:
    samples = sorted(str(p) for p in (ROOT / "config/samples").glob("*.yaml"))
    assert main(["check", *samples]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert out.startswith("ok: ")


def test_errors_name_file_object_field_and_value(tmp_path: Path, capsys: object) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: vipam.io/v1alpha1\nkind: IPPool\nmetadata: {name: broken}\n"
        "spec:\n  addresses: ['192.0.2.0/24', '10.0.0.300/24']\n  priority: 1\n"
        "---\n"
        "apiVersion: vipam.io/v1alpha1\nkind: IPPool\nmetadata: {name: a}\n"
        "spec: {addresses: ['198.51.100.0/25']}\n"
        "---\n"
        "apiVersion: vipam.io/v1alpha1\nkind: IPPool\nmetadata: {name: b}\n"
        "spec: {addresses: ['198.51.100.100-198.51.100.130']}\n"
        "---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: ignored}\n"
    )
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert f"{bad}: IPPool/broken: addresses[1]: '10.0.0.300/24'" in out
    assert "IPPool/a and IPPool/b overlap: 198.51.100.100-198.51.100.127" in out
    assert "ignored" not in out


def test_unreadable_file_and_bad_yaml(tmp_path: Path, capsys: object) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [unclosed\n")
    assert main(["check", str(tmp_path / "missing.yaml"), str(broken)]) == 1
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "missing.yaml: cannot read" in out and "broken.yaml: cannot read" in out


def test_module_entry_point_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ccm", "version"], capture_output=True, text=True, cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("vipam ")


def test_controller_flag_errors_are_readable(capsys: object) -> None:
    assert main(["controller", "--workers", "0"]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "--workers" in err and "greater than or equal to 1" in err
    assert main(["controller", "--compat", "metallb,nginx"]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "nginx" in err


def test_external_provider_options_are_checked_offline(tmp_path: Path, capsys: object) -> None:
    bad = tmp_path / "netbox.yaml"
    bad.write_text(
        "apiVersion: vipam.io/v1alpha1\nkind: IPPool\nmetadata: {name: nb}\n"
        "spec:\n  external:\n    provider: netbox\n    url: https://netbox.example\n"
        "    options: {prefix: 203.0.113.0/25, tenant: platform}\n"
    )
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "IPPool/nb: external: unknown netbox provider options: ['tenant']" in out
