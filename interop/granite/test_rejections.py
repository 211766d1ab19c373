"""What must be refused: stale or altered upload tokens, unservable keys, stale or altered
download links. A refused upload leaves nothing behind, in storage/ or in uploads/."""

import base64
import time
from dataclasses import replace

import pytest
from granite_assets import AssetVisibility, build_asset_repository
from granite_assets.repositories import local_nginx

from conftest import (
    KiB,
    assert_downloads,
    create_upload,
    decode_metadata,
    download,
    encode_metadata,
    random_bytes,
    source_file,
    tuspy_upload,
    unique_prefix,
)


def assert_refused(stack, result, status, headers=None):
    before = stack.tree()
    resp = create_upload(result, 1024, headers)
    assert resp.status_code == status, f"{resp.status_code} {resp.text[:300]!r}"
    assert "Location" not in resp.headers
    assert stack.tree() == before, "a refused creation left files behind"


# --- upload tokens -----------------------------------------------------------------------------

def test_expired_token_negative_ttl(stack):
    result = stack.upload_url(f"{unique_prefix()}/late.pdf", "application/pdf", ttl_seconds=-60)
    assert_refused(stack, result, 400)


def test_expired_token_frozen_clock(stack, monkeypatch):
    """granite signed with the default TTL, but two TTLs ago."""
    real_time = time.time
    monkeypatch.setattr(local_nginx.time, "time", lambda: real_time() - 7200)
    result = stack.upload_url(f"{unique_prefix()}/late.pdf", "application/pdf")
    monkeypatch.undo()
    assert_refused(stack, result, 400)


def _tamper_token_hex(md):
    token = md["upload-token"]
    md["upload-token"] = ("0" if token[0] != "0" else "1") + token[1:]


def _set(field, value):
    def tamper(md):
        md[field] = value(md[field])
    return tamper


# Each case alters granite's metadata after signing; all must be refused as invalid (403).
TAMPERINGS = {
    "token-hex-char": _tamper_token_hex,
    "asset-key": _set("asset-key", lambda key: key.replace("doc.pdf", "doc2.pdf")),
    "visibility": _set("visibility", lambda _: "public"),
    "content-type": _set("content-type", lambda _: "text/html"),
    "expires-extended": _set("upload-expires", lambda e: str(int(e) + 86400)),
    "token-missing": lambda md: md.pop("upload-token"),
    "token-empty": _set("upload-token", lambda _: ""),
}


@pytest.mark.parametrize("case", TAMPERINGS)
def test_tampered_metadata(stack, case):
    result = stack.upload_url(f"{unique_prefix()}/doc.pdf", "application/pdf")
    metadata = decode_metadata(result.headers["Upload-Metadata"])
    TAMPERINGS[case](metadata)
    headers = {**result.headers, "Upload-Metadata": encode_metadata(metadata)}
    assert_refused(stack, result, 403, headers)


def test_tampered_base64_of_token(stack):
    """One character of the base64 token value itself changed (still valid base64)."""
    result = stack.upload_url(f"{unique_prefix()}/doc.pdf", "application/pdf")
    header = result.headers["Upload-Metadata"]
    b64 = header.rsplit("upload-token ", 1)[1]
    changed = ("A" if b64[0] != "A" else "B") + b64[1:]
    base64.b64decode(changed, validate=True)  # still decodes, just to other bytes
    headers = {**result.headers, "Upload-Metadata": header.replace(b64, changed)}
    assert_refused(stack, result, 403, headers)


def test_no_upload_metadata(stack):
    result = stack.upload_url(f"{unique_prefix()}/doc.pdf")
    headers = {k: v for k, v in result.headers.items() if k != "Upload-Metadata"}
    assert_refused(stack, result, 403, headers)


def test_token_signed_with_another_secret(stack):
    other = build_asset_repository(replace(stack.config, upload_secret="not-the-secret"))
    result = other.build_upload_url(f"{unique_prefix()}/doc.pdf", "application/pdf")
    assert_refused(stack, result, 403)


# --- keys granite signs but a download URL cannot serve (granite-and-nginx.md §2.5) ------------

BAD_KEYS = ["a/../b.txt", "a/./b.txt", "a//b.txt", "dir/", "100%.txt", "100%25.txt",
            "what?.txt", "a#b.txt", "back\\slash.txt", "tab\there.txt"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unservable_key_is_refused(stack, key):
    result = stack.upload_url(f"{unique_prefix()}/{key}", "text/plain")  # correctly signed
    assert_refused(stack, result, 400)


# --- download links ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def private_file(stack, tmp_path_factory):
    key = f"{unique_prefix()}/secret/statement.pdf"
    data = random_bytes(10 * KiB, seed=key)
    result = stack.upload_url(key, "application/pdf", visibility=AssetVisibility.PRIVATE)
    tuspy_upload(result, source_file(tmp_path_factory.mktemp("src"), data))
    return key, data


def test_valid_download_link(stack, private_file):
    key, data = private_file
    assert_downloads(stack, key, AssetVisibility.PRIVATE, data)


def test_expired_download_link_is_gone(stack, private_file):
    key, _ = private_file
    url = stack.repo.build_download_url(key, ttl_seconds=-60).url
    assert download(url).status_code == 410


def _replace_param(url, name, value):
    base, query = url.split("?", 1)
    params = dict(p.split("=", 1) for p in query.split("&"))
    params[name] = value(params[name])
    return f"{base}?" + "&".join(f"{k}={v}" for k, v in params.items())


def _other_first_char(s):
    # The first character: changing the last one may not change the decoded digest (§2.2).
    return ("A" if s[0] != "A" else "B") + s[1:]


@pytest.mark.parametrize(("case", "ttl", "alter"), [
    ("md5-first-char", None, lambda u: _replace_param(u, "md5", _other_first_char)),
    ("expires-extended", None, lambda u: _replace_param(u, "expires", lambda e: str(int(e) + 60))),
    ("md5-missing", None, lambda u: u.replace("md5=", "x-md5=")),
    ("expired-and-tampered", -60, lambda u: _replace_param(u, "md5", _other_first_char)),
])
def test_tampered_download_link_is_forbidden(stack, private_file, case, ttl, alter):
    key, _ = private_file
    url = alter(stack.repo.build_download_url(key, ttl_seconds=ttl).url)
    assert download(url).status_code == 403, url
