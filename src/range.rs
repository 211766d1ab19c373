//! The `Range` header, parsed exactly as nginx's range filter does (`ngx_http_range_parse`,
//! nginx 1.22): spaces around numbers tolerated, the unit compared case-insensitively, ends
//! clamped, unsatisfiable parts of a multi-range dropped, and a multi-range whose parts add up
//! to more than the file answered with the whole file. Pure: no I/O, tested below.
//!
//! nginx's `max_ranges` is unlimited by default; tusgate always applies [`MAX_RANGES`], and the
//! nginx differential (interop/nginx) configures `max_ranges` to the same number.

use std::ops::Range;

/// The most satisfiable parts a `Range` header may have; one more and the whole file is sent,
/// as nginx does with `max_ranges` (the part that exceeds it declines the header, wherever it
/// stands). Without a cap, 50,000 one-byte parts cost 1.2 CPU-seconds and a multipart answer
/// 26 times the request. Ignoring a Range is always allowed (RFC 9110 §14.2), so a client past
/// the cap loses only efficiency. Clients that send several ranges (PDF byte serving,
/// download managers) ask for a handful to a few dozen; Apache's `MaxRanges` default is 200.
/// 64 bounds a multipart answer's framing to about 8 KiB (some 120 bytes a part) and its work
/// to 64 ranges opened, and parsing stops at the 65th part however long the header is.
pub const MAX_RANGES: usize = 64;

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// Send the whole representation (no header, another unit, or nginx declines).
    Full,
    /// One byte range: 206 with `Content-Range`.
    Single(Range<u64>),
    /// Several ranges: 206 `multipart/byteranges`.
    Multi(Vec<Range<u64>>),
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Parses `header` for a representation of `len` bytes.
pub fn parse(header: &str, len: u64) -> RangeRequest {
    let bytes = header.as_bytes();
    if bytes.len() < 7 || !bytes[..6].eq_ignore_ascii_case(b"bytes=") {
        return RangeRequest::Full;
    }
    let mut p = Cursor {
        s: &bytes[6..],
        at: 0,
    };
    let mut ranges: Vec<Range<u64>> = Vec::new();
    let mut total: u64 = 0;
    loop {
        p.skip_spaces();
        let (start, end);
        if p.peek() == Some(b'-') {
            p.at += 1;
            let Some(suffix) = p.number() else {
                return RangeRequest::Unsatisfiable;
            };
            p.skip_spaces();
            if !matches!(p.peek(), Some(b',') | None) {
                return RangeRequest::Unsatisfiable;
            }
            start = len.saturating_sub(suffix);
            end = len;
        } else {
            let Some(first) = p.number() else {
                return RangeRequest::Unsatisfiable;
            };
            p.skip_spaces();
            if p.next() != Some(b'-') {
                return RangeRequest::Unsatisfiable;
            }
            p.skip_spaces();
            if matches!(p.peek(), Some(b',') | None) {
                start = first;
                end = len;
            } else {
                let Some(last) = p.number() else {
                    return RangeRequest::Unsatisfiable;
                };
                p.skip_spaces();
                if !matches!(p.peek(), Some(b',') | None) {
                    return RangeRequest::Unsatisfiable;
                }
                start = first;
                end = if last >= len { len } else { last + 1 };
            }
        }
        if start < end {
            total = match total.checked_add(end - start) {
                Some(t) => t,
                None => return RangeRequest::Unsatisfiable,
            };
            ranges.push(start..end);
            if ranges.len() > MAX_RANGES {
                // Stop here: the rest of a huge header is never read.
                return RangeRequest::Full;
            }
        } else if start == 0 {
            // e.g. `bytes=0-0` on an empty file: nginx declines and sends everything.
            return RangeRequest::Full;
        }
        if p.next() != Some(b',') {
            break;
        }
    }
    match ranges.len() {
        0 => RangeRequest::Unsatisfiable,
        _ if total > len => RangeRequest::Full,
        1 => RangeRequest::Single(ranges.remove(0)),
        _ => RangeRequest::Multi(ranges),
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.at += usize::from(c.is_some());
        c
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// One or more digits, refusing overflow of nginx's `off_t` (i64).
    fn number(&mut self) -> Option<u64> {
        let begin = self.at;
        let mut value: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            if value > i64::MAX as u64 {
                return None;
            }
            self.at += 1;
        }
        (self.at > begin).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{Full, Multi, Single, Unsatisfiable};
    use super::*;

    /// The range vectors recorded against nginx 1.22 for a 20-byte file.
    #[test]
    fn matches_recorded_nginx_behaviour() {
        let cases: &[(&str, RangeRequest)] = &[
            ("bytes=0-4", Single(0..5)),
            ("bytes=-5", Single(15..20)),
            ("bytes=15-", Single(15..20)),
            ("bytes=18-100", Single(18..20)),
            ("bytes=0-0", Single(0..1)),
            ("bytes= 0 - 4", Single(0..5)),
            ("BYTES=0-4", Single(0..5)),
            ("bytes=0-", Single(0..20)),
            ("bytes=0-1,4-5", Multi(vec![0..2, 4..6])),
            ("bytes=0-10,5-15", Full),
            ("bytes=0-1,100-200", Single(0..2)),
            ("bytes=20-", Unsatisfiable),
            ("bytes=5-2", Unsatisfiable),
            ("bytes=abc", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("items=0-1", Full),
            ("bytes=", Full),
            ("bytes=0-4;", Unsatisfiable),
            ("bytes=99999999999999999999-", Unsatisfiable),
        ];
        for (header, expected) in cases {
            assert_eq!(&parse(header, 20), expected, "{header}");
        }
    }

    #[test]
    fn empty_file() {
        assert_eq!(parse("bytes=0-0", 0), Full);
        assert_eq!(parse("bytes=1-", 0), Unsatisfiable);
        assert_eq!(parse("bytes=-5", 0), Full);
        assert_eq!(parse("bytes=-50", 20), Single(0..20));
    }

    fn parts(n: usize) -> String {
        let list: Vec<String> = (0..n).map(|i| format!("{i}-{i}")).collect();
        format!("bytes={}", list.join(","))
    }

    #[test]
    fn more_parts_than_max_ranges_sends_the_whole_file() {
        let len = 1000;
        match parse(&parts(MAX_RANGES), len) {
            Multi(spans) => assert_eq!(spans.len(), MAX_RANGES),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse(&parts(MAX_RANGES + 1), len), Full);
        assert_eq!(parse(&parts(50_000), 100_000), Full);
    }

    #[test]
    fn only_satisfiable_parts_count_towards_max_ranges() {
        // As in nginx: a dropped part does not count, so a cap of satisfiable parts plus any
        // number of unsatisfiable ones is still a multipart answer.
        let header = format!("{},{}", parts(MAX_RANGES), "2000-2001,".repeat(100));
        let header = header.trim_end_matches(',');
        match parse(header, 1000) {
            Multi(spans) => assert_eq!(spans.len(), MAX_RANGES),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parsing_stops_at_the_part_past_max_ranges() {
        // nginx declines at the 65th part before it reads what follows, so garbage after it
        // does not make the header unsatisfiable; garbage before it does.
        let over = format!("{},garbage", parts(MAX_RANGES + 1));
        assert_eq!(parse(&over, 1000), Full);
        let within = format!("{},garbage", parts(MAX_RANGES));
        assert_eq!(parse(&within, 1000), Unsatisfiable);
    }
}
