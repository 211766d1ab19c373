//! Draft §"Offset Retrieval" (HEAD, or GET which the draft allows, on the upload resource) and
//! discovery by `OPTIONS` (§"Limits": "When responding to an OPTIONS request without the
//! Upload-Complete header field ... MUST include the Upload-Limit header field"). Interop 9
//! and 8 (tusgate only, see [`super::interop_9_8`]).

use super::{CURRENT, Draft, interop_9_8, limits, start};

/// §"Offset Retrieval", server behaviour: the offset, completeness, the length when the client
/// supplied one, the limits, `Cache-Control: no-store`; 204 without content (the draft's
/// example). GET is answered the same way (its content's meaning is not defined: none).
/// Without `-upload-expiry` tusgate has no limit at all: `min-size=0`.
#[test]
fn head_and_get_report_the_state() {
    if !interop_9_8() {
        return;
    }
    let s = start(&["-upload-expiry=0"]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let known = d.create(Some(10));
        d.append(&known, 0, false, b"hello").status(204);
        let deferred = d.create(None);
        d.append(&deferred, 0, false, b"abc").status(204);
        let complete = s.location(&d.post(true).body(b"done").send().status(201));
        for method in ["HEAD", "GET"] {
            for (upload, offset, complete, length) in [
                (&known, "5", "?0", Some("10")),
                (&deferred, "3", "?0", None),
                (&complete, "4", "?1", Some("4")),
            ] {
                let what = format!("interop {v}, {method} {upload}");
                let resp = d.req(method, upload).send();
                assert_eq!(resp.status, 204, "{what}: {resp:#?}");
                assert_eq!(
                    resp.header("Upload-Offset").as_deref(),
                    Some(offset),
                    "{what}"
                );
                assert_eq!(
                    resp.header("Upload-Complete").as_deref(),
                    Some(complete),
                    "{what}"
                );
                assert_eq!(resp.header("Upload-Length").as_deref(), length, "{what}");
                assert_eq!(
                    resp.header("Cache-Control").as_deref(),
                    Some("no-store"),
                    "{what}"
                );
                assert_eq!(resp.header(super::INTEROP).as_deref(), Some(v), "{what}");
                // No limits configured: min-size=0, never an empty value.
                assert_eq!(
                    limits(&resp),
                    [("min-size".to_owned(), "0".to_owned())].into(),
                    "{what}"
                );
                assert!(resp.body.is_empty(), "{what}: content {resp:#?}");
                assert!(
                    resp.header("Content-Length").is_none_or(|l| l == "0"),
                    "{what}: {resp:#?}"
                );
            }
        }
    }
}

/// §"Limits", `max-age`: the remaining lifetime of an incomplete upload under
/// `-upload-expiry`, in seconds from the response; §"Limits" also asks that `max-size` and the
/// end of the lifetime do not move against the client between responses.
#[test]
fn limits_under_upload_expiry_and_max_size() {
    if !interop_9_8() {
        return;
    }
    let s = start(&["-upload-expiry=1h", "-max-size=1000"]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let resp = d
            .post(false)
            .header("Upload-Length", "10")
            .send()
            .status(201);
        let created = limits(&resp);
        assert_eq!(created.get("max-size").map(String::as_str), Some("1000"));
        let age: u64 = created["max-age"].parse().expect("max-age is an Integer");
        assert!((3500..=3600).contains(&age), "max-age {age}");
        let upload = s.location(&resp);
        let later = limits(&d.head(&upload).status(204));
        assert_eq!(later.get("max-size").map(String::as_str), Some("1000"));
        let later_age: u64 = later["max-age"].parse().expect("max-age is an Integer");
        assert!(
            later_age <= age && age - later_age <= 5,
            "{age} then {later_age}"
        );
        // A complete upload has no lifetime left to announce.
        let done = s.location(&d.post(true).body(b"x").send().status(201));
        let done = limits(&d.head(&done).status(204));
        assert!(!done.contains_key("max-age"), "{done:?}");
    }
}

/// §"Offset Retrieval": an unknown upload resource is 404 (there is no state to report).
#[test]
fn unknown_upload_is_404() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        for method in ["HEAD", "GET"] {
            let resp = d.req(method, "0123456789abcdef0123456789abcdef").send();
            assert_eq!(resp.status, 404, "interop {v} {method}: {resp:#?}");
            assert_eq!(resp.header("Upload-Offset"), None);
        }
    }
}

/// §"Limits": OPTIONS without `Upload-Complete` on a resource that creates uploads MUST carry
/// `Upload-Limit`; with no limit it is `min-size=0`. tusgate answers 200 as tus 1.0's OPTIONS
/// does (old browsers reject a 204 preflight).
#[test]
fn options_on_the_collection_announces_the_limits() {
    if !interop_9_8() {
        return;
    }
    let unlimited = start(&[]);
    let limited = start(&["-max-size=1000"]);
    for v in CURRENT {
        let resp = Draft::new(&unlimited, v)
            .req("OPTIONS", "")
            .send()
            .status(200);
        assert_eq!(
            limits(&resp),
            [("min-size".to_owned(), "0".to_owned())].into()
        );
        assert_eq!(resp.header(super::INTEROP).as_deref(), Some(v));
        let resp = Draft::new(&limited, v)
            .req("OPTIONS", "")
            .send()
            .status(200);
        assert_eq!(
            limits(&resp).get("max-size").map(String::as_str),
            Some("1000")
        );
    }
}

/// GET on an upload is offset retrieval for a draft request even where tus 1.0 downloads are
/// off (`-disable-download`): the draft defines it, and it carries no representation data.
#[test]
fn get_is_offset_retrieval_with_downloads_disabled() {
    if !interop_9_8() {
        return;
    }
    let s = start(&["-disable-download"]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(10));
        d.append(&upload, 0, false, b"abc").status(204);
        let resp = d.req("GET", &upload).send().status(204);
        assert_eq!(resp.header("Upload-Offset").as_deref(), Some("3"));
        assert!(resp.body.is_empty());
        s.req("GET", &upload).send().status(405);
    }
}

/// §"Limits", `max-age`: "After the resource's lifetime is reached, the server might make the
/// upload resource inaccessible": past `-upload-expiry` an incomplete upload is gone (410 until
/// the reaper removes it, 404 after), never reported as resumable.
#[test]
fn an_expired_upload_is_not_resumable() {
    if !interop_9_8() {
        return;
    }
    let s = start(&["-upload-expiry=1s"]);
    let d = Draft::new(&s, "9");
    let upload = d.create(Some(10));
    d.append(&upload, 0, false, b"abc").status(204);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let resp = d.head(&upload);
    assert!(resp.status == 410 || resp.status == 404, "{resp:#?}");
    let resp = d.append(&upload, 3, false, b"def");
    assert!(resp.status == 410 || resp.status == 404, "{resp:#?}");
}

/// A browser client reads the draft's response fields only if CORS exposes them: `Location`,
/// `Upload-Offset`, `Upload-Complete`, `Upload-Length`, `Upload-Limit`,
/// `Upload-Draft-Interop-Version`.
#[test]
fn cors_exposes_the_draft_fields() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    let resp = Draft::new(&s, "9")
        .post(false)
        .header("Origin", "https://app.example")
        .send()
        .status(201);
    let exposed = resp
        .header("Access-Control-Expose-Headers")
        .unwrap_or_default();
    let exposed: Vec<&str> = exposed.split(',').map(str::trim).collect();
    for name in [
        "Location",
        "Upload-Offset",
        "Upload-Complete",
        "Upload-Length",
        "Upload-Limit",
        "Upload-Draft-Interop-Version",
    ] {
        assert!(exposed.contains(&name), "{name} not exposed: {exposed:?}");
    }
}
