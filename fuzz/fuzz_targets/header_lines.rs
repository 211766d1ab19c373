//! Shared by the targets that take headers as `Name: value` lines: each line that makes a
//! valid header, trimmed; the others are skipped (the HTTP parser would refuse them first).

use http::{HeaderName, HeaderValue};

pub fn parse<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
    lines.filter_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = HeaderName::from_bytes(line[..colon].trim_ascii()).ok()?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?;
        Some((name, value))
    })
}
