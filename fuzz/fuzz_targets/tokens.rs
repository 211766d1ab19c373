//! `tusgate::tokens::UploadTokens::check_creation` on fuzzed `Upload-Metadata`. Input: one
//! flag character, then the header. Flag bits: 1 allows uploads without a token, 2 signs the
//! fields with the server's secret (as granite-assets would; the fuzzer cannot forge HMACs).
//! Whatever is accepted targets `<visibility prefix>/<asset-key>` with a valid key and a
//! content type without ':', and nothing without a token passes unless that is allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tusgate::keys::validate_key;
use tusgate::tokens::{Prefixes, Secret, UploadTokens, sign};
use tusgate::tus::headers::parse_metadata;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(header) = std::str::from_utf8(rest) else {
        return;
    };
    let secret = Secret::new("fuzz-upload-secret");
    let tokens = UploadTokens::new(Some(secret.clone()), flags & 1 != 0, Prefixes::default());
    let mut meta = parse_metadata(header);
    if flags & 2 != 0 {
        let field = |name: &str| meta.get(name).cloned();
        if let Some(expires) = field("upload-expires").and_then(|e| e.parse::<u64>().ok()) {
            let token = sign(
                &secret,
                expires,
                &field("asset-key").unwrap_or_default(),
                &field("visibility").unwrap_or_else(|| "private".into()),
                &field("content-type").unwrap_or_default(),
            );
            meta.insert("upload-token".into(), token);
        }
    }
    let result = tokens.check_creation(&meta);
    if !meta.contains_key("upload-token") {
        assert_eq!(result.is_ok(), flags & 1 != 0);
    }
    if let Ok(Some(target)) = result {
        // The signed payload splits one way only: no ':' in the content type.
        assert!(!meta.get("content-type").is_some_and(|t| t.contains(':')));
        let key = meta.get("asset-key").expect("a published upload has a key");
        assert!(validate_key(key).is_ok());
        let prefix = match meta.get("visibility").map_or("private", String::as_str) {
            "public" => "public",
            "private" => "private",
            other => panic!("published with visibility {other:?}"),
        };
        assert_eq!(target.path, format!("{prefix}/{key}"));
    }
});
