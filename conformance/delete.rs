//! §2.5 DELETE (termination).

use crate::harness::Server;

#[test]
fn terminate_incomplete_and_complete_uploads() {
    let s = Server::start(&[]);
    for upload in [s.create(Some(10)), s.create_complete(b"abc")] {
        s.tus("DELETE", &upload).send().status(204);
        s.req("HEAD", &upload).send().status(404);
        s.req("GET", &upload).send().status(404);
        s.patch(&upload, 0, b"x").status(404);
    }
}

#[test]
fn terminate_removes_the_files() {
    let s = Server::start(&[]);
    let upload = s.create_complete(b"abc");
    s.tus("DELETE", &upload).send().status(204);
    let leftovers: Vec<_> = std::fs::read_dir(s.dir.path().join("uploads"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn unknown_upload_is_404() {
    let s = Server::start(&[]);
    s.tus("DELETE", "0123456789abcdef0123456789abcdef")
        .send()
        .status(404)
        .body_is("ERR_UPLOAD_NOT_FOUND: upload not found\n");
}

#[test]
fn disabled_termination_is_405() {
    let s = Server::start(&["-disable-termination"]);
    let upload = s.create(Some(1));
    s.tus("DELETE", &upload)
        .send()
        .status(405)
        .has("Allow", "GET, HEAD, PATCH, DELETE");
}
