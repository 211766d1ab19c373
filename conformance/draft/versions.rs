//! `Upload-Draft-Interop-Version` (draft §"Draft Version Identification"): which protocol a
//! request speaks, and the older interop versions tus-js-client 4.3.1 sends (6: `protocol:
//! 'ietf-draft-05'`, 5: `'ietf-draft-03'`), which differ from 9/8 only in the append's media
//! type check (not in 5) and `Upload-Limit` (`expires` for the lifetime in 6, no field in 5).
//!
//! These cases run against tusd v2.10.1 too (with `-enable-experimental-protocol`, which
//! speaks 3–6). Where tusd departs from the draft the draft is the authority, and the case says
//! how tusd differs ([`crate::differs`]).

use super::{Draft, MISMATCHING_OFFSET, PARTIAL_UPLOAD, limits, problem, start, stored};
use crate::{differs, is_tusgate};

/// A version the server does not speak. The draft does not say what to do; tusgate answers 400
/// naming the versions it speaks (src/draft/headers.rs, `Protocol`), tusd treats the request
/// as tus 1.0's (and a POST without `Tus-Resumable` is then 412).
#[test]
fn an_unknown_version_is_400_naming_the_supported_ones() {
    let s = start(&[]);
    for version in ["7", "10", "abc", "9.0", "?1"] {
        let resp = s
            .req("POST", "")
            .header(super::INTEROP, version)
            .header("Upload-Complete", "?1")
            .body(b"hello")
            .send();
        assert_eq!(resp.status, differs(412, 400), "{version}: {resp:#?}");
        if is_tusgate() {
            assert!(
                resp.body_text().contains("9, 8, 6 and 5"),
                "{version}: {resp:#?}"
            );
        }
    }
}

/// `-enable-experimental-protocol=false`: the header means nothing, the request is tus 1.0's
/// (412 for want of `Tus-Resumable`), as in tusd with the flag off.
#[test]
fn with_the_protocol_disabled_a_draft_request_is_tus() {
    let s = crate::harness::Launch::default()
        .arg("-enable-experimental-protocol=false")
        .start();
    for v in ["9", "8", "6", "5"] {
        let resp = Draft::new(&s, v).post(true).body(b"hello").send();
        assert_eq!(resp.status, 412, "interop {v}: {resp:#?}");
        assert_eq!(resp.header("Tus-Resumable").as_deref(), Some("1.0.0"));
    }
    // OPTIONS is tus 1.0 discovery: no Upload-Limit.
    Draft::new(&s, "9")
        .req("OPTIONS", "")
        .send()
        .status(200)
        .lacks("Upload-Limit");
}

/// Interop 6 end to end, against both servers: creation with content, offset retrieval, a
/// mismatching offset, the media type check, completion.
#[test]
fn interop_6_creation_retrieval_append() {
    let s = start(&[]);
    let d = Draft::new(&s, "6");
    let resp = d
        .post(false)
        .header("Upload-Length", "11")
        .body(b"hello")
        .send()
        .status(201)
        .has("Upload-Offset", "5");
    // tusd's creation and append responses carry no Upload-Complete (the draft: SHOULD).
    assert_eq!(
        resp.header("Upload-Complete").as_deref(),
        differs(None, Some("?0"))
    );
    // tusd says min-size=0 and max-size=<the upload's length>; tusgate the lifetime under
    // its default -upload-expiry (168h), named `expires` in interop 6.
    let limit = limits(&resp);
    assert!(
        limit.contains_key(differs("min-size", "expires")),
        "{limit:?}"
    );
    let upload = s.location(&resp);

    let state = d.head(&upload).status(204);
    assert_eq!(state.header("Upload-Offset").as_deref(), Some("5"));
    assert_eq!(state.header("Upload-Complete").as_deref(), Some("?0"));
    assert_eq!(state.header("Upload-Length").as_deref(), Some("11"));
    assert_eq!(state.header("Cache-Control").as_deref(), Some("no-store"));
    assert_eq!(state.header(super::INTEROP).as_deref(), Some("6"));
    let limit = limits(&state);
    assert!(
        limit.contains_key(differs("min-size", "expires")),
        "{limit:?}"
    );

    // Interop 6 requires application/partial-upload: tusd answers its ERR_INVALID_CONTENT_TYPE
    // 400, tusgate 415 (the HTTP status for an unsupported media type).
    let resp = d
        .req("PATCH", &upload)
        .header("Upload-Offset", "5")
        .header("Upload-Complete", "?1")
        .header("Content-Type", "application/offset+octet-stream")
        .body(b" world")
        .send();
    assert_eq!(resp.status, differs(400, 415), "{resp:#?}");

    // The draft's 409 has Upload-Offset, Upload-Complete: ?0 and (MAY) the problem document;
    // tusd's is its text error without either header.
    let resp = d.append(&upload, 3, false, b"xx");
    if is_tusgate() {
        let body = problem(&resp, 409, MISMATCHING_OFFSET);
        assert_eq!(body["expected-offset"], 5);
        assert_eq!(resp.header("Upload-Offset").as_deref(), Some("5"));
    } else {
        assert_eq!(resp.status, 409, "{resp:#?}");
    }

    let resp = d
        .append(&upload, 5, true, b" world")
        .status(204)
        .has("Upload-Offset", "11");
    assert_eq!(
        resp.header("Upload-Complete").as_deref(),
        differs(None, Some("?1"))
    );
    d.head(&upload)
        .status(204)
        .has("Upload-Complete", "?1")
        .has("Upload-Length", "11");
    assert_eq!(stored(&s, &upload), b"hello world");
}

/// Interop 6 discovery and cancellation, against both servers.
#[test]
fn interop_6_options_and_cancellation() {
    let s = start(&["-max-size=1000"]);
    let d = Draft::new(&s, "6");
    let resp = d.req("OPTIONS", "").send().status(200);
    assert_eq!(
        limits(&resp).get("max-size").map(String::as_str),
        Some("1000")
    );
    let resp = d
        .post(true)
        .header("Upload-Length", "1001")
        .body(b"")
        .send();
    // tusd checks -max-size before the lengths agree; both refuse.
    assert!(
        resp.status == 413 || resp.status == 400,
        "length over max-size: {resp:#?}"
    );
    let upload = d.create(Some(10));
    d.req("DELETE", &upload).send().status(204);
    d.head(&upload).status(404);
}

/// Interop 6 names the lifetime `expires` (renamed `max-age` in draft -06). tusgate only:
/// tusd v2.10.1 announces no lifetime.
#[test]
fn interop_6_names_the_lifetime_expires() {
    if !is_tusgate() {
        return;
    }
    let s = start(&["-upload-expiry=1h"]);
    let d = Draft::new(&s, "6");
    let upload = d.create(Some(10));
    let limit = limits(&d.head(&upload).status(204));
    assert!(!limit.contains_key("max-age"), "{limit:?}");
    let expires: u64 = limit["expires"].parse().expect("an Integer");
    assert!((3500..=3600).contains(&expires), "{expires}");
}

/// Interop 5 (draft -03): appends carry no media type (tus-js-client's `ietf-draft-03` sends
/// none, tusd does not check it for 3–5), and there is no `Upload-Limit` before draft -04
/// (tusd sends one to every version).
#[test]
fn interop_5_needs_no_media_type_and_has_no_limits() {
    let s = start(&[]);
    let d = Draft::new(&s, "5");
    let resp = d
        .post(false)
        .header("Upload-Length", "6")
        .send()
        .status(201);
    let upload = s.location(&resp);
    d.req("PATCH", &upload)
        .header("Upload-Offset", "0")
        .header("Upload-Complete", "?0")
        .body(b"abc")
        .send()
        .status(204)
        .has("Upload-Offset", "3");
    d.req("PATCH", &upload)
        .header("Upload-Offset", "3")
        .header("Upload-Complete", "?1")
        .header("Content-Type", PARTIAL_UPLOAD)
        .body(b"def")
        .send()
        .status(204)
        .has("Upload-Offset", "6");
    let state = d.head(&upload).status(204).has("Upload-Complete", "?1");
    assert_eq!(
        state.header("Upload-Limit").is_some(),
        differs(true, false),
        "{state:#?}"
    );
    assert_eq!(stored(&s, &upload), b"abcdef");
}

/// tus-js-client's `overridePatchMethod` (browsers or proxies without PATCH) sends its draft
/// appends as POST with `X-HTTP-Method-Override: PATCH`; tusd applies the override to every
/// request before it looks at the protocol, so the append goes through. Against both servers.
#[test]
fn method_override_applies_to_draft_appends() {
    let s = start(&[]);
    let d = Draft::new(&s, "6");
    let upload = d.create(Some(6));
    d.req("POST", &upload)
        .header("X-HTTP-Method-Override", "PATCH")
        .header("Content-Type", PARTIAL_UPLOAD)
        .header("Upload-Offset", "0")
        .header("Upload-Complete", "?1")
        .body(b"abcdef")
        .send()
        .status(204)
        .has("Upload-Offset", "6");
    d.head(&upload).status(204).has("Upload-Complete", "?1");
    assert_eq!(stored(&s, &upload), b"abcdef");
}
