"""The hook differential: the same uploads against a server, the recorded hooks normalised.

`run_steps(server, recorder)` performs every step of STEPS in order against one server and
returns, per step, the recorded hooks reduced to comparable events: the JSON body flattened to
`path -> value` with everything that legitimately differs between two runs replaced by a
placeholder (upload ids by the label the client gave them, the server's port, the client's
port, the upload directory). `compare(a, b, allowed)` matches events by (step, upload label,
hook type, n-th occurrence) and compares them field by field.

Events are matched per upload and type, not by global arrival order, because tusd fires the
post-* hooks asynchronously (post-create may arrive after the first PATCH's pre-finish). Each
step waits for the hooks tusd sends for it (bounded) and then for quiet, so an asynchronous hook
never spills into the next step.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass, field

from conftest import PROGRESS_INTERVAL_S, Server, create, delete, head, patch, upload_id
from recorder import Hook, HookRecorder

SECRET = "hooks-diff-upload-secret-0123456789abcdef"  # tusgate's UPLOAD_SECRET in the diff
STEP_WAIT_S = 4.0           # bound on waiting for the hooks a step is known to cause (tusd)
QUIET_S = PROGRESS_INTERVAL_S + 0.4


@dataclass
class Event:
    step: str
    label: str                 # the upload, as the client named it ("-" before it has an id)
    type: str
    nth: int                   # n-th hook of this type for this upload in this step
    fields: dict[str, object]  # flattened, normalised body + hook-request path and Content-Type

    @property
    def key(self) -> tuple:
        return (self.step, self.label, self.type, self.nth)


@dataclass
class StepRun:
    labels: dict[str, str] = field(default_factory=dict)   # upload id -> label
    expect: dict[tuple[str, str], int] = field(default_factory=dict)  # (label, type) -> count
    responses: list[tuple] = field(default_factory=list)   # what the client saw, for the report
    error: str | None = None   # a client-side expectation of the step that did not hold

    def name(self, location: str, label: str) -> str:
        self.labels[upload_id(location)] = label
        return location


# --- the steps: the same uploads for both servers ------------------------------------------

DATA = b"hello world"   # 11 bytes


def step_creation(server: Server, run: StepRun) -> None:
    r = create(server, len(DATA), {"filename": "a.txt", "filetype": "text/plain", "empty": None})
    assert r.status_code == 201, r.text
    url = run.name(r.headers["Location"], "U")
    r2 = patch(url, 0, DATA)
    assert r2.status_code == 204, r2.text
    run.responses += [("POST", r.status_code), ("PATCH", r2.status_code)]
    run.expect = {("-", "pre-create"): 1, ("U", "post-create"): 1, ("U", "post-receive"): 1,
                  ("U", "pre-finish"): 1, ("U", "post-finish"): 1}


def step_creation_with_upload(server: Server, run: StepRun) -> None:
    r = create(server, len(DATA), {"filename": "b.bin"}, body=DATA)
    assert r.status_code == 201, r.text
    run.name(r.headers["Location"], "U")
    run.responses += [("POST", r.status_code, r.headers.get("Upload-Offset"))]
    run.expect = {("-", "pre-create"): 1, ("U", "post-create"): 1, ("U", "post-receive"): 1,
                  ("U", "pre-finish"): 1, ("U", "post-finish"): 1}


def step_chunked(server: Server, run: StepRun, recorder: HookRecorder) -> None:
    r = create(server, 12, {"filename": "c.bin"})
    assert r.status_code == 201, r.text
    url = run.name(r.headers["Location"], "U")
    uid = upload_id(url)
    for i, chunk in enumerate((b"abcd", b"efgh", b"ijkl")):
        r2 = patch(url, 4 * i, chunk)
        assert r2.status_code == 204, r2.text
        run.responses.append(("PATCH", r2.status_code, r2.headers.get("Upload-Offset")))
        # one post-receive per PATCH before the next, so their Offsets come in order
        _soft_wait(recorder, lambda hs, n=i + 1: _count(hs, "post-receive", uid) >= n)
    run.expect = {("-", "pre-create"): 1, ("U", "post-create"): 1, ("U", "post-receive"): 3,
                  ("U", "pre-finish"): 1, ("U", "post-finish"): 1}


def step_deferred_length(server: Server, run: StepRun, recorder: HookRecorder) -> None:
    r = create(server, None, {"filename": "d.bin"})
    assert r.status_code == 201, r.text
    url = run.name(r.headers["Location"], "U")
    r2 = patch(url, 0, DATA[:5])
    assert r2.status_code == 204, r2.text
    _soft_wait(recorder, lambda hs: _count(hs, "post-receive", upload_id(url)) >= 1)
    r3 = patch(url, 5, DATA[5:], {"Upload-Length": str(len(DATA))})
    assert r3.status_code == 204, r3.text
    run.responses += [("POST", r.status_code), ("PATCH", r2.status_code),
                      ("PATCH", r3.status_code)]
    run.expect = {("-", "pre-create"): 1, ("U", "post-create"): 1, ("U", "post-receive"): 2,
                  ("U", "pre-finish"): 1, ("U", "post-finish"): 1}


def step_termination(server: Server, run: StepRun, recorder: HookRecorder) -> None:
    r = create(server, 10, {"filename": "e.bin"})
    assert r.status_code == 201, r.text
    url = run.name(r.headers["Location"], "U")
    r2 = patch(url, 0, b"1234")
    assert r2.status_code == 204, r2.text
    _soft_wait(recorder, lambda hs: _count(hs, "post-receive", upload_id(url)) >= 1)
    r3 = delete(url)
    assert r3.status_code == 204, r3.text
    run.responses += [("POST", r.status_code), ("PATCH", r2.status_code),
                      ("DELETE", r3.status_code), ("HEAD", head(url).status_code)]
    run.expect = {("-", "pre-create"): 1, ("U", "post-create"): 1, ("U", "post-receive"): 1,
                  ("U", "pre-terminate"): 1, ("U", "post-terminate"): 1}


def step_rejected_creation(server: Server, run: StepRun) -> None:
    r = create(server, len(DATA), {"filename": "f.bin", "reject": "yes"})
    run.responses += [("POST", r.status_code, r.text, r.headers.get("X-Hook"))]
    assert r.status_code == 422, (r.status_code, r.text)
    run.expect = {("-", "pre-create"): 1}


def step_concatenation(server: Server, run: StepRun, recorder: HookRecorder) -> None:
    urls = []
    for label, part in (("P1", DATA[:5]), ("P2", DATA[5:])):
        r = create(server, len(part), {"filename": f"{label}.part"},
                   headers={"Upload-Concat": "partial"})
        assert r.status_code == 201, r.text
        url = run.name(r.headers["Location"], label)
        r2 = patch(url, 0, part)
        assert r2.status_code == 204, r2.text
        _soft_wait(recorder, lambda hs, u=upload_id(url): _count(hs, "post-finish", u) >= 1)
        urls.append(url)
    paths = " ".join("/files/" + upload_id(u) for u in urls)
    r = create(server, None, {"filename": "g.bin"}, headers={"Upload-Concat": f"final;{paths}"})
    assert r.status_code == 201, r.text
    run.name(r.headers["Location"], "F")
    run.responses += [("POST final", r.status_code)]
    run.expect = {("-", "pre-create"): 3}
    for label in ("P1", "P2"):
        run.expect.update({(label, "post-create"): 1, (label, "post-receive"): 1,
                           (label, "pre-finish"): 1, (label, "post-finish"): 1})
    run.expect.update({("F", "post-create"): 1, ("F", "pre-finish"): 1, ("F", "post-finish"): 1})


@functools.cache
def tokened_headers() -> dict[str, str]:
    """granite-assets' creation headers for one asset, built once so that both servers see the
    same metadata (its upload-expires, hence its token, depends on the clock)."""
    from granite_assets import (AssetVisibility, LocalNginxAssetRepositoryConfig,
                                build_asset_repository)
    repo = build_asset_repository(LocalNginxAssetRepositoryConfig(
        storage_path="/nonexistent", base_url="http://127.0.0.1/assets",
        tusd_url="http://127.0.0.1", upload_secret=SECRET, secure_link_secret=SECRET,
        create_directories=False))
    result = repo.build_upload_url("reports/q3.txt", "text/plain", 3600,
                                   visibility=AssetVisibility.PRIVATE)
    return dict(result.headers)


def step_tokened(server: Server, run: StepRun) -> None:
    """A granite-assets upload (tusd passes its metadata through; tusgate checks the token
    first, with UPLOAD_SECRET in its environment, then runs the hooks)."""
    headers = tokened_headers()
    r = create(server, len(DATA), None, headers=headers)
    assert r.status_code == 201, r.text
    url = run.name(r.headers["Location"], "U")
    r2 = patch(url, 0, DATA)
    assert r2.status_code == 204, r2.text
    run.responses += [("POST", r.status_code), ("PATCH", r2.status_code)]
    run.expect = {("-", "pre-create"): 1, ("U", "post-create"): 1, ("U", "post-receive"): 1,
                  ("U", "pre-finish"): 1, ("U", "post-finish"): 1}


def step_request_shape(server: Server, run: StepRun) -> None:
    """What Event.HTTPRequest says about an unusual request: a query string, lower-case
    header names (Go canonicalises them: x-lower-case -> X-Lower-Case), a repeated header (both
    values, in order), an empty header value."""
    import http.client
    import os
    import ssl
    if server.origin.startswith("https:"):
        context = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=30, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/files/?source=diff&x=1", skip_accept_encoding=True)
    for name, value in (("tus-resumable", "1.0.0"), ("upload-length", "3"),
                        ("upload-metadata", "filename aC50eHQ="), ("x-lower-case", "v"),
                        ("X-Multi", "a"), ("X-Multi", "b"), ("X-Empty", ""),
                        ("content-length", "0")):
        conn.putheader(name, value)
    conn.endheaders()
    r = conn.getresponse()
    r.read()
    location = r.getheader("Location")
    conn.close()
    run.responses += [("POST", r.status)]
    assert r.status == 201, r.status
    run.name(location, "U")
    run.expect = {("-", "pre-create"): 1, ("U", "post-create"): 1}


STEPS = [
    ("creation", step_creation),
    ("creation-with-upload", step_creation_with_upload),
    ("chunked", step_chunked),
    ("deferred-length", step_deferred_length),
    ("termination", step_termination),
    ("rejected-creation", step_rejected_creation),
    ("concatenation", step_concatenation),
    ("tokened", step_tokened),
    ("request-shape", step_request_shape),
]


# --- running and normalising ---------------------------------------------------------------

def _count(hooks: list[Hook], type_: str, uid: str) -> int:
    return sum(1 for h in hooks if h.type == type_ and h.upload.get("ID") == uid)


def _soft_wait(recorder: HookRecorder, predicate, timeout: float = STEP_WAIT_S) -> bool:
    try:
        recorder.wait_for(predicate, timeout)
        return True
    except AssertionError:
        return False  # the comparison reports what is missing


def run_steps(server: Server, recorder: HookRecorder,
              only: list[str] | None = None) -> tuple[list[Event], dict[str, StepRun]]:
    events: list[Event] = []
    runs: dict[str, StepRun] = {}
    for name, step in STEPS:
        if only and name not in only:
            continue
        recorder.clear()
        run = StepRun()
        args = (server, run, recorder) if step.__code__.co_argcount == 3 else (server, run)
        try:
            step(*args)
        except Exception as err:  # noqa: BLE001 (reported with the differences, not raised:
            # the hooks a half-done step caused are still compared)
            run.error = f"{type(err).__name__}: {err}"

        def done(hooks, run=run):
            seen: dict[tuple[str, str], int] = {}
            for h in hooks:
                k = (_label(run, h), h.type)
                seen[k] = seen.get(k, 0) + 1
            return all(seen.get(k, 0) >= n for k, n in run.expect.items())
        _soft_wait(recorder, done)
        hooks = recorder.settle(QUIET_S)
        runs[name] = run
        events += normalise(name, hooks, run, server)
    return events, runs


_REMOTE = re.compile(r"^127\.0\.0\.1:\d+$")


def _label(run: StepRun, hook: Hook) -> str:
    """The client's name for the hook's upload; "-" before it has an id (pre-create); an id
    the step never saw (a hook spilling over from another step) stays visible as such."""
    uid = hook.upload.get("ID") or ""
    return run.labels.get(uid, f"unknown:{uid}" if uid else "-")


def normalise(step: str, hooks: list[Hook], run: StepRun, server: Server) -> list[Event]:
    replacements = [(str(server.workdir / "hooks"), "<hooks-dir>"),
                    (str(server.upload_dir), "<upload-dir>"), (server.origin, "<origin>"),
                    (f"127.0.0.1:{server.port}", "<host>")]
    if server.bucket:
        replacements.append((server.bucket, "<bucket>"))
    replacements += [(uid, f"<{label}>") for uid, label in run.labels.items()]
    # S3 (Storage.Key): tusd's s3store ids are <object id>+<multipart id> and its objects are
    # named by the object id; tusgate's ids have no `+` and its objects carry the whole id.
    objects = {uid.split("+")[0]: f"<{label}:object>" for uid, label in run.labels.items()}
    replacements += [(uid.split("+")[0], f"<{label}:object>")
                     for uid, label in run.labels.items() if "+" in uid]

    def clean(value):
        if isinstance(value, str):
            for old, new in replacements:
                value = value.replace(old, new)
        return value

    counts: dict[tuple[str, str], int] = {}
    events = []
    for hook in sorted(hooks, key=lambda h: h.seq):
        label = _label(run, hook)
        nth = counts.get((label, hook.type), 0)
        counts[(label, hook.type)] = nth + 1
        flat: dict[str, object] = {"hook-request.path": hook.path,
                                   "hook-request.Content-Type": hook.headers.get("Content-Type")}
        for name, value in hook.headers.items():   # file hooks: env and cwd, via the bridge
            if name.lower().startswith("x-hook-"):   # (urllib sends X-hook-env-tus_id)
                flat[f"file-hook.{name.lower()[len('x-hook-'):]}"] = value
        flatten(hook.body, "", flat)
        for path, value in list(flat.items()):
            if path == "Event.Upload.Storage.Key" and value in objects:
                value = objects[value]   # S3: the object named after the upload id
            value = clean(value)
            if path == "Event.HTTPRequest.RemoteAddr" and isinstance(value, str) \
                    and _REMOTE.match(value):
                value = "127.0.0.1:<client-port>"
            flat[path] = value
        events.append(Event(step, label, hook.type, nth, flat))
    return events


def flatten(value, prefix: str, out: dict) -> None:
    """JSON -> {dotted.path: scalar}; an empty object/list stays as itself (so `{}` != null)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            flatten(v, f"{prefix}.{k}" if prefix else k, out)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix or "<body>"] = value


# --- comparing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Allowed:
    """A declared, intentional difference: the step is an fnmatch pattern, the hook type and
    the field regular expressions matched against the whole type and flattened path."""
    step: str
    type: str
    field: str
    reason: str

    def covers(self, step: str, type_: str, path: str) -> bool:
        return (fnmatch.fnmatchcase(step, self.step) and re.fullmatch(self.type, type_) is not None
                and re.fullmatch(self.field, path) is not None)


@dataclass
class Difference:
    step: str
    label: str
    type: str
    nth: int
    field: str
    reference: object    # tusd's value ("<absent>" if tusd did not send the field/event)
    candidate: object    # the other server's value
    allowed: Allowed | None = None

    def line(self) -> str:
        why = f"   [allowed: {self.allowed.reason}]" if self.allowed else ""
        return (f"{self.step} {self.label} {self.type}#{self.nth} {self.field}: "
                f"tusd={self.reference!r} other={self.candidate!r}{why}")


@dataclass
class Comparison:
    events_compared: int = 0
    events_only_reference: list[tuple] = field(default_factory=list)
    events_only_candidate: list[tuple] = field(default_factory=list)
    fields_compared: int = 0
    fields_equal: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def unexpected(self) -> list[Difference]:
        return [d for d in self.differences if d.allowed is None]

    @property
    def allowed(self) -> list[Difference]:
        return [d for d in self.differences if d.allowed is not None]

    step_errors: dict[str, str] = field(default_factory=dict)   # step -> what the client saw

    @property
    def clean(self) -> bool:
        """No unexpected difference, no event on one side only, no step that went wrong."""
        return not (self.unexpected or self.events_only_reference
                    or self.events_only_candidate or self.step_errors)

    def summary(self, title: str) -> str:
        lines = [f"{title}: events compared {self.events_compared}, fields compared "
                 f"{self.fields_compared}, equal {self.fields_equal}, different "
                 f"{len(self.differences)} ({len(self.allowed)} allowed, "
                 f"{len(self.unexpected)} unexpected); events only in tusd "
                 f"{len(self.events_only_reference)}, only in the other "
                 f"{len(self.events_only_candidate)}; steps that went wrong for the client "
                 f"{len(self.step_errors)}"]
        lines += [f"  step {step} went wrong: {error}" for step, error in self.step_errors.items()]
        lines += [f"  only in tusd: {k}" for k in self.events_only_reference]
        lines += [f"  only in the other: {k}" for k in self.events_only_candidate]
        lines += [f"  {d.line()}" for d in self.differences]
        return "\n".join(lines)


ABSENT = "<absent>"


def compare(reference: list[Event], candidate: list[Event], allowed: list[Allowed],
            candidate_runs: dict[str, StepRun] | None = None) -> Comparison:
    ref = {e.key: e for e in reference}
    cand = {e.key: e for e in candidate}
    result = Comparison()
    for step, run in (candidate_runs or {}).items():
        if run.error:
            result.step_errors[step] = run.error
    for key in ref.keys() - cand.keys():
        if not any(a.covers(key[0], key[2], "<event>") for a in allowed):
            result.events_only_reference.append(key)
    for key in cand.keys() - ref.keys():
        if not any(a.covers(key[0], key[2], "<event>") for a in allowed):
            result.events_only_candidate.append(key)
    for key in sorted(ref.keys() & cand.keys()):
        a, b = ref[key], cand[key]
        result.events_compared += 1
        for path in sorted(a.fields.keys() | b.fields.keys()):
            va, vb = a.fields.get(path, ABSENT), b.fields.get(path, ABSENT)
            result.fields_compared += 1
            if va == vb:
                result.fields_equal += 1
                continue
            rule = next((r for r in allowed if r.covers(a.step, a.type, path)), None)
            result.differences.append(Difference(a.step, a.label, a.type, a.nth, path, va, vb,
                                                 rule))
    result.events_only_reference.sort()
    result.events_only_candidate.sort()
    return result
