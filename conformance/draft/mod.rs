//! Black-box conformance of the IETF resumable upload draft ("Resumable Uploads for HTTP",
//! draft-ietf-httpbis-resumable-upload, `../shared/reference/rufh-draft.md`; issue 13), raw
//! HTTP/1.1, one submodule per section of the draft:
//! - [`creation`]: §"Upload Creation" (and §"Length", §"Limits" as creation applies them);
//! - [`offset`]: §"Offset Retrieval" and discovery (§"Limits", `OPTIONS`);
//! - [`append`]: §"Upload Append" and §"Problem Types";
//! - [`cancel`]: §"Upload Cancellation";
//! - [`digests`]: §"Integrity Digests" (`Content-Digest`);
//! - [`resume`]: interrupted transfers (§"Upload Creation"/§"Upload Append", server
//!   behaviour), §"Concurrency", §"Status Code 104" and §"Upload Strategies";
//! - [`versions`]: `Upload-Draft-Interop-Version` dispatch and the differences of interop 6
//!   and 5 (tus-js-client's draft modes);
//! - [`mixing`]: uploads shared with tus 1.0, and granite-assets' upload tokens over the draft.
//!
//! Where the draft leaves room, the expected behaviour is tusgate's decision as written in the
//! module docs of `src/draft/mod.rs` and `src/draft/handler.rs` (e.g. an upload whose offset
//! reaches its length is complete even after `Upload-Complete: ?0`).
//!
//! Targets (the suite's convention: the same cases run against tusd with
//! `CONFORMANCE_TARGET=tusd`, and [`crate::differs`]/[`crate::is_tusgate`] mark where tusgate
//! departs): tusd v2.10.1 speaks interop 3–6 only, behind `-enable-experimental-protocol`
//! ([`start`] passes it to tusd). So interop 9 and 8 cases return early against tusd
//! ([`interop_9_8`]), and [`versions`] holds an interop 6/5 subset that runs against both;
//! where tusd and the draft disagree there, the draft is the authority and the case says how
//! tusd differs.

mod append;
mod cancel;
mod creation;
mod digests;
mod mixing;
mod offset;
mod resume;
mod versions;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::harness::{Launch, Req, Resp, Server};

pub(crate) const INTEROP: &str = "Upload-Draft-Interop-Version";
pub(crate) const PARTIAL_UPLOAD: &str = "application/partial-upload";
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";
pub(crate) const MISMATCHING_OFFSET: &str =
    "https://iana.org/assignments/http-problem-types#mismatching-upload-offset";
pub(crate) const INCONSISTENT_LENGTH: &str =
    "https://iana.org/assignments/http-problem-types#inconsistent-upload-length";

/// The current interop versions (8: drafts -09..-11 and iOS 26.2's URLSession; 9: -12 on, only
/// the number changed); every case that behaves the same in both runs for both.
pub(crate) const CURRENT: [&str; 2] = ["9", "8"];

/// Whether interop 9/8 cases run: tusd v2.10.1 knows interop 3–6 only
/// (`getIETFDraftInteropVersion`) and answers a 9 or 8 as tus 1.0, so these cases describe
/// tusgate alone and return early against tusd.
pub(crate) fn interop_9_8() -> bool {
    crate::is_tusgate()
}

/// The launch settings of a draft-speaking server: tusd needs `-enable-experimental-protocol`
/// (off by default there), tusgate speaks the draft by default.
pub(crate) fn launch(extra: &[&str]) -> Launch {
    let mut launch = Launch::default();
    if !crate::is_tusgate() {
        launch = launch.arg("-enable-experimental-protocol");
    }
    for arg in extra {
        launch = launch.arg(arg);
    }
    launch
}

/// Starts a draft-speaking server with `extra` flags.
pub(crate) fn start(extra: &[&str]) -> Server {
    launch(extra).start()
}

/// A draft client of one interop version.
#[derive(Clone, Copy)]
pub(crate) struct Draft<'a> {
    pub(crate) s: &'a Server,
    pub(crate) v: &'static str,
}

impl<'a> Draft<'a> {
    pub(crate) fn new(s: &'a Server, v: &'static str) -> Self {
        Draft { s, v }
    }

    /// Any request carrying this client's interop version.
    pub(crate) fn req(&self, method: &str, path: &str) -> Req<'a> {
        self.s.req(method, path).header(INTEROP, self.v)
    }

    /// A creation request (POST to the collection) with `Upload-Complete`.
    pub(crate) fn post(&self, complete: bool) -> Req<'a> {
        self.req("POST", "")
            .header("Upload-Complete", sf_bool(complete))
    }

    /// Creates an upload with `Upload-Complete: ?0`, no content and `length` (if any) as
    /// `Upload-Length` (the careful strategy's first request); returns its path.
    pub(crate) fn create(&self, length: Option<u64>) -> String {
        let mut req = self.post(false);
        if let Some(length) = length {
            req = req.header("Upload-Length", &length.to_string());
        }
        let resp = req.send().status(201);
        self.s.location(&resp)
    }

    /// An append request head: PATCH with `application/partial-upload`, the offset and
    /// `Upload-Complete`.
    pub(crate) fn append_req(&self, path: &str, offset: u64, complete: bool) -> Req<'a> {
        self.req("PATCH", path)
            .header("Content-Type", PARTIAL_UPLOAD)
            .header("Upload-Offset", &offset.to_string())
            .header("Upload-Complete", sf_bool(complete))
    }

    /// Appends `data` at `offset`.
    pub(crate) fn append(&self, path: &str, offset: u64, complete: bool, data: &[u8]) -> Resp {
        self.append_req(path, offset, complete).body(data).send()
    }

    /// Offset retrieval (HEAD).
    pub(crate) fn head(&self, path: &str) -> Resp {
        self.req("HEAD", path).send()
    }
}

pub(crate) fn sf_bool(b: bool) -> &'static str {
    if b { "?1" } else { "?0" }
}

/// The `Upload-Limit` dictionary of a response (asserted present), as key → value text.
/// Parameters and inner lists never occur in it; a bare key is `?1` (RFC 9651).
#[track_caller]
pub(crate) fn limits(resp: &Resp) -> BTreeMap<String, String> {
    let raw = resp
        .header("Upload-Limit")
        .unwrap_or_else(|| panic!("Upload-Limit missing; response: {resp:#?}"));
    raw.split(',')
        .map(|member| {
            let member = member.trim();
            match member.split_once('=') {
                Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
                None => (member.to_owned(), "?1".to_owned()),
            }
        })
        .collect()
}

/// Asserts an RFC 9457 problem document of `kind` with `status`, as the draft's §"Problem
/// Types" examples show (`Upload-Complete: ?0` beside it); returns the JSON body.
#[track_caller]
pub(crate) fn problem(resp: &Resp, status: u16, kind: &str) -> serde_json::Value {
    assert_eq!(resp.status, status, "status; response: {resp:#?}");
    assert_eq!(
        resp.header("Content-Type").as_deref(),
        Some(PROBLEM_JSON),
        "content type; response: {resp:#?}"
    );
    assert_eq!(
        resp.header("Upload-Complete").as_deref(),
        Some("?0"),
        "a problem says Upload-Complete: ?0; response: {resp:#?}"
    );
    let body: serde_json::Value = serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("problem body is not JSON ({e}); response: {resp:#?}"));
    assert_eq!(body["type"], kind, "problem type; response: {resp:#?}");
    assert!(body["title"].is_string(), "problem title; {resp:#?}");
    body
}

/// The ids of the uploads on disk (the file store keeps each upload's bytes in a file named
/// by its id), for checks that the protocol cannot make: nothing created by a refused
/// request, and the upload an interrupted creation left behind.
pub(crate) fn upload_ids(s: &Server) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(s.dir.path().join("uploads")) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = dir
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() >= 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    ids.sort();
    ids
}

/// The stored bytes of an upload, through a tus 1.0 GET (no interop version: a draft GET is
/// offset retrieval).
pub(crate) fn stored(s: &Server, path: &str) -> Vec<u8> {
    s.req("GET", path).send().status(200).body
}

/// Polls offset retrieval until the upload reports `offset` (a body that broke off is stored
/// by the request that was reading it, after the client's view of it ended).
#[track_caller]
pub(crate) fn wait_for_offset(d: Draft<'_>, path: &str, offset: u64) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = d.head(path);
        if resp.header("Upload-Offset").as_deref() == Some(offset.to_string().as_str()) {
            return resp;
        }
        assert!(
            Instant::now() < deadline,
            "offset never reached {offset}: {resp:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The one upload on disk, waiting for a creation to have made it (its URL reached no client).
#[track_caller]
pub(crate) fn wait_for_upload(s: &Server) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ids = upload_ids(s);
        if ids.len() == 1 {
            return ids;
        }
        assert!(ids.is_empty(), "more than one upload: {ids:?}");
        assert!(Instant::now() < deadline, "the creation made no upload");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The path of the upload with `id`.
pub(crate) fn path_of_id(s: &Server, id: &str) -> String {
    format!("{}{id}", s.base_path)
}
