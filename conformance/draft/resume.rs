//! Interrupted transfers and what may run beside them:
//! - draft §"Upload Creation"/§"Upload Append", server behaviour: "The server might not process
//!   the entire request content when the upload is interrupted ... the server SHOULD append as
//!   much of the request content as possible ..., the upload resource MUST NOT be considered
//!   complete then";
//! - §"Upload Strategies": a client learns the upload's URL from a 104 (optimistic creation)
//!   or from the response to an empty `?0` creation (careful creation);
//! - §"Status Code 104": with `-draft-104` the creation's 104 carries `Location` (identical to
//!   the final one) and `Upload-Limit`; without it no 104 is ever sent;
//! - §"Concurrency": a new offset retrieval, append or cancellation ends a request still
//!   streaming into the upload, and the offset it reports is accepted by the next append.
//!
//! Interop 9 and 8 (tusgate only, see [`super::interop_9_8`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{
    CURRENT, Draft, interop_9_8, path_of_id, start, stored, wait_for_offset, wait_for_upload,
};
use crate::harness::{data, read_response};

/// The head of one response (interim or final), read byte by byte so that nothing after it is
/// consumed from the connection.
#[derive(Debug)]
struct Head {
    status: u16,
    headers: BTreeMap<String, String>,
}

fn read_head(stream: &mut TcpStream) -> Head {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            other => panic!(
                "connection ended inside a response head ({other:?}) after {:?}",
                String::from_utf8_lossy(&raw)
            ),
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Head { status, headers }
}

/// Reads response heads until the final one: the interim responses, then the final head.
fn read_heads(stream: &mut TcpStream) -> (Vec<Head>, Head) {
    let mut interim = Vec::new();
    loop {
        let head = read_head(stream);
        if head.status >= 200 {
            return (interim, head);
        }
        interim.push(head);
    }
}

/// Careful creation (§"Upload Strategies"): an empty `?0` creation gives the URL, then the
/// one append carrying everything (`?1`) breaks off; offset retrieval shows what arrived, the
/// upload is not complete, and an append from there completes it with exact bytes.
#[test]
fn careful_creation_resumes_an_interrupted_append() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    let bytes = data(100_000);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(None);
        let (mut stream, _) = d
            .append_req(&upload, 0, true)
            .send_partial(bytes.len() as u64, &bytes[..40_000]);
        stream.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(300));
        drop(stream);
        let state = wait_for_offset(d, &upload, 40_000);
        assert_eq!(state.header("Upload-Complete").as_deref(), Some("?0"));
        // §"Length": ?1 with Content-Length indicated the length; it is recorded.
        assert_eq!(state.header("Upload-Length").as_deref(), Some("100000"));
        d.append(&upload, 40_000, true, &bytes[40_000..])
            .status(204)
            .has("Upload-Complete", "?1")
            .has("Upload-Offset", "100000");
        assert!(
            stored(&s, &upload) == bytes,
            "interop {v}: stored bytes differ"
        );
    }
}

/// Optimistic creation without a 104 (`-draft-104` off): a `?1` creation that breaks off
/// leaves an upload holding what arrived, incomplete, with the length its request indicated.
/// The client cannot know its URL (that is what the 104 is for); the test finds it on disk, as
/// a client that got the 104 would know it, and resumes it.
#[test]
fn an_interrupted_creation_keeps_what_arrived() {
    if !interop_9_8() {
        return;
    }
    let bytes = data(100_000);
    for v in CURRENT {
        let s = start(&[]);
        let d = Draft::new(&s, v);
        let (mut stream, _) = d
            .post(true)
            .send_partial(bytes.len() as u64, &bytes[..30_000]);
        stream.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(300));
        drop(stream);
        let ids = wait_for_upload(&s);
        let upload = path_of_id(&s, &ids[0]);
        let state = wait_for_offset(d, &upload, 30_000);
        assert_eq!(state.header("Upload-Complete").as_deref(), Some("?0"));
        assert_eq!(state.header("Upload-Length").as_deref(), Some("100000"));
        d.append(&upload, 30_000, true, &bytes[30_000..])
            .status(204)
            .has("Upload-Complete", "?1");
        assert!(
            stored(&s, &upload) == bytes,
            "interop {v}: stored bytes differ"
        );
    }
}

/// A creation whose body ends early while the client still reads (it half-closes) gets a
/// final response that names the upload (src/draft/handler.rs: a creation that fails once its
/// upload exists answers with its `Location`), so even without a 104 it can resume.
#[test]
fn a_creation_cut_short_answers_with_its_location() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    let bytes = data(50_000);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let (mut stream, _) = d
            .post(true)
            .send_partial(bytes.len() as u64, &bytes[..20_000]);
        stream.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(200));
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half close");
        let resp = read_response(&mut stream, false);
        assert!(resp.status >= 400, "interop {v}: {resp:#?}");
        let upload = s.location(&resp);
        let state = wait_for_offset(d, &upload, 20_000);
        assert_eq!(state.header("Upload-Complete").as_deref(), Some("?0"));
        d.append(&upload, 20_000, true, &bytes[20_000..])
            .status(204)
            .has("Upload-Complete", "?1");
        assert!(
            stored(&s, &upload) == bytes,
            "interop {v}: stored bytes differ"
        );
    }
}

/// §"Upload Creation": the 104 is a SHOULD "unless the server is not capable"; tusgate sends
/// it only with `-draft-104` (proxies break on unknown 1xx), so by default a creation's first
/// response is its final one.
#[test]
fn no_104_without_the_switch() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        for complete in [true, false] {
            let (mut stream, _) = d.post(complete).send_partial(5, b"hello");
            let (interim, last) = read_heads(&mut stream);
            assert!(
                interim.is_empty(),
                "interop {v}: interim responses {interim:?}"
            );
            assert_eq!(last.status, 201, "{last:?}");
        }
    }
}

// ---- 104 (Upload Resumption Supported), `-draft-104` ------------------------------------

/// §"Upload Creation", server behaviour: the 104 "MUST include Location ... and MUST include
/// the Upload-Limit header field"; §"Upload Creation": "all interim and final response
/// messages for the same request MUST contain an identical Location value".
#[test]
fn the_104_announces_the_upload_before_the_final_response() {
    if !interop_9_8() {
        return;
    }
    let s = start(&["-draft-104"]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        for complete in [false, true] {
            let (mut stream, _) = d
                .post(complete)
                .header("Upload-Length", "5")
                .send_partial(5, b"hello");
            let (interim, last) = read_heads(&mut stream);
            assert_eq!(interim.len(), 1, "interop {v}: {interim:?}");
            let announce = &interim[0];
            assert_eq!(announce.status, 104, "{announce:?}");
            assert_eq!(
                announce
                    .headers
                    .get("upload-draft-interop-version")
                    .map(String::as_str),
                Some(v)
            );
            assert_eq!(
                announce.headers.get("location"),
                last.headers.get("location")
            );
            assert!(announce.headers.contains_key("location"), "{announce:?}");
            // The limits of the upload: its lifetime under the default -upload-expiry (168h).
            let limit = announce
                .headers
                .get("upload-limit")
                .cloned()
                .unwrap_or_default();
            assert!(limit.contains("max-age="), "{announce:?}");
            assert_eq!(last.status, 201, "{last:?}");
        }
    }
}

/// Optimistic creation (§"Upload Strategies") with the 104: the client reads the 104, sends
/// part of the body, loses the connection, and resumes from the 104's `Location` alone.
#[test]
fn an_interrupted_creation_resumes_from_the_104s_location() {
    if !interop_9_8() {
        return;
    }
    let s = start(&["-draft-104", "-max-size=1000000"]);
    let bytes = data(100_000);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let (mut stream, _) = d.post(true).send_partial(bytes.len() as u64, &[]);
        let announce = read_head(&mut stream);
        assert_eq!(announce.status, 104, "{announce:?}");
        let max_size = announce
            .headers
            .get("upload-limit")
            .cloned()
            .unwrap_or_default();
        assert!(max_size.contains("max-size=1000000"), "{announce:?}");
        let upload = s.path_of(
            announce
                .headers
                .get("location")
                .expect("Location in the 104"),
        );
        stream
            .write_all(&bytes[..25_000])
            .expect("part of the body");
        stream.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(300));
        drop(stream);
        let state = wait_for_offset(d, &upload, 25_000);
        assert_eq!(state.header("Upload-Complete").as_deref(), Some("?0"));
        d.append(&upload, 25_000, true, &bytes[25_000..])
            .status(204)
            .has("Upload-Complete", "?1");
        assert!(
            stored(&s, &upload) == bytes,
            "interop {v}: stored bytes differ"
        );
    }
}

/// §"Status Code 104": the 104 with `Location` is for draft creations; an append (which may
/// get progress 104s, never with `Location`) or a tus 1.0 creation gets none even with
/// `-draft-104`.
#[test]
fn only_creations_get_a_104() {
    if !interop_9_8() {
        return;
    }
    let s = start(&["-draft-104"]);
    let d = Draft::new(&s, "9");
    let upload = d.create(Some(5));
    let (mut stream, _) = d.append_req(&upload, 0, true).send_partial(5, b"hello");
    let (interim, last) = read_heads(&mut stream);
    assert!(
        interim
            .iter()
            .all(|h| h.status != 104 || !h.headers.contains_key("location")),
        "{interim:?}"
    );
    assert_eq!(last.status, 204);
    let (mut stream, _) = s
        .tus("POST", "")
        .header("Upload-Length", "5")
        .header("Content-Type", "application/offset+octet-stream")
        .send_partial(5, b"hello");
    let (interim, last) = read_heads(&mut stream);
    assert!(interim.is_empty(), "tus 1.0 got {interim:?}");
    assert_eq!(last.status, 201);
}

/// Reads interim responses until a `100 Continue`, sends `body`, and reads the rest: the
/// interim responses (in order) and the final head.
fn expect_continue(d: Draft<'_>, body: &[u8]) -> (Vec<Head>, Head) {
    let (mut stream, _) = d
        .post(true)
        .header("Expect", "100-continue")
        .send_partial(body.len() as u64, &[]);
    let mut interim = Vec::new();
    loop {
        let head = read_head(&mut stream);
        assert!(
            head.status < 200,
            "a final response before 100 Continue: {head:?}"
        );
        let is_continue = head.status == 100;
        interim.push(head);
        if is_continue {
            break;
        }
    }
    stream.write_all(body).expect("body");
    let (more, last) = read_heads(&mut stream);
    interim.extend(more);
    (interim, last)
}

/// §"Status Code 104": "the server MUST NOT omit the 100 (Continue) response because it has
/// sent an interim response with the 104 status code". Without `-draft-104`: 100, then the
/// final response.
#[test]
fn expect_100_continue_on_a_creation() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    let (interim, last) = expect_continue(Draft::new(&s, "9"), b"hello");
    let statuses: Vec<u16> = interim.iter().map(|h| h.status).collect();
    assert_eq!(statuses, [100], "{interim:?}");
    assert_eq!(last.status, 201, "{last:?}");
}

/// The same with `-draft-104`: the 104 and the 100 both arrive before the final response.
#[test]
fn expect_100_continue_with_the_104() {
    if !interop_9_8() {
        return;
    }
    let s = start(&["-draft-104"]);
    let (interim, last) = expect_continue(Draft::new(&s, "9"), b"hello");
    let statuses: Vec<u16> = interim.iter().map(|h| h.status).collect();
    assert!(statuses.contains(&100), "{interim:?}");
    assert!(statuses.contains(&104), "{interim:?}");
    let announce = interim.iter().find(|h| h.status == 104).expect("104");
    assert_eq!(
        announce.headers.get("location"),
        last.headers.get("location")
    );
    assert_eq!(last.status, 201, "{last:?}");
}

// ---- §"Concurrency" ----------------------------------------------------------------------

/// Starts an append of 100 bytes that sends only the first 10 and stalls.
fn stalled_append(d: Draft<'_>, upload: &str) -> TcpStream {
    let (mut stream, _) = d
        .append_req(upload, 0, true)
        .send_partial(100, b"0123456789");
    stream.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    stream
}

/// The older request ends (the server answers it with an error or drops it) instead of holding
/// the upload until a network timeout.
fn assert_ended(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .expect("timeout");
    let mut peek = [0u8; 1];
    match stream.peek(&mut peek) {
        Ok(0) | Err(_) => {} // dropped (or reset)
        Ok(_) => {
            let resp = read_response(stream, false);
            assert!(
                !(200..300).contains(&resp.status),
                "the older request succeeded: {resp:#?}"
            );
        }
    }
}

/// A HEAD while an append streams: answered at once with the offset stored so far, which the
/// next append may use; the older request is ended.
#[test]
fn offset_retrieval_ends_a_streaming_append() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(None);
        let mut older = stalled_append(d, &upload);
        let started = Instant::now();
        let state = d.head(&upload).status(204);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "HEAD waited {:?}",
            started.elapsed()
        );
        assert_eq!(
            state.header("Upload-Offset").as_deref(),
            Some("10"),
            "{state:#?}"
        );
        assert_eq!(state.header("Upload-Complete").as_deref(), Some("?0"));
        assert_ended(&mut older);
        let rest: Vec<u8> = (10..100u8).collect();
        d.append(&upload, 10, true, &rest)
            .status(204)
            .has("Upload-Complete", "?1")
            .has("Upload-Offset", "100");
        let mut expected = b"0123456789".to_vec();
        expected.extend_from_slice(&rest);
        assert_eq!(stored(&s, &upload), expected);
    }
}

/// A creation still streaming is ended by an offset retrieval too (a client that learnt the URL
/// from a 104 and lost the connection resumes at once); the test finds the upload on disk.
#[test]
fn offset_retrieval_ends_a_streaming_creation() {
    if !interop_9_8() {
        return;
    }
    for v in CURRENT {
        let s = start(&[]);
        let d = Draft::new(&s, v);
        let (mut older, _) = d.post(true).send_partial(100, b"0123456789");
        older.flush().expect("flush");
        let upload = path_of_id(&s, &wait_for_upload(&s)[0]);
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let state = d.head(&upload).status(204);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "HEAD waited {:?}",
            started.elapsed()
        );
        assert_eq!(
            state.header("Upload-Offset").as_deref(),
            Some("10"),
            "{state:#?}"
        );
        assert_eq!(state.header("Upload-Complete").as_deref(), Some("?0"));
        assert_ended(&mut older);
        d.append(&upload, 10, true, &[b'x'; 90])
            .status(204)
            .has("Upload-Complete", "?1");
    }
}

/// A new append while an older one streams (the client gave up on it): the older one ends and
/// the new one goes on from where it stopped.
#[test]
fn a_new_append_ends_a_streaming_append() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(100));
        let mut older = stalled_append(d, &upload);
        d.append(&upload, 10, true, &[b'x'; 90])
            .status(204)
            .has("Upload-Complete", "?1");
        assert_ended(&mut older);
        assert_eq!(&stored(&s, &upload)[..10], b"0123456789");
    }
}

/// §"Upload Cancellation": "The server SHOULD terminate any in-flight requests to the upload
/// resource before sending the response".
#[test]
fn cancellation_ends_a_streaming_append() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(100));
        let mut older = stalled_append(d, &upload);
        d.req("DELETE", &upload).send().status(204);
        assert_ended(&mut older);
        d.head(&upload).status(404);
    }
}
