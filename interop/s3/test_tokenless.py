"""Uploads without a token (`-allow-uploads-without-token`) complete at `<prefix>/<id>`, where
tusd's s3store puts them, with the state at `<prefix>/<id>.info` — and nothing outside the
object prefix."""

import pytest

import requests

from conftest import (
    HTTP_TIMEOUT_S, TUS, KiB, MiB, get, random_bytes, sha256, tus_create, tus_js_ok, tus_offset,
    patch_chunks, tus_patch, upload_id, write_source,
)

PREFIX = "tenant a/tus"


@pytest.mark.parametrize("size, options", [
    (19 * MiB + 4321, {"chunkSize": 1 * MiB}),   # parts + tails across PATCHes
    (300 * KiB, {}),                             # smaller than a part: a single PUT
], ids=["19MiB-1MiB-chunks", "300KiB-single-request"])
def test_tokenless_upload_lands_at_prefix_id(servers, bucket, tmp_path, size, options):
    tusgate = servers.tusgate(bucket, tokens=False, prefix=PREFIX)
    data = random_bytes(size, "tokenless")
    source = write_source(tmp_path, data)

    url = tus_js_ok(tusgate.files_url, source, metadata={"filename": "a b.bin"}, **options)

    uid = upload_id(url)
    object_key = tusgate.object_key(uid)
    bucket.assert_object(object_key, data)
    assert bucket.keys() == sorted([object_key, f"{object_key}.info"]), \
        "only the object and its state, both under the prefix"
    bucket.assert_no_leftovers()
    assert bucket.info(f"{object_key}.info")["MetaData"]["filename"] == "a b.bin"
    resp = get(url)
    assert resp.status_code == 200 and sha256(resp.content) == sha256(data)


def test_deferred_length_upload(servers, bucket):
    """Upload-Defer-Length: the part size is fixed at creation without a length; the length
    arrives with the last PATCH. (Raw requests: tus-js-client 4.3.1's `uploadLengthDeferred`
    in Node declares Content-Length = chunkSize on the short last chunk and hangs, against
    tusd too.)"""
    tusgate = servers.tusgate(bucket, tokens=False, prefix=PREFIX)
    size = 19 * MiB + 4321
    data = random_bytes(size, "deferred")
    resp = requests.post(tusgate.files_url, headers={**TUS, "Upload-Defer-Length": "1"},
                         timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 201, f"POST: {resp.status_code} {resp.text[:200]}"
    url = resp.headers["Location"]
    offset = patch_chunks(url, data, 0, 18 * MiB, 3 * MiB)
    last = requests.patch(url, data=data[offset:], timeout=HTTP_TIMEOUT_S, headers={
        **TUS, "Upload-Offset": str(offset), "Upload-Length": str(size),
        "Content-Type": "application/offset+octet-stream"})
    assert last.status_code == 204, f"last PATCH: {last.status_code} {last.text[:200]}"
    assert tus_offset(url) == size
    bucket.assert_object(tusgate.object_key(upload_id(url)), data)
    bucket.assert_no_leftovers()


def test_deferred_length_declared_after_the_last_byte(servers, bucket):
    """tusd #1385 (fixed in v2.10.1): every byte arrives while the length is deferred, then an
    empty PATCH declares it (as tus-js-client does when a stream ends on a chunk boundary).
    The tail parked in `.part.<n>` must become the last part: before the fix the object was
    published without it (19 MiB + 4321 sent, 16 MiB published, 204 all the way)."""
    tusgate = servers.tusgate(bucket, tokens=False, prefix=PREFIX)
    size = 19 * MiB + 4321
    data = random_bytes(size, "deferred-late")
    resp = requests.post(tusgate.files_url, headers={**TUS, "Upload-Defer-Length": "1"},
                         timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 201, f"POST: {resp.status_code} {resp.text[:200]}"
    url = resp.headers["Location"]
    assert patch_chunks(url, data, 0, size, 3 * MiB) == size
    last = requests.patch(url, data=b"", timeout=HTTP_TIMEOUT_S, headers={
        **TUS, "Upload-Offset": str(size), "Upload-Length": str(size),
        "Content-Type": "application/offset+octet-stream"})
    assert last.status_code == 204, f"declaring PATCH: {last.status_code} {last.text[:200]}"
    assert tus_offset(url) == size
    bucket.assert_object(tusgate.object_key(upload_id(url)), data)
    bucket.assert_no_leftovers()
    resp = get(url)
    assert resp.status_code == 200 and sha256(resp.content) == sha256(data)


def test_empty_upload_is_an_empty_object(servers, bucket):
    tusgate = servers.tusgate(bucket, tokens=False, prefix=PREFIX)
    url = tus_create(tusgate.files_url, 0)
    assert tus_offset(url) == 0
    bucket.assert_object(tusgate.object_key(upload_id(url)), b"")


def test_incomplete_upload_is_not_downloadable(servers, bucket):
    """Like tusd's s3store: GET on an incomplete upload is 400 ERR_INCOMPLETE_UPLOAD, and no
    object exists yet."""
    tusgate = servers.tusgate(bucket, tokens=False, prefix=PREFIX)
    url = tus_create(tusgate.files_url, 3 * MiB)
    assert tus_patch(url, 0, random_bytes(MiB)).status_code == 204
    resp = get(url)
    assert resp.status_code == 400, f"GET incomplete: {resp.status_code} {resp.text[:200]}"
    assert "ERR_INCOMPLETE_UPLOAD" in resp.text
    assert tusgate.object_key(upload_id(url)) not in bucket.keys()


@pytest.mark.parametrize("stored", [9 * MiB, 2 * MiB], ids=["part-and-tail", "complete"])
def test_termination_removes_everything(servers, bucket, stored):
    """DELETE removes the state and the tail, aborts the multipart upload, and (tokenless: the
    object is the upload itself, as in tusd's s3store) removes a completed object."""
    tusgate = servers.tusgate(bucket, tokens=False, prefix=PREFIX)
    url = tus_create(tusgate.files_url, 2 * MiB if stored == 2 * MiB else 20 * MiB)
    assert tus_patch(url, 0, random_bytes(stored)).status_code == 204
    assert bucket.keys(), "something was stored"

    resp = requests.delete(url, headers=TUS, timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 204, f"DELETE: {resp.status_code} {resp.text[:200]}"
    assert bucket.keys() == [], "nothing left in the bucket"
    assert bucket.multipart_uploads() == [], "the multipart upload is aborted"
    assert requests.head(url, headers=TUS, timeout=HTTP_TIMEOUT_S).status_code in (404, 410)
