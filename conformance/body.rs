//! Request bodies that do not arrive whole (§2.4 rows 11b–11f) and upload locking (§1.4): what
//! arrived is kept, the status says why the body ended, and a new request for the upload never
//! waits for a dead connection.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::harness::{Server, read_response};

const OCTET: &str = "application/offset+octet-stream";

fn patch_head<'a>(s: &'a Server, upload: &str, offset: u64) -> crate::harness::Req<'a> {
    s.tus("PATCH", upload)
        .header("Upload-Offset", &offset.to_string())
        .header("Content-Type", OCTET)
}

/// Waits until HEAD reports `offset` (bodies are persisted asynchronously to the client).
fn wait_for_offset(s: &Server, upload: &str, offset: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = s.req("HEAD", upload).send();
        if resp.header("Upload-Offset").as_deref() == Some(offset.to_string().as_str()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "offset never reached {offset}: {resp:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn client_closing_early_keeps_the_bytes() {
    let s = Server::start(&[]);
    let upload = s.create(Some(100));
    let (mut stream, _) = patch_head(&s, &upload, 0).send_partial(100, b"0123456789");
    stream.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(200));
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half close");
    let resp = read_response(&mut stream, false);
    assert_eq!(resp.status, 400, "{resp:?}");
    assert_eq!(
        resp.body_text(),
        "ERR_UNEXPECTED_EOF: server expected to receive more bytes\n"
    );
    wait_for_offset(&s, &upload, 10);
    s.patch(&upload, 10, &[b'x'; 90])
        .status(204)
        .has("Upload-Offset", "100");
}

#[test]
fn a_new_request_interrupts_a_stalled_patch() {
    let s = Server::start(&[]);
    let upload = s.create(Some(100));
    let (mut stream, _) = patch_head(&s, &upload, 0).send_partial(100, b"0123456789");
    std::thread::sleep(Duration::from_millis(300));
    // The resume: a HEAD must not wait for the stalled PATCH to time out.
    let started = Instant::now();
    let head = s.req("HEAD", &upload).send().status(200);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "HEAD waited {:?}",
        started.elapsed()
    );
    assert_eq!(head.header("Upload-Offset").as_deref(), Some("10"));
    let resp = read_response(&mut stream, false);
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.body_text(),
        "ERR_UPLOAD_INTERRUPTED: upload has been interrupted by another request for this upload resource\n"
    );
    s.patch(&upload, 10, &[b'y'; 90])
        .status(204)
        .has("Upload-Offset", "100");
}

#[test]
fn idle_body_times_out_with_500_and_keeps_the_bytes() {
    let s = Server::start(&["-network-timeout=1s"]);
    let upload = s.create(Some(100));
    let (mut stream, _) = patch_head(&s, &upload, 0).send_partial(100, b"abcde");
    let started = Instant::now();
    let resp = read_response(&mut stream, false);
    assert_eq!(resp.status, 500, "{resp:?}");
    assert_eq!(
        resp.body_text(),
        "ERR_READ_TIMEOUT: timeout while reading request body\n"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    wait_for_offset(&s, &upload, 5);
}

#[test]
fn shutdown_answers_503_and_keeps_the_bytes() {
    let mut s = Server::start(&[]);
    let upload = s.create(Some(100));
    let (mut stream, _) = patch_head(&s, &upload, 0).send_partial(100, b"abcdefg");
    std::thread::sleep(Duration::from_millis(300));
    let status = s.terminate();
    let resp = read_response(&mut stream, false);
    assert_eq!(resp.status, 503, "{resp:?}");
    assert_eq!(
        resp.body_text(),
        "ERR_SERVER_SHUTDOWN: request has been interrupted because the server is shutting down\n"
    );
    assert!(status.success() || status.code().is_some(), "{status:?}");
    let id = upload.rsplit('/').next().expect("id");
    let stored = std::fs::read(s.dir.path().join("uploads").join(id)).expect("data file");
    assert_eq!(stored, b"abcdefg");
}

#[test]
fn expect_100_continue() {
    let s = Server::start(&[]);
    let upload = s.create(Some(5));
    let mut stream = s.connect();
    let head = format!(
        "PATCH {upload} HTTP/1.1\r\nHost: {}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: {OCTET}\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        s.addr
    );
    stream.write_all(head.as_bytes()).expect("head");
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("100 Continue");
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue\r\n"),
        "{:?}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(b"hello").expect("body");
    let resp = read_response(&mut stream, false);
    assert_eq!(resp.status, 204, "{resp:?}");
    assert_eq!(resp.header("Upload-Offset").as_deref(), Some("5"));
}

#[test]
fn server_keeps_serving_after_broken_requests() {
    let s = Server::start(&[]);
    for _ in 0..20 {
        let upload = s.create(Some(1000));
        let (stream, _) = patch_head(&s, &upload, 0).send_partial(1000, &[1; 100]);
        drop(stream);
    }
    s.tus("POST", "")
        .header("Upload-Length", "1")
        .send()
        .status(201);
}
