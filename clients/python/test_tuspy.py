"""End-to-end tests driving the server under test with the real tuspy 1.1.0 client.

Every test ends by checking the stored bytes (GET, sha256) and that HEAD reports
Upload-Offset == Upload-Length (Harness.assert_stored in conftest.py).
"""

import pytest

from conftest import MiB

# tuspy's default chunk size is sys.maxsize, i.e. the whole file in one PATCH.
CHUNK_SIZES = pytest.mark.parametrize("chunk_size", [None, MiB], ids=["whole-file", "1MiB-chunks"])


def chunk_kwargs(chunk_size):
    return {} if chunk_size is None else {"chunk_size": chunk_size}


@CHUNK_SIZES
@pytest.mark.parametrize("size", [0, 1, 5 * MiB + 1], ids=["0B", "1B", "5MiB+1B"])
def test_basic_upload(tus, size, chunk_size):
    path = tus.source(size)
    uploader = tus.uploader(path, **chunk_kwargs(chunk_size))
    uploader.upload()
    assert uploader.offset == size
    tus.assert_stored(uploader.url, path)


@CHUNK_SIZES
def test_upload_with_checksum(tus, chunk_size):
    """tuspy sends `Upload-Checksum: sha1 <b64>` per PATCH; tusd ignores it, tusgate checks it."""
    path = tus.source(5 * MiB + 1)
    uploader = tus.uploader(path, upload_checksum=True, **chunk_kwargs(chunk_size))
    uploader.upload()
    # Guard against a tuspy change silently dropping the header (last PATCH's request headers).
    assert uploader.request._request_headers["upload-checksum"].startswith("sha1 ")
    tus.assert_stored(uploader.url, path)


def upload_some_chunks(tus, path, chunks: int) -> str:
    """Send `chunks` 1 MiB PATCHes with a fresh uploader; return the upload URL."""
    uploader = tus.uploader(path, chunk_size=MiB)
    for _ in range(chunks):
        uploader.upload_chunk()
    assert uploader.offset == chunks * MiB
    assert tus.server_offset(uploader.url) == chunks * MiB
    return uploader.url


def resume_and_finish(tus, path, url: str) -> None:
    """A new uploader on `url` must start at the server's offset (> 0) and complete the upload."""
    stored = tus.server_offset(url)
    assert stored > 0
    uploader = tus.uploader(path, url=url, chunk_size=MiB)
    assert uploader.offset == stored
    uploader.upload()
    assert uploader.url == url, "resume must not create a new upload"
    tus.assert_stored(url, path)


def test_resume_with_new_uploader(tus):
    path = tus.source(8 * MiB + 3)
    url = upload_some_chunks(tus, path, chunks=3)
    resume_and_finish(tus, path, url)


def test_resume_after_server_sigkill(tus):
    path = tus.source(8 * MiB + 3)
    url = upload_some_chunks(tus, path, chunks=2)
    tus.server.kill()
    tus.server.restart()
    resume_and_finish(tus, path, url)


def test_metadata_round_trip(tus):
    metadata = {"filename": "a.bin", "filetype": "application/octet-stream"}
    path = tus.source(4096)
    uploader = tus.uploader(path, metadata=metadata)
    uploader.upload()
    tus.assert_stored(uploader.url, path)
    assert tus.metadata(uploader.url) == metadata
