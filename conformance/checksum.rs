//! The checksum extension (tusd has none: it ignores `Upload-Checksum`).

use crate::differs;
use crate::harness::{Resp, Server, b64};

const OCTET: &str = "application/offset+octet-stream";
/// SHA-1 of "hello".
const SHA1_HELLO: [u8; 20] = [
    0xaa, 0xf4, 0xc6, 0x1d, 0xdc, 0xc5, 0xe8, 0xa2, 0xda, 0xbe, 0xde, 0x0f, 0x3b, 0x48, 0x2c, 0xd9,
    0xae, 0xa9, 0x43, 0x4d,
];

/// PATCHes `body` at offset 0 of `upload` with `Upload-Checksum: checksum`.
fn patch_with_checksum(s: &Server, upload: &str, checksum: &str, body: &[u8]) -> Resp {
    s.tus("PATCH", upload)
        .header("Upload-Offset", "0")
        .header("Content-Type", OCTET)
        .header("Upload-Checksum", checksum)
        .body(body)
        .send()
}

#[test]
fn matching_checksum_is_stored() {
    let s = Server::start(&[]);
    let upload = s.create(Some(5));
    patch_with_checksum(&s, &upload, &format!("sha1 {}", b64(&SHA1_HELLO)), b"hello")
        .status(204)
        .has("Upload-Offset", "5");
}

#[test]
fn mismatching_checksum_is_460_and_the_chunk_is_discarded() {
    let s = Server::start(&[]);
    let upload = s.create(Some(10));
    let resp = patch_with_checksum(&s, &upload, &format!("sha1 {}", b64(&SHA1_HELLO)), b"HELLO");
    // Deliberate difference: tusd has no checksum extension and stores the chunk.
    assert_eq!(resp.status, differs(204, 460));
    s.req("HEAD", &upload)
        .send()
        .has("Upload-Offset", differs("5", "0"));
}

#[test]
fn unsupported_algorithm_is_400() {
    let s = Server::start(&[]);
    let upload = s.create(Some(5));
    let resp = patch_with_checksum(&s, &upload, "crc32 AAAAAA==", b"hello");
    assert_eq!(resp.status, differs(204, 400));
}

/// A digest of the wrong length for its algorithm can never match: a mismatch (460, nothing
/// stored), as the checksum extension says, not a malformed header (400).
#[test]
fn wrong_length_digest_is_a_mismatch() {
    let s = Server::start(&[]);
    let upload = s.create(Some(5));
    let resp = patch_with_checksum(&s, &upload, "sha1 AAAA", b"hello");
    // tusd has no checksum extension and stores the chunk.
    assert_eq!(resp.status, differs(204, 460));
    s.req("HEAD", &upload)
        .send()
        .has("Upload-Offset", differs("5", "0"));
}
