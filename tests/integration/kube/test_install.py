"""`kubectl apply -k config/` (and the samples) under the real server's field validation: not
one unknown field, which a lenient apply would drop with only a warning.

Server-side apply sends every object whole each time and refuses a field the schema does not
declare (a client-side apply sends nothing for an unchanged object, so its silence would prove
nothing); --dry-run=server checks the install again on the session's server without changing
it. The session itself installed config/ with `kubectl apply --validate=strict`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from devkit.apiserver import ApiServer
from tests.realkube import RealCluster, unique

ROOT = Path(__file__).resolve().parents[3]
SERVER_SIDE = ("apply", "--server-side", "--force-conflicts", "--field-manager=vipam-test")


def kubectl(server: ApiServer, *args: str, stdin: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    return server.kubectl(*args, check=False, input=stdin)


def test_install_has_no_unknown_fields(apiserver: ApiServer) -> None:
    done = kubectl(apiserver, *SERVER_SIDE, "--validate=strict", "--dry-run=server", "-k",
                   str(ROOT / "config"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no warning of any kind
    assert done.stdout.count("serverside-applied (server dry run)") >= 10, done.stdout


def test_samples_have_no_unknown_fields(real_cluster: RealCluster) -> None:
    """The samples for real, by client-side apply under --validate=warn: their objects are new,
    so each is sent whole and an unknown field would come back as a warning. real_cluster
    removes what they made."""
    samples = str(ROOT / "config" / "samples")
    done = kubectl(real_cluster.server, "apply", "--validate=warn", "-k", samples)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    strict = kubectl(real_cluster.server, *SERVER_SIDE, "--validate=strict",
                     "--dry-run=server", "-k", samples)
    assert strict.returncode == 0 and strict.stderr == "", strict.stderr


def test_an_unknown_field_is_caught(apiserver: ApiServer) -> None:
    """The checks above can fail: the install's Deployment with one misspelt field is refused
    by server-side apply and by a strict apply, and warned about by a lenient one (which would
    apply it without the field)."""
    rendered = kubectl(apiserver, "kustomize", str(ROOT / "config")).stdout
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    deployment["metadata"]["name"] = unique("misspelt")
    deployment["spec"]["replica"] = 2  # for replicas
    manifest = yaml.safe_dump(deployment)
    refused = kubectl(apiserver, *SERVER_SIDE, "--dry-run=server", "-f", "-", stdin=manifest)
    assert refused.returncode != 0, refused.stdout
    assert ".spec.replica: field not declared in schema" in refused.stderr, refused.stderr
    strict = kubectl(apiserver, "apply", "--validate=strict", "--dry-run=server", "-f", "-",
                     stdin=manifest)
    assert strict.returncode != 0 and 'unknown field "spec.replica"' in strict.stderr
    warned = kubectl(apiserver, "apply", "--validate=warn", "--dry-run=server", "-f", "-",
                     stdin=manifest)
    assert warned.returncode == 0, warned.stderr
    assert 'unknown field "spec.replica"' in warned.stderr, warned.stderr
