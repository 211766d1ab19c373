//! GET on an upload URL: its bytes so far, as tusd's filestore serves them (`http.ServeFile`):
//! `Content-Type` from the `filetype` metadata when it is a valid media type, `inline` only for
//! types browsers cannot run script in, `Last-Modified`, and single byte ranges. Not part of
//! tus, but tus-js-client's own tests rely on it.
//!
//! Only for uploads without a token. A tokened upload's bytes are an asset (or part of one),
//! readable only through the asset URL and, if private, its signature: the upload URL is a
//! weaker capability (it is logged, and it lives as long as the upload), and once published
//! the asset's path may hold another upload's bytes. So GET on a tokened upload is 403, at any
//! stage, on every backend. tusd serves it until the post-finish hook moves the file away.

use http::header::{
    ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LAST_MODIFIED,
    RANGE,
};
use http::{Response, StatusCode};

use super::Ctx;
use crate::error::{Error, Result};
use crate::range::{self, RangeRequest};
use crate::response::{self, Body};
use crate::upload::{Metadata, UploadId};

pub(super) async fn handle(ctx: &Ctx<'_>, raw_id: &str) -> Result<Response<Body>> {
    let app = ctx.app;
    let id = UploadId::parse(raw_id).ok_or(Error::UploadNotFound)?;
    // The lock is held only while the upload is opened; the open file stays consistent after.
    let (info, object) = {
        let _lock = app.locks.lock(&id).await?;
        let info = app.store.info(&id).await?;
        if info.is_tokened() {
            return Err(Error::UploadNotReadable);
        }
        let object = app.store.read(&info).await?;
        (info, object)
    };
    let (content_type, disposition) = content_type_and_disposition(&info.metadata);
    let len = object.len;
    let (status, span) = match ctx.header(RANGE).map(|h| range::parse(h, len)) {
        Some(RangeRequest::Single(span)) => (StatusCode::PARTIAL_CONTENT, span),
        Some(RangeRequest::Unsatisfiable) => {
            let mut response = response::empty(StatusCode::RANGE_NOT_SATISFIABLE);
            response::set_header(&mut response, CONTENT_RANGE, format!("bytes */{len}"));
            return Ok(response);
        }
        // Multi-range is answered with the whole upload (RFC-compliant; tusd would send
        // multipart/byteranges).
        _ => (StatusCode::OK, 0..len),
    };
    let stream = object.reader.stream(span.clone());
    let mut response = response::empty(status);
    response::set_header(&mut response, CONTENT_TYPE, content_type);
    response::set_header(&mut response, CONTENT_DISPOSITION, disposition);
    response::set_header(&mut response, ACCEPT_RANGES, "bytes");
    response::set_header(&mut response, CONTENT_LENGTH, span.end - span.start);
    if status == StatusCode::PARTIAL_CONTENT {
        response::set_header(
            &mut response,
            CONTENT_RANGE,
            format!("bytes {}-{}/{len}", span.start, span.end - 1),
        );
    }
    if let Some(modified) = object.modified {
        response::set_header(
            &mut response,
            LAST_MODIFIED,
            httpdate::fmt_http_date(modified),
        );
    }
    *response.body_mut() = Body::stream(stream, span.end - span.start);
    Ok(response)
}

/// Media types a browser may show inline: none of them can run script (tusd's allow-list).
const INLINE_TYPES: &[&str] = &[
    "text/plain",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "image/webp",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-pn-wav",
    "audio/webm",
    "audio/ogg",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "application/ogg",
];

/// tusd's `filterContentType`.
fn content_type_and_disposition(metadata: &Metadata) -> (String, String) {
    let filetype = metadata.get("filetype").map(String::as_str).unwrap_or("");
    let (content_type, mut disposition) = match media_type_essence(filetype) {
        Some(essence) => {
            let inline = INLINE_TYPES.contains(&essence.as_str());
            (
                filetype.to_owned(),
                if inline { "inline" } else { "attachment" }.to_owned(),
            )
        }
        None => (
            "application/octet-stream".to_owned(),
            "attachment".to_owned(),
        ),
    };
    if let Some(filename) = metadata.get("filename") {
        disposition.push_str(";filename=");
        disposition.push_str(&go_quote(filename));
    }
    (content_type, disposition)
}

/// The lower-cased `type/subtype` of a well-formed media type (with optional `; k=v`
/// parameters), as Go's `mime.ParseMediaType` accepts it; `None` if it is malformed.
fn media_type_essence(value: &str) -> Option<String> {
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
    };
    let mut parts = value.split(';');
    let essence = parts.next()?.trim();
    let (kind, sub) = essence.split_once('/')?;
    if !is_token(kind) || !is_token(sub) {
        return None;
    }
    for param in parts {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let (key, val) = param.split_once('=')?;
        let val = val.trim();
        let quoted = val.len() >= 2 && val.starts_with('"') && val.ends_with('"');
        if !is_token(key.trim()) || !(quoted || is_token(val)) {
            return None;
        }
    }
    Some(essence.to_ascii_lowercase())
}

/// Go's `strconv.Quote` for the filename in `Content-Disposition`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Metadata {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn type_and_disposition_follow_tusd() {
        let m = meta(&[("filetype", "image/jpeg"), ("filename", "file.jpg\"evil")]);
        assert_eq!(
            content_type_and_disposition(&m),
            (
                "image/jpeg".into(),
                "inline;filename=\"file.jpg\\\"evil\"".into()
            )
        );
        let m = meta(&[("filetype", "text/html")]);
        assert_eq!(
            content_type_and_disposition(&m),
            ("text/html".into(), "attachment".into())
        );
        let m = meta(&[("filetype", "audio/ogg; codecs=opus")]);
        assert_eq!(content_type_and_disposition(&m).1, "inline");
        let m = meta(&[("filetype", "not a type")]);
        assert_eq!(
            content_type_and_disposition(&m),
            ("application/octet-stream".into(), "attachment".into())
        );
        assert_eq!(
            content_type_and_disposition(&Metadata::new()).0,
            "application/octet-stream"
        );
    }
}
