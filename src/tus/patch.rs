//! PATCH on an upload: appends the body at `Upload-Offset`. Checks run in tusd's order
//! (`PatchFile`): content type and offset syntax before the lock, then existence, final,
//! offset match, the already-complete shortcut, a deferred length being declared, the size.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Response, StatusCode};
use http_body::Body as HttpBody;

use super::Ctx;
use super::headers::{self, OFFSET_OCTET_STREAM, parse_size};
use super::write::{finish_if_complete, write_chunk};
use crate::error::{Error, Result};
use crate::response::{self, Body};
use crate::upload::UploadId;

pub(super) async fn handle<B>(ctx: &Ctx<'_>, raw_id: &str, body: B) -> Result<Response<Body>>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let app = ctx.app;
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

    let lock = app.locks.lock(&id).await?;
    let mut info = app.store.info(&id).await?;
    ctx.check_not_expired(&info)?;
    if info.is_final() {
        return Err(Error::ModifyFinal);
    }
    if offset != info.offset {
        return Err(Error::MismatchedOffset {
            current: info.offset,
        });
    }
    adopt_tusd_token(ctx, &mut info).await?;
    let mut response = response::empty(StatusCode::NO_CONTENT);
    let offset_header = http::HeaderName::from_static("upload-offset");
    if info.is_complete() {
        // The body is not read (tusd answers the same way). A publish that failed after the
        // last byte is retried here, so the client's retry finishes it.
        if info.awaits_publish() {
            finish_if_complete(ctx, info, lock).await?;
        }
        response::set_header(&mut response, offset_header, offset);
        return Ok(response);
    }
    if let Some(declared) = ctx.header("upload-length") {
        if info.length.is_some() {
            return Err(Error::InvalidUploadLength);
        }
        let declared = parse_size(declared)
            .filter(|&len| len >= info.offset && app.config.max_size.is_none_or(|max| len <= max))
            .ok_or(Error::InvalidUploadLength)?;
        info.length = Some(declared);
        app.store.save_info(&info).await?;
    }
    let info = write_chunk(ctx, info, body, lock, checksum).await?;
    response::set_header(&mut response, offset_header, info.offset);
    super::set_expires(ctx, &mut response, &info);
    Ok(response)
}

/// An upload that was in flight under tusd when tusgate took over has its token in its metadata
/// and no target: tusd's post-finish hook would have moved it. Check the token once and take the
/// upload over, so it is published like any tokened upload (and, like them, not readable through
/// its URL).
async fn adopt_tusd_token(ctx: &Ctx<'_>, info: &mut crate::upload::UploadInfo) -> Result<()> {
    if info.target.is_some() || info.scope.is_some() {
        return Ok(());
    }
    if let Some(target) = ctx.app.config.tokens.legacy_target(&info.metadata) {
        info.adopt_token_target(target);
        ctx.app.store.save_info(info).await?;
        tracing::info!(id = %info.id, "took over an upload created under tusd with an upload token");
    }
    Ok(())
}
