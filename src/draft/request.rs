//! Pure classification of a draft request (one with a supported `Upload-Draft-Interop-Version`)
//! into the operation it asks for, with the header checks the draft makes before any I/O:
//! the handlers (not written yet) take an [`Operation`] and never re-read these headers.
//! Unit tested below.

use http::{HeaderMap, Method, StatusCode};

use super::headers::{self, InconsistentLength, InteropVersion};
use super::problem::Problem;

/// What the request targets: the upload collection (`/files/`) or one upload resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Collection,
    Upload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Draft §"Upload Creation": a request with content (POST, PUT or PATCH; the draft allows
    /// any such method) to the collection with `Upload-Complete`.
    Create { complete: bool, length: Option<u64> },
    /// Draft §"Offset Retrieval": HEAD (or GET, which the draft allows) on the upload resource.
    RetrieveOffset,
    /// Draft §"Upload Append": PATCH on the upload resource. `length` is what this request
    /// indicates (to be checked against the recorded length by the handler).
    Append {
        offset: u64,
        complete: bool,
        upload_length: Option<u64>,
    },
    /// Draft §"Upload Cancellation": DELETE on the upload resource.
    Cancel,
    /// Discovery (draft §"Limits"): OPTIONS without `Upload-Complete`.
    Options,
}

/// Why a draft request is refused before any I/O: a status and a short reason, or one of the
/// draft's problem documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{reason}")]
    Bad {
        status: StatusCode,
        reason: &'static str,
    },
    #[error("problem {0:?}")]
    Problem(Problem),
}

impl From<InconsistentLength> for RequestError {
    fn from(_: InconsistentLength) -> Self {
        RequestError::Problem(Problem::InconsistentLength)
    }
}

fn bad(status: StatusCode, reason: &'static str) -> RequestError {
    RequestError::Bad { status, reason }
}

/// `Content-Length` when present and valid (the draft's length indicator 1 needs a "valid"
/// one; chunked requests have none).
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The media type of `Content-Type` without parameters, lowercased.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

pub fn classify(
    version: InteropVersion,
    method: &Method,
    target: Target,
    headers: &HeaderMap,
) -> Result<Operation, RequestError> {
    let complete = headers::upload_complete(headers);
    let upload_length = headers::upload_length(headers);
    let need_complete = || {
        complete.ok_or(bad(
            StatusCode::BAD_REQUEST,
            "missing or invalid Upload-Complete header (expected ?0 or ?1)",
        ))
    };
    match (target, method) {
        (Target::Collection, &Method::OPTIONS) if complete.is_none() => Ok(Operation::Options),
        (Target::Collection, &Method::POST | &Method::PUT | &Method::PATCH) => {
            // An append sent to the collection (an upload URL that lost its id) must not
            // become a new upload holding only the file's tail.
            if method != Method::POST && headers.contains_key(headers::UPLOAD_OFFSET) {
                return Err(bad(
                    StatusCode::BAD_REQUEST,
                    "Upload-Offset on a creation: an append goes to the upload's URL",
                ));
            }
            let complete = need_complete()?;
            let length =
                headers::indicated_length(upload_length, complete, 0, content_length(headers))?;
            Ok(Operation::Create { complete, length })
        }
        (Target::Upload, &Method::HEAD | &Method::GET) => Ok(Operation::RetrieveOffset),
        (Target::Upload, &Method::PATCH) => {
            if version.requires_partial_upload_type()
                && media_type(headers).as_deref() != Some(headers::PARTIAL_UPLOAD)
            {
                return Err(bad(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "an append needs Content-Type: application/partial-upload",
                ));
            }
            let offset = headers::upload_offset(headers).ok_or(bad(
                StatusCode::BAD_REQUEST,
                "missing or invalid Upload-Offset header",
            ))?;
            let complete = need_complete()?;
            let length = headers::indicated_length(
                upload_length,
                complete,
                offset,
                content_length(headers),
            )?;
            Ok(Operation::Append {
                offset,
                complete,
                upload_length: length,
            })
        }
        (Target::Upload, &Method::DELETE) => Ok(Operation::Cancel),
        _ => Err(bad(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed for this resource by the draft",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const V9: InteropVersion = InteropVersion::V9;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                *k,
                HeaderValue::from_str(v).expect("test header values are visible ASCII"),
            );
        }
        m
    }

    fn status(r: Result<Operation, RequestError>) -> StatusCode {
        match r {
            Err(RequestError::Bad { status, .. }) => status,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn creation() {
        let post = |pairs| classify(V9, &Method::POST, Target::Collection, &h(pairs));
        assert_eq!(
            post(&[("upload-complete", "?1"), ("content-length", "11")]),
            Ok(Operation::Create {
                complete: true,
                length: Some(11)
            })
        );
        assert_eq!(
            post(&[("upload-complete", "?0"), ("content-length", "11")]),
            Ok(Operation::Create {
                complete: false,
                length: None
            })
        );
        assert_eq!(
            post(&[("upload-complete", "?0"), ("upload-length", "100")]),
            Ok(Operation::Create {
                complete: false,
                length: Some(100)
            })
        );
        assert_eq!(
            post(&[
                ("upload-complete", "?1"),
                ("upload-length", "100"),
                ("content-length", "11")
            ]),
            Err(RequestError::Problem(Problem::InconsistentLength))
        );
        assert_eq!(status(post(&[])), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(post(&[("upload-complete", "1")])),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn append() {
        let patch = |v, pairs| classify(v, &Method::PATCH, Target::Upload, &h(pairs));
        let ok = [
            ("content-type", "Application/Partial-Upload; x=1"),
            ("upload-offset", "5"),
            ("upload-complete", "?0"),
        ];
        assert_eq!(
            patch(V9, &ok),
            Ok(Operation::Append {
                offset: 5,
                complete: false,
                upload_length: None
            })
        );
        assert_eq!(
            patch(
                V9,
                &[
                    ("content-type", "application/partial-upload"),
                    ("upload-offset", "5"),
                    ("upload-complete", "?1"),
                    ("content-length", "5")
                ]
            ),
            Ok(Operation::Append {
                offset: 5,
                complete: true,
                upload_length: Some(10)
            })
        );
        let no_type = [("upload-offset", "5"), ("upload-complete", "?0")];
        assert_eq!(
            status(patch(V9, &no_type)),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            status(patch(InteropVersion::V6, &no_type)),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        // Interop 5 (tus-js-client ietf-draft-03) sends no partial-upload type.
        assert!(patch(InteropVersion::V5, &no_type).is_ok());
        assert_eq!(
            status(patch(
                V9,
                &[
                    ("content-type", "application/partial-upload"),
                    ("upload-complete", "?0")
                ]
            )),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(patch(
                V9,
                &[
                    ("content-type", "application/partial-upload"),
                    ("upload-offset", "5")
                ]
            )),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn other_operations() {
        let empty = HeaderMap::new();
        assert_eq!(
            classify(V9, &Method::HEAD, Target::Upload, &empty),
            Ok(Operation::RetrieveOffset)
        );
        assert_eq!(
            classify(V9, &Method::DELETE, Target::Upload, &empty),
            Ok(Operation::Cancel)
        );
        assert_eq!(
            classify(V9, &Method::OPTIONS, Target::Collection, &empty),
            Ok(Operation::Options)
        );
        assert_eq!(
            status(classify(
                V9,
                &Method::OPTIONS,
                Target::Collection,
                &h(&[("upload-complete", "?1")])
            )),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(classify(V9, &Method::POST, Target::Upload, &empty)),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(classify(V9, &Method::DELETE, Target::Collection, &empty)),
            StatusCode::METHOD_NOT_ALLOWED
        );
        // An append aimed at the collection is no creation.
        let append_shaped = h(&[("upload-complete", "?1"), ("upload-offset", "5")]);
        for method in [Method::PUT, Method::PATCH] {
            assert_eq!(
                status(classify(V9, &method, Target::Collection, &append_shaped)),
                StatusCode::BAD_REQUEST,
                "{method}"
            );
        }
        // §"Upload Creation": "all request methods that allow content are possible, such as
        // POST, PUT, and PATCH".
        let complete = h(&[("upload-complete", "?1"), ("content-length", "3")]);
        for method in [Method::POST, Method::PUT, Method::PATCH] {
            assert_eq!(
                classify(V9, &method, Target::Collection, &complete),
                Ok(Operation::Create {
                    complete: true,
                    length: Some(3)
                }),
                "{method}"
            );
        }
    }
}
