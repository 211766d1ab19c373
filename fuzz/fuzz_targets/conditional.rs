//! `tusgate::download::conditional`: preconditions and `If-Range` on a fuzzed header set.
//! Input: `Name: value` lines. Without any precondition header the request proceeds, and
//! without `If-Range` a range is honoured.
#![no_main]

mod header_lines;

use std::time::{Duration, UNIX_EPOCH};

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use tusgate::download::conditional::{Outcome, Validators, evaluate, if_range_allows};

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for (name, value) in header_lines::parse(data.split(|&b| b == b'\n')) {
        headers.append(name, value);
    }
    let validators = Validators::new(UNIX_EPOCH + Duration::from_secs(1_704_164_645), 20);
    let outcome = evaluate(&headers, &validators);
    let allows = if_range_allows(&headers, &validators);
    let preconditions = [
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
    ];
    if !preconditions.iter().any(|h| headers.contains_key(*h)) {
        assert_eq!(outcome, Outcome::Proceed);
    }
    if !headers.contains_key("if-range") {
        assert!(allows);
    }
});
