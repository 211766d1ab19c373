"""Shared pieces of the hooks suite: the two servers under one tusd command line, tus requests.

A server is started as

    BINARY -host 127.0.0.1 -port 0 -upload-dir D/uploads -hooks-http URL
           -hooks-enabled-events <all seven> -progress-hooks-interval 300ms  [scenario flags]

for tusd v2.10.1 (``$TUSD_BIN``, default ``.tools/bin/tusd``, built by scripts/install-tusd.sh)
and for tusgate (``$TUSGATE_BIN``), which additionally gets ``-allow-uploads-without-token``
(tusd has no tokens: without the flag tusgate would refuse to start without UPLOAD_SECRET). That
is the whole point: an unchanged tusd command line. The port is read from the ``You can now
upload files to: …`` line both print. A missing binary is a failure, never a skip.

Every wait is bounded; every process is killed at the end of its test; the server logs' tails
are attached to the report of a failing test.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ALL_EVENTS = "pre-create,post-create,post-receive,pre-finish,post-finish,pre-terminate,post-terminate"
PROGRESS_INTERVAL_S = 0.3
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
HTTP_TIMEOUT_S = 30.0
TEST_TIMEOUT_S = int(os.environ.get("HOOKS_TEST_TIMEOUT", "120"))
READY_LINE = re.compile(r"You can now upload files to: ((https?)://127\.0\.0\.1:(\d+)(/\S*))")
TUS = {"Tus-Resumable": "1.0.0"}
KINDS = ["tusd", "tusgate"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def binary(kind: str) -> str:
    env, default = {"tusd": ("TUSD_BIN", str(ROOT / ".tools/bin/tusd")),
                    "tusgate": ("TUSGATE_BIN", None)}[kind]
    path = os.environ.get(env) or default
    if not path:
        pytest.fail(f"{env} is not set: point it at the binary to test "
                    "(e.g. target/release/tusgate)", pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"{env}={path!r} is not an executable file (tusd: scripts/install-tusd.sh)",
                    pytrace=False)
    return path


class Process:
    """A child in its own process group, stdout+stderr to a log file."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str]):
        self.name, self.log_path, self.command = name, log_path, command
        with open(log_path, "ab") as log:
            log.write(f"==> {shlex.join(command)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
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

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        tail = "\n".join(self.log().splitlines()[-lines:])
        return f"--- {self.name}: {self.log_path} ---\n{tail}"


@dataclass
class Server:
    kind: str
    process: Process
    origin: str          # http://127.0.0.1:PORT
    endpoint: str        # origin + base path
    port: int
    upload_dir: Path
    workdir: Path
    bucket: str | None = None   # the S3 bucket, when it stores there

    def url(self, path: str) -> str:
        return self.origin + path

    def metrics(self) -> str:
        resp = requests.get(self.url("/metrics"), timeout=HTTP_TIMEOUT_S)
        assert resp.status_code == 200, f"{self.kind} GET /metrics -> {resp.status_code}"
        return resp.text

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of one sample of /metrics (None when the sample is absent)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            sample, _, value = line.rpartition(" ")
            metric, _, label_text = sample.partition("{")
            got = ",".join(sorted(p for p in label_text.rstrip("}").split(",") if p))
            if metric == name and got == want:
                return float(value)
        return None


@dataclass
class Servers:
    """Starts servers for a test and stops all of them at its end."""

    workdir: Path
    started: list[Server] = field(default_factory=list)

    def start(self, kind: str, hooks_url: str | None, *extra: str, name: str | None = None,
              env: dict[str, str] | None = None, events: str = ALL_EVENTS,
              tokenless: bool = True, file_hooks=None,
              file_hook_events: list[str] | None = None, s3: "S3 | None" = None,
              upload_dir: Path | None = None) -> Server:
        """`hooks_url`: HTTP hooks to it. `file_hooks` (a HookRecorder): file hooks instead, a
        -hooks-dir of scripts that forward to that recorder (recorder.write_file_hooks), one per
        event of `file_hook_events` (default: all seven).
        `s3`: store in a fresh bucket of that S3 server (tusd's -s3-bucket/-s3-endpoint, the
        credentials in the environment: AWS_* for tusd, STORAGE_* for tusgate).
        `upload_dir`: reuse that directory (a restart) instead of a fresh one.
        `tokenless=False` starts tusgate without -allow-uploads-without-token (it then needs
        UPLOAD_SECRET in `env`); tusd ignores it."""
        name = name or f"{kind}-{len(self.started)}"
        workdir = self.workdir / name
        workdir.mkdir(parents=True)
        if upload_dir is None:
            upload_dir = workdir / "uploads"
            upload_dir.mkdir()
        command = [binary(kind), "-host", "127.0.0.1", "-port", "0",
                   "-upload-dir", str(upload_dir)]
        if file_hooks is not None:
            from recorder import EVENTS, write_file_hooks
            write_file_hooks(workdir / "hooks", file_hooks, file_hook_events or EVENTS)
            command += ["-hooks-dir", str(workdir / "hooks")]
        elif hooks_url is not None:
            command += ["-hooks-http", hooks_url]
        if hooks_url is not None or file_hooks is not None:
            command += ["-hooks-enabled-events", events,
                        "-progress-hooks-interval", f"{int(PROGRESS_INTERVAL_S * 1000)}ms"]
        command += list(extra)
        bucket = None
        if s3 is not None:
            bucket = s3.bucket(name)
            command += ["-s3-bucket", bucket, "-s3-endpoint", s3.endpoint]
        if kind == "tusgate" and tokenless:
            command += ["-allow-uploads-without-token"]
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("UPLOAD_SECRET", "SECURE_LINK_SECRET")}
        if s3 is not None:
            full_env.update(s3.credentials)
        full_env.update(env or {})
        process = Process(name, command, workdir / f"{kind}.log", full_env)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            match = READY_LINE.search(process.log())
            if match:
                break
            if not process.alive() or time.monotonic() > deadline:
                process.stop()
                pytest.fail(f"{name} did not start (exit {process.proc.returncode})\n"
                            f"{process.log_tail()}", pytrace=False)
            time.sleep(0.05)
        server = Server(kind, process, f"{match.group(2)}://127.0.0.1:{match.group(3)}",
                        match.group(1), int(match.group(3)), upload_dir, workdir, bucket)
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.process.stop()

    def log_tails(self) -> str:
        return "\n".join(s.process.log_tail() for s in self.started)


@dataclass
class Certificate:
    cert: Path   # self-signed, for 127.0.0.1 and localhost
    key: Path


def make_certificate(directory: Path) -> Certificate:
    """A self-signed EC certificate for 127.0.0.1/localhost (openssl, from scripts/deps.sh)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    done = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"openssl failed: {done.stderr}"
    return Certificate(cert, key)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@dataclass
class S3:
    """A moto S3 server (interop/s3/.venv, installed by interop/s3/setup.sh) on 127.0.0.1."""

    process: Process
    endpoint: str
    credentials = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "testtesttest",
                   "AWS_REGION": "us-east-1", "STORAGE_ACCESS_KEY": "test",
                   "STORAGE_SECRET_KEY": "testtesttest", "STORAGE_REGION": "us-east-1"}

    def bucket(self, name: str) -> str:
        bucket = re.sub(r"[^a-z0-9-]", "-", name.lower())
        resp = requests.put(f"{self.endpoint}/{bucket}", timeout=HTTP_TIMEOUT_S)
        assert resp.status_code == 200, f"CreateBucket {bucket}: {resp.status_code} {resp.text}"
        return bucket


def start_moto(workdir: Path) -> S3:
    moto = ROOT / "interop/s3/.venv/bin/moto_server"
    if not os.access(moto, os.X_OK):
        pytest.fail(f"{moto} is missing: run interop/s3/setup.sh (scripts/deps.sh does)",
                    pytrace=False)
    port = free_port()
    process = Process("moto", [str(moto), "-H", "127.0.0.1", "-p", str(port)],
                      workdir / "moto.log", dict(os.environ))
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            requests.get(endpoint, timeout=1)
            return S3(process, endpoint)
        except requests.RequestException:
            pass
        if not process.alive() or time.monotonic() > deadline:
            process.stop()
            pytest.fail(f"moto did not start\n{process.log_tail()}", pytrace=False)
        time.sleep(0.1)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    s3 = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield s3
    finally:
        s3.process.stop()


@pytest.fixture
def servers(tmp_path) -> Servers:
    group = Servers(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


# --- tus requests ------------------------------------------------------------------------------

def encode_metadata(metadata: dict[str, str | None]) -> str:
    """Upload-Metadata; a None value is a key without value (tusd accepts both)."""
    return ",".join(k if v is None else f"{k} {base64.b64encode(v.encode()).decode()}"
                    for k, v in metadata.items())


def create(server: Server, length: int | None, metadata: dict | None = None, *,
           body: bytes | None = None, headers: dict | None = None) -> requests.Response:
    sent = dict(TUS)
    if length is None:
        sent["Upload-Defer-Length"] = "1"
    else:
        sent["Upload-Length"] = str(length)
    if metadata:
        sent["Upload-Metadata"] = encode_metadata(metadata)
    if body is not None:
        sent["Content-Type"] = "application/offset+octet-stream"
    sent.update(headers or {})
    return requests.post(server.endpoint, headers=sent, data=body, timeout=HTTP_TIMEOUT_S,
                         allow_redirects=False)


def patch(url: str, offset: int, data: bytes, headers: dict | None = None) -> requests.Response:
    sent = {**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
            **(headers or {})}
    return requests.patch(url, headers=sent, data=data, timeout=HTTP_TIMEOUT_S)


def head(url: str) -> requests.Response:
    return requests.head(url, headers=TUS, timeout=HTTP_TIMEOUT_S)


def delete(url: str) -> requests.Response:
    return requests.delete(url, headers=TUS, timeout=HTTP_TIMEOUT_S)


def upload_id(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


def new_secret() -> str:
    return secrets.token_urlsafe(32)


# --- deadlines and failure reports -------------------------------------------------------------

@pytest.fixture(autouse=True)
def _test_deadline():
    def expire(signum, frame):
        pytest.fail(f"test exceeded HOOKS_TEST_TIMEOUT={TEST_TIMEOUT_S} s (server hung?)")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    group = getattr(item, "funcargs", {}).get("servers")
    if report.failed and isinstance(group, Servers):
        report.sections.append(("server logs (tail)", group.log_tails()))


def pytest_terminal_summary(terminalreporter):
    """The differential counts (test_differential.SUMMARIES), whatever the outcome."""
    import sys
    module = sys.modules.get("test_differential")
    for text in getattr(module, "SUMMARIES", []):
        terminalreporter.write_sep("-", "hook differential")
        terminalreporter.write_line(text)


# --- a PATCH whose body trickles in (StopUpload needs a request that is still running) -------

@dataclass
class SlowPatchResult:
    status: int | None
    headers: dict[str, str]
    body: bytes
    elapsed: float
    bytes_sent: int
    error: str | None = None


def slow_patch(url: str, total: int, chunk: int, interval: float,
               timeout: float = 30.0) -> SlowPatchResult:
    """PATCH at offset 0 announcing `total` bytes (Content-Length), sending `chunk` bytes every
    `interval` s from one thread while reading the response on another, so a response the
    server sends before the body is complete (a stopped upload) is read, not lost to a reset."""
    import http.client
    import threading
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    head_lines = [f"PATCH {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Tus-Resumable: 1.0.0",
                  "Upload-Offset: 0", "Content-Type: application/offset+octet-stream",
                  f"Content-Length: {total}", "", ""]
    stop = threading.Event()
    sent = [0]

    def writer():
        try:
            sock.sendall("\r\n".join(head_lines).encode())
            while sent[0] < total and not stop.is_set():
                n = min(chunk, total - sent[0])
                sock.sendall(b"x" * n)
                sent[0] += n
                stop.wait(interval)
        except OSError:
            pass  # the server stopped reading: expected when it stops the upload

    started = time.monotonic()
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        body = response.read()
        result = SlowPatchResult(response.status, dict(response.getheaders()), body,
                                 time.monotonic() - started, sent[0])
    except OSError as err:
        result = SlowPatchResult(None, {}, b"", time.monotonic() - started, sent[0], repr(err))
    finally:
        stop.set()
        thread.join(timeout)
        sock.close()
    return result


def stored_files(directory: Path) -> list[str]:
    """Everything under an upload dir but the lock file tusgate keeps there."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if p.name != ".tusgate.lock")
