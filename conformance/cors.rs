//! CORS, on by default as in tusd (`cors_test.go`).

use crate::differs;
use crate::harness::Server;

const ALLOW_HEADERS: &str = "Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Incomplete, Upload-Complete, Upload-Draft-Interop-Version";
const EXPOSE_HEADERS: &str = "Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Incomplete, Upload-Complete, Upload-Draft-Interop-Version";

fn allow_headers() -> String {
    // Deliberate difference: the checksum extension's request header is allowed too, and the
    // IETF draft's Content-Disposition (the filename of a draft creation).
    differs(
        ALLOW_HEADERS.to_owned(),
        format!("{ALLOW_HEADERS}, Upload-Checksum, Content-Disposition"),
    )
}

fn expose_headers() -> String {
    // Deliberate difference: the headers of the expiration and checksum extensions are exposed,
    // and the IETF draft's Upload-Limit.
    differs(
        EXPOSE_HEADERS.to_owned(),
        format!("{EXPOSE_HEADERS}, Upload-Expires, Tus-Checksum-Algorithm, Upload-Limit"),
    )
}

#[test]
fn preflight_defaults() {
    let s = Server::start(&[]);
    s.req("OPTIONS", "")
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .status(200)
        .has("Access-Control-Allow-Origin", "https://app.example")
        .has("Vary", "Origin")
        .has(
            "Access-Control-Allow-Methods",
            "POST, HEAD, PATCH, OPTIONS, GET, DELETE",
        )
        .has("Access-Control-Allow-Headers", &allow_headers())
        .has("Access-Control-Max-Age", "86400")
        .lacks("Access-Control-Allow-Credentials")
        .lacks("Access-Control-Expose-Headers");
}

#[test]
fn actual_requests_expose_headers_even_on_errors() {
    let s = Server::start(&[]);
    s.req("POST", "")
        .header("Origin", "https://app.example")
        .send()
        .status(412)
        .has("Access-Control-Allow-Origin", "https://app.example")
        .has("Access-Control-Expose-Headers", &expose_headers());
    s.tus("POST", "")
        .header("Origin", "https://app.example")
        .header("Upload-Length", "1")
        .send()
        .status(201)
        .has("Access-Control-Expose-Headers", &expose_headers());
}

#[test]
fn disallowed_origin_is_403_without_tus_headers() {
    let s = Server::start(&["-cors-allow-origin=^https://good\\.example$"]);
    for method in ["OPTIONS", "POST"] {
        s.tus(method, "")
            .header("Origin", "https://evil.example")
            .send()
            .status(403)
            .body_is("ERR_ORIGIN_NOT_ALLOWED: request origin is not allowed\n")
            .lacks("Access-Control-Allow-Origin")
            .lacks("Tus-Resumable")
            .lacks("X-Content-Type-Options");
    }
    s.req("OPTIONS", "")
        .header("Origin", "https://good.example")
        .send()
        .status(200)
        .has("Access-Control-Allow-Origin", "https://good.example");
}

#[test]
fn custom_configuration_appends() {
    let s = Server::start(&[
        "-cors-allow-credentials",
        "-cors-allow-methods=PUT",
        "-cors-allow-headers=X-Token",
        "-cors-expose-headers=X-Extra",
        "-cors-max-age=10",
    ]);
    s.req("OPTIONS", "")
        .header("Origin", "https://a")
        .send()
        .has("Access-Control-Allow-Credentials", "true")
        .has(
            "Access-Control-Allow-Methods",
            "POST, HEAD, PATCH, OPTIONS, GET, DELETE, PUT",
        )
        .has(
            "Access-Control-Allow-Headers",
            &format!("{}, X-Token", allow_headers()),
        )
        .has("Access-Control-Max-Age", "10");
    s.tus("POST", "")
        .header("Origin", "https://a")
        .header("Upload-Length", "1")
        .send()
        .has(
            "Access-Control-Expose-Headers",
            &format!("{}, X-Extra", expose_headers()),
        );
}

#[test]
fn disabled_cors_sends_nothing() {
    let s = Server::start(&["-disable-cors"]);
    s.req("OPTIONS", "")
        .header("Origin", "https://a")
        .send()
        .status(200)
        .lacks("Access-Control-Allow-Origin");
}
