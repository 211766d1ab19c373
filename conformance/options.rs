//! §2.1 OPTIONS: discovery on any path, no version check, 200 (not 204) like tusd.

use crate::differs;
use crate::harness::Server;

fn extensions() -> &'static str {
    differs(
        "creation,creation-with-upload,termination,concatenation,creation-defer-length",
        // Deliberate difference: the checksum and expiration extensions, which tusd lacks.
        "creation,creation-with-upload,termination,concatenation,creation-defer-length,checksum,expiration",
    )
}

#[test]
fn discovery() {
    let s = Server::start(&[]);
    let resp = s
        .req("OPTIONS", "")
        .send()
        .status(200)
        .has("Tus-Resumable", "1.0.0")
        .has("Tus-Version", "1.0.0")
        .has("Tus-Extension", extensions())
        .has("X-Content-Type-Options", "nosniff")
        .lacks("Tus-Max-Size");
    assert!(resp.body.is_empty());
    assert_eq!(
        resp.header("Tus-Checksum-Algorithm"),
        differs(None, Some("sha1,md5,sha256".into()))
    );
}

#[test]
fn any_path_and_any_version() {
    let s = Server::start(&[]);
    s.req("OPTIONS", "some/upload")
        .header("Tus-Resumable", "foo")
        .send()
        .status(200)
        .has("Tus-Version", "1.0.0");
}

#[test]
fn max_size_is_advertised() {
    let s = Server::start(&["-max-size=400"]);
    s.req("OPTIONS", "")
        .send()
        .status(200)
        .has("Tus-Max-Size", "400");
}

#[test]
fn disabled_extensions_are_not_advertised() {
    let s = Server::start(&["-disable-termination", "-disable-concatenation"]);
    let resp = s.req("OPTIONS", "").send().status(200);
    let ext = resp.header("Tus-Extension").unwrap_or_default();
    assert!(
        !ext.contains("termination") && !ext.contains("concatenation"),
        "{ext}"
    );
    assert!(
        ext.starts_with("creation,creation-with-upload,creation-defer-length"),
        "{ext}"
    );
}
