#!/usr/bin/env python3
"""Chaos test for tusgate: many concurrent tus clients with random disconnects, SIGKILLs of the
server and an upload directory that fills up, for a bounded time; then four checks.

Run through run.sh (it mounts the small tmpfs and cleans up); see README.md beside this file.
Standard library only. Every random choice derives from CHAOS_SEED (printed at start), so a
run can be repeated; the timing of threads and of the server is not reproducible, the plan is.

The checks, after the clients stop:
  1. every acknowledged byte is present and correct (tokenless: GET /files/<id> prefix; tokened:
     the published asset on disk is the content of the newest completed upload of its key);
  2. every complete upload is published within a deadline (10 s after the last restart or the
     end of the clients, whichever is later), none stays complete-but-unpublished;
  3. no fd or memory leak (fd count back near the startup baseline, RSS bounded);
  4. no private byte without a signature (GET /files/<id>, unsigned /assets/private/<key>,
     no upload-token echoed by HEAD).
  5. (the requirements around them) the server answers every request while it is up, ENOSPC
     included, with an HTTP status; /health keeps answering.
"""

import base64
import errno
import hashlib
import hmac
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

UPLOAD_SECRET = "chaos-upload-secret"
LINK_SECRET = "chaos-link-secret"
MiB = 1 << 20


def env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name, default):
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


# ---------------------------------------------------------------------------------------------
# Configuration (all bounded; the defaults keep the stage under ~2 minutes)

SEED = env_int("CHAOS_SEED", int.from_bytes(os.urandom(4), "big"))
DURATION = env_float("CHAOS_DURATION", 70.0)  # seconds of chaos
CLIENTS = env_int("CHAOS_CLIENTS", 16)
KILLS = env_int("CHAOS_KILLS", 4)
FULL_WINDOWS = env_int("CHAOS_FULL_WINDOWS", 3)
FULL_WINDOW_SECONDS = env_float("CHAOS_FULL_WINDOW_SECONDS", 5.0)
MAX_UPLOADS = env_int("CHAOS_MAX_UPLOADS", 6000)  # all clients together
PUBLISH_DEADLINE = env_float("CHAOS_PUBLISH_DEADLINE", 10.0)
FD_SLACK = env_int("CHAOS_FD_SLACK", 8)
RSS_LIMIT_MIB = env_int("CHAOS_RSS_LIMIT_MIB", 200)
REQUEST_TIMEOUT = 15.0
KEYS_PER_VISIBILITY = 4

MAX_UPLOAD_BYTES = 4 * MiB
POOL_BYTES = 12 * MiB
POOL = random.Random(f"{SEED}-pool").randbytes(POOL_BYTES)

T0 = time.monotonic()


def now():
    return time.monotonic() - T0


def log(msg):
    print(f"[{now():7.2f}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# Signing (src/tokens.rs, src/download/secure_link.rs)


def upload_token(expires, key, visibility, content_type):
    payload = f"{expires}:{key}:{visibility}:{content_type}".encode()
    return hmac.new(UPLOAD_SECRET.encode(), payload, hashlib.sha256).hexdigest()


def b64(value):
    return base64.b64encode(value.encode()).decode()


def upload_metadata(key, visibility, content_type, expires):
    """granite's Upload-Metadata, as src/sign.rs `upload_metadata` builds it."""
    token = upload_token(expires, key, visibility, content_type)
    pairs = [
        ("asset-key", key),
        ("content-type", content_type),
        ("visibility", visibility),
        ("upload-expires", str(expires)),
        ("upload-token", token),
    ]
    return ", ".join(f"{name} {b64(value)}" for name, value in pairs)


def signed_asset_path(visibility, key, expires):
    """nginx secure_link md5: base64url(md5(expires + uri + " " + secret)), uri with the raw key."""
    uri = f"/assets/{visibility}/{key}"
    digest = hashlib.md5(f"{expires}{uri} {LINK_SECRET}".encode()).digest()
    md5 = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return f"/assets/{visibility}/{urllib.parse.quote(key)}?md5={md5}&expires={expires}"


def parse_metadata(header):
    out = {}
    for pair in (header or "").split(","):
        parts = pair.strip().split(" ")
        if parts and parts[0]:
            out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


# ---------------------------------------------------------------------------------------------
# Raw HTTP/1.1 over loopback, one connection per request (Connection: close)


class NoAnswer(Exception):
    """The request got no HTTP response (refused, reset, closed, timed out)."""


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def h(self, name):
        return self.headers.get(name.lower())

    def short(self):
        text = self.body[:120].decode("utf-8", "replace").strip()
        return f"{self.status} {text!r}" if text else f"{self.status}"


def connect(port, timeout=REQUEST_TIMEOUT):
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as e:
        raise NoAnswer(f"connect: {e}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def reset(sock):
    """Close with SO_LINGER 0: the kernel sends a RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def build_head(port, method, path, headers, length):
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def send_watching(sock, parts):
    """Sends `parts` in slices; stops early when the server answers (or closes) meanwhile, so
    an early error response is read before the server's close can turn into a reset."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), 64 << 10):
            if poller.poll(0):
                return False
            sock.sendall(view[start : start + (64 << 10)])
    return True


def read_response(sock, method):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise NoAnswer("closed before a response" if not buf else "truncated response head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        raise NoAnswer(f"bad status line {lines[0]!r}") from None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Resp(status, headers, b"")
    if "content-length" in headers:
        need = int(headers["content-length"])
        body = bytearray(rest)
        while len(body) < need:
            chunk = sock.recv(min(1 << 20, need - len(body)))
            if not chunk:
                raise NoAnswer(f"body truncated at {len(body)} of {need}")
            body += chunk
        return Resp(status, headers, bytes(body[:need]))
    body = bytearray(rest)
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        body += chunk
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = dechunk(bytes(body))
    return Resp(status, headers, bytes(body))


def dechunk(data):
    out = bytearray()
    while data:
        line, _, data = data.partition(b"\r\n")
        size = int(line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def request(port, method, path, headers=None, body=b"", timeout=REQUEST_TIMEOUT):
    headers = dict(headers or {})
    sock = connect(port, timeout)
    try:
        length = len(body) if (body or method in ("POST", "PATCH", "DELETE")) else None
        try:
            send_watching(sock, [build_head(port, method, path, headers, length), body])
        except OSError as e:
            # The server may have answered early and closed (EPIPE, ECONNRESET): its answer
            # can still be waiting in the receive buffer.
            sock.settimeout(2.0)
            try:
                return read_response(sock, method)
            except (OSError, NoAnswer):
                raise NoAnswer(f"sending: {type(e).__name__}: {e}") from None
        return read_response(sock, method)
    except OSError as e:  # includes socket.timeout
        raise NoAnswer(f"{type(e).__name__}: {e}") from None
    finally:
        sock.close()


def tus(extra=None):
    headers = {"Tus-Resumable": "1.0.0"}
    headers.update(extra or {})
    return headers


# ---------------------------------------------------------------------------------------------
# The server under test


class Server:
    """Starts, SIGKILLs and restarts tusgate on one directory and port; tracks which process
    is up so that a missing answer can be told apart from a kill."""

    def __init__(self, binary, upload_dir, port, log_dir, pid_file):
        self.binary = binary
        self.upload_dir = upload_dir
        self.port = port
        self.log_dir = log_dir
        self.pid_file = pid_file
        self.proc = None
        self.epoch = 0  # bumped at every kill: a request spanning a kill is excused
        self.up = False
        self.lock = threading.Lock()
        self.starts = []  # (time ready, pid, fds at startup)
        self.kills = []  # (time, pid, rss_kib, hwm_kib, fds)
        self.start_failures = []
        self.peak_hwm_kib = 0
        self.instances = 0

    def env(self):
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TUSGATE_", "STORAGE_", "UPLOAD_SECRET", "SECURE_LINK"))
        }
        env["UPLOAD_SECRET"] = UPLOAD_SECRET
        env["SECURE_LINK_SECRET"] = LINK_SECRET
        env.setdefault("RUST_BACKTRACE", "1")
        return env

    def start(self, deadline=30.0):
        """Starts an instance and waits for tusd's startup line; retries if it exits (a full
        disk may stop startup recovery). Returns True when up."""
        give_up = time.monotonic() + deadline
        while time.monotonic() < give_up:
            self.instances += 1
            log_path = os.path.join(self.log_dir, f"server-{self.instances}.log")
            out = open(log_path, "wb")
            proc = subprocess.Popen(
                [
                    self.binary,
                    "-host=127.0.0.1",
                    f"-port={self.port}",
                    f"-upload-dir={self.upload_dir}",
                    "-allow-uploads-without-token",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env(),
            )
            out.close()
            with open(self.pid_file, "w") as f:
                f.write(str(proc.pid))
            while time.monotonic() < give_up:
                with open(log_path, "rb") as f:
                    text = f.read()
                if b"You can now upload files to: http://" in text:
                    fds = count_fds(proc.pid)
                    with self.lock:
                        self.proc = proc
                        self.up = True
                    self.starts.append((now(), proc.pid, fds, log_path))
                    return True
                if proc.poll() is not None:
                    tail = text.decode("utf-8", "replace").strip().splitlines()[-3:]
                    self.start_failures.append((now(), proc.returncode, tail))
                    log(f"server exited during startup (status {proc.returncode}): {tail}")
                    break
                time.sleep(0.02)
            else:
                proc.kill()
                proc.wait()
                self.start_failures.append((now(), "no startup line", []))
            time.sleep(0.3)
        return False

    def kill(self):
        with self.lock:
            proc = self.proc
            self.up = False
            self.epoch += 1
        if proc is None:
            return
        rss, hwm = memory_kib(proc.pid)
        fds = count_fds(proc.pid)
        self.peak_hwm_kib = max(self.peak_hwm_kib, hwm)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.kills.append((now(), proc.pid, rss, hwm, fds))

    def stop(self):
        with self.lock:
            proc = self.proc
            self.proc = None
            self.up = False
            self.epoch += 1
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def pid(self):
        with self.lock:
            return self.proc.pid if self.proc else None

    def state(self):
        with self.lock:
            alive = self.proc is not None and self.proc.poll() is None
            return self.epoch, self.up and alive


def count_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def memory_kib(pid):
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


# ---------------------------------------------------------------------------------------------
# Bookkeeping shared by the clients


class Upload:
    def __init__(self, n, kind, key, content_type, length, seed):
        self.n = n
        self.kind = kind  # "tokenless" | "public" | "private"
        self.key = key
        self.content_type = content_type
        self.length = length
        self.seed = seed
        self.path = None  # /files/<id>
        self.id = None
        self.max_ack = -1  # highest Upload-Offset acknowledged by 201/204
        self.ack_time = None
        self.max_head = -1  # highest offset HEAD reported
        self.complete_at = None  # first moment we saw offset == length (ack or HEAD): upper bound
        self.incomplete_seen_start = -1.0  # start of the latest request that saw offset < length
        self.end_send_start = None  # start of the earliest request whose body reached the end
        self.end_sends = []  # how each request carrying the last byte went, for the reports
        self.terminated = False  # DELETE answered 204
        self.maybe_terminated = False  # DELETE sent, answer lost
        self.verified_before_delete = None
        self.acked_complete_at = None  # when a 201/204 acknowledged the last byte
        self.orphan_window = None  # creation-with-upload of every byte, answer lost
        self.refused = None  # creation-with-upload of every byte answered with an error
        self.adopted = False  # its creation failed but said where it is: state unknown
        self.events = []

    @property
    def tokened(self):
        return self.kind != "tokenless"

    def content(self):
        """This upload's bytes: a window of the seed's random pool at a per-upload start, so
        any prefix can be recomputed at no cost and two uploads differ (unless tiny)."""
        start = random.Random(self.seed).randrange(POOL_BYTES - MAX_UPLOAD_BYTES)
        return POOL[start : start + self.length]

    def label(self):
        key = f" key={self.key!r}" if self.tokened else ""
        return f"upload #{self.n} {self.kind}{key} id={self.id} len={self.length}"

    def completion_window(self):
        if self.orphan_window:
            return self.orphan_window
        lower = max(self.incomplete_seen_start, self.end_send_start or 0.0)
        return lower, self.complete_at


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.error_answers = {}  # (method, status, body head) -> count
        self.full_answers = {}  # answers during a full-disk window
        self.unanswered = []  # requests without an answer while the server was up

    def add(self, name, n=1):
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + n

    def get(self, name):
        with self.lock:
            return self.counts.get(name, 0)


class Disk:
    """Fills the tmpfs with a ballast file for a few windows (so writes fail with ENOSPC)."""

    def __init__(self, upload_dir):
        self.upload_dir = upload_dir
        self.ballast = os.path.join(upload_dir, "chaos-ballast")
        self.windows = []  # [start, end]
        self.full = False
        self.lock = threading.Lock()

    def fill(self):
        written = 0
        # Unbuffered, so that every write that succeeded is on the tmpfs; smaller blocks fill
        # the last megabyte too. The disk may be full already (then the file stays empty).
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (MiB, 64 << 10, 4 << 10):
                block = b"\0" * size
                try:
                    while True:
                        written += os.write(fd, block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)
        with self.lock:
            self.full = True
            self.windows.append([now(), None])
        return written

    def empty(self):
        try:
            os.unlink(self.ballast)
        except FileNotFoundError:
            pass
        with self.lock:
            if self.full:
                self.windows[-1][1] = now()
            self.full = False

    def in_window(self, start, end):
        with self.lock:
            for w_start, w_end in self.windows:
                if start <= (w_end if w_end is not None else float("inf")) and end >= w_start:
                    return True
        return False

    def free_fraction(self):
        st = os.statvfs(self.upload_dir)
        return st.f_bavail / max(1, st.f_blocks)


class AssetMonitor:
    """Reads every key's asset on disk a few times a second and right after each restart, so
    that an older upload published over a newer one is seen even if a later upload replaces
    it again before the end."""

    def __init__(self, upload_dir):
        self.upload_dir = upload_dir
        self.samples = []  # (t_open, tag, visibility, key, sha256 hex)
        self.cache = {}  # path -> ((ino, size, mtime_ns), sha)
        self.lock = threading.Lock()

    def sample(self, tag):
        with self.lock:
            for visibility, keys in (("public", PUBLIC_KEYS), ("private", PRIVATE_KEYS)):
                for key in keys:
                    path = asset_file(self.upload_dir, visibility, key)
                    t_open = now()
                    try:
                        with open(path, "rb") as f:
                            st = os.fstat(f.fileno())
                            ident = (st.st_ino, st.st_size, st.st_mtime_ns)
                            cached = self.cache.get(path)
                            if cached and cached[0] == ident:
                                digest = cached[1]
                            else:
                                digest = hashlib.sha256(f.read()).hexdigest()
                                self.cache[path] = (ident, digest)
                    except OSError:
                        continue
                    self.samples.append((t_open, tag, visibility, key, digest))

    def run(self, ctx):
        while not ctx.done_health:
            self.sample("periodic")
            time.sleep(0.3)


# ---------------------------------------------------------------------------------------------
# A client: creates uploads and drives them through resets, kills and full disks


PUBLIC_KEYS = [f"chaos/public-{i}.bin" for i in range(KEYS_PER_VISIBILITY - 1)] + [
    "chaos/dir with space/ü-public.bin"
]
PRIVATE_KEYS = [f"chaos/private-{i}.bin" for i in range(KEYS_PER_VISIBILITY - 1)] + [
    "chaos/dir with space/ü-private.bin"
]
CONTENT_TYPES = ["application/octet-stream", "text/plain", "image/png"]


class Client(threading.Thread):
    def __init__(self, index, ctx):
        super().__init__(name=f"client-{index}", daemon=True)
        self.index = index
        self.ctx = ctx
        self.rng = random.Random(f"{SEED}-client-{index}")
        self.kept = 0

    # -- helpers -----------------------------------------------------------------------------

    def stopping(self):
        return now() >= self.ctx.stop_at

    def note_answer(self, method, resp, started):
        if resp.status >= 400:
            key = (method, resp.status, resp.body[:80].decode("utf-8", "replace").strip())
            full = self.ctx.disk.in_window(started, now())
            with self.ctx.stats.lock:
                self.ctx.stats.error_answers[key] = self.ctx.stats.error_answers.get(key, 0) + 1
                if full:
                    self.ctx.stats.full_answers[key] = self.ctx.stats.full_answers.get(key, 0) + 1

    def note_unanswered(self, method, u, started, epoch, err):
        """A request we did not cut ourselves got no HTTP answer: excused if the server was
        killed meanwhile or was down, recorded otherwise."""
        epoch_now, up = self.ctx.server.state()
        if epoch_now != epoch or not up:
            self.ctx.stats.add("requests lost to a kill")
            return
        full = self.ctx.disk.in_window(started, now())
        with self.ctx.stats.lock:
            self.ctx.stats.unanswered.append(
                (started, now(), method, u.label() if u else "", str(err), full)
            )

    def call(self, method, path, headers=None, body=b"", u=None, timeout=REQUEST_TIMEOUT):
        epoch, up = self.ctx.server.state()
        started = now()
        try:
            resp = request(self.ctx.port, method, path, headers, body, timeout)
        except NoAnswer as e:
            if up:
                self.note_unanswered(method, u, started, epoch, e)
            else:
                self.ctx.stats.add("requests lost to a kill")
            raise
        self.note_answer(method, resp, started)
        return resp, started

    def pause(self, low=0.05, high=0.3):
        time.sleep(self.rng.uniform(low, high))

    def record_offset_ack(self, u, resp, started, how):
        value = resp.h("upload-offset")
        if value is None:
            return None
        offset = int(value)
        if offset > u.max_ack:
            u.max_ack = offset
            u.ack_time = now()
            if offset >= u.length:
                u.acked_complete_at = u.ack_time
        u.events.append((round(started, 3), how, resp.status, offset))
        self.observe(u, offset, started)
        return offset

    def observe(self, u, offset, started):
        if offset >= u.length:
            if u.complete_at is None:
                u.complete_at = now()
        else:
            u.incomplete_seen_start = max(u.incomplete_seen_start, started)

    def head(self, u):
        """HEAD until an answer (the server may be down); returns the offset, None if the
        upload is gone, or -1 when giving up."""
        give_up = max(self.ctx.stop_at, now()) + 20.0
        while now() < give_up:
            try:
                resp, started = self.call("HEAD", u.path, tus(), u=u)
            except NoAnswer:
                self.pause(0.1, 0.4)
                continue
            if resp.status == 200 and resp.h("upload-offset") is not None:
                offset = int(resp.h("upload-offset"))
                u.max_head = max(u.max_head, offset)
                u.events.append((round(started, 3), "HEAD", 200, offset))
                self.observe(u, offset, started)
                return offset
            u.events.append((round(started, 3), "HEAD", resp.status, None))
            if resp.status in (404, 410):
                self.ctx.stats.add("HEAD found an upload gone")
                return None
            self.pause(0.1, 0.4)  # 5xx or 423: try again
        return -1

    # -- one upload --------------------------------------------------------------------------

    def choose_upload(self):
        ctx = self.ctx
        with ctx.lock:
            if ctx.next_upload >= MAX_UPLOADS:
                return None
            n = ctx.next_upload
            ctx.next_upload += 1
        roll = self.rng.random()
        kind = "tokenless" if roll < 0.3 else ("public" if roll < 0.65 else "private")
        size_roll = self.rng.random()
        if size_roll < 0.05:
            length = 0
        elif size_roll < 0.25:
            length = self.rng.randint(1, 100)
        elif size_roll < 0.6:
            length = self.rng.randint(101, 64 << 10)
        elif size_roll < 0.9:
            length = self.rng.randint(64 << 10, MiB)
        else:
            length = self.rng.randint(MiB, MAX_UPLOAD_BYTES if kind != "tokenless" else 2 * MiB)
        key = None
        if kind == "public":
            key = self.rng.choice(PUBLIC_KEYS)
        elif kind == "private":
            key = self.rng.choice(PRIVATE_KEYS)
        content_type = self.rng.choice(CONTENT_TYPES)
        u = Upload(n, kind, key, content_type, length, f"{SEED}-content-{n}")
        return u

    def chunk_size(self, remaining):
        roll = self.rng.random()
        if roll < 0.1:
            size = self.rng.randint(1, 16)
        elif roll < 0.2:
            size = remaining  # the rest in one go
        else:
            size = int(2 ** self.rng.uniform(10, 21.6))  # 1 KiB .. ~3 MiB
        return max(1, min(size, remaining))

    def create(self, u, data):
        headers = tus({"Upload-Length": str(u.length)})
        if u.tokened:
            expires = int(time.time()) + 3600
            headers["Upload-Metadata"] = upload_metadata(
                u.key, u.kind, u.content_type, expires
            )
        else:
            headers["Upload-Metadata"] = f"filename {b64(f'chaos-{u.n}.bin')}"
        body = b""
        if u.length > 0 and self.rng.random() < 0.3:
            body = data[: self.chunk_size(u.length)]
            headers["Content-Type"] = "application/offset+octet-stream"
        self.ctx.stats.add("creations attempted")
        post_start = now()
        try:
            resp, started = self.call("POST", "/files/", headers, body, u=u)
        except NoAnswer:
            self.ctx.stats.add("creations without answer")
            if u.tokened and len(body) == u.length:
                # It may exist, complete and published, under an id we never learnt.
                u.orphan_window = (post_start, now())
                with self.ctx.lock:
                    self.ctx.orphans.append(u)
            self.pause(0.2, 0.6)
            return False
        if resp.status != 201 and resp.h("location"):
            # It failed once the upload existed (the disk filled under its body, or its
            # publish will be retried): it may hold any prefix of the body, every byte
            # included, so it is ours to resume from what HEAD says.
            self.ctx.stats.add(f"creations failed with a Location ({resp.status})")
            u.adopted = True
            u.path = urllib.parse.urlsplit(resp.h("location")).path
            u.id = u.path.rsplit("/", 1)[-1]
            with self.ctx.lock:
                self.ctx.uploads.append(u)
            self.ctx.stats.add("uploads created")
            u.events.append((round(started, 3), "POST", resp.status, resp.short()))
            if len(body) == u.length:
                u.end_send_start = started
                u.end_sends.append(f"POST@{started:.2f}s→{resp.status}")
            self.pause(0.2, 0.6)
            return True
        if resp.status != 201 or not resp.h("location"):
            # No Location: refused before the upload existed, so nothing of it is stored.
            self.ctx.stats.add(f"creations refused ({resp.status})")
            if u.tokened and len(body) == u.length:
                u.refused = f"{resp.status} at {started:.2f} s"
                with self.ctx.lock:
                    self.ctx.refused.append(u)
            self.pause(0.2, 0.6)
            return False
        location = resp.h("location")
        u.path = urllib.parse.urlsplit(location).path
        u.id = u.path.rsplit("/", 1)[-1]
        with self.ctx.lock:
            self.ctx.uploads.append(u)
        self.ctx.stats.add("uploads created")
        if len(body) == u.length or u.length == 0:
            u.end_send_start = started
            u.end_sends.append(f"POST@{started:.2f}s→{resp.status}")
        if resp.h("upload-offset") is not None:
            self.record_offset_ack(u, resp, started, "POST")
        elif u.length == 0:
            self.observe(u, 0, started)
        else:
            u.incomplete_seen_start = max(u.incomplete_seen_start, started)
        return True

    def patch(self, u, data, offset, size, mode):
        """One PATCH of data[offset:offset+size] in the given mode; returns the new offset
        if acknowledged, else None (the caller resumes with HEAD)."""
        body = data[offset : offset + size]
        headers = tus(
            {"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
        )
        reaches_end = offset + size == u.length
        started = now()
        if mode == "normal":
            if reaches_end and u.end_send_start is None:
                u.end_send_start = started
            try:
                resp, started = self.call("PATCH", u.path, headers, body, u=u)
            except NoAnswer as e:
                if reaches_end:
                    u.end_sends.append(f"PATCH@{started:.2f}s→no answer ({e})")
                return None
            if reaches_end:
                u.end_sends.append(f"PATCH@{started:.2f}s→{resp.status}")
            if resp.status == 204:
                return self.record_offset_ack(u, resp, started, "PATCH")
            u.events.append((round(started, 3), "PATCH", resp.status, resp.short()))
            if resp.status >= 500 or resp.status in (409, 423, 460):
                self.ctx.stats.add(f"PATCH answered {resp.status}")
            return None
        # Cut modes: the client itself breaks the connection.
        try:
            sock = connect(self.ctx.port)
        except NoAnswer:
            return None
        try:
            head = build_head(self.ctx.port, "PATCH", u.path, headers, len(body))
            if mode == "reset_after_last":
                if reaches_end and u.end_send_start is None:
                    u.end_send_start = started
                whole = send_watching(sock, [head, body])
                reset(sock)
                self.ctx.stats.add("resets right after the last byte")
                if reaches_end:
                    u.end_sends.append(
                        f"PATCH@{started:.2f}s→RST right after the last byte"
                        if whole
                        else f"PATCH@{started:.2f}s→answered early, then RST"
                    )
            else:
                cut = self.rng.randrange(0, max(1, len(body)))
                send_watching(sock, [head, body[:cut]])
                if self.rng.random() < 0.5:
                    time.sleep(self.rng.choice([0.0, 0.005, 0.05]))
                if mode == "reset_mid":
                    reset(sock)
                    self.ctx.stats.add("resets mid-body")
                else:  # "close_mid": a FIN with the body incomplete
                    sock.shutdown(socket.SHUT_WR)
                    sock.settimeout(3.0)
                    try:
                        sock.recv(4096)
                    except OSError:
                        pass
                    sock.close()
                    self.ctx.stats.add("closes mid-body")
        except OSError:
            sock.close()
        u.events.append((round(started, 3), mode, None, offset + size))
        return None

    def drive(self, u):
        data = u.content()
        if not self.create(u, data):
            return
        offset = max(u.max_ack, 0)
        known = (u.max_ack >= 0 or u.length == 0) and not u.adopted
        patches = 0
        while True:
            if not known:
                offset = self.head(u)
                if offset is None or offset < 0:
                    return
                known = True
            if offset >= u.length:
                self.ctx.stats.add("uploads seen complete")
                # The disk is small: keep a few small tokenless uploads for the final check,
                # verify and terminate the others.
                if u.kind == "tokenless":
                    if u.length <= (128 << 10) and self.kept < 4:
                        self.kept += 1
                    else:
                        self.verify_and_delete(u, data)
                return
            if self.stopping():
                return
            roll = self.rng.random()
            if roll < 0.02 and offset < (256 << 10):
                self.ctx.stats.add("uploads abandoned")
                return
            if roll < 0.04:
                self.terminate(u)
                return
            patches += 1
            size = self.chunk_size(u.length - offset) if patches < 60 else u.length - offset
            mode_roll = self.rng.random()
            reaches_end = offset + size == u.length
            if reaches_end and mode_roll < 0.25:
                mode = "reset_after_last"
            elif mode_roll < 0.12:
                mode = "reset_mid"
            elif mode_roll < 0.16:
                mode = "close_mid"
            elif mode_roll < 0.22:
                mode = "reset_after_last"
            else:
                mode = "normal"
            new_offset = self.patch(u, data, offset, size, mode)
            if new_offset is None:
                known = False  # resume: HEAD, then PATCH from there
                if mode == "normal":
                    self.pause(0.05, 0.3)
                elif self.rng.random() < 0.3:
                    self.pause(0.0, 0.1)
            else:
                offset = new_offset

    def terminate(self, u):
        """Terminates an incomplete upload (never a complete tokened one)."""
        offset = self.head(u)
        if offset is None or offset < 0 or offset >= u.length:
            return
        self.delete(u)

    def delete(self, u):
        """DELETE, recording whether the upload is (or may be) gone."""
        u.maybe_terminated = True
        try:
            resp, started = self.call("DELETE", u.path, tus(), u=u)
        except NoAnswer:
            return
        u.events.append((round(started, 3), "DELETE", resp.status, None))
        if resp.status == 204:
            u.terminated = True
            self.ctx.stats.add("uploads terminated")
        elif resp.status < 500:
            u.maybe_terminated = False

    def verify_and_delete(self, u, data):
        """Tokenless complete uploads are checked, then deleted, to keep the small disk from
        filling for good (the check result counts like the final one)."""
        try:
            resp, _ = self.call("GET", u.path, u=u)
        except NoAnswer:
            return
        if resp.status != 200 or resp.body != data:
            u.verified_before_delete = (
                f"GET before terminating: {resp.status}, {len(resp.body)} bytes, "
                f"{'equal' if resp.body == data else 'NOT the bytes sent'}"
            )
        else:
            u.verified_before_delete = "ok"
        self.delete(u)

    def run(self):
        try:
            while not self.stopping():
                u = self.choose_upload()
                if u is None:
                    return
                self.ctx.stats.add("uploads started")
                self.drive(u)
                self.pause(0.1, 0.5)
        except Exception as e:  # a bug in the client must not look like a pass
            self.ctx.client_errors.append(f"{self.name}: {type(e).__name__}: {e}")
            raise


# ---------------------------------------------------------------------------------------------
# Chaos controllers: kills, full disk, health


def schedule(rng, count, start, end, min_gap):
    """`count` moments in [start, end], at least min_gap apart (fewer if they do not fit)."""
    times = []
    for _ in range(count * 20):
        if len(times) == count:
            break
        t = rng.uniform(start, end)
        if all(abs(t - o) >= min_gap for o in times):
            times.append(t)
    return sorted(times)


def killer(ctx, times):
    rng = random.Random(f"{SEED}-killer")
    for at in times:
        while now() < at:
            time.sleep(0.05)
        pid = ctx.server.pid()
        log(f"SIGKILL server pid {pid}")
        ctx.server.kill()
        time.sleep(rng.choice([0.0, 0.1, 0.5]))
        if not ctx.server.start():
            ctx.fatal.append("the server did not come back after a SIGKILL")
            return
        ctx.monitor.sample(f"right after restart {len(ctx.server.starts) - 1}")
        log(f"restarted: pid {ctx.server.pid()}")


def filler(ctx, times):
    for at in times:
        while now() < at:
            time.sleep(0.05)
        written = ctx.disk.fill()
        log(f"disk full: ballast of {written / MiB:.1f} MiB")
        time.sleep(FULL_WINDOW_SECONDS)
        ctx.disk.empty()
        log("ballast removed")


def health(ctx):
    next_report = 10.0
    while not ctx.done_health:
        free = ctx.disk.free_fraction()
        ctx.min_free = min(ctx.min_free, free)
        if now() >= next_report:
            next_report += 10.0
            log(f"progress: {len(ctx.uploads)} uploads created, upload dir {free:.0%} free")
        epoch, up = ctx.server.state()
        started = now()
        if up:
            try:
                resp = request(ctx.port, "GET", "/health", timeout=5.0)
                ok = resp.status == 200
                detail = resp.short()
            except NoAnswer as e:
                ok = False
                detail = str(e)
            epoch_now, up_now = ctx.server.state()
            if not ok and epoch_now == epoch and up_now:
                ctx.health_failures.append((started, detail, ctx.disk.in_window(started, now())))
            ctx.stats.add("health probes")
            pid = ctx.server.pid()
            if pid:
                ctx.max_fds = max(ctx.max_fds, count_fds(pid))
                _, hwm = memory_kib(pid)
                ctx.server.peak_hwm_kib = max(ctx.server.peak_hwm_kib, hwm)
        time.sleep(0.25)


class Ctx:
    def __init__(self, port, server, disk):
        self.port = port
        self.server = server
        self.disk = disk
        self.monitor = AssetMonitor(disk.upload_dir)
        self.stats = Stats()
        self.lock = threading.Lock()
        self.uploads = []
        self.orphans = []  # tokened creations with every byte whose answer was lost
        self.refused = []  # tokened creations with every byte that were answered an error
        self.next_upload = 0
        self.stop_at = DURATION
        self.fatal = []
        self.client_errors = []
        self.health_failures = []
        self.done_health = False
        self.max_fds = 0
        self.min_free = 1.0
        self.published_uploads = 0
        self.clients_stopped_at = 0.0


# ---------------------------------------------------------------------------------------------
# Checks


class Failures:
    """Failures by check; those of one kind (`group`) are printed as one line with a count
    and a few examples, the others one per line."""

    def __init__(self):
        self.by_check = {}

    def add(self, check, message, group=None):
        self.by_check.setdefault(check, []).append((group, message))

    def count(self):
        return sum(len(v) for v in self.by_check.values())

    def lines(self, check, examples=5, limit=25):
        found = self.by_check.get(check, [])
        groups = {}
        out = []
        for group, message in found:
            if group is None:
                out.append(message)
            elif group not in groups:
                groups[group] = [message]
                out.append(groups[group])
            else:
                groups[group].append(message)
        lines = []
        for entry in out[:limit]:
            if isinstance(entry, str):
                lines.append(entry)
                continue
            group = next(g for g, m in groups.items() if m is entry)
            lines.append(f"{group}: {len(entry)} time(s), e.g.")
            lines += [f"    {m}" for m in entry[:examples]]
        if len(out) > limit:
            lines.append(f"… and {len(out) - limit} more")
        return lines


def read_info(upload_dir, upload_id):
    try:
        with open(os.path.join(upload_dir, f"{upload_id}.info")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def asset_file(upload_dir, visibility, key):
    return os.path.join(upload_dir, visibility, key)


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def head_offset(port, u):
    try:
        resp = request(port, "HEAD", u.path, tus())
    except NoAnswer as e:
        return None, f"no answer ({e})", None
    if resp.status != 200:
        return None, resp.short(), resp
    return int(resp.h("upload-offset") or -1), None, resp


def newest_candidates(complete):
    """Uploads of one key that may have completed last. Each has a completion window
    [lower, upper]: upper is when we first saw it complete (an ack or a HEAD), lower the
    start of the request that can have carried its last byte (and after every request that
    still saw it incomplete). Upload i can be the last to complete iff upper_i >= lower_j for
    every other j."""
    out = []
    for u in complete:
        upper = u.completion_window()[1]
        others = [v.completion_window()[0] for v in complete if v is not u]
        if all(upper >= lower for lower in others):
            out.append(u)
    return out


def describe_window(u):
    lower, upper = u.completion_window()
    note = getattr(u, "note", "")
    return f"#{u.n} (id {u.id}, completed in [{lower:.2f} s, {upper:.2f} s]{note})"


def check_published(ctx, uploads, upload_dir):
    """Check 2 for one moment, over `uploads`; returns the (check, message) problems, the
    uploads that have one, and the complete uploads by (visibility, key)."""
    problems = []
    pending = []
    by_key = {}
    for u in uploads:
        if not u.tokened or u.terminated or u.maybe_terminated:
            continue
        before = len(problems)
        offset, err, _ = head_offset(ctx.port, u)
        if offset is None:
            problems.append((2, f"{u.label()}: HEAD answered {err}, expected 200", None))
            pending.append(u)
            continue
        if offset >= u.length:
            if u.complete_at is None:
                u.complete_at = now()  # complete, first seen here
            info = read_info(upload_dir, u.id)
            phase = (info or {}).get("TusgatePhase", "Receiving") if info else None
            if phase in ("Receiving", "Publishing"):
                data_left = os.path.exists(os.path.join(upload_dir, u.id))
                where = "still in" if data_left else "gone from"
                full = " (a full-disk window overlapped it)" if ctx.disk.in_window(
                    u.end_send_start or 0.0, u.complete_at or now()
                ) else ""
                problems.append(
                    (
                        2,
                        f"{u.label()}: HEAD offset {offset} == length; last byte sent by "
                        f"{', '.join(u.end_sends) or '?'}{full}",
                        f"complete but not published: .info phase {phase}, data file {where} "
                        f"the upload dir",
                    )
                )
            by_key.setdefault((u.kind, u.key), []).append(u)
        elif u.max_ack >= u.length:
            problems.append(
                (2, f"{u.label()}: acknowledged complete, but HEAD now says offset {offset}", None)
            )
        if len(problems) > before:
            pending.append(u)
    for (visibility, key), complete in sorted(by_key.items()):
        on_disk = read_bytes(asset_file(upload_dir, visibility, key))
        if on_disk is None:
            problems.append(
                (
                    2,
                    f"{visibility}/{key}: {len(complete)} complete upload(s) "
                    f"({', '.join('#%d' % u.n for u in complete)}) but no asset on disk",
                    None,
                )
            )
    return problems, pending, by_key


def run_checks(ctx, upload_dir, failures):
    uploads = list(ctx.uploads)
    port = ctx.port

    # --- Check 2 first, polled: publishing may still be finishing.
    quiet = max(ctx.clients_stopped_at, ctx.server.starts[-1][0])
    deadline = quiet + PUBLISH_DEADLINE
    pending = uploads
    while True:
        # Uploads fine once are not polled again; the final pass below looks at all of them.
        problems, pending, _ = check_published(ctx, pending, upload_dir)
        if not problems or now() >= deadline:
            break
        time.sleep(0.5)
    problems, _, by_key = check_published(ctx, uploads, upload_dir)
    log(
        f"publish check at {now():.2f} s ({now() - quiet:.1f} s after the last restart or "
        f"client): {len(problems)} problem(s)"
    )
    for check, message, group in problems:
        failures.add(check, message, group=group)

    # --- Check 1: every acknowledged byte, and the right bytes.
    published = 0
    for u in uploads:
        removed_ok = u.terminated or u.maybe_terminated
        offset, err, resp = head_offset(port, u)
        if offset is None:
            if resp is not None and resp.status in (404, 410) and removed_ok:
                continue
            if u.verified_before_delete not in (None, "ok"):
                failures.add(1, f"{u.label()}: {u.verified_before_delete}")
            failures.add(
                1,
                f"{u.label()}: HEAD answered {err}; it was never terminated "
                f"(acknowledged offset {u.max_ack})",
            )
            continue
        if u.max_ack > offset:
            failures.add(
                1,
                f"{u.label()}: offset {u.max_ack} was acknowledged at {u.ack_time:.2f} s, "
                f"HEAD now says {offset}",
            )
        if u.max_head > offset:
            failures.add(
                1, f"{u.label()}: HEAD said {u.max_head} during the run, now says {offset}"
            )
        if offset > u.length:
            failures.add(1, f"{u.label()}: HEAD offset {offset} beyond the length")
            continue
        data = u.content()
        if u.kind == "tokenless":
            try:
                got = request(port, "GET", u.path)
            except NoAnswer as e:
                failures.add(1, f"{u.label()}: GET got no answer: {e}")
                continue
            if offset == 0 and got.status in (200, 204) and not got.body:
                continue
            if got.status != 200:
                failures.add(1, f"{u.label()}: GET answered {got.short()} (offset {offset})")
            elif got.body != data[:offset]:
                failures.add(
                    1,
                    f"{u.label()}: GET returned {len(got.body)} bytes, expected the "
                    f"{offset} bytes sent; {mismatch(got.body, data[:offset])}",
                )
        elif offset < u.length:
            # Incomplete tokened upload: its data file holds the prefix.
            on_disk = read_bytes(os.path.join(upload_dir, u.id))
            if on_disk is not None and on_disk != data[: len(on_disk)]:
                failures.add(
                    1,
                    f"{u.label()}: data file holds bytes that were not sent; "
                    f"{mismatch(on_disk, data[: len(on_disk)])}",
                )
        if u.tokened and offset >= u.length:
            info = read_info(upload_dir, u.id) or {}
            if info.get("TusgatePhase") == "Published":
                published += 1
    ctx.published_uploads = published

    # Tokened: each key's asset is the newest completed upload's content.
    link_expires = int(time.time()) + 3600
    for (visibility, key), complete in sorted(by_key.items()):
        on_disk = read_bytes(asset_file(upload_dir, visibility, key))
        if on_disk is None:
            continue  # reported by check 2
        # A creation that carried every byte but whose answer was lost (a kill) may have
        # completed under an id we never learnt: it counts if the asset holds its bytes.
        complete = complete + [
            o
            for o in ctx.orphans
            if (o.kind, o.key) == (visibility, key) and o.content() == on_disk
        ]
        candidates = newest_candidates(complete)
        contents = {u.n: u.content() for u in complete}
        match = [u for u in complete if contents[u.n] == on_disk]
        ok = [u for u in candidates if contents[u.n] == on_disk]
        if not ok:
            for c in candidates:
                info = read_info(upload_dir, c.id) or {}
                c.note = f", phase {info.get('TusgatePhase', 'Receiving')}"
            if match:
                failures.add(
                    1,
                    f"{visibility}/{key}: the asset holds upload {describe_window(match[0])}, "
                    f"but the newest completed upload is "
                    f"{' or '.join(describe_window(c) for c in candidates)}",
                )
            else:
                failures.add(
                    1,
                    f"{visibility}/{key}: the asset ({len(on_disk)} bytes) equals no completed "
                    f"upload of the key; newest: "
                    f"{' or '.join(describe_window(c) for c in candidates)}",
                )
        # What a client downloads is what is on disk.
        path = (
            signed_asset_path(visibility, key, link_expires)
            if visibility == "private"
            else f"/assets/public/{urllib.parse.quote(key)}"
        )
        try:
            got = request(port, "GET", path)
            if got.status != 200 or got.body != on_disk:
                failures.add(
                    1,
                    f"{visibility}/{key}: {'signed ' if visibility == 'private' else ''}"
                    f"download answered {got.status} with {len(got.body)} bytes, "
                    f"the asset on disk has {len(on_disk)}",
                )
        except NoAnswer as e:
            failures.add(1, f"{visibility}/{key}: download got no answer: {e}")

    check_history(ctx, uploads, by_key, failures)

    # --- Check 4: no private byte without a signature; no token echoed.
    private_keys_checked = set()
    for u in uploads:
        if not u.tokened:
            continue
        offset, err, resp = head_offset(port, u)
        if resp is not None and resp.status == 200:
            meta = parse_metadata(resp.h("upload-metadata"))
            if "upload-token" in meta:
                failures.add(
                    4,
                    f"{u.label()}: HEAD /files/<id> echoes upload-token in Upload-Metadata",
                    group=f"HEAD /files/<id> of a tokened {u.kind} upload echoes its upload-token",
                )
        if u.kind != "private":
            continue
        data = u.content()
        try:
            got = request(port, "GET", u.path)
        except NoAnswer as e:
            failures.add(4, f"{u.label()}: GET /files/<id> got no answer: {e}")
            continue
        if got.status not in (403, 404):
            asset = read_bytes(asset_file(upload_dir, "private", u.key))
            if got.body and got.body == data[: len(got.body)]:
                what = f"{len(got.body)} bytes of this upload"
                group = "GET /files/<id> of a private upload serves its bytes unsigned"
            elif got.body and asset is not None and got.body == asset:
                what = f"the {len(got.body)} bytes of the current asset"
                group = (
                    "GET /files/<id> of a private upload serves ANOTHER upload's bytes "
                    "(the key's current asset) unsigned"
                )
            elif got.body:
                what = f"{len(got.body)} bytes of neither this upload nor the asset"
                group = "GET /files/<id> of a private upload serves unknown bytes"
            else:
                what = "an empty body"
                group = "GET /files/<id> of a private upload answers 2xx (no bytes)"
            failures.add(
                4,
                f"{u.label()}: answered {got.status} with {what} (HEAD offset {offset}); "
                f"expected 403 or 404",
                group=group,
            )
        if u.key not in private_keys_checked:
            private_keys_checked.add(u.key)
            try:
                got = request(port, "GET", f"/assets/private/{urllib.parse.quote(u.key)}")
                if got.status not in (403, 404):
                    failures.add(
                        4,
                        f"private/{u.key}: unsigned GET /assets/private/… answered "
                        f"{got.short()}; expected 403 or 404",
                    )
            except NoAnswer as e:
                failures.add(4, f"private/{u.key}: unsigned GET got no answer: {e}")

    for u in uploads:
        if u.verified_before_delete not in (None, "ok") and u.terminated:
            failures.add(1, f"{u.label()}: {u.verified_before_delete}")


def check_history(ctx, uploads, by_key, failures):
    """Newest wins at every moment sampled during the run, not only at the end: an asset
    that holds upload X while an upload Y of the same key, whose last byte was sent after X
    was seen complete, had already been acknowledged complete (201/204), went back in time
    (a late publish of X, e.g. by startup recovery, over Y)."""
    groups = {}
    for u in list(uploads) + list(ctx.orphans):
        if u.tokened:
            groups.setdefault((u.kind, u.key), []).append(u)
    refused = {}
    for u in ctx.refused:
        refused.setdefault((u.kind, u.key), []).append(u)
    digests = {}
    for group in list(groups.values()) + list(refused.values()):
        for u in group:
            digests[u.n] = hashlib.sha256(u.content()).hexdigest()

    def upper(u):
        if u.orphan_window:
            return u.orphan_window[1]
        return u.complete_at if u.complete_at is not None else float("inf")

    def lower(u):
        return u.orphan_window[0] if u.orphan_window else u.completion_window()[0]

    reported = {}
    unknown = set()
    for t_open, tag, visibility, key, digest in ctx.monitor.samples:
        group = groups.get((visibility, key), [])
        holders = [u for u in group if digests[u.n] == digest]
        if not holders:
            if (visibility, key, digest) not in unknown:
                unknown.add((visibility, key, digest))
                were_refused = [
                    u for u in refused.get((visibility, key), []) if digests[u.n] == digest
                ]
                what = (
                    f"the bytes of upload #{were_refused[0].n}, whose creation (with every "
                    f"byte) was answered {were_refused[0].refused} without a Location"
                    if were_refused
                    else "bytes of no upload of this key (torn or foreign)"
                )
                failures.add(1, f"{visibility}/{key}: at {t_open:.2f} s ({tag}) the asset held {what}")
            continue
        blame = None
        for x in holders:
            newer = [
                y
                for y in group
                if y is not x
                and y.acked_complete_at is not None
                and y.acked_complete_at < t_open
                and lower(y) > upper(x)
            ]
            if not newer:
                blame = None
                break
            blame = (x, max(newer, key=lambda y: y.acked_complete_at))
        if blame is None:
            continue
        x, y = blame
        pair = (visibility, key, x.n, y.n)
        if pair in reported:
            reported[pair][1] += 1
            continue
        reported[pair] = [
            f"{visibility}/{key}: at {t_open:.2f} s ({tag}) the asset held upload #{x.n} "
            f"(id {x.id}, seen complete by {upper(x):.2f} s), but upload #{y.n} (id {y.id}) "
            f"sent its last byte after {lower(y):.2f} s and was acknowledged complete at "
            f"{y.acked_complete_at:.2f} s",
            1,
        ]
    for message, samples in reported.values():
        failures.add(
            1,
            f"{message} ({samples} sample(s))",
            group="an older upload replaced a newer, acknowledged one during the run",
        )


def mismatch(got, want):
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return f"first difference at byte {i}"
    return f"lengths {len(got)} vs {len(want)}"


# ---------------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    binary = os.environ.get("TUSGATE_BIN")
    upload_dir = os.environ.get("CHAOS_UPLOAD_DIR")
    log_dir = os.environ.get("CHAOS_LOG_DIR")
    pid_file = os.environ.get("CHAOS_PID_FILE")
    if not (binary and upload_dir and log_dir and pid_file):
        print("run me through interop/chaos/run.sh (TUSGATE_BIN, CHAOS_UPLOAD_DIR, ...)")
        return 2
    print(
        f"CHAOS_SEED={SEED} (repeat the plan with CHAOS_SEED={SEED}); {CLIENTS} clients for "
        f"{DURATION:.0f} s, {KILLS} SIGKILLs, {FULL_WINDOWS} full-disk windows",
        flush=True,
    )
    port = free_port()
    server = Server(binary, upload_dir, port, log_dir, pid_file)
    disk = Disk(upload_dir)
    ctx = Ctx(port, server, disk)
    failures = Failures()
    try:
        if not server.start():
            print("FAIL: the server did not start")
            return 1
        time.sleep(0.5)
        baseline_fds = count_fds(server.pid())
        baseline_rss, _ = memory_kib(server.pid())
        log(f"server pid {server.pid()} on port {port}: {baseline_fds} fds, {baseline_rss} KiB RSS")

        plan = random.Random(f"{SEED}-plan")
        kill_times = schedule(plan, KILLS, 5.0, DURATION - 15.0, 6.0)
        fill_times = schedule(
            plan, FULL_WINDOWS, 8.0, DURATION - 15.0, FULL_WINDOW_SECONDS + 4.0
        )
        log(f"kills at {[round(t, 1) for t in kill_times]} s, disk full at "
            f"{[round(t, 1) for t in fill_times]} s for {FULL_WINDOW_SECONDS:.0f} s each")

        ctx.stop_at = DURATION
        threads = [threading.Thread(target=killer, args=(ctx, kill_times), daemon=True)]
        threads.append(threading.Thread(target=filler, args=(ctx, fill_times), daemon=True))
        health_thread = threading.Thread(target=health, args=(ctx,), daemon=True)
        monitor_thread = threading.Thread(target=ctx.monitor.run, args=(ctx,), daemon=True)
        clients = [Client(i, ctx) for i in range(CLIENTS)]
        for t in threads + [health_thread, monitor_thread] + clients:
            t.start()
        for t in threads:
            t.join(DURATION + 60)
        disk.empty()
        join_until = time.monotonic() + 45.0
        stuck = []
        for c in clients:
            c.join(max(0.0, join_until - time.monotonic()))
            if c.is_alive():
                stuck.append(c.name)
        ctx.clients_stopped_at = now()
        log(f"clients stopped ({len(ctx.uploads)} uploads created)")
        if stuck:
            failures.add(5, f"clients still waiting for the server 45 s after the end: {stuck}")
        for message in ctx.fatal:
            failures.add(5, message)
        for message in ctx.client_errors:
            failures.add(5, f"client error (a bug in the test): {message}")

        # Settle, then the leak check (3) before the verification requests.
        time.sleep(2.0)
        ctx.done_health = True
        health_thread.join(10)
        monitor_thread.join(10)
        pid = server.pid()
        settled_fds = count_fds(pid)
        rss, hwm = memory_kib(pid)
        server.peak_hwm_kib = max(server.peak_hwm_kib, hwm)

        run_checks(ctx, upload_dir, failures)

        time.sleep(1.0)
        after_fds = count_fds(pid)
        after_rss, after_hwm = memory_kib(pid)
        start_fds = [s[2] for s in server.starts]
        if settled_fds > baseline_fds + FD_SLACK:
            failures.add(
                3,
                f"{settled_fds} fds open after the clients stopped and 2 s of rest; baseline "
                f"after startup was {baseline_fds} (slack {FD_SLACK}); fds: {fd_kinds(pid)}",
            )
        if after_fds > baseline_fds + FD_SLACK:
            failures.add(
                3, f"{after_fds} fds open after the checks; baseline {baseline_fds}"
            )
        if rss > RSS_LIMIT_MIB * 1024 or after_rss > RSS_LIMIT_MIB * 1024:
            failures.add(3, f"RSS {max(rss, after_rss) / 1024:.1f} MiB > {RSS_LIMIT_MIB} MiB")

        # 5: the server kept answering while up (ENOSPC included).
        for started, detail, full in ctx.health_failures:
            failures.add(
                5,
                f"GET /health at {started:.2f} s failed while the server was up"
                f"{' (disk full)' if full else ''}: {detail}",
            )
        for started, ended, method, label, err, full in ctx.stats.unanswered:
            failures.add(
                5,
                f"{method} at {started:.2f}–{ended:.2f} s ({label}) got no HTTP answer while "
                f"the server was up{' and the disk full' if full else ''}: {err}",
            )

        # Summary.
        s = ctx.stats
        enospc_logged = count_in_logs(log_dir, [b"No space left", b"os error 28"])
        full_errors = sum(s.full_answers.values())
        print()
        print("=== chaos summary (seed %d)" % SEED)
        print(f"  uploads attempted {s.get('uploads started')}, created {s.get('uploads created')}, "
              f"seen complete {s.get('uploads seen complete')}, tokened published "
              f"{ctx.published_uploads}, terminated {s.get('uploads terminated')}, "
              f"abandoned {s.get('uploads abandoned')}")
        print(f"  creations refused/unanswered: "
              + ", ".join(f"{k} {v}" for k, v in sorted(s.counts.items()) if k.startswith("creations")))
        print(f"  resets mid-body {s.get('resets mid-body')}, resets right after the last byte "
              f"{s.get('resets right after the last byte')}, FIN mid-body {s.get('closes mid-body')}")
        print(f"  SIGKILLs {len(server.kills)}, server starts {len(server.starts)}, failed starts "
              f"{len(server.start_failures)}, requests lost to a kill "
              f"{s.get('requests lost to a kill')}")
        print(f"  disk-full windows {len(disk.windows)}; error answers during them {full_errors}; "
              f"server log lines mentioning ENOSPC {enospc_logged}")
        for (method, status, body), n in sorted(s.full_answers.items()):
            print(f"    during full disk: {n} × {method} → {status} {body!r}")
        for (method, status, body), n in sorted(s.error_answers.items()):
            print(f"    all run: {n} × {method} → {status} {body!r}")
        print(f"  fds: baseline {baseline_fds}, at each start {start_fds}, max seen "
              f"{ctx.max_fds}, after settle {settled_fds}, after checks {after_fds}")
        print(f"  memory: RSS after settle {rss / 1024:.1f} MiB, after checks "
              f"{after_rss / 1024:.1f} MiB, peak (VmHWM, any instance) "
              f"{max(server.peak_hwm_kib, after_hwm) / 1024:.1f} MiB")
        print(f"  health probes {s.get('health probes')}, failed while up {len(ctx.health_failures)}")
        stray = stray_files(upload_dir, ctx)
        print(f"  upload dir (not a check): {stray}")
        names = {
            1: "1. acknowledged bytes present and correct (newest wins per key)",
            2: "2. every complete upload published within the deadline",
            3: "3. no fd or memory leak",
            4: "4. no private byte without a signature, no token echoed",
            5: "5. the server answers while up (ENOSPC included) and comes back",
        }
        print()
        for check in sorted(names):
            found = failures.by_check.get(check, [])
            print(f"  {'ok  ' if not found else 'FAIL'}  {names[check]}"
                  + (f": {len(found)} failure(s)" if found else ""))
            for line in failures.lines(check):
                print(f"        {'' if line.startswith('    ') else '- '}{line}")
        print(f"\nchaos: {failures.count()} failure(s); seed {SEED}; {now():.1f} s")
        return 1 if failures.count() else 0
    finally:
        ctx.done_health = True
        ctx.stop_at = 0
        disk.empty()
        server.stop()


def stray_files(upload_dir, ctx):
    """What the upload dir holds besides live uploads: leftovers of failed creations
    (`<id>` without `.info`, `*.info.tmp`) are nobody's to clean up (issue 9, finding 9)."""
    names = set(os.listdir(upload_dir))
    infos = {n[: -len(".info")] for n in names if n.endswith(".info")}
    tmp = [n for n in names if n.endswith(".tmp")]
    orphan_data = [
        n for n in names if len(n) == 32 and "." not in n and n not in infos
    ]
    known = {u.id for u in ctx.uploads}
    unknown_infos = [i for i in infos if i not in known]
    return (
        f"{len(infos)} .info files ({len(unknown_infos)} of uploads whose creation was not "
        f"answered 201), {len(orphan_data)} data files without .info, {len(tmp)} *.tmp files"
    )


def fd_kinds(pid):
    kinds = {}
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            kind = target.split(":")[0] if ":" in target else "file"
            kinds[kind] = kinds.get(kind, 0) + 1
    except OSError:
        pass
    return kinds


def count_in_logs(log_dir, needles):
    n = 0
    for name in os.listdir(log_dir):
        with open(os.path.join(log_dir, name), "rb") as f:
            for line in f:
                if any(needle in line for needle in needles):
                    n += 1
    return n


if __name__ == "__main__":
    sys.exit(main())
