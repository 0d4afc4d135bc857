"""The project's real CRDs (config/crd, read-only here) load into the emulator and behave:
cluster scope, status subresource, printer columns, schema validation; the samples apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from devkit.emulator import Emulator
from devkit.emulator.crds import load_crd_documents

ROOT = Path(__file__).resolve().parents[3]
CRD_DIR = ROOT / "config" / "crd"
SAMPLES = ROOT / "config" / "samples"
KINDS = {"IPPool", "L2Advertisement", "BGPAdvertisement", "BGPPeer"}

pytestmark = pytest.mark.skipif(not list(CRD_DIR.glob("*.yaml")),
                                reason="config/crd has no CRDs yet")


@pytest.fixture
async def project() -> Any:
    async with Emulator(crd_paths=[CRD_DIR]) as emu:
        yield emu


def path_for(emu: Emulator, obj: dict[str, Any]) -> str:
    group, _, version = obj["apiVersion"].rpartition("/")
    rt = next(t for t in emu.registry.all()
              if t.group == group and t.version == version and t.kind == obj["kind"])
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if rt.namespaced:
        base += f"/namespaces/{obj['metadata'].get('namespace', 'default')}"
    return f"{base}/{rt.plural}"


async def post(emu: Emulator, obj: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(
            emu.url + path_for(emu, obj), json=obj) as response:
        return response.status, await response.json()


def test_crd_files_declare_the_designed_kinds() -> None:
    crds = load_crd_documents([CRD_DIR])
    assert {c["spec"]["names"]["kind"] for c in crds} == KINDS
    for crd in crds:
        assert crd["spec"]["group"] == "vipam.io" and crd["spec"]["scope"] == "Cluster"


async def test_crds_are_served_with_status_and_columns(project: Emulator) -> None:
    served = {rt.kind: rt for rt in project.registry.all() if rt.group == "vipam.io"}
    assert set(served) == KINDS
    for rt in served.values():
        assert rt.version == "v1alpha1" and not rt.namespaced
        assert rt.status_subresource and rt.printer_columns


async def test_samples_create_cleanly(project: Emulator) -> None:
    documents = [d for f in sorted(SAMPLES.glob("*.yaml")) if f.name != "kustomization.yaml"
                 for d in yaml.safe_load_all(f.read_text()) if isinstance(d, dict)]
    if not documents:
        pytest.skip("config/samples has no objects yet")
    documents.sort(key=lambda d: d["kind"] != "Namespace")  # namespaces first, as kubectl does
    for document in documents:
        status, body = await post(project, document)
        assert status == 201, (document["metadata"]["name"], body)
    pools = project.list_objects("vipam.io/v1alpha1/ippools")
    assert pools and all(p["metadata"]["generation"] == 1 for p in pools)


@pytest.mark.parametrize("spec", [
    {"addresses": [42]},  # address words are CEL (real server only); types are schema
    {"addresses": ["192.0.2.0/24"], "priority": "high"},
    {"addresses": ["192.0.2.0/24"], "external": {"provider": "carrier-pigeon",
                                                 "url": "https://ipam.example"}},
])
async def test_ippool_schema_rejects_bad_specs(project: Emulator, spec: dict[str, Any]) -> None:
    status, body = await post(project, {"apiVersion": "vipam.io/v1alpha1", "kind": "IPPool",
                                        "metadata": {"name": "bad"}, "spec": spec})
    assert status == 422 and body["reason"] == "Invalid", body


async def test_ippool_status_goes_through_the_subresource(project: Emulator) -> None:
    pool = {"apiVersion": "vipam.io/v1alpha1", "kind": "IPPool", "metadata": {"name": "p"},
            "spec": {"addresses": ["192.0.2.0/28"]},
            "status": {"ipv4": {"capacity": "16", "allocated": "0", "available": "16"}}}
    status, created = await post(project, pool)
    assert status == 201 and "status" not in created
    url = project.url + "/apis/vipam.io/v1alpha1/ippools/p/status"
    patch = {"status": {"ipv4": {"capacity": "16", "allocated": "1", "available": "15"}}}
    async with aiohttp.ClientSession() as session, session.patch(
            url, json=patch, headers={"Content-Type": "application/merge-patch+json"}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"]["ipv4"]["allocated"] == "1"
