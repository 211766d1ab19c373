//! Writing a request body into an upload and finishing the upload once it is complete; shared
//! by PATCH and by creation (tusd's `writeChunk` and `finishUploadIfComplete`).
//!
//! Both run in a task of their own that owns the upload's lock, not in the request's future:
//! hyper drops that future the moment the client's connection closes, and a client that
//! vanishes right after its last byte must still get its upload stored and published (a
//! resuming client sees offset == length and never sends the request that would publish it).
//! The task reads the body until it ends or breaks off, keeps what arrived, finishes the
//! upload if it is complete, and only then lets go of the lock. The request awaits it.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http_body::Body as HttpBody;

use super::Ctx;
use super::body::{BodySource, Stops};
use super::headers::{Checksum, parse_size};
use crate::app::App;
use crate::error::{Error, Result};
use crate::janitor;
use crate::upload::UploadInfo;
use crate::upload::lock::UploadLock;

/// Streams `body` into the upload at `info.offset` and returns the upload with its offset
/// advanced by what was stored. The upload is finished if it is now complete, even when the
/// body broke off (what arrived is kept, as in tusd); the error for the broken body is returned
/// after that. The upload moves into the task and back, so nothing of it is copied per PATCH.
pub(super) async fn write_chunk<B>(
    ctx: &Ctx<'_>,
    info: UploadInfo,
    body: B,
    lock: UploadLock,
    checksum: Option<Checksum>,
) -> Result<UploadInfo>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let app = ctx.app;
    // What may still be stored: the rest of the declared length or, while the length is
    // deferred, what -max-size allows. A declared Content-Length beyond it is refused before
    // a byte is read; a chunked body is cut at it.
    let room = match info.length {
        Some(length) => length.saturating_sub(info.offset),
        None => app
            .config
            .max_size
            .map_or(u64::MAX, |max| max.saturating_sub(info.offset)),
    };
    let content_length = ctx.header(CONTENT_LENGTH).and_then(parse_size);
    if content_length.is_some_and(|declared| declared > room) {
        return Err(Error::UploadSizeExceeded);
    }
    let limit = content_length.filter(|&n| n > 0).unwrap_or(room);
    let stops = Stops {
        interrupt: lock.release_requested().clone().cancelled_owned(),
        shutdown: app.shutdown.clone().cancelled_owned(),
        idle_timeout: app.config.network_timeout,
    };
    let mut owned = info;
    detached(app, move |app: Arc<App>| async move {
        let _lock = lock;
        let mut source = BodySource::new(body, limit, stops, checksum);
        let stored = app.store.append(&owned, &mut source).await;
        let stop = source.take_stop();
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => {
                // Storing can fail after the last byte is down (an fsync with -fsync=always, a
                // state write whose answer was lost): such an upload reads as complete, and must
                // not wait for a restart to publish. The retry loop reads its state under the
                // lock and drops it unless it awaits publishing; reading it here would hold the
                // answer for another request deadline when S3 stopped answering.
                app.unpublished.insert(&owned.id);
                return Err(e.into());
            }
        };
        if let Some(stop) = &stop {
            tracing::info!(id = %owned.id, stored, reason = stop.code(), "request body ended early");
        }
        owned.offset += stored;
        owned.updated = Some(std::time::SystemTime::now());
        app.metrics.bytes_received.inc_by(stored);
        app.metrics.chunk_size.observe(stored as f64);
        if owned.is_complete() {
            janitor::finish(&app, &mut owned).await?;
        }
        if source.checksum_failed() {
            return Err(Error::ChecksumMismatch);
        }
        match stop {
            Some(err) => Err(err),
            None => Ok(owned),
        }
    })
    .await
}

/// Finishes `info` if every byte is stored (see [`janitor::finish`]), holding `lock` until done
/// even if the request goes away.
pub(super) async fn finish_if_complete(
    ctx: &Ctx<'_>,
    info: UploadInfo,
    lock: UploadLock,
) -> Result<UploadInfo> {
    if !info.is_complete() {
        return Ok(info);
    }
    let mut owned = info;
    detached(ctx.app, move |app: Arc<App>| async move {
        let _lock = lock;
        janitor::finish(&app, &mut owned).await?;
        Ok(owned)
    })
    .await
}

/// Fills the final upload `info` with the bytes of `partials` and finishes it, in a task of its
/// own like [`write_chunk`]: a client that leaves while gigabytes are copied must not leave a
/// complete final upload unpublished.
pub(super) async fn concatenate(
    ctx: &Ctx<'_>,
    info: UploadInfo,
    partials: Vec<UploadInfo>,
    lock: UploadLock,
) -> Result<UploadInfo> {
    let mut owned = info;
    detached(ctx.app, move |app: Arc<App>| async move {
        let _lock = lock;
        app.store.concatenate(&owned, &partials).await?;
        owned.offset = owned.length.unwrap_or(0);
        janitor::finish(&app, &mut owned).await?;
        Ok(owned)
    })
    .await
}

/// Runs `work` in a task tracked by the app (shutdown waits for it) and awaits its result. If
/// the caller is dropped the task carries on.
async fn detached<T, F, Fut>(app: &Arc<App>, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(Arc<App>) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let task = app.tasks.spawn(work(Arc::clone(app)));
    match task.await {
        Ok(result) => result,
        // Only a panic gets here; the panic message is already in the log.
        Err(e) => Err(Error::Storage(crate::storage::StorageError::Io(
            std::io::Error::other(e),
        ))),
    }
}
