//! The tus header parsers of `tusgate::tus::headers`, all fed the same input: integers, sizes,
//! `Upload-Metadata`, `Upload-Concat`, `Upload-Checksum`, the creation length pair and the
//! proxy headers behind absolute upload URLs. Each must not panic and must keep the promise
//! its doc makes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tusgate::tus::headers::{
    ConcatRequest, host_and_proto, parse_checksum, parse_concat, parse_creation_length,
    parse_go_int, parse_metadata, parse_size, serialize_metadata,
};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    // Go's strconv.ParseInt(s, 10, 64) has the grammar of Rust's i64::from_str.
    let int = parse_go_int(s);
    assert_eq!(int, s.parse::<i64>().ok(), "{s:?}");
    assert_eq!(parse_size(s), int.and_then(|v| u64::try_from(v).ok()));

    // What HEAD echoes parses back to what was stored.
    let meta = parse_metadata(s);
    assert!(
        meta.keys()
            .all(|k| !k.is_empty() && !k.contains([',', ' ']))
    );
    assert_eq!(parse_metadata(&serialize_metadata(&meta)), meta, "{s:?}");

    if let Ok(ConcatRequest::Final(ids)) = parse_concat(s, "/files/") {
        assert!(!ids.is_empty() && ids.len() <= tusgate::tus::headers::MAX_PARTIALS);
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "a partial listed twice");
    }

    // Any digest length is accepted (a wrong one is a mismatch, 460, after the body); it is
    // the decoding of what was sent, so never longer than it.
    if let Ok(checksum) = parse_checksum(s) {
        assert!(checksum.digest.len() <= s.len());
    }

    let mut lines = s.split('\n');
    let (first, second) = (lines.next(), lines.next());
    if let Ok(Some(len)) = parse_creation_length(first, second) {
        assert!(second.is_none_or(str::is_empty));
        assert_eq!(first.and_then(parse_size), Some(len));
    }

    // Lines: Host, X-Forwarded-Host, X-Forwarded-Proto, Forwarded.
    let fields: Vec<&str> = s.split('\n').collect();
    let field = |i: usize| fields.get(i).copied();
    let header = |name: &str| match name {
        "x-forwarded-host" => field(1),
        "x-forwarded-proto" => field(2),
        "forwarded" => field(3),
        _ => None,
    };
    let host = field(0).unwrap_or_default();
    for (tls, behind_proxy) in [(false, false), (true, false), (false, true), (true, true)] {
        let (_, proto) = host_and_proto(host, tls, behind_proxy, header);
        assert!(proto == "http" || proto == "https");
    }
});
