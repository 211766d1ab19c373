"""`--s3-max-buffer` bounds tusgate's memory however many S3 uploads run at once.

N uploads run concurrently against a budget of two parts, each in two PATCHes (the first
leaves a tail, so the second reads it back within its first part's reservation). Every upload
must complete byte-identically, and tusgate's peak RSS (`VmHWM`) must stay below its RSS peak
before the uploads plus the budget plus a generous allowance per upload and for the allocator
(~100 MiB; measured 59-65 MiB on moto and on SeaweedFS). Without the budget each upload can
hold three parts at once (up to N × 15 MiB; measured 147-171 MiB on moto, 257 MiB on
SeaweedFS, over the bound), so the test fails without it. It is a memory bound, not a timing one: a faster S3 server only lowers the peak.
"""

import threading

import requests

from conftest import (
    KiB, MiB, random_bytes, tus_create, tus_patch, upload_id,
)

PART = 5 * MiB
BUDGET = 2 * PART
N = 24
SIZE = 3 * PART + 777 * KiB        # three whole parts and a short last one
SPLIT = PART + 2 * MiB + 123       # the first PATCH: one part and a 2 MiB tail
# Outside the budget, per upload: the rest of the body frame that completed a part and
# hyper's read buffer (each at most ~400 KiB); measured ~1 MiB per waiting upload.
PER_UPLOAD_ALLOWANCE = 2 * MiB
# Allocator slack: freed part buffers are not always reused at once (measured ~15 MiB).
SLACK = 32 * MiB


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_concurrent_uploads_stay_within_the_buffer_budget(servers, bucket):
    tusgate = servers.tusgate(bucket, tokens=False, args=[
        "--s3-part-size", str(PART), "--s3-max-buffer", str(BUDGET)])
    base = random_bytes(SIZE, "budget")
    datas = [i.to_bytes(4, "big") + base[4:] for i in range(N)]
    urls = [tus_create(tusgate.files_url, SIZE) for _ in range(N)]
    pid = tusgate.process.pid
    before_kib = status_kib(pid, "VmHWM")

    barrier = threading.Barrier(N)
    answers: list[list[requests.Response | BaseException]] = [[] for _ in range(N)]

    def upload(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            for start, end in ((0, SPLIT), (SPLIT, SIZE)):
                answers[i].append(tus_patch(urls[i], start, datas[i][start:end]))
        except BaseException as e:  # reported below, with the upload it belongs to
            answers[i].append(e)

    threads = [threading.Thread(target=upload, args=(i,), daemon=True) for i in range(N)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "uploads still running after 240 s"
    peak_kib = status_kib(pid, "VmHWM")
    tusgate.process.check_alive()

    for i, got in enumerate(answers):
        assert len(got) == 2 and all(isinstance(r, requests.Response) for r in got), \
            f"upload {i}: {got}"
        for response, end in zip(got, (SPLIT, SIZE)):
            assert response.status_code == 204, \
                f"upload {i}: PATCH {response.status_code} {response.text[:300]}"
            assert int(response.headers["Upload-Offset"]) == end
    for url, data in zip(urls, datas):
        bucket.assert_object(tusgate.object_key(upload_id(url)), data)
    bucket.assert_no_leftovers()

    bound_kib = before_kib + (BUDGET + N * PER_UPLOAD_ALLOWANCE + SLACK) // KiB
    unbounded_kib = before_kib + N * 3 * PART // KiB
    assert peak_kib < bound_kib, (
        f"peak RSS {peak_kib / 1024:.0f} MiB is over the bound {bound_kib / 1024:.0f} MiB "
        f"(before the uploads {before_kib / 1024:.0f} MiB, budget {BUDGET // MiB} MiB, "
        f"{N} uploads; without a budget they could take ~{unbounded_kib / 1024:.0f} MiB)")
