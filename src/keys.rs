//! Asset keys: which keys an upload may publish to. A key must survive the round trip through a
//! granite-assets download URL and nginx's `secure_link` (see `granite-and-nginx.md` §2.5) and
//! must never leave the storage root, so everything that breaks either is refused at creation,
//! before a byte is accepted. Spaces, `+` and any UTF-8 are fine and stored byte for byte
//! (never Unicode-normalised).

/// Longest key in bytes: S3 keys are at most 1024 bytes, and the prefix needs room.
pub const MAX_KEY_BYTES: usize = 1000;
/// Longest path segment: NAME_MAX on Linux filesystems.
const MAX_SEGMENT_BYTES: usize = 255;

/// Why a key is refused; the text is written for the developer who built the upload URL.
pub fn validate_key(key: &str) -> Result<(), String> {
    let reason = if key.is_empty() {
        "the asset key is empty"
    } else if key.len() > MAX_KEY_BYTES {
        "the asset key is longer than 1000 bytes"
    } else if key.starts_with('/') || key.ends_with('/') {
        "the asset key must not start or end with '/'"
    } else if key.split('/').any(|s| s.is_empty()) {
        "the asset key must not contain '//'"
    } else if key.split('/').any(|s| s == "." || s == "..") {
        "the asset key must not contain '.' or '..' segments"
    } else if key.split('/').any(|s| s.len() > MAX_SEGMENT_BYTES) {
        "a segment of the asset key is longer than 255 bytes"
    } else if let Some(c) = key.chars().find(|c| matches!(c, '%' | '?' | '#' | '\\')) {
        return Err(format!(
            "the asset key must not contain {c:?}: download URLs built from it cannot be served"
        ));
    } else if key.chars().any(char::is_control) {
        "the asset key must not contain control characters"
    } else {
        return Ok(());
    };
    Err(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_round_trip_are_accepted() {
        for key in [
            "reports/q1.pdf",
            "my file.txt",
            "café/ünï.txt",
            "a+b.txt",
            "x",
            "a:b",
            "dir/.hidden",
            // Safe since content types may not contain ':' (see `tokens`).
            "x:public:y",
        ] {
            assert_eq!(validate_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn keys_that_cannot_round_trip_or_escape_are_refused() {
        for key in [
            "",
            "/abs",
            "trailing/",
            "a//b",
            "./a",
            "a/../b",
            "..",
            "100%.txt",
            "what?.txt",
            "a#b.txt",
            "a\\b",
            "tab\there",
            "nul\0",
        ] {
            assert!(validate_key(key).is_err(), "{key:?} accepted");
        }
        assert!(validate_key(&"a".repeat(MAX_KEY_BYTES + 1)).is_err());
        assert!(validate_key(&format!("{}/b", "a".repeat(256))).is_err());
    }
}
