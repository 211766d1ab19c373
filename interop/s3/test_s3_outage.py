"""S3 stops answering mid-upload (the S3 server frozen with SIGSTOP: connections open, no replies).

tusgate bounds its S3 requests by a retry budget of about 30 s (s3.rs: "a PATCH waiting on a
dead S3 answers 500 (retryable) within this"), so the PATCH in flight must fail with a
retryable 5xx within S3_OUTAGE_DEADLINE seconds (default 90: the budget plus slack; one run on a
loaded machine, load 6.3, took 60.07 s, with two 30 s deadlines logged back to back, and a bound
of 60 s failed it). Once S3 is
back (SIGCONT), HEAD shows an offset between the last acknowledged one and the bytes sent —
nothing acknowledged is lost — and tus-js-client completes the upload byte-identically.

"2 MiB into the PATCH" means once tusgate has read those 2 MiB (/proc/net/tcp: nothing of the
connection waits in a queue), so it is past its state and tail reads, waiting for the body;
the next bytes complete a part, and its CreateMultipartUpload meets the frozen S3.

Each test has its own S3 server (`private_moto`, of the test's backend), so a freeze never
touches other tests' buckets.
"""

import os
import time
from pathlib import Path

import pytest

from conftest import (
    MiB, patch_chunks, random_bytes, sign_upload, streamed_patch, tus_create, tus_js_resume,
    tus_offset, unique_key, wait_for,
)

SIZE = 19 * MiB + 4321
CONTENT_TYPE = "application/pdf"
DEADLINE_S = float(os.environ.get("S3_OUTAGE_DEADLINE", "90"))


def everything_sent_is_read(port: int) -> bool:
    """No byte of an established loopback connection to `port` waits unread: neither in a
    client's send queue nor in the server's receive queue (/proc/net/tcp, hex fields)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state, queues = line.split()[1:5]
        unsent, unread = (int(q, 16) for q in queues.split(":"))
        if state != "01":  # ESTABLISHED
            continue
        if int(local.rsplit(":", 1)[1], 16) == port and unread:
            return False
        if int(remote.rsplit(":", 1)[1], 16) == port and unsent:
            return False
    return True


@pytest.mark.parametrize("freeze_after", [0, 2 * MiB],
                         ids=["frozen-before-the-patch", "frozen-2MiB-into-the-patch"])
def test_patch_fails_retryably_while_s3_is_down(servers, private_moto, tmp_path, freeze_after):
    bucket = private_moto.create_bucket()
    tusgate = servers.tusgate(bucket)
    data = random_bytes(SIZE, "outage")
    key = unique_key("outage.pdf")
    metadata = sign_upload(key, CONTENT_TYPE, "private")
    url = tus_create(tusgate.files_url, SIZE, metadata)
    acked = patch_chunks(url, data, 0, 5 * MiB, 1 * MiB)

    # A 4 MiB PATCH: with the 5 MiB tail it completes an 8 MiB part, so whichever S3 request
    # is in flight (tail read, CreateMultipartUpload, UploadPart, state write) hits the outage.
    pieces = [data[acked + i * MiB:acked + (i + 1) * MiB] for i in range(4)]
    frozen_at = []

    def freeze():
        private_moto.freeze()
        frozen_at.append(time.monotonic())

    def freeze_once_read(sent):
        if sent == freeze_after:
            wait_for(f"tusgate to read the first {sent} bytes of the PATCH",
                     lambda: everything_sent_is_read(tusgate.port))
            freeze()

    try:
        if freeze_after == 0:
            freeze()
        status, answer = streamed_patch(url, acked, pieces, freeze_once_read,
                                        timeout=DEADLINE_S)
        waited = time.monotonic() - frozen_at[0]
    finally:
        private_moto.thaw()

    assert status is not None, (
        f"no answer to the PATCH {waited:.0f} s after S3 stopped ({answer}); expected a "
        f"retryable 5xx within S3_OUTAGE_DEADLINE={DEADLINE_S:.0f} s")
    assert 500 <= status <= 599, f"PATCH while S3 is down: {status} {answer[:300]}"

    offset = tus_offset(url)
    sent = acked + sum(map(len, pieces))
    assert acked <= offset <= sent, f"offset {offset}: acknowledged {acked}, sent {sent}"

    tus_js_resume(tusgate, url, data, tmp_path, metadata)
    bucket.assert_object(f"private/{key}", data, CONTENT_TYPE)
    assert not [k for k in bucket.keys() if ".part." in k], "no tail objects left"
