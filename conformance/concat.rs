//! The concatenation extension (tusd's concat tests).

use crate::harness::{Server, data};

fn partial(s: &Server, bytes: &[u8]) -> String {
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", &bytes.len().to_string())
        .header("Upload-Concat", "partial")
        .send()
        .status(201);
    let path = s.location(&resp);
    if !bytes.is_empty() {
        s.patch(&path, 0, bytes).status(204);
    }
    path
}

#[test]
fn partial_upload_reports_itself() {
    let s = Server::start(&[]);
    let a = partial(&s, b"abc");
    s.req("HEAD", &a)
        .send()
        .status(200)
        .has("Upload-Concat", "partial");
}

#[test]
fn final_upload_concatenates_absolute_and_relative_urls() {
    let s = Server::start(&[]);
    let a = partial(&s, b"hello ");
    let b = partial(&s, b"world");
    let header = format!("final;{} {}/", s.url(&a), b);
    let resp = s
        .tus("POST", "")
        .header("Upload-Concat", &header)
        .send()
        .status(201);
    let fin = s.location(&resp);
    s.req("HEAD", &fin)
        .send()
        .status(200)
        .has("Upload-Offset", "11")
        .has("Upload-Length", "11")
        .has(
            "Upload-Concat",
            &format!("final;{} {}", s.url(&a), s.url(&b)),
        );
    assert_eq!(s.stored(&fin), b"hello world");
}

#[test]
fn final_of_large_partials() {
    let s = Server::start(&[]);
    let one = data(3 << 20);
    let two = data(1 << 20);
    let a = partial(&s, &one);
    let b = partial(&s, &two);
    let resp = s
        .tus("POST", "")
        .header("Upload-Concat", &format!("final;{a} {b}"))
        .send()
        .status(201);
    let fin = s.location(&resp);
    let stored = s.stored(&fin);
    assert_eq!(stored.len(), one.len() + two.len());
    assert!(stored[..one.len()] == one[..] && stored[one.len()..] == two[..]);
}

#[test]
fn unfinished_partial_is_400() {
    let s = Server::start(&[]);
    let a = partial(&s, b"abc");
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "5")
        .header("Upload-Concat", "partial")
        .send();
    let b = s.location(&resp);
    s.tus("POST", "")
        .header("Upload-Concat", &format!("final;{a} {b}"))
        .send()
        .status(400)
        .body_is("ERR_UPLOAD_NOT_FINISHED: one of the partial uploads is not finished\n");
}

#[test]
fn missing_partial_is_404() {
    let s = Server::start(&[]);
    s.tus("POST", "")
        .header(
            "Upload-Concat",
            "final;/files/0123456789abcdef0123456789abcdef",
        )
        .send()
        .status(404);
}

#[test]
fn url_outside_the_base_path_is_404() {
    let s = Server::start(&[]);
    s.tus("POST", "")
        .header("Upload-Concat", "final;/elsewhere/abc")
        .send()
        .status(404);
}

#[test]
fn final_sum_over_max_size_is_413() {
    let s = Server::start(&["-max-size=8"]);
    let a = partial(&s, b"hello");
    let b = partial(&s, b"world");
    s.tus("POST", "")
        .header("Upload-Concat", &format!("final;{a} {b}"))
        .send()
        .status(413);
}

#[test]
fn patch_to_a_final_upload_is_403() {
    let s = Server::start(&[]);
    let a = partial(&s, b"x");
    let resp = s
        .tus("POST", "")
        .header("Upload-Concat", &format!("final;{a}"))
        .send()
        .status(201);
    let fin = s.location(&resp);
    s.patch(&fin, 1, b"y")
        .status(403)
        .body_is("ERR_MODIFY_FINAL: modifying a final upload is not allowed\n");
}

#[test]
fn final_with_a_body_is_403() {
    let s = Server::start(&[]);
    let a = partial(&s, b"x");
    s.tus("POST", "")
        .header("Upload-Concat", &format!("final;{a}"))
        .chunk(b"y")
        .send()
        .status(403);
}

#[test]
fn invalid_concat_headers_are_400() {
    let s = Server::start(&[]);
    for header in ["final;", "final; ", "Partial", "other"] {
        s.tus("POST", "")
            .header("Upload-Length", "1")
            .header("Upload-Concat", header)
            .send()
            .status(400)
            .body_is("ERR_INVALID_CONCAT: invalid Upload-Concat header\n");
    }
}

/// Deliberate difference: tusd concatenates any finished upload; tusgate only uploads created
/// as partials (a final must not read somebody else's finished upload), and each only once.
#[test]
fn only_partials_can_be_concatenated_and_each_once() {
    let s = Server::start(&[]);
    let plain = s.create_complete(b"plain");
    let resp = s
        .tus("POST", "")
        .header("Upload-Concat", &format!("final;{plain}"))
        .send();
    if !crate::is_tusgate() {
        let fin = s.location(&resp.status(201));
        assert_eq!(s.stored(&fin), b"plain");
        return;
    }
    resp.status(400).body_is(
        "ERR_INVALID_CONCAT: a final upload may only list uploads created with Upload-Concat: partial\n",
    );
    let partial = s.location(
        &s.tus("POST", "")
            .header("Upload-Length", "1")
            .header("Upload-Concat", "partial")
            .send()
            .status(201),
    );
    s.patch(&partial, 0, b"p").status(204);
    s.tus("POST", "")
        .header("Upload-Concat", &format!("final;{partial} {partial}"))
        .send()
        .status(400)
        .body_is("ERR_INVALID_CONCAT: a final upload may list each partial upload only once\n");
}

#[test]
fn disabled_concatenation_is_400() {
    let s = Server::start(&["-disable-concatenation"]);
    s.tus("POST", "")
        .header("Upload-Length", "1")
        .header("Upload-Concat", "partial")
        .send()
        .status(400)
        .body_is(
            "ERR_CONCATENATION_UNSUPPORTED: Upload-Concat header is not supported by server\n",
        );
}
