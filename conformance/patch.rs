//! §2.4 PATCH, checks in tusd's order, and the core protocol's offset semantics.

use crate::harness::{Server, data};

const OCTET: &str = "application/offset+octet-stream";

#[test]
fn append_in_chunks() {
    let s = Server::start(&[]);
    let upload = s.create(Some(11));
    s.patch(&upload, 0, b"hello")
        .status(204)
        .has("Upload-Offset", "5")
        .has("Tus-Resumable", "1.0.0");
    s.patch(&upload, 5, b" world")
        .status(204)
        .has("Upload-Offset", "11");
    assert_eq!(s.stored(&upload), b"hello world");
}

#[test]
fn large_single_patch() {
    let s = Server::start(&[]);
    let bytes = data(8 << 20);
    let upload = s.create(Some(bytes.len() as u64));
    s.patch(&upload, 0, &bytes)
        .status(204)
        .has("Upload-Offset", &bytes.len().to_string());
    assert!(s.stored(&upload) == bytes, "stored bytes differ");
}

#[test]
fn wrong_content_type_is_400_before_lookup() {
    let s = Server::start(&[]);
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/offset+octet-stream; charset=utf-8"),
    ] {
        let mut req = s
            .tus("PATCH", "0123456789abcdef0123456789abcdef")
            .header("Upload-Offset", "0");
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        req.body(b"x")
            .send()
            .status(400)
            .body_is("ERR_INVALID_CONTENT_TYPE: missing or invalid Content-Type header\n");
    }
}

#[test]
fn invalid_offset_is_400_before_lookup() {
    let s = Server::start(&[]);
    for offset in [None, Some("-5"), Some("abc")] {
        let mut req = s
            .tus("PATCH", "0123456789abcdef0123456789abcdef")
            .header("Content-Type", OCTET);
        if let Some(o) = offset {
            req = req.header("Upload-Offset", o);
        }
        req.body(b"x")
            .send()
            .status(400)
            .body_is("ERR_INVALID_OFFSET: missing or invalid Upload-Offset header\n");
    }
}

#[test]
fn unknown_upload_is_404() {
    let s = Server::start(&[]);
    s.patch("0123456789abcdef0123456789abcdef", 0, b"x")
        .status(404)
        .body_is("ERR_UPLOAD_NOT_FOUND: upload not found\n");
}

/// Deliberate difference: tusgate's 409 says where the upload stands (`Upload-Offset`, which
/// the IETF draft requires); tusd's has no such header.
#[test]
fn offset_mismatch_is_409_with_the_current_offset() {
    let s = Server::start(&[]);
    let upload = s.create(Some(10));
    s.patch(&upload, 0, b"abc").status(204);
    let resp = s.patch(&upload, 2, b"xyz").status(409);
    let resp = if crate::is_tusgate() {
        resp.has("Upload-Offset", "3")
    } else {
        resp.lacks("Upload-Offset")
    };
    resp.body_is("ERR_MISMATCHED_OFFSET: mismatched offset\n");
    s.patch(&upload, 4, b"xyz").status(409);
    assert_eq!(s.stored(&upload), b"abc");
}

#[test]
fn patch_to_a_complete_upload_is_204_and_reads_nothing() {
    let s = Server::start(&[]);
    let upload = s.create_complete(b"done");
    s.patch(&upload, 4, b"more")
        .status(204)
        .has("Upload-Offset", "4");
    assert_eq!(s.stored(&upload), b"done");
}

#[test]
fn content_length_past_the_end_is_413_before_reading() {
    let s = Server::start(&[]);
    let upload = s.create(Some(5));
    s.patch(&upload, 0, b"toolong")
        .status(413)
        .lacks("Upload-Offset")
        .body_is("ERR_UPLOAD_SIZE_EXCEEDED: upload's size exceeded\n");
    s.req("HEAD", &upload).send().has("Upload-Offset", "0");
}

#[test]
fn chunked_body_past_the_end_stores_the_remainder_then_413() {
    let s = Server::start(&[]);
    let upload = s.create(Some(15));
    s.tus("PATCH", &upload)
        .header("Upload-Offset", "0")
        .header("Content-Type", OCTET)
        .chunked(&[b"abcdefghijklm", b"nopqrstuvwxyz"])
        .send()
        .status(413)
        .body_is("ERR_UPLOAD_SIZE_EXCEEDED: upload's size exceeded\n");
    s.req("HEAD", &upload).send().has("Upload-Offset", "15");
    assert_eq!(s.stored(&upload), b"abcdefghijklmno");
}

#[test]
fn chunked_body_within_the_length() {
    let s = Server::start(&[]);
    let upload = s.create(Some(6));
    s.tus("PATCH", &upload)
        .header("Upload-Offset", "0")
        .header("Content-Type", OCTET)
        .chunked(&[b"ab", b"cd", b"ef"])
        .send()
        .status(204)
        .has("Upload-Offset", "6");
}

#[test]
fn declare_length_on_the_final_chunk() {
    let s = Server::start(&[]);
    let upload = s.create(None);
    s.patch(&upload, 0, b"abc")
        .status(204)
        .has("Upload-Offset", "3");
    s.tus("PATCH", &upload)
        .header("Upload-Offset", "3")
        .header("Upload-Length", "6")
        .chunk(b"def")
        .send()
        .status(204)
        .has("Upload-Offset", "6");
    s.req("HEAD", &upload)
        .send()
        .has("Upload-Length", "6")
        .lacks("Upload-Defer-Length");
    assert_eq!(s.stored(&upload), b"abcdef");
}

#[test]
fn declare_length_after_the_final_chunk() {
    let s = Server::start(&[]);
    let upload = s.create(None);
    s.patch(&upload, 0, b"abc").status(204);
    s.tus("PATCH", &upload)
        .header("Upload-Offset", "3")
        .header("Upload-Length", "3")
        .chunk(b"")
        .send()
        .status(204)
        .has("Upload-Offset", "3");
    s.req("HEAD", &upload).send().has("Upload-Length", "3");
}

#[test]
fn declare_length_on_a_non_final_chunk_then_continue() {
    let s = Server::start(&[]);
    let upload = s.create(None);
    s.tus("PATCH", &upload)
        .header("Upload-Offset", "0")
        .header("Upload-Length", "6")
        .chunk(b"abc")
        .send()
        .status(204);
    s.patch(&upload, 3, b"def")
        .status(204)
        .has("Upload-Offset", "6");
    assert_eq!(s.stored(&upload), b"abcdef");
}

#[test]
fn upload_length_on_a_known_length_upload_is_400() {
    let s = Server::start(&[]);
    let upload = s.create(Some(6));
    s.tus("PATCH", &upload)
        .header("Upload-Offset", "0")
        .header("Upload-Length", "6")
        .chunk(b"abc")
        .send()
        .status(400)
        .body_is("ERR_INVALID_UPLOAD_LENGTH: missing or invalid Upload-Length header\n");
}

#[test]
fn declared_length_below_offset_or_over_max_is_400() {
    let s = Server::start(&["-max-size=100"]);
    let upload = s.create(None);
    s.patch(&upload, 0, b"abcd").status(204);
    for length in ["3", "101", "-1", "x"] {
        s.tus("PATCH", &upload)
            .header("Upload-Offset", "4")
            .header("Upload-Length", length)
            .chunk(b"")
            .send()
            .status(400);
    }
}

#[test]
fn deferred_upload_is_capped_by_max_size() {
    let s = Server::start(&["-max-size=5"]);
    let upload = s.create(None);
    s.tus("PATCH", &upload)
        .header("Upload-Offset", "0")
        .header("Content-Type", OCTET)
        .chunked(&[b"abcdefgh"])
        .send()
        .status(413);
    s.req("HEAD", &upload).send().has("Upload-Offset", "5");
}

/// tusd #1032, fixed in v2.10.1 (#1396): a `Content-Length` cannot lift the `-max-size` bound
/// of a deferred-length upload (v2.10.0 stored all 200 bytes and answered 204). Both answer
/// 413; tusd stores up to the bound first, tusgate refuses before reading a byte (README,
/// differences from tusd, 16).
#[test]
fn deferred_upload_with_a_content_length_over_max_size_is_413() {
    let s = Server::start(&["-max-size=100"]);
    let upload = s.create(None);
    s.patch(&upload, 0, &[b'a'; 200])
        .status(413)
        .body_is("ERR_UPLOAD_SIZE_EXCEEDED: upload's size exceeded\n");
    let stored = if crate::is_tusgate() { "0" } else { "100" };
    s.tus("HEAD", &upload)
        .send()
        .status(200)
        .has("Upload-Offset", stored)
        .has("Upload-Defer-Length", "1");
}

#[test]
fn empty_patch_keeps_the_offset() {
    let s = Server::start(&[]);
    let upload = s.create(Some(3));
    s.patch(&upload, 0, b"")
        .status(204)
        .has("Upload-Offset", "0");
}
