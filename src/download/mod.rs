//! Downloads of published assets, served the way nginx serves them with the granite-assets
//! operator template: `<mount>/<public prefix>/<key>` openly, `<mount>/<private prefix>/<key>`
//! only with a valid `secure_link` token (`?md5=…&expires=…`).
//!
//! The order is nginx's: the path is decoded and normalised first ([`uri`]), the location is
//! chosen on the normalised path, a private token is checked before anything else (403 invalid,
//! 410 expired), then the method (GET/HEAD, else 405), then the file (404; 403 for
//! directories), preconditions (412/304, [`conditional`]) and Range (206/416, nginx's parser in
//! [`crate::range`]). Where nginx has flaws we do better, on purpose and documented: symlinks
//! leaving their prefix are not followed, directories are always 403, `/health` sends one
//! Content-Type.

pub mod conditional;
pub mod mime;
pub mod secure_link;
pub mod uri;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    HeaderMap, HeaderValue, LAST_MODIFIED, RANGE,
};
use http::{Method, Response, StatusCode};

use crate::app::App;
use crate::range::{self, RangeRequest};
use crate::response::{self, Body};
use crate::storage::{ByteStream, Readable, StorageError};
use conditional::{Outcome, Validators};
use secure_link::LinkCheck;

/// Download settings.
#[derive(Debug, Clone)]
pub struct AssetsConfig {
    /// The URL mount, without trailing slash (`/assets`).
    pub mount: String,
    pub secure_link_secret: Option<crate::tokens::Secret>,
    pub public_cache_control: HeaderValue,
    pub private_cache_control: HeaderValue,
}

/// Serves a request whose normalised path is under the mount.
pub async fn handle(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    path: &[u8],
    query: Option<&[u8]>,
) -> Response<Body> {
    let mut response = serve(app, method, headers, path, query).await;
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn serve(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    path: &[u8],
    query: Option<&[u8]>,
) -> Response<Body> {
    let assets = &app.config.assets;
    let prefixes = app.config.tokens.prefixes();
    let rest = &path[assets.mount.len() + 1..];
    let located = [
        (prefixes.public.as_str(), false),
        (prefixes.private.as_str(), true),
    ]
    .into_iter()
    .find_map(|(prefix, private)| {
        rest.strip_prefix(prefix.as_bytes())?
            .strip_prefix(b"/")
            .map(|key| (prefix, private, key))
    });
    // Everything else under the mount is refused, as the template's catch-all location does.
    let Some((prefix, private, key)) = located else {
        return status(StatusCode::FORBIDDEN);
    };
    if *method == Method::TRACE {
        return method_not_allowed();
    }
    if private {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let verdict = match &assets.secure_link_secret {
            Some(secret) => secure_link::check(query, path, secret.expose(), now),
            None => LinkCheck::Invalid,
        };
        match verdict {
            LinkCheck::Valid => {}
            LinkCheck::Expired => return status(StatusCode::GONE),
            LinkCheck::Invalid => return status(StatusCode::FORBIDDEN),
        }
    }
    // nginx's static module refuses other methods outright, but looks the file up for POST
    // first (404 before 405).
    let readable = *method == Method::GET || *method == Method::HEAD;
    if !readable && *method != Method::POST {
        return method_not_allowed();
    }
    // A trailing slash is left to the filesystem: a directory is 403, a file 404 (ENOTDIR).
    let mut object_path = prefix.as_bytes().to_vec();
    object_path.push(b'/');
    object_path.extend_from_slice(key);
    let object = match app.store.open_asset(&object_path).await {
        Ok(_) if !readable => return method_not_allowed(),
        Ok(object) => object,
        Err(StorageError::NotFound) => return status(StatusCode::NOT_FOUND),
        Err(StorageError::IsDirectory | StorageError::PermissionDenied) => {
            return status(StatusCode::FORBIDDEN);
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot open asset");
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let cache_control = if private {
        &assets.private_cache_control
    } else {
        &assets.public_cache_control
    };
    let validators = Validators::new(object.modified.unwrap_or(UNIX_EPOCH), object.len);
    let mut response = match conditional::evaluate(headers, &validators) {
        Outcome::Failed => return status(StatusCode::PRECONDITION_FAILED),
        Outcome::NotModified => response::empty(StatusCode::NOT_MODIFIED),
        Outcome::Proceed => {
            let content_type = mime::content_type(key);
            let len = object.len;
            let ranges = match headers.get(RANGE).and_then(|h| h.to_str().ok()) {
                Some(range) if conditional::if_range_allows(headers, &validators) => {
                    range::parse(range, len)
                }
                _ => RangeRequest::Full,
            };
            match ranges {
                RangeRequest::Full => {
                    let mut r = match object.reader.in_memory(0..len) {
                        Some(bytes) => {
                            let mut r = response::empty(StatusCode::OK);
                            set(&mut r, CONTENT_LENGTH, len);
                            *r.body_mut() = Body::full(bytes);
                            r
                        }
                        None => body_response(StatusCode::OK, object.reader.stream(0..len), len),
                    };
                    set(&mut r, CONTENT_TYPE, content_type);
                    r.headers_mut()
                        .insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                    r
                }
                RangeRequest::Single(span) => {
                    let mut r = body_response(
                        StatusCode::PARTIAL_CONTENT,
                        object.reader.stream(span.clone()),
                        span.end - span.start,
                    );
                    set(&mut r, CONTENT_TYPE, content_type);
                    set(
                        &mut r,
                        CONTENT_RANGE,
                        format!("bytes {}-{}/{len}", span.start, span.end - 1),
                    );
                    r
                }
                RangeRequest::Multi(spans) => multipart(object.reader, spans, len, content_type),
                RangeRequest::Unsatisfiable => {
                    let mut r = status(StatusCode::RANGE_NOT_SATISFIABLE);
                    set(&mut r, CONTENT_RANGE, format!("bytes */{len}"));
                    return r;
                }
            }
        }
    };
    set(
        &mut response,
        LAST_MODIFIED,
        httpdate::fmt_http_date(validators.last_modified),
    );
    set(&mut response, ETAG, &validators.etag);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, cache_control.clone());
    if *method == Method::HEAD {
        response = response::strip_body(response);
    }
    response
}

fn body_response(status: StatusCode, stream: Box<dyn ByteStream>, len: u64) -> Response<Body> {
    let mut response = response::empty(status);
    set(&mut response, CONTENT_LENGTH, len);
    *response.body_mut() = Body::stream(stream, len);
    response
}

/// A `multipart/byteranges` response, laid out byte for byte as nginx writes it.
fn multipart(
    reader: Arc<dyn Readable>,
    spans: Vec<Range<u64>>,
    len: u64,
    content_type: &str,
) -> Response<Body> {
    // nginx numbers boundaries with a per-process counter; so do we.
    static BOUNDARY: AtomicU64 = AtomicU64::new(1);
    let boundary = format!("{:020}", BOUNDARY.fetch_add(1, Ordering::Relaxed));
    let mut pieces = Vec::with_capacity(spans.len() * 2 + 1);
    let mut total = 0u64;
    for span in spans {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {}-{}/{len}\r\n\r\n",
            span.start,
            span.end - 1
        );
        total += head.len() as u64 + (span.end - span.start);
        pieces.push(Piece::Bytes(Bytes::from(head)));
        pieces.push(Piece::Span(span));
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    total += tail.len() as u64;
    pieces.push(Piece::Bytes(Bytes::from(tail)));
    pieces.reverse();
    let stream = Multipart {
        reader,
        pieces,
        current: None,
    };
    let mut response = body_response(StatusCode::PARTIAL_CONTENT, Box::new(stream), total);
    set(
        &mut response,
        CONTENT_TYPE,
        format!("multipart/byteranges; boundary={boundary}"),
    );
    response
}

enum Piece {
    Bytes(Bytes),
    Span(Range<u64>),
}

/// Streams the multipart pieces in order, opening each range only when it is reached.
struct Multipart {
    reader: Arc<dyn Readable>,
    /// Remaining pieces, last first.
    pieces: Vec<Piece>,
    current: Option<Box<dyn ByteStream>>,
}

impl ByteStream for Multipart {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>> {
        loop {
            if let Some(stream) = self.current.as_mut() {
                match stream.poll_next(cx) {
                    Poll::Ready(None) => self.current = None,
                    other => return other,
                }
            }
            match self.pieces.pop() {
                None => return Poll::Ready(None),
                Some(Piece::Bytes(bytes)) => return Poll::Ready(Some(Ok(bytes))),
                Some(Piece::Span(span)) => self.current = Some(self.reader.stream(span)),
            }
        }
    }
}

fn status(status: StatusCode) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("");
    response::text(status, format!("{} {reason}\n", status.as_u16()))
}

fn method_not_allowed() -> Response<Body> {
    let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

fn set(response: &mut Response<Body>, name: http::HeaderName, value: impl std::fmt::Display) {
    response::set_header(response, name, value);
}
