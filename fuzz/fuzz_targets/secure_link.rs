//! `tusgate::download::secure_link`: `check` on a fuzzed query and path, and a link signed by
//! `sign` for the fuzzed path and expiry, which must check as valid, expired or (for an expiry
//! nginx refuses) invalid. Input: the query, a newline, the normalised path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tusgate::download::secure_link::{LinkCheck, arg, check, sign};

const SECRET: &[u8] = b"fuzz-secret";
const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let (query, uri) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"/assets/private/a"[..]),
    };
    let _ = check(Some(query), uri, SECRET, NOW);
    let _ = check(None, uri, SECRET, NOW);
    if let Some(value) = arg(query, b"expires") {
        assert!(!value.contains(&b'&'));
    }

    // A signed link for an expiry taken from the input.
    let expires = query.iter().take(12).fold(-1_000_000i64, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(i64::from(b))
    });
    let link = format!("md5={}&expires={expires}", sign(uri, expires, SECRET));
    let expected = if expires <= 0 {
        LinkCheck::Invalid
    } else if expires < NOW {
        LinkCheck::Expired
    } else {
        LinkCheck::Valid
    };
    assert_eq!(check(Some(link.as_bytes()), uri, SECRET, NOW), expected);
});
