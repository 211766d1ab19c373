"""granite-assets build_upload_url -> tuspy upload -> published file -> build_download_url -> GET."""

import os

import pytest
from granite_assets import AssetVisibility
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from conftest import (
    KiB,
    VISIBILITIES,
    assert_downloads,
    assert_published,
    create_upload,
    download,
    random_bytes,
    source_file,
    tuspy_upload,
    tuspy_uploader,
    unique_prefix,
)

# Keys a download URL can carry (granite-and-nginx.md §2.5): space, '+', and NFC UTF-8.
SPECIAL_KEY = "reports/my file+1 \u00fc.pdf"


@pytest.mark.parametrize("visibility", VISIBILITIES, ids=lambda v: v.value)
def test_upload_publish_download(stack, tmp_path, visibility):
    key = f"{unique_prefix()}/docs/report.pdf"
    data = random_bytes(300 * KiB + 7, seed=key)
    result = stack.upload_url(key, "application/pdf", visibility=visibility)
    assert result.url == f"{stack.tusd_url}/files/" and result.method == "POST"

    tuspy_upload(result, source_file(tmp_path, data), chunk_size=64 * KiB)

    assert_published(stack, visibility, key, data)
    url = assert_downloads(stack, key, visibility, data)
    if visibility is AssetVisibility.PRIVATE:
        unsigned = url.split("?", 1)[0]
        assert download(unsigned).status_code == 403, "private file served without a token"


@pytest.fixture
def special_key(stack):
    """SPECIAL_KEY, removed from storage afterwards even if the test fails, so that the run for
    the other visibility starts from nothing."""
    yield SPECIAL_KEY
    for visibility in AssetVisibility:
        stack.published_path(visibility, SPECIAL_KEY).unlink(missing_ok=True)


@pytest.mark.parametrize("visibility", VISIBILITIES, ids=lambda v: v.value)
def test_key_with_space_plus_and_utf8(stack, tmp_path, special_key, visibility):
    data = random_bytes(20 * KiB + 3, seed=visibility.value)
    result = stack.upload_url(special_key, "application/pdf", visibility=visibility)

    tuspy_upload(result, source_file(tmp_path, data))

    # Published byte for byte under the key as given (no escaping, no normalisation).
    folder = stack.storage / visibility.value / "reports"
    assert os.listdir(bytes(folder)) == ["my file+1 \u00fc.pdf".encode()]
    assert_published(stack, visibility, special_key, data)
    # requests sends the space as %20 and the 'ü' as %C3%BC; '+' stays '+'.
    assert_downloads(stack, special_key, visibility, data)


def test_overwrite_replaces_atomically(stack, tmp_path):
    key = f"{unique_prefix()}/avatar.png"
    visibility = AssetVisibility.PUBLIC
    first = random_bytes(100 * KiB, seed="first")
    second = random_bytes(150 * KiB + 1, seed="second")

    tuspy_upload(stack.upload_url(key, "image/png", visibility=visibility),
                 source_file(tmp_path, first, "first.bin"))
    assert_published(stack, visibility, key, first)
    assert_downloads(stack, key, visibility, first)

    # Second upload of the same key: until its last byte arrives the old file stays intact.
    uploader = tuspy_uploader(stack.upload_url(key, "image/png", visibility=visibility),
                              source_file(tmp_path, second, "second.bin"), chunk_size=32 * KiB)
    uploader.upload(stop_at=len(second) - 1)
    assert uploader.offset == len(second) - 1
    assert_published(stack, visibility, key, first)
    assert_downloads(stack, key, visibility, first)

    uploader.upload()  # the last byte
    assert_published(stack, visibility, key, second)
    assert_downloads(stack, key, visibility, second)


def test_tuspy_with_granite_headers_alone_sends_no_token(stack, tmp_path):
    """Documents a client trap: TusClient(headers=result.headers) without `metadata=` sends an
    empty upload-metadata (tuspy's own header wins), so the server refuses it as tokenless."""
    key = f"{unique_prefix()}/no-token.bin"
    result = stack.upload_url(key, visibility=AssetVisibility.PUBLIC)
    before = stack.tree()
    uploader = TusClient(result.url, headers=dict(result.headers)).uploader(
        file_path=str(source_file(tmp_path, b"x" * 10)))
    with pytest.raises(TusCommunicationError) as excinfo:
        uploader.upload()
    assert excinfo.value.status_code == 403
    assert stack.tree() == before

    # The very same headers, sent as granite documents it, are accepted.
    assert create_upload(result, 10).status_code == 201
