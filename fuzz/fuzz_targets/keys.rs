//! `tusgate::keys::validate_key`: an accepted key is safe on disk and survives nginx's path
//! normalisation unchanged, so its download URL names the file it was published as.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tusgate::download::uri::normalize;
use tusgate::keys::{MAX_KEY_BYTES, validate_key};

fuzz_target!(|data: &[u8]| {
    let Ok(key) = std::str::from_utf8(data) else {
        return;
    };
    if validate_key(key).is_err() {
        return;
    }
    assert!(!key.is_empty() && key.len() <= MAX_KEY_BYTES);
    for segment in key.split('/') {
        assert!(!matches!(segment, "" | "." | ".."), "{key:?}");
    }
    assert!(!key.contains(['%', '?', '#', '\\', '\0']));
    let path = format!("/assets/public/{key}");
    assert_eq!(normalize(path.as_bytes()), Ok(path.into_bytes()));
});
