//! The expiry reaper: removes incomplete uploads whose `Upload-Expires` has passed, with their
//! state. tusd has no expiration at all; operators used cron.
//!
//! An upload whose lock is held is being worked on and is skipped (never interrupted).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::app::App;
use crate::upload::Phase;

/// Runs until the app shuts down, sweeping at an interval derived from the expiry.
pub async fn run(app: Arc<App>) {
    let Some(lifetime) = app.config.upload_expiry else {
        return;
    };
    let interval = (lifetime / 4).clamp(Duration::from_millis(250), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match sweep(&app, lifetime).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired uploads removed"),
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
    }
}

/// One pass over the store; returns how many uploads were removed.
pub async fn sweep(app: &App, lifetime: Duration) -> Result<usize, crate::storage::StorageError> {
    let now = SystemTime::now();
    let mut removed = 0;
    for id in app.store.list().await? {
        let Some(_lock) = app.locks.try_lock(&id) else {
            continue;
        };
        let info = match app.store.info(&id).await {
            Ok(info) => info,
            Err(crate::storage::StorageError::NotFound) => continue,
            Err(e) => {
                tracing::warn!(%id, error = %e, "cannot read upload state");
                continue;
            }
        };
        let expired = !info.is_complete()
            && info.phase == Phase::Receiving
            && info.updated.is_some_and(|updated| updated + lifetime < now);
        if expired {
            app.store.terminate(&info).await?;
            app.metrics.uploads_expired.inc();
            removed += 1;
        }
    }
    Ok(removed)
}
