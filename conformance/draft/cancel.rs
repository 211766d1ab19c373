//! Draft §"Upload Cancellation": DELETE on the upload resource deactivates it. Interop 9 and 8
//! (tusgate only, see [`super::interop_9_8`]); interop 6 in [`super::versions`].

use super::{CURRENT, Draft, interop_9_8, start, upload_ids};

/// DELETE is 204 (the draft's example); the resource is gone afterwards, for every operation.
#[test]
fn cancel_then_the_upload_is_gone() {
    if !interop_9_8() {
        return;
    }
    let s = start(&[]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(10));
        d.append(&upload, 0, false, b"abc").status(204);
        d.req("DELETE", &upload)
            .send()
            .status(204)
            .has(super::INTEROP, v);
        d.head(&upload).status(404);
        d.append(&upload, 3, false, b"def").status(404);
        d.req("DELETE", &upload).send().status(404);
        // A completed upload can be cancelled too (its resource is released).
        let done = s.location(&d.post(true).body(b"x").send().status(201));
        d.req("DELETE", &done).send().status(204);
        d.head(&done).status(404);
    }
    assert_eq!(upload_ids(&s), Vec::<String>::new(), "upload files remain");
}

/// With the termination extension disabled (`-disable-termination`) the server offers no
/// cancellation: 405, and the upload stays.
#[test]
fn cancel_is_405_with_termination_disabled() {
    if !interop_9_8() {
        return;
    }
    let s = start(&["-disable-termination"]);
    for v in CURRENT {
        let d = Draft::new(&s, v);
        let upload = d.create(Some(10));
        d.req("DELETE", &upload).send().status(405);
        d.head(&upload).status(204).has("Upload-Offset", "0");
    }
}
