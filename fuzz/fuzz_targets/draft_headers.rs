//! The IETF draft's pure parsers (`tusgate::draft`): a fuzzed header set through the
//! structured-field parsers, `Upload-Limit`, the creation metadata and the request
//! classification for every method and target. Input: `Name: value` lines. Each must not
//! panic and must keep the promise its doc makes.
#![no_main]

mod header_lines;

use http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;
use tusgate::draft::headers::{self, InteropVersion, Protocol, UploadLimit};
use tusgate::draft::request::{Operation, Target, classify};
use tusgate::draft::{metadata, sf};

fuzz_target!(|data: &[u8]| {
    let mut map = HeaderMap::new();
    for (name, value) in header_lines::parse(data.split(|&b| b == b'\n')) {
        map.append(name, value);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = sf::parse_item(s);
        let _ = sf::parse_dictionary(s);
    }

    if let Protocol::Draft(v) = headers::protocol(&map) {
        assert!(InteropVersion::SUPPORTED.contains(&v));
    }
    // A limit that parses serialises to a field that parses back to the same limits (within
    // what RFC 9651 Integers can carry).
    if let Some(limit) = UploadLimit::parse(&map) {
        if let Some(value) = limit.to_header(InteropVersion::V9) {
            let mut again = HeaderMap::new();
            again.insert(
                headers::UPLOAD_LIMIT,
                value.parse().expect("a serialised limit is a header value"),
            );
            let back = UploadLimit::parse(&again).expect("a serialised limit parses");
            let clamp = |v: Option<u64>| v.map(|v| v.min(headers::SF_INTEGER_MAX));
            assert_eq!(back.max_size, clamp(limit.max_size));
            assert_eq!(back.max_age, clamp(limit.max_age));
        }
    }
    // Explicit metadata wins; a `filename` taken from Content-Disposition is never empty (tus
    // metadata may carry a key without a value, so only the derived one is checked).
    let meta = metadata::from_creation(&map);
    let explicit = tusgate::tus::headers::parse_metadata(
        map.get("upload-metadata")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    match (meta.get("filename"), explicit.get("filename")) {
        (Some(name), Some(given)) => assert_eq!(name, given),
        (Some(name), None) => assert!(!name.is_empty()),
        _ => {}
    }

    for version in InteropVersion::SUPPORTED {
        for method in [
            Method::POST,
            Method::HEAD,
            Method::GET,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
            Method::PUT,
        ] {
            for target in [Target::Collection, Target::Upload] {
                // An append or creation that classifies has a length no smaller than the
                // offset it starts at, and a complete one with a Content-Length indicates one.
                match classify(version, &method, target, &map) {
                    Ok(Operation::Append {
                        offset,
                        upload_length: Some(length),
                        ..
                    }) => assert!(length >= offset || headers::upload_length(&map).is_some()),
                    Ok(Operation::Create { .. }) => {
                        assert!(matches!(method, Method::POST | Method::PUT | Method::PATCH));
                        assert_eq!(target, Target::Collection);
                    }
                    _ => {}
                }
            }
        }
    }
});
