"""Shared fixtures and helpers: tusgate (+ optional nginx stand-in), granite-assets, clients.

Every test module gets its own stack (module-scoped `stack` fixture):

* tusgate, started as
  ``$TUSGATE_BIN -host 127.0.0.1 -port 0 -upload-dir D/uploads --assets-dir D/storage
  $GRANITE_TUSGATE_ARGS`` (plus the test module's ``TUSGATE_ARGS``, if it sets any) with
  ``UPLOAD_SECRET`` / ``SECURE_LINK_SECRET`` (random per module) in
  its environment; the port is read from its ``You can now upload files to: …`` line.
  ``TUSGATE_BIN`` is required: unset or not executable is a test failure, never a skip.
* a granite-assets ``LocalNginxAssetRepository`` configured exactly as an application would:
  ``storage_path=D/storage``, ``tusd_url`` = tusgate, ``base_url`` = ``<download origin>/assets``.
* the download origin is tusgate itself, unless ``GRANITE_DOWNLOAD_VIA_NGINX=1``: then a Debian
  nginx (``$NGINX_BIN``, default /usr/sbin/nginx) with the secure_link configuration of
  shared/reference/nginx-secure-link-test.conf (server A) serves the same storage directory —
  a stand-in to prove the download assertions against the reference implementation.

Every wait is bounded, every process is killed at module teardown, and the tails of the server
logs are attached to the report of any failing test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import secrets
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from granite_assets import (
    AssetVisibility,
    LocalNginxAssetRepository,
    LocalNginxAssetRepositoryConfig,
    UploadUrlResult,
    build_asset_repository,
)
from tusclient.client import TusClient

HERE = Path(__file__).resolve().parent
KiB = 1024
MiB = 1024 * KiB
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
HTTP_TIMEOUT_S = 30.0
NODE_TIMEOUT_S = 90.0
# Per-test deadline: tuspy sets no socket timeouts, so a hung server would hang forever.
TEST_TIMEOUT_S = int(os.environ.get("GRANITE_TEST_TIMEOUT", "120"))
READY_LINE = re.compile(r"You can now upload files to: http://127\.0\.0\.1:(\d+)/files/")
VISIBILITIES = [AssetVisibility.PRIVATE, AssetVisibility.PUBLIC]


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def executable(env_name: str, default: str | None = None) -> str:
    """The path in $env_name (or `default`), or fail the test clearly."""
    path = os.environ.get(env_name) or default
    if not path:
        pytest.fail(f"{env_name} is not set: point it at the binary to test "
                    "(e.g. target/release/tusgate)", pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"{env_name}={path!r} is not an executable file", pytrace=False)
    return path


class Process:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str]):
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as log:
            log.write(f"==> {shlex.join(command)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"{self.name} exited with code {self.proc.returncode}\n"
                        f"{self.log_tail()}", pytrace=False)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL the whole group after STOP_TIMEOUT_S; always reaps."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no {self.name} log)"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- {self.name}: {self.log_path} ---\n{tail}"


def wait_until(what: str, process: Process, probe) -> object:
    """Poll `probe()` until it returns something truthy; bounded by READY_TIMEOUT_S."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        process.check_alive()
        result = probe()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"{what} not ready after {READY_TIMEOUT_S:.0f} s\n{process.log_tail()}",
                pytrace=False)


def start_tusgate(workdir: Path, upload_secret: str, link_secret: str,
                  extra_args: list[str] = ()) -> tuple[Process, int]:
    binary = executable("TUSGATE_BIN")
    command = [binary, "-host", "127.0.0.1", "-port", "0",
               "-upload-dir", str(workdir / "uploads"), "--assets-dir", str(workdir / "storage"),
               *shlex.split(os.environ.get("GRANITE_TUSGATE_ARGS", "")), *extra_args]
    env = {**os.environ, "UPLOAD_SECRET": upload_secret, "SECURE_LINK_SECRET": link_secret}
    log_path = workdir / "tusgate.log"
    process = Process("tusgate", command, log_path, env)

    def port_from_log():
        match = READY_LINE.search(log_path.read_text(errors="replace"))
        return int(match.group(1)) if match else None

    try:
        port = wait_until("tusgate", process, port_from_log)
    except BaseException:
        process.stop()
        raise
    return process, port


# The secure_link part of shared/reference/nginx-secure-link-test.conf (server A, the shape of
# granite-assets' operator template), with absolute paths, this module's port and secret.
NGINX_CONF = """\
worker_processes 1;
master_process off;   # one process, as the current user: it can read the pytest temp dirs
daemon off;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    include {mime_types};
    default_type application/octet-stream;
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/client_body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_timeout 5;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/html;
        location /assets/public/ {{
            alias {storage}/public/;
            autoindex off;
        }}
        location /assets/private/ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri {secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
            alias {storage}/private/;
            autoindex off;
        }}
        location /assets/ {{ return 403; }}
        location = /health {{ return 200 "OK\\n"; }}
    }}
}}
"""


def start_nginx(workdir: Path, storage: Path, link_secret: str) -> tuple[Process, int]:
    binary = executable("NGINX_BIN", "/usr/sbin/nginx")
    prefix = workdir / "nginx"
    for sub in ("conf", "html", "tmp"):
        (prefix / sub).mkdir(parents=True)
    port = free_port()
    conf = prefix / "conf" / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=prefix, port=port, storage=storage, secret=link_secret,
                                      mime_types=os.environ.get("NGINX_MIME_TYPES",
                                                                "/etc/nginx/mime.types")))
    process = Process("nginx", [binary, "-p", str(prefix), "-c", str(conf)],
                      workdir / "nginx.log", dict(os.environ))

    def healthy():
        try:
            return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until("nginx", process, healthy)
    except BaseException:
        process.stop()
        raise
    return process, port


# ---------------------------------------------------------------------------
# The stack of one test module
# ---------------------------------------------------------------------------

@dataclass
class Stack:
    workdir: Path
    storage: Path
    uploads: Path
    tusd_url: str        # tusgate's origin (granite's tusd_url)
    base_url: str        # download root (granite's base_url)
    config: LocalNginxAssetRepositoryConfig
    repo: LocalNginxAssetRepository
    processes: list[Process]

    def upload_url(self, key: str, content_type: str = "application/octet-stream",
                   visibility: AssetVisibility = AssetVisibility.PRIVATE,
                   ttl_seconds: int | None = None) -> UploadUrlResult:
        return self.repo.build_upload_url(key, content_type, ttl_seconds, visibility=visibility)

    def published_path(self, visibility: AssetVisibility, key: str) -> Path:
        return self.storage / visibility.value / key

    def tree(self, *, uploads: bool = True) -> dict[str, tuple]:
        """Everything under storage/ (and uploads/), to compare before/after snapshots:
        relative path -> ("dir",) or ("file", size, mtime_ns)."""
        snapshot = {}
        for root in (self.storage, self.uploads) if uploads else (self.storage,):
            for path in sorted(root.rglob("*")):
                st = path.lstat()
                entry = ("dir",) if path.is_dir() else ("file", st.st_size, st.st_mtime_ns)
                snapshot[f"{root.name}/{path.relative_to(root)}"] = entry
        return snapshot

    def log_tails(self) -> str:
        return "\n".join(p.log_tail() for p in self.processes)


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory) -> Iterator[Stack]:
    """The module's stack; a test module may set TUSGATE_ARGS (a list) for flags it needs."""
    workdir = tmp_path_factory.mktemp("granite")
    storage, uploads = workdir / "storage", workdir / "uploads"
    storage.mkdir()
    uploads.mkdir()
    upload_secret, link_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)

    processes: list[Process] = []
    try:
        tusgate, port = start_tusgate(workdir, upload_secret, link_secret,
                                      getattr(request.module, "TUSGATE_ARGS", []))
        processes.append(tusgate)
        tusd_url = download_origin = f"http://127.0.0.1:{port}"
        if os.environ.get("GRANITE_DOWNLOAD_VIA_NGINX") == "1":
            nginx, nginx_port = start_nginx(workdir, storage, link_secret)
            processes.append(nginx)
            download_origin = f"http://127.0.0.1:{nginx_port}"

        config = LocalNginxAssetRepositoryConfig(
            storage_path=str(storage),
            base_url=f"{download_origin}/assets",
            tusd_url=tusd_url,
            upload_secret=upload_secret,
            secure_link_secret=link_secret,
        )
        yield Stack(workdir, storage, uploads, tusd_url, config.base_url, config,
                    build_asset_repository(config), processes)
    finally:
        for process in reversed(processes):
            process.stop()


# ---------------------------------------------------------------------------
# Data and checks
# ---------------------------------------------------------------------------

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_bytes(size: int, seed: int | str = 0) -> bytes:
    return random.Random(f"{seed}/{size}").randbytes(size)


def source_file(directory: Path, data: bytes, name: str = "source.bin") -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def unique_prefix() -> str:
    """A fresh top-level folder for a test's keys, so tests sharing a stack never collide."""
    return f"t-{secrets.token_hex(6)}"


def assert_published(stack: Stack, visibility: AssetVisibility, key: str, data: bytes) -> None:
    """The file is at storage/<visibility>/<key> (exact bytes of the key) with exactly `data`,
    nothing of the key is under the other visibility, and no stray file sits next to it."""
    path = stack.published_path(visibility, key)
    assert path.is_file(), f"not published at {path}"
    stored = path.read_bytes()
    assert sha256(stored) == sha256(data), \
        f"published bytes differ ({len(stored)} stored vs {len(data)} uploaded)"
    siblings = os.listdir(os.fsencode(path.parent))
    assert os.fsencode(path.name) in siblings
    assert siblings == [os.fsencode(path.name)], f"stray files next to {path}: {siblings}"
    other = next(v for v in AssetVisibility if v != visibility)
    assert not stack.published_path(other, key).exists(), f"also published as {other.value}"


def download(url: str, **kwargs) -> requests.Response:
    return requests.get(url, timeout=HTTP_TIMEOUT_S, **kwargs)


def assert_downloads(stack: Stack, key: str, visibility: AssetVisibility, data: bytes) -> str:
    """build_download_url(key) has the shape granite promises and GET returns exactly `data`.
    Returns the URL."""
    url = stack.repo.build_download_url(key).url
    plain = f"{stack.base_url}/{visibility.value}/{key}"
    if visibility is AssetVisibility.PUBLIC:
        assert url == plain, "public download URL is not the plain URL"
    else:
        assert url.startswith(f"{plain}?md5=") and "&expires=" in url, url
    resp = download(url)
    assert resp.status_code == 200, \
        f"GET {url} -> {resp.status_code} {resp.text[:200]!r} (download side: {stack.base_url})"
    assert sha256(resp.content) == sha256(data), \
        f"downloaded bytes differ ({len(resp.content)} vs {len(data)})"
    return url


# ---------------------------------------------------------------------------
# Upload-Metadata and raw creation requests
# ---------------------------------------------------------------------------

def decode_metadata(header: str) -> dict[str, str]:
    """granite's Upload-Metadata ("k b64, k b64, ...") -> {k: decoded text}."""
    pairs = (item.strip().split(" ", 1) for item in header.split(",") if item.strip())
    return {p[0]: base64.b64decode(p[1]).decode() if len(p) > 1 else "" for p in pairs}


def encode_metadata(metadata: dict[str, str]) -> str:
    """The inverse of decode_metadata, in granite's format (", " separated, standard base64)."""
    return ", ".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())


def create_upload(result: UploadUrlResult, upload_length: int,
                  headers: dict[str, str] | None = None) -> requests.Response:
    """The tus creation POST exactly as granite describes it: result.headers + Upload-Length
    (`headers` replaces result.headers when given)."""
    sent = dict(result.headers if headers is None else headers)
    sent["Upload-Length"] = str(upload_length)
    return requests.post(result.url, headers=sent, timeout=HTTP_TIMEOUT_S,
                         allow_redirects=False)


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------

def tuspy_uploader(result: UploadUrlResult, path: Path, chunk_size: int = 64 * KiB):
    """A tuspy 1.1.0 uploader for granite's UploadUrlResult.

    granite's headers go to TusClient(headers=...), but that alone is not enough: tuspy's
    creation request adds its own lower-case `upload-metadata` (empty without `metadata=`),
    which replaces granite's `Upload-Metadata` in requests' case-insensitive headers. So the
    metadata must also be handed to tuspy, decoded, as `metadata=`.
    """
    client = TusClient(result.url, headers=dict(result.headers))
    metadata = decode_metadata(result.headers["Upload-Metadata"])
    return client.uploader(file_path=str(path), chunk_size=chunk_size, metadata=metadata)


def tuspy_upload(result: UploadUrlResult, path: Path, chunk_size: int = 64 * KiB) -> str:
    """Uploads `path` with tuspy; returns the upload URL."""
    uploader = tuspy_uploader(result, path, chunk_size)
    uploader.upload()
    assert uploader.offset == path.stat().st_size
    return uploader.url


def tus_js_upload(result: UploadUrlResult, path: Path, **options) -> dict:
    """Runs tus_js_upload.mjs (real tus-js-client, granite's headers as `headers`); returns its
    JSON result ({"url"}, {"stoppedBeforeFinal", "partials"} or {"error", "status"})."""
    node = os.environ.get("NODE_BIN", "node")
    command = [node, str(HERE / "tus_js_upload.mjs"), result.url, str(path),
               json.dumps(result.headers), json.dumps(options)]
    env = {**os.environ, "TUS_JS_TIMEOUT_MS": str(int(NODE_TIMEOUT_S * 1000) - 5000)}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=NODE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        pytest.fail(f"node not found ({node!r}); set NODE_BIN", pytrace=False)
    lines = done.stdout.strip().splitlines()
    if not lines:
        pytest.fail(f"tus_js_upload.mjs printed nothing (exit {done.returncode}); stderr:\n"
                    f"{done.stderr[-3000:]}\n(is tus-js-client installed? run `npm ci` in "
                    "clients/js)", pytrace=False)
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------
# Deadlines and failure reports
# ---------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _test_deadline():
    """Abort a test that runs longer than TEST_TIMEOUT_S (SIGALRM interrupts blocking I/O)."""
    def expire(signum, frame):
        # pytest.fail raises a BaseException, so no `except Exception` in requests/tuspy eats it.
        pytest.fail(f"test exceeded GRANITE_TEST_TIMEOUT={TEST_TIMEOUT_S} s (server hung?)")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the server logs' tails to the report of any failing test."""
    outcome = yield
    report = outcome.get_result()
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(stack, Stack):
        report.sections.append(("server logs (tail)", stack.log_tails()))
