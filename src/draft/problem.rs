//! RFC 9457 problem documents (`application/problem+json`) for the draft's problem types
//! (draft §"Problem Types"), with the draft's exact type URIs, titles and extension members.
//! Pure: it builds the status, the body and the headers the draft requires beside them; the
//! handlers send them. Unit tested below.

use http::StatusCode;
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";
pub const MISMATCHING_OFFSET_TYPE: &str =
    "https://iana.org/assignments/http-problem-types#mismatching-upload-offset";
pub const INCONSISTENT_LENGTH_TYPE: &str =
    "https://iana.org/assignments/http-problem-types#inconsistent-upload-length";

/// A problem the draft defines a type for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// An append's `Upload-Offset` is not the resource's offset: 409, and the response MUST
    /// carry `Upload-Offset: <expected>` and `Upload-Complete: ?0` (draft §"Upload Append").
    MismatchingOffset { expected: u64, provided: u64 },
    /// Two length indicators disagree (draft §"Length"): 400, `Upload-Complete: ?0`.
    InconsistentLength,
}

#[derive(Serialize)]
struct Body {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    #[serde(rename = "expected-offset", skip_serializing_if = "Option::is_none")]
    expected_offset: Option<u64>,
    #[serde(rename = "provided-offset", skip_serializing_if = "Option::is_none")]
    provided_offset: Option<u64>,
}

impl Problem {
    /// The IANA registration's recommended status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Problem::MismatchingOffset { .. } => StatusCode::CONFLICT,
            Problem::InconsistentLength => StatusCode::BAD_REQUEST,
        }
    }

    pub fn type_uri(&self) -> &'static str {
        match self {
            Problem::MismatchingOffset { .. } => MISMATCHING_OFFSET_TYPE,
            Problem::InconsistentLength => INCONSISTENT_LENGTH_TYPE,
        }
    }

    /// The JSON body: `type` and `title` (the draft's example titles), plus
    /// `expected-offset`/`provided-offset` for a mismatching offset.
    pub fn body(&self) -> Vec<u8> {
        let body = match *self {
            Problem::MismatchingOffset { expected, provided } => Body {
                kind: MISMATCHING_OFFSET_TYPE,
                title: "offset from request does not match offset of resource",
                expected_offset: Some(expected),
                provided_offset: Some(provided),
            },
            Problem::InconsistentLength => Body {
                kind: INCONSISTENT_LENGTH_TYPE,
                title: "inconsistent length values for upload",
                expected_offset: None,
                provided_offset: None,
            },
        };
        serde_json::to_vec(&body).expect("a struct of strings and integers always serialises")
    }

    /// Headers the draft requires with this problem, besides `Content-Type`.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![(super::headers::UPLOAD_COMPLETE, "?0".to_string())];
        if let Problem::MismatchingOffset { expected, .. } = self {
            headers.push((super::headers::UPLOAD_OFFSET, expected.to_string()));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatching_offset_matches_the_drafts_example() {
        let p = Problem::MismatchingOffset {
            expected: 12_500_000,
            provided: 25_000_000,
        };
        assert_eq!(p.status(), StatusCode::CONFLICT);
        let v: serde_json::Value = serde_json::from_slice(&p.body()).expect("test input is valid");
        assert_eq!(
            v,
            serde_json::json!({
                "type": "https://iana.org/assignments/http-problem-types#mismatching-upload-offset",
                "title": "offset from request does not match offset of resource",
                "expected-offset": 12500000,
                "provided-offset": 25000000
            })
        );
        assert_eq!(
            p.headers(),
            [
                ("upload-complete", "?0".into()),
                ("upload-offset", "12500000".into())
            ]
        );
    }

    #[test]
    fn inconsistent_length_matches_the_drafts_example() {
        let p = Problem::InconsistentLength;
        assert_eq!(p.status(), StatusCode::BAD_REQUEST);
        assert_eq!(p.type_uri(), INCONSISTENT_LENGTH_TYPE);
        let v: serde_json::Value = serde_json::from_slice(&p.body()).expect("test input is valid");
        assert_eq!(
            v,
            serde_json::json!({
                "type": "https://iana.org/assignments/http-problem-types#inconsistent-upload-length",
                "title": "inconsistent length values for upload"
            })
        );
        assert_eq!(p.headers(), [("upload-complete", "?0".into())]);
    }
}
