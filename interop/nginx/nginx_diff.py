#!/usr/bin/env python3
"""Differential test of tusgate's downloads against a real nginx.

nginx runs the granite-assets operator template (public files openly,
private files behind secure_link); tusgate serves the same storage tree.
Every request of the corpus goes to both, and every difference is either
listed in compare.DELIBERATE or reported.  The recorded vectors of
secure_link_vectors.json (server "A") are replayed against tusgate as well.

Environment:
  TUSGATE_BIN            the tusgate binary (required)
  NGINX_DIFF_SELFTEST=1  compare nginx with a second nginx instead (harness check)
  NGINX_DIFF_KEEP=1      keep the temp dir (fixture, configs, logs)
  NGINX_DIFF_VECTORS     another secure_link_vectors.json

Exit status: 0 when nothing unexpected differs, 1 otherwise, 2 when the
servers cannot be started.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter

import compare
import corpus
import fixture
import ngxmodel
import servers
from rawhttp import HTTPError, Response, boundary_of, build_request, exchange

HERE = os.path.dirname(os.path.abspath(__file__))


def send(port: int, case: corpus.Case):
    """The response, or a string describing why there is none."""
    request = build_request(case.method, case.target, case.headers, case.body,
                            case.version, case.host)
    try:
        return exchange(port, request, head=case.method == "HEAD")
    except (OSError, HTTPError, ValueError) as e:       # TimeoutError is an OSError
        return f"{type(e).__name__}: {e}"


def context(case: corpus.Case, storage: str, now: float) -> compare.Context:
    headers = {}
    for name, value in case.headers:
        headers.setdefault(name.lower(), value)
    parsed = ngxmodel.normalise(case.target)
    if parsed is None or (case.version == "HTTP/1.1" and case.host is None):
        return compare.Context(case.method, headers, None, None, None, None, None, case.target)
    uri, args = parsed
    loc, kind, st = ngxmodel.classify(storage, uri)
    link = ngxmodel.secure_link(args, uri, now) if loc == "private" else None
    return compare.Context(case.method, headers, uri, loc, kind, st, link, case.target)


def describe(case: corpus.Case) -> str:
    target = repr(case.target)[2:-1]
    if len(target) > 160:
        target = f"{target[:150]}…({len(case.target)} bytes)"
    extra = "".join(f" [{n}: {v}]" for n, v in case.headers)
    if case.version != "HTTP/1.1":
        extra += f" [{case.version}]"
    return f"{case.method} {target}{extra}"


def show(resp) -> str:
    if isinstance(resp, str):
        return resp
    return str(resp.status)


# --- harness self-checks -----------------------------------------------------

def check_uri_model(case, probe_port) -> str | None:
    """The harness signs and classifies with ngxmodel; nginx's own $uri must agree."""
    got = send(probe_port, corpus.Case(case.id, case.group, case.target))
    if isinstance(got, str):
        return f"probe failed: {got}"
    parsed = ngxmodel.normalise(case.target)
    if parsed is None:
        return None if got.status == 400 else f"model rejects, nginx $uri={got.body!r}"
    if got.status != 200 or got.body != parsed[0]:
        return f"model $uri={parsed[0]!r}, nginx {got.status} {got.body[:200]!r}"
    return None


def check_secure_link_model(ctx, nginx: Response) -> str | None:
    if ctx.loc != "private" or ctx.method == "TRACE":
        return None
    want = {"": 403, "0": 410}.get(ctx.link)
    if want is not None and nginx.status != want:
        return f"model $secure_link={ctx.link!r} but nginx answered {nginx.status}"
    if ctx.link == "1" and (nginx.status == 410 or
                            (nginx.status == 403 and ctx.kind in ("file", "missing"))):
        return f"model $secure_link='1' but nginx answered {nginx.status}"
    return None


# --- running ---------------------------------------------------------------

class Tally:
    def __init__(self, label: str):
        self.label = label
        self.counts = Counter()
        self.by_rule = Counter()
        self.quirks = []

    def add(self, case, verdict: compare.Verdict):
        self.counts[verdict.kind] += 1
        if verdict.kind == "deliberate":
            self.by_rule.update(verdict.rules)
        if verdict.quirk_copied:
            self.quirks.append((case, verdict))

    def summary(self) -> str:
        c = self.counts
        return (f"{self.label}: {c['same']} same, {c['deliberate']} deliberately different, "
                f"{c['unexpected']} unexpected")


def _expected_status(verdict) -> str:
    expected = verdict.expected
    return str(expected if isinstance(expected, compare.StatusOnly) else expected.status)


def report_case(case, nginx, got, verdict, verbose, out):
    line = f"{case.id}: {describe(case)}"
    if verdict.kind == "unexpected":
        out.append(f"DIFF {line}\n     nginx vs candidate: " + "; ".join(verdict.diffs))
        if verdict.rules:
            out.append(f"     deliberate rules {verdict.rules} expect {_expected_status(verdict)}")
    elif verbose:
        rules = f" ({', '.join(verdict.rules)})" if verdict.rules else ""
        out.append(f"{verdict.kind.upper():10} {line} -> {show(nginx)} / {show(got)}{rules}")


def run_corpus(cases, storage, ref_port, probe_port, cand_port, args, notes):
    tally = Tally("nginx-diff")
    out, errors, harness = [], [], []
    now = time.time()
    for case in cases:
        ctx = context(case, storage, now)
        problem = check_uri_model(case, probe_port)
        if problem:
            harness.append(f"HARNESS {case.id}: {describe(case)}: {problem}")
        nginx = send(ref_port, case)
        got = send(cand_port, case)
        if isinstance(nginx, str) or isinstance(got, str):
            errors.append(f"ERROR {case.id}: {describe(case)}: nginx {show(nginx)}, "
                          f"{args.candidate} {show(got)}")
            continue
        problem = check_secure_link_model(ctx, nginx)
        if problem:
            harness.append(f"HARNESS {case.id}: {describe(case)}: {problem}")
        if case.doc is not None and nginx.status != case.doc:
            notes.append(f"note: {case.id}: nginx answered {nginx.status}, "
                         f"granite-and-nginx.md records {case.doc}")
        verdict = compare.judge(ctx, nginx, got)
        tally.add(case, verdict)
        report_case(case, nginx, got, verdict, args.verbose, out)
    return tally, out, errors, harness


def recorded_response(resp: dict) -> Response:
    """A recorded response; the body is known when the recording kept its text."""
    body, text = None, resp.get("body_text")
    if text is not None and hashlib.sha256(text.encode()).hexdigest() == resp["body_sha256"]:
        body = text.encode()
    return Response(resp["status"], [tuple(h) for h in resp["headers"]], body, resp["body_sha256"])


def replay_vectors(vectors, storage, ref_port, cand_port, args, notes):
    """The recorded server-A vectors against the candidate, with the same rules."""
    tally = Tally("vectors")
    out, errors = [], []
    now = time.time()
    privileged = os.geteuid() == 0
    for v in vectors["vectors"]:
        if v["server"] != "A":
            continue
        if args.only and not re.search(args.only, "vector_" + v["id"]):
            continue
        target = (bytes.fromhex(v["request_target_hex"]) if "request_target_hex" in v
                  else v["request_target"].encode())
        case = corpus.Case("vector_" + v["id"], "vector", target, v["method"],
                           tuple(tuple(h) for h in v["request_headers"]))
        ctx = context(case, storage, now)
        recorded = recorded_response(v["response"])
        live = send(ref_port, case)
        got = send(cand_port, case)
        if isinstance(live, str) or isinstance(got, str):
            errors.append(f"ERROR {case.id}: {describe(case)}: nginx {show(live)}, "
                          f"{args.candidate} {show(got)}")
            continue
        reference = recorded
        drift = compare.compare(recorded, live, case.method)
        if drift:
            if privileged and ctx.kind == "unreadable":
                # Recorded without root; as root nginx reads a mode-000 file.
                reference = live
                notes.append(f"note: {case.id}: recorded without root ({recorded.status}); "
                             f"as root nginx answers {live.status}, which is the reference here")
            else:
                notes.append(f"note: {case.id}: live nginx differs from the recording: "
                             + "; ".join(drift))
        if recorded.body is None and boundary_of(recorded.get("Content-Type")):
            reference = live          # multipart without a recorded body: use the live one
        verdict = compare.judge(ctx, reference, got)
        tally.add(case, verdict)
        report_case(case, reference, got, verdict, args.verbose, out)
    return tally, out, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per case")
    parser.add_argument("--only", metavar="REGEX", help="run only cases whose id matches")
    parser.add_argument("--list", action="store_true", help="print the corpus and exit")
    args = parser.parse_args()

    cases = corpus.build()
    if args.only:
        cases = [c for c in cases if re.search(args.only, c.id)]
    if args.list:
        for case in cases:
            print(f"{case.group:12} {case.id:48} {describe(case)}")
        print(f"{len(cases)} cases")
        return 0

    selftest = os.environ.get("NGINX_DIFF_SELFTEST") == "1"
    binary = os.environ.get("TUSGATE_BIN")
    if not selftest and not binary:
        print("nginx-diff: TUSGATE_BIN is not set (path of the tusgate binary)", file=sys.stderr)
        return 2
    args.candidate = "nginx#2" if selftest else "tusgate"

    # SIGTERM (e.g. from `timeout`) unwinds through `finally` like Ctrl-C does.  `timeout`
    # signals both the child and its process group, so ignore the second delivery instead
    # of letting it abort the clean-up.
    def on_sigterm(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.exit(143)

    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    vectors_path = os.environ.get("NGINX_DIFF_VECTORS", os.path.join(HERE, "secure_link_vectors.json"))
    with open(vectors_path) as f:
        vectors = json.load(f)
    tmp = tempfile.mkdtemp(prefix="nginx-diff-")
    running = []
    try:
        built = fixture.build(tmp, vectors)
        storage = built["storage"]
        notes = list(built["notes"])
        try:
            reference = servers.Nginx("nginx-ref", tmp, storage, with_probe=True)
            running.append(reference)
            reference.start()
            if selftest:
                candidate = servers.Nginx("nginx-candidate", tmp, storage)
            else:
                candidate = servers.Tusgate(binary, tmp, storage)
            running.append(candidate)
            candidate.start()
        except RuntimeError as e:
            print(f"nginx-diff: cannot start the servers: {e}", file=sys.stderr)
            return 2
        if selftest:
            # Shift the second nginx's multipart boundary counter so the
            # boundary normalisation is really exercised.
            send(candidate.port, corpus.Case("warmup", "", b"/assets/public/hello.txt",
                                             headers=(("Range", "bytes=0-0,2-2"),)))
        print(f"nginx-diff: reference nginx on 127.0.0.1:{reference.port} (uri probe "
              f":{reference.probe_port}), {args.candidate} on 127.0.0.1:{candidate.port}, "
              f"{len(cases)} cases")

        tally, out, errors, harness = run_corpus(cases, storage, reference.port,
                                                 reference.probe_port, candidate.port, args, notes)
        vtally, vout, verrors = replay_vectors(vectors, storage, reference.port, candidate.port,
                                               args, notes)

        for line in notes + harness + errors + out + vout:
            print(line)
        if not selftest:
            # Not failures: the candidate copies nginx where a difference was decided.
            for case, verdict in tally.quirks + vtally.quirks:
                print(f"QUIRK-COPIED {case.id}: {describe(case)} answers like nginx although "
                      f"{verdict.rules} expect {_expected_status(verdict)}")
        print(f"deliberate differences by rule: corpus {dict(tally.by_rule)}, "
              f"vectors {dict(vtally.by_rule)}")
        quirks = len(tally.quirks) + len(vtally.quirks)
        print(f"errors: {len(errors) + len(verrors)}, harness problems: {len(harness)}, "
              f"quirks copied: {quirks}, elapsed {time.monotonic() - started:.1f}s")
        print(tally.summary())
        print(vtally.summary())
        failed = (tally.counts["unexpected"] or vtally.counts["unexpected"]
                  or errors or verrors or harness)
        return 1 if failed else 0
    finally:
        for server in reversed(running):
            server.stop()
        if os.environ.get("NGINX_DIFF_KEEP") == "1":
            print(f"nginx-diff: kept {tmp}")
        else:
            for rel in fixture.MODE_000_DIRS:
                try:
                    os.chmod(os.path.join(tmp, "storage", rel), 0o755)
                except OSError:
                    pass
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
