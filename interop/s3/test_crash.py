"""SIGKILL tusgate mid-upload, restart it on the same port: the client resumes from an offset
> 0 with nothing acknowledged lost, and the object is byte-identical.

The first half of the upload uses raw tus requests, so the test knows exactly which bytes were
sent and acknowledged when the process dies; tus-js-client then resumes the upload URL
(`uploadUrl`: HEAD, then PATCH from the offset) and must finish that same upload.
"""

from dataclasses import dataclass

import pytest

from conftest import (
    MiB, Bucket, Tusgate, patch_chunks, random_bytes, sign_upload, streamed_patch, tus_create,
    tus_js_resume, tus_offset, unique_key, wait_for,
)

SIZE = 19 * MiB + 4321
CONTENT_TYPE = "application/pdf"


@dataclass
class Upload:
    tusgate: Tusgate
    bucket: Bucket
    data: bytes
    key: str
    metadata: str
    url: str

    @classmethod
    def start(cls, servers, bucket) -> "Upload":
        tusgate = servers.tusgate(bucket)
        key = unique_key("crash.pdf")
        metadata = sign_upload(key, CONTENT_TYPE, "private")
        url = tus_create(tusgate.files_url, SIZE, metadata)
        return cls(tusgate, bucket, random_bytes(SIZE, "crash"), key, metadata, url)

    def pieces(self, offset: int, count: int) -> list[bytes]:
        """`count` 1 MiB pieces of the data from `offset`."""
        return [self.data[offset + i * MiB:offset + (i + 1) * MiB] for i in range(count)]

    def resume_and_check(self, directory, *, multipart_leftovers=()) -> None:
        tus_js_resume(self.tusgate, self.url, self.data, directory, self.metadata)
        self.bucket.assert_object(f"private/{self.key}", self.data, CONTENT_TYPE)
        assert not [k for k in self.bucket.keys() if ".part." in k], "no tail objects left"
        assert self.bucket.multipart_uploads() == list(multipart_leftovers)


@pytest.mark.parametrize("chunks", [5, 11], ids=["after-5-chunks-tail-only",
                                                 "after-11-chunks-part-and-tail"])
def test_sigkill_between_chunks(servers, bucket, tmp_path, chunks):
    upload = Upload.start(servers, bucket)
    acked = patch_chunks(upload.url, upload.data, 0, chunks * MiB, 1 * MiB)

    upload.tusgate.kill()
    upload.tusgate.start()

    assert tus_offset(upload.url) == acked, "every acknowledged byte survives, nothing more"
    upload.resume_and_check(tmp_path)


def test_sigkill_inside_a_chunk_before_a_part(servers, bucket, tmp_path):
    """Killed 2 MiB into a 10 MiB PATCH body: the 5 MiB tail + 2 MiB make no part yet."""
    upload = Upload.start(servers, bucket)
    acked = patch_chunks(upload.url, upload.data, 0, 5 * MiB, 1 * MiB)

    def crash(sent):
        if sent == 2 * MiB:
            upload.tusgate.kill()

    status, answer = streamed_patch(upload.url, acked, upload.pieces(acked, 10), crash, 30)
    assert status is None, f"a killed server cannot answer, got {status} {answer}"

    upload.tusgate.start()
    offset = tus_offset(upload.url)
    assert acked <= offset <= acked + 2 * MiB, \
        f"offset {offset} after the crash: acknowledged {acked}, sent {acked + 2 * MiB}"
    upload.resume_and_check(tmp_path)


def test_sigkill_after_a_part_reached_s3(servers, bucket, tmp_path):
    """Killed during a 10 MiB PATCH once its first part (5 MiB tail + 3 MiB new) is stored in
    S3 but not yet recorded in the state: the offset stays at the acknowledged 5 MiB, and the
    resumed upload does not use that part (it was uploaded under a part number reserved by the
    killed request, which nobody reuses and the completion does not list). The multipart upload
    itself was committed to the state as soon as it was created, so the resumed upload goes on
    in it and completes it: nothing is left over."""
    upload = Upload.start(servers, bucket)
    acked = patch_chunks(upload.url, upload.data, 0, 5 * MiB, 1 * MiB)
    orphans = []

    def crash(sent):
        if sent == 6 * MiB:
            orphans.extend(wait_for("multipart upload created", bucket.multipart_uploads))
            wait_for("first part stored", lambda: bucket.uploaded_parts(*orphans[0]) >= 1)
            upload.tusgate.kill()

    status, answer = streamed_patch(upload.url, acked, upload.pieces(acked, 10), crash, 30)
    assert status is None, f"a killed server cannot answer, got {status} {answer}"

    upload.tusgate.start()
    assert tus_offset(upload.url) == acked, "uncommitted parts are not counted"
    upload.resume_and_check(tmp_path)
