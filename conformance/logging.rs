//! Logging never fails a request: with the log's reader gone (a log collector that died, a
//! full log disk), every request still gets its response. This checks tusgate's fix of
//! issue 9 (finding 8), not tusd behaviour: tusgate-only.

use crate::harness::Launch;
use crate::is_tusgate;

#[test]
fn a_broken_stderr_does_not_fail_requests() {
    if !is_tusgate() {
        return;
    }
    for format in ["text", "json"] {
        // Every request below is logged; each write to stderr now fails with EPIPE.
        let s = Launch::default()
            .arg("-verbose")
            .arg(&format!("-log-format={format}"))
            .close_stderr()
            .start();
        for _ in 0..3 {
            let upload = s.create(Some(3));
            s.patch(&upload, 0, b"abc").status(204);
            s.tus("HEAD", &upload)
                .send()
                .status(200)
                .has("Upload-Offset", "3");
            s.patch(&upload, 0, b"abc").status(409);
            s.req("GET", "/health").send().status(200).body_is("OK\n");
        }
        s.tus("HEAD", "0123456789abcdef0123456789abcdef")
            .send()
            .status(404);
    }
}
