//! Validators and conditional requests for downloads. The ETag has nginx's format
//! (`"<mtime hex>-<size hex>"`) so browser caches stay valid across the switch from nginx.
//!
//! Evaluation follows RFC 9110 §13.2.2: If-Match, then If-Unmodified-Since, then If-None-Match,
//! then If-Modified-Since (ignored when If-None-Match is present). Where nginx deviates —
//! If-Modified-Since is an exact match there, and it requires If-None-Match *and*
//! If-Modified-Since to agree — we follow the RFC; browsers echo back the exact values, so they
//! see no difference. Pure: no I/O.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE};

/// A representation's validators, at nginx's one-second resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    pub etag: String,
    pub last_modified: SystemTime,
}

impl Validators {
    pub fn new(modified: SystemTime, size: u64) -> Self {
        let secs = modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Validators {
            etag: format!("\"{secs:x}-{size:x}\""),
            last_modified: UNIX_EPOCH + Duration::from_secs(secs),
        }
    }
}

/// What the preconditions say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Proceed,
    /// 304, with the validators and Cache-Control but no body.
    NotModified,
    /// 412.
    Failed,
}

pub fn evaluate(headers: &HeaderMap, v: &Validators) -> Outcome {
    let text = |name| {
        headers
            .get(name)
            .and_then(|h: &http::HeaderValue| h.to_str().ok())
    };
    if let Some(if_match) = text(IF_MATCH) {
        if !matches_list(if_match, &v.etag, Comparison::Strong) {
            return Outcome::Failed;
        }
    } else if let Some(date) =
        text(IF_UNMODIFIED_SINCE).and_then(|d| httpdate::parse_http_date(d).ok())
    {
        if v.last_modified > date {
            return Outcome::Failed;
        }
    }
    if let Some(if_none_match) = text(IF_NONE_MATCH) {
        if matches_list(if_none_match, &v.etag, Comparison::Weak) {
            return Outcome::NotModified;
        }
    } else if let Some(date) =
        text(IF_MODIFIED_SINCE).and_then(|d| httpdate::parse_http_date(d).ok())
    {
        if v.last_modified <= date {
            return Outcome::NotModified;
        }
    }
    Outcome::Proceed
}

/// Whether a Range may be honoured: no If-Range, or one that matches exactly (a strong ETag
/// or the exact Last-Modified date, as nginx and RFC 9110 §13.1.5 require).
pub fn if_range_allows(headers: &HeaderMap, v: &Validators) -> bool {
    let Some(value) = headers.get(IF_RANGE).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let value = value.trim();
    if value.starts_with('"') {
        return value == v.etag;
    }
    if value.starts_with("W/") {
        return false;
    }
    httpdate::parse_http_date(value).is_ok_and(|date| date == v.last_modified)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Strong,
    Weak,
}

fn matches_list(list: &str, etag: &str, comparison: Comparison) -> bool {
    if list.trim() == "*" {
        return true;
    }
    list.split(',')
        .map(str::trim)
        .any(|candidate| match candidate.strip_prefix("W/") {
            Some(weak) => comparison == Comparison::Weak && weak == etag,
            None => candidate == etag,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// The fixture of the recorded vectors: mtime 1704164645, 20 bytes.
    fn v() -> Validators {
        Validators::new(UNIX_EPOCH + Duration::from_secs(1704164645), 20)
    }

    fn with(pairs: &[(http::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, val)| (n.clone(), HeaderValue::from_str(val).expect("valid")))
            .collect()
    }

    const LM: &str = "Tue, 02 Jan 2024 03:04:05 GMT";
    const LATER: &str = "Wed, 03 Jan 2024 03:04:05 GMT";
    const EARLIER: &str = "Mon, 01 Jan 2024 03:04:05 GMT";

    #[test]
    fn etag_has_nginx_format() {
        assert_eq!(
            Validators::new(UNIX_EPOCH + Duration::from_secs(1704164645), 27).etag,
            "\"65937d25-1b\""
        );
    }

    #[test]
    fn recorded_conditionals() {
        use Outcome::{Failed, NotModified, Proceed};
        let cases: &[(&[(http::HeaderName, &str)], Outcome)] = &[
            (&[(IF_MODIFIED_SINCE, LM)], NotModified),
            (&[(IF_MODIFIED_SINCE, EARLIER)], Proceed),
            (&[(IF_MODIFIED_SINCE, "garbage")], Proceed),
            (&[(IF_NONE_MATCH, "\"65937d25-14\"")], NotModified),
            (&[(IF_NONE_MATCH, "W/\"65937d25-14\"")], NotModified),
            (&[(IF_NONE_MATCH, "*")], NotModified),
            (&[(IF_NONE_MATCH, "\"x\", \"65937d25-14\"")], NotModified),
            (&[(IF_NONE_MATCH, "\"other\"")], Proceed),
            (&[(IF_MATCH, "\"other\"")], Failed),
            (&[(IF_MATCH, "W/\"65937d25-14\"")], Failed),
            (&[(IF_MATCH, "\"65937d25-14\"")], Proceed),
            (&[(IF_MATCH, "*")], Proceed),
            (&[(IF_UNMODIFIED_SINCE, EARLIER)], Failed),
            (&[(IF_UNMODIFIED_SINCE, LM)], Proceed),
            // RFC 9110 where nginx differs (documented): a later date is not modified, and
            // If-None-Match decides alone when present.
            (&[(IF_MODIFIED_SINCE, LATER)], NotModified),
            (
                &[
                    (IF_NONE_MATCH, "\"65937d25-14\""),
                    (IF_MODIFIED_SINCE, EARLIER),
                ],
                NotModified,
            ),
            (
                &[(IF_NONE_MATCH, "\"other\""), (IF_MODIFIED_SINCE, LM)],
                Proceed,
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(evaluate(&with(headers), &v()), *expected, "{headers:?}");
        }
    }

    #[test]
    fn if_range() {
        assert!(if_range_allows(&with(&[]), &v()));
        assert!(if_range_allows(
            &with(&[(IF_RANGE, "\"65937d25-14\"")]),
            &v()
        ));
        assert!(!if_range_allows(&with(&[(IF_RANGE, "\"stale\"")]), &v()));
        assert!(!if_range_allows(
            &with(&[(IF_RANGE, "W/\"65937d25-14\"")]),
            &v()
        ));
        assert!(if_range_allows(&with(&[(IF_RANGE, LM)]), &v()));
        assert!(!if_range_allows(&with(&[(IF_RANGE, LATER)]), &v()));
    }
}
