//! The upload lifecycle, protocol-neutral: creating an upload, appending bytes to it, finishing
//! it (durable, then published where its token says) and terminating it. Every protocol
//! front-end (tus 1.0 in [`crate::tus`]) parses its headers into the plain values these
//! functions take and maps the [`Error`]s they return onto its own responses; the locks,
//! storage, upload tokens, metrics and the order of all of these live here, once.
//!
//! Invariants:
//! - every change to an upload happens under its lock ([`crate::upload::lock`]), taken here;
//! - nothing is stored for a creation that is refused (checks run before `Store::create`);
//! - bytes are stored, and a complete upload finished, in a task of its own that owns the
//!   upload's lock, not in the request's future: hyper drops that future the moment the
//!   client's connection closes, and a client that vanishes right after its last byte must
//!   still get its upload stored and published (a resuming client sees offset == length and
//!   never sends the request that would publish it). The task reads the body until it ends or
//!   breaks off, keeps what arrived, finishes the upload if it is complete, and only then lets
//!   go of the lock. The request awaits it;
//! - [`finish`] is the one place an upload whose last byte is stored gets completed, whoever
//!   calls it (a request, startup recovery, the janitor's retries); an upload is counted as
//!   finished, and post-finish fires, only where the store says this call finished it (once
//!   across instances sharing a bucket).
//!
//! Hooks (tusd v2's, see [`crate::hooks`]) fire from here and nowhere else, at tusd's points:
//! - pre-create after every check of ours, the upload token's first (a request with a bad
//!   token never reaches the hook), and before anything is stored; it sees the metadata as
//!   sent, token included, and may reject the creation or change the id and metadata. Without
//!   an upload secret, a token is the hook's to check, as under tusd;
//! - post-create once the upload exists; post-receive while bytes stream (it may stop the
//!   upload, which terminates it);
//! - pre-finish after the upload is finished and published, in the request that finished it
//!   (it shapes that response); post-finish after the publish, whoever finished the upload,
//!   with `Storage.Asset`/`AssetURL` saying where the asset is. Unlike tusd, a failed
//!   pre-finish does not swallow post-finish: the upload is published either way;
//! - pre-terminate before a DELETE (it may refuse it), post-terminate after any termination
//!   (DELETE, a stopped upload, expiry).
//!
//! Notifications are never awaited; blocking hooks that give no answer fail the request with
//! 500, as in tusd.

pub mod body;
mod events;

pub use events::Caller;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use bytes::Bytes;
use http_body::Body as HttpBody;

use self::body::{BodySource, Checksum, Stops};
use crate::app::App;
use crate::error::{Error, Result};
use crate::hooks::{FileInfo, HookType, HttpResponse};
use crate::storage::{Completion, Overwrite, StorageError};
use crate::upload::lock::UploadLock;
use crate::upload::{Concat, Metadata, Phase, Target, UploadId, UploadInfo};

/// What a creation asks for, parsed from whichever protocol carried it.
#[derive(Debug)]
pub struct NewUpload {
    /// `None`: the length is deferred (declared by a later append).
    pub length: Option<u64>,
    /// As sent, the upload token included: [`create`] checks and removes it.
    pub metadata: Metadata,
    pub concat: NewConcat,
}

/// Where a new upload stands in a concatenation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewConcat {
    None,
    Partial,
    /// The final upload of these partials, in order.
    Final(Vec<UploadId>),
}

/// Bytes a request carries for an upload: its body and what the request declared about it.
#[derive(Debug)]
pub struct Chunk<B> {
    pub body: B,
    /// The declared `Content-Length`, if any; a body longer than the upload's room is refused
    /// before a byte is read when it is declared, cut at the room when it is not.
    pub content_length: Option<u64>,
    /// The digest the whole chunk must match, or nothing of it is kept.
    pub checksum: Option<Checksum>,
    /// The request says this chunk ends the upload (the draft's `Upload-Complete: ?1`): if the
    /// upload's length is still unknown when the body ends whole, it is what was stored.
    pub completes: bool,
    /// A body that runs past the upload's room (a chunked one; a declared longer one is
    /// refused unread) ends the upload instead of completing it with what fitted: the draft
    /// says the resource is then invalid, because the client's representation is not the one
    /// it declared. tus 1.0 keeps what fits, as tusd does.
    pub overflow_invalidates: bool,
}

/// An append: bytes at `offset`, optionally declaring a deferred length.
#[derive(Debug)]
pub struct Append<B> {
    pub offset: u64,
    pub length: Option<DeclaredLength>,
    pub chunk: Chunk<B>,
}

/// A length an append states, under the rules of the protocol that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredLength {
    /// tus 1.0's `Upload-Length` on a PATCH: declares the length of an upload created with a
    /// deferred one, and only of such an upload. `None` when the request declared one that is
    /// not a valid size (refused in order, after the upload was found, as tusd does).
    Tus(Option<u64>),
    /// The draft's indicated length (`Upload-Length`, or the offset plus `Content-Length` with
    /// `Upload-Complete: ?1`): declares a deferred length, and must equal a known one
    /// ([`Error::InconsistentLength`] otherwise; every request may repeat it).
    Indicated(u64),
}

/// An upload after a lifecycle step, and what hooks asked to change in the response.
#[derive(Debug)]
pub struct Outcome {
    pub info: UploadInfo,
    pub reply: HttpResponse,
}

/// Creates an upload and stores the bytes `chunk` carries (creation-with-upload), or fills a
/// final upload from its partials; finishes it if that makes it complete. Returns the upload
/// as it stands afterwards.
///
/// Checks run in tusd's order (`PostFile`): a final upload must not carry bytes and its
/// partials must be complete, the size limit, the upload token, the partials' scope, whether
/// the token's key can be published at all, then whether an announced body fits (tusd finds
/// that out in `writeChunk`, once it has created an upload it then leaves behind, empty).
/// `announce` sees the upload once it exists and before a byte of `chunk` is read: the draft
/// tells the client where to resume from there (its 104 interim response).
pub async fn create<B>(
    app: &Arc<App>,
    caller: &Caller,
    new: NewUpload,
    chunk: Option<Chunk<B>>,
    announce: impl FnOnce(&UploadInfo),
) -> Result<Outcome>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut partials = Vec::new();
    let (length, concat) = match new.concat {
        NewConcat::Final(ids) => {
            if chunk.is_some() {
                return Err(Error::ModifyFinal);
            }
            let mut size = 0u64;
            for id in &ids {
                let partial = app.store.info(id).await?;
                if !partial.is_complete() {
                    return Err(Error::UploadNotFinished);
                }
                size = size.saturating_add(partial.offset);
                partials.push(partial);
            }
            (Some(size), Concat::Final(ids))
        }
        NewConcat::Partial => (new.length, Concat::Partial),
        NewConcat::None => (new.length, Concat::None),
    };
    if let (Some(max), Some(length)) = (app.config.max_size, length) {
        if length > max {
            return Err(Error::MaxSizeExceeded);
        }
    }
    let metadata = new.metadata;
    // Without an upload secret tusgate cannot check a token. Users who kept checking tokens in
    // their own pre-create hook (as under tusd) let that hook decide: the token is then plain
    // metadata, kept for their later hooks as tusd keeps it, and the upload is tokenless here.
    let hook_checks_tokens = !app.config.tokens.has_secret()
        && app.hooks.enabled(HookType::PreCreate)
        && metadata.contains_key("upload-token");
    let target = if hook_checks_tokens {
        None
    } else {
        app.config.tokens.check_creation(&metadata)?
    };
    check_partials_in_scope(&partials, target.as_ref())?;
    let partial = concat == Concat::Partial;
    if let (Some(target), false) = (&target, partial) {
        app.store.check_publishable(&target.path).await?;
        if app.config.overwrite == Overwrite::Keep
            && app.store.open_asset(target.path.as_bytes()).await.is_ok()
        {
            return Err(Error::AssetExists);
        }
    }
    // A body announced larger than the upload can hold is refused before anything exists.
    if chunk
        .as_ref()
        .and_then(|chunk| chunk.content_length)
        .is_some_and(|declared| declared > room(app, length, 0))
    {
        return Err(Error::UploadSizeExceeded);
    }
    let mut info = UploadInfo::new(UploadId::generate(), length, metadata, concat);
    let mut reply = HttpResponse::default();
    let pre_create = events::call(
        app,
        HookType::PreCreate,
        || pre_create_info(app, &info),
        caller,
    );
    if let Some(answer) = pre_create.await? {
        if answer.reject_upload {
            return Err(Error::UploadRejected(Box::new(answer.http_response)));
        }
        let changes = answer.change_file_info;
        if !changes.id.is_empty() {
            info.id = UploadId::parse(&changes.id).ok_or_else(|| {
                Error::HookChangeInvalid(format!(
                    "the pre-create hook's ChangeFileInfo.ID {:?} is not a valid upload id",
                    changes.id
                ))
            })?;
        }
        if let Some(metadata) = changes.metadata {
            info.metadata = metadata.into_iter().collect();
        }
        if changes.storage.is_some() {
            tracing::warn!(id = %info.id, "the pre-create hook's ChangeFileInfo.Storage is ignored");
        }
        reply = answer.http_response;
    }
    // The token did its job. Kept, it would be echoed by HEAD to anyone holding the upload
    // URL (URLs are logged) and could be replayed until it expires.
    if !hook_checks_tokens {
        info.metadata.remove("upload-token");
    }
    // A partial never publishes on its own; it remembers its token's target as its scope.
    if partial {
        info.scope = target;
    } else {
        info.target = target;
    }
    app.store.create(&info).await.map_err(|e| match e {
        // Only an id a hook chose can be taken: ours are 128 random bits.
        StorageError::AlreadyExists => Error::HookChangeInvalid(format!(
            "the pre-create hook's ChangeFileInfo.ID {} is taken",
            info.id
        )),
        other => other.into(),
    })?;
    app.metrics.uploads_created.inc();
    tracing::info!(id = %info.id, size = ?length, "upload created");
    events::notify(
        app,
        HookType::PostCreate,
        || events::file_info(app, &info),
        caller,
    );

    let lock = app.locks.lock(&info.id).await?;
    announce(&info);
    let outcome = if !partials.is_empty() {
        concatenate(app, caller, info, partials, lock).await?
    } else if let Some(chunk) = chunk {
        write_chunk(app, caller, info, chunk, lock).await?
    } else {
        finish_if_complete(app, caller, info, lock).await?
    };
    Ok(Outcome {
        reply: merge(reply, outcome.reply),
        ..outcome
    })
}

/// The upload as pre-create sees it: not created yet, so no id and no storage (as in tusd),
/// and the metadata as the client sent it.
fn pre_create_info(app: &App, info: &UploadInfo) -> FileInfo {
    FileInfo {
        id: String::new(),
        storage: None,
        ..events::file_info(app, info)
    }
}

/// tusd's `HTTPResponse.MergeWith`: what `later` sets wins.
fn merge(mut earlier: HttpResponse, later: HttpResponse) -> HttpResponse {
    if later.status_code != 0 {
        earlier.status_code = later.status_code;
    }
    if !later.body.is_empty() {
        earlier.body = later.body;
    }
    earlier.header.extend(later.header);
    earlier
}

/// A final may combine only uploads created as partials under the same token scope: the same
/// key, visibility and content type, or, for a tokenless final, tokenless partials. Anything
/// else would let one token holder read another's upload by concatenating it into their own
/// asset.
fn check_partials_in_scope(partials: &[UploadInfo], target: Option<&Target>) -> Result<()> {
    for partial in partials {
        if partial.concat != Concat::Partial {
            return Err(Error::ConcatNotAllowed(
                "a final upload may only list uploads created with Upload-Concat: partial",
            ));
        }
        if partial.scope.as_ref() != target {
            return Err(Error::ConcatNotAllowed(
                "a final upload may only list partial uploads created with the same upload token scope (asset-key, visibility, content-type)",
            ));
        }
    }
    Ok(())
}

/// Appends `append.chunk` to upload `id` at `append.offset`. Checks run in tusd's order
/// (`PatchFile`): existence, expiry, final, offset match, the already-complete shortcut (the
/// body is not read; a publish that failed after the last byte is retried, so the client's
/// retry finishes it), a deferred length being declared, the size. Returns the upload as it
/// stands afterwards.
pub async fn append<B>(
    app: &Arc<App>,
    caller: &Caller,
    id: &UploadId,
    append: Append<B>,
) -> Result<Outcome>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let lock = app.locks.lock(id).await?;
    let mut info = app.store.info(id).await?;
    check_not_expired(app, &info)?;
    if info.is_final() {
        return Err(Error::ModifyFinal);
    }
    if append.offset != info.offset {
        return Err(Error::MismatchedOffset {
            current: info.offset,
        });
    }
    adopt_tusd_token(app, &mut info).await?;
    if info.is_complete() {
        // Draft §"Upload Append": a replay answers a valid request only; a length indicated
        // otherwise than the upload's (draft §"Length") is refused, complete or not.
        if matches!(append.length, Some(DeclaredLength::Indicated(declared)) if info.length != Some(declared))
        {
            return Err(Error::InconsistentLength);
        }
        return if info.awaits_publish() {
            finish_if_complete(app, caller, info, lock).await
        } else {
            Ok(Outcome {
                info,
                reply: HttpResponse::default(),
            })
        };
    }
    match append.length {
        None => {}
        Some(DeclaredLength::Indicated(declared)) if info.length == Some(declared) => {}
        Some(DeclaredLength::Indicated(declared)) => {
            if info.length.is_some() || declared < info.offset {
                return Err(Error::InconsistentLength);
            }
            if app.config.max_size.is_some_and(|max| declared > max) {
                return Err(Error::MaxSizeExceeded);
            }
            info.length = Some(declared);
            app.store.save_info(&info).await?;
        }
        Some(DeclaredLength::Tus(declared)) => {
            if info.length.is_some() {
                return Err(Error::InvalidUploadLength);
            }
            let declared = declared
                .filter(|&len| {
                    len >= info.offset && app.config.max_size.is_none_or(|max| len <= max)
                })
                .ok_or(Error::InvalidUploadLength)?;
            info.length = Some(declared);
            app.store.save_info(&info).await?;
        }
    }
    write_chunk(app, caller, info, append.chunk, lock).await
}

/// Terminates upload `id`, complete or not. A published asset stays where it is: once
/// published it belongs to the application.
pub async fn terminate(app: &Arc<App>, caller: &Caller, id: &UploadId) -> Result<HttpResponse> {
    let _lock = app.locks.lock(id).await?;
    let info = app.store.info(id).await?;
    let mut reply = HttpResponse::default();
    let pre_terminate = events::call(
        app,
        HookType::PreTerminate,
        || events::file_info(app, &info),
        caller,
    );
    if let Some(answer) = pre_terminate.await? {
        if answer.reject_termination {
            return Err(Error::TerminationRejected(Box::new(answer.http_response)));
        }
        reply = answer.http_response;
    }
    remove(app, &info, caller).await?;
    app.metrics.uploads_terminated.inc();
    Ok(reply)
}

/// Removes an upload the caller holds the lock of, and says so (log, post-terminate): a
/// DELETE, an upload a hook stopped, an expired upload (the callers count which).
pub async fn remove(app: &App, info: &UploadInfo, caller: &Caller) -> Result<(), StorageError> {
    app.store.terminate(info).await?;
    tracing::info!(id = %info.id, "upload terminated");
    events::notify(
        app,
        HookType::PostTerminate,
        || events::file_info(app, info),
        caller,
    );
    Ok(())
}

/// When an incomplete upload expires, if uploads expire at all.
pub fn expires_at(app: &App, info: &UploadInfo) -> Option<SystemTime> {
    let lifetime = app.config.upload_expiry?;
    if info.is_complete() || info.phase != Phase::Receiving {
        return None;
    }
    Some(info.updated.unwrap_or_else(SystemTime::now) + lifetime)
}

/// Refuses uploads whose expiry has passed but which the reaper has not removed yet.
pub fn check_not_expired(app: &App, info: &UploadInfo) -> Result<()> {
    match expires_at(app, info) {
        Some(at) if at < SystemTime::now() => Err(Error::UploadExpired),
        _ => Ok(()),
    }
}

/// An upload that was in flight under tusd when tusgate took over has its token in its metadata
/// and no target: tusd's post-finish hook would have moved it. Check the token once and take the
/// upload over, so it is published like any tokened upload (and, like them, not readable through
/// its URL).
async fn adopt_tusd_token(app: &App, info: &mut UploadInfo) -> Result<()> {
    if info.target.is_some() || info.scope.is_some() {
        return Ok(());
    }
    if let Some(target) = app.config.tokens.legacy_target(&info.metadata) {
        info.adopt_token_target(target);
        app.store.save_info(info).await?;
        tracing::info!(id = %info.id, "took over an upload created under tusd with an upload token");
    }
    Ok(())
}

/// Streams the chunk into the upload at `info.offset` and returns the upload with its offset
/// advanced by what was stored. The upload is finished if it is now complete, even when the
/// body broke off (what arrived is kept, as in tusd); the error for the broken body is returned
/// after that. The upload moves into the task and back, so nothing of it is copied per append.
async fn write_chunk<B>(
    app: &Arc<App>,
    caller: &Caller,
    info: UploadInfo,
    chunk: Chunk<B>,
    lock: UploadLock,
) -> Result<Outcome>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // What may still be stored: the rest of the declared length or, while the length is
    // deferred, what -max-size allows. A declared Content-Length beyond it is refused before
    // a byte is read; a chunked body is cut at it (tus 1.0) or refused whole from the frame
    // that would have filled it (the draft, see `strict_end` below).
    let room = room(app, info.length, info.offset);
    if chunk.content_length.is_some_and(|declared| declared > room) {
        return Err(Error::UploadSizeExceeded);
    }
    let limit = chunk.content_length.filter(|&n| n > 0).unwrap_or(room);
    let received = Arc::new(AtomicU64::new(0));
    let progress = events::Progress::start(app, &info, caller, Arc::clone(&received));
    let stops = Stops {
        interrupt: lock.release_requested().clone().cancelled_owned(),
        shutdown: app.shutdown.clone().cancelled_owned(),
        stop_upload: progress.as_ref().map(events::Progress::stop_requested),
        idle_timeout: app.config.network_timeout,
    };
    let completes = chunk.completes;
    let overflow_invalidates = chunk.overflow_invalidates;
    let mut owned = info;
    let caller = caller.clone();
    detached(app, move |app: Arc<App>| async move {
        let _lock = lock;
        let mut source =
            BodySource::new(chunk.body, limit, stops, chunk.checksum).counting(received);
        // A body of unannounced length that may run past the room must not leave a complete
        // upload behind, even for a moment: it is removed below, and a crash before that
        // would let recovery publish it.
        if overflow_invalidates && chunk.content_length.is_none() {
            source = source.strict_end();
        }
        let stored = app.store.append(&owned, &mut source).await;
        if let Some(progress) = &progress {
            progress.end();
        }
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
        owned.updated = Some(SystemTime::now());
        app.metrics.bytes_received.inc_by(stored);
        app.metrics.chunk_size.observe(stored as f64);
        if let (Some(Error::UploadStopped(_)), Some(progress)) = (&stop, &progress) {
            // tusd terminates an upload its hook stopped; the client learns why.
            match remove(&app, &owned, &caller).await {
                Ok(()) => app.metrics.uploads_terminated.inc(),
                Err(e) => {
                    tracing::error!(id = %owned.id, error = %e, "cannot terminate the stopped upload");
                }
            }
            return Err(Error::UploadStopped(Box::new(progress.take_reply())));
        }
        if overflow_invalidates && matches!(stop, Some(Error::UploadSizeExceeded)) {
            crate::failpoint::hit("upload:overflowed");
            match remove(&app, &owned, &caller).await {
                Ok(()) => app.metrics.uploads_terminated.inc(),
                Err(e) => {
                    tracing::error!(id = %owned.id, error = %e, "cannot remove the overflowed upload");
                }
            }
            return Err(Error::UploadSizeExceeded);
        }
        if completes && stop.is_none() && owned.length.is_none() && !source.checksum_failed() {
            // The body was the rest of an upload whose length nobody stated: now it is known.
            owned.length = Some(owned.offset);
            app.store.save_info(&owned).await?;
        }
        let reply = if owned.is_complete() {
            finish(&app, &mut owned, &caller).await?
        } else {
            HttpResponse::default()
        };
        if source.checksum_failed() {
            return Err(Error::ChecksumMismatch);
        }
        match stop {
            Some(err) => Err(err),
            None => Ok(Outcome { info: owned, reply }),
        }
    })
    .await
}

/// What an upload of `length` (`None` while deferred) at `offset` may still store: the rest of
/// its length or, while the length is deferred, what `-max-size` allows.
fn room(app: &App, length: Option<u64>, offset: u64) -> u64 {
    match length {
        Some(length) => length.saturating_sub(offset),
        None => app
            .config
            .max_size
            .map_or(u64::MAX, |max| max.saturating_sub(offset)),
    }
}

/// Finishes `info` if every byte is stored, holding `lock` until done even if the request goes
/// away.
async fn finish_if_complete(
    app: &Arc<App>,
    caller: &Caller,
    info: UploadInfo,
    lock: UploadLock,
) -> Result<Outcome> {
    if !info.is_complete() {
        return Ok(Outcome {
            info,
            reply: HttpResponse::default(),
        });
    }
    let mut owned = info;
    let caller = caller.clone();
    detached(app, move |app: Arc<App>| async move {
        let _lock = lock;
        let reply = finish(&app, &mut owned, &caller).await?;
        Ok(Outcome { info: owned, reply })
    })
    .await
}

/// Fills the final upload `info` with the bytes of `partials` and finishes it, in a task of its
/// own like [`write_chunk`]: a client that leaves while gigabytes are copied must not leave a
/// complete final upload unpublished.
async fn concatenate(
    app: &Arc<App>,
    caller: &Caller,
    info: UploadInfo,
    partials: Vec<UploadInfo>,
    lock: UploadLock,
) -> Result<Outcome> {
    let mut owned = info;
    let caller = caller.clone();
    detached(app, move |app: Arc<App>| async move {
        let _lock = lock;
        app.store.concatenate(&owned, &partials).await?;
        owned.offset = owned.length.unwrap_or(0);
        let reply = finish(&app, &mut owned, &caller).await?;
        Ok(Outcome { info: owned, reply })
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
        Err(e) => Err(Error::Storage(StorageError::Io(std::io::Error::other(e)))),
    }
}

/// Completes an upload whose every byte is stored: durable and, with a target, published. The
/// caller holds its lock. A failure that may pass is recorded for the janitor to retry;
/// permanent ones are not. Then pre-finish (in a request) and post-finish (always) fire; the
/// result is what pre-finish asked to change in the response.
pub async fn finish(app: &App, info: &mut UploadInfo, caller: &Caller) -> Result<HttpResponse> {
    crate::failpoint::hit("upload:stored");
    crate::failpoint::pause("upload:stored").await;
    match app.store.complete(info).await {
        Ok(Completion::Finished) => {
            app.unpublished.remove(&info.id);
            app.metrics.uploads_finished.inc();
            tracing::info!(id = %info.id, size = info.offset, "upload finished");
            // pre-finish shapes the response of the request that finished the upload; work
            // no request drives has no response to shape.
            let pre_finish = if caller.is_request() {
                let upload = || events::file_info(app, info);
                events::call(app, HookType::PreFinish, upload, caller).await
            } else {
                Ok(None)
            };
            events::notify(
                app,
                HookType::PostFinish,
                || events::file_info(app, info),
                caller,
            );
            Ok(pre_finish?
                .map(|answer| answer.http_response)
                .unwrap_or_default())
        }
        Ok(Completion::AlreadyFinished) => {
            app.unpublished.remove(&info.id);
            tracing::info!(id = %info.id, "upload was finished by another instance");
            Ok(HttpResponse::default())
        }
        Err(e) => {
            if is_permanent(&e) {
                app.unpublished.remove(&info.id);
                tracing::warn!(id = %info.id, error = %e, "upload cannot be published");
            } else {
                app.unpublished.insert(&info.id);
                tracing::error!(id = %info.id, error = %e, "publish failed; will retry");
            }
            Err(e.into())
        }
    }
}

/// Publishes that can never succeed (the key conflicts with a file or directory, or
/// `--overwrite keep` found an asset there): not retried in a loop.
fn is_permanent(e: &StorageError) -> bool {
    matches!(e, StorageError::AlreadyExists | StorageError::Conflict)
}
