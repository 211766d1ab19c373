//! The expiration extension (tusd has none): `Upload-Expires` on incomplete uploads and a
//! reaper that removes them once expired.

use std::time::Duration;

use crate::harness::Server;
use crate::is_tusgate;

#[test]
fn expired_uploads_are_removed() {
    if !is_tusgate() {
        // tusd never expires uploads: the incomplete upload is still there later.
        let s = Server::start(&[]);
        let incomplete = s.create(Some(10));
        std::thread::sleep(Duration::from_millis(1500));
        s.req("HEAD", &incomplete).send().status(200);
        return;
    }
    let s = Server::start(&["-upload-expiry=1s"]);
    let incomplete = s.create(Some(10));
    let complete = s.create_complete(b"done");
    let resp = s.patch(&incomplete, 0, b"abc").status(204);
    let expires = resp
        .header("Upload-Expires")
        .expect("Upload-Expires on PATCH");
    assert!(expires.ends_with(" GMT"), "{expires}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = s.req("HEAD", &incomplete).send().status;
        if status == 404 {
            break;
        }
        assert!(status == 200 || status == 410, "{status}");
        assert!(std::time::Instant::now() < deadline, "not reaped");
        std::thread::sleep(Duration::from_millis(200));
    }
    s.req("HEAD", &complete).send().status(200);
}

#[test]
fn post_announces_expiry() {
    let s = Server::start(&[]);
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "5")
        .send()
        .status(201);
    assert_eq!(resp.header("Upload-Expires").is_some(), is_tusgate());
}
