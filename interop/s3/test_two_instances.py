"""Two tusgate instances on different ports share one bucket: the state object is the commit
point, so either can continue what the other started."""

from conftest import (
    MiB, patch_chunks, random_bytes, sign_upload, tus_create, tus_js_resume, tus_offset,
    unique_key,
)

SIZE = 19 * MiB + 4321
CONTENT_TYPE = "application/pdf"


def test_upload_started_on_a_is_finished_on_b(servers, bucket, tmp_path):
    a = servers.tusgate(bucket, "tusgate-a")
    b = servers.tusgate(bucket, "tusgate-b")
    data = random_bytes(SIZE, "two")
    key = unique_key("shared.pdf")
    metadata = sign_upload(key, CONTENT_TYPE, "private")
    url_a = tus_create(a.files_url, SIZE, metadata)
    acked = patch_chunks(url_a, data, 0, 11 * MiB, 1 * MiB)   # one part + a 3 MiB tail

    url_b = b.upload_url(url_a)
    assert tus_offset(url_b) == acked, "B reads A's committed offset from the bucket"
    tus_js_resume(b, url_b, data, tmp_path, metadata)

    bucket.assert_object(f"private/{key}", data, CONTENT_TYPE)
    bucket.assert_no_leftovers()
    assert tus_offset(url_a) == SIZE, "A sees the upload B completed"


def test_upload_alternating_between_instances(servers, bucket):
    """Every 3 MiB PATCH goes to the other instance, so each one's cached state of the upload
    is stale at every PATCH it receives."""
    instances = [servers.tusgate(bucket, "tusgate-a"), servers.tusgate(bucket, "tusgate-b")]
    data = random_bytes(SIZE, "alternating")
    key = unique_key("ping pong.pdf")
    url = tus_create(instances[0].files_url, SIZE, sign_upload(key, CONTENT_TYPE, "private"))

    offset, turn = 0, 0
    while offset < SIZE:
        here, there = instances[turn % 2], instances[(turn + 1) % 2]
        offset = patch_chunks(here.upload_url(url), data, offset, min(offset + 3 * MiB, SIZE),
                              3 * MiB)
        assert tus_offset(there.upload_url(url)) == offset, f"after PATCH {turn} on {here.name}"
        turn += 1

    bucket.assert_object(f"private/{key}", data, CONTENT_TYPE)
    bucket.assert_no_leftovers()
