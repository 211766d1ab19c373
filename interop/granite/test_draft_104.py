"""granite's tokens over the draft with `-draft-104`: the flow an iPhone's URLSession relies on.

URLSession sends the whole file in its creation request (`Upload-Complete: ?1`) and learns the
upload URL from the `104 (Upload Resumption Supported)` interim response; when the network drops
mid-request it asks that URL for the offset and appends the rest. tusgate sends the 104 only
with `-draft-104` (off by default, for proxies that break on unknown 1xx), after the token was
checked and the upload exists, before it reads a byte of the content.

tusgate writes the 104 between hyper's messages on HTTP/1.1 (`src/interim.rs`).
"""

from __future__ import annotations

import time

import pytest
from granite_assets import AssetVisibility

from conftest import (
    MiB,
    VISIBILITIES,
    assert_downloads,
    assert_published,
    create_upload,
    decode_metadata,
    encode_metadata,
    random_bytes,
    unique_prefix,
)
from draft_http import (
    INTEROP_VERSIONS,
    Exchange,
    append,
    assert_draft_reply,
    assert_nothing_published,
    retrieve_offset,
    upload_url_of,
)

TUSGATE_ARGS = ["-draft-104"]
# How long a client waits for the 104 before it would send the content anyway.
WAIT_104_S = 3.0


def creation(stack, result, version: int, length: int, *, complete: bool,
             upload_length: bool = False, metadata: str | None = None) -> Exchange:
    """Sends the headers of a URLSession-shaped creation announcing `length` bytes of content;
    the caller sends the content."""
    headers = {
        "Upload-Draft-Interop-Version": str(version),
        "Upload-Complete": "?1" if complete else "?0",
        "Content-Length": str(length),
        "Content-Type": "application/octet-stream",
        "Upload-Metadata": result.headers["Upload-Metadata"] if metadata is None else metadata,
    }
    if upload_length:
        headers["Upload-Length"] = str(length)
    return Exchange(result.url, "POST", headers)


def assert_104(interim, stack, version: int) -> str:
    """An interim 104 as the draft wants it: Location and the interop version. Returns the URL."""
    assert interim is not None, f"no 104 within {WAIT_104_S} s"
    status, headers = interim
    assert status == 104, interim
    assert headers.get("upload-draft-interop-version") == str(version), interim
    location = headers.get("location")
    assert location, interim
    url = location if location.startswith("http") else f"{stack.tusd_url}{location}"
    assert url.startswith(f"{stack.tusd_url}/files/"), url
    return url


@pytest.mark.parametrize("visibility", VISIBILITIES, ids=lambda v: v.value)
@pytest.mark.parametrize("version", INTEROP_VERSIONS, ids=lambda v: f"interop-{v}")
def test_optimistic_creation_cut_off_then_resumed(stack, version, visibility):
    """The whole file in the POST; the 104 names the upload; the connection drops half way;
    offset retrieval and one append of the rest publish the file."""
    key = f"{unique_prefix()}/photos/IMG_0002.HEIC"
    data = random_bytes(2 * MiB + 5, seed=key)
    result = stack.upload_url(key, "image/heic", visibility=visibility)

    exchange = creation(stack, result, version, len(data), complete=True, upload_length=True)
    url = assert_104(exchange.wait_interim(WAIT_104_S), stack, version)
    half = len(data) // 2
    exchange.send(data[:half])
    time.sleep(0.3)  # the server stores what arrived before the connection drops
    exchange.close()

    state = retrieve_offset(url, version)
    assert_draft_reply(state, version, (200, 204), complete=False)
    offset = int(state.headers["upload-offset"])
    assert 0 < offset <= half, f"offset {offset} after sending {half} bytes"
    assert_nothing_published(stack, key)

    done = append(url, version, offset, data[offset:], complete=True)
    assert_draft_reply(done, version, (200, 201, 204), complete=True)
    assert_published(stack, visibility, key, data)
    assert_downloads(stack, key, visibility, data)


@pytest.mark.parametrize("version", INTEROP_VERSIONS, ids=lambda v: f"interop-{v}")
def test_one_104_with_the_final_location(stack, version):
    """A creation with part of the file (`?0`) gets exactly one 104 and a 201 whose Location
    is the 104's (the draft: identical in every interim and final response of the request)."""
    key = f"{unique_prefix()}/videos/part.mov"
    data = random_bytes(1 * MiB + 3, seed=key)
    first = data[: len(data) // 3]
    result = stack.upload_url(key, "video/quicktime", visibility=AssetVisibility.PRIVATE)

    exchange = creation(stack, result, version, len(first), complete=False)
    url = assert_104(exchange.wait_interim(WAIT_104_S), stack, version)
    exchange.send(first)
    created = exchange.reply()
    assert_draft_reply(created, version, 201, complete=False, interim=(104,))
    assert upload_url_of(stack, created) == url

    done = append(url, version, len(first), data[len(first):], complete=True)
    assert_draft_reply(done, version, (200, 201, 204), complete=True)
    assert_published(stack, AssetVisibility.PRIVATE, key, data)
    assert_downloads(stack, key, AssetVisibility.PRIVATE, data)


@pytest.mark.parametrize("version", INTEROP_VERSIONS, ids=lambda v: f"interop-{v}")
def test_no_104_for_a_refused_token(stack, version):
    """The token is checked before the upload exists, so a refused creation gets its 403 and
    no 104: a client never learns an upload URL for a token that was not accepted."""
    key = f"{unique_prefix()}/refused.bin"
    data = random_bytes(64 * 1024, seed=key)
    result = stack.upload_url(key)
    fields = decode_metadata(result.headers["Upload-Metadata"])
    fields["visibility"] = "public" if fields["visibility"] == "private" else "private"
    before = stack.tree()

    exchange = creation(stack, result, version, len(data), complete=True,
                        metadata=encode_metadata(fields))
    exchange.send(data)
    reply = exchange.reply()

    assert reply.status == 403, reply
    assert reply.interim == [], reply
    assert stack.tree() == before


def test_no_104_for_tus_1_0(stack):
    """The draft: no 104 to a request without the interop version. granite's tus 1.0
    creation, exactly as it describes it, gets its 201 alone."""
    key = f"{unique_prefix()}/tus.bin"
    result = stack.upload_url(key)
    headers = {**result.headers, "Upload-Length": "3", "Content-Length": "0"}
    exchange = Exchange(result.url, "POST", headers)
    reply = exchange.reply()
    assert reply.status == 201, reply
    assert reply.interim == [], reply
    assert reply.headers.get("tus-resumable") == "1.0.0", reply
    # and the same through requests, as the tus 1.0 suite does it
    assert create_upload(stack.upload_url(f"{key}.2"), 3).status_code == 201
