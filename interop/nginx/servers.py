"""Starting and stopping the servers under test, loopback only.

Every child gets PR_SET_PDEATHSIG(SIGTERM), so it dies with the harness even
if the harness itself is killed; `stop()` is still called from `finally`.
"""

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from ngxmodel import SECRET

NGINX = "/usr/sbin/nginx"
MIME_TYPES = "/etc/nginx/mime.types"

# Server A of nginx-secure-link-test.conf == granite-assets'
# examples/nginx-secure-link.conf, with only what a test needs changed:
# loopback port, absolute alias paths into the fixture, logs/pid/temp files
# below the prefix, one worker, and tusgate's Range part cap as `max_ranges`.  No `root`: like the template, nginx's default
# root (prefix/html, absent here) answers everything outside /assets/ with 404.
NGINX_CONF = """\
{user}worker_processes 1;
error_log logs/error.log info;
pid logs/nginx.pid;

events {{
    worker_connections 256;
}}

http {{
    include       mime.types;
    default_type  application/octet-stream;

    access_log logs/access.log;
    sendfile   on;
    keepalive_timeout 65;
    # Not in the template (nginx's default is no limit): tusgate always declines a Range of
    # more than 64 parts (src/range.rs MAX_RANGES), as nginx does with this directive.
    max_ranges 64;

    client_body_temp_path tmp/client_body;
    proxy_temp_path       tmp/proxy;
    fastcgi_temp_path     tmp/fastcgi;
    uwsgi_temp_path       tmp/uwsgi;
    scgi_temp_path        tmp/scgi;

    server {{
        listen 127.0.0.1:{port};
        server_name _;

        location /assets/public/ {{
            alias {storage}/public/;
            autoindex off;
            add_header Cache-Control "public, max-age=86400, immutable";
        }}

        location /assets/private/ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri {secret}";
            if ($secure_link = "") {{
                return 403;
            }}
            if ($secure_link = "0") {{
                return 410;
            }}
            alias {storage}/private/;
            autoindex off;
            add_header Cache-Control "private, no-store";
        }}

        location /assets/ {{
            return 403;
        }}

        location = /health {{
            access_log off;
            return 200 "OK\\n";
            add_header Content-Type text/plain;
        }}
    }}
{probe}}}
"""

# Not part of the template: a second server that answers with nginx's own
# $uri, used to check the harness's URI model (ngxmodel.py) on every run.
PROBE_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        location / {{
            return 200 "$uri";
        }}
    }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """preexec_fn: SIGTERM the child when the harness goes away."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)        # PR_SET_PDEATHSIG


def _wait_for_port(port: int, proc: subprocess.Popen, what: str, log: str, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} during start-up:\n{_tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s:\n{_tail(log)}")


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen | None, grace: float = 10.0):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Nginx:
    """One foreground nginx (master + 1 worker) with its own prefix directory."""

    def __init__(self, name: str, workdir: str, storage: str, with_probe: bool = False):
        self.name = name
        self.prefix = os.path.join(workdir, name)
        self.storage = storage
        self.with_probe = with_probe
        self.port = self.probe_port = None
        self.proc = None

    def start(self):
        if not os.access(NGINX, os.X_OK):
            raise RuntimeError(f"{NGINX} not found: install Debian's nginx-light (this test never skips)")
        if not os.path.exists(MIME_TYPES):
            raise RuntimeError(f"{MIME_TYPES} not found (it ships with nginx-common)")
        for sub in ("conf", "logs", "tmp"):
            os.makedirs(os.path.join(self.prefix, sub), exist_ok=True)
        shutil.copy(MIME_TYPES, os.path.join(self.prefix, "conf", "mime.types"))
        self.port = free_port()
        probe = ""
        if self.with_probe:
            self.probe_port = free_port()
            probe = PROBE_SERVER.format(port=self.probe_port)
        # As root the workers would switch to "nobody" and could not enter the
        # 0700 temp dir; run them as the same user as tusgate instead.
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = NGINX_CONF.format(user=user, port=self.port, storage=self.storage,
                                 secret=SECRET, probe=probe)
        with open(os.path.join(self.prefix, "conf", "nginx.conf"), "w") as f:
            f.write(conf)
        stderr_log = os.path.join(self.prefix, "logs", "stderr.log")
        with open(stderr_log, "wb") as err:
            self.proc = subprocess.Popen(
                [NGINX, "-p", self.prefix + "/", "-c", "conf/nginx.conf", "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                preexec_fn=_die_with_parent)
        _wait_for_port(self.port, self.proc, f"nginx {self.name}", stderr_log)
        if self.probe_port:
            _wait_for_port(self.probe_port, self.proc, f"nginx {self.name} (probe)", stderr_log)

    def stop(self):
        _stop(self.proc)


class Tusgate:
    """tusgate with uploads and downloads on one port (-port 0, read from stdout)."""

    READY = re.compile(r"You can now upload files to: http://127\.0\.0\.1:(\d+)/files/")

    def __init__(self, binary: str, workdir: str, storage: str):
        self.binary = binary
        self.workdir = workdir
        self.storage = storage
        self.port = None
        self.proc = None
        self.out_log = os.path.join(workdir, "tusgate.stdout.log")
        self.err_log = os.path.join(workdir, "tusgate.stderr.log")

    def start(self, timeout: float = 30.0):
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise RuntimeError(f"TUSGATE_BIN={self.binary!r} is not an executable file")
        uploads = os.path.join(self.workdir, "uploads")
        os.makedirs(uploads, exist_ok=True)
        cmd = [self.binary, "-host", "127.0.0.1", "-port", "0", "-upload-dir", uploads,
               "--assets-dir", self.storage, "--secure-link-secret", SECRET,
               "-allow-uploads-without-token"]
        with open(self.err_log, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=err, preexec_fn=_die_with_parent)
        found = threading.Event()

        def pump():
            # Copy stdout to the log (keeps the pipe drained) and spot the ready line.
            with open(self.out_log, "wb") as out:
                for line in self.proc.stdout:
                    out.write(line)
                    out.flush()
                    m = self.READY.search(line.decode("utf-8", "replace"))
                    if m and not found.is_set():
                        self.port = int(m.group(1))
                        found.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.05):
            if self.proc.poll() is not None:
                raise RuntimeError(f"tusgate exited with {self.proc.returncode}:\n{self._logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"tusgate printed no ready line within {timeout}s:\n{self._logs()}")
        _wait_for_port(self.port, self.proc, "tusgate", self.err_log)

    def _logs(self) -> str:
        return f"stdout:\n{_tail(self.out_log)}stderr:\n{_tail(self.err_log)}"

    def stop(self):
        _stop(self.proc)
