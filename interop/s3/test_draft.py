"""The IETF resumable upload draft (draft-ietf-httpbis-resumable-upload, issue 13) end to end on
S3: the request sequences Apple's URLSession sends (interop version 8, raw HTTP, so the test
knows exactly which bytes were sent and acknowledged) and tus-js-client's draft modes
(`protocol: 'ietf-draft-03'` / `'ietf-draft-05'`, interop 5 / 6) upload, resume and publish
through tusgate on moto and on SeaweedFS, every object checked by sha256 as the bucket holds it.

What tusgate decided where the draft leaves room (src/draft/mod.rs): the granite token travels in
`Upload-Metadata`; an upload whose offset reaches its known length is complete; a `?1` append
without a known length makes the length what was stored, which on S3 is a path of its own (the
length is saved after the bytes, and the remainder becomes the last part whatever its size). The
104 interim response is off by default and not used here: creation with `Upload-Complete: ?0`
first is what stays resumable without it.

Part size is tusgate's default, 8 MiB; appends of 6 MiB therefore leave tails, cross S3's 5 MiB
part minimum and fill parts across requests.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
import requests

from conftest import (
    HTTP_TIMEOUT_S, NODE_TIMEOUT_S, STOP_TIMEOUT_S, TUS, KiB, MiB, assert_download, get,
    patch_chunks, plain_asset_url, random_bytes, sign_download, sign_upload, streamed_patch,
    tus_create, tus_js_ok, tus_js_resume, tus_offset, unique_key, upload_id, wait_for,
    write_source,
)

TUS_JS_ABORT = Path(__file__).resolve().parent / "tus_js_abort.mjs"

V8 = "8"
PARTIAL_UPLOAD = "application/partial-upload"
CONTENT_TYPE = "application/pdf"
STEP = 6 * MiB  # one ?0 append: more than S3's 5 MiB minimum, less than tusgate's 8 MiB part


# ---------------------------------------------------------------------------
# Draft requests (raw HTTP, as URLSession sends them)
# ---------------------------------------------------------------------------

def sf_bool(value: bool) -> str:
    return "?1" if value else "?0"


def draft_create(files_url: str, body: bytes | Iterable[bytes] = b"", *, complete: bool,
                 metadata: str | None = None, length: int | None = None,
                 content_type: str | None = None, version: str = V8) -> requests.Response:
    """POST on the collection. `body` as bytes goes with its Content-Length, as an iterable
    chunked (no length: what a streamed body is)."""
    headers = {"Upload-Draft-Interop-Version": version, "Upload-Complete": sf_bool(complete)}
    if metadata is not None:
        headers["Upload-Metadata"] = metadata
    if length is not None:
        headers["Upload-Length"] = str(length)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.post(files_url, data=body, headers=headers, timeout=HTTP_TIMEOUT_S)


def created(files_url: str, resp: requests.Response, *, complete: bool, offset: int,
            version: str = V8) -> str:
    """The upload URL of a 201 creation whose state must be (`complete`, `offset`)."""
    assert resp.status_code == 201, f"POST: {resp.status_code} {resp.text[:300]}"
    assert resp.headers["Upload-Draft-Interop-Version"] == version
    assert_state(resp, complete, offset)
    return urllib.parse.urljoin(files_url, resp.headers["Location"])


def append_headers(offset: int, complete: bool, version: str = V8) -> dict[str, str]:
    return {"Upload-Draft-Interop-Version": version, "Content-Type": PARTIAL_UPLOAD,
            "Upload-Offset": str(offset), "Upload-Complete": sf_bool(complete)}


def draft_append(url: str, offset: int, body: bytes | Iterable[bytes], *, complete: bool,
                 version: str = V8) -> requests.Response:
    """PATCH `application/partial-upload`; bytes with Content-Length, an iterable chunked."""
    return requests.patch(url, data=body, headers=append_headers(offset, complete, version),
                          timeout=HTTP_TIMEOUT_S)


def assert_state(resp: requests.Response, complete: bool, offset: int) -> None:
    assert resp.headers.get("Upload-Complete") == sf_bool(complete), \
        f"Upload-Complete {resp.headers.get('Upload-Complete')!r}, expected {sf_bool(complete)}"
    assert int(resp.headers["Upload-Offset"]) == offset, \
        f"Upload-Offset {resp.headers['Upload-Offset']}, expected {offset}"


def appended(resp: requests.Response, *, complete: bool, offset: int) -> int:
    assert resp.status_code == 204, f"PATCH: {resp.status_code} {resp.text[:300]}"
    assert_state(resp, complete, offset)
    return offset


def retrieve_offset(url: str, version: str = V8) -> tuple[int, bool, int | None]:
    """HEAD (offset retrieval): (offset, complete, length or None), with the draft's headers
    checked."""
    resp = requests.head(url, headers={"Upload-Draft-Interop-Version": version},
                         timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 204, f"HEAD {url}: {resp.status_code}"
    assert resp.headers.get("Cache-Control") == "no-store"
    assert resp.headers["Upload-Draft-Interop-Version"] == version
    complete = resp.headers["Upload-Complete"]
    assert complete in ("?0", "?1"), complete
    length = resp.headers.get("Upload-Length")
    return (int(resp.headers["Upload-Offset"]), complete == "?1",
            int(length) if length is not None else None)


def append_steps(url: str, data: bytes, start: int, end: int, step: int = STEP,
                 version: str = V8) -> int:
    """Appends data[start:end] in `step`-sized `?0` appends, each acknowledged exactly (the
    upload must not be complete yet at `end`)."""
    offset = start
    while offset < end:
        piece = data[offset:min(offset + step, end)]
        resp = draft_append(url, offset, piece, complete=False, version=version)
        assert resp.headers.get("Upload-Draft-Interop-Version") == version
        offset = appended(resp, complete=False, offset=offset + len(piece))
    return offset


def pieces_of(data: bytes, size: int = 1 * MiB) -> Iterator[bytes]:
    """`data` in `size` pieces (a chunked request body; nothing for empty data)."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def cut_append(url: str, offset: int, data: bytes, declared: int, *, reset: bool) -> None:
    """A draft append declaring `declared` bytes whose client sends only `data` and then goes
    away: closes its socket (FIN) or resets it (RST), without reading an answer."""
    parsed = urllib.parse.urlsplit(url)
    head = (f"PATCH {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in append_headers(offset, False).items())
            + f"Content-Length: {declared}\r\n\r\n").encode()
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=HTTP_TIMEOUT_S)
    try:
        sock.sendall(head + data)
        if reset:
            # SO_LINGER on with a zero timeout: close() sends RST, not FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


def published(bucket, key: str, data: bytes, visibility: str = "private",
              parts: int | None = None) -> None:
    """The object is at `<visibility>/<key>`, byte-exact with the token's type, and nothing of
    the upload's machinery is left (tails, open multipart uploads). `parts`, when given, is how
    it was written: 0 = one PutObject, N = a multipart upload of N parts (its ETag ends in
    `-N` on both servers), which says which S3 path the upload took."""
    head = bucket.assert_object(f"{visibility}/{key}", data, CONTENT_TYPE)
    bucket.assert_no_leftovers()
    if parts is not None:
        etag = head["ETag"].strip('"')
        written = int(etag.rsplit("-", 1)[1]) if "-" in etag else 0
        assert written == parts, f"object written in {written} parts (ETag {etag}), not {parts}"


def start_upload(servers, bucket, name: str, **tusgate_kwargs):
    """A tokened tusgate, a key and its signed metadata."""
    tusgate = servers.tusgate(bucket, **tusgate_kwargs)
    key = unique_key(name)
    return tusgate, key, sign_upload(key, CONTENT_TYPE, "private")


# ---------------------------------------------------------------------------
# URLSession-shaped sequences
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("size, parts", [(300 * KiB + 5, 0), (13 * MiB + 5, 2)],
                         ids=["300KiB-single-put", "13MiB-multipart"])
def test_optimistic_creation_publishes(servers, bucket, size, parts):
    """URLSession's first request: POST `Upload-Complete: ?1` with the whole body and its
    Content-Length → 201 `?1`, the asset published byte-exact, downloadable signed."""
    tusgate, key, metadata = start_upload(servers, bucket, "optimistic.pdf")
    data = random_bytes(size, "optimistic")
    resp = draft_create(tusgate.files_url, data, complete=True, metadata=metadata,
                        content_type=CONTENT_TYPE)
    url = created(tusgate.files_url, resp, complete=True, offset=size)
    assert "Upload-Limit" not in resp.headers, "a complete upload has no limits left"

    published(bucket, key, data, parts=parts)
    assert retrieve_offset(url) == (size, True, size)
    assert_download(sign_download(tusgate, key, "private"), data, CONTENT_TYPE)


def test_careful_creation_then_one_append(servers, bucket):
    """POST `?0` without a body (what stays resumable without a 104), then one append with
    `Upload-Complete: ?1` carrying everything."""
    tusgate, key, metadata = start_upload(servers, bucket, "careful.pdf")
    size = 9 * MiB + 17
    data = random_bytes(size, "careful")
    resp = draft_create(tusgate.files_url, complete=False, metadata=metadata, length=size)
    url = created(tusgate.files_url, resp, complete=False, offset=0)
    assert retrieve_offset(url) == (0, False, size)

    appended(draft_append(url, 0, data, complete=True), complete=True, offset=size)
    published(bucket, key, data, parts=2)
    assert retrieve_offset(url) == (size, True, size)


def test_multipart_upload_in_appends(servers, bucket):
    """Several `?0` appends of 6 MiB (each over S3's 5 MiB minimum, none a whole 8 MiB part:
    parts fill across requests, tails carry the rest), the offset retrieved between them, then
    the last one `?1`."""
    tusgate, key, metadata = start_upload(servers, bucket, "appends.pdf")
    size = 3 * STEP + 1 * MiB + 333
    data = random_bytes(size, "appends")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, complete=False, metadata=metadata, length=size),
                  complete=False, offset=0)
    offset = 0
    for _ in range(3):
        offset = append_steps(url, data, offset, offset + STEP)
        assert retrieve_offset(url) == (offset, False, size)
    assert bucket.multipart_uploads(), "18 MiB in: parts are in an open multipart upload"
    appended(draft_append(url, offset, data[offset:], complete=True), complete=True, offset=size)
    published(bucket, key, data, parts=3)


def test_interop_9_sequence(servers, bucket):
    """The same sequences in interop version 9 (drafts -12 to -15, what the next URLSession will
    send): optimistic creation, and careful creation with 6 MiB appends, a deferred length and a
    chunked `?1` append."""
    tusgate, key, metadata = start_upload(servers, bucket, "v9 optimistic.pdf")
    data = random_bytes(300 * KiB + 1, "v9-optimistic")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, data, complete=True, metadata=metadata,
                               version="9"),
                  complete=True, offset=len(data), version="9")
    published(bucket, key, data, parts=0)
    assert retrieve_offset(url, version="9") == (len(data), True, len(data))

    key = unique_key("v9 careful.pdf")
    metadata = sign_upload(key, CONTENT_TYPE, "private")
    size = 2 * STEP + 3 * MiB + 9
    data = random_bytes(size, "v9-careful")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, complete=False, metadata=metadata,
                               version="9"),
                  complete=False, offset=0, version="9")
    offset = append_steps(url, data, 0, 2 * STEP, version="9")
    assert retrieve_offset(url, version="9") == (offset, False, None)
    resp = draft_append(url, offset, pieces_of(data[offset:]), complete=True, version="9")
    appended(resp, complete=True, offset=size)
    published(bucket, key, data, parts=2)


def test_last_byte_completes_even_when_the_append_says_not_complete(servers, bucket):
    """tusgate's decision "complete = every byte of the length": an append that stores the last
    byte of a declared length is answered `?1` and publishes, though it said `?0`."""
    tusgate, key, metadata = start_upload(servers, bucket, "implicit.pdf")
    size = STEP + 2 * MiB + 1
    data = random_bytes(size, "implicit")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, data[:STEP], complete=False,
                               metadata=metadata, length=size),
                  complete=False, offset=STEP)
    appended(draft_append(url, STEP, data[STEP:], complete=False), complete=True, offset=size)
    published(bucket, key, data)


# ---------------------------------------------------------------------------
# Interrupted appends: the client goes away, or tusgate dies
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("reset", [False, True], ids=["client-closes", "client-resets"])
def test_interrupted_append_resumes_from_retrieved_offset(servers, bucket, reset):
    """An append of 14 MiB breaks off after 7 MiB + 4321 bytes (the client closes or resets its
    connection mid-body). HEAD gives the offset, which keeps every acknowledged byte and nothing
    that was not sent (after a close, everything sent: tusgate keeps what arrived), and a `?1`
    append from there publishes the upload byte-exact."""
    tusgate, key, metadata = start_upload(servers, bucket, "interrupted.pdf")
    size = STEP + 14 * MiB + 3
    data = random_bytes(size, "interrupted")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, complete=False, metadata=metadata, length=size),
                  complete=False, offset=0)
    acked = append_steps(url, data, 0, STEP)
    sent = acked + 7 * MiB + 4321
    cut_append(url, acked, data[acked:sent], size - acked, reset=reset)

    if not reset:
        # Every byte of a closed connection was delivered: tusgate must commit them all. Wait
        # for that in the bucket before the HEAD, which would otherwise hand the upload over
        # while the append still reads its last bytes from the socket.
        wait_for("every byte sent committed",
                 lambda: stored_state(bucket, url)[0] == sent, timeout=30)
    offset, complete, length = retrieve_offset(url)
    assert (complete, length) == (False, size)
    if reset:
        assert acked <= offset <= sent, f"offset {offset}: acknowledged {acked}, sent {sent}"
    else:
        assert offset == sent, f"offset {offset} after a clean cut: sent {sent}, acked {acked}"

    appended(draft_append(url, offset, data[offset:], complete=True), complete=True, offset=size)
    published(bucket, key, data)


@pytest.mark.parametrize("part_reached_s3", [False, True],
                         ids=["inside-the-tail", "after-a-part-reached-s3"])
def test_sigkill_mid_append_then_resume(servers, bucket, part_reached_s3):
    """tusgate is SIGKILLed during a `?1` append (6 MiB acknowledged before it): before the
    running append fills a part, or once its first part is in S3 but not yet committed. After a
    restart on the same port, HEAD says an offset within [acknowledged, sent], and a `?1` append
    from there publishes byte-exact with nothing left over (the multipart upload was committed
    when it was created, so the resumed append completes that one)."""
    tusgate, key, metadata = start_upload(servers, bucket, "killed.pdf")
    size = STEP + 12 * MiB + 99
    data = random_bytes(size, "killed")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, complete=False, metadata=metadata, length=size),
                  complete=False, offset=0)
    acked = append_steps(url, data, 0, STEP)
    kill_at = 4 * MiB if part_reached_s3 else 1 * MiB
    killed: list[int] = []

    def crash(sent: int) -> None:
        if sent != kill_at:
            return
        if part_reached_s3:
            uploads = wait_for("multipart upload created", bucket.multipart_uploads)
            wait_for("first part stored", lambda: bucket.uploaded_parts(*uploads[0]) >= 1)
        tusgate.kill()
        killed.append(sent)

    status, answer = streamed_patch(url, acked, pieces_of(data[acked:]), crash, 30,
                                    headers=append_headers(acked, True))
    assert killed == [kill_at]
    assert status is None, f"a killed server cannot answer, got {status} {answer}"

    tusgate.start()
    offset, complete, length = retrieve_offset(url)
    assert (complete, length) == (False, size)
    assert acked <= offset <= acked + kill_at, \
        f"offset {offset} after the crash: acknowledged {acked}, sent {acked + kill_at}"
    appended(draft_append(url, offset, data[offset:], complete=True), complete=True, offset=size)
    published(bucket, key, data)


# ---------------------------------------------------------------------------
# Deferred length: the length is what the completing request implies, or what arrived
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("steps, final_size, chunked, parts", [
    (2, 3 * MiB + 123, False, 2),
    (2, 512 * KiB + 5, False, 2),
    (2, 512 * KiB + 7, True, 2),
    (2, 2 * MiB + 7, True, 2),
    (2, 5 * MiB + 7, True, 3),
    (2, 0, True, 2),
    (0, 300 * KiB + 1, True, 0),
    (1, 1 * MiB + 1, True, 0),
], ids=[
    "content-length-last-part-over-5MiB",     # 12 MiB + 3 MiB: parts 8 + 7 MiB
    "content-length-last-part-under-5MiB",    # 12 MiB + 0.5 MiB: parts 8 + 4.5 MiB
    "chunked-last-part-under-5MiB",           # parts 8 + 4.5 MiB
    "chunked-last-part-over-5MiB",            # parts 8 + 6 MiB
    "chunked-body-fills-a-part",              # 12 + 5 MiB: parts 8 + 8 + 1 MiB
    "chunked-empty-final-append",             # every byte while deferred; ?1 with nothing
    "chunked-only-append-single-put",         # 300 KiB, never a part: one PUT
    "chunked-after-a-tail-single-put",        # 6 + 1 MiB, never a part: one PUT
])
def test_deferred_length(servers, bucket, steps, final_size, chunked, parts):
    """Creation `?0` without Upload-Length, `steps` appends of 6 MiB `?0`, then a final `?1`
    append: with Content-Length (the length is offset + Content-Length, known before its
    bytes), or chunked (the length is what arrived, saved after the bytes)."""
    tusgate, key, metadata = start_upload(servers, bucket, "deferred.pdf")
    size = steps * STEP + final_size
    data = random_bytes(size, f"deferred-{steps}-{final_size}")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, complete=False, metadata=metadata),
                  complete=False, offset=0)
    offset = append_steps(url, data, 0, steps * STEP)
    assert retrieve_offset(url) == (offset, False, None), "no length known yet"

    tail = data[offset:]
    body = pieces_of(tail) if chunked else tail
    appended(draft_append(url, offset, body, complete=True), complete=True, offset=size)
    published(bucket, key, data, parts=parts)
    assert retrieve_offset(url) == (size, True, size)


def chunked_append_until_killed(url: str, offset: int, pieces: Iterable[bytes],
                                between: Callable[[int], None]) -> None:
    """A draft `?1` append with a chunked body (no length anywhere), sent piece by piece,
    calling `between(bytes sent)` after each piece; whatever `between` does to the server (kill
    it), the body is never ended and no answer is expected."""
    parsed = urllib.parse.urlsplit(url)
    head = (f"PATCH {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in append_headers(offset, True).items())
            + "Transfer-Encoding: chunked\r\n\r\n").encode()
    with socket.create_connection((parsed.hostname, parsed.port), timeout=HTTP_TIMEOUT_S) as sock:
        sock.sendall(head)
        sent = 0
        for piece in pieces:
            try:
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            except OSError:
                return
            sent += len(piece)
            between(sent)


def stored_state(bucket, url: str) -> tuple[int, int | None]:
    """(bytes committed, length or None) as the `.info` object (the commit point) says."""
    info = bucket.info(f"{upload_id(url)}.info")
    backend = info["TusgateBackend"]
    committed = sum(p["size"] for p in backend.get("parts", [])) + \
        (backend.get("tail") or {}).get("size", 0)
    return committed, None if info.get("SizeIsDeferred") else info["Size"]


def test_sigkill_mid_chunked_final_append_keeps_the_length_open(servers, bucket):
    """tusgate is SIGKILLed while a chunked `?1` append of a deferred-length upload streams (its
    first part already in S3): nothing may have fixed the length, since the body never ended.
    After a restart HEAD says an offset within [acknowledged, sent] and no length, and a
    chunked `?1` append from there publishes byte-exact."""
    tusgate, key, metadata = start_upload(servers, bucket, "killed deferred.pdf")
    size = STEP + 12 * MiB + 99
    data = random_bytes(size, "killed-deferred")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, complete=False, metadata=metadata),
                  complete=False, offset=0)
    acked = append_steps(url, data, 0, STEP)
    kill_at = 4 * MiB
    killed: list[int] = []

    def crash(sent: int) -> None:
        if sent == kill_at:
            uploads = wait_for("multipart upload created", bucket.multipart_uploads)
            wait_for("first part stored", lambda: bucket.uploaded_parts(*uploads[0]) >= 1)
            tusgate.kill()
            killed.append(sent)

    chunked_append_until_killed(url, acked, pieces_of(data[acked:]), crash)
    assert killed == [kill_at]

    tusgate.start()
    offset, complete, length = retrieve_offset(url)
    assert (complete, length) == (False, None), "the length stays open"
    assert acked <= offset <= acked + kill_at, \
        f"offset {offset} after the crash: acknowledged {acked}, sent {acked + kill_at}"
    appended(draft_append(url, offset, pieces_of(data[offset:]), complete=True), complete=True,
             offset=size)
    published(bucket, key, data, parts=3)


def test_crash_after_the_chunked_final_append_publishes_on_restart(servers, bucket):
    """The length a chunked `?1` append fixes is saved after its bytes and before the publish:
    tusgate crashes right there (`TUSGATE_CRASH_AT=upload:stored`, before the multipart upload
    is completed). The state in the bucket then holds every byte and the length, and the
    restarted tusgate publishes the upload by itself (startup recovery), byte-exact."""
    failpoint = {"TUSGATE_CRASH_AT": "upload:stored"}
    tusgate, key, metadata = start_upload(servers, bucket, "crash deferred.pdf", env=failpoint)
    size = 2 * STEP + 77   # parts of 8 MiB and 4 MiB + 77 (the last one under S3's minimum)
    data = random_bytes(size, "crash-deferred")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, complete=False, metadata=metadata),
                  complete=False, offset=0)
    offset = append_steps(url, data, 0, STEP)
    with pytest.raises(requests.ConnectionError):
        draft_append(url, offset, pieces_of(data[offset:]), complete=True)
    tusgate.process.proc.wait(timeout=STOP_TIMEOUT_S)
    assert "crashing at upload:stored" in tusgate.process.log_text()
    assert stored_state(bucket, url) == (size, size), "every byte and the length are committed"
    assert f"private/{key}" not in bucket.keys()

    tusgate.start(drop_env=failpoint)
    wait_for("published by the restarted tusgate",
             lambda: f"private/{key}" in bucket.keys() and not bucket.multipart_uploads(), 30)
    published(bucket, key, data, parts=2)
    assert retrieve_offset(url) == (size, True, size)


@pytest.mark.parametrize("size, parts", [(300 * KiB + 9, 0), (13 * MiB + 9, 2)],
                         ids=["300KiB-single-put", "13MiB-multipart"])
def test_chunked_optimistic_creation(servers, bucket, size, parts):
    """A creation `?1` whose body is chunked (a streamed body: URLSession with an input stream):
    no length anywhere, the upload's length is what arrived."""
    tusgate, key, metadata = start_upload(servers, bucket, "streamed.pdf")
    data = random_bytes(size, "streamed")
    resp = draft_create(tusgate.files_url, pieces_of(data), complete=True, metadata=metadata)
    url = created(tusgate.files_url, resp, complete=True, offset=size)
    published(bucket, key, data, parts=parts)
    assert retrieve_offset(url) == (size, True, size)


# ---------------------------------------------------------------------------
# Problem documents and cancellation, with state in the bucket (parts, tails)
# ---------------------------------------------------------------------------

def test_problems_leave_the_upload_resumable(servers, bucket):
    """With a part and a tail in the bucket: an append at a stale offset is the
    mismatching-offset problem (409, the resource's offset) and stores nothing; a `?1` append
    ending short of the declared length is the inconsistent-length problem, refused up front
    when its Content-Length says so, its bytes kept when a chunked body shows it only at its
    end. The upload then completes byte-exact, without the stale bytes."""
    tusgate, key, metadata = start_upload(servers, bucket, "problems.pdf")
    size = 3 * STEP + 4321
    data = random_bytes(size, "problems")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, complete=False, metadata=metadata, length=size),
                  complete=False, offset=0)
    offset = append_steps(url, data, 0, 2 * STEP)

    stale = draft_append(url, STEP, random_bytes(MiB, "stale"), complete=False)
    assert stale.status_code == 409, f"stale offset: {stale.status_code} {stale.text[:300]}"
    assert stale.headers["Content-Type"] == "application/problem+json"
    assert_state(stale, False, offset)
    problem = stale.json()
    assert problem["type"].endswith("#mismatching-upload-offset"), problem
    assert (problem["expected-offset"], problem["provided-offset"]) == (offset, STEP), problem
    assert retrieve_offset(url) == (offset, False, size)

    def inconsistent(resp: requests.Response) -> None:
        assert resp.status_code == 400, f"short ?1 append: {resp.status_code} {resp.text[:300]}"
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert resp.json()["type"].endswith("#inconsistent-upload-length"), resp.text

    # Content-Length says up front that the append ends short: refused before its body.
    inconsistent(draft_append(url, offset, data[offset:offset + STEP], complete=True))
    assert retrieve_offset(url) == (offset, False, size), "a refused append stores nothing"
    # A chunked body shows it only at its end: what arrived is kept.
    inconsistent(draft_append(url, offset, pieces_of(data[offset:offset + STEP]), complete=True))
    offset += STEP
    assert retrieve_offset(url) == (offset, False, size), "what arrived is kept"

    appended(draft_append(url, offset, data[offset:], complete=True), complete=True, offset=size)
    published(bucket, key, data, parts=3)


def test_cancel_removes_state_tail_and_multipart_upload(servers, bucket):
    """DELETE (draft §"Upload Cancellation") of an upload holding a part and a tail leaves
    nothing in the bucket: no state, no tail, no open multipart upload, no object."""
    tusgate, key, metadata = start_upload(servers, bucket, "cancelled.pdf")
    size = 3 * STEP
    data = random_bytes(size, "cancel")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, complete=False, metadata=metadata, length=size),
                  complete=False, offset=0)
    append_steps(url, data, 0, 2 * STEP)
    assert bucket.multipart_uploads() and any(".part." in k for k in bucket.keys()), \
        "the upload holds a part and a tail before it is cancelled"

    resp = requests.delete(url, headers={"Upload-Draft-Interop-Version": V8},
                           timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 204, f"DELETE: {resp.status_code} {resp.text[:300]}"
    assert bucket.keys() == [], f"left after cancellation: {bucket.keys()}"
    assert bucket.multipart_uploads() == []
    resp = requests.head(url, headers={"Upload-Draft-Interop-Version": V8},
                         timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 404, f"HEAD after cancellation: {resp.status_code}"


# ---------------------------------------------------------------------------
# One upload, two protocols
# ---------------------------------------------------------------------------

def test_tus_upload_continued_by_the_draft(servers, bucket):
    """tusgate's decision "one upload, two protocols": created and half written with tus 1.0,
    the offset retrieved and an append made with the draft, finished with tus 1.0."""
    tusgate, key, metadata = start_upload(servers, bucket, "tus then draft.pdf")
    size = 3 * STEP + 99
    data = random_bytes(size, "tus-then-draft")
    url = tus_create(tusgate.files_url, size, metadata)
    offset = patch_chunks(url, data, 0, STEP, STEP)
    assert retrieve_offset(url) == (offset, False, size)
    offset = append_steps(url, data, offset, 2 * STEP)
    assert tus_offset(url) == offset
    assert patch_chunks(url, data, offset, size, STEP) == size
    published(bucket, key, data, parts=3)


def test_draft_upload_resumed_by_tus_js_client_tus_1(servers, bucket, tmp_path):
    """The other way: created and half written with the draft (careful creation with
    Upload-Length, as tus 1.0 needs a length to resume), finished by tus-js-client speaking
    tus 1.0."""
    tusgate, key, metadata = start_upload(servers, bucket, "draft then tus.pdf")
    size = 2 * STEP + 3 * MiB + 1
    data = random_bytes(size, "draft-then-tus")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, data[:STEP], complete=False,
                               metadata=metadata, length=size),
                  complete=False, offset=STEP)
    offset = append_steps(url, data, STEP, 2 * STEP)
    assert tus_offset(url) == offset
    tus_js_resume(tusgate, url, data, tmp_path, metadata)
    published(bucket, key, data)


# ---------------------------------------------------------------------------
# Upload tokens
# ---------------------------------------------------------------------------

def test_tokened_upload_publishes_and_never_serves_its_bytes(servers, bucket):
    """A granite token in Upload-Metadata: the asset lands at `public/<key>` with the token's
    type and is served at `/assets/public/<key>`; the upload URL never serves the bytes (with
    the draft's header a GET is offset retrieval, without it tus 1.0's 403), and the state in
    the bucket does not keep the token."""
    tusgate = servers.tusgate(bucket)
    key = unique_key("public photo.pdf")
    metadata = sign_upload(key, CONTENT_TYPE, "public")
    size = STEP + 3 * MiB + 11
    data = random_bytes(size, "tokened")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, data[:STEP], complete=False, metadata=metadata),
                  complete=False, offset=STEP)
    appended(draft_append(url, STEP, data[STEP:], complete=True), complete=True, offset=size)

    published(bucket, key, data, visibility="public")
    assert_download(plain_asset_url(tusgate, "public", key), data, CONTENT_TYPE)

    resp = get(url, headers={"Upload-Draft-Interop-Version": V8})
    assert resp.status_code == 204 and resp.content == b"", \
        f"draft GET on the upload: {resp.status_code}, {len(resp.content)} bytes"
    assert resp.headers["Upload-Complete"] == "?1"
    resp = get(url, headers=TUS)
    assert resp.status_code == 403 and "ERR_UPLOAD_NOT_READABLE" in resp.text, \
        f"tus GET on the upload: {resp.status_code} {resp.text[:200]}"
    info = bucket.info(f"{upload_id(url)}.info")
    assert "upload-token" not in info["MetaData"], "the token is not kept in the state"


def test_forged_token_stores_nothing(servers, bucket):
    """A token signed for another key is refused before anything is stored."""
    tusgate = servers.tusgate(bucket)
    metadata = sign_upload(unique_key("signed.pdf"), CONTENT_TYPE, "private")
    forged = ", ".join(
        f"asset-key {base64.b64encode(b'someone/else.pdf').decode()}"
        if pair.strip().startswith("asset-key ") else pair.strip()
        for pair in metadata.split(","))
    assert forged != metadata
    data = random_bytes(300 * KiB, "forged")
    resp = draft_create(tusgate.files_url, data, complete=True, metadata=forged)
    assert 400 <= resp.status_code < 500, f"forged token: {resp.status_code} {resp.text[:200]}"
    assert resp.headers["Upload-Draft-Interop-Version"] == V8
    assert bucket.keys() == [], f"a refused creation stored {bucket.keys()}"
    resp = draft_create(tusgate.files_url, data, complete=True)
    assert 400 <= resp.status_code < 500, f"no token: {resp.status_code} {resp.text[:200]}"
    assert bucket.keys() == []


# ---------------------------------------------------------------------------
# Two instances on one bucket
# ---------------------------------------------------------------------------

def test_draft_requests_hop_between_instances(servers, bucket):
    """Created on A (with its first 6 MiB), offset retrieved and appended on B, retrieved and
    completed on A: the state object is the commit point for the draft as for tus 1.0."""
    a = servers.tusgate(bucket, "tusgate-a")
    b = servers.tusgate(bucket, "tusgate-b")
    key = unique_key("hopping.pdf")
    metadata = sign_upload(key, CONTENT_TYPE, "private")
    size = 3 * STEP + 777
    data = random_bytes(size, "hopping")
    url_a = created(a.files_url,
                    draft_create(a.files_url, data[:STEP], complete=False, metadata=metadata,
                                 length=size),
                    complete=False, offset=STEP)
    url_b = b.upload_url(url_a)

    assert retrieve_offset(url_b) == (STEP, False, size), "B reads A's committed offset"
    offset = append_steps(url_b, data, STEP, 2 * STEP)
    assert retrieve_offset(url_a) == (offset, False, size), "A reads B's committed offset"
    offset = append_steps(url_a, data, offset, 3 * STEP)
    assert retrieve_offset(url_b) == (offset, False, size)
    appended(draft_append(url_b, offset, data[offset:], complete=True), complete=True,
             offset=size)
    published(bucket, key, data)
    assert retrieve_offset(url_a) == (size, True, size), "A sees the upload B completed"


def test_append_on_b_takes_over_one_streaming_into_a(servers, bucket):
    """A draft append into A stalls with its connection open; the client retrieves the offset
    on B and appends there. B takes the upload over, A's append stops by itself long before any
    timeout, and none of A's bytes (different on purpose) reach the object."""
    a = servers.tusgate(bucket, "tusgate-a")
    b = servers.tusgate(bucket, "tusgate-b")
    key = unique_key("taken over.pdf")
    metadata = sign_upload(key, CONTENT_TYPE, "private")
    size = 2 * STEP + 5
    data = random_bytes(size, "takeover")
    stale = random_bytes(2 * MiB, "stale bytes sent to A")
    url_a = created(a.files_url,
                    draft_create(a.files_url, complete=False, metadata=metadata, length=size),
                    complete=False, offset=0)
    url_b = b.upload_url(url_a)
    resumed: list[int] = []

    def stall_and_resume_on_b(sent: int) -> None:
        if sent == len(stale) // 2:
            assert retrieve_offset(url_b) == (0, False, size), "nothing A received is committed"
            resumed.append(append_steps(url_b, data, 0, STEP))

    status, answer = streamed_patch(url_a, 0, [stale[:MiB], stale[MiB:]], stall_and_resume_on_b,
                                    timeout=20, headers=append_headers(0, False))
    assert resumed == [STEP], "the first append on B was acknowledged"
    assert (status, "ERR_UPLOAD_INTERRUPTED" in answer) == (400, True), (status, answer)
    offset, _, _ = retrieve_offset(url_b)
    assert offset == STEP, f"A's stopped append moved the offset to {offset}"
    appended(draft_append(url_b, STEP, data[STEP:], complete=True), complete=True, offset=size)
    published(bucket, key, data)


# ---------------------------------------------------------------------------
# tus-js-client's draft modes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["ietf-draft-03", "ietf-draft-05"])
def test_tus_js_client_draft_chunked(servers, bucket, tmp_path, protocol):
    """tus-js-client 4.3.1 in a draft mode (creation `?0` with Upload-Length, then 3 MiB
    appends, the last `?1`), the token in Upload-Metadata as granite hands it over."""
    tusgate, key, metadata = start_upload(servers, bucket, "tus-js.pdf")
    data = random_bytes(19 * MiB + 4321, f"tus-js-{protocol}")
    url = tus_js_ok(tusgate.files_url, write_source(tmp_path, data),
                    {"Upload-Metadata": metadata}, protocol=protocol, chunkSize=3 * MiB)
    published(bucket, key, data)
    assert retrieve_offset(url) == (len(data), True, len(data))


def test_tus_js_client_draft_resume_after_abort(servers, bucket, tmp_path):
    """tus-js-client (`ietf-draft-05`, 4 MiB appends) is aborted as its third append starts
    (its first progress event past 8 MiB: two appends acknowledged, the third cut off), then
    resumes the upload URL (`uploadUrl`: HEAD, append from the offset) and must finish that
    same upload."""
    tusgate, key, metadata = start_upload(servers, bucket, "aborted.pdf")
    data = random_bytes(19 * MiB + 4321, "tus-js-abort")
    source = write_source(tmp_path, data)
    headers = {"Upload-Metadata": metadata}
    options = {"protocol": "ietf-draft-05", "chunkSize": 4 * MiB}
    done = subprocess.run([os.environ.get("NODE_BIN", "node"), str(TUS_JS_ABORT),
                           tusgate.files_url, str(source), json.dumps(headers),
                           json.dumps(options), str(8 * MiB + 1)],
                          capture_output=True, text=True, timeout=NODE_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    lines = done.stdout.strip().splitlines()
    assert lines, f"tus_js_abort.mjs printed nothing: {done.stderr[-2000:]}"
    result = json.loads(lines[-1])
    assert result.get("aborted"), f"tus-js-client was not aborted mid-upload: {result}"
    url = result["url"]

    offset, complete, length = retrieve_offset(url)
    assert (complete, length) == (False, len(data))
    assert 8 * MiB <= offset < len(data), f"offset {offset} after the abort"
    resumed = tus_js_ok(tusgate.files_url, source, headers, uploadUrl=url, **options)
    assert resumed == url, f"tus-js-client finished {resumed}, not the resumed {url}"
    published(bucket, key, data)


def test_tus_js_client_draft_resume_after_sigkill(servers, bucket, tmp_path):
    """tusgate dies (SIGKILL) 3 MiB into a raw draft append that follows 6 MiB acknowledged;
    restarted on the same port, tus-js-client (`ietf-draft-05`, 4 MiB appends) resumes the
    upload URL from the retrieved offset and finishes that same upload byte-exact."""
    tusgate, key, metadata = start_upload(servers, bucket, "killed for tus-js.pdf")
    size = 19 * MiB + 4321
    data = random_bytes(size, "tus-js-sigkill")
    url = created(tusgate.files_url,
                  draft_create(tusgate.files_url, complete=False, metadata=metadata, length=size),
                  complete=False, offset=0)
    acked = append_steps(url, data, 0, STEP)

    def crash(sent: int) -> None:
        if sent == 3 * MiB:
            tusgate.kill()

    status, answer = streamed_patch(url, acked, pieces_of(data[acked:]), crash, 30,
                                    headers=append_headers(acked, True))
    assert status is None, f"a killed server cannot answer, got {status} {answer}"
    tusgate.start()
    offset, complete, _ = retrieve_offset(url)
    assert not complete and acked <= offset <= acked + 3 * MiB, f"offset {offset}"

    resumed = tus_js_ok(tusgate.files_url, write_source(tmp_path, data),
                        {"Upload-Metadata": metadata}, uploadUrl=url,
                        protocol="ietf-draft-05", chunkSize=4 * MiB)
    assert resumed == url, f"tus-js-client finished {resumed}, not the resumed {url}"
    published(bucket, key, data)
