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

from dataclasses import dataclass

from conftest import Servers
from diff import SECRET, Allowed, compare, run_steps
from recorder import EVENTS, HookRecorder, reject_pre_create_when

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
    Allowed("tokened", r"pre-finish|post-finish",
            r"Event\.Upload\.Storage\.Path",
            "disk: once a tokened upload is published its bytes are the asset file, and Path "
            "says where the bytes are now (README, differences from tusd's hooks, 2); tusd's "
            "names the upload file, which the granite post-finish hook then moved"),
    Allowed("tokened", r"post-create|post-receive|pre-finish|post-finish",
            r"Event\.Upload\.Storage\.Key",
            "S3 only: tusgate creates a tokened upload's multipart upload at its asset key "
            "({visibility}/{key}, src/storage/s3.rs), so Key names the object the upload "
            "becomes, as tusd's Key does for its id-named object"),
]

REJECT = dict(status=422, body="rejected by the hook", headers={"X-Hook": "rejected"})
SUMMARIES: list[str] = []


@dataclass
class Recording:
    events: list
    runs: dict
    metrics: dict[str, float | None]   # tusd_hook_{invocations,errors}_total per hook type

    def check_reference(self) -> None:
        """tusd itself: every step did what the client expected."""
        bad = {step: run.error for step, run in self.runs.items() if run.error}
        assert not bad, f"tusd: steps went wrong: {bad}"


def hook_metrics(server) -> dict[str, float | None]:
    """The hook counters of /metrics after all steps (tusd's names, kept by tusgate)."""
    return {f"{name}{{hooktype={event}}}": server.metric(name, hooktype=event)
            for name in ("tusd_hook_invocations_total", "tusd_hook_errors_total")
            for event in EVENTS}


def compare_recordings(reference: Recording, candidate: Recording, allowed, title: str):
    result = compare(reference.events, candidate.events, allowed, candidate.runs)
    metric_diffs = {k: (v, candidate.metrics.get(k)) for k, v in reference.metrics.items()
                    if candidate.metrics.get(k) != v}
    summary = result.summary(title) + (
        f"\n  /metrics hook counters: {len(reference.metrics)} compared, "
        f"{len(metric_diffs)} different" + "".join(f"\n    {k}: tusd={a} other={b}"
                                                  for k, (a, b) in metric_diffs.items()))
    SUMMARIES.append(summary)
    return result, metric_diffs, summary


def record(kind: str, servers: Servers, file_hooks: bool = False, s3=None,
           tls=None) -> Recording:
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
            events, runs = run_steps(server, recorder)
            return Recording(events, runs, hook_metrics(server))
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
    tusd_run.check_reference()
    for step, run in tusd_run.runs.items():
        for (label, type_), count in run.expect.items():
            got = sum(1 for e in tusd_run.events
                      if e.step == step and e.label == label and e.type == type_)
            assert got >= count, f"tusd: step {step}: {count} x {type_} for {label}, got {got}"


def test_tusd_against_itself_is_noise_free(tusd_run, servers):
    again = record("tusd", servers)
    result, metrics, summary = compare_recordings(
        tusd_run, again, [], "hook differential, tusd v2.10.1 vs tusd v2.10.1 (control)")
    assert result.clean and not result.differences and not metrics, summary


def test_tusd_against_tusgate(tusd_run, servers):
    result, metrics, summary = compare_recordings(
        tusd_run, record("tusgate", servers), ALLOWED,
        "hook differential, tusd v2.10.1 vs tusgate")
    assert result.clean and not metrics, summary


def test_tusd_against_tusgate_file_hooks(tusd_file_run, servers):
    """The same steps with -hooks-dir: one executable per event, the request on stdin, TUS_ID,
    TUS_SIZE and TUS_OFFSET in the environment, the hooks dir as working directory, the
    response on stdout (the bridge scripts forward all of it to the recorder)."""
    tusd_file_run.check_reference()
    assert any(e.fields.get("file-hook.env-tus_id") == "<U>" for e in tusd_file_run.events), \
        "the bridge recorded no TUS_ID: the file-hook comparison would be vacuous"
    result, metrics, summary = compare_recordings(
        tusd_file_run, record("tusgate", servers, file_hooks=True), ALLOWED,
        "hook differential (file hooks), tusd v2.10.1 vs tusgate")
    assert result.clean and not metrics, summary


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
    tusd_s3_run.check_reference()
    assert any(e.fields.get("Event.Upload.Storage.Type") == "s3store" for e in tusd_s3_run.events)
    result, metrics, summary = compare_recordings(
        tusd_s3_run, record("tusgate", servers, s3=moto), ALLOWED,
        "hook differential (S3, moto), tusd v2.10.1 vs tusgate")
    assert result.clean and not metrics, summary


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
    tusd_tls_run.check_reference()
    result, metrics, summary = compare_recordings(
        tusd_tls_run, record("tusgate", servers, tls=certificate), ALLOWED,
        "hook differential (https), tusd v2.10.1 vs tusgate")
    assert result.clean and not metrics, summary
