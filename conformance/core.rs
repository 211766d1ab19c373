//! §2.0 the global pipeline: common headers, the version check, routing and 405s, method
//! override.

use crate::differs;
use crate::harness::Server;

#[test]
fn every_tus_response_carries_tus_resumable_and_nosniff() {
    let s = Server::start(&[]);
    for resp in [
        s.tus("POST", "").header("Upload-Length", "1").send(),
        s.req("HEAD", "nope").send(),
        s.tus("PATCH", "nope").send(),
        s.tus("PUT", "").send(),
    ] {
        let resp = resp
            .has("Tus-Resumable", "1.0.0")
            .has("X-Content-Type-Options", "nosniff");
        assert!(resp.status >= 200);
    }
}

#[test]
fn missing_tus_resumable_is_412_for_post_patch_delete() {
    let s = Server::start(&[]);
    let upload = s.create(Some(5));
    for (method, path) in [
        ("POST", ""),
        ("PATCH", upload.as_str()),
        ("DELETE", upload.as_str()),
    ] {
        let resp = s
            .req(method, path)
            .send()
            .status(412)
            .has("Tus-Resumable", "1.0.0")
            .body_is(
                "ERR_UNSUPPORTED_VERSION: missing, invalid or unsupported Tus-Resumable header\n",
            );
        // Deliberate difference: the spec says a 412 MUST carry Tus-Version; tusd omits it.
        assert_eq!(
            resp.header("Tus-Version"),
            differs(None, Some("1.0.0".into())),
            "{method}"
        );
    }
}

#[test]
fn wrong_tus_resumable_is_412() {
    let s = Server::start(&[]);
    s.req("POST", "")
        .header("Tus-Resumable", "0.2.2")
        .header("Upload-Length", "1")
        .send()
        .status(412);
}

#[test]
fn get_and_head_do_not_need_tus_resumable() {
    let s = Server::start(&[]);
    let upload = s.create_complete(b"abc");
    s.req("HEAD", &upload).send().status(200);
    s.req("GET", &upload).send().status(200);
}

#[test]
fn version_check_precedes_routing() {
    let s = Server::start(&[]);
    s.req("PUT", "x").send().status(412);
    s.tus("PUT", "x").send().status(405);
}

#[test]
fn collection_allows_only_post() {
    let s = Server::start(&[]);
    for method in ["GET", "HEAD", "PATCH", "DELETE", "PUT"] {
        let resp = s.tus(method, "").send().status(405).has("Allow", "POST");
        if method != "HEAD" {
            assert_eq!(resp.body_text(), "method not allowed", "{method}");
        }
    }
}

#[test]
fn upload_allows_get_head_patch_delete() {
    let s = Server::start(&[]);
    s.tus("PUT", "abc")
        .send()
        .status(405)
        .has("Allow", "GET, HEAD, PATCH, DELETE")
        .body_is("method not allowed");
    s.tus("POST", "abc")
        .send()
        .status(405)
        .has("Allow", "GET, HEAD, PATCH, DELETE");
}

#[test]
fn base_path_without_trailing_slash_is_the_collection() {
    let s = Server::start(&[]);
    let resp = s
        .tus("POST", "/files")
        .header("Upload-Length", "3")
        .send()
        .status(201);
    assert!(
        resp.header("Location")
            .unwrap_or_default()
            .contains("/files/")
    );
}

#[test]
fn custom_base_path() {
    let s = Server::start(&["-base-path=/uploads/"]);
    assert_eq!(s.base_path, "/uploads/");
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "3")
        .send()
        .status(201);
    assert!(
        resp.header("Location")
            .unwrap_or_default()
            .starts_with(&s.url("/uploads/"))
    );
    // Deliberate difference: tusd's greeting handler answers every unmatched path with 200.
    s.tus("POST", "/files/")
        .header("Upload-Length", "3")
        .send()
        .status(differs(200, 404));
}

#[test]
fn method_override_on_post_becomes_patch() {
    let s = Server::start(&[]);
    let upload = s.create(Some(5));
    s.tus("POST", &upload)
        .header("X-HTTP-Method-Override", "PATCH")
        .header("Upload-Offset", "0")
        .chunk(b"hello")
        .send()
        .status(204)
        .has("Upload-Offset", "5");
    assert_eq!(s.stored(&upload), b"hello");
}

#[test]
fn method_override_to_delete_and_head() {
    let s = Server::start(&[]);
    let upload = s.create(Some(5));
    // Deliberate difference: tusd answers with `Content-Length: 5` and no body, a malformed
    // response to a POST; tusgate's is well-formed.
    s.tus("POST", &upload)
        .header("X-HTTP-Method-Override", "HEAD")
        .headers_only()
        .send()
        .status(200)
        .has("Upload-Offset", "0")
        .has("Content-Length", differs("5", "0"));
    s.tus("POST", &upload)
        .header("X-HTTP-Method-Override", "DELETE")
        .send()
        .status(204);
    s.req("HEAD", &upload).send().status(404);
}

#[test]
fn method_override_is_ignored_on_other_methods() {
    let s = Server::start(&[]);
    let upload = s.create(Some(5));
    // A PATCH stays a PATCH even with an override header.
    s.tus("PATCH", &upload)
        .header("X-HTTP-Method-Override", "DELETE")
        .header("Upload-Offset", "0")
        .chunk(b"12345")
        .send()
        .status(204);
    s.req("HEAD", &upload)
        .send()
        .status(200)
        .has("Upload-Offset", "5");
}

#[test]
fn unknown_paths_are_404_and_root_greets() {
    let s = Server::start(&[]);
    // Deliberate difference: tusd greets on every unmatched path; tusgate only on `/`.
    s.req("GET", "/nowhere").send().status(differs(200, 404));
    let greeting = s.req("GET", "/").send().status(200).body_text();
    assert!(greeting.contains("/files/"));
}
