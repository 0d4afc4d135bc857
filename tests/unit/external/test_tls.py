"""TLS to the IPAM: verified against the pool's CA bundle, refused without it.

The CA and server certificate are made per test run with the openssl CLI (the venv has no
`cryptography`), for 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devkit.reference_ipam import ReferenceServer
from pools.external.base import AllocationKey, BackendError, RetryPolicy
from pools.external.http import HTTPBackend
from tests.prereq import require


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(shutil.which("openssl") is not None, "openssl CLI is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=vipam test CA", cwd=d)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
    return d


@pytest.fixture
async def tls_server(pki: Path) -> AsyncIterator[ReferenceServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    server = ReferenceServer({"p": ["192.0.2.0/29"]}, token="tls-token")
    await server.start(ssl_context=context)
    yield server
    await server.stop()


async def test_ca_bundle_makes_the_server_trusted(tls_server: ReferenceServer, pki: Path) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")
    client = HTTPBackend(tls_server.url, "tls-token", ca_bundle=(pki / "ca.pem").read_text())
    try:
        await client.health()
        ip = await client.allocate(AllocationKey("c1", "u1", "IPv4"), service="default/web")
        assert ip.startswith("192.0.2.")
    finally:
        await client.close()


async def test_untrusted_certificate_fails_without_retrying(tls_server: ReferenceServer) -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    client = HTTPBackend(tls_server.url, "tls-token", retry=RetryPolicy(sleep=record))
    try:
        with pytest.raises(BackendError) as refused:
            await client.health()
        assert refused.value.reason == "Unavailable"
        assert "TLS" in refused.value.message
        assert not refused.value.retryable and slept == []
        assert tls_server.requests == []
    finally:
        await client.close()


async def test_standalone_server_serves_https(pki: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devkit.reference_ipam",
        "--listen", f"127.0.0.1:{port}", "--token", "cli-token", "--pool", "lab=192.0.2.0/29",
        "--cert", str(pki / "server.pem"), "--key", str(pki / "server.key"),
        stdout=asyncio.subprocess.PIPE,
    )
    client = HTTPBackend(f"https://127.0.0.1:{port}", "cli-token",
                         ca_bundle=(pki / "ca.pem").read_text())
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        assert line.decode().strip() == f"reference IPAM listening on https://127.0.0.1:{port}"
        ip = await client.allocate(AllocationKey("c1", "u1", "IPv4"), service="default/web")
        assert ip == "192.0.2.1"
    finally:
        await client.close()
        process.terminate()
        await process.wait()
