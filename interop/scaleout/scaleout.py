"""Scale-out stage: N tusgate instances on one bucket, no sticky sessions (see README.md).

Run through run.sh, which runs this once inside scripts/with-seaweedfs.sh and once inside
scripts/with-moto.sh. Reads STORAGE_ENDPOINT_URL / STORAGE_BUCKET / STORAGE_ACCESS_KEY /
STORAGE_SECRET_KEY / STORAGE_REGION, TUSGATE_BIN (required) and, for the S3 outage,
SEAWEEDFS_PID + SEAWEEDFS_RESTART (+ SEAWEEDFS_PIDFILE, SEAWEEDFS_LOG) or MOTO_PID.

Phases (each in a bucket of its own, `<STORAGE_BUCKET>-<phase>`):
1. hop: three instances, tus-js-client with every request sent to a random instance.
2. faults: the same under load while one instance is SIGKILLed and restarted, S3 goes away for
   a few seconds, and an instance is frozen (SIGSTOP) in the middle of a PATCH whose upload is
   then finished on another instance with different bytes for the same range.
3. race: two instances finishing the same complete-but-unpublished upload at once (two PATCHes,
   two startup recoveries).

Every check is recorded with what was seen; the exit status is 1 if any failed.
"""

from __future__ import annotations

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
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import boto3
import requests
from botocore.config import Config as BotoConfig

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOP_UPLOADS = HERE / "hop_uploads.mjs"

KiB = 1024
MiB = 1024 * KiB
PART_SIZE = 5 * MiB  # the smallest tusgate accepts: multipart uploads even for a few MiB
READY_TIMEOUT = 20.0
HTTP_TIMEOUT = 30.0
SETTLE = 2.5  # > the janitor's 2 s publish retry interval
MIN_FREEZE = 5.0  # how long an instance frozen mid-PATCH stays frozen at least
TOTAL_TIMEOUT = int(os.environ.get("SCALEOUT_TIMEOUT", "220"))
SEED = int(os.environ.get("SCALEOUT_SEED") or secrets.randbelow(1 << 30))
CONTENT_TYPE = "application/octet-stream"
TUS = {"Tus-Resumable": "1.0.0"}
READY = re.compile(r"You can now upload files to: http://127\.0\.0\.1:(\d+)/files/")
FINISHED = re.compile(r"upload finished id=([A-Za-z0-9_+-]+)")
# tus-js-client retries: enough to ride out a killed instance, a frozen one and S3 restarting
# (the attempt counter resets whenever an upload makes progress).
RETRY_DELAYS = [0, 250, 500, 1000, 1000, 1500, 2000, 2000, 3000, 3000, 3000, 3000, 3000]

T0 = time.monotonic()


def now() -> float:
    return time.monotonic() - T0


def log(msg: str) -> None:
    print(f"[{now():6.1f}] {msg}", flush=True)


class Deadline(Exception):
    pass


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

class Report:
    def __init__(self, backend: str):
        self.backend = backend
        self.checks: list[tuple[str, str, bool, str]] = []  # phase, check, ok, detail
        self.counts = Counter()
        self.faults: list[str] = []
        self.notes: list[str] = []

    def check(self, phase: str, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append((phase, name, bool(ok), detail))
        log(f"{'ok  ' if ok else 'FAIL'} [{phase}] {name}" + (f": {detail}" if detail else ""))
        return bool(ok)

    def fault(self, what: str) -> None:
        self.faults.append(what)
        log(f"fault: {what}")

    def failures(self) -> list[tuple[str, str, bool, str]]:
        return [c for c in self.checks if not c[2]]

    def print_summary(self) -> None:
        print()
        print(f"=== scaleout summary ({self.backend}, seed {SEED}, {now():.0f} s)")
        c = self.counts
        print(f"  uploads: {c['uploads']} started by clients, {c['completed']} completed, "
              f"{c['client failures']} failed; tus uploads created {c['tus created']} "
              f"(partials and finals included); raw-HTTP scenario uploads {c['raw uploads']}")
        print(f"  requests: {c['requests']} by tus-js-client, {c['retries']} retried, of which "
              f"{c['interrupted']} had been answered 400 ERR_UPLOAD_INTERRUPTED (a request the "
              "client had given up on took the upload over; tus-js-client's default would have "
              "failed the upload)")
        print(f"  faults injected: {len(self.faults)}")
        for fault in self.faults:
            print(f"    - {fault}")
        for note in self.notes:
            print(f"  note: {note}")
        failed = self.failures()
        print(f"  checks: {len(self.checks) - len(failed)} passed, {len(failed)} failed")
        for phase, name, ok, detail in self.checks:
            print(f"    {'ok  ' if ok else 'FAIL'}  [{phase}] {name}")
            if detail and not ok:
                for line in detail.splitlines():
                    print(f"            {line}")
        print(f"scaleout {self.backend}: {len(failed)} failure(s)")


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

def tusgate_bin() -> str:
    path = os.environ.get("TUSGATE_BIN", "")
    if not path or not (os.path.isfile(path) and os.access(path, os.X_OK)):
        print(f"scaleout: TUSGATE_BIN={path!r} is not an executable (set it to the binary)")
        sys.exit(2)
    return path


UPLOAD_SECRET = secrets.token_urlsafe(24)
LINK_SECRET = secrets.token_urlsafe(24)
STARTED: list["Instance"] = []  # every instance, to stop at the end
EXTRA_PROCS: list[subprocess.Popen] = []  # node, a restarted weed


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


class Instance:
    """One tusgate on the S3 backend, in its own process group, its output appended to a log.
    The port is chosen at the first start and kept across restarts."""

    def __init__(self, name: str, workdir: Path, bucket: str, env: dict[str, str] | None = None,
                 wait: bool = True):
        self.name = name
        self.bucket = bucket
        self.log_path = workdir / f"{name}.log"
        self.upload_dir = workdir / f"{name}-uploads"
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "UPLOAD_SECRET": UPLOAD_SECRET,
                    "SECURE_LINK_SECRET": LINK_SECRET, **(env or {})}
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.lifetimes: list[int] = []  # log offsets where each start begins
        self.killed_scrapes: list[tuple[int, int]] = []  # (finished metric, log offset) at SIGKILL
        STARTED.append(self)
        self.start(wait=wait)

    def command(self) -> list[str]:
        return [tusgate_bin(), "-host", "127.0.0.1", "-port", str(self.port),
                "-upload-dir", str(self.upload_dir), "--s3-bucket", self.bucket,
                "--s3-endpoint", os.environ["STORAGE_ENDPOINT_URL"],
                "--s3-access-key", os.environ["STORAGE_ACCESS_KEY"],
                "--s3-secret-key", os.environ["STORAGE_SECRET_KEY"],
                "--s3-part-size", str(PART_SIZE), "-allow-uploads-without-token"]

    def start(self, wait: bool = True, drop_env: tuple[str, ...] = ()) -> None:
        for name in drop_env:
            self.env.pop(name, None)
        since = self.log_size()
        self.lifetimes.append(since)
        with open(self.log_path, "ab") as out:
            out.write(f"==> {shlex.join(self.command())}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env,
                                         start_new_session=True)
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        since = self.lifetimes[-1]
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            match = READY.search(self.log_text()[since:])
            if match:
                port = int(match.group(1))
                assert self.port in (0, port), f"{self.name} came up on {port}, not {self.port}"
                self.port = port
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {READY_TIMEOUT:.0f} s:\n{self.tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sigkill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would. The finished counter is scraped just
        before, since the process's metrics die with it."""
        self.killed_scrapes.append((self.finished_metric(), self.log_size()))
        kill_group(self.proc, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def freeze(self) -> None:
        kill_group(self.proc, signal.SIGSTOP)

    def thaw(self) -> None:
        kill_group(self.proc, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.alive():
            kill_group(self.proc, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        kill_group(self.proc, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, upload_id: str) -> str:
        return f"{self.origin}/files/{upload_id}"

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self) -> str:
        try:
            return self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def finished_metric(self) -> int:
        """`tusd_uploads_finished` of the running process."""
        resp = requests.get(f"{self.origin}/metrics", timeout=10)
        resp.raise_for_status()
        match = re.search(r"^tusd_uploads_finished (\d+)", resp.text, re.M)
        assert match, "no tusd_uploads_finished in /metrics"
        return int(match.group(1))

    def finished_ids(self, since: int = 0) -> Counter:
        """`upload finished id=…` lines in the log (every lifetime), per upload id."""
        raw = self.log_path.read_bytes()[since:].decode(errors="replace")
        return Counter(FINISHED.findall(raw))


def finished_everywhere(instances: list[Instance]) -> Counter:
    total = Counter()
    for inst in instances:
        total += inst.finished_ids()
    return total


def metrics_sum(instances: list[Instance]) -> tuple[int, str]:
    """Σ tusd_uploads_finished over every lifetime of `instances`: the live processes now, and
    for each SIGKILLed lifetime the value scraped right before the kill plus any `upload
    finished` it logged between that scrape and the kill (a window of milliseconds)."""
    total, parts = 0, []
    for inst in instances:
        if inst.alive():
            value = inst.finished_metric()
            total += value
            parts.append(f"{inst.name}={value}")
        for value, offset in inst.killed_scrapes:
            # Lines logged after the scrape and before the next start were counted by nobody.
            later = [s for s in inst.lifetimes if s >= offset]
            end = later[0] if later else None
            raw = inst.log_path.read_bytes()[offset:end].decode(errors="replace")
            window = len(FINISHED.findall(raw))
            total += value + window
            parts.append(f"{inst.name}(killed)={value}+{window}")
    return total, " ".join(parts)


def stop_everything() -> None:
    for inst in STARTED:
        try:
            inst.stop()
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            log(f"stopping {inst.name}: {e}")
    for proc in EXTRA_PROCS:
        kill_group(proc, signal.SIGCONT)
        kill_group(proc, signal.SIGKILL)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    pidfile = os.environ.get("SEAWEEDFS_PIDFILE")
    if pidfile and any(p.args and "weed" in str(p.args[0]) for p in EXTRA_PROCS):
        Path(pidfile).unlink(missing_ok=True)  # stopped here; with-seaweedfs.sh need not


# ---------------------------------------------------------------------------
# S3, read directly (never through tusgate)
# ---------------------------------------------------------------------------

S3 = boto3.client(
    "s3", endpoint_url=os.environ.get("STORAGE_ENDPOINT_URL"),
    region_name=os.environ.get("STORAGE_REGION", "us-east-1"),
    aws_access_key_id=os.environ.get("STORAGE_ACCESS_KEY"),
    aws_secret_access_key=os.environ.get("STORAGE_SECRET_KEY"),
    config=BotoConfig(connect_timeout=5, read_timeout=HTTP_TIMEOUT, retries={"max_attempts": 2},
                      s3={"addressing_style": "path"}))


# Big enough to go to a volume server: SeaweedFS may keep tiny objects in the filer alone.
PROBE = bytes(2 * MiB)


def new_bucket(phase: str) -> str:
    """A bucket for one phase, taking writes before any instance starts: SeaweedFS grows the
    volumes of a new bucket on its first write, which on a busy machine has taken over 30 s
    once (every instance's S3 deadline then ran out); that is the store warming up, not what
    this stage tests."""
    name = f"{os.environ['STORAGE_BUCKET']}-{phase}"
    try:
        S3.create_bucket(Bucket=name)
    except S3.exceptions.BucketAlreadyOwnedByYou:
        pass
    started = now()

    def writable() -> bool:
        try:
            S3.put_object(Bucket=name, Key="scaleout-probe", Body=PROBE)
            S3.delete_object(Bucket=name, Key="scaleout-probe")
            return True
        except Exception:  # noqa: BLE001
            return False

    if not wait_until(writable, 120, 0.5):
        raise RuntimeError(f"bucket {name} took no write within 120 s (S3 store stalled)")
    if now() - started > 2:
        log(f"bucket {name} took its first write after {now() - started:.1f} s")
    return name


def read_object(bucket: str, key: str) -> bytes | None:
    try:
        return S3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except S3.exceptions.NoSuchKey:
        return None


def object_version(bucket: str, key: str) -> tuple[str, str] | None:
    """(ETag, Last-Modified) of an object, or None."""
    try:
        head = S3.head_object(Bucket=bucket, Key=key)
    except Exception:  # noqa: BLE001 - 404 and friends
        return None
    return head["ETag"], head["LastModified"].isoformat()


def multipart_uploads(bucket: str, key: str) -> list[str]:
    listing = S3.list_multipart_uploads(Bucket=bucket, Prefix=key)
    return [u["UploadId"] for u in listing.get("Uploads", []) if u["Key"] == key]


def part_numbers(bucket: str, key: str, upload: str) -> list[int]:
    try:
        parts = S3.list_parts(Bucket=bucket, Key=key, UploadId=upload).get("Parts", [])
    except Exception:  # noqa: BLE001 - completed/aborted meanwhile
        return []
    return [p["PartNumber"] for p in parts]


def leftovers(bucket: str) -> tuple[int, int]:
    """(tail objects, open multipart uploads): not a check, reported."""
    tails = 0
    for page in S3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        tails += sum(".part." in o["Key"].rsplit("/", 1)[-1] for o in page.get("Contents", []))
    try:
        open_uploads = len(S3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    except Exception:  # noqa: BLE001
        open_uploads = -1
    return tails, open_uploads


def sha(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest()[:16] if data is not None else "(none)"


def compare(stored: bytes | None, want: bytes, stale: bytes | None = None) -> str:
    """'' if equal, else where they differ (in 64 KiB blocks), and whether the differing bytes
    are the stale ones (`stale`, what the frozen instance had been sent)."""
    if stored is None:
        return "no object"
    if stored == want:
        return ""
    out = [f"{len(stored)} bytes stored, {len(want)} expected"]
    block, ranges, start = 64 * KiB, [], None
    for pos in range(0, max(len(stored), len(want)), block):
        differs = stored[pos:pos + block] != want[pos:pos + block]
        if differs and start is None:
            start = pos
        if not differs and start is not None:
            ranges.append((start, pos))
            start = None
    if start is not None:
        ranges.append((start, max(len(stored), len(want))))
    for lo, hi in ranges[:6]:
        what = ""
        if stale is not None and stored[lo:hi] == stale[lo:hi]:
            what = " = the bytes sent to the frozen instance (stale), not the acknowledged ones"
        elif stale is not None:
            same = sum(stored[p:p + block] == stale[p:p + block] for p in range(lo, hi, block))
            if same:
                what = f" ({same} of {(hi - lo + block - 1) // block} blocks = the stale bytes)"
        out.append(f"differs in [{lo}, {hi}) = [{lo / MiB:.2f}, {hi / MiB:.2f}) MiB{what}")
    return "; ".join(out)


# ---------------------------------------------------------------------------
# tus over HTTP
# ---------------------------------------------------------------------------

def random_bytes(size: int, seed: str) -> bytes:
    return random.Random(f"{SEED}/{seed}/{size}").randbytes(size)


def sign_upload(key: str, visibility: str = "public") -> str:
    """The Upload-Metadata granite builds (via `tusgate sign upload`)."""
    out = subprocess.run([tusgate_bin(), "sign", "upload", "--key", key, "--content-type",
                          CONTENT_TYPE, "--visibility", visibility],
                         capture_output=True, text=True, timeout=30, check=True,
                         env={**os.environ, "UPLOAD_SECRET": UPLOAD_SECRET})
    first = out.stdout.splitlines()[0]
    assert first.startswith("Upload-Metadata: "), out.stdout
    return first.removeprefix("Upload-Metadata: ")


def tus_create(inst: Instance, length: int, metadata: str | None) -> str:
    headers = {**TUS, "Upload-Length": str(length)}
    if metadata:
        headers["Upload-Metadata"] = metadata
    resp = requests.post(f"{inst.origin}/files/", headers=headers, timeout=HTTP_TIMEOUT)
    if resp.status_code != 201:
        raise RuntimeError(f"POST on {inst.name}: {resp.status_code} {resp.text[:200]}")
    return resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def tus_head(inst: Instance, upload_id: str) -> tuple[int, int | None]:
    resp = requests.head(inst.url(upload_id), headers=TUS, timeout=HTTP_TIMEOUT)
    offset = resp.headers.get("Upload-Offset")
    return resp.status_code, int(offset) if offset is not None else None


def tus_patch(inst: Instance, upload_id: str, offset: int, data: bytes) -> requests.Response:
    headers = {**TUS, "Upload-Offset": str(offset),
               "Content-Type": "application/offset+octet-stream"}
    return requests.patch(inst.url(upload_id), headers=headers, data=data, timeout=HTTP_TIMEOUT)


def patch_chunks(inst: Instance, upload_id: str, data: bytes, start: int, chunk: int = MiB) -> int:
    """PATCHes data[start:] in `chunk`s, each of which must be acknowledged (204, offset
    advanced by exactly the chunk); returns the acknowledged offset."""
    offset = start
    while offset < len(data):
        piece = data[offset:offset + chunk]
        resp = tus_patch(inst, upload_id, offset, piece)
        if resp.status_code != 204 or int(resp.headers.get("Upload-Offset", -1)) != offset + len(piece):
            raise RuntimeError(f"PATCH at {offset} on {inst.name}: {resp.status_code} "
                               f"offset {resp.headers.get('Upload-Offset')} {resp.text[:200]}")
        offset += len(piece)
    return offset


class StreamedPatch:
    """One raw HTTP/1.1 PATCH whose body is sent in two steps: `first` bytes at once, the rest
    only when `go_on()` is called (or the connection is closed instead with `give_up()`). A
    reader thread collects the answer, which may come before the body is complete."""

    def __init__(self, inst: Instance, upload_id: str, offset: int, body: bytes, first: int):
        self.inst, self.body, self.first = inst, body, first
        self.sock = socket.create_connection(("127.0.0.1", inst.port), timeout=HTTP_TIMEOUT)
        self.head = (f"PATCH /files/{upload_id} HTTP/1.1\r\nHost: {inst.hostport}\r\n"
                     f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
                     f"Upload-Offset: {offset}\r\nContent-Length: {len(body)}\r\n"
                     "Connection: close\r\n\r\n").encode()
        self.proceed = threading.Event()
        self.abandon = False
        self.sent = 0
        self.send_error: str | None = None
        self.answer: tuple[int | None, str] | None = None
        self.answered_at: float | None = None
        self.sender = threading.Thread(target=self._send, daemon=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.sender.start()
        self.reader.start()

    def _send(self) -> None:
        try:
            self.sock.sendall(self.head)
            for lo, hi in ((0, self.first), (self.first, len(self.body))):
                if lo > 0:
                    self.proceed.wait(timeout=120)
                    if self.abandon:
                        return
                for pos in range(lo, hi, 64 * KiB):
                    self.sock.sendall(self.body[pos:min(pos + 64 * KiB, hi)])
                    self.sent = min(pos + 64 * KiB, hi)
        except OSError as e:
            self.send_error = f"{type(e).__name__}: {e}"

    def _read(self) -> None:
        received = b""
        try:
            self.sock.settimeout(150)
            while True:
                end = received.find(b"\r\n\r\n")
                if end >= 0:
                    m = re.search(rb"\r\ncontent-length: *(\d+)", received[:end].lower())
                    if len(received) >= end + 4 + int(m.group(1) if m else 0):
                        break
                data = self.sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("closed without a complete answer")
                received += data
            status = int(received.split(b"\r\n", 1)[0].split()[1])
            self.answer = (status, received.partition(b"\r\n\r\n")[2].decode(errors="replace"))
        except (OSError, ValueError, IndexError) as e:
            self.answer = (None, f"no answer: {type(e).__name__}: {e}")
        self.answered_at = now()

    def go_on(self) -> None:
        self.proceed.set()

    def give_up(self) -> None:
        """The client disappears: closes its side of the connection without the rest."""
        self.abandon = True
        self.proceed.set()
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def wait_sent(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.sent < n and time.monotonic() < deadline and self.send_error is None:
            time.sleep(0.02)
        return self.sent >= n

    def wait_answer(self, timeout: float) -> tuple[int | None, str]:
        self.reader.join(timeout)
        if self.answer is None:
            return None, f"no answer within {timeout:.0f} s"
        return self.answer

    def close(self) -> None:
        self.abandon = True
        self.proceed.set()
        try:
            self.sock.close()
        except OSError:
            pass


def wait_until(probe, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(interval)
    return None


# ---------------------------------------------------------------------------
# tus-js-client, every request to a random instance
# ---------------------------------------------------------------------------

class HopRun:
    """hop_uploads.mjs in the background; its events are collected as they come."""

    def __init__(self, workdir: Path, name: str, instances: list[Instance], uploads: list[dict],
                 idle_timeout_ms: int, run_timeout_ms: int, retry_interrupted: bool = False):
        job = {"instances": [i.hostport for i in instances], "idleTimeoutMs": idle_timeout_ms,
               "runTimeoutMs": run_timeout_ms, "seed": SEED, "uploads": uploads,
               "retryInterrupted": retry_interrupted}
        job_path = workdir / f"{name}-job.json"
        job_path.write_text(json.dumps(job))
        self.stderr_path = workdir / f"{name}-node.err"
        node = os.environ.get("NODE_BIN", "node")
        self.proc = subprocess.Popen([node, str(HOP_UPLOADS), str(job_path)],
                                     stdout=subprocess.PIPE, stderr=open(self.stderr_path, "wb"),
                                     stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        EXTRA_PROCS.append(self.proc)
        self.events: list[dict] = []
        self.started = threading.Event()
        self.on_done = None  # callback(event) called from the reader thread
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            event["seen"] = now()
            self.events.append(event)
            if event["event"] == "start":
                self.started.set()
            if event["event"] == "retry" and event.get("interrupted"):
                log(f"{event['upload']}: a request was answered 400 ERR_UPLOAD_INTERRUPTED; "
                    "retrying")
            if event["event"] == "done" and self.on_done:
                try:
                    self.on_done(event)
                except Exception as e:  # noqa: BLE001
                    log(f"on_done: {e}")

    def wait(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            self.proc.wait(timeout=10)
            self.reader.join(5)
            return False
        self.reader.join(5)
        return True

    def by_upload(self, kind: str) -> dict[str, dict]:
        return {e["upload"]: e for e in self.events if e["event"] == kind}

    def created(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for e in self.events:
            if e["event"] == "created":
                out.setdefault(e["upload"], []).append(e["id"])
        return out

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-2000:]


def count_client_run(report: Report, run: HopRun, uploads: list[dict]) -> None:
    done, errors = run.by_upload("done"), run.by_upload("error")
    report.counts["uploads"] += len(uploads)
    report.counts["completed"] += len(done)
    report.counts["client failures"] += len([u for u in uploads if u["name"] not in done])
    report.counts["tus created"] += sum(len(v) for v in run.created().values())
    for e in list(done.values()) + list(errors.values()):
        report.counts["requests"] += sum(e.get("requests", {}).values())
        report.counts["retries"] += e.get("retries", 0)
    report.counts["interrupted"] += sum(1 for e in run.events
                                        if e["event"] == "retry" and e.get("interrupted"))


# ---------------------------------------------------------------------------
# Phase 1: every request to a random instance
# ---------------------------------------------------------------------------

def phase_hop(report: Report, workdir: Path) -> None:
    phase = "hop"
    bucket = new_bucket(phase)
    instances = [Instance(f"hop-{i}", workdir, bucket) for i in range(3)]
    cases = [
        ("tokened, 1 MiB chunks", 12 * MiB + 12345, True, {"chunkSize": MiB}),
        ("tokened, parallelUploads 3", 12 * MiB + 777, True,
         {"chunkSize": MiB, "parallelUploads": 3}),
        ("tokenless, 1 MiB chunks", 12 * MiB + 1, False, {"chunkSize": MiB}),
        ("tokenless, parallelUploads 3", 12 * MiB + 4321, False,
         {"chunkSize": MiB, "parallelUploads": 3}),
    ]
    uploads, expect = [], {}
    for i, (name, size, tokened, options) in enumerate(cases):
        data = random_bytes(size, f"hop-{i}")
        path = workdir / f"hop-{i}.bin"
        path.write_bytes(data)
        key = f"hop/{secrets.token_hex(4)}/case {i} ü.bin" if tokened else None
        headers = {"Upload-Metadata": sign_upload(key)} if tokened else {}
        # No retries: hopping between healthy instances must never need one.
        uploads.append({"name": name, "file": str(path), "headers": headers,
                        "options": {**options, "retryDelays": None}})
        expect[name] = (data, key)
    log(f"[hop] {len(uploads)} tus-js-client uploads, each request to a random one of "
        f"{', '.join(i.hostport for i in instances)}")
    run = HopRun(workdir, "hop", instances, uploads, idle_timeout_ms=0, run_timeout_ms=90_000)
    finished_in_time = run.wait(100)
    count_client_run(report, run, uploads)
    report.check(phase, "tus-js-client finished every upload, no request failed",
                 finished_in_time and len(run.by_upload("done")) == len(uploads),
                 "; ".join(f"{n}: {e['error']} (status {e['status']})"
                           for n, e in run.by_upload("error").items()) or run.stderr())
    time.sleep(0.5)
    finished = finished_everywhere(instances)
    created = run.created()
    for name, (data, key) in expect.items():
        done = run.by_upload("done").get(name)
        if not done:
            continue
        hops = done["requests"]
        report.check(phase, f"{name}: requests hopped between instances", len(hops) >= 2,
                     f"requests per instance {hops}")
        obj = f"public/{key}" if key else done["id"]
        stored = read_object(bucket, obj)
        report.check(phase, f"{name}: object {obj!r} has the source's sha256",
                     stored == data, compare(stored, data) + f" (sha {sha(stored)} vs {sha(data)})")
        ids = created.get(name, [])
        counts = {i: finished[i] for i in ids}
        report.check(phase, f"{name}: each of its {len(ids)} tus uploads finished exactly once",
                     ids and all(c == 1 for c in counts.values()),
                     f"'upload finished' log lines per id, all instances: {counts}")
        heads = [tus_head(inst, done["id"]) for inst in instances]
        report.check(phase, f"{name}: HEAD on every instance says complete",
                     all(h == (200, len(data)) for h in heads), f"(status, offset): {heads}")
    total, detail = metrics_sum(instances)
    want = sum(len(v) for n, v in created.items() if n in run.by_upload("done"))
    report.check(phase, "tusd_uploads_finished summed over instances = tus uploads completed",
                 total == want, f"sum {total} ({detail}), expected {want} "
                 "(every partial and final upload counts once)")
    for inst in instances:
        inst.stop()


# ---------------------------------------------------------------------------
# Phase 2: faults while uploads run
# ---------------------------------------------------------------------------

class S3Outage:
    """SeaweedFS: SIGKILL weed, then start it again with SEAWEEDFS_RESTART (same ports, same
    data). moto: SIGSTOP, then SIGCONT (it cannot restart with its data)."""

    def __init__(self, backend: str):
        self.backend = backend
        self.restarted: subprocess.Popen | None = None

    def run(self, report: Report, seconds: float) -> None:
        if self.backend == "seaweedfs":
            pid = int(os.environ["SEAWEEDFS_PID"])
            os.kill(pid, signal.SIGKILL)
            report.fault(f"SeaweedFS SIGKILLed (pid {pid}) at {now():.1f} s, down {seconds:.0f} s")
            time.sleep(seconds)
            log_path = os.environ.get("SEAWEEDFS_LOG", "/dev/null")
            with open(log_path, "ab") as out:
                self.restarted = subprocess.Popen(
                    shlex.split(os.environ["SEAWEEDFS_RESTART"]), stdout=out,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            EXTRA_PROCS.append(self.restarted)
            pidfile = os.environ.get("SEAWEEDFS_PIDFILE")
            if pidfile:  # with-seaweedfs.sh stops it at exit too
                Path(pidfile).write_text(str(self.restarted.pid))
            restarted_at = now()
            back = wait_until(self.s3_answers, 60, 0.3)
            report.check("faults", "SeaweedFS came back after its restart", bool(back),
                         f"restarted at {restarted_at:.1f} s, took a write after "
                         f"{now() - restarted_at:.1f} s")
        else:
            pid = int(os.environ["MOTO_PID"])
            os.kill(pid, signal.SIGSTOP)
            report.fault(f"moto frozen (SIGSTOP, pid {pid}) at {now():.1f} s for {seconds:.0f} s")
            try:
                time.sleep(seconds)
            finally:
                os.kill(pid, signal.SIGCONT)

    @staticmethod
    def s3_answers() -> bool:
        """S3 takes a write again (listing alone answers before weed can store anything)."""
        try:
            S3.put_object(Bucket=os.environ["STORAGE_BUCKET"], Key="scaleout-probe", Body=PROBE)
            S3.delete_object(Bucket=os.environ["STORAGE_BUCKET"], Key="scaleout-probe")
            return True
        except Exception:  # noqa: BLE001
            return False


def stale_patch(report: Report, bucket: str, a: Instance, b: Instance, c: Instance,
                variant: str) -> dict:
    """An upload whose PATCH is streaming into A when A is frozen (SIGSTOP). The client
    resumes on B from B's offset and sends *different* bytes for the range A was receiving,
    B acknowledges the upload complete, then A is thawed and (variant) gets the rest of its
    body, or its client has gone. What B acknowledged is the only truth: the object must hold
    B's bytes, A's late PATCH must not be acknowledged, the upload must stay complete and be
    published once.

    variant "fresh": A's PATCH starts at offset 0, so A creates a multipart upload of its own
                     (and has a part in it) before it is frozen.
    variant "shared": 6 MiB are committed first (one part, a 1 MiB tail), so A's PATCH writes
                     into the multipart upload B will complete (today with a part number B
                     then reuses).
    variant "gone":  as "fresh", but A's client closes its connection while A is frozen instead
                     of sending the rest (A then has only a partial body to commit).
    """
    phase = f"faults/stale PATCH ({variant})"
    shared = variant == "shared"
    length = 11 * MiB + 333 if shared else 8 * MiB + 333
    truth = random_bytes(length, f"stale-{variant}-B")   # what B is sent and acknowledges
    stale = random_bytes(length, f"stale-{variant}-A")   # what A is sent for the same ranges
    key = f"stale/{variant}-{secrets.token_hex(4)}.bin"
    obj = f"public/{key}"
    upload_id = tus_create(c, length, sign_upload(key))
    committed = patch_chunks(c, upload_id, truth[:6 * MiB], 0) if shared else 0

    def parts_in_s3() -> int:
        return sum(len(part_numbers(bucket, obj, u)) for u in multipart_uploads(bucket, obj))

    parts_before = parts_in_s3()
    # What A must have received before the freeze: a whole part's worth, so it has put a part.
    first = 5 * MiB if shared else 5 * MiB + 512 * KiB
    patch = StreamedPatch(a, upload_id, committed, stale[committed:], first)
    result = {"variant": variant, "id": upload_id}
    try:
        t_sent = now()
        patch.wait_sent(first, 20)
        log(f"[{phase}] {patch.sent} body bytes sent to {a.name} in {now() - t_sent:.1f} s")

        # Any part number: nobody but A writes to this upload until A is frozen.
        part_seen = wait_until(lambda: parts_in_s3() > parts_before, 20, 0.1)
        log(f"[{phase}] A's part {'is' if part_seen else 'is NOT'} in S3 "
            f"{now() - t_sent:.1f} s after the PATCH started")
        a.freeze()
        frozen_at = now()
        report.fault(f"{a.name} frozen (SIGSTOP) in the middle of a PATCH of upload {upload_id} "
                     f"({variant}; {patch.sent} of {len(patch.body)} body bytes sent, "
                     f"A's part {'seen' if part_seen else 'NOT seen'} in S3)")
        status, offset_b = tus_head(b, upload_id)
        report.check(phase, "B's HEAD shows only what was committed before A's PATCH",
                     (status, offset_b) == (200, committed),
                     f"HEAD on B: {status}, offset {offset_b}, committed {committed}")
        acked = patch_chunks(b, upload_id, truth, offset_b if offset_b is not None else committed)
        version = object_version(bucket, obj)
        stored = read_object(bucket, obj)
        report.check(phase, "B acknowledged every byte and the object is B's bytes, "
                     "while A is frozen", acked == length and stored == truth,
                     compare(stored, truth, stale))
        # A stays frozen long enough for tus-js-client requests stuck on it (the load) to hit
        # their idle timeout and go elsewhere too.
        time.sleep(max(0.0, frozen_at + MIN_FREEZE - now()))
        log(f"[{phase}] B completed {upload_id} at {now():.1f} s; thawing {a.name} "
            f"(frozen {now() - frozen_at:.1f} s)")
        a.thaw()
        if variant == "gone":
            patch.give_up()
        else:
            patch.go_on()
        answer = patch.wait_answer(40)
        result["stale answer"] = answer
        time.sleep(SETTLE)
        ok = answer[0] is None or not (200 <= answer[0] < 300)
        report.check(phase, "A's late PATCH is not acknowledged (no 2xx)", ok,
                     f"A answered {answer[0]} {answer[1].strip()[:200]!r} "
                     f"{patch.answered_at - frozen_at if patch.answered_at else 0:.1f} s after "
                     f"the freeze; {patch.sent} body bytes sent to A")
        log(f"[{phase}] A answered its stale PATCH: {answer[0]} {answer[1].strip()[:120]!r}")
        report.notes.append(f"stale PATCH ({variant}): A answered {answer[0]} "
                            f"{answer[1].strip()[:100]!r}")
        stored = read_object(bucket, obj)
        diff = compare(stored, truth, stale)
        report.check(phase, "the published object holds only B's acknowledged bytes",
                     not diff, diff + f" (sha {sha(stored)}, B's {sha(truth)})")
        after = object_version(bucket, obj)
        report.check(phase, "the object was published once (ETag and Last-Modified unchanged "
                     "since B's completion)", after == version,
                     f"after B: {version}, at the end: {after}")
        heads = [(i.name, *tus_head(i, upload_id)) for i in (a, b, c)]
        report.check(phase, "the upload stays complete on every instance (A committed nothing "
                     "late)", all(h[1:] == (200, length) for h in heads),
                     f"HEAD (instance, status, offset): {heads}, length {length}")
        count = finished_everywhere([a, b, c])[upload_id]
        report.check(phase, "'upload finished' logged once for it over all instances",
                     count == 1, f"{count} times")
        result["finished"] = count
    finally:
        patch.close()
        a.thaw()
    return result


def phase_faults(report: Report, workdir: Path, backend: str) -> None:
    phase = "faults"
    bucket = new_bucket(phase)
    instances = [Instance(f"faults-{i}", workdir, bucket) for i in range(3)]
    rng = random.Random(f"{SEED}-faults")
    n = int(os.environ.get("SCALEOUT_UPLOADS", "16"))
    spread_ms = int(os.environ.get("SCALEOUT_SPREAD_MS", "32000"))
    uploads, expect = [], {}
    for i in range(n):
        size = rng.randrange(3 * MiB // 2, 7 * MiB)
        data = random_bytes(size, f"load-{i}")
        path = workdir / f"load-{i}.bin"
        path.write_bytes(data)
        tokened = i % 2 == 0
        key = f"load/{secrets.token_hex(4)}/{i}.bin" if tokened else None
        # No parallelUploads here (phase 1 has them): tus-js-client 4.3.1 never retries the
        # final concatenation POST when it fails without an answer (a killed or frozen
        # instance, S3 away): that error reaches `_emitError` without `originalRequest`.
        options = {"chunkSize": MiB, "retryDelays": RETRY_DELAYS}
        name = f"load-{i}"
        uploads.append({"name": name, "file": str(path), "startAtMs": i * spread_ms // n,
                        "headers": {"Upload-Metadata": sign_upload(key)} if tokened else {},
                        "options": options})
        expect[name] = (data, key)
    log(f"[faults] {n} tus-js-client uploads over {spread_ms / 1000:.0f} s, 1 MiB chunks, "
        "random instance per request, request idle timeout 4 s, retryDelays "
        f"{RETRY_DELAYS}")
    run = HopRun(workdir, "faults", instances, uploads, idle_timeout_ms=4000,
                 run_timeout_ms=spread_ms + 80_000, retry_interrupted=True)
    versions: dict[str, tuple | None] = {}

    def snapshot(event: dict) -> None:
        log(f"[faults] {event['upload']} done: requests per instance {event['requests']}, "
            f"{event['retries']} retries")
        data, key = expect[event["upload"]]
        if key:
            versions[event["upload"]] = object_version(bucket, f"public/{key}")

    run.on_done = snapshot
    if not run.started.wait(20):
        raise RuntimeError(f"hop_uploads.mjs did not start: {run.stderr()}")
    t_start = now()

    def at(seconds: float) -> None:
        delay = t_start + seconds - now()
        if delay > 0:
            time.sleep(delay)

    stale_results = []
    victim = instances[0]
    at(2.0)
    victim.sigkill()
    report.fault(f"{victim.name} SIGKILLed at {now():.1f} s (uploads running)")
    time.sleep(1.5)
    victim.start()
    log(f"[faults] {victim.name} restarted on port {victim.port}")
    at(6.0)
    S3Outage(backend).run(report, 3.0)
    at(max(now() - t_start, 10.0))
    a, b, c = instances[1], instances[2], instances[0]
    for variant in ("fresh", "shared", "gone"):
        try:
            stale_results.append(stale_patch(report, bucket, a, b, c, variant))
            report.counts["raw uploads"] += 1
        except Exception as e:  # noqa: BLE001 - a scenario that broke is a failure, not a crash
            report.check(f"faults/stale PATCH ({variant})", "scenario ran", False,
                         f"{type(e).__name__}: {e}")
    log(f"[faults] fault injection over at {now() - t_start:.1f} s into the load; waiting for "
        "the clients")
    finished_in_time = run.wait(spread_ms / 1000 + 90)
    count_client_run(report, run, uploads)
    time.sleep(SETTLE)
    done, errors = run.by_upload("done"), run.by_upload("error")
    report.check(phase, "every upload completed despite the faults (tus-js-client retrying)",
                 finished_in_time and len(done) == len(uploads),
                 f"{len(done)}/{len(uploads)} done; "
                 + "; ".join(f"{n}: {e['error']} (status {e['status']})" for n, e in errors.items()))
    finished = finished_everywhere(instances)
    created = run.created()
    bad_content, bad_once, bad_head, republished = [], [], [], []
    for name, (data, key) in expect.items():
        event = done.get(name)
        if not event:
            continue
        obj = f"public/{key}" if key else event["id"]
        stored = read_object(bucket, obj)
        if stored != data:
            bad_content.append(f"{name} ({obj}): {compare(stored, data)}")
        # The final upload and, for parallel uploads, its partials (tus-js-client may also have
        # created uploads it then abandoned after a lost answer: those must not finish twice).
        final_id = event["id"]
        counts = {i: finished[i] for i in created.get(name, [])}
        if finished[final_id] != 1 or any(v > 1 for v in counts.values()):
            bad_once.append(f"{name}: final {final_id} finished {finished[final_id]}×, "
                            f"all its uploads {counts}")
        heads = [tus_head(inst, final_id) for inst in instances]
        if any(h != (200, len(data)) for h in heads):
            bad_head.append(f"{name} {final_id}: (status, offset) {heads}, length {len(data)}")
        if key:
            at_end = object_version(bucket, obj)
            if versions.get(name) != at_end:
                republished.append(f"{name}: at completion {versions.get(name)}, end {at_end}")
    report.check(phase, "every completed upload's object has its source's sha256 (no "
                 "acknowledged byte lost, no wrong byte)", not bad_content, "\n".join(bad_content))
    report.check(phase, "every completed upload finished exactly once ('upload finished' per "
                 "id over all instance logs)", not bad_once, "\n".join(bad_once))
    report.check(phase, "every completed upload reads complete on every instance afterwards",
                 not bad_head, "\n".join(bad_head))
    report.check(phase, "every tokened asset was published once (ETag and Last-Modified at "
                 "completion = at the end)", not republished, "\n".join(republished))
    total, detail = metrics_sum(instances)
    want = sum(len(created.get(name, [])) for name in done) + len(stale_results)
    counted = sum(finished.values())
    names = {i: n for n, ids in created.items() for i in ids}
    names.update({r["id"]: f"stale PATCH ({r['variant']})" for r in stale_results})
    twice = {f"{names.get(i, '?')} {i}": c for i, c in finished.items() if c > 1}
    report.check(phase, "tusd_uploads_finished summed over instances = uploads that finished",
                 total == want,
                 f"metrics sum {total} ({detail}); expected {want} = tus uploads the clients "
                 f"created and completed (partials included) + {len(stale_results)} raw-HTTP "
                 f"uploads; 'upload finished' log lines {counted}; finished more than once "
                 f"(logs): {twice or 'none'}")
    tails, open_uploads = leftovers(bucket)
    report.notes.append(f"faults bucket afterwards (not a check): {tails} tail objects, "
                        f"{open_uploads} open multipart uploads")
    for inst in instances:
        inst.stop()


# ---------------------------------------------------------------------------
# Phase 3: two instances finishing the same upload at once
# ---------------------------------------------------------------------------

def leave_unpublished(workdir: Path, bucket: str, name: str, length: int, key: str | None,
                      seed: str) -> tuple[str, bytes]:
    """An upload whose every byte is committed by an instance that crashes right after
    (`TUSGATE_CRASH_AT=upload:stored`), before completing the multipart upload."""
    crasher = Instance(name, workdir, bucket, env={"TUSGATE_CRASH_AT": "upload:stored"})
    data = random_bytes(length, seed)
    upload_id = tus_create(crasher, length, sign_upload(key) if key else None)
    patch_chunks(crasher, upload_id, data[:PART_SIZE], 0, PART_SIZE)
    try:
        tus_patch(crasher, upload_id, PART_SIZE, data[PART_SIZE:])
    except requests.RequestException:
        pass  # it aborted mid-answer, as intended
    crasher.proc.wait(timeout=10)
    assert "crashing at upload:stored" in crasher.log_text(), crasher.tail()
    return upload_id, data


def phase_race(report: Report, workdir: Path) -> None:
    phase = "race"
    bucket = new_bucket(phase)
    pause = {"TUSGATE_PAUSE_AT": "upload:stored:1500"}

    # (a) Two PATCHes at offset == length, one to each instance, at the same moment. Both
    # instances hold the finishing 1.5 s (failpoint), so both have read the unpublished state
    # before either completes: the overlap is certain, not a matter of luck.
    a = Instance("race-a", workdir, bucket, env=pause)
    b = Instance("race-b", workdir, bucket, env=pause)
    key = f"race/{secrets.token_hex(4)}/patch.bin"
    length = 7 * MiB + 99
    upload_id, data = leave_unpublished(workdir, bucket, "race-crasher", length, key, "race-a")
    status, offset = tus_head(a, upload_id)
    report.check(phase, "setup: complete and unpublished after the crash",
                 (status, offset) == (200, length) and read_object(bucket, f"public/{key}") is None,
                 f"HEAD {status} offset {offset}")
    report.fault("an instance crashed (TUSGATE_CRASH_AT=upload:stored) after committing an "
                 "upload's last byte")
    base = {i.name: i.finished_metric() for i in (a, b)}
    barrier = threading.Barrier(2)
    answers: dict[str, tuple] = {}

    def finish_on(inst: Instance) -> None:
        headers = {**TUS, "Upload-Offset": str(length),
                   "Content-Type": "application/offset+octet-stream", "Content-Length": "0"}
        barrier.wait(10)
        started = time.monotonic()
        try:
            resp = requests.patch(inst.url(upload_id), headers=headers, data=b"",
                                  timeout=HTTP_TIMEOUT)
            answers[inst.name] = (resp.status_code, resp.text.strip()[:120],
                                  round(time.monotonic() - started, 2))
        except requests.RequestException as e:
            answers[inst.name] = (None, str(e)[:120], round(time.monotonic() - started, 2))

    threads = [threading.Thread(target=finish_on, args=(i,)) for i in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HTTP_TIMEOUT + 10)
    time.sleep(SETTLE)
    log(f"[race] empty PATCHes at offset=length answered: {answers}")
    report.notes.append(f"race: two empty PATCHes at offset=length answered "
                        f"{ {k: v[0] for k, v in answers.items()} }")
    sane = all(ans[0] is not None and ans[0] < 500 for ans in answers.values()) \
        and any(ans[0] == 204 for ans in answers.values())
    report.check(phase, "two instances finishing at once: both answers sane (no 5xx, one 204)",
                 sane, f"(status, body, seconds): {answers}")
    retry = {}
    for inst in (a, b):
        if answers.get(inst.name, (None,))[0] != 204:
            resp = requests.patch(inst.url(upload_id), timeout=HTTP_TIMEOUT, data=b"",
                                  headers={**TUS, "Upload-Offset": str(length),
                                           "Content-Type": "application/offset+octet-stream"})
            retry[inst.name] = resp.status_code
    if retry:
        report.check(phase, "two instances finishing at once: the other one's retry is 204",
                     all(s == 204 for s in retry.values()), f"retries: {retry}")
    delta = sum(i.finished_metric() - base[i.name] for i in (a, b))
    report.check(phase, "two instances finishing at once: tusd_uploads_finished grew by 1 "
                 "in total", delta == 1,
                 f"grew by {delta} ({ {i.name: i.finished_metric() - base[i.name] for i in (a, b)} })")
    count = finished_everywhere([a, b])[upload_id]
    report.check(phase, "two instances finishing at once: 'upload finished' logged once",
                 count == 1, f"{count} times")
    stored = read_object(bucket, f"public/{key}")
    report.check(phase, "two instances finishing at once: the object is the upload",
                 stored == data, compare(stored, data))
    heads = [tus_head(i, upload_id) for i in (a, b)]
    report.check(phase, "two instances finishing at once: HEAD complete on both",
                 all(h == (200, length) for h in heads), f"{heads}")
    a.stop()
    b.stop()

    # (b) Two instances started at once, both recovering the same unpublished upload.
    key = f"race/{secrets.token_hex(4)}/recover.bin"
    upload_id, data = leave_unpublished(workdir, bucket, "race-crasher-2", length, key, "race-b")
    report.fault("an instance crashed (TUSGATE_CRASH_AT=upload:stored) after committing an "
                 "upload's last byte")
    d = Instance("race-d", workdir, bucket, env=pause, wait=False)
    e = Instance("race-e", workdir, bucket, env=pause, wait=False)
    d.wait_ready()
    e.wait_ready()
    time.sleep(SETTLE)
    metric = {i.name: i.finished_metric() for i in (d, e)}
    report.check(phase, "two startups recovering at once: tusd_uploads_finished sums to 1",
                 sum(metric.values()) == 1, f"{metric}")
    count = finished_everywhere([d, e])[upload_id]
    report.check(phase, "two startups recovering at once: 'upload finished' logged once",
                 count == 1, f"{count} times")
    stored = read_object(bucket, f"public/{key}")
    report.check(phase, "two startups recovering at once: the object is the upload",
                 stored == data, compare(stored, data))

    # (c) Not part of the issue, found while writing this stage: a tokenless upload whose last
    # byte was committed by an instance that crashed before completing the multipart upload.
    # Nothing awaits publishing (no target), so no instance ever completes it.
    upload_id, data = leave_unpublished(workdir, bucket, "race-crasher-3", length, None, "race-c")
    report.fault("an instance crashed (TUSGATE_CRASH_AT=upload:stored) after committing a "
                 "tokenless upload's last byte")
    f = Instance("race-f", workdir, bucket)
    resp = requests.patch(f.url(upload_id), timeout=HTTP_TIMEOUT, data=b"",
                          headers={**TUS, "Upload-Offset": str(length),
                                   "Content-Type": "application/offset+octet-stream"})
    time.sleep(SETTLE)
    got = requests.get(f.url(upload_id), timeout=HTTP_TIMEOUT)
    stored = read_object(bucket, upload_id)
    report.check(phase, "tokenless upload left complete by a crash is assembled once another "
                 "instance starts and a client resumes it (beyond the issue)",
                 stored == data and got.status_code == 200 and got.content == data,
                 f"after a restart and an empty PATCH ({resp.status_code}): HEAD "
                 f"{tus_head(f, upload_id)}, GET /files/<id> {got.status_code} "
                 f"{got.text[:80]!r}, object in bucket: {compare(stored, data)}")
    d.stop()
    e.stop()
    f.stop()
    report.counts["raw uploads"] += 3


# ---------------------------------------------------------------------------

def main() -> int:
    backend = sys.argv[1] if len(sys.argv) > 1 else "s3"
    tusgate_bin()
    for name in ("STORAGE_ENDPOINT_URL", "STORAGE_BUCKET", "STORAGE_ACCESS_KEY",
                 "STORAGE_SECRET_KEY"):
        if not os.environ.get(name):
            print(f"scaleout: {name} is not set (run me through run.sh)")
            return 2
    outage_env = ("SEAWEEDFS_PID", "SEAWEEDFS_RESTART") if backend == "seaweedfs" else ("MOTO_PID",)
    for name in outage_env:
        if not os.environ.get(name):
            print(f"scaleout: {name} is not set (scripts/with-{backend}.sh exports it)")
            return 2
    report = Report(backend)
    workdir = Path(os.environ.get("SCALEOUT_WORKDIR") or "/tmp") / f"tusgate-scaleout-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"scaleout on {backend} ({os.environ['STORAGE_ENDPOINT_URL']}), seed {SEED}, "
        f"work dir {workdir}")

    def expire(signum, frame):
        raise Deadline(f"the stage exceeded SCALEOUT_TIMEOUT={TOTAL_TIMEOUT} s")

    def terminated(signum, frame):
        raise Deadline(f"stopped by signal {signum}")

    signal.signal(signal.SIGALRM, expire)
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, terminated)
    signal.alarm(TOTAL_TIMEOUT)
    try:
        for name, run in (("hop", lambda: phase_hop(report, workdir)),
                          ("faults", lambda: phase_faults(report, workdir, backend)),
                          ("race", lambda: phase_race(report, workdir))):
            started = now()
            try:
                run()
            except Deadline:
                raise
            except Exception as e:  # noqa: BLE001 - report and go on with the next phase
                report.check(name, "phase ran to its end", False, f"{type(e).__name__}: {e}")
            log(f"[{name}] phase took {now() - started:.1f} s")
    except Deadline as e:
        report.check("all", "stage finished within its time bound", False, str(e))
    finally:
        signal.alarm(0)
        stop_everything()
    report.print_summary()
    if report.failures():
        keep = os.environ.get("SCALEOUT_KEEP_LOGS")
        if keep:
            dest = Path(keep) / backend
            dest.mkdir(parents=True, exist_ok=True)
            for path in workdir.glob("*.log"):
                (dest / path.name).write_bytes(path.read_bytes())
            print(f"scaleout: instance logs kept in {dest}")
        else:
            print("scaleout: set SCALEOUT_KEEP_LOGS=DIR to keep the instance logs")
    subprocess.run(["rm", "-rf", str(workdir)], check=False)
    return 1 if report.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
