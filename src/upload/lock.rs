//! Per-upload locks with tusd v2's hand-over semantics.
//!
//! Every request that reads or changes an upload holds its lock. A request that finds the lock
//! held asks the holder to let go (the holder's [`UploadLock::release_requested`] token is
//! cancelled); a PATCH streaming a body then stops reading, keeps what it stored, answers
//! `400 ERR_UPLOAD_INTERRUPTED` and drops the lock, and the newcomer proceeds at once. This is
//! what lets a client resume right after its connection died: the dead PATCH is interrupted
//! instead of holding the upload until a network timeout. tusd's filelocker does the same by
//! polling lock files every few seconds; here it is a wake-up, so there is no delay.
//!
//! The lock is async because it is held across `.await`s while a body streams to storage. The
//! table itself uses a std `Mutex`: it is only held to look up or remove a slot, never across
//! an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::upload::UploadId;

/// The lock could not be had within the acquire timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("failed to acquire lock before timeout")]
pub struct LockTimeout;

/// One upload's lock: a single permit and the release request of whoever holds it.
#[derive(Debug)]
struct Slot {
    permit: Arc<Semaphore>,
    holder_release: Mutex<Option<CancellationToken>>,
}

/// All upload locks of this process.
#[derive(Debug)]
pub struct LockTable {
    slots: Mutex<HashMap<UploadId, Arc<Slot>>>,
    acquire_timeout: Duration,
}

impl LockTable {
    pub fn new(acquire_timeout: Duration) -> Arc<Self> {
        Arc::new(LockTable {
            slots: Mutex::new(HashMap::new()),
            acquire_timeout,
        })
    }

    /// Locks `id`, interrupting the current holder if there is one.
    pub async fn lock(self: &Arc<Self>, id: &UploadId) -> Result<UploadLock, LockTimeout> {
        let slot = self.slot(id);
        let permit = match Arc::clone(&slot.slot.permit).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if let Some(release) = slot.slot.holder().as_ref() {
                    release.cancel();
                }
                let acquire = Arc::clone(&slot.slot.permit).acquire_owned();
                match tokio::time::timeout(self.acquire_timeout, acquire).await {
                    Ok(Ok(permit)) => permit,
                    // The semaphore is never closed; a timeout is the only real failure.
                    Ok(Err(_)) | Err(_) => return Err(LockTimeout),
                }
            }
        };
        Ok(slot.hold(permit))
    }

    /// Locks `id` only if nobody holds it; never interrupts anyone (for background work).
    pub fn try_lock(self: &Arc<Self>, id: &UploadId) -> Option<UploadLock> {
        let slot = self.slot(id);
        let permit = Arc::clone(&slot.slot.permit).try_acquire_owned().ok()?;
        Some(slot.hold(permit))
    }

    fn slot(self: &Arc<Self>, id: &UploadId) -> LockSlot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots.entry(id.clone()).or_insert_with(|| {
            Arc::new(Slot {
                permit: Arc::new(Semaphore::new(1)),
                holder_release: Mutex::new(None),
            })
        });
        LockSlot {
            table: Arc::clone(self),
            id: id.clone(),
            slot: Arc::clone(slot),
        }
    }

    /// Number of uploads with a holder or waiters (for tests and metrics).
    pub fn active(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Slot {
    fn holder(&self) -> std::sync::MutexGuard<'_, Option<CancellationToken>> {
        self.holder_release
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A reference to a slot that removes the slot from the table when the last user goes, so the
/// table only holds uploads somebody is working on.
#[derive(Debug)]
struct LockSlot {
    table: Arc<LockTable>,
    id: UploadId,
    slot: Arc<Slot>,
}

impl LockSlot {
    /// Becomes the holder: a fresh release token other requests can cancel.
    fn hold(self, permit: OwnedSemaphorePermit) -> UploadLock {
        let release = CancellationToken::new();
        *self.slot.holder() = Some(release.clone());
        UploadLock {
            release,
            _permit: permit,
            slot: self,
        }
    }
}

impl Drop for LockSlot {
    fn drop(&mut self) {
        let mut slots = self
            .table
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Two references left: the table's and ours. Nobody holds or waits.
        if Arc::strong_count(&self.slot) == 2 {
            slots.remove(&self.id);
        }
    }
}

/// A held upload lock; dropping it unlocks.
#[derive(Debug)]
pub struct UploadLock {
    release: CancellationToken,
    _permit: OwnedSemaphorePermit,
    // Declared last: the permit must be returned before the slot is considered for removal.
    slot: LockSlot,
}

impl UploadLock {
    /// Cancelled when another request for the same upload wants the lock.
    pub fn release_requested(&self) -> &CancellationToken {
        &self.release
    }
}

impl Drop for UploadLock {
    fn drop(&mut self) {
        // Only the permit holder ever sets the token, and we still hold the permit here.
        *self.slot.slot.holder() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> UploadId {
        UploadId::parse(s).expect("valid id")
    }

    #[tokio::test]
    async fn newcomer_interrupts_holder_and_proceeds() {
        let table = LockTable::new(Duration::from_secs(5));
        let first = table.lock(&id("a")).await.expect("free lock");
        let token = first.release_requested().clone();
        let waiter = tokio::spawn({
            let table = Arc::clone(&table);
            async move { table.lock(&id("a")).await.map(|_| ()) }
        });
        // The holder is asked to release, then lets go.
        token.cancelled().await;
        drop(first);
        assert_eq!(waiter.await.expect("join"), Ok(()));
        assert_eq!(table.active(), 0, "slot removed once unused");
    }

    #[tokio::test(start_paused = true)]
    async fn a_holder_that_never_lets_go_times_the_waiter_out() {
        let table = LockTable::new(Duration::from_secs(20));
        let _held = table.lock(&id("a")).await.expect("free lock");
        assert_eq!(table.lock(&id("a")).await.err(), Some(LockTimeout));
    }

    #[tokio::test]
    async fn different_uploads_do_not_contend() {
        let table = LockTable::new(Duration::from_millis(10));
        let a = table.lock(&id("a")).await.expect("a");
        let b = table.lock(&id("b")).await.expect("b");
        assert!(!a.release_requested().is_cancelled());
        assert!(!b.release_requested().is_cancelled());
    }
}
