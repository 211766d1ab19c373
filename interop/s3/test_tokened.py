"""Tokened uploads with the real tus-js-client complete at `<visibility>/<key>` in the bucket.

One ~19 MiB file (more than two 8 MiB parts plus a tail), uploaded in one PATCH, in 1 MiB
chunks (every PATCH leaves a tail; parts are cut across PATCHes), and with `parallelUploads: 4`
(four partial uploads, then the final concatenation). Each time: the object is byte-identical
(read from the S3 server), carries the token's Content-Type, nothing else is published, no tail or
multipart upload is left behind, and the download through `/assets/...` returns the same
bytes (public plain, private signed; Range requests too), while the upload URL reads nothing.
"""

import pytest

from conftest import (
    MiB, assert_download, get, plain_asset_url, random_bytes, sign_download,
    sign_upload, tus_js_ok, tus_offset, unique_key, upload_id, write_source,
)

SIZE = 19 * MiB + 4321
MODES = {
    "single-request": {},
    "1MiB-chunks": {"chunkSize": 1 * MiB},
    "parallel-4": {"parallelUploads": 4},
}
# (key name, token content-type). Downloads take their Content-Type from the key's extension,
# like nginx's mime.types, so the extension matches the token's type here.
NAMES = {"public": ("photo 1.png", "image/png"), "private": ("report 1.pdf", "application/pdf")}


@pytest.mark.parametrize("visibility", ["public", "private"])
@pytest.mark.parametrize("mode", MODES)
def test_tus_js_client_upload_publishes_object(servers, bucket, tmp_path, mode, visibility):
    tusgate = servers.tusgate(bucket)
    data = random_bytes(SIZE, f"{mode}/{visibility}")
    source = write_source(tmp_path, data)
    name, content_type = NAMES[visibility]
    key = unique_key(name)
    metadata = sign_upload(key, content_type, visibility)

    url = tus_js_ok(tusgate.files_url, source, {"Upload-Metadata": metadata}, **MODES[mode])

    object_key = f"{visibility}/{key}"
    bucket.assert_object(object_key, data, content_type)
    published = [k for k in bucket.keys() if k.startswith(("public/", "private/"))]
    assert published == [object_key], "exactly one object is published"
    bucket.assert_no_leftovers()
    assert f"{upload_id(url)}.info" in bucket.keys(), "the upload's state stays, like tusd's"
    assert tus_offset(url) == SIZE

    # The upload URL never serves a tokened upload's bytes (issue 9): they are an asset,
    # read only through /assets/... (and, if private, its signature). test_trust.py has more.
    resp = get(url)
    assert resp.status_code == 403, f"GET {url}: {resp.status_code} {resp.text[:200]}"
    assert resp.text.startswith("ERR_UPLOAD_NOT_READABLE"), resp.text[:200]

    # Downloads as granite builds them.
    download_url = sign_download(tusgate, key, visibility)
    plain = plain_asset_url(tusgate, visibility, key)
    if visibility == "public":
        assert download_url == plain
    else:
        assert download_url.startswith(f"{plain}?md5=")
        assert get(plain).status_code == 403, "a private asset needs a signed link"
    assert_download(download_url, data, content_type)
