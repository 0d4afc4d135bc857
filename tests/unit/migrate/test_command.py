"""`vipam migrate` as a user runs it: files and stdin in, YAML out, exit codes, and a round trip
through `vipam check` and the CRDs' own validation."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ccm.check import check_files
from ccm.cli import main
from tests.unit.manifests import schema as crdschema
from tests.unit.migrate.helpers import FIXTURES, ROOT, crd_schemas


def run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    """main() with captured stdout/stderr and the given stdin."""
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        code = main(argv)
    finally:
        sys.stdin, sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


def documents(text: str) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_a_clean_conversion_exits_0_and_prints_yaml() -> None:
    code, out, err = run(["migrate", str(FIXTURES / "metallb.yaml")])
    assert code == 0, err
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in documents(out))  # type: ignore[index]
    assert kinds == [("BGPAdvertisement", "shop"), ("BGPPeer", "tor"), ("IPPool", "lan"),
                     ("IPPool", "reserved"), ("IPPool", "shop"), ("L2Advertisement", "lan")]
    assert "lost:" not in err
    assert err.strip().endswith("run the controller with --compat metallb")


def test_output_passes_vipam_check_and_the_crd_schemas(tmp_path: Path) -> None:
    target = tmp_path / "vipam.yaml"
    for fixture in ("metallb.yaml", "cilium-list.yaml"):
        code, _, err = run(["migrate", "-o", str(target), str(FIXTURES / fixture)])
        assert code == 0, err
        report = io.StringIO()
        assert check_files([str(target)], report) == 0, report.getvalue()
        assert report.getvalue().startswith("ok: ")
        schemas = crd_schemas()
        for obj in documents(target.read_text()):
            assert crdschema.validate(obj, schemas[str(obj["kind"])]) == [], obj


def test_loss_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    code, out, err = run(["migrate", "-o", str(target), str(FIXTURES / "metallb-lossy.yaml")])
    assert code == 1
    assert out == "" and not target.exists()
    assert err.splitlines()[:3] == [
        "lost: BFDProfile/fast: vipam has no BFD; not converted",
        "lost: BGPPeer/peer1: spec.bfdProfile: vipam has no BFD; dropped",
        "lost: BGPPeer/peer1: spec.vrf: vipam has no VRFs: the session would open in the default "
        "VRF; dropped",
    ]
    assert "nothing written" in err.splitlines()[-1]


def test_allow_loss_writes_the_rest_and_still_reports() -> None:
    code, out, err = run(["migrate", "--allow-loss", str(FIXTURES / "metallb-lossy.yaml")])
    assert code == 0
    names = {(d["kind"], d["metadata"]["name"]) for d in documents(out)}  # type: ignore[index]
    assert names == {("IPPool", "lan"), ("BGPPeer", "peer1")}
    assert err.count("lost: ") == 3


def test_stdin_is_read_with_a_dash() -> None:
    text = (FIXTURES / "cilium-list.yaml").read_text()
    code, out, err = run(["migrate", "-"], stdin=text)
    assert code == 0, err
    pool = next(d for d in documents(out) if d["kind"] == "IPPool")
    assert pool["spec"] == {
        "addresses": ["203.0.113.0/26", "203.0.113.100-203.0.113.120"],
        "exclude": ["203.0.113.0", "203.0.113.63"],
        "serviceAllocation": {"namespaces": ["tenant-a"]},
    }
    assert "--compat cilium" in err


def test_files_and_stdin_combine() -> None:
    stdin = "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: extra}\n"
    code, out, _ = run(["migrate", str(FIXTURES / "cilium-list.yaml"), "-"], stdin=stdin)
    assert code == 0
    assert {d["metadata"]["name"] for d in documents(out)  # type: ignore[index]
            if d["kind"] == "L2Advertisement"} == {"l2", "extra"}


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (["migrate"], "", "give YAML files (or -) or --kubeconfig, not both"),
    (["migrate", "--kubeconfig", "k", "x.yaml"], "", "not both"),
    (["migrate", "/nonexistent/x.yaml"], "", "/nonexistent/x.yaml: cannot read"),
    (["migrate", "-"], "a: [unclosed", "stdin: not YAML"),
    (["migrate", "-"], "- just\n- a list\n", "stdin: document 1: not a mapping"),
    (["migrate", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
     "no MetalLB or Cilium LB-IPAM object found"),
    (["migrate", "-"], "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\n"
                       "metadata: {name: p}\nspec: {addresses: [bogus]}\n",
     "error: IPAddressPool/p: spec.addresses[0]: 'bogus' is not a CIDR or range"),
])
def test_unusable_input_exits_2_and_writes_nothing(argv: list[str], stdin: str,
                                                   message: str) -> None:
    code, out, err = run(argv, stdin)
    assert code == 2
    assert out == ""
    assert message in err


def test_an_unwritable_output_exits_2(tmp_path: Path) -> None:
    code, _, err = run(["migrate", "-o", str(tmp_path / "no" / "such" / "dir.yaml"),
                        str(FIXTURES / "metallb.yaml")])
    assert code == 2
    assert "cannot write" in err and "No such file or directory" in err


def test_unreadable_kubeconfig_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("not: a kubeconfig\n")
    code, out, err = run(["migrate", "--kubeconfig", str(broken)])
    assert code == 2 and out == ""
    assert "vipam migrate: cannot load kubeconfig" in err


def test_the_installed_entry_point_runs_it() -> None:
    """`python -m ccm migrate` in a real process, output piped into `vipam check`."""
    env_path = str(ROOT)
    converted = subprocess.run(
        [sys.executable, "-m", "ccm", "migrate", str(FIXTURES / "metallb.yaml")],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": env_path}, timeout=60,
        check=False,
    )
    assert converted.returncode == 0, converted.stderr
    checked = subprocess.run(
        [sys.executable, "-m", "ccm", "check", "/dev/stdin"], input=converted.stdout,
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": env_path}, timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.strip() == "ok: 6 object(s) valid"
