//! Draft §"Upload Append" (PATCH with `application/partial-upload`, `Upload-Offset` and
//! `Upload-Complete`), its length rules (§"Length") and its problem documents (§"Problem
//! Types"). Interop 9 and 8 (tusgate only, see [`super::interop_9_8`]); interop 6 and 5 are in
//! [`super::versions`].

use super::{
    CURRENT, Draft, INCONSISTENT_LENGTH, MISMATCHING_OFFSET, PARTIAL_UPLOAD, interop_9_8, problem,
    start, stored,
};
use crate::harness::data;

/// §"Upload Append", server behaviour: ?0 appends answer 2xx with `Upload-Complete: ?0`, the
/// ?1 append that brings the rest completes the upload (and with no length known, makes it
/// the offset plus `Content-Length`, §"Length" indicator 1).
#[test]
fn appends_then_complete() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(None);
        d.append(&upload, 0, false, b"hello")
            .status(204)
            .has("Upload-Complete", "?0")
            .has("Upload-Offset", "5")
            .has(super::INTEROP, v);
        d.append(&upload, 5, false, b"")
            .status(204)
            .has("Upload-Offset", "5");
        d.append(&upload, 5, true, b" world")
            .status(204)
            .has("Upload-Complete", "?1")
            .has("Upload-Offset", "11");
        d.head(&upload)
            .has("Upload-Complete", "?1")
            .has("Upload-Length", "11");
        assert_eq!(stored(&s, &upload), b"hello world");
    }
}

/// §"Upload Append": the client "MUST" send `application/partial-upload` (interop 6 on); an
/// append without it is 415 Unsupported Media Type, before anything is read.
#[test]
fn an_append_needs_the_partial_upload_type() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(5));
        for content_type in [
            None,
            Some("application/offset+octet-stream"),
            Some("text/plain"),
        ] {
            let mut req = d
                .req("PATCH", &upload)
                .header("Upload-Offset", "0")
                .header("Upload-Complete", "?0");
            if let Some(ct) = content_type {
                req = req.header("Content-Type", ct);
            }
            let resp = req.body(b"abc").send();
            assert_eq!(resp.status, 415, "interop {v}, {content_type:?}: {resp:#?}");
        }
        // Parameters and case do not matter (a media type is case-insensitive).
        d.req("PATCH", &upload)
            .header("Content-Type", "Application/Partial-Upload; x=1")
            .header("Upload-Offset", "0")
            .header("Upload-Complete", "?0")
            .body(b"abc")
            .send()
            .status(204)
            .has("Upload-Offset", "3");
    }
}

/// §"Upload Append": an append needs `Upload-Offset` and `Upload-Complete`; without a usable
/// one (§"Offset", §"Completeness": other values make the field ignored) it is a 400.
#[test]
fn an_append_without_offset_or_completeness_is_400() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(5));
        let cases: [&[(&str, &str)]; 5] = [
            &[("Upload-Complete", "?0")],
            &[("Upload-Complete", "?0"), ("Upload-Offset", "-1")],
            &[("Upload-Complete", "?0"), ("Upload-Offset", "1.0")],
            &[("Upload-Offset", "0")],
            &[("Upload-Offset", "0"), ("Upload-Complete", "yes")],
        ];
        for headers in cases {
            let mut req = d
                .req("PATCH", &upload)
                .header("Content-Type", PARTIAL_UPLOAD);
            for (name, value) in headers {
                req = req.header(name, value);
            }
            let resp = req.body(b"abc").send();
            assert_eq!(resp.status, 400, "interop {v}, {headers:?}: {resp:#?}");
        }
        d.head(&upload).has("Upload-Offset", "0");
    }
}

/// §"Upload Append": a mismatching offset MUST be 409 with `Upload-Complete: ?0` and the
/// correct `Upload-Offset`; the problem document (§"Mismatching Offset") has both offsets.
#[test]
fn mismatching_offset_is_409_with_the_problem_document() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(10));
        d.append(&upload, 0, false, b"abc").status(204);
        for provided in [0u64, 2, 4, 25_000_000] {
            let resp = d.append(&upload, provided, false, b"xyz");
            let body = problem(&resp, 409, MISMATCHING_OFFSET);
            assert_eq!(
                resp.header("Upload-Offset").as_deref(),
                Some("3"),
                "{resp:#?}"
            );
            assert_eq!(body["expected-offset"], 3, "{body}");
            assert_eq!(body["provided-offset"], provided, "{body}");
        }
        assert_eq!(stored(&s, &upload), b"abc");
    }
}

/// §"Length": "If multiple requests include indicators, their indicated values MUST match";
/// a mismatch is the inconsistent-upload-length problem and changes nothing.
#[test]
fn inconsistent_lengths_are_a_problem() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(10));
        d.append(&upload, 0, false, b"hello").status(204);
        // Upload-Length other than the recorded one.
        let resp = d
            .append_req(&upload, 5, false)
            .header("Upload-Length", "12")
            .body(b"abc")
            .send();
        problem(&resp, 400, INCONSISTENT_LENGTH);
        // ?1 with offset + Content-Length (5 + 3) other than the recorded 10.
        problem(
            &d.append(&upload, 5, true, b"abc"),
            400,
            INCONSISTENT_LENGTH,
        );
        // Both indicators in one request, disagreeing with each other.
        let resp = d
            .append_req(&upload, 5, true)
            .header("Upload-Length", "10")
            .body(b"abc")
            .send();
        problem(&resp, 400, INCONSISTENT_LENGTH);
        d.head(&upload)
            .has("Upload-Offset", "5")
            .has("Upload-Length", "10")
            .has("Upload-Complete", "?0");
        // The consistent request still completes it.
        d.append_req(&upload, 5, true)
            .header("Upload-Length", "10")
            .body(b"world")
            .send()
            .status(204)
            .has("Upload-Complete", "?1");
        assert_eq!(stored(&s, &upload), b"helloworld");
    }
}

/// §"Length": a deferred length becomes known from a later append: its `Upload-Length`, its
/// `Upload-Complete: ?1` with `Content-Length`, or its `Upload-Complete: ?1` with a body of
/// unknown length (chunked: the length is what arrived).
#[test]
fn a_deferred_length_is_declared_by_a_later_append() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);

        let by_upload_length = d.create(None);
        d.append_req(&by_upload_length, 0, false)
            .header("Upload-Length", "6")
            .body(b"abc")
            .send()
            .status(204)
            .has("Upload-Complete", "?0");
        d.head(&by_upload_length).has("Upload-Length", "6");
        // Reaching the declared length completes the upload (tusgate's decision).
        d.append(&by_upload_length, 3, false, b"def")
            .status(204)
            .has("Upload-Complete", "?1");
        assert_eq!(stored(&s, &by_upload_length), b"abcdef");

        let by_content_length = d.create(None);
        d.append(&by_content_length, 0, false, b"abc").status(204);
        d.append(&by_content_length, 3, true, b"defg")
            .status(204)
            .has("Upload-Complete", "?1")
            .has("Upload-Offset", "7");
        d.head(&by_content_length).has("Upload-Length", "7");

        let by_chunked_body = d.create(None);
        d.append(&by_chunked_body, 0, false, b"ab").status(204);
        d.append_req(&by_chunked_body, 2, true)
            .chunked(&[b"cd", b"efg"])
            .send()
            .status(204)
            .has("Upload-Complete", "?1")
            .has("Upload-Offset", "7");
        d.head(&by_chunked_body)
            .has("Upload-Length", "7")
            .has("Upload-Complete", "?1");
        assert_eq!(stored(&s, &by_chunked_body), b"abcdefg");

        // ?1 without content on a deferred upload: the length is what is stored.
        let empty_close = d.create(None);
        d.append(&empty_close, 0, false, b"xyz").status(204);
        d.append_req(&empty_close, 3, true)
            .send()
            .status(204)
            .has("Upload-Complete", "?1");
        d.head(&empty_close).has("Upload-Length", "3");
    }
}

/// §"Upload Append": "The server can choose to replay the final response ... if the request to
/// append to the completed upload is valid": tusgate answers an append at the length of a
/// completed upload 204 `Upload-Complete: ?1` and reads nothing.
#[test]
fn an_append_to_a_completed_upload_replays_completion() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = s.location(&d.post(true).body(b"done").send().status(201));
        for complete in [true, false] {
            d.append(&upload, 4, complete, b"")
                .status(204)
                .has("Upload-Complete", "?1")
                .has("Upload-Offset", "4");
        }
        // Not valid, so not replayed: a `?1` whose content says the representation is longer
        // (offset 4 + 4 bytes) contradicts the recorded length (§"Length"), as does another
        // `Upload-Length`; the client must not be told its 8 bytes were completed.
        problem(
            &d.append(&upload, 4, true, b"more"),
            400,
            INCONSISTENT_LENGTH,
        );
        let resp = d
            .append_req(&upload, 4, false)
            .header("Upload-Length", "8")
            .body(b"more")
            .send();
        problem(&resp, 400, INCONSISTENT_LENGTH);
        assert_eq!(stored(&s, &upload), b"done");
    }
}

/// §"Upload Append": "If the length is known, the server MUST prevent the offset from
/// exceeding the upload length", not relying on `Content-Length` (it may be absent). A declared
/// body past the length is refused before a byte is read (413, as tus 1.0); a chunked one when
/// it runs past the length (413).
#[test]
fn a_body_past_the_length_is_refused() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(5));
        d.append(&upload, 0, false, b"ab").status(204);
        let resp = d.append(&upload, 2, false, b"cdefgh");
        assert_eq!(resp.status, 413, "interop {v}: {resp:#?}");
        d.head(&upload)
            .has("Upload-Offset", "2")
            .has("Upload-Complete", "?0");

        // A chunked body announces no length: it is refused once it runs past the length, and
        // the upload is invalid from then on ("marking the upload resource invalid and
        // rejecting any further interaction with it"): nothing of it is published, and it is
        // gone (see also mixing::a_body_past_the_length_invalidates_the_upload).
        let resp = d
            .append_req(&upload, 2, false)
            .chunked(&[b"cd", b"efgh"])
            .send();
        assert_eq!(resp.status, 413, "interop {v}: {resp:#?}");
        d.head(&upload).status(404);
    }
}

/// A large append streams through unchanged (the draft's §"Upload Append" example A, scaled).
#[test]
fn a_large_append_is_stored_exactly() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    let bytes = data(8 << 20);
    let d = Draft::new(&s, "9");
    let upload = d.create(Some(bytes.len() as u64));
    d.append(&upload, 0, false, &bytes[..3 << 20]).status(204);
    d.append(&upload, 3 << 20, true, &bytes[3 << 20..])
        .status(204)
        .has("Upload-Complete", "?1");
    assert!(stored(&s, &upload) == bytes, "stored bytes differ");
}

/// §"Completeness": "Upload-Complete can be false in response to an invalid operation performed
/// on a completed upload": an append at another offset than a completed upload's length is the
/// mismatching-offset problem.
#[test]
fn a_wrong_offset_on_a_completed_upload_is_a_mismatch() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = s.location(&d.post(true).body(b"done").send().status(201));
        let resp = d.append(&upload, 2, false, b"ne");
        let body = problem(&resp, 409, MISMATCHING_OFFSET);
        assert_eq!(body["expected-offset"], 4, "{body}");
        assert_eq!(resp.header("Upload-Offset").as_deref(), Some("4"));
        assert_eq!(stored(&s, &upload), b"done");
    }
}

/// tusgate's decision (src/draft/mod.rs): a request saying `?1` whose body ended whole short of
/// the recorded length is the inconsistent-length problem; what arrived is kept and the upload
/// stays resumable. (A chunked body has no `Content-Length`, so nothing tells the server before
/// the body ends.)
#[test]
fn a_completing_append_short_of_the_length_is_a_problem_and_keeps_the_bytes() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(10));
        let resp = d
            .append_req(&upload, 0, true)
            .chunked(&[b"hel", b"lo"])
            .send();
        problem(&resp, 400, INCONSISTENT_LENGTH);
        d.head(&upload)
            .has("Upload-Offset", "5")
            .has("Upload-Complete", "?0")
            .has("Upload-Length", "10");
        d.append(&upload, 5, true, b"world")
            .status(204)
            .has("Upload-Complete", "?1");
        assert_eq!(stored(&s, &upload), b"helloworld");
    }
}

/// Every draft response, errors included, says the interop version it speaks
/// (src/draft/handler.rs).
#[test]
fn errors_carry_the_interop_version() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let unknown = "0123456789abcdef0123456789abcdef";
        for resp in [
            d.head(unknown),
            d.append(unknown, 0, false, b"x"),
            d.req("DELETE", unknown).send(),
            d.req("PUT", "").send(),
        ] {
            assert!(resp.status >= 400, "{resp:#?}");
            assert_eq!(resp.header(super::INTEROP).as_deref(), Some(v), "{resp:#?}");
        }
    }
}

/// §"Limits", `max-size`: "The server might also deactivate the upload resource if the offset
/// exceeds the maximum size": a deferred-length upload is bounded by `-max-size` however its
/// body arrives, and the 413 says the limit.
#[test]
fn a_deferred_upload_is_bounded_by_max_size() {
    if !interop_9_8() {
        return;
    }
    let s = start(&["-max-size=10"]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(None);
        let resp = d.append(&upload, 0, false, &[b'a'; 11]);
        assert_eq!(resp.status, 413, "interop {v}: {resp:#?}");
        assert_eq!(
            super::limits(&resp).get("max-size").map(String::as_str),
            Some("10")
        );
        d.head(&upload).has("Upload-Offset", "0");
        let resp = d
            .append_req(&upload, 0, false)
            .chunked(&[b"abcdef", b"ghijkl"])
            .send();
        assert_eq!(resp.status, 413, "interop {v}: {resp:#?}");
        // Past max-size, the upload is deactivated, as the draft allows.
        d.head(&upload).status(404);
    }
}

/// §"Length" on appends, as a table: what an `Upload-Length` on an append to an upload of
/// `recorded` length (`None`: deferred) with 5 bytes stored may do.
#[test]
fn upload_length_on_appends() {
    if !interop_9_8() {
        return;
    }
    struct Case {
        recorded: Option<u64>,
        upload_length: &'static str,
        status: u16,
        /// The length offset retrieval reports afterwards.
        length: Option<&'static str>,
    }
    let cases = [
        // Declares a deferred length.
        Case {
            recorded: None,
            upload_length: "9",
            status: 204,
            length: Some("9"),
        },
        // Repeats the recorded length: consistent.
        Case {
            recorded: Some(9),
            upload_length: "9",
            status: 204,
            length: Some("9"),
        },
        // Another length than the recorded one: the inconsistent-length problem.
        Case {
            recorded: Some(9),
            upload_length: "8",
            status: 400,
            length: Some("9"),
        },
        // Below what is stored: no length can be that.
        Case {
            recorded: None,
            upload_length: "4",
            status: 400,
            length: None,
        },
        // Not an Integer: the field is ignored (§"Length": "Other values MUST cause the entire
        // header field to be ignored"), and the append goes on as if it were absent.
        Case {
            recorded: None,
            upload_length: "9.0",
            status: 204,
            length: None,
        },
    ];
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        for case in &cases {
            let upload = d.create(case.recorded);
            d.append(&upload, 0, false, b"hello").status(204);
            let resp = d
                .append_req(&upload, 5, false)
                .header("Upload-Length", case.upload_length)
                .body(b"")
                .send();
            let what = format!(
                "interop {v}, recorded {:?}, Upload-Length {}",
                case.recorded, case.upload_length
            );
            assert_eq!(resp.status, case.status, "{what}: {resp:#?}");
            let state = d.head(&upload);
            assert_eq!(
                state.header("Upload-Length").as_deref(),
                case.length,
                "{what}: {state:#?}"
            );
            assert_eq!(
                state.header("Upload-Offset").as_deref(),
                Some("5"),
                "{what}"
            );
        }
    }
}
