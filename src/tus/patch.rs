//! PATCH on an upload: appends the body at `Upload-Offset`. The content type and the offset's
//! syntax are checked here, before the lock, as tusd does (`PatchFile`); the rest, in tusd's
//! order, by [`lifecycle::append`].

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body::Body as HttpBody;

use super::Ctx;
use super::headers::{self, OFFSET_OCTET_STREAM, parse_size};
use crate::error::{Error, Result};
use crate::lifecycle::{self, Append, Chunk, DeclaredLength};
use crate::response::{self, Body};
use crate::upload::UploadId;

pub(super) async fn handle<B>(ctx: &Ctx<'_>, raw_id: &str, body: B) -> Result<Response<Body>>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if ctx.header(CONTENT_TYPE) != Some(OFFSET_OCTET_STREAM) {
        return Err(Error::InvalidContentType);
    }
    let offset = ctx
        .header("upload-offset")
        .and_then(parse_size)
        .ok_or(Error::InvalidOffset)?;
    let checksum = ctx
        .header("upload-checksum")
        .map(headers::parse_checksum)
        .transpose()?;
    let id = UploadId::parse(raw_id).ok_or(Error::UploadNotFound)?;
    let append = Append {
        offset,
        length: ctx
            .header("upload-length")
            .map(|v| DeclaredLength::Tus(parse_size(v))),
        chunk: Chunk {
            body,
            content_length: ctx.header(CONTENT_LENGTH).and_then(parse_size),
            checksum,
            completes: false,
            overflow_invalidates: false,
        },
    };
    let outcome = lifecycle::append(ctx.app, &ctx.caller, &id, append).await?;
    let info = outcome.info;

    let mut response = response::empty(StatusCode::NO_CONTENT);
    response::set_header(
        &mut response,
        http::HeaderName::from_static("upload-offset"),
        info.offset,
    );
    super::set_expires(ctx, &mut response, &info);
    response::apply_hook(&mut response, &outcome.reply);
    Ok(response)
}
