"""Comparing a tusgate response with nginx's, and the deliberate differences.

`compare(reference, got)` lists what differs.  For 200/206/304 that is the
status, the header set below and the body (multipart bodies part by part,
because nginx's boundary is a per-process counter).  For 416 it is the status
and the range/validator/cache headers: the body, Content-Type and
Content-Length of a 416 belong to the error page.  For every other status only
the status is compared: error page bodies differ on purpose.

`DELIBERATE` is the table of decided differences.  Each entry recognises its
case (from the request, the file it lands on and nginx's answer) and turns
nginx's answer into what tusgate must send instead.
"""

import calendar
import time
from dataclasses import dataclass
from typing import Callable

from ngxmodel import etag
from rawhttp import Response, boundary_of, multipart_parts

COMPARED = ("Content-Type", "Content-Length", "Content-Range", "ETag", "Last-Modified",
            "Cache-Control", "Accept-Ranges")
COMPARED_416 = ("Content-Range", "ETag", "Last-Modified", "Cache-Control", "Accept-Ranges")
CACHE_CONTROL = {"public": "public, max-age=86400, immutable", "private": "private, no-store"}


@dataclass
class StatusOnly:
    """An expectation that only constrains the status."""
    allowed: frozenset

    def __str__(self):
        return "/".join(str(s) for s in sorted(self.allowed))


@dataclass
class Context:
    """What the harness knows about a request besides nginx's answer."""
    method: str
    headers: dict          # lower-cased name -> first value
    uri: bytes | None      # nginx's $uri, None when nginx rejects the request line
    loc: str | None        # health / public / private / catchall / root
    kind: str | None       # see ngxmodel.classify
    st: object             # os.stat_result of the file (following links) or None
    link: str | None       # $secure_link for private requests: "", "0" or "1"
    target: bytes = b""    # the raw request target as sent

    @property
    def authorised(self) -> bool:
        """nginx gets past the access checks and looks at the file system."""
        if self.method == "TRACE":
            return False
        return self.loc == "public" or (self.loc == "private" and self.link == "1")


def compare(ref, got: Response, method: str) -> list:
    if isinstance(ref, StatusOnly):
        return [] if got.status in ref.allowed else [f"status {ref} vs {got.status}"]
    if ref.status != got.status:
        return [f"status {ref.status} vs {got.status}"]
    if ref.status == 416:
        return _header_diffs(ref, got, COMPARED_416, multipart=False)
    if ref.status not in (200, 206, 304):
        return []
    ref_b, got_b = boundary_of(ref.get("Content-Type")), boundary_of(got.get("Content-Type"))
    multipart = bool(ref_b and got_b)
    diffs = _header_diffs(ref, got, COMPARED, multipart)
    if multipart:
        if method != "HEAD":
            diffs += _multipart_diffs(ref, ref_b, got, got_b)
    elif ref.body_sha256() != got.body_sha256():
        diffs.append(f"body sha256 {ref.body_sha256()[:12]}… vs {got.body_sha256()[:12]}… "
                     f"({_len(ref)} vs {len(got.body)} bytes)")
    return diffs


def _len(resp: Response) -> str:
    return "?" if resp.body is None else str(len(resp.body))


def _header_diffs(ref: Response, got: Response, names, multipart: bool) -> list:
    diffs = []
    for name in names:
        a, b = ref.all(name), got.all(name)
        if multipart and name == "Content-Type":
            a, b = [_unbound(v) for v in a], [_unbound(v) for v in b]
        if multipart and name == "Content-Length":
            continue      # depends on the boundary length; checked against the body instead
        if a != b:
            diffs.append(f"{name}: {_show(a)} vs {_show(b)}")
    return diffs


def _unbound(content_type: str) -> str:
    boundary = boundary_of(content_type)
    return content_type.replace(boundary, "<boundary>") if boundary else content_type


def _show(values: list) -> str:
    return " + ".join(repr(v) for v in values) if values else "(none)"


def _multipart_diffs(ref: Response, ref_b: str, got: Response, got_b: str) -> list:
    diffs = []
    for who, resp in (("tusgate", got), ("reference", ref)):
        if resp.body is not None and resp.get("Content-Length") not in (None, str(len(resp.body))):
            diffs.append(f"{who}: Content-Length {resp.get('Content-Length')} "
                         f"but {len(resp.body)} body bytes")
    try:
        ref_parts = multipart_parts(ref.body, ref_b)
    except ValueError as e:
        return diffs + [f"reference multipart unparsable: {e}"]
    try:
        got_parts = multipart_parts(got.body, got_b)
    except ValueError as e:
        return diffs + [f"multipart body unparsable: {e}"]
    if ref_parts != got_parts:
        diffs.append(f"multipart parts {ref_parts} vs {got_parts}")
    return diffs


# --- HTTP validators, as RFC 9110 reads them ----------------------------------

_DATE_FORMATS = ("%a, %d %b %Y %H:%M:%S GMT",    # IMF-fixdate
                 "%A, %d-%b-%y %H:%M:%S GMT",    # RFC 850
                 "%a %b %d %H:%M:%S %Y")         # asctime


def http_date(value: str | None):
    if value is None:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return calendar.timegm(time.strptime(value, fmt))
        except ValueError:
            pass
    return None


def inm_matches(value: str, current: str) -> bool:
    """If-None-Match, weak comparison."""
    if value.strip() == "*":
        return True
    for tag in value.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == current:
            return True
    return False


def _not_modified(ctx: Context) -> Response:
    return Response(304, [("Last-Modified", time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                          time.gmtime(ctx.st.st_mtime))),
                          ("ETag", etag(ctx.st)),
                          ("Cache-Control", CACHE_CONTROL[ctx.loc])], b"")


# --- the deliberate differences -------------------------------------------------

def _directory(ctx: Context, exp):
    # A path ending in `/` names a directory even when nginx resolved it to an index.html.
    names_dir = ctx.kind == "dir" or (ctx.uri is not None and ctx.uri.endswith(b"/") and ctx.kind == "file")
    if names_dir and ctx.authorised and ctx.method != "TRACE":
        readable = ctx.method in ("GET", "HEAD", "POST")
        return StatusOnly(frozenset({403} if readable else {403, 405}))
    return None


def _symlink_escape(ctx: Context, exp):
    if ctx.kind == "symlink-escape" and ctx.authorised:
        return StatusOnly(frozenset({404} if ctx.method in ("GET", "HEAD") else {404, 405}))
    return None


def _special_file(ctx: Context, exp):
    if (ctx.kind in ("fifo", "device", "unreadable") and isinstance(exp, Response)
            and 400 <= exp.status < 500):
        return StatusOnly(frozenset(range(400, 500)))
    return None


def _served_file(ctx: Context, exp) -> bool:
    return (ctx.method in ("GET", "HEAD") and ctx.authorised and ctx.kind == "file"
            and isinstance(exp, Response) and exp.status in (200, 206, 416))


def _inm_precedence(ctx: Context, exp):
    inm = ctx.headers.get("if-none-match")
    if inm is not None and _served_file(ctx, exp) and inm_matches(inm, etag(ctx.st)):
        return _not_modified(ctx)
    return None


def _ims_later(ctx: Context, exp):
    ims = http_date(ctx.headers.get("if-modified-since"))
    if ("if-none-match" not in ctx.headers and ims is not None and _served_file(ctx, exp)
            and ims > int(ctx.st.st_mtime)):
        return _not_modified(ctx)
    return None


def _health(ctx: Context, exp):
    if ctx.uri == b"/health" and isinstance(exp, Response) and exp.status == 200:
        return exp.replace_headers("Content-Type", ["text/plain"])
    return None


def _no_cache_control_on_416(ctx: Context, exp):
    if isinstance(exp, Response) and exp.status == 416:
        return exp.replace_headers("Cache-Control", [])
    return None


# Bytes RFC 3986 never allows raw in a request target. nginx tolerates them; tusgate's HTTP
# parser (hyper) answers 400 before any routing. Every HTTP client percent-encodes them.
_UNSAFE_RAW = set(b'"<>`') | set(range(0x80, 0x100))


def _raw_unsafe_bytes(ctx: Context, exp):
    path = ctx.target.split(b"?", 1)[0]
    if any(b in _UNSAFE_RAW for b in path) and not _valid_utf8(path):
        return StatusOnly(frozenset({400}))
    if any(b in set(b'"<>`') for b in path):
        return StatusOnly(frozenset({400}))
    return None


def _valid_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _outside_assets(ctx: Context, exp):
    """Outside the assets mount the tus side answers, as tusd would: a greeting on `/`, 404
    elsewhere (nginx's default root answers 404/405 from its static module)."""
    if ctx.loc == "root" and ctx.method != "TRACE":
        greeting = ctx.uri == b"/" and ctx.method in ("GET", "HEAD")
        return StatusOnly(frozenset({200} if greeting else {404}))
    return None


def _rfc_preconditions(ctx: Context, exp):
    """RFC 9110 §13.2.2 where nginx deviates: If-Unmodified-Since is ignored when If-Match is
    present or when it is not a valid date, and an If-Modified-Since that is not a valid date is
    ignored (nginx's parser accepts `DATE; length=N`)."""
    if not (ctx.method in ("GET", "HEAD") and ctx.authorised and ctx.kind == "file" and isinstance(exp, Response)):
        return None
    ius = ctx.headers.get("if-unmodified-since")
    if exp.status == 412 and ius is not None and (http_date(ius) is None or "if-match" in ctx.headers):
        return StatusOnly(frozenset({200, 206}))
    ims = ctx.headers.get("if-modified-since")
    if exp.status == 304 and ims is not None and http_date(ims) is None and "if-none-match" not in ctx.headers:
        return StatusOnly(frozenset({200, 206}))
    return None


def _health_not_conditional(ctx: Context, exp):
    if ctx.uri == b"/health" and isinstance(exp, Response) and exp.status == 304:
        return StatusOnly(frozenset({200}))
    return None


@dataclass
class Deliberate:
    name: str
    reason: str
    expect: Callable    # (Context, nginx's answer so far) -> what tusgate sends, or None


DELIBERATE = [
    Deliberate("directory",
               "any directory is 403 with or without '/': no 301, no index.html (nginx: 301 to dir/, then 403 or index.html)",
               _directory),
    Deliberate("symlink-escape",
               "symlinks leaving their prefix are not followed: 404 (nginx follows them and publishes private files)",
               _symlink_escape),
    Deliberate("special-file",
               "FIFOs, devices and unreadable files: only 'both answer 4xx' is compared",
               _special_file),
    Deliberate("inm-precedence",
               "If-None-Match decides alone and If-Modified-Since is ignored (RFC 9110; nginx needs both to match)",
               _inm_precedence),
    Deliberate("ims-later",
               "If-Modified-Since later than Last-Modified is 304 (RFC 9110; nginx: exact match only)",
               _ims_later),
    Deliberate("health-content-type",
               "/health sends one Content-Type: text/plain (nginx sends application/octet-stream and text/plain)",
               _health),
    Deliberate("raw-unsafe-bytes",
               "raw \", <, >, ` or non-UTF-8 bytes in the request target: 400 from tusgate's HTTP parser (clients percent-encode them)",
               _raw_unsafe_bytes),
    Deliberate("outside-assets",
               "outside /assets/ the tus side answers as tusd does: a greeting on /, 404 elsewhere (nginx: its default root)",
               _outside_assets),
    Deliberate("rfc9110-preconditions",
               "invalid dates are ignored and If-Match overrides If-Unmodified-Since (RFC 9110; nginx evaluates both)",
               _rfc_preconditions),
    Deliberate("health-not-conditional",
               "/health always answers 200 OK (nginx applies If-None-Match: * to its `return 200`)",
               _health_not_conditional),
    Deliberate("no-cache-control-on-416",
               "416 carries no Cache-Control (nginx adds it: the range filter turns a 200 into 416 after add_header ran)",
               _no_cache_control_on_416),
]


def _material(before, after) -> bool:
    """Does a rule change the expectation at all?"""
    if isinstance(after, StatusOnly):
        return not isinstance(before, Response) or before.status not in after.allowed
    return isinstance(before, StatusOnly) or bool(compare(before, after, "GET"))


@dataclass
class Verdict:
    kind: str            # same / deliberate / unexpected
    diffs: list          # against nginx
    rules: list          # deliberate rules that changed the expectation
    expected: object     # the expectation after the rules
    quirk_copied: bool   # identical to nginx where a rule says tusgate should differ


def judge(ctx: Context, nginx: Response, got: Response) -> Verdict:
    expected, rules = nginx, []
    for rule in DELIBERATE:
        new = rule.expect(ctx, expected)
        if new is not None and _material(expected, new):
            expected, rules = new, rules + [rule.name]
    diffs = compare(nginx, got, ctx.method)
    if not diffs:
        return Verdict("same", [], rules, expected, quirk_copied=bool(rules))
    if rules and not compare(expected, got, ctx.method):
        return Verdict("deliberate", diffs, rules, expected, False)
    return Verdict("unexpected", diffs, rules, expected, False)
