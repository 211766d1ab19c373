"""Two tusgate instances on different ports share one bucket: the state object is the commit
point, so either can continue what the other started."""

from conftest import (
    MiB, patch_chunks, random_bytes, sign_upload, streamed_patch, tus_create, tus_js_resume,
    tus_offset, unique_key,
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


def test_a_patch_on_b_interrupts_one_still_streaming_into_a(servers, bucket):
    """The client's PATCH into A stalls (its connection stays open); it resumes on B. B takes the
    upload over at once, and A's PATCH stops by itself and answers 400 ERR_UPLOAD_INTERRUPTED
    long before any timeout (A's --network-timeout is 60 s, the client waits at most 20 s), with
    none of A's bytes in the object — they differ from B's on purpose."""
    a = servers.tusgate(bucket, "tusgate-a")
    b = servers.tusgate(bucket, "tusgate-b")
    data = random_bytes(SIZE, "takeover")
    stale = random_bytes(2 * MiB, "stale bytes sent to A")
    key = unique_key("taken over.pdf")
    url_a = tus_create(a.files_url, SIZE, sign_upload(key, CONTENT_TYPE, "private"))
    url_b = b.upload_url(url_a)
    resumed: list[int] = []

    def stall_and_resume_on_b(sent: int) -> None:
        if sent == len(stale) // 2:
            # Half of A's body is in; A's client now stalls, and the client resumes on B.
            assert tus_offset(url_b) == 0, "nothing A received is committed"
            resumed.append(patch_chunks(url_b, data, 0, 3 * MiB, 3 * MiB))

    status, answer = streamed_patch(url_a, 0, [stale[:MiB], stale[MiB:]],
                                    stall_and_resume_on_b, timeout=20)
    assert resumed == [3 * MiB], "the first PATCH on B was acknowledged"
    assert (status, "ERR_UPLOAD_INTERRUPTED" in answer) == (400, True), (status, answer)
    assert patch_chunks(url_b, data, 3 * MiB, SIZE, 3 * MiB) == SIZE
    bucket.assert_object(f"private/{key}", data, CONTENT_TYPE)
    bucket.assert_no_leftovers()
