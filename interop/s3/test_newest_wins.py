"""The newest upload of a key wins on S3 too, across a crash and the recovery that follows.

Instance A commits the last byte of an upload (multipart) and dies before publishing it
(`TUSGATE_CRASH_AT=upload:stored`). Meanwhile instance B, on the same bucket, receives a newer
upload of the same key and publishes it. When A comes back, its startup recovery finishes the
old upload: it must not put the old bytes over the newer object, only mark the old upload done
(HEAD says complete, so resuming clients do not send it again) and abort its multipart upload.
"""

import time

import requests

from conftest import (
    MiB, patch_chunks, random_bytes, sign_upload, tus_create, tus_offset, unique_key, wait_for,
)

SIZE = 19 * MiB + 4321
CONTENT_TYPE = "application/pdf"


def test_recovery_does_not_publish_an_older_upload_over_a_newer_one(servers, bucket):
    a = servers.tusgate(bucket, "tusgate-a")
    b = servers.tusgate(bucket, "tusgate-b")
    key = unique_key("versioned.pdf")
    metadata = sign_upload(key, CONTENT_TYPE, "private")
    older, newer = random_bytes(SIZE, "older"), random_bytes(SIZE, "newer")

    old_url = tus_create(a.files_url, SIZE, metadata)
    patch_chunks(old_url, older, 0, SIZE - 1 * MiB, 4 * MiB)
    a.kill()
    a.env["TUSGATE_CRASH_AT"] = "upload:stored"
    a.start()
    try:
        patch_chunks(old_url, older, SIZE - 1 * MiB, SIZE, 1 * MiB)
    except requests.RequestException:
        pass  # the crash: the last byte is committed, the publish never ran
    wait_for("A to die at upload:stored", lambda: not a.process.alive())
    assert bucket.multipart_uploads(), "the old upload's multipart upload is still open"

    # S3's Last-Modified has whole seconds: the newer upload completes in a later one.
    time.sleep(1.1)
    new_url = tus_create(b.files_url, SIZE, metadata)
    patch_chunks(new_url, newer, 0, SIZE, 8 * MiB)
    bucket.assert_object(f"private/{key}", newer, CONTENT_TYPE)

    del a.env["TUSGATE_CRASH_AT"]
    a.start()  # startup recovery runs before the server answers
    bucket.assert_object(f"private/{key}", newer, CONTENT_TYPE)
    assert tus_offset(old_url) == SIZE, "the old upload still reads as finished"
    bucket.assert_no_leftovers()
