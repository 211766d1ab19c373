//! Draft §"Integrity Digests", §"Content Digests": a creation or an append may carry
//! `Content-Digest` (RFC 9530) for its content; "If the digests don't match the server SHOULD
//! consider the transfer failed, not append the content to the upload resource, and signal the
//! failure to the client". tusgate checks `sha-256` and the deprecated `sha` and `md5` (tus
//! 1.0's checksum algorithms); a mismatch is a 400 that keeps nothing of the content, a field
//! with only other algorithms checks nothing (README, IETF draft section). Interop 9 and 8
//! (tusgate only, see [`super::interop_9_8`]).

use md5::Md5;
use sha2::{Digest, Sha256};

use super::{CURRENT, Draft, interop_9_8, start, stored};
use crate::harness::b64;

fn sha256(data: &[u8]) -> String {
    format!("sha-256=:{}:", b64(&Sha256::digest(data)))
}

#[test]
fn a_matching_content_digest_is_accepted() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let resp = d
            .post(false)
            .header("Upload-Length", "11")
            .header("Content-Digest", &sha256(b"hello"))
            .body(b"hello")
            .send()
            .status(201)
            .has("Upload-Offset", "5");
        let upload = s.location(&resp);
        // md5 alone, and an unknown algorithm beside it.
        let md5 = format!("sha-512=:AAAA:, md5=:{}:", b64(&Md5::digest(b" world")));
        d.append_req(&upload, 5, true)
            .header("Content-Digest", &md5)
            .body(b" world")
            .send()
            .status(204)
            .has("Upload-Complete", "?1");
        assert_eq!(stored(&s, &upload), b"hello world");
        // Only algorithms tusgate does not know: nothing is checked.
        d.post(true)
            .header("Content-Digest", "sha-512=:AAAA:")
            .body(b"x")
            .send()
            .status(201)
            .has("Upload-Complete", "?1");
    }
}

#[test]
fn a_mismatching_content_digest_keeps_nothing() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(10));
        d.append(&upload, 0, false, b"hello").status(204);
        for complete in [false, true] {
            let resp = d
                .append_req(&upload, 5, complete)
                .header("Content-Digest", &sha256(b"other"))
                .body(b"world")
                .send();
            assert_eq!(resp.status, 400, "interop {v}: {resp:#?}");
            d.head(&upload)
                .status(204)
                .has("Upload-Offset", "5")
                .has("Upload-Complete", "?0");
        }
        // The same content with its right digest goes through.
        d.append_req(&upload, 5, true)
            .header("Content-Digest", &sha256(b"world"))
            .body(b"world")
            .send()
            .status(204)
            .has("Upload-Complete", "?1");
        assert_eq!(stored(&s, &upload), b"helloworld");

        let resp = d
            .post(true)
            .header("Content-Digest", &sha256(b"other"))
            .body(b"hello")
            .send();
        assert_eq!(resp.status, 400, "interop {v}: {resp:#?}");
    }
}
