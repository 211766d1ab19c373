#!/usr/bin/env python3
"""Durability stage: every completed upload is on disk before its last response, as syscalls.

Run through run.sh (it makes the work directory and cleans up); see README.md beside this file.
Standard library only.

tusgate runs under `strace -f` (one output file, see README.md for why one file), a few uploads
are driven over plain HTTP/1.1 (one connection per request, so the client's port names the
request), then the trace is read back and, for each upload, the order of its syscalls is checked
against the response written to its socket:

  tokenless: fdatasync(data) after its last write; the `.info`'s content synced (fdatasync of
             `.info` after its last rename, or of `.info.tmp` before it); an fsync of the upload
             directory that *started* after the data file's creation and `.info`'s last rename;
             all ended before the first byte of the 204 (201 for creation-with-upload) was written.
  tokened:   fdatasync(data) after its last write, ended before the `Publishing` state is renamed
             into place; that state written to `.info.tmp`, fdatasynced, then renamed to `.info`;
             an upload-directory fsync started after that rename and ended before the data file
             is placed (renameat, or linkat + unlinkat with --overwrite keep); an fsync of the
             asset's directory after the placement (with keep: also between link and unlink);
             all before the response.
  both:      every directory the server created (mkdir/mkdirat) on the way to the upload's files
             (upload dir, assets dir, visibility prefix, key directories) has its parent fsynced
             after the mkdir and before the response.

Three servers run one after the other: -fsync=completion with --overwrite replace (every check
must pass), with --overwrite keep (tokened uploads; must pass), and -fsync=never (the same uploads
as the first; every upload must FAIL at least one check, which proves the checker can fail).
"""

import hashlib
import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time

BIN = os.environ["TUSGATE_BIN"]
WORK = os.environ["DURABILITY_WORK"]
PID_FILE = os.environ.get("DURABILITY_PID_FILE", "")
UPLOAD_SECRET = "durability-upload-secret"
KiB = 1 << 10
MiB = 1 << 20
START_TIMEOUT = 20.0
REQUEST_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

TRACED = ",".join(
    [
        *("openat", "creat", "mkdir", "mkdirat"),  # names created
        *("rename", "renameat", "renameat2", "linkat", "unlinkat"),  # names moved
        *("fdatasync", "fsync"),
        *("write", "writev", "sendto", "sendmsg"),  # data, .info and responses
    ]
)

T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.2f}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# The server under strace


class Server:
    def __init__(self, name, fsync, overwrite):
        self.name = name
        self.fsync = fsync
        self.overwrite = overwrite
        self.dir = os.path.join(WORK, name)
        # Not created here: the server creates them, so their creation is checked too.
        self.upload_dir = os.path.join(self.dir, "data", "uploads")
        self.assets_dir = os.path.join(self.dir, "data", "assets")
        self.trace = os.path.join(self.dir, "trace")
        self.strace = None
        self.pid = None
        self.base = None

    def start(self):
        os.makedirs(self.dir)
        out = open(os.path.join(self.dir, "stdout"), "wb")
        err = open(os.path.join(self.dir, "stderr"), "wb")
        env = dict(os.environ, UPLOAD_SECRET=UPLOAD_SECRET, RUST_LOG="warn")
        self.strace = subprocess.Popen(
            [
                "strace",
                "-f",  # every thread (tokio workers and the blocking pool)
                "--seccomp-bpf",  # only the traced syscalls stop the process
                "-ttt",
                "-yy",  # fds as paths, sockets as TCP:[local->peer]
                "-s",
                "2048",  # a whole .info (≈600 bytes) in a write
                "-e",
                f"trace={TRACED}",
                "-o",
                self.trace,
                BIN,
                "--host=127.0.0.1",
                "--port=0",
                f"--upload-dir={self.upload_dir}",
                f"--assets-dir={self.assets_dir}",
                f"--fsync={self.fsync}",
                f"--overwrite={self.overwrite}",
                "--allow-uploads-without-token",
            ],
            stdout=out,
            stderr=err,
            env=env,
        )
        out.close()
        err.close()
        deadline = time.monotonic() + START_TIMEOUT
        banner = re.compile(rb"You can now upload files to: (http://127\.0\.0\.1:\d+)/files/")
        while time.monotonic() < deadline:
            if self.strace.poll() is not None:
                raise SystemExit(f"{self.name}: strace/tusgate exited at startup:\n{self.stderr()}")
            with open(os.path.join(self.dir, "stdout"), "rb") as f:
                m = banner.search(f.read())
            if m:
                self.base = m.group(1).decode()
                break
            time.sleep(0.05)
        else:
            raise SystemExit(f"{self.name}: no startup banner within {START_TIMEOUT} s")
        self.pid = child_of(self.strace.pid)
        if PID_FILE:
            with open(PID_FILE, "a") as f:
                f.write(f"{self.strace.pid} {self.pid or ''}\n")
        log(f"{self.name}: tusgate pid {self.pid} under strace pid {self.strace.pid} at {self.base}")

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.strace.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            if self.pid:
                os.kill(self.pid, signal.SIGKILL)
            self.strace.wait(timeout=STOP_TIMEOUT)

    def stderr(self):
        with open(os.path.join(self.dir, "stderr"), "rb") as f:
            return f.read().decode(errors="replace")[-2000:]


def child_of(parent):
    """The pid of strace's child (tusgate): strace has no option to kill it on exit."""
    for _ in range(100):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                return int(entry)
        time.sleep(0.05)
    return None


# ---------------------------------------------------------------------------------------------
# The uploads


class Upload:
    def __init__(self, label, size, key=None, visibility="private", creation_with_upload=False, patches=1):
        self.label = label
        self.size = size
        self.key = key
        self.visibility = visibility
        self.creation_with_upload = creation_with_upload
        self.patches = patches
        seed = hashlib.sha256(label.encode()).hexdigest().encode()
        self.body = (seed * (size // len(seed) + 1))[:size]
        self.id = None
        self.port = None  # client port of the request that completed it
        self.expected_status = 201 if creation_with_upload else 204
        self.checked = set()  # the rules that applied
        self.errors = []  # (rule, what was wrong)
        self.evidence = []  # what held, with trace line numbers

    def describe(self):
        kind = f"tokened {self.visibility}/{self.key}" if self.key else "tokenless"
        how = "creation-with-upload" if self.creation_with_upload else f"POST + {self.patches} PATCH"
        size = f"{self.size // MiB} MiB" if self.size >= MiB else f"{self.size // KiB} KiB"
        return f"{self.label} ({kind}, {size}, {how}, id {self.id})"


def metadata_for(upload):
    """granite's Upload-Metadata, from `tusgate sign upload` (the token is the server's format)."""
    out = subprocess.run(
        [BIN, "sign", "upload", "--key", upload.key, "--visibility", upload.visibility],
        env=dict(os.environ, UPLOAD_SECRET=UPLOAD_SECRET),
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("Upload-Metadata: "):
            return line[len("Upload-Metadata: ") :]
    raise SystemExit(f"tusgate sign upload printed no Upload-Metadata:\n{out}")


PORTS_USED = set()
PORTS_LOCK = threading.Lock()


def connect(host, port):
    """A connection from a client port no earlier request of this run used: the port is how the
    checker finds a request's response in the trace. (A reused port is closed unused.)"""
    for _ in range(20):
        conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
        conn.connect()
        client_port = conn.sock.getsockname()[1]
        with PORTS_LOCK:
            if client_port not in PORTS_USED:
                PORTS_USED.add(client_port)
                return conn, client_port
        conn.close()
    raise SystemExit("no fresh client port in 20 connections")


def request(base, method, path, headers, body=b""):
    """One request on its own connection; returns (status, headers, client port)."""
    host, port = base[len("http://") :].split(":")
    conn, client_port = connect(host, int(port))
    try:
        headers = dict(headers, **{"Tus-Resumable": "1.0.0", "Connection": "close"})
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, client_port
    finally:
        conn.close()


def run_upload(server, upload):
    headers = {"Upload-Length": str(upload.size)}
    if upload.key:
        headers["Upload-Metadata"] = metadata_for(upload)
    if upload.creation_with_upload:
        headers["Content-Type"] = "application/offset+octet-stream"
        status, h, port = request(server.base, "POST", "/files/", headers, upload.body)
        if status != 201 or h.get("upload-offset") != str(upload.size):
            raise SystemExit(f"{upload.label}: creation-with-upload answered {status} {h}")
        upload.id = h["location"].rsplit("/", 1)[1]
        upload.port = port
        return
    status, h, _ = request(server.base, "POST", "/files/", headers)
    if status != 201:
        raise SystemExit(f"{upload.label}: POST answered {status} {h}")
    upload.id = h["location"].rsplit("/", 1)[1]
    step = -(-upload.size // upload.patches)
    offset = 0
    while offset < upload.size:
        chunk = upload.body[offset : offset + step]
        status, h, port = request(
            server.base,
            "PATCH",
            f"/files/{upload.id}",
            {"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
            chunk,
        )
        if status != 204:
            raise SystemExit(f"{upload.label}: PATCH at {offset} answered {status} {h}")
        offset += len(chunk)
        upload.port = port


def drive(server, uploads, together):
    """`uploads` one after the other, then `together` concurrently (their completions can share
    one directory fsync: the group commit)."""
    for upload in uploads:
        run_upload(server, upload)
    failures = []

    def one(upload):
        try:
            run_upload(server, upload)
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(f"{upload.label}: {e}")

    threads = [threading.Thread(target=one, args=(u,)) for u in together]
    for t in threads:
        t.start()
    for t in threads:
        t.join(REQUEST_TIMEOUT * 3)
    if failures or any(t.is_alive() for t in threads):
        raise SystemExit(f"{server.name}: concurrent uploads failed: {failures}")
    # The uploads themselves worked: tokened ones are published with their bytes.
    for upload in uploads + together:
        if upload.key:
            path = os.path.join(server.assets_dir, upload.visibility, upload.key)
            with open(path, "rb") as f:
                if f.read() != upload.body:
                    raise SystemExit(f"{upload.label}: {path} does not hold the uploaded bytes")


# ---------------------------------------------------------------------------------------------
# Reading the trace


class Call:
    __slots__ = ("name", "pid", "entry", "exit", "time", "text", "ret")

    def __init__(self, name, pid, entry, time_, text):
        self.name = name
        self.pid = pid
        self.entry = entry  # line number of the syscall's entry
        self.exit = entry  # line number of its exit (a later one if it was <unfinished ...>)
        self.time = time_
        self.text = text
        self.ret = None

    def where(self):
        return f"L{self.entry + 1}" + (f"-{self.exit + 1}" if self.exit != self.entry else "")


LINE = re.compile(r"^(\d+) +(\d+\.\d+) (.*)$")
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
RETURN = re.compile(r"\) += (-?\d+)(?:<.*?>)?(?: [A-Z]+ \(.*\))?$")
FD = r"(?:\d+|AT_FDCWD)<([A-Za-z0-9-]+:\[[^\]]*\]|[^>]*)>"
STR = r'"((?:[^"\\]|\\.)*)"'
# write(fd, "…"), sendto(fd, "…"), writev(fd, [{iov_base="…"),
# sendmsg(fd, {msg_name=…, msg_namelen=…, msg_iov=[{iov_base="…")
WRITE = re.compile(
    r"\w+\(" + FD + r", (?:\[\{iov_base=|\{msg_name=[^,]*, msg_namelen=\d+, msg_iov=\[\{iov_base=)?" + STR
)


def read_trace(path):
    calls = []
    pending = {}
    with open(path, "r", errors="replace") as f:
        for n, line in enumerate(f):
            m = LINE.match(line.rstrip("\n"))
            if not m:
                continue
            pid, t, rest = int(m.group(1)), float(m.group(2)), m.group(3)
            if rest.startswith(("---", "+++")):
                continue
            r = RESUMED.match(rest)
            if r:
                call = pending.pop(pid, None)
                if call is None or call.name != r.group(1):
                    continue
                call.exit = n
                call.text += r.group(2)
            else:
                name = rest.split("(", 1)[0]
                call = Call(name, pid, n, t, rest)
                calls.append(call)
                if rest.endswith("<unfinished ...>"):
                    call.text = rest[: -len("<unfinished ...>")].rstrip()
                    pending[pid] = call
                    continue
            ret = RETURN.search(call.text)
            call.ret = int(ret.group(1)) if ret else None
    return calls


def unescape(s):
    return s.encode("latin-1", "backslashreplace").decode("unicode_escape", "replace")


def join(directory, name):
    return name if name.startswith("/") else os.path.normpath(os.path.join(directory, name))


class Trace:
    """The trace's calls, decoded into what the checks need (paths, not fds)."""

    def __init__(self, path):
        self.calls = read_trace(path)
        self.syncs = []  # (call, path, kind)
        self.writes = []  # (call, path, content prefix)
        self.creates = []  # (call, path): openat with O_CREAT
        self.mkdirs = []  # (call, path)
        self.renames = []  # (call, from, to)
        self.links = []  # (call, from, to)
        self.unlinks = []  # (call, path)
        for c in self.calls:
            if c.ret is None or c.ret < 0:
                continue
            name, text = c.name, c.text
            if name in ("fsync", "fdatasync"):
                m = re.match(rf"\w+\({FD}\)", text)
                if m:
                    self.syncs.append((c, m.group(1), name))
            elif name in ("write", "writev", "sendto", "sendmsg"):
                m = WRITE.match(text)
                if m:
                    self.writes.append((c, m.group(1), unescape(m.group(2))))
            elif name == "openat":
                m = re.match(rf"openat\({FD}, {STR}, ([A-Z_|]+)", text)
                if m and "O_CREAT" in m.group(3):
                    self.creates.append((c, join(m.group(1), unescape(m.group(2)))))
            elif name == "creat":
                m = re.match(rf"creat\({STR}", text)
                if m:
                    self.creates.append((c, unescape(m.group(1))))
            elif name == "mkdir":
                m = re.match(rf"mkdir\({STR}", text)
                if m:
                    self.mkdirs.append((c, os.path.normpath(unescape(m.group(1)))))
            elif name == "mkdirat":
                m = re.match(rf"mkdirat\({FD}, {STR}", text)
                if m:
                    self.mkdirs.append((c, join(m.group(1), unescape(m.group(2)))))
            elif name == "rename":
                m = re.match(rf"rename\({STR}, {STR}\)", text)
                if m:
                    self.renames.append((c, unescape(m.group(1)), unescape(m.group(2))))
            elif name in ("renameat", "renameat2", "linkat"):
                m = re.match(rf"\w+\({FD}, {STR}, {FD}, {STR}", text)
                if m:
                    src = join(m.group(1), unescape(m.group(2)))
                    dst = join(m.group(3), unescape(m.group(4)))
                    (self.links if name == "linkat" else self.renames).append((c, src, dst))
            elif name == "unlinkat":
                m = re.match(rf"unlinkat\({FD}, {STR}", text)
                if m:
                    self.unlinks.append((c, join(m.group(1), unescape(m.group(2)))))

    def response(self, port):
        """Every write to the socket whose peer is the client's port (one request per connection,
        `Connection: close`: exactly one is expected, the response's first bytes)."""
        suffix = f"->127.0.0.1:{port}]"
        return [(c, data) for c, path, data in self.writes if path.endswith(suffix)]


# ---------------------------------------------------------------------------------------------
# The checks. Each is a named rule; `check` records that it applied to an upload and whether it held.
# "found" is not a durability rule: the syscalls every upload makes (creation, writes, renames,
# the response) were not found, so the trace or the checker is wrong, whatever the fsync policy.

SYNC_RULES = {
    "data-synced": "fdatasync of the data file after its last write, before the response",
    "info-synced": "the .info's content fdatasynced (tokenless)",
    "upload-dir-synced": "fsync of the upload directory begun after the upload's entries changed",
    "publishing-synced": "Publishing .info.tmp fdatasynced before its rename to .info",
    "data-before-publishing": "data fdatasync ended before the Publishing state is renamed in",
    "publishing-dir-synced": "upload-dir fsync after the Publishing rename, before the data moves",
    "asset-dir-synced": "fsync of the asset's directory after the rename/link, before the response",
    "link-synced": "with keep: fsync of the asset's directory between link and unlink",
    "new-dirs-synced": "every directory created on the way has its parent fsynced",
}


def check(upload, rule, call, ok_text, fail_text):
    upload.checked.add(rule)
    if call is None:
        upload.errors.append((rule, fail_text))
    else:
        upload.evidence.append(ok_text(call))


def missing(upload, text):
    upload.errors.append(("found", text))


def last(items, before):
    """The last item whose call ended before line `before`."""
    found = None
    for item in items:
        if item[0].exit < before:
            found = item
    return found


def synced_between(trace, path, after, before):
    """An fsync/fdatasync of `path` that began after line `after` and ended before `before`."""
    for c, p, _ in trace.syncs:
        if p == path and c.entry > after and c.exit < before:
            return c
    return None


def check_dirs_created(trace, upload, paths, before):
    """Every directory created on the way to `paths` has its entry synced in its parent."""
    ancestors = set()
    for path in paths:
        d = os.path.dirname(path)
        while d not in ("/", ""):
            ancestors.add(d)
            d = os.path.dirname(d)
    for c, d in trace.mkdirs:
        if d in ancestors and c.exit < before:
            parent = os.path.dirname(d)
            check(
                upload,
                "new-dirs-synced",
                synced_between(trace, parent, c.exit, before),
                lambda s, c=c, d=d: f"{c.name} {os.path.basename(d)} {c.where()} "
                f"< fsync(parent) {s.where()}",
                f"directory {d} created ({c.name} {c.where()}) but no fsync of {parent} "
                "began after it and ended before the response",
            )


def check_upload(trace, server, upload):
    data = os.path.join(server.upload_dir, upload.id)
    info = data + ".info"
    tmp = info + ".tmp"
    hits = trace.response(upload.port)
    if len(hits) != 1:
        return missing(upload, f"expected one response to client port {upload.port}, found {len(hits)}")
    resp, content = hits[0]
    if not content.startswith(f"HTTP/1.1 {upload.expected_status} "):
        return missing(upload, f"response to port {upload.port} starts {content[:30]!r}")
    R = resp.entry

    created = last([(c, p) for c, p in trace.creates if p == data], R)
    if created is None:
        return missing(upload, f"no creation of {data} in the trace")
    data_write = last([(c, p) for c, p, _ in trace.writes if p == data], R)
    if data_write is None:
        return missing(upload, f"no write to {data} before the response")
    data_sync = synced_between(trace, data, data_write[0].exit, R)
    check(
        upload,
        "data-synced",
        data_sync,
        lambda s: f"last data write {data_write[0].where()} < {s.name}(data) {s.where()}",
        f"no fdatasync of the data file after its last write ({data_write[0].where()}) "
        f"before the response ({resp.where()})",
    )

    if upload.key is None:
        # `.info` is named by its creation (written in place) or by a rename of `.info.tmp`.
        named = [(c, "renamed") for c, s, d in trace.renames if d == info]
        named += [(c, "created") for c, p in trace.creates if p == info]
        named = last(sorted(named, key=lambda item: item[0].exit), R)
        if named is None:
            return missing(upload, f"{info} neither created nor renamed into place before the response")
        rn, how = named
        info_write = last([(c, p) for c, p, _ in trace.writes if p == info and c.entry > rn.entry], R)
        written = max(rn.exit, info_write[0].exit if info_write else rn.exit)
        info_sync = synced_between(trace, info, written, R)
        if info_sync is None and how == "renamed":
            tmp_write = last([(c, p) for c, p, _ in trace.writes if p == tmp], rn.entry)
            if tmp_write is not None:
                info_sync = synced_between(trace, tmp, tmp_write[0].exit, rn.entry)
        check(
            upload,
            "info-synced",
            info_sync,
            lambda s: f".info {how} {rn.where()}, {s.name}(.info) {s.where()}",
            f"the .info {how} at {rn.where()} is never fdatasynced (after its last write) "
            f"before the response ({resp.where()})",
        )
        changed = max(created[0].exit, rn.exit)
        check(
            upload,
            "upload-dir-synced",
            synced_between(trace, server.upload_dir, changed, R),
            lambda s: f"fsync(upload dir) {s.where()} by pid {s.pid}",
            f"no fsync of the upload directory began after the data file's creation "
            f"({created[0].where()}) and .info's last naming ({how} {rn.where()}) and ended before "
            f"the response ({resp.where()})",
        )
        check_dirs_created(trace, upload, [data, info], R)
        upload.evidence.append(f"{upload.expected_status} written {resp.where()}")
        return

    # Tokened: the Publishing state, durable, before the data file moves.
    asset = os.path.join(server.assets_dir, upload.visibility, upload.key)
    publishing = [
        (c, p)
        for c, p, content in trace.writes
        if p == tmp and '"TusgatePhase":"Publishing"' in content and c.exit < R
    ]
    if not publishing:
        return missing(upload, f"no write of the Publishing state to {tmp} before the response")
    pw = publishing[-1][0]
    renamed = [
        c for c, s, d in trace.renames if s == tmp and d == info and c.entry > pw.exit and c.exit < R
    ]
    if not renamed:
        return missing(upload, f"the Publishing state written at {pw.where()} is never renamed to .info")
    rn = renamed[0]
    if created[0].exit > rn.exit:
        return missing(upload, "data file created after the Publishing state")
    check(
        upload,
        "publishing-synced",
        synced_between(trace, tmp, pw.exit, rn.entry),
        lambda s: f"Publishing written {pw.where()} < {s.name}(.info.tmp) {s.where()} "
        f"< rename {rn.where()}",
        f"{tmp} (Publishing, written {pw.where()}) not fdatasynced before its rename ({rn.where()})",
    )
    if data_sync is not None:
        check(
            upload,
            "data-before-publishing",
            data_sync if data_sync.exit < rn.entry else None,
            lambda s: "",
            f"the data fdatasync ({data_sync.where()}) did not end before the Publishing "
            f"state was renamed in ({rn.where()})",
        )
    placed = [(c, "rename") for c, s, d in trace.renames if s == data and d == asset and c.exit < R]
    placed += [(c, "link") for c, s, d in trace.links if s == data and d == asset and c.exit < R]
    if not placed:
        return missing(upload, f"the data file is not renamed or linked to {asset} before the response")
    place, how = placed[-1]
    check(
        upload,
        "publishing-dir-synced",
        synced_between(trace, server.upload_dir, rn.exit, place.entry),
        lambda s: f"fsync(upload dir) {s.where()} < {how} {place.where()}",
        f"no fsync of the upload directory began after the Publishing rename ({rn.where()}) "
        f"and ended before the data file was placed ({place.where()})",
    )
    asset_dir = os.path.dirname(asset)
    if how == "link":
        unlinked = [c for c, p in trace.unlinks if p == data and c.entry > place.exit and c.exit < R]
        if not unlinked:
            return missing(
                upload,
                f"the data file is linked ({place.where()}) but not unlinked before the response",
            )
        un = unlinked[0]
        check(
            upload,
            "link-synced",
            synced_between(trace, asset_dir, place.exit, un.entry),
            lambda s: f"fsync(asset dir) {s.where()} < unlink {un.where()}",
            f"no fsync of {asset_dir} between the link ({place.where()}) and the unlink ({un.where()})",
        )
    check(
        upload,
        "asset-dir-synced",
        synced_between(trace, asset_dir, place.exit, R),
        lambda s: f"fsync(asset dir) {s.where()}",
        f"no fsync of {asset_dir} after the {how} ({place.where()}) and before the response "
        f"({resp.where()})",
    )
    check_dirs_created(trace, upload, [data, info, asset], R)
    upload.evidence.append(f"{upload.expected_status} written {resp.where()}")


# ---------------------------------------------------------------------------------------------


def plan(prefix, tokened_only=False):
    sequential = [
        Upload(f"{prefix}-t10k", 10 * KiB),
        Upload(f"{prefix}-t5m", 5 * MiB, patches=2),
        Upload(f"{prefix}-t10k-cwu", 10 * KiB, creation_with_upload=True),
        Upload(f"{prefix}-k10k-public", 10 * KiB, key=f"{prefix}/logo.png", visibility="public"),
        Upload(f"{prefix}-k5m-newdirs", 5 * MiB, key=f"{prefix}/reports/2026/q3.pdf", patches=2),
        Upload(
            f"{prefix}-k10k-cwu", 10 * KiB, key=f"{prefix}/reports/2026/q4.pdf", creation_with_upload=True
        ),
        Upload(f"{prefix}-k5m-cwu", 5 * MiB, key=f"{prefix}/big.bin", creation_with_upload=True),
    ]
    together = [Upload(f"{prefix}-group{i}", 10 * KiB) for i in range(6)]
    together += [Upload(f"{prefix}-kgroup{i}", 10 * KiB, key=f"{prefix}/group/{i}.txt") for i in range(2)]
    if tokened_only:
        sequential = [u for u in sequential if u.key]
        together = [u for u in together if u.key]
    return sequential, together


def run(name, fsync, overwrite, tokened_only=False):
    server = Server(name, fsync, overwrite)
    PORTS_USED.clear()
    sequential, together = plan(name, tokened_only)
    server.start()
    try:
        drive(server, sequential, together)
    finally:
        server.stop()
    trace = Trace(server.trace)
    uploads = sequential + together
    for upload in uploads:
        check_upload(trace, server, upload)
    size = os.path.getsize(server.trace)
    log(f"{name}: {len(trace.calls)} traced calls ({size // KiB} KiB), {len(uploads)} uploads checked")
    return uploads


def report(uploads, verbose, max_errors=None):
    for u in uploads:
        if u.errors:
            print(f"  FAIL {u.describe()}")
            shown = u.errors if max_errors is None else u.errors[:max_errors]
            for rule, text in shown:
                print(f"       - [{rule}] {text}")
            if len(shown) < len(u.errors):
                print(f"       - … and {len(u.errors) - len(shown)} more")
        else:
            print(f"  ok   {u.describe()}: {', '.join(sorted(u.checked))}")
            if verbose:
                print(f"       {'; '.join(e for e in u.evidence if e)}")


def main():
    print("rules (each must hold before the upload's last response is written):")
    for rule, text in SYNC_RULES.items():
        print(f"  {rule:22} {text}")
    ok = True
    for name, fsync, overwrite, tokened_only in (
        ("completion-replace", "completion", "replace", False),
        ("completion-keep", "completion", "keep", True),
    ):
        uploads = run(name, fsync, overwrite, tokened_only)
        failed = [u for u in uploads if u.errors]
        log(f"{name}: {len(uploads) - len(failed)}/{len(uploads)} uploads durable before their response")
        report(uploads, verbose=True)
        ok &= not failed

    # The same uploads with -fsync=never: every sync rule that applies to an upload must fail
    # (nothing is synced), and nothing else may (the uploads and their responses are found).
    uploads = run("never", "never", "replace")
    wrong = []
    for u in uploads:
        failed_rules = {rule for rule, _ in u.errors}
        if "found" in failed_rules or not u.checked or failed_rules != u.checked:
            wrong.append(u)
    log(
        f"never: {len(uploads) - len(wrong)}/{len(uploads)} uploads fail every sync rule "
        "that applies to them (all must)"
    )
    report(uploads, verbose=False, max_errors=3)
    for u in wrong:
        held = sorted(u.checked - {rule for rule, _ in u.errors})
        print(f"  the checker cannot tell: {u.label} under -fsync=never; held: {held}; {u.errors[:3]}")
    ok &= not wrong

    print("durability: PASS" if ok else "durability: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
