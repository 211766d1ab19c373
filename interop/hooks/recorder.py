"""A tusd v2 HTTP hook endpoint for tests: records every hook request and answers per scenario.

It is what `-hooks-http URL` points at, for tusd and tusgate alike. Every POST is recorded
(arrival order, path, headers, raw and parsed JSON body) before it is answered, so a test sees
even the calls it made fail. The answer comes from `policy(hook) -> Reply`, replaceable at any
time (the default is tusd's "no opinion": 200 with `{}`). Post-* hooks are asynchronous in tusd,
so tests wait for them with `wait_for(...)` (bounded) instead of sleeping.

Threaded (one thread per request) and bound to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from requests.structures import CaseInsensitiveDict


@dataclass
class Hook:
    """One recorded hook request."""

    seq: int                       # order of recording (after the policy answered), from 0
    path: str                      # request target, e.g. /hooks
    headers: "CaseInsensitiveDict"  # names compare case-insensitively, as HTTP's do (Go sends
                                    # Content-Type, reqwest content-type); last value wins
    raw: bytes
    body: dict | None              # parsed JSON, None if it did not parse
    received: float                # time.monotonic() at arrival
    answered: "Reply | None" = None

    @property
    def type(self) -> str:
        return (self.body or {}).get("Type", "")

    @property
    def upload(self) -> dict:
        return ((self.body or {}).get("Event") or {}).get("Upload") or {}

    @property
    def request(self) -> dict:
        return ((self.body or {}).get("Event") or {}).get("HTTPRequest") or {}

    @property
    def metadata(self) -> dict:
        return self.upload.get("MetaData") or {}


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0             # seconds to wait before answering (a slow hook endpoint)

    def encoded(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


def default_policy(hook: Hook) -> Reply:
    return Reply()


# --- scenario policies -------------------------------------------------------------------------

def reject_pre_create_when(meta_key: str, meta_value: str, *, status: int = 422,
                           body: str = "rejected by hook", headers: dict | None = None,
                           otherwise: Callable[[Hook], Reply] = default_policy):
    """pre-create with MetaData[meta_key] == meta_value -> RejectUpload + a custom HTTPResponse."""
    def policy(hook: Hook) -> Reply:
        if hook.type == "pre-create" and hook.metadata.get(meta_key) == meta_value:
            return Reply(body={"RejectUpload": True,
                               "HTTPResponse": {"StatusCode": status, "Body": body,
                                                "Header": headers or {}}})
        return otherwise(hook)
    return policy


def change_file_info(changes: dict, *, when_meta: tuple[str, str] | None = None):
    """pre-create -> ChangeFileInfo (`changes` is tusd's FileInfoChanges: ID, MetaData, Storage)."""
    def policy(hook: Hook) -> Reply:
        if hook.type == "pre-create" and (
                when_meta is None or hook.metadata.get(when_meta[0]) == when_meta[1]):
            return Reply(body={"ChangeFileInfo": changes})
        return Reply()
    return policy


def stop_upload(http_response: dict | None = None):
    """post-receive -> StopUpload (+ an optional HTTPResponse for the stopped PATCH)."""
    def policy(hook: Hook) -> Reply:
        if hook.type == "post-receive":
            body: dict = {"StopUpload": True}
            if http_response is not None:
                body["HTTPResponse"] = http_response
            return Reply(body=body)
        return Reply()
    return policy


def fixed(reply: Reply):
    """The same answer to every hook (e.g. 500, or a slow 200)."""
    return lambda hook: reply


# --- the server --------------------------------------------------------------------------------

class HookRecorder:
    def __init__(self, path: str = "/hooks", tls: tuple[str, str] | None = None):
        """`tls`: (certificate, key) files: the endpoint speaks https."""
        self.path = path
        self.hooks: list[Hook] = []
        self.policy: Callable[[Hook], Reply] = default_policy
        self._cond = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                hook = Hook(-1, self.path, CaseInsensitiveDict(self.headers.items()), raw,
                            body, time.monotonic())
                # The policy runs before the hook is recorded: a test that waits for a hook
                # may then read what its policy saw (a policy's side effects raced the
                # waiter when the hook was recorded first).
                reply = recorder.policy(hook)
                hook.answered = reply
                with recorder._cond:
                    hook.seq = len(recorder.hooks)
                    recorder.hooks.append(hook)
                    recorder._cond.notify_all()
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.encoded()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up (its hook timeout): that is what a test looks at

            def log_message(self, format, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            import ssl
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=f"hook-recorder:{self.port}")

    def __enter__(self) -> "HookRecorder":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- reading what was recorded -------------------------------------------------------------

    def snapshot(self) -> list[Hook]:
        with self._cond:
            return list(self.hooks)

    def clear(self) -> None:
        with self._cond:
            self.hooks.clear()

    def of(self, type_: str | None = None, upload_id: str | None = None) -> list[Hook]:
        return [h for h in self.snapshot()
                if (type_ is None or h.type == type_)
                and (upload_id is None or h.upload.get("ID") == upload_id)]

    def wait_for(self, predicate: Callable[[list[Hook]], bool], timeout: float = 10.0,
                 what: str = "hooks") -> list[Hook]:
        """Blocks until predicate(all hooks so far) is true; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.hooks):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [(h.type, h.upload.get("ID")) for h in self.hooks]
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; "
                                         f"recorded: {got}")
                self._cond.wait(remaining)
            return list(self.hooks)

    def wait_count(self, type_: str, count: int, upload_id: str | None = None,
                   timeout: float = 10.0) -> list[Hook]:
        def enough(hooks):
            return sum(1 for h in hooks if h.type == type_
                       and (upload_id is None or h.upload.get("ID") == upload_id)) >= count
        self.wait_for(enough, timeout, f"{count} x {type_} ({upload_id or 'any upload'})")
        return self.of(type_, upload_id)

    def settle(self, quiet: float = 0.3, timeout: float = 10.0) -> list[Hook]:
        """Waits until no hook arrived for `quiet` seconds (asynchronous post-* hooks)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                count = len(self.hooks)
            time.sleep(quiet)
            with self._cond:
                if len(self.hooks) == count or time.monotonic() > deadline:
                    return list(self.hooks)


# --- file hooks (-hooks-dir) bridged to the recorder ----------------------------------------

FILE_HOOK = '''#!{python}
# tusd file hook bridge (written by the hooks suite): forwards this hook to the recorder and
# answers with the recorder's reply. stdin: the hook request JSON; env: TUS_ID, TUS_SIZE,
# TUS_OFFSET; cwd: the hooks dir. The reply's X-Exit-Code header is this script's exit code.
import os, sys, urllib.request
body = sys.stdin.buffer.read()
headers = {{"Content-Type": "application/json", "X-Hook-Cwd": os.getcwd()}}
for name in ("TUS_ID", "TUS_SIZE", "TUS_OFFSET"):
    headers["X-Hook-Env-" + name] = os.environ.get(name, "<unset>")
request = urllib.request.Request({url!r} + "/" + os.path.basename(sys.argv[0]), data=body,
                                 headers=headers, method="POST")
with urllib.request.urlopen(request, timeout=60) as response:
    sys.stdout.buffer.write(response.read())
    sys.exit(int(response.headers.get("X-Exit-Code", "0")))
'''

EVENTS = ["pre-create", "post-create", "post-receive", "pre-finish", "post-finish",
          "pre-terminate", "post-terminate"]


def write_file_hooks(directory, recorder: HookRecorder, events=EVENTS) -> None:
    """One executable per event in `directory`, each forwarding to `recorder` at
    /file-hooks/<event> (so the recorded path names the script tusd ran)."""
    import os
    import sys
    os.makedirs(directory, exist_ok=True)
    base = f"http://127.0.0.1:{recorder.port}/file-hooks"
    for event in events:
        path = os.path.join(directory, event)
        with open(path, "w") as script:
            script.write(FILE_HOOK.format(python=sys.executable, url=base))
        os.chmod(path, 0o755)
