//! `tusgate::range::parse`. Input: the representation's length on the first line (decimal;
//! anything else means the line's own length), the `Range` header after it. Every range
//! returned lies within the representation, and a multi-range never exceeds the part cap or
//! the representation's length in total.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tusgate::range::{MAX_RANGES, RangeRequest, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (first, header) = s.split_once('\n').unwrap_or(("", s));
    let len = first.parse::<u64>().unwrap_or(first.len() as u64);
    match parse(header, len) {
        RangeRequest::Full | RangeRequest::Unsatisfiable => {}
        RangeRequest::Single(r) => assert!(r.start < r.end && r.end <= len, "{r:?} of {len}"),
        RangeRequest::Multi(ranges) => {
            assert!((2..=MAX_RANGES).contains(&ranges.len()));
            let mut total = 0u64;
            for r in &ranges {
                assert!(r.start < r.end && r.end <= len, "{r:?} of {len}");
                total += r.end - r.start;
            }
            assert!(total <= len);
        }
    }
});
