"""Fixtures for the tuspy end-to-end suite: the server under test, a tuspy client, helpers.

Each test starts its own server (tusd-compatible flags) on a free 127.0.0.1 port with a
fresh upload directory:

    $TUS_SERVER_BIN -host 127.0.0.1 -port PORT -upload-dir DIR -base-path /files/ $TUS_SERVER_ARGS

TUS_SERVER_BIN is required (missing/not executable -> the test errors, never skips);
TUS_SERVER_ARGS is optional and shlex-split. The server's output goes to a log file whose
tail is attached to every failing test's report.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from tusclient.client import TusClient

MiB = 1024 * 1024
BASE_PATH = "/files/"
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 30.0
# Per-test deadline: tuspy sets no socket timeouts, so a hung server would hang forever.
TEST_TIMEOUT_S = int(os.environ.get("TUS_TEST_TIMEOUT", "120"))
TUS_HEADERS = {"Tus-Resumable": "1.0.0"}


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1 (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(port: int, upload_dir: Path) -> list[str]:
    """Build the server command line from TUS_SERVER_BIN / TUS_SERVER_ARGS, or fail clearly."""
    binary = os.environ.get("TUS_SERVER_BIN", "")
    if not binary:
        pytest.fail("TUS_SERVER_BIN is not set: point it at the tus server binary "
                    "(e.g. /tmp/gotusd/bin/tusd or target/release/tusgate)", pytrace=False)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"TUS_SERVER_BIN={binary!r} is not an executable file", pytrace=False)
    extra = shlex.split(os.environ.get("TUS_SERVER_ARGS", ""))
    return [binary, "-host", "127.0.0.1", "-port", str(port),
            "-upload-dir", str(upload_dir), "-base-path", BASE_PATH, *extra]


class TusServer:
    """One server process under test; restarts keep the same port, directory and args."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.upload_dir = workdir / "uploads"
        self.upload_dir.mkdir()
        self.log_path = workdir / "server.log"
        self.endpoint = f"http://127.0.0.1:{self.port}{BASE_PATH}"
        self.command = server_command(self.port, self.upload_dir)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        assert self.proc is None, "server already running"
        with open(self.log_path, "ab") as log:
            log.write(f"==> {shlex.join(self.command)}\n".encode())
            log.flush()
            # Own process group, so kill() also reaches anything the server spawns.
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Poll OPTIONS <endpoint> until it answers (bounded), or fail with the log tail."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail_start(f"server exited with code {self.proc.returncode}")
            try:
                requests.options(self.endpoint, headers=TUS_HEADERS, timeout=1)
                return
            except requests.RequestException as exc:
                last_error = repr(exc)
            time.sleep(0.1)
        self._fail_start(f"not ready after {READY_TIMEOUT_S:.0f} s ({last_error})")

    def _fail_start(self, why: str) -> None:
        self.stop()
        pytest.fail(f"tus server failed to start: {why}\n{self.log_tail(200)}", pytrace=False)

    def kill(self) -> None:
        """SIGKILL the server (no chance to clean up) and reap it."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=STOP_TIMEOUT_S)
        self.proc = None

    def stop(self) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL after STOP_TIMEOUT_S."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


class Harness:
    """What a test needs: the running server, a tuspy client for it, and checks."""

    def __init__(self, server: TusServer, workdir: Path):
        self.server = server
        self.client = TusClient(server.endpoint)
        self.workdir = workdir

    def source(self, size: int, name: str = "source.bin") -> Path:
        """A file of `size` pseudo-random bytes (seeded by size, so reproducible)."""
        path = self.workdir / name
        path.write_bytes(random.Random(size).randbytes(size))
        return path

    def uploader(self, path: Path, **kwargs):
        return self.client.uploader(file_path=str(path), **kwargs)

    @staticmethod
    def head(url: str) -> requests.Response:
        resp = requests.head(url, headers=TUS_HEADERS, timeout=HTTP_TIMEOUT_S)
        assert resp.status_code == 200, f"HEAD {url} -> {resp.status_code}"
        return resp

    def server_offset(self, url: str) -> int:
        return int(self.head(url).headers["Upload-Offset"])

    def metadata(self, url: str) -> dict[str, str]:
        """The upload's metadata as HEAD reports it, decoded."""
        return decode_metadata(self.head(url).headers.get("Upload-Metadata", ""))

    def assert_stored(self, url: str, path: Path) -> None:
        """HEAD says the upload is complete, and GET returns exactly the source bytes."""
        expected = path.read_bytes()
        head = self.head(url)
        assert int(head.headers["Upload-Length"]) == len(expected)
        assert int(head.headers["Upload-Offset"]) == len(expected)

        resp = requests.get(url, timeout=HTTP_TIMEOUT_S)
        ok_statuses = (200,) if expected else (200, 204)  # tusd answers 204 for an empty upload
        assert resp.status_code in ok_statuses, f"GET {url} -> {resp.status_code}"
        assert hashlib.sha256(resp.content).hexdigest() == hashlib.sha256(expected).hexdigest(), \
            f"stored bytes differ from source ({len(resp.content)} vs {len(expected)} bytes)"


def decode_metadata(header: str) -> dict[str, str]:
    """Parse an Upload-Metadata header ("key b64,key b64,...") into a dict."""
    pairs = (item.strip().split(" ", 1) for item in header.split(",") if item.strip())
    return {p[0]: base64.b64decode(p[1]).decode() if len(p) > 1 else "" for p in pairs}


@pytest.fixture(autouse=True)
def _test_deadline():
    """Abort a test that runs longer than TEST_TIMEOUT_S (SIGALRM interrupts blocking I/O)."""
    def expire(signum, frame):
        # pytest.fail raises a BaseException, so no `except Exception` in requests/tuspy eats it.
        pytest.fail(f"test exceeded TUS_TEST_TIMEOUT={TEST_TIMEOUT_S} s (server hung?)")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def tus_server(tmp_path):
    server = TusServer(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def tus(tus_server, tmp_path) -> Harness:
    return Harness(tus_server, tmp_path)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the server log's tail to the report of any failing test."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("tus_server")
    if report.failed and server is not None:
        report.sections.append(("tus server log (tail)", server.log_tail()))
