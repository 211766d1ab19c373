//! §2.7 GET on an upload URL (not part of tus; tusd's filestore serves the bytes).

use crate::harness::{Server, b64};

#[test]
fn download_with_type_and_disposition_from_metadata() {
    let s = Server::start(&[]);
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "5")
        .header(
            "Upload-Metadata",
            &format!(
                "filename {},filetype {}",
                b64(b"file.jpg\"evil"),
                b64(b"image/jpeg")
            ),
        )
        .send()
        .status(201);
    let upload = s.location(&resp);
    s.patch(&upload, 0, b"hello").status(204);
    let resp = s
        .req("GET", &upload)
        .send()
        .status(200)
        .has("Content-Type", "image/jpeg")
        .has(
            "Content-Disposition",
            "inline;filename=\"file.jpg\\\"evil\"",
        )
        .has("Content-Length", "5")
        .has("Accept-Ranges", "bytes");
    assert!(resp.header("Last-Modified").is_some());
    assert_eq!(resp.body, b"hello");
}

#[test]
fn risky_or_invalid_types_are_attachments() {
    let s = Server::start(&[]);
    for (filetype, content_type) in [
        ("text/html", "text/html"),
        ("not a type", "application/octet-stream"),
    ] {
        let resp = s
            .tus("POST", "")
            .header("Upload-Length", "1")
            .header(
                "Upload-Metadata",
                &format!("filetype {}", b64(filetype.as_bytes())),
            )
            .send();
        let upload = s.location(&resp);
        s.patch(&upload, 0, b"x").status(204);
        s.req("GET", &upload)
            .send()
            .status(200)
            .has("Content-Type", content_type)
            .has("Content-Disposition", "attachment");
    }
}

#[test]
fn incomplete_upload_serves_what_is_stored() {
    let s = Server::start(&[]);
    let upload = s.create(Some(10));
    s.patch(&upload, 0, b"abc").status(204);
    let resp = s
        .req("GET", &upload)
        .send()
        .status(200)
        .has("Content-Length", "3");
    assert_eq!(resp.body, b"abc");
}

#[test]
fn empty_upload_is_an_empty_200() {
    let s = Server::start(&[]);
    let upload = s.create(Some(0));
    let resp = s
        .req("GET", &upload)
        .send()
        .status(200)
        .has("Content-Length", "0");
    assert!(resp.body.is_empty());
}

#[test]
fn single_range() {
    let s = Server::start(&[]);
    let upload = s.create_complete(b"hello world");
    let resp = s
        .req("GET", &upload)
        .header("Range", "bytes=0-4")
        .send()
        .status(206)
        .has("Content-Range", "bytes 0-4/11");
    assert_eq!(resp.body, b"hello");
    let resp = s
        .req("GET", &upload)
        .header("Range", "bytes=-5")
        .send()
        .status(206);
    assert_eq!(resp.body, b"world");
}

#[test]
fn unsatisfiable_range_is_416() {
    let s = Server::start(&[]);
    let upload = s.create_complete(b"hello");
    s.req("GET", &upload)
        .header("Range", "bytes=10-")
        .send()
        .status(416)
        .has("Content-Range", "bytes */5");
}

#[test]
fn unknown_upload_is_404() {
    let s = Server::start(&[]);
    s.req("GET", "0123456789abcdef0123456789abcdef")
        .send()
        .status(404);
}

#[test]
fn disabled_download_is_405() {
    let s = Server::start(&["-disable-download"]);
    let upload = s.create_complete(b"x");
    s.req("GET", &upload).send().status(405);
}
