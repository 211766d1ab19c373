"""Issue 9 ("Trust") on the S3 backend: findings 1 and 2, end to end against moto and SeaweedFS.

conformance/trust.rs pins both on local disk; these are the same promises on S3, where the
bytes live in a multipart upload, a tail object and finally the object at
`<visibility>/<key>`.

Finding 1 — an upload URL never reads a tokened upload's bytes: `GET /files/<id>` of a
tokened upload (public or private, multipart) is 403 `ERR_UPLOAD_NOT_READABLE` before it is
complete, once it is published, and after a newer upload has replaced the object at its key;
the upload token is neither echoed by HEAD nor kept in the `.info` object; HEAD still says
`Upload-Offset == Upload-Length`. The asset itself is read through `/assets/...` (private:
signed only). Tokenless uploads keep tusd's GET.

Finding 2 — every finished upload is published: a client that sends a whole multi-part PATCH
and closes (FIN) or resets (RST) its connection right after the last byte, without reading
the answer, still gets its object published within VANISH_DEADLINE_S, with nothing left over;
and a server killed between committing the last byte and publishing (the `upload:stored`
failpoint, as an abort or as a SIGKILL while paused there) publishes it when restarted.
That the newest upload of a key wins across such a recovery is `test_newest_wins.py`.
"""

from __future__ import annotations

import base64
import fcntl
import socket
import struct
import termios
import time
import urllib.parse

import pytest
import requests

from conftest import (
    HTTP_TIMEOUT_S, STOP_TIMEOUT_S, TUS, MiB, Bucket, assert_download, get, patch_chunks,
    plain_asset_url, random_bytes, sha256, sign_download, sign_upload, streamed_patch,
    tus_create, unique_key, upload_id, wait_for,
)

# How long a vanished client's upload may take to appear in the bucket.
VANISH_DEADLINE_S = 20.0
NOT_READABLE = "ERR_UPLOAD_NOT_READABLE"
# (key name, token content type) per visibility.
NAMES = {"public": ("photo.png", "image/png"), "private": ("report.pdf", "application/pdf")}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def parse_metadata(value: str) -> dict[str, str]:
    """An Upload-Metadata header, decoded (a key without a value maps to "")."""
    pairs = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, _, encoded = item.partition(" ")
        pairs[key] = base64.b64decode(encoded.strip()).decode() if encoded.strip() else ""
    return pairs


def token_of(metadata: str) -> str:
    """The upload token inside an Upload-Metadata value built by `tusgate sign upload`."""
    return parse_metadata(metadata)["upload-token"]


def head(url: str) -> requests.Response:
    """HEAD, waiting out 423 (the upload is locked while its last PATCH is finished)."""
    def probe():
        resp = requests.head(url, headers=TUS, timeout=HTTP_TIMEOUT_S)
        return None if resp.status_code == 423 else resp
    return wait_for(f"HEAD {url} answers other than 423", probe)


def assert_head_complete_without_token(url: str, size: int) -> None:
    resp = head(url)
    assert resp.status_code == 200, f"HEAD {url}: {resp.status_code}"
    assert resp.headers["Upload-Offset"] == str(size), "HEAD must say the upload is complete"
    assert resp.headers["Upload-Length"] == str(size)
    metadata = parse_metadata(resp.headers.get("Upload-Metadata", ""))
    assert "upload-token" not in metadata, f"HEAD echoes the upload token: {metadata}"


def assert_not_readable(url: str, *contents: bytes) -> None:
    """GET on the upload URL (whole and ranged) is 403 ERR_UPLOAD_NOT_READABLE and carries
    none of `contents`."""
    for headers in ({}, {"Range": "bytes=0-1023"}):
        resp = get(url, headers=headers)
        assert resp.status_code == 403, \
            f"GET {url} {headers}: {resp.status_code}, {len(resp.content)} bytes"
        assert resp.text.startswith(NOT_READABLE), resp.text[:200]
        for data in contents:
            assert data[:64] not in resp.content, f"GET {url} {headers} leaks upload bytes"


def assert_info_has_no_token(bucket: Bucket, url: str, token: str) -> None:
    raw = bucket.read(f"{upload_id(url)}.info")
    assert b"upload-token" not in raw, f"the .info object keeps the upload-token: {raw[:500]!r}"
    assert token.encode() not in raw, "the .info object holds the token's value"
    assert base64.b64encode(token.encode()) not in raw, "the .info object holds the token"


def committed_bytes(bucket: Bucket, url: str) -> int:
    """The bytes the `.info` object (the commit point) says are stored: parts plus tail."""
    backend = bucket.info(f"{upload_id(url)}.info")["TusgateBackend"]
    tail = backend.get("tail") or {}
    return sum(part["size"] for part in backend.get("parts", [])) + tail.get("size", 0)


def phase(bucket: Bucket, url: str) -> str:
    return bucket.info(f"{upload_id(url)}.info").get("TusgatePhase", "Receiving")


def send_outstanding(sock: socket.socket) -> int:
    """Bytes this socket has sent that the peer's kernel has not acknowledged yet (Linux:
    SIOCOUTQ, unsent + unacknowledged)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def patch_and_vanish(url: str, offset: int, data: bytes, how: str) -> None:
    """One PATCH with the whole of `data`, then the connection is closed without reading a
    byte of the answer: `fin` closes right after `sendall` returns (the kernel still delivers
    what it buffered); `rst` waits until the server's kernel has acknowledged every byte (a
    reset discards what the client has not sent yet, which would make the upload legitimately
    incomplete) and then closes with SO_LINGER 0, which sends a RST."""
    parsed = urllib.parse.urlsplit(url)
    request = (f"PATCH {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
               "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
               f"Upload-Offset: {offset}\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=HTTP_TIMEOUT_S)
    try:
        sock.sendall(request)
        sock.sendall(data)
        if how == "rst":
            wait_for("the server acknowledges every byte sent",
                     lambda: send_outstanding(sock) == 0, timeout=HTTP_TIMEOUT_S)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


def wait_published(bucket: Bucket, object_key: str, url: str, data: bytes,
                   timeout: float) -> float:
    """Waits until `object_key` holds `data` and the upload's state says Published; returns
    how long that took. A wrong object fails at once; a timeout fails with what the bucket
    and HEAD say about the upload."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if object_key in bucket.keys():
            stored = bucket.read(object_key)
            assert sha256(stored) == sha256(data), \
                f"{object_key!r} holds other bytes ({len(stored)} vs {len(data)} sent)"
            if phase(bucket, url) == "Published":
                return time.monotonic() - start
        time.sleep(0.1)
    resp = requests.head(url, headers=TUS, timeout=HTTP_TIMEOUT_S)
    pytest.fail(f"{object_key!r} not published {timeout:.0f} s after the upload's last byte: "
                f"HEAD {resp.status_code} Upload-Offset {resp.headers.get('Upload-Offset')} of "
                f"{len(data)}; the .info object commits {committed_bytes(bucket, url)} bytes, "
                f"phase {phase(bucket, url)}; object present: {object_key in bucket.keys()}; "
                f"open multipart uploads: {len(bucket.multipart_uploads())}", pytrace=False)


# ---------------------------------------------------------------------------
# Finding 1: the upload URL never reads a tokened upload
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("visibility", ["private", "public"])
def test_trust_upload_url_never_reads_a_tokened_upload(servers, bucket, visibility):
    tusgate = servers.tusgate(bucket)
    name, content_type = NAMES[visibility]
    key = unique_key(name)
    object_key = f"{visibility}/{key}"
    size = 13 * MiB + 4321   # one 8 MiB part, then the rest as the last part
    data = random_bytes(size, f"trust-f1/{visibility}")
    metadata = sign_upload(key, content_type, visibility)
    token = token_of(metadata)

    url = tus_create(tusgate.files_url, size, metadata)
    assert_info_has_no_token(bucket, url, token)
    assert_not_readable(url)

    # Halfway: a part in the open multipart upload, a tail object.
    patch_chunks(url, data, 0, 9 * MiB, 9 * MiB)
    assert bucket.multipart_uploads(), "9 MiB of 13 make a part: a multipart upload is open"
    assert_not_readable(url, data)
    resp = head(url)
    assert resp.headers["Upload-Offset"] == str(9 * MiB)
    assert "upload-token" not in parse_metadata(resp.headers.get("Upload-Metadata", ""))

    # Complete and published.
    patch_chunks(url, data, 9 * MiB, size, size)
    bucket.assert_object(object_key, data, content_type)
    bucket.assert_no_leftovers()
    assert phase(bucket, url) == "Published"
    assert_not_readable(url, data)
    assert_head_complete_without_token(url, size)
    assert_info_has_no_token(bucket, url, token)

    # The asset: private only with a signature, public plain.
    plain = plain_asset_url(tusgate, visibility, key)
    signed = sign_download(tusgate, key, visibility)
    if visibility == "private":
        resp = get(plain)
        assert resp.status_code == 403, f"unsigned private asset: {resp.status_code}"
        assert data[:64] not in resp.content
    assert_download(signed, data, content_type)

    # A newer upload of the same key replaces the object; the old URL reads neither version.
    newer = random_bytes(10 * MiB + 99, f"trust-f1/{visibility}/newer")
    newer_metadata = sign_upload(key, content_type, visibility)
    newer_url = tus_create(tusgate.files_url, len(newer), newer_metadata)
    patch_chunks(newer_url, newer, 0, len(newer), len(newer))
    bucket.assert_object(object_key, newer, content_type)
    bucket.assert_no_leftovers()
    assert_not_readable(url, data, newer)
    assert_not_readable(newer_url, data, newer)
    assert_head_complete_without_token(url, size)
    assert_head_complete_without_token(newer_url, len(newer))
    assert_info_has_no_token(bucket, newer_url, token_of(newer_metadata))
    if visibility == "private":
        assert get(plain).status_code == 403, "unsigned private asset after the replacement"
    assert_download(signed, newer, content_type)


def test_trust_tokenless_upload_url_still_reads_its_bytes(servers, bucket):
    """As in tusd: without a token the upload URL serves the upload (and its ranges), and
    echoes its metadata; on the same server a tokened upload's URL does not."""
    tusgate = servers.tusgate(bucket, tokens=False)
    size = 11 * MiB + 77
    data = random_bytes(size, "trust-f1/tokenless")
    url = tus_create(tusgate.files_url, size,
                     f"filename {base64.b64encode(b'a.bin').decode()}")
    patch_chunks(url, data, 0, size, 4 * MiB)
    bucket.assert_object(upload_id(url), data)
    resp = get(url)
    assert resp.status_code == 200, f"GET {url}: {resp.status_code} {resp.text[:200]}"
    assert sha256(resp.content) == sha256(data)
    resp = get(url, headers={"Range": f"bytes={8 * MiB - 10}-{8 * MiB + 9}"})
    assert resp.status_code == 206 and resp.content == data[8 * MiB - 10:8 * MiB + 10]
    assert parse_metadata(head(url).headers["Upload-Metadata"]) == {"filename": "a.bin"}

    key = unique_key("tokened.pdf")
    tokened = tus_create(tusgate.files_url, 1000, sign_upload(key, "application/pdf",
                                                              "private"))
    patch_chunks(tokened, data, 0, 1000, 1000)
    bucket.assert_object(f"private/{key}", data[:1000])
    assert_not_readable(tokened, data[:1000])


# ---------------------------------------------------------------------------
# Finding 2: every finished upload is published
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["fin", "rst"])
def test_trust_client_vanishing_after_its_last_byte_is_published(servers, bucket, how):
    """Three rounds of one 24 MiB PATCH (three parts and a short last one) whose client closes
    the connection right after the last byte."""
    tusgate = servers.tusgate(bucket)
    size = 24 * MiB + 12345
    for round_, visibility in enumerate(["private", "public", "private"]):
        name, content_type = NAMES[visibility]
        key = unique_key(name)
        data = random_bytes(size, f"trust-f2/{how}/{round_}")
        url = tus_create(tusgate.files_url, size, sign_upload(key, content_type, visibility))

        patch_and_vanish(url, 0, data, how)

        object_key = f"{visibility}/{key}"
        took = wait_published(bucket, object_key, url, data, VANISH_DEADLINE_S)
        print(f"round {round_} ({how}, {visibility}): published {took:.2f} s after the close")
        bucket.assert_object(object_key, data, content_type)
        assert_head_complete_without_token(url, size)
        wait_for("no tail object and no open multipart upload left",
                 lambda: not bucket.multipart_uploads()
                 and not [k for k in bucket.keys() if ".part." in k], timeout=5)
        tusgate.process.check_alive()


@pytest.mark.parametrize("how", ["abort-at-failpoint", "sigkill-while-paused"])
def test_trust_publish_cut_by_a_crash_is_finished_at_restart(servers, bucket, how):
    """The server dies after the `.info` object committed the last byte and before the
    multipart upload is completed (`upload:stored`, in janitor::finish before
    Store::complete): either the failpoint aborts the process there, or it pauses there and
    the test SIGKILLs it once the bucket shows every byte committed. The restarted server
    (startup recovery) publishes the upload."""
    failpoint = {"abort-at-failpoint": {"TUSGATE_CRASH_AT": "upload:stored"},
                 "sigkill-while-paused": {"TUSGATE_PAUSE_AT": "upload:stored:60000"}}[how]
    tusgate = servers.tusgate(bucket, env=failpoint)
    size = 19 * MiB + 4321
    data = random_bytes(size, f"trust-f2/crash/{how}")
    content_type = "application/pdf"
    key = unique_key("crash.pdf")
    object_key = f"private/{key}"
    url = tus_create(tusgate.files_url, size, sign_upload(key, content_type, "private"))
    acked = patch_chunks(url, data, 0, 9 * MiB, 3 * MiB)
    pieces = [data[o:o + MiB] for o in range(acked, size, MiB)]

    def kill_when_committed(sent):
        if how == "sigkill-while-paused" and sent == size - acked:
            wait_for("every byte committed in the .info object",
                     lambda: committed_bytes(bucket, url) == size)
            time.sleep(0.2)  # a server that did not pause would have published by now
            assert object_key not in bucket.keys(), "published although paused before it"
            tusgate.kill()

    status, answer = streamed_patch(url, acked, pieces, kill_when_committed, 60)
    assert status is None, f"a dead server cannot answer, got {status} {answer}"
    if how == "abort-at-failpoint":
        tusgate.process.proc.wait(timeout=STOP_TIMEOUT_S)
        assert "crashing at upload:stored" in tusgate.process.log_text()

    # What the crash left: every byte committed, the multipart upload open, nothing published.
    assert committed_bytes(bucket, url) == size
    assert phase(bucket, url) != "Published"
    assert object_key not in bucket.keys()
    assert bucket.multipart_uploads(), "the parts wait in an open multipart upload"

    tusgate.start(drop_env=failpoint)
    wait_published(bucket, object_key, url, data, VANISH_DEADLINE_S)
    bucket.assert_object(object_key, data, content_type)
    bucket.assert_no_leftovers()
    assert_head_complete_without_token(url, size)
    assert_not_readable(url, data)
    assert_download(sign_download(tusgate, key, "private"), data, content_type)
