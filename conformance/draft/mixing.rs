//! The draft beside tus 1.0 on one endpoint (issue 13: "an upload created by one protocol is
//! not resumable by the other unless you define it"). tusgate defines it (src/draft/mod.rs,
//! "one upload, two protocols"): either protocol resumes the other's uploads, except that a tus
//! final (concatenated) upload takes no draft append, as it takes no tus PATCH. And
//! granite-assets' upload tokens travel over the draft in `Upload-Metadata` (an extension of
//! the draft), with the same checks and publish as tus 1.0.
//!
//! Mixing runs for interop 9 and 8 against tusgate and interop 6 against both servers (tusd
//! shares one upload between its protocols too); tokens are tusgate's alone.

use std::io::Write;
use std::time::Duration;

use super::{CURRENT, Draft, path_of_id, start, stored, wait_for_offset, wait_for_upload};
use crate::harness::{data, token_metadata, tokened};
use crate::is_tusgate;

/// The interop versions the mixing cases run: 9, 8 and 6 on tusgate, 6 on tusd (which speaks
/// no later version).
fn versions() -> Vec<&'static str> {
    if is_tusgate() {
        let mut all = CURRENT.to_vec();
        all.push("6");
        all
    } else {
        vec!["6"]
    }
}

/// A draft-created upload (known and deferred length) finished by tus 1.0 PATCHes.
#[test]
fn a_draft_upload_resumed_by_tus() {
    let s = start(&[]);
    for v in versions() {
        let d = Draft::new(&s, v);
        let known = d.create(Some(11));
        d.append(&known, 0, false, b"hello").status(204);
        s.tus("HEAD", &known)
            .send()
            .status(200)
            .has("Upload-Offset", "5")
            .has("Upload-Length", "11");
        s.patch(&known, 5, b" world")
            .status(204)
            .has("Upload-Offset", "11");
        d.head(&known).status(204).has("Upload-Complete", "?1");
        assert_eq!(stored(&s, &known), b"hello world", "interop {v}");

        let deferred = d.create(None);
        d.append(&deferred, 0, false, b"abc").status(204);
        s.tus("HEAD", &deferred)
            .send()
            .status(200)
            .has("Upload-Defer-Length", "1");
        s.tus("PATCH", &deferred)
            .header("Upload-Offset", "3")
            .header("Upload-Length", "6")
            .chunk(b"def")
            .send()
            .status(204)
            .has("Upload-Offset", "6");
        d.head(&deferred)
            .status(204)
            .has("Upload-Complete", "?1")
            .has("Upload-Length", "6");
        assert_eq!(stored(&s, &deferred), b"abcdef", "interop {v}");
    }
}

/// A tus-created upload (known and deferred length) finished by draft appends.
#[test]
fn a_tus_upload_resumed_by_the_draft() {
    let s = start(&[]);
    let bytes = data(300_000);
    for v in versions() {
        let d = Draft::new(&s, v);
        let known = s.create(Some(bytes.len() as u64));
        s.patch(&known, 0, &bytes[..100_000]).status(204);
        d.head(&known)
            .status(204)
            .has("Upload-Offset", "100000")
            .has("Upload-Complete", "?0")
            .has("Upload-Length", "300000");
        d.append(&known, 100_000, true, &bytes[100_000..])
            .status(204)
            .has("Upload-Offset", "300000");
        d.head(&known).status(204).has("Upload-Complete", "?1");
        assert!(
            stored(&s, &known) == bytes,
            "interop {v}: stored bytes differ"
        );

        let deferred = s.create(None);
        s.patch(&deferred, 0, b"abc").status(204);
        d.head(&deferred).status(204).lacks("Upload-Length");
        d.append(&deferred, 3, true, b"def")
            .status(204)
            .has("Upload-Offset", "6");
        d.head(&deferred)
            .status(204)
            .has("Upload-Complete", "?1")
            .has("Upload-Length", "6");
        assert_eq!(stored(&s, &deferred), b"abcdef", "interop {v}");
    }
}

/// A tus final upload (concatenation) takes no draft append, as it takes no tus PATCH (403
/// `ERR_MODIFY_FINAL`); offset retrieval reports it complete.
#[test]
fn a_tus_final_upload_refuses_a_draft_append() {
    let s = start(&[]);
    for v in versions() {
        let d = Draft::new(&s, v);
        let resp = s
            .tus("POST", "")
            .header("Upload-Concat", "partial")
            .header("Upload-Length", "1")
            .send()
            .status(201);
        let partial = s.location(&resp);
        s.patch(&partial, 0, b"x").status(204);
        let resp = s
            .tus("POST", "")
            .header("Upload-Concat", &format!("final;{partial}"))
            .send()
            .status(201);
        let fin = s.location(&resp);
        let resp = d.append(&fin, 1, true, b"y");
        assert_eq!(resp.status, 403, "interop {v}: {resp:#?}");
        assert!(resp.body_text().contains("ERR_MODIFY_FINAL"), "{resp:#?}");
        d.head(&fin)
            .status(204)
            .has("Upload-Complete", "?1")
            .has("Upload-Offset", "1");
        assert_eq!(stored(&s, &fin), b"x");
    }
}

/// granite-assets' token in `Upload-Metadata` on a draft creation: the upload is published to
/// `{visibility}/{key}` by the append that completes it, and (as with tus 1.0) its bytes are not
/// readable through the upload URL. Without a token, creation is 403. tusgate only: tusd has no
/// tokens.
#[test]
fn a_tokened_draft_upload_is_published() {
    if !is_tusgate() {
        return;
    }
    let s = tokened().start();
    let bytes = data(200_000);
    for v in versions() {
        let d = Draft::new(&s, v);
        let key = format!("draft/{v}/report.bin");
        let resp = d
            .post(false)
            .header(
                "Upload-Metadata",
                &token_metadata(&key, "private", "application/octet-stream"),
            )
            .header("Upload-Length", &bytes.len().to_string())
            .body(&bytes[..50_000])
            .send()
            .status(201);
        let upload = s.location(&resp);
        let asset = s.asset(&format!("private/{key}"));
        assert!(!asset.exists(), "interop {v}: published before complete");
        d.append(&upload, 50_000, true, &bytes[50_000..])
            .status(204)
            .has("Upload-Offset", "200000");
        assert!(
            std::fs::read(&asset).expect("published asset") == bytes,
            "interop {v}: published bytes differ"
        );
        s.req("GET", &upload).send().status(403);
        d.head(&upload).status(204).has("Upload-Complete", "?1");

        // Complete in one request.
        let key = format!("draft/{v}/logo.png");
        d.post(true)
            .header(
                "Upload-Metadata",
                &token_metadata(&key, "public", "image/png"),
            )
            .body(b"\x89PNG")
            .send()
            .status(201)
            .has("Upload-Complete", "?1");
        assert_eq!(
            std::fs::read(s.asset(&format!("public/{key}"))).expect("published asset"),
            b"\x89PNG"
        );

        // No token: refused, nothing created.
        let resp = d.post(true).body(b"anonymous").send();
        assert_eq!(resp.status, 403, "interop {v}: {resp:#?}");
        assert_eq!(resp.header("Location"), None);
    }
}

/// §"Upload Creation": an interrupted upload "MUST NOT be considered complete": a tokened `?1`
/// creation that breaks off publishes nothing; the append that brings the rest does. tusgate
/// only (tokens).
#[test]
fn an_interrupted_tokened_creation_publishes_nothing_until_resumed() {
    if !is_tusgate() {
        return;
    }
    let s = tokened().start();
    let d = Draft::new(&s, "9");
    let bytes = data(100_000);
    let (mut stream, _) = d
        .post(true)
        .header(
            "Upload-Metadata",
            &token_metadata("draft/cut.bin", "public", "application/octet-stream"),
        )
        .send_partial(bytes.len() as u64, &bytes[..20_000]);
    stream.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    drop(stream);
    let upload = path_of_id(&s, &wait_for_upload(&s)[0]);
    wait_for_offset(d, &upload, 20_000).has("Upload-Complete", "?0");
    let asset = s.asset("public/draft/cut.bin");
    assert!(!asset.exists(), "an interrupted upload was published");
    d.append(&upload, 20_000, true, &bytes[20_000..])
        .status(204)
        .has("Upload-Complete", "?1");
    assert!(
        std::fs::read(&asset).expect("published") == bytes,
        "published bytes differ"
    );
}

/// §"Upload Append": "If the length is known, the server MUST prevent the offset from exceeding
/// the upload length by rejecting the request once the offset exceeds the length, marking the
/// upload resource invalid and rejecting any further interaction with it." A body of unknown
/// length (chunked) that runs past the declared length is such a request: the client's
/// representation is not the one it declared, so nothing may be published.
#[test]
fn a_body_past_the_length_invalidates_the_upload() {
    if !is_tusgate() {
        return;
    }
    let s = tokened().start();
    let d = Draft::new(&s, "9");
    let upload = create_public_of_five(&d, "draft/over.bin");
    let resp = d
        .append_req(&upload, 0, false)
        .chunked(&[b"abc", b"defgh"])
        .send();
    assert!(resp.status >= 400, "{resp:#?}");
    assert!(
        !s.asset("public/draft/over.bin").exists(),
        "a representation longer than declared was published (truncated)"
    );
    let state = d.head(&upload);
    assert!(
        state.status >= 400,
        "the upload is still usable: {state:#?}"
    );
}

/// The same overflow with the process dying before the upload is removed: what survives is an
/// incomplete upload, never a complete one that startup recovery would publish (the bytes that
/// would have filled the length were never stored).
#[test]
fn a_body_past_the_length_publishes_nothing_across_a_crash() {
    if !is_tusgate() {
        return;
    }
    let mut s = tokened().start();
    let upload = create_public_of_five(&Draft::new(&s, "9"), "draft/over-crash.bin");
    s.restart_with(
        s.launch_settings()
            .env("TUSGATE_CRASH_AT", "upload:overflowed"),
    );
    let mut stream = s.connect();
    let request = format!(
        "PATCH {upload} HTTP/1.1\r\nHost: {}\r\nUpload-Draft-Interop-Version: 9\r\n\
         Content-Type: application/partial-upload\r\nUpload-Offset: 0\r\n\
         Upload-Complete: ?0\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nabc\r\n2\r\nde\r\n3\r\nfgh\r\n0\r\n\r\n",
        s.addr
    );
    stream.write_all(request.as_bytes()).expect("request");
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut answer);
    assert!(answer.is_empty(), "did not crash at upload:overflowed");
    s.restart_without_crash_point();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !s.asset("public/draft/over-crash.bin").exists(),
        "recovery published a representation longer than declared (truncated)"
    );
    let d = Draft::new(&s, "9");
    let state = d.head(&upload);
    assert_ne!(
        state.header("upload-offset").as_deref(),
        Some("5"),
        "the upload was left complete: {state:#?}"
    );
}

/// Creates a tokened public draft upload of 5 bytes at `key`, without content; returns its path.
fn create_public_of_five(d: &Draft<'_>, key: &str) -> String {
    let resp = d
        .post(false)
        .header(
            "Upload-Metadata",
            &token_metadata(key, "public", "application/octet-stream"),
        )
        .header("Upload-Length", "5")
        .send()
        .status(201);
    d.s.location(&resp)
}
