"""Expiry: with `-upload-expiry=2s` the reaper removes an incomplete upload's state and tail
objects from the bucket and aborts its multipart upload; a completed upload stays."""

import requests

from conftest import (
    HTTP_TIMEOUT_S, TUS, KiB, MiB, random_bytes, tus_create, tus_offset, tus_patch, upload_id,
    wait_for,
)

PREFIX = "exp"
REAP_TIMEOUT_S = 20.0  # 2 s expiry + S3 LastModified's 1 s resolution + 0.5 s sweeps, with slack


def test_reaper_removes_incomplete_uploads_from_the_bucket(servers, bucket):
    tusgate = servers.tusgate(bucket, tokens=False, prefix=PREFIX, args=["-upload-expiry=2s"])

    def stem(url):
        return tusgate.object_key(upload_id(url))

    def assert_stored(url):
        """State and tail are in the bucket (checked right after the PATCH: well within the
        expiry)."""
        keys = bucket.keys()
        assert f"{stem(url)}.info" in keys
        assert any(k.startswith(f"{stem(url)}.part.") for k in keys), f"{stem(url)} has a tail"

    # Incomplete, 1 MiB stored: state + tail.
    tail_only = tus_create(tusgate.files_url, 20 * MiB)
    assert tus_patch(tail_only, 0, random_bytes(MiB, 1)).status_code == 204
    assert_stored(tail_only)
    # Incomplete, 9 MiB stored: state + one part in an open multipart upload + a 1 MiB tail.
    with_part = tus_create(tusgate.files_url, 20 * MiB)
    assert tus_patch(with_part, 0, random_bytes(9 * MiB, 2)).status_code == 204
    assert_stored(with_part)
    assert len(bucket.multipart_uploads()) == 1
    # Complete: must survive the reaper.
    done = tus_create(tusgate.files_url, 300 * KiB)
    complete_data = random_bytes(300 * KiB, 3)
    assert tus_patch(done, 0, complete_data).status_code == 204

    expired = [stem(tail_only), stem(with_part)]

    def reaped():
        left = [k for k in bucket.keys() if any(k.startswith(f"{s}.") for s in expired)]
        return not left

    wait_for("incomplete uploads reaped from the bucket", reaped, REAP_TIMEOUT_S)
    assert bucket.multipart_uploads() == [], "the expired upload's multipart upload is aborted"
    for url in (tail_only, with_part):
        status = requests.head(url, headers=TUS, timeout=HTTP_TIMEOUT_S).status_code
        assert status in (404, 410), f"HEAD on a reaped upload: {status}"

    done_key = stem(done)
    assert bucket.keys() == sorted([done_key, f"{done_key}.info"]), "only the completed upload"
    bucket.assert_object(done_key, complete_data)
    assert tus_offset(done) == 300 * KiB
