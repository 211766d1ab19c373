//! The response body type and small builders shared by every handler.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Frame, SizeHint};

use crate::storage::ByteStream;

/// A response body: nothing, bytes in memory, or stored bytes streamed with a known length.
pub enum Body {
    Empty,
    Full(Option<Bytes>),
    Stream {
        stream: Box<dyn ByteStream>,
        remaining: u64,
    },
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Full(b) => write!(f, "Body::Full({} bytes)", b.as_ref().map_or(0, Bytes::len)),
            Body::Stream { remaining, .. } => write!(f, "Body::Stream({remaining} bytes left)"),
        }
    }
}

impl Body {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(Some(bytes.into()))
    }

    /// At most `len` bytes of `stream`.
    pub fn stream(stream: Box<dyn ByteStream>, len: u64) -> Self {
        Body::Stream {
            stream,
            remaining: len,
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            Body::Stream { stream, remaining } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                match stream.poll_next(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(None) => Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "stored object ended early",
                    )))),
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                    Poll::Ready(Some(Ok(mut chunk))) => {
                        if chunk.len() as u64 > *remaining {
                            chunk.truncate(*remaining as usize);
                        }
                        *remaining -= chunk.len() as u64;
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Body::Stream { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

/// An empty response with `status`.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
}

/// A short `text/plain` response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let body = body.into();
    let mut response = empty(status);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    *response.body_mut() = Body::full(body);
    response
}

/// Sets a header from any displayable value; values that are not valid header text (which our
/// own values never are) are skipped rather than sent broken.
pub fn set_header(response: &mut Response<Body>, name: HeaderName, value: impl std::fmt::Display) {
    if let Ok(value) = HeaderValue::try_from(value.to_string()) {
        response.headers_mut().insert(name, value);
    }
}

/// Drops the body of a response to a HEAD request, keeping its headers.
pub fn strip_body(mut response: Response<Body>) -> Response<Body> {
    *response.body_mut() = Body::Empty;
    response
}

/// Applies what a hook asked to change in a response (tusd's `HTTPResponse.MergeWith`): a
/// non-zero status replaces ours, a non-empty body replaces ours, headers are set over ours.
/// What HTTP cannot carry (a status outside 100–999, a header name or value that is not valid)
/// is left out and logged: a hook's mistake must not take the response down with it.
pub fn apply_hook(response: &mut Response<Body>, reply: &crate::hooks::HttpResponse) {
    if reply.status_code != 0 {
        match u16::try_from(reply.status_code)
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
        {
            Some(status) => *response.status_mut() = status,
            None => tracing::warn!(
                status = reply.status_code,
                "hook asked for an invalid status"
            ),
        }
    }
    for (name, value) in &reply.header {
        match (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            // Framing is ours: a hook's Content-Length over an empty body would leave the
            // client waiting for bytes that never come.
            (Ok(name), Ok(_)) if is_framing(&name) => {
                tracing::warn!(header = %name, "hook asked for a framing header; ignored");
            }
            (Ok(name), Ok(value)) => {
                response.headers_mut().insert(name, value);
            }
            _ => tracing::warn!(header = %name, "hook asked for an invalid header"),
        }
    }
    if !reply.body.is_empty() {
        let body = Bytes::from(reply.body.clone());
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        *response.body_mut() = Body::full(body);
    }
}

/// Headers that say how the message is delimited or carried; only the server sets them.
fn is_framing(name: &HeaderName) -> bool {
    *name == CONTENT_LENGTH
        || *name == http::header::TRANSFER_ENCODING
        || *name == http::header::CONNECTION
}

#[cfg(test)]
mod hook_tests {
    use super::*;

    #[test]
    fn a_hook_cannot_set_framing_headers() {
        let mut response = empty(StatusCode::NO_CONTENT);
        let reply = crate::hooks::HttpResponse {
            header: [
                ("Content-Length".to_owned(), "5".to_owned()),
                ("X-Hook".to_owned(), "yes".to_owned()),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        apply_hook(&mut response, &reply);
        assert!(response.headers().get(CONTENT_LENGTH).is_none());
        assert_eq!(response.headers()["x-hook"], "yes");
    }
}
