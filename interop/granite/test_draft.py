"""granite-assets' upload tokens over the IETF resumable upload draft (issue 13).

granite signs exactly as today (`build_upload_url`); only the transport changes. tusgate takes
the token from `Upload-Metadata` on a draft creation (README "IETF resumable upload draft"), so
a client sends granite's `Upload-Metadata` header unchanged beside the draft's fields.

* raw HTTP shaped like iOS URLSession (interop 8, iOS 26.2) and the current draft (interop 9):
  - optimistic creation: one POST with `Upload-Complete: ?1`, `Content-Length`, `Content-Type`
    and granite's `Upload-Metadata`, the whole file in the body;
  - careful creation: an empty POST with `Upload-Complete: ?0`, then one PATCH
    `application/partial-upload` with `Upload-Complete: ?1`;
  - careful creation whose append breaks off half way (the connection closes), then offset
    retrieval (HEAD) and an append of the rest;
  - expired and altered tokens refused at creation, leaving nothing behind;
* the real tus-js-client in its draft modes (`ietf-draft-05` = interop 6, `ietf-draft-03` =
  interop 5) with granite's headers as `headers`, as granite's docs show for tus 1.0.

Every upload ends with the file published at storage/<visibility>/<key> and downloadable, byte
for byte, at the URL granite builds (signed for private, plain for public).
"""

from __future__ import annotations

import time

import pytest
from granite_assets import AssetVisibility

from conftest import (
    KiB,
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
from draft_http import (
    INTEROP_VERSIONS,
    PARTIAL_UPLOAD,
    Exchange,
    Reply,
    append,
    assert_draft_reply,
    assert_nothing_published,
    retrieve_offset,
    send,
    upload_url_of,
)

SIZE = 300 * KiB + 7


def granite_metadata(result) -> str:
    """granite's Upload-Metadata, unchanged: the token travels as it does over tus 1.0."""
    return result.headers["Upload-Metadata"]


def create(stack, result, version: int, *, complete: bool, body: bytes = b"",
           content_type: str | None = "application/octet-stream",
           upload_length: int | None = None, metadata: str | None = None) -> Reply:
    """A draft creation POST to granite's upload URL, shaped like URLSession's."""
    headers = {
        "Upload-Draft-Interop-Version": str(version),
        "Upload-Complete": "?1" if complete else "?0",
        "Content-Length": str(len(body)),
        "Upload-Metadata": granite_metadata(result) if metadata is None else metadata,
    }
    if content_type is not None:
        headers["Content-Type"] = content_type
    if upload_length is not None:
        headers["Upload-Length"] = str(upload_length)
    assert result.url == f"{stack.tusd_url}/files/" and result.method == "POST"
    return send(result.url, "POST", headers, body)


@pytest.mark.parametrize("visibility", VISIBILITIES, ids=lambda v: v.value)
@pytest.mark.parametrize("version", INTEROP_VERSIONS, ids=lambda v: f"interop-{v}")
def test_optimistic_creation(stack, version, visibility):
    """URLSession's default: the whole file in the creation request, `Upload-Complete: ?1`. The
    request's Content-Type (what URLSession sends for the file) is not the token's signed
    content type: the token is checked against its own fields only."""
    key = f"{unique_prefix()}/photos/IMG_0001.HEIC"
    data = random_bytes(SIZE, seed=key)
    result = stack.upload_url(key, "image/heic", visibility=visibility)

    reply = create(stack, result, version, complete=True, body=data,
                   content_type="application/octet-stream")

    assert_draft_reply(reply, version, (200, 201, 204), complete=True)
    assert_published(stack, visibility, key, data)
    assert_downloads(stack, key, visibility, data)


@pytest.mark.parametrize("visibility", VISIBILITIES, ids=lambda v: v.value)
@pytest.mark.parametrize("version", INTEROP_VERSIONS, ids=lambda v: f"interop-{v}")
@pytest.mark.parametrize("length", ["upload-length", "no-length"])
def test_careful_creation_then_append(stack, version, visibility, length):
    """An empty creation (`?0`, the upload URL first), then one append that completes it. With
    `no-length` the length is only known from the completing append (Content-Length + ?1)."""
    key = f"{unique_prefix()}/videos/clip.mov"
    data = random_bytes(SIZE, seed=key)
    result = stack.upload_url(key, "video/quicktime", visibility=visibility)

    created = create(stack, result, version, complete=False, content_type="video/quicktime",
                     upload_length=len(data) if length == "upload-length" else None)
    assert_draft_reply(created, version, 201, complete=False)
    assert "upload-limit" in created.headers, created
    url = upload_url_of(stack, created)
    assert_nothing_published(stack, key)

    offset = retrieve_offset(url, version)
    assert_draft_reply(offset, version, (200, 204), complete=False)
    assert offset.headers.get("upload-offset") == "0", offset

    done = append(url, version, 0, data, complete=True)
    assert_draft_reply(done, version, (200, 201, 204), complete=True)
    assert_published(stack, visibility, key, data)
    assert_downloads(stack, key, visibility, data)


def interrupted_append(url: str, version: int, data: bytes, sent: int) -> None:
    """A PATCH announcing all of `data` with `Upload-Complete: ?1` whose connection closes
    after `sent` bytes of its content, as when an iPhone loses the network mid-upload."""
    exchange = Exchange(url, "PATCH", {
        "Upload-Draft-Interop-Version": str(version),
        "Upload-Complete": "?1",
        "Upload-Offset": "0",
        "Content-Type": PARTIAL_UPLOAD,
        "Content-Length": str(len(data)),
    })
    exchange.send(data[:sent])
    time.sleep(0.3)  # let the server store what arrived before the connection drops
    exchange.close()


@pytest.mark.parametrize("version", INTEROP_VERSIONS, ids=lambda v: f"interop-{v}")
def test_append_interrupted_then_resumed(stack, version):
    """Careful creation; the completing append breaks off half way: nothing is published, the
    offset retrieval says how much was kept (the draft's SHOULD: as much as possible), and an
    append of the rest publishes the whole file."""
    visibility = AssetVisibility.PRIVATE
    key = f"{unique_prefix()}/videos/long.mov"
    data = random_bytes(2 * MiB + 3, seed=key)
    result = stack.upload_url(key, "video/quicktime", visibility=visibility)

    created = create(stack, result, version, complete=False, upload_length=len(data))
    assert_draft_reply(created, version, 201, complete=False)
    url = upload_url_of(stack, created)

    half = len(data) // 2
    interrupted_append(url, version, data, half)

    state = retrieve_offset(url, version)
    assert_draft_reply(state, version, (200, 204), complete=False)
    offset = int(state.headers["upload-offset"])
    assert 0 < offset <= half, f"offset {offset} after sending {half} bytes"
    assert state.headers.get("upload-length") == str(len(data)), state
    assert_nothing_published(stack, key)

    done = append(url, version, offset, data[offset:], complete=True)
    assert_draft_reply(done, version, (200, 201, 204), complete=True)
    assert_published(stack, visibility, key, data)
    assert_downloads(stack, key, visibility, data)


@pytest.mark.parametrize("version", INTEROP_VERSIONS, ids=lambda v: f"interop-{v}")
@pytest.mark.parametrize(("case", "status"), [("expired", 400), ("altered", 403),
                                              ("missing", 403)])
def test_token_refused_at_creation(stack, version, case, status):
    """A draft creation meets the same token checks as tus 1.0's: stale → 400, altered or
    absent → 403, and nothing is stored or published."""
    key = f"{unique_prefix()}/refused.bin"
    data = random_bytes(4 * KiB, seed=key)
    metadata = None
    if case == "expired":
        result = stack.upload_url(key, ttl_seconds=-60)
    else:
        result = stack.upload_url(key)
        fields = decode_metadata(result.headers["Upload-Metadata"])
        if case == "altered":
            fields["asset-key"] = f"{key}.exe"
        else:
            fields = {"filename": "refused.bin"}
        metadata = encode_metadata(fields)
    before = stack.tree()

    reply = create(stack, result, version, complete=True, body=data, metadata=metadata)

    assert reply.status == status, reply
    assert "tus-resumable" not in reply.headers, f"answered as tus 1.0: {reply!r}"
    assert stack.tree() == before


TUS_JS_DRAFT_MODES = {
    "ietf-draft-05-single-request": {"protocol": "ietf-draft-05"},
    "ietf-draft-05-chunks-1MiB": {"protocol": "ietf-draft-05", "chunkSize": 1 * MiB},
    "ietf-draft-05-data-during-creation": {"protocol": "ietf-draft-05", "chunkSize": 1 * MiB,
                                           "uploadDataDuringCreation": True},
    "ietf-draft-03-single-request": {"protocol": "ietf-draft-03"},
    "ietf-draft-03-chunks-1MiB": {"protocol": "ietf-draft-03", "chunkSize": 1 * MiB},
}


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    data = random_bytes(5 * MiB + 1, seed="tus-js-draft")
    return data, source_file(tmp_path_factory.mktemp("src"), data)


@pytest.mark.parametrize("visibility", VISIBILITIES, ids=lambda v: v.value)
@pytest.mark.parametrize("mode", TUS_JS_DRAFT_MODES)
def test_tus_js_client_draft(stack, big_file, mode, visibility):
    """tus-js-client's draft modes with granite's headers passed unchanged as `headers` (they
    include `Tus-Resumable: 1.0.0`, so each request carries both protocols' markers; the
    interop version decides, for tusgate as for tusd)."""
    data, path = big_file
    key = f"{unique_prefix()}/videos/clip.mp4"
    result = stack.upload_url(key, "video/mp4", visibility=visibility)

    outcome = tus_js_upload(result, path, **TUS_JS_DRAFT_MODES[mode])

    assert "url" in outcome, outcome
    assert outcome["url"].startswith(f"{stack.tusd_url}/files/")
    interop = {"ietf-draft-05": "6", "ietf-draft-03": "5"}[TUS_JS_DRAFT_MODES[mode]["protocol"]]
    assert outcome["interop"] == [interop], outcome
    assert not outcome["tusResumableAnswers"], f"answered as tus 1.0: {outcome}"
    assert_published(stack, visibility, key, data)
    assert_downloads(stack, key, visibility, data)
