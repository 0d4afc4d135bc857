"""A real kube-apiserver with its own etcd, for tests and benchmarks.

The binaries come from `$KUBEBUILDER_ASSETS` (the envtest convention: a folder holding
`kube-apiserver`, `etcd` and `kubectl`; `scripts/k8s-assets` prepares one from `../shared/k8s`).
The server runs with RBAC and token authentication, exactly as a cluster's does, so a process
given a ServiceAccount token (`create_token`) gets what `config/rbac` grants and nothing more.

There is no kube-controller-manager, scheduler or kubelet: nothing garbage-collects, finalizes
namespaces, schedules Pods or fills EndpointSlices. Tests create what they need.

Everything binds to loopback (or to `host` inside a network namespace, through `wrap`); `stop`
ends the processes it started by pid and removes its data directory.
"""

from __future__ import annotations

import base64
import ctypes
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICE_CIDRS = "10.96.0.0/16,fd00:10:96::/112"
# What the audit log records: every request made with a ServiceAccount token (the product's
# processes), at Metadata level (user, verb, object, response code; no bodies). The admin's and
# the server's own requests are left out, so the log stays small.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""
ASSETS_HINT = (
    "set KUBEBUILDER_ASSETS to a folder with kube-apiserver, etcd and kubectl "
    "(scripts/k8s-assets makes .k8s-bin from ../shared/k8s; elsewhere `setup-envtest use 1.36`)"
)


def assets_dir() -> Path | None:
    """The KUBEBUILDER_ASSETS folder, or the checkout's .k8s-bin when that is complete."""
    given = os.environ.get("KUBEBUILDER_ASSETS")
    candidates = [Path(given)] if given else [Path(__file__).resolve().parents[1] / ".k8s-bin"]
    for folder in candidates:
        if all((folder / name).exists() for name in ("kube-apiserver", "etcd")):
            return folder
    return None


def missing_reason() -> str | None:
    """None when a real API server can be started here, else why not."""
    folder = assets_dir()
    if folder is None:
        return f"no real kube-apiserver: {ASSETS_HINT}"
    if shutil.which("openssl") is None:
        return "no real kube-apiserver: openssl is needed to make its certificates"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@dataclass
class ApiServer:
    """etcd + kube-apiserver on free ports under `workdir`.

    `wrap` prefixes both commands (e.g. `("ip", "netns", "exec", "ctl")`) so that the control
    plane can live in a network namespace; `host` is then that namespace's address. Ports are
    chosen on this host's loopback unless given. With `audit=True` the server writes an audit
    log (`audit_log`, read with `audit_events`) of every request made with a ServiceAccount
    token: who asked for what, and what the server answered (a 403 is RBAC refusing).
    """

    workdir: Path
    host: str = "127.0.0.1"
    wrap: Sequence[str] = ()
    port: int = 0
    etcd_port: int = 0
    extra_args: Sequence[str] = ()
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    audit: bool = False
    _etcd: subprocess.Popen[bytes] | None = None
    _apiserver: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        folder = assets_dir()
        if folder is None:
            raise RuntimeError(ASSETS_HINT)
        self.assets = folder
        self.port = self.port or free_port()
        self.etcd_port = self.etcd_port or free_port()
        self.etcd_peer_port = free_port()
        self._ssl_context: ssl.SSLContext | None = None
        self._local = threading.local()

    # -- paths -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    @property
    def kubectl_path(self) -> str:
        local = self.assets / "kubectl"
        return str(local) if local.exists() else (shutil.which("kubectl") or "kubectl")

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> ApiServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._make_pki()
        self.start_etcd()
        self.start_apiserver(timeout)
        return self

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start_etcd(self) -> None:
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        log = (self.workdir / "etcd.log").open("ab")
        self._etcd = subprocess.Popen(
            [*self.wrap, str(self.assets / "etcd"), "--data-dir", str(self.workdir / "etcd"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-cluster", f"default={peer}",
             "--initial-advertise-peer-urls", peer, "--name", "default",
             "--unsafe-no-fsync", "--quota-backend-bytes", str(4 << 30)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent(),
        )

    def start_apiserver(self, timeout: float = 60.0) -> None:
        """Start (or restart, after `stop_apiserver`) the API server on the same port and etcd."""
        pki = self.workdir / "pki"
        log = (self.workdir / "apiserver.log").open("ab")
        audit: list[str] = []
        if self.audit:
            policy = self.workdir / "audit-policy.yaml"
            policy.write_text(AUDIT_POLICY)
            # blocking: an event is written before its response is sent, so a reader that has
            # seen the response finds the event
            audit = ["--audit-policy-file", str(policy), "--audit-log-path", str(self.audit_log),
                     "--audit-log-mode", "blocking", "--audit-log-format", "json"]
        self._apiserver = subprocess.Popen(
            [*self.wrap, str(self.assets / "kube-apiserver"),
             "--etcd-servers", f"http://127.0.0.1:{self.etcd_port}",
             "--bind-address", self.host, "--secure-port", str(self.port),
             "--advertise-address", self.host,
             "--tls-cert-file", str(pki / "server.crt"),
             "--tls-private-key-file", str(pki / "server.key"),
             "--client-ca-file", str(pki / "ca.crt"),
             "--service-cluster-ip-range", SERVICE_CIDRS,
             "--authorization-mode", "RBAC", "--token-auth-file", str(pki / "tokens.csv"),
             "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
             "--service-account-key-file", str(pki / "sa.pub"),
             "--service-account-signing-key-file", str(pki / "sa.key"),
             "--disable-admission-plugins", "ServiceAccount",
             "--endpoint-reconciler-type", "none",
             *audit, *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        self.wait_ready(timeout)

    def etcd_put(self, items: Iterable[tuple[str, bytes]], batch: int = 128) -> int:
        """Write keys straight into this server's etcd, `batch` puts per transaction (etcd's
        default --max-txn-ops), through etcd's JSON gateway; returns how many were written.

        For benchmarks that need a server holding more objects than its API can admit in
        the time at hand. The API server's own watch on etcd brings them into its cache, and
        it reads JSON from storage as well as protobuf, so a JSON object written here reads
        back through the API like any other (resourceVersion: the etcd revision)."""
        url = f"http://127.0.0.1:{self.etcd_port}/v3/kv/txn"

        def send(ops: list[dict[str, Any]]) -> None:
            body = json.dumps({"success": ops}).encode()
            request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=60) as resp:
                answer = json.load(resp)
            if not answer.get("succeeded"):
                raise RuntimeError(f"etcd transaction failed: {str(answer)[:300]}")

        written = 0
        ops: list[dict[str, Any]] = []
        for key, value in items:
            ops.append({"request_put": {"key": base64.b64encode(key.encode()).decode(),
                                        "value": base64.b64encode(value).decode()}})
            if len(ops) == batch:
                send(ops)
                written, ops = written + len(ops), []
        if ops:
            send(ops)
            written += len(ops)
        return written

    def pids(self) -> dict[str, int]:
        """The running server processes by name (benchmarks read their CPU time)."""
        procs = {"etcd": self._etcd, "kube-apiserver": self._apiserver}
        return {name: p.pid for name, p in procs.items() if p is not None and p.poll() is None}

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self._apiserver is not None and self._apiserver.poll() is not None:
                raise RuntimeError(f"kube-apiserver exited: {self.log_tail()}")
            try:
                status, body = self.request("GET", "/readyz")
                if status == 200:
                    return
                last = body.decode(errors="replace")[-300:]
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise RuntimeError(f"kube-apiserver not ready after {timeout}s: {last}")

    def stop_apiserver(self, sig: int = signal.SIGTERM, timeout: float = 90.0) -> None:
        """Stop only the API server (etcd and the data stay), for outage tests."""
        _end(self._apiserver, sig, timeout)
        self._apiserver = None

    def stop(self) -> None:
        _end(self._apiserver, signal.SIGTERM, 20)
        _end(self._etcd, signal.SIGTERM, 20)
        self._apiserver = self._etcd = None
        shutil.rmtree(self.workdir / "etcd", ignore_errors=True)

    @property
    def apiserver_pid(self) -> int | None:
        return self._apiserver.pid if self._apiserver else None

    def log_tail(self, lines: int = 20) -> str:
        path = self.workdir / "apiserver.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # -- certificates and tokens -----------------------------------------------------------------
    def _make_pki(self) -> None:
        pki = self.workdir / "pki"
        if (pki / "server.crt").exists():
            return
        pki.mkdir(parents=True, exist_ok=True)
        _openssl("genrsa", "-out", str(pki / "ca.key"), "2048")
        _openssl("req", "-x509", "-new", "-key", str(pki / "ca.key"), "-days", "3650",
                 "-subj", "/CN=vipam-test-ca", "-out", str(pki / "ca.crt"))
        _openssl("genrsa", "-out", str(pki / "server.key"), "2048")
        sans = ["DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc", "IP:127.0.0.1", "IP:10.96.0.1",
                f"IP:{self.host}"]
        ext = pki / "san.ext"
        ext.write_text(f"subjectAltName={','.join(dict.fromkeys(sans))}\n")
        _openssl("req", "-new", "-key", str(pki / "server.key"), "-subj", "/CN=kube-apiserver",
                 "-out", str(pki / "server.csr"))
        _openssl("x509", "-req", "-in", str(pki / "server.csr"), "-CA", str(pki / "ca.crt"),
                 "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "3650",
                 "-extfile", str(ext), "-out", str(pki / "server.crt"))
        _openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
        _openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
        (pki / "tokens.csv").write_text(
            f'{self.admin_token},admin,admin-uid,"system:masters"\n'
        )

    def kubeconfig(self, path: Path, token: str | None = None, namespace: str = "default") -> Path:
        """A kubeconfig for the admin (default) or for a token from `create_token`."""
        config = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "real", "cluster": {
                "server": self.url, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": "user", "user": {"token": token or self.admin_token}}],
            "contexts": [{"name": "real", "context": {
                "cluster": "real", "user": "user", "namespace": namespace}}],
            "current-context": "real",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=1))
        return path

    def create_token(self, service_account: str, namespace: str,
                     seconds: int = 24 * 3600) -> str:
        """A real ServiceAccount token (TokenRequest, what `kubectl create token` does)."""
        status, body = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "spec": {"expirationSeconds": seconds}},
        )
        if status != 201:
            raise RuntimeError(f"TokenRequest for {namespace}/{service_account}: {status} {body!r}")
        return str(json.loads(body)["status"]["token"])

    # -- requests --------------------------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context(cafile=str(self.ca_file))
        return self._ssl_context

    def _connection(self, timeout: float) -> http.client.HTTPSConnection:
        """This thread's keep-alive connection (a TLS handshake per request costs more than
        the request: cleanup deletes thousands of objects)."""
        conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self._ssl(),
                                               timeout=timeout)
            self._local.conn = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def request(self, method: str, path: str, body: Any = None,
                token: str | None = None, content_type: str = "application/json",
                timeout: float = 10.0) -> tuple[int, bytes]:
        """One HTTP request as the admin (or `token`); returns (status, body) even for errors."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            conn = self._connection(timeout)
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                return int(response.status), response.read()
            except (http.client.HTTPException, ConnectionError, ssl.SSLError):
                # a keep-alive connection the server closed (restart, idle timeout): once more
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
            except OSError:  # a timeout leaves the connection mid-response: never reuse it
                conn.close()
                self._local.conn = None
                raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.request(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {data[:500]!r}")
        return json.loads(data) if data else None

    def kubectl(self, *args: str, kubeconfig: Path | None = None, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        config = kubeconfig or self.kubeconfig(self.workdir / "admin.kubeconfig")
        return subprocess.run(
            [self.kubectl_path, "--kubeconfig", str(config), *args],
            check=check, capture_output=True, text=True, input=input, timeout=120,
        )

    def audit_offset(self) -> int:
        """Where the audit log ends now: `audit_events(offset)` returns what came after."""
        return self.audit_log.stat().st_size if self.audit_log.exists() else 0

    def audit_events(self, offset: int = 0) -> list[dict[str, Any]]:
        """Audit events (one per finished request made with a ServiceAccount token) written
        after `offset`; `audit=True` must have been given."""
        if not self.audit:
            raise RuntimeError("this ApiServer was started without audit=True")
        if not self.audit_log.exists():
            return []
        with self.audit_log.open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def audit_writes(self, username: str, offset: int = 0) -> dict[str, int]:
        """Write requests (create, update, patch, delete) made by `username` after `offset`,
        by "verb/resource[/subresource]", from the audit log; a refused or failed one is
        keyed with its code, as "patch/services (409)": still a request the server served."""
        counts: dict[str, int] = {}
        for event in self.audit_events(offset):
            if (event.get("user", {}).get("username") != username
                    or event["verb"].upper() not in WRITE_VERBS):
                continue
            ref = event.get("objectRef") or {}
            code = (event.get("responseStatus") or {}).get("code", 0)
            key = "/".join(filter(None, (event["verb"], ref.get("resource"),
                                         ref.get("subresource"))))
            if not 200 <= code < 300:
                key += f" ({code})"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def request_counts(self) -> dict[tuple[str, str, str, str], float]:
        """`apiserver_request_total` summed over codes: (verb, group, resource, subresource) ->
        requests since the server started. Compare two readings to count a test's requests."""
        status, body = self.request("GET", "/metrics", timeout=30)
        if status != 200:
            raise RuntimeError(f"/metrics: {status}")
        return parse_request_totals(body.decode())


def parse_request_totals(text: str) -> dict[tuple[str, str, str, str], float]:
    totals: dict[tuple[str, str, str, str], float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_text, value = line[len("apiserver_request_total{"):].rsplit("} ", 1)
        labels = dict(
            (part.split("=", 1)[0], part.split("=", 1)[1].strip('"'))
            for part in _split_labels(labels_text)
        )
        key = (labels.get("verb", ""), labels.get("group", ""), labels.get("resource", ""),
               labels.get("subresource", ""))
        totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def _split_labels(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    if current:
        parts.append(current)
    return parts


WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION",
                         "CREATE", "UPDATE", "APPLY"})


def count_delta(before: dict[tuple[str, str, str, str], float],
                after: dict[tuple[str, str, str, str], float], *, writes_only: bool = True,
                resource: str | None = None) -> dict[tuple[str, str, str, str], int]:
    """Requests between two `request_counts` readings, optionally writes to one resource."""
    delta: dict[tuple[str, str, str, str], int] = {}
    for key, value in after.items():
        grown = round(value - before.get(key, 0.0))
        verb, _, res, _ = key
        if grown <= 0 or (writes_only and verb.upper() not in WRITE_VERBS):
            continue
        if resource is not None and res != resource:
            continue
        delta[key] = grown
    return delta


def die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking the kernel to SIGKILL the child when this process dies, so a
    test run or benchmark killed from outside leaves no etcd or API server behind.

    Only from the main thread: the signal follows the *thread* that forked, and a worker
    thread (asyncio.to_thread) can end while the server should keep running."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()

    def hook() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)

    return hook


PR_SET_PDEATHSIG = 1


def _end(process: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
