//! Finishing uploads, and the background work that keeps every finished upload published and
//! every abandoned one reaped.
//!
//! [`lifecycle::finish`](crate::lifecycle::finish) is the one place an upload whose last byte
//! is stored gets completed (made durable and, with a target, published): the request that
//! stored the byte calls it from a task of its own, so a client that disconnects right after
//! its last byte cannot cancel it; startup [`recover`]y calls it for uploads a crash left
//! complete but unpublished; and [`run`] retries the ones whose publish failed for a reason
//! that may pass (disk full, store unreachable), which `finish` records in [`Pending`]. On a
//! store shared by instances (S3), [`run`] also finishes uploads that another instance left complete but unpublished (it
//! died between the last byte and the publish); the store's fencing makes racing a live
//! instance safe, and `finish` counts an upload only where the store says this call finished
//! it.
//!
//! Invariants:
//! - every call to [`Store::complete`](crate::storage::Store::complete) holds the upload's lock;
//! - background work never interrupts a request: it takes locks with `try_lock` and skips
//!   uploads somebody is working on (that request finishes them itself);
//! - an upload that can never be published (its key conflicts with an existing file or
//!   directory, or `--overwrite keep` found an asset there) is not retried in a loop: it stays
//!   complete and unpublished, is retried once per start, and is reaped by the expiry like an
//!   abandoned upload.
//!
//! Expiry (tusd has none; operators used cron): an upload that is not published and has seen
//! no bytes for the expiry lifetime is removed with its state — incomplete uploads, and
//! tokened uploads that could not be published in all that time. Complete uploads without a
//! target are results, as in tusd, and stay.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::app::App;
use crate::lifecycle::{Caller, finish, remove};
use crate::storage::StorageError;
use crate::upload::{Phase, UploadId};

/// How often failed publishes are retried.
const RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// How often, on a shared store, uploads other instances left unpublished are looked for…
const SHARED_RECOVERY_INTERVAL: Duration = Duration::from_secs(30);
/// …and how long such an upload must have been quiet.
const SHARED_RECOVERY_QUIET: Duration = Duration::from_secs(10);

/// Uploads whose publish failed and will be retried.
#[derive(Debug, Default)]
pub struct Pending(Mutex<HashSet<UploadId>>);

impl Pending {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<UploadId>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an upload to retry.
    pub fn insert(&self, id: &UploadId) {
        self.set().insert(id.clone());
    }

    /// Forgets an upload: published, or never to be retried.
    pub fn remove(&self, id: &UploadId) {
        self.set().remove(id);
    }

    /// The ids waiting now (a copy, so no lock is held across awaits).
    pub fn snapshot(&self) -> Vec<UploadId> {
        self.set().iter().cloned().collect()
    }
}

/// At startup: finishes every upload a crash left complete but unfinished, before the server
/// takes requests.
pub async fn recover(app: &App) {
    recover_older_than(app, Duration::ZERO).await;
}

/// Finishes every upload that is complete but unfinished and has not changed for `quiet`.
async fn recover_older_than(app: &App, quiet: Duration) {
    let ids = match app.store.list().await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(error = %e, "cannot list uploads to recover");
            return;
        }
    };
    let now = SystemTime::now();
    for id in ids {
        let Some(_lock) = app.locks.try_lock(&id) else {
            continue;
        };
        if let Ok(mut info) = app.store.info(&id).await {
            let quiet_enough = info.updated.is_none_or(|updated| updated + quiet <= now);
            if info.awaits_publish()
                && quiet_enough
                && finish(app, &mut info, &Caller::none()).await.is_ok()
            {
                tracing::info!(%id, "finished an interrupted publish");
            }
        }
    }
}

/// Runs until the app shuts down: retries failed publishes every few seconds and, if uploads
/// expire, reaps expired ones at an interval derived from the lifetime.
pub async fn run(app: Arc<App>) {
    let lifetime = app.config.upload_expiry;
    let reap_every =
        lifetime.map(|l| (l / 4).clamp(Duration::from_millis(250), Duration::from_secs(60)));
    let tick = reap_every.map_or(RETRY_INTERVAL, |r| r.min(RETRY_INTERVAL));
    let mut last_reap = tokio::time::Instant::now();
    let mut last_recovery = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
        }
        retry_publishes(&app).await;
        // On a shared bucket an instance may die between an upload's last byte and its publish
        // and never come back: the others finish such uploads once they have been quiet a while
        // (a live instance finishes its own within moments; racing it would be safe, only
        // wasteful).
        if app.store.is_shared() && last_recovery.elapsed() >= SHARED_RECOVERY_INTERVAL {
            last_recovery = tokio::time::Instant::now();
            recover_older_than(&app, SHARED_RECOVERY_QUIET).await;
        }
        if let (Some(lifetime), Some(every)) = (lifetime, reap_every) {
            if last_reap.elapsed() >= every {
                last_reap = tokio::time::Instant::now();
                match sweep(&app, lifetime).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "expired uploads removed"),
                    Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
                }
            }
        }
    }
}

/// One attempt at every publish that failed before.
pub async fn retry_publishes(app: &App) {
    for id in app.unpublished.snapshot() {
        let Some(_lock) = app.locks.try_lock(&id) else {
            continue;
        };
        match app.store.info(&id).await {
            Ok(mut info) if info.awaits_publish() => {
                let _ = finish(app, &mut info, &Caller::none()).await;
            }
            Ok(_) | Err(StorageError::NotFound) => app.unpublished.remove(&id),
            Err(e) => tracing::warn!(%id, error = %e, "cannot read upload state"),
        }
    }
}

/// One expiry pass over the store; returns how many uploads were removed.
pub async fn sweep(app: &App, lifetime: Duration) -> Result<usize, StorageError> {
    let now = SystemTime::now();
    let mut removed = 0;
    for id in app.store.list().await? {
        let Some(_lock) = app.locks.try_lock(&id) else {
            continue;
        };
        let info = match app.store.info(&id).await {
            Ok(info) => info,
            Err(StorageError::NotFound) => continue,
            Err(e) => {
                tracing::warn!(%id, error = %e, "cannot read upload state");
                continue;
            }
        };
        // Not published and no bytes for the whole lifetime: incomplete, or a tokened upload
        // whose publish kept failing (Receiving after a conflict, Publishing after an error
        // that never passed).
        let abandoned = info.phase != Phase::Published
            && (!info.is_complete() || info.target.is_some())
            && info.updated.is_some_and(|updated| updated + lifetime < now);
        if abandoned {
            remove(app, &info, &Caller::none()).await?;
            app.unpublished.remove(&id);
            app.metrics.uploads_expired.inc();
            removed += 1;
        }
    }
    Ok(removed)
}
