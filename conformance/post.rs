//! §2.2 POST (creation, creation-with-upload, creation-defer-length), checks in tusd's order.

use crate::harness::{Server, b64};

#[test]
fn create_returns_201_with_an_absolute_location() {
    let s = Server::start(&[]);
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "11")
        .send()
        .status(201)
        .lacks("Upload-Offset");
    let location = resp.header("Location").expect("Location");
    let id = location
        .strip_prefix(&s.url("/files/"))
        .expect("absolute URL under the base path");
    assert_eq!(id.len(), 32, "32 hex characters: {id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert!(resp.body.is_empty());
}

#[test]
fn ids_are_unique() {
    let s = Server::start(&[]);
    let a = s.create(Some(1));
    let b = s.create(Some(1));
    assert_ne!(a, b);
}

#[test]
fn filestore_layout_is_tusds() {
    let s = Server::start(&[]);
    let upload = s.create_complete(b"hello");
    let id = upload.rsplit('/').next().expect("id");
    let dir = s.dir.path().join("uploads");
    assert_eq!(std::fs::read(dir.join(id)).expect("data file"), b"hello");
    let info = std::fs::read_to_string(dir.join(format!("{id}.info"))).expect("info file");
    for field in [
        "\"ID\":",
        "\"Size\":5",
        "\"SizeIsDeferred\":false",
        "\"MetaData\":",
        "\"IsPartial\":false",
        "\"IsFinal\":false",
        "\"Storage\":",
        "\"filestore\"",
    ] {
        assert!(info.contains(field), "{field} missing in {info}");
    }
}

#[test]
fn metadata_is_stored_leniently() {
    let s = Server::start(&[]);
    let header = format!(
        "name {},empty,bad !!!,three a b,type {}",
        b64(b"lunr.png"),
        b64(b"image/png")
    );
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "1")
        .header("Upload-Metadata", &header)
        .send()
        .status(201);
    let upload = s.location(&resp);
    let echo = s
        .req("HEAD", &upload)
        .send()
        .status(200)
        .header("Upload-Metadata")
        .expect("metadata");
    // An empty value is echoed as `key ` (with a space); tusd's order is random, and when that
    // pair comes last its space ends the header value, which HTTP strips. So compare trimmed.
    let mut pairs: Vec<&str> = echo.split(',').map(str::trim).collect();
    pairs.sort_unstable();
    let name = format!("name {}", b64(b"lunr.png"));
    let kind = format!("type {}", b64(b"image/png"));
    assert_eq!(pairs, ["empty", name.as_str(), kind.as_str()]);
}

#[test]
fn zero_length_upload_is_complete_at_once() {
    let s = Server::start(&[]);
    let upload = s.create(Some(0));
    s.req("HEAD", &upload)
        .send()
        .status(200)
        .has("Upload-Offset", "0")
        .has("Upload-Length", "0")
        .lacks("Upload-Expires");
}

#[test]
fn over_max_size_is_413() {
    let s = Server::start(&["-max-size=10"]);
    s.tus("POST", "")
        .header("Upload-Length", "11")
        .send()
        .status(413)
        .body_is("ERR_MAX_SIZE_EXCEEDED: maximum size exceeded\n");
    s.tus("POST", "")
        .header("Upload-Length", "10")
        .send()
        .status(201);
}

#[test]
fn invalid_upload_length_is_400() {
    let s = Server::start(&[]);
    for value in ["-5", "abc", "1.5", "5 5", "99999999999999999999"] {
        s.tus("POST", "")
            .header("Upload-Length", value)
            .send()
            .status(400)
            .body_is("ERR_INVALID_UPLOAD_LENGTH: missing or invalid Upload-Length header\n");
    }
}

#[test]
fn go_integer_syntax_is_accepted() {
    let s = Server::start(&[]);
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "+007")
        .send()
        .status(201);
    let upload = s.location(&resp);
    s.req("HEAD", &upload).send().has("Upload-Length", "7");
}

#[test]
fn missing_length_is_400() {
    let s = Server::start(&[]);
    s.tus("POST", "")
        .send()
        .status(400)
        .body_is("ERR_INVALID_UPLOAD_LENGTH: missing or invalid Upload-Length header\n");
}

#[test]
fn both_length_headers_are_400() {
    let s = Server::start(&[]);
    s.tus("POST", "")
        .header("Upload-Length", "5")
        .header("Upload-Defer-Length", "1")
        .send()
        .status(400)
        .body_is(
            "ERR_AMBIGUOUS_UPLOAD_LENGTH: provided both Upload-Length and Upload-Defer-Length\n",
        );
}

#[test]
fn defer_length_must_be_1() {
    let s = Server::start(&[]);
    s.tus("POST", "")
        .header("Upload-Defer-Length", "bad")
        .send()
        .status(400)
        .body_is("ERR_INVALID_UPLOAD_LENGTH_DEFER: invalid Upload-Defer-Length header\n");
}

#[test]
fn deferred_length_upload() {
    let s = Server::start(&[]);
    let upload = s.create(None);
    s.req("HEAD", &upload)
        .send()
        .status(200)
        .has("Upload-Defer-Length", "1")
        .lacks("Upload-Length")
        .has("Upload-Offset", "0");
}

#[test]
fn creation_with_upload_stores_the_body() {
    let s = Server::start(&[]);
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "11")
        .chunk(b"hello")
        .send()
        .status(201)
        .has("Upload-Offset", "5");
    let upload = s.location(&resp);
    s.patch(&upload, 5, b" world")
        .status(204)
        .has("Upload-Offset", "11");
    assert_eq!(s.stored(&upload), b"hello world");
}

#[test]
fn creation_with_upload_completes_the_upload() {
    let s = Server::start(&[]);
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "5")
        .chunk(b"hello")
        .send()
        .status(201)
        .has("Upload-Offset", "5");
    let upload = s.location(&resp);
    assert_eq!(s.stored(&upload), b"hello");
}

#[test]
fn creation_with_other_content_type_ignores_the_body() {
    let s = Server::start(&[]);
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "5")
        .header("Content-Type", "text/plain")
        .body(b"hello")
        .send()
        .status(201)
        .lacks("Upload-Offset");
    let upload = s.location(&resp);
    s.req("HEAD", &upload).send().has("Upload-Offset", "0");
}

#[test]
fn creation_with_upload_larger_than_length_is_413() {
    let s = Server::start(&[]);
    s.tus("POST", "")
        .header("Upload-Length", "3")
        .chunk(b"hello")
        .send()
        .status(413)
        .lacks("Location")
        .body_is("ERR_UPLOAD_SIZE_EXCEEDED: upload's size exceeded\n");
}

#[test]
fn creation_with_upload_and_deferred_length() {
    let s = Server::start(&[]);
    let resp = s
        .tus("POST", "")
        .header("Upload-Defer-Length", "1")
        .chunk(b"abc")
        .send()
        .status(201)
        .has("Upload-Offset", "3");
    let upload = s.location(&resp);
    s.req("HEAD", &upload)
        .send()
        .has("Upload-Offset", "3")
        .has("Upload-Defer-Length", "1");
}
