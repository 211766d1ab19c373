//! §2.3 HEAD: the upload's state, with tusd's exact header set.

use crate::differs;
use crate::harness::{Server, b64};

#[test]
fn status_of_an_incomplete_upload() {
    let s = Server::start(&[]);
    let upload = s.create(Some(44));
    s.patch(&upload, 0, &[7; 11]).status(204);
    let resp = s
        .req("HEAD", &upload)
        .send()
        .status(200)
        .has("Upload-Offset", "11")
        .has("Upload-Length", "44")
        .has("Content-Length", "44")
        .has("Cache-Control", "no-store")
        .lacks("Upload-Metadata")
        .lacks("Upload-Defer-Length")
        .lacks("Upload-Concat");
    assert!(resp.body.is_empty());
    // Deliberate difference: the expiration extension announces when the upload expires.
    assert_eq!(
        resp.header("Upload-Expires").is_some(),
        differs(false, true)
    );
}

#[test]
fn complete_upload_has_no_expiry() {
    let s = Server::start(&[]);
    let upload = s.create_complete(b"abc");
    s.req("HEAD", &upload)
        .send()
        .status(200)
        .has("Upload-Offset", "3")
        .lacks("Upload-Expires");
}

#[test]
fn metadata_echo_uses_tusd_format() {
    let s = Server::start(&[]);
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "1")
        .header("Upload-Metadata", &format!("filename {}", b64(b"a b.txt")))
        .send()
        .status(201);
    let upload = s.location(&resp);
    s.req("HEAD", &upload)
        .send()
        .has("Upload-Metadata", &format!("filename {}", b64(b"a b.txt")));
}

#[test]
fn unknown_upload_is_404_with_empty_body() {
    let s = Server::start(&[]);
    let resp = s
        .req("HEAD", "0123456789abcdef0123456789abcdef")
        .send()
        .status(404);
    assert!(resp.body.is_empty());
}

#[test]
fn ids_that_could_name_files_are_404() {
    let s = Server::start(&[]);
    let upload = s.create(Some(1));
    let id = upload.rsplit('/').next().expect("id");
    for path in [
        format!("{id}.info"),
        "..%2f..%2fetc%2fpasswd".to_owned(),
        "%2e%2e".to_owned(),
    ] {
        s.req("HEAD", &path).send().status(404);
    }
}

#[test]
fn deferred_upload_reports_defer_length() {
    let s = Server::start(&[]);
    let upload = s.create(None);
    s.req("HEAD", &upload)
        .send()
        .status(200)
        .has("Upload-Defer-Length", "1")
        .lacks("Upload-Length")
        .lacks("Content-Length");
}
