"""The hook differential: tusd v2.10.1 and tusgate behind the same recorder, the same uploads,
the hook bodies compared field by field (see diff.py for what is normalised and how events are
matched).

Two comparisons:
* tusd against tusd (a second run): proves the normalisation leaves no noise, so every
  difference reported for tusgate is real. It must find none.
* tusd against tusgate: every difference must be declared in ALLOWED with its reason; anything
  else fails, and so does an event only one of them sent.

The counts are printed at the end of the pytest run (terminal summary) for the closing note.
"""

from __future__ import annotations

import os

import pytest

from conftest import Servers
from diff import SECRET, Allowed, compare, run_steps
from recorder import HookRecorder, reject_pre_create_when

# Intentional differences between tusd and tusgate, each with the reason. Keep it short.
ALLOWED = [
    # Not pre-create: a hook that checks the token itself (the granite docs' handler) needs it
    # there, and tusgate checks it before pre-create anyway.
    Allowed("tokened", r"post-create|post-receive|pre-finish|post-finish",
            r"Event\.Upload\.MetaData\.upload-token",
            "tusgate checks the upload-token itself and never stores it (README, differences "
            "from tusd's hooks, 1), so the hooks after pre-create do not see it"),
    Allowed("tokened", r"post-create|post-receive|pre-finish|post-finish",
            r"Event\.Upload\.Storage\.(Asset|AssetPath|AssetURL)",
            "a tokened upload is published to {assets-dir}/{visibility}/{key}: Storage also "
            "says where that asset is (README, differences from tusd's hooks, 2)"),
    Allowed("tokened", r"post-create|post-receive|pre-finish|post-finish",
            r"Event\.Upload\.Storage\.Key",
            "S3 only: tusgate creates a tokened upload's multipart upload at its asset key "
            "({visibility}/{key}, src/storage/s3.rs), so Key names the object the upload "
            "becomes, as tusd's Key does for its id-named object"),
]

REJECT = dict(status=422, body="rejected by the hook", headers={"X-Hook": "rejected"})
SUMMARIES: list[str] = []


def record(kind: str, servers: Servers, file_hooks: bool = False, s3=None,
           tls=None) -> tuple[list, dict]:
    """All steps against a fresh `kind` server, with HTTP hooks or (file_hooks) a -hooks-dir,
    storing on disk or (s3) in a fresh bucket of that S3 server, serving https with `tls` (a
    conftest.Certificate: tusd's -tls-certificate/-tls-key)."""
    extra = ["-tls-certificate", str(tls.cert), "-tls-key", str(tls.key)] if tls else []
    with HookRecorder() as recorder:
        recorder.policy = reject_pre_create_when("reject", "yes", **REJECT)
        server = servers.start(kind, None if file_hooks else recorder.url, *extra,
                               file_hooks=recorder if file_hooks else None, s3=s3,
                               env={"UPLOAD_SECRET": SECRET} if kind == "tusgate" else None)
        previous = os.environ.get("REQUESTS_CA_BUNDLE")
        if tls:   # requests (and step_request_shape) trust the test's certificate
            os.environ["REQUESTS_CA_BUNDLE"] = str(tls.cert)
        try:
            return run_steps(server, recorder)
        finally:
            if tls:
                if previous is None:
                    os.environ.pop("REQUESTS_CA_BUNDLE", None)
                else:
                    os.environ["REQUESTS_CA_BUNDLE"] = previous
            server.process.stop()


@pytest.fixture(scope="module")
def tusd_run(tmp_path_factory):
    group = Servers(tmp_path_factory.mktemp("tusd-reference"))
    try:
        yield record("tusd", group)
    finally:
        group.stop_all()


@pytest.fixture(scope="module")
def tusd_file_run(tmp_path_factory):
    group = Servers(tmp_path_factory.mktemp("tusd-file-reference"))
    try:
        yield record("tusd", group, file_hooks=True)
    finally:
        group.stop_all()


def test_tusd_sends_the_hooks_each_step_expects(tusd_run):
    """The reference itself: tusd sent at least the hooks each step waits for (otherwise the
    steps test nothing)."""
    events, runs = tusd_run
    for step, run in runs.items():
        assert run.error is None, f"tusd: step {step}: {run.error}"
        for (label, type_), count in run.expect.items():
            got = sum(1 for e in events if e.step == step and e.label == label and e.type == type_)
            assert got >= count, f"tusd: step {step}: {count} x {type_} for {label}, got {got}"


def test_tusd_against_itself_is_noise_free(tusd_run, servers):
    events, _ = tusd_run
    again, runs = record("tusd", servers)
    result = compare(events, again, [], runs)
    SUMMARIES.append(result.summary("hook differential, tusd v2.10.1 vs tusd v2.10.1 (control)"))
    assert result.clean and not result.differences, result.summary("tusd vs tusd")


def test_tusd_against_tusgate(tusd_run, servers):
    events, _ = tusd_run
    theirs, runs = record("tusgate", servers)
    result = compare(events, theirs, ALLOWED, runs)
    SUMMARIES.append(result.summary("hook differential, tusd v2.10.1 vs tusgate"))
    assert result.clean, result.summary("tusd vs tusgate")


def test_tusd_against_tusgate_file_hooks(tusd_file_run, servers):
    """The same steps with -hooks-dir: one executable per event, the request on stdin, TUS_ID,
    TUS_SIZE and TUS_OFFSET in the environment, the hooks dir as working directory, the
    response on stdout (the bridge scripts forward all of it to the recorder)."""
    events, reference_runs = tusd_file_run
    assert all(run.error is None for run in reference_runs.values()), reference_runs
    assert any(e.fields.get("file-hook.env-tus_id") == "<U>" for e in events), \
        "the bridge recorded no TUS_ID: the file-hook comparison would be vacuous"
    theirs, runs = record("tusgate", servers, file_hooks=True)
    result = compare(events, theirs, ALLOWED, runs)
    SUMMARIES.append(result.summary("hook differential (file hooks), tusd v2.10.1 vs tusgate"))
    assert result.clean, result.summary("tusd vs tusgate, file hooks")


@pytest.fixture(scope="module")
def tusd_s3_run(tmp_path_factory, moto):
    group = Servers(tmp_path_factory.mktemp("tusd-s3-reference"))
    try:
        yield record("tusd", group, s3=moto)
    finally:
        group.stop_all()


def test_tusd_against_tusgate_s3(tusd_s3_run, servers, moto):
    """The same steps with both servers storing in S3 (moto; tusd's s3store, tusgate's S3
    backend, the same -s3-bucket/-s3-endpoint flags): Storage is {Type: s3store, Bucket, Key}."""
    events, reference_runs = tusd_s3_run
    assert all(run.error is None for run in reference_runs.values()), reference_runs
    assert any(e.fields.get("Event.Upload.Storage.Type") == "s3store" for e in events)
    theirs, runs = record("tusgate", servers, s3=moto)
    result = compare(events, theirs, ALLOWED, runs)
    SUMMARIES.append(result.summary("hook differential (S3, moto), tusd v2.10.1 vs tusgate"))
    assert result.clean, result.summary("tusd vs tusgate, S3")


@pytest.fixture(scope="module")
def tusd_tls_run(tmp_path_factory, certificate):
    group = Servers(tmp_path_factory.mktemp("tusd-tls-reference"))
    try:
        yield record("tusd", group, tls=certificate)
    finally:
        group.stop_all()


def test_tusd_against_tusgate_tls(tusd_tls_run, servers, certificate):
    """The same steps over https: both servers started with tusd's -tls-certificate and
    -tls-key (a self-signed certificate made by the test) plus the hook flags, the unchanged
    tusd command line with TLS and HTTP hooks."""
    events, reference_runs = tusd_tls_run
    assert all(run.error is None for run in reference_runs.values()), reference_runs
    theirs, runs = record("tusgate", servers, tls=certificate)
    result = compare(events, theirs, ALLOWED, runs)
    SUMMARIES.append(result.summary("hook differential (https), tusd v2.10.1 vs tusgate"))
    assert result.clean, result.summary("tusd vs tusgate, https")
