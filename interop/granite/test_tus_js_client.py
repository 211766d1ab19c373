"""granite-assets + the real tus-js-client, granite's `headers` passed as tus-js-client `headers`
(as granite's infrastructure docs show for the browser)."""

import pytest
from granite_assets import AssetVisibility

from conftest import (
    MiB,
    VISIBILITIES,
    assert_downloads,
    assert_published,
    decode_metadata,
    encode_metadata,
    random_bytes,
    source_file,
    tus_js_upload,
    unique_prefix,
)

SIZE = 5 * MiB + 1

MODES = {
    "single-request": {},
    "chunks-1MiB": {"chunkSize": 1 * MiB},
    # Four partial uploads + a final concatenation. The partials carry granite's headers too,
    # so they are tokened; only the final upload may publish.
    "parallel-4": {"parallelUploads": 4},
}


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    data = random_bytes(SIZE, seed="tus-js")
    return data, source_file(tmp_path_factory.mktemp("src"), data)


@pytest.mark.parametrize("visibility", VISIBILITIES, ids=lambda v: v.value)
@pytest.mark.parametrize("mode", MODES)
def test_upload_publish_download(stack, big_file, mode, visibility):
    data, path = big_file
    key = f"{unique_prefix()}/videos/clip.mp4"
    result = stack.upload_url(key, "video/mp4", visibility=visibility)

    outcome = tus_js_upload(result, path, **MODES[mode])
    assert "url" in outcome, outcome
    assert outcome["url"].startswith(f"{stack.tusd_url}/files/")

    assert_published(stack, visibility, key, data)
    assert_downloads(stack, key, visibility, data)


def test_parallel_partials_alone_publish_nothing(stack, big_file):
    """All four tokened partial uploads complete, the final concatenation is never sent:
    nothing may appear in storage."""
    data, path = big_file
    key = f"{unique_prefix()}/partials-only.bin"
    result = stack.upload_url(key, visibility=AssetVisibility.PUBLIC)
    before = stack.tree(uploads=False)

    outcome = tus_js_upload(result, path, parallelUploads=4, stopBeforeFinal=True)
    assert outcome.get("stoppedBeforeFinal") and len(outcome["partials"]) == 4, outcome

    assert stack.tree(uploads=False) == before, "a partial upload was published"


@pytest.mark.parametrize(("case", "status"), [("expired", 400), ("tampered", 403)])
def test_rejection_reaches_the_client(stack, tmp_path, case, status):
    """What a browser app sees when granite's upload URL is stale or altered."""
    key = f"{unique_prefix()}/refused.bin"
    if case == "expired":
        result = stack.upload_url(key, ttl_seconds=-60)
    else:
        result = stack.upload_url(key)
        metadata = decode_metadata(result.headers["Upload-Metadata"])
        metadata["asset-key"] = f"{key}.exe"
        result.headers["Upload-Metadata"] = encode_metadata(metadata)
    before = stack.tree()

    outcome = tus_js_upload(result, source_file(tmp_path, b"refused" * 100), parallelUploads=2)
    assert outcome.get("status") == status, outcome
    assert stack.tree() == before
