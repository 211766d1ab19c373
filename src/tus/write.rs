//! Writing a request body into an upload and finishing the upload once it is complete; shared
//! by PATCH and by creation-with-upload (tusd's `writeChunk` and `finishUploadIfComplete`).

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http_body::Body as HttpBody;

use super::Ctx;
use super::body::{BodySource, Stops};
use super::headers::{Checksum, parse_size};
use crate::error::{Error, Result};
use crate::upload::UploadInfo;
use crate::upload::lock::UploadLock;

/// Streams `body` into the upload at `info.offset` and advances `info.offset` by what was
/// stored. The upload is finished if it is now complete, even when the body broke off (what
/// arrived is kept, as in tusd); the error for the broken body is returned after that.
pub(super) async fn write_chunk<B>(
    ctx: &Ctx<'_>,
    info: &mut UploadInfo,
    body: B,
    lock: &UploadLock,
    checksum: Option<Checksum>,
) -> Result<()>
where
    B: HttpBody<Data = Bytes> + Send + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let app = ctx.app;
    let content_length = ctx.header(CONTENT_LENGTH).and_then(parse_size);
    if let (Some(length), Some(declared)) = (info.length, content_length) {
        if info.offset.saturating_add(declared) > length {
            return Err(Error::UploadSizeExceeded);
        }
    }
    let mut limit = match info.length {
        Some(length) => length - info.offset,
        None => app
            .config
            .max_size
            .map_or(u64::MAX, |max| max.saturating_sub(info.offset)),
    };
    if let Some(declared) = content_length.filter(|&n| n > 0) {
        limit = declared;
    }
    let stops = Stops {
        interrupt: lock.release_requested().clone().cancelled_owned(),
        shutdown: app.shutdown.clone().cancelled_owned(),
        idle_timeout: app.config.network_timeout,
    };
    let mut source = BodySource::new(body, limit, stops, checksum);
    let stored = app.store.append(info, &mut source).await;
    let stop = source.take_stop();
    let stored = stored?;
    if let Some(stop) = &stop {
        tracing::info!(id = %info.id, stored, reason = stop.code(), "request body ended early");
    }
    info.offset += stored;
    info.updated = Some(std::time::SystemTime::now());
    app.metrics.bytes_received.inc_by(stored);
    app.metrics.chunk_size.observe(stored as f64);
    finish_if_complete(ctx, info).await?;
    if source.checksum_failed() {
        return Err(Error::ChecksumMismatch);
    }
    match stop {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Completes the upload in storage (fsync, publish) once its last byte is stored.
pub(super) async fn finish_if_complete(ctx: &Ctx<'_>, info: &mut UploadInfo) -> Result<()> {
    if !info.is_complete() {
        return Ok(());
    }
    crate::failpoint::hit("upload:stored");
    ctx.app.store.complete(info).await?;
    ctx.app.metrics.uploads_finished.inc();
    tracing::info!(id = %info.id, size = info.offset, "upload finished");
    Ok(())
}
