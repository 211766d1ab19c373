//! Draft §"Upload Creation" (with §"Length" and §"Limits" as they apply to creation): POST
//! (and PUT or PATCH: "all request methods that allow content are possible") on the collection with `Upload-Complete`; the length from `Upload-Length` and/or
//! `Content-Length` + `Upload-Complete: ?1`; 201 with `Location`, `Upload-Complete`,
//! `Upload-Offset` and, for an incomplete upload, `Upload-Limit`. Interop 9 and 8 (tusgate
//! only, see [`super::interop_9_8`]).

use super::{CURRENT, Draft, INCONSISTENT_LENGTH, interop_9_8, limits, problem, start, upload_ids};
use crate::harness::b64;

/// One creation request and what its response must say.
struct Case {
    name: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// `None`: no content and no `Content-Length`.
    body: Option<&'static [u8]>,
    complete: &'static str,
    offset: u64,
    /// `Upload-Length` of a later offset retrieval (`None`: absent, the length is deferred).
    length: Option<u64>,
}

const CASES: &[Case] = &[
    Case {
        name: "complete in one request, length from Content-Length",
        headers: &[("Upload-Complete", "?1")],
        body: Some(b"hello world"),
        complete: "?1",
        offset: 11,
        length: Some(11),
    },
    Case {
        name: "complete in one request, length from Upload-Length and Content-Length",
        headers: &[("Upload-Complete", "?1"), ("Upload-Length", "11")],
        body: Some(b"hello world"),
        complete: "?1",
        offset: 11,
        length: Some(11),
    },
    Case {
        name: "empty representation (?1, Content-Length: 0)",
        headers: &[("Upload-Complete", "?1")],
        body: Some(b""),
        complete: "?1",
        offset: 0,
        length: Some(0),
    },
    Case {
        name: "empty representation (?1, no content at all)",
        headers: &[("Upload-Complete", "?1")],
        body: None,
        complete: "?1",
        offset: 0,
        length: Some(0),
    },
    Case {
        name: "incomplete, no content, length deferred",
        headers: &[("Upload-Complete", "?0")],
        body: None,
        complete: "?0",
        offset: 0,
        length: None,
    },
    Case {
        name: "incomplete, no content, Upload-Length",
        headers: &[("Upload-Complete", "?0"), ("Upload-Length", "100")],
        body: None,
        complete: "?0",
        offset: 0,
        length: Some(100),
    },
    Case {
        name: "incomplete with content, length deferred (Content-Length is no indicator with ?0)",
        headers: &[("Upload-Complete", "?0")],
        body: Some(b"hello"),
        complete: "?0",
        offset: 5,
        length: None,
    },
    Case {
        name: "incomplete with content and Upload-Length",
        headers: &[("Upload-Complete", "?0"), ("Upload-Length", "100")],
        body: Some(b"hello"),
        complete: "?0",
        offset: 5,
        length: Some(100),
    },
    // tusgate's decision (src/draft/mod.rs): every byte of the length stored is complete,
    // whatever the request said.
    Case {
        name: "?0 whose content reaches Upload-Length completes",
        headers: &[("Upload-Complete", "?0"), ("Upload-Length", "5")],
        body: Some(b"hello"),
        complete: "?1",
        offset: 5,
        length: Some(5),
    },
];

#[test]
fn creation_table() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        for (method, case) in ["POST", "PUT", "PATCH"]
            .into_iter()
            .flat_map(|m| CASES.iter().map(move |c| (m, c)))
        {
            let mut req = d.req(method, "");
            for (name, value) in case.headers {
                req = req.header(name, value);
            }
            if let Some(body) = case.body {
                req = req.body(body);
            }
            let what = format!("interop {v}, {method}: {}", case.name);
            let resp = req.send();
            assert_eq!(resp.status, 201, "{what}: {resp:#?}");
            let header = |name: &str| resp.header(name);
            assert_eq!(header(super::INTEROP).as_deref(), Some(v), "{what}");
            assert_eq!(
                header("Upload-Complete").as_deref(),
                Some(case.complete),
                "{what}: {resp:#?}"
            );
            assert_eq!(
                header("Upload-Offset"),
                Some(case.offset.to_string()),
                "{what}: {resp:#?}"
            );
            if case.complete == "?0" {
                // §"Upload Creation", server behaviour: ?0 fully processed MUST carry
                // Location and Upload-Limit; the default -upload-expiry (168h) is a max-age.
                let age: u64 = limits(&resp)["max-age"].parse().expect("an Integer");
                assert!((604_000..=604_800).contains(&age), "{what}: max-age {age}");
            }
            let upload = s.location(&resp);
            let state = d.head(&upload).status(204);
            assert_eq!(
                state.header("Upload-Complete").as_deref(),
                Some(case.complete),
                "{what}: offset retrieval {state:#?}"
            );
            assert_eq!(
                state.header("Upload-Offset"),
                Some(case.offset.to_string()),
                "{what}"
            );
            assert_eq!(
                state.header("Upload-Length"),
                case.length.map(|l| l.to_string()),
                "{what}: offset retrieval {state:#?}"
            );
            let sent = case.body.unwrap_or_default();
            assert_eq!(super::stored(&s, &upload), sent, "{what}: stored bytes");
        }
    }
}

/// §"Length": both indicators present and different is the inconsistent-upload-length problem
/// (§"Problem Types"), and the request creates nothing.
#[test]
fn inconsistent_lengths_are_a_problem_and_create_nothing() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        for (upload_length, body) in [
            ("12", &b"hello world"[..]),
            ("10", b"hello world"),
            ("0", b"x"),
        ] {
            let resp = d
                .post(true)
                .header("Upload-Length", upload_length)
                .body(body)
                .send();
            problem(&resp, 400, INCONSISTENT_LENGTH);
            assert_eq!(resp.header("Location"), None, "interop {v}: {resp:#?}");
        }
    }
    assert_eq!(upload_ids(&s), Vec::<String>::new(), "uploads were created");
}

/// §"Upload Creation": `Upload-Complete` is what makes a request a creation; without a valid
/// one (an Item whose value is a Boolean, §"Completeness") a draft POST is a 400, creating
/// nothing.
#[test]
fn missing_or_invalid_upload_complete_is_400() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        for value in [
            None,
            Some("1"),
            Some("true"),
            Some("?2"),
            Some("?1, ?0"),
            Some(""),
        ] {
            let mut req = d.req("POST", "").header("Upload-Length", "5");
            if let Some(value) = value {
                req = req.header("Upload-Complete", value);
            }
            let resp = req.body(b"hello").send();
            assert_eq!(
                resp.status, 400,
                "interop {v}, Upload-Complete {value:?}: {resp:#?}"
            );
            assert_eq!(resp.header(super::INTEROP).as_deref(), Some(v));
        }
    }
    assert_eq!(upload_ids(&s), Vec::<String>::new(), "uploads were created");
}

/// §"Limits": a length over `max-size` is refused with 413, and the 413 says the limit.
#[test]
fn length_over_max_size_is_413_with_the_limit() {
    if !interop_9_8() {
        return;
    }
    let s = start(&["-max-size=10"]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let over_upload_length = d.post(false).header("Upload-Length", "11").send();
        let over_content_length = d.post(true).body(b"hello world").send();
        for resp in [over_upload_length, over_content_length] {
            assert_eq!(resp.status, 413, "interop {v}: {resp:#?}");
            assert_eq!(
                limits(&resp).get("max-size").map(String::as_str),
                Some("10")
            );
        }
        // At the limit is fine, and the creation's Upload-Limit says it.
        let resp = d
            .post(false)
            .header("Upload-Length", "10")
            .send()
            .status(201);
        assert_eq!(
            limits(&resp).get("max-size").map(String::as_str),
            Some("10")
        );
        d.post(true)
            .body(b"0123456789")
            .send()
            .status(201)
            .has("Upload-Complete", "?1");
    }
    assert_eq!(
        upload_ids(&s).len(),
        4,
        "only the uploads within the limit exist"
    );
}

/// §"Upload Creation", client behaviour: `Content-Type` and `Content-Disposition` describe the
/// representation; tusgate keeps them as the upload's `filetype` and `filename` (as tusd does
/// for the draft), which a tus 1.0 HEAD shows in `Upload-Metadata` (either protocol may resume
/// the other's uploads, src/draft/mod.rs). Explicit `Upload-Metadata` wins.
#[test]
fn content_type_and_disposition_become_filetype_and_filename() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let resp = d
            .post(true)
            .header("Content-Type", "Image/PNG; charset=binary")
            .header("Content-Disposition", "inline; filename=\"cat photo.png\"")
            .body(b"\x89PNG")
            .send()
            .status(201);
        let upload = s.location(&resp);
        let metadata = s.tus("HEAD", &upload).send().status(200);
        let metadata = metadata.header("Upload-Metadata").unwrap_or_default();
        let pairs: Vec<&str> = metadata.split(',').map(str::trim).collect();
        assert!(
            pairs.contains(&format!("filetype {}", b64(b"image/png")).as_str()),
            "interop {v}: {metadata}"
        );
        assert!(
            pairs.contains(&format!("filename {}", b64(b"cat photo.png")).as_str()),
            "interop {v}: {metadata}"
        );

        // RFC 8187 filename* wins over filename; Upload-Metadata over both.
        let resp = d
            .post(false)
            .header("Content-Type", "text/plain")
            .header(
                "Content-Disposition",
                "attachment; filename=\"plain.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt",
            )
            .header("Upload-Metadata", &format!("filetype {}", b64(b"text/csv")))
            .send()
            .status(201);
        let upload = s.location(&resp);
        let metadata = s.tus("HEAD", &upload).send().status(200);
        let metadata = metadata.header("Upload-Metadata").unwrap_or_default();
        let pairs: Vec<&str> = metadata.split(',').map(str::trim).collect();
        assert!(
            pairs.contains(&format!("filetype {}", b64(b"text/csv")).as_str()),
            "interop {v}: {metadata}"
        );
        assert!(
            pairs.contains(&format!("filename {}", b64("résumé.txt".as_bytes())).as_str()),
            "interop {v}: {metadata}"
        );
    }
}

/// §"Length": with `?1` and no `Content-Length` (a chunked body) the length is what arrived;
/// with `?0` and `Upload-Length` smaller than the content, the content is refused past the
/// length (§"Upload Append" applies the same bound).
#[test]
fn chunked_creations() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let resp = d
            .post(true)
            .chunked(&[b"hello", b" ", b"world"])
            .send()
            .status(201)
            .has("Upload-Complete", "?1")
            .has("Upload-Offset", "11");
        let upload = s.location(&resp);
        d.head(&upload).has("Upload-Length", "11");
        assert_eq!(super::stored(&s, &upload), b"hello world");

        let resp = d
            .post(false)
            .chunked(&[b"hello", b" "])
            .send()
            .status(201)
            .has("Upload-Complete", "?0")
            .has("Upload-Offset", "6");
        let upload = s.location(&resp);
        d.head(&upload).lacks("Upload-Length");

        let resp = d
            .post(false)
            .header("Upload-Length", "3")
            .body(b"hello")
            .send();
        assert_eq!(resp.status, 413, "interop {v}: {resp:#?}");
    }
}

/// §"Length": `?1` says the content is the rest of the representation; a chunked body that
/// ends short of `Upload-Length` contradicts it: the inconsistent-length problem. The upload
/// exists by then and keeps what arrived, so the problem carries its `Location`, from which
/// the client may finish it (src/draft/handler.rs).
#[test]
fn a_complete_creation_short_of_its_length_is_a_problem() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let resp = d
            .post(true)
            .header("Upload-Length", "10")
            .chunked(&[b"hel", b"lo"])
            .send();
        problem(&resp, 400, INCONSISTENT_LENGTH);
        let upload = s.location(&resp);
        d.head(&upload)
            .status(204)
            .has("Upload-Offset", "5")
            .has("Upload-Length", "10")
            .has("Upload-Complete", "?0");
        d.append(&upload, 5, true, b"world")
            .status(204)
            .has("Upload-Complete", "?1");
        assert_eq!(super::stored(&s, &upload), b"helloworld");
    }
}
