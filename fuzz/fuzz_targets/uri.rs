//! `tusgate::download::uri::normalize`, nginx's `$uri`. A normalised path starts with `/`,
//! has no empty, `.` or `..` segment and no NUL it was not given raw (HTTP parsers refuse
//! those before us; a decoded `%00` is refused here), and normalising it again changes nothing
//! (unless it still holds a `%`, which a second pass would decode: nginx decodes once).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tusgate::download::uri::normalize;

fuzz_target!(|data: &[u8]| {
    let Ok(out) = normalize(data) else {
        return;
    };
    assert_eq!(out.first(), Some(&b'/'));
    if !data.contains(&0) {
        assert!(!out.contains(&0));
    }
    // Segments between slashes; a trailing `/` (a directory) leaves one empty last segment.
    let inner = out[1..].strip_suffix(b"/").unwrap_or(&out[1..]);
    if !inner.is_empty() {
        for segment in inner.split(|&b| b == b'/') {
            assert!(!matches!(segment, b"" | b"." | b".."), "{out:?}");
        }
    }
    if !out.contains(&b'%') {
        assert_eq!(normalize(&out).as_ref(), Ok(&out));
    }
});
