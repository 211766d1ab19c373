//! Making the local store's writes durable: files are fdatasynced by the completion that wrote
//! them, and a directory's entries by a group commit that concurrent completions share.
//!
//! Every completed upload needs its bytes, its state (`.info`) and both names on disk before
//! its last response. The two files are the upload's own: they are synced together in one
//! hand-off to a blocking thread ([`sync_files`]). The upload directory is everybody's: instead
//! of one `fsync` of it per completion, [`DirSync`] lets a completion return as soon as *any*
//! fsync of the directory that started after its own change has finished, so sixteen
//! completions arriving together cost one or two directory fsyncs, not sixteen.
//!
//! Invariant ([`DirSync::sync`]): a caller returns `Ok` only after an fsync of the directory
//! that *began after the caller asked* has succeeded. A failed fsync advances nothing: its
//! waiters get the error and later ones try again.
//!
//! The files are synced concurrently, each by its own completion, rather than funnelled
//! through one thread: on a journaling filesystem (ext4's default, XFS) concurrent fsyncs join
//! one journal commit, which a single flushing thread would serialize. Tried and dropped:
//! `syncfs` for a batch of completions — it also waits for every other dirty page of the
//! filesystem, so a build writing to the same disk made uploads wait for it (benches/README.md).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

/// `fdatasync`s each file (its bytes and the metadata needed to read them back), off the async
/// threads, in one hand-off.
pub(crate) async fn sync_files(files: Vec<OwnedFd>) -> io::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    match tokio::task::spawn_blocking(move || {
        files
            .iter()
            .try_for_each(|fd| rustix::fs::fdatasync(fd).map_err(io::Error::from))
    })
    .await
    {
        Ok(result) => result,
        Err(e) => Err(io::Error::other(e)),
    }
}

/// Group commit of one directory's entries (the upload directory: every creation, state
/// replacement and completion changes it).
#[derive(Debug)]
pub(crate) struct DirSync {
    dir: std::sync::Arc<OwnedFd>,
    /// Tickets handed out: a caller takes one after making its change.
    requested: AtomicU64,
    /// Every ticket up to this one is covered by an fsync that has succeeded.
    synced: AtomicU64,
    /// One fsync of the directory at a time; the waiters behind it are the next group.
    running: tokio::sync::Mutex<()>,
}

impl DirSync {
    pub(crate) fn new(dir: OwnedFd) -> Self {
        DirSync {
            dir: std::sync::Arc::new(dir),
            requested: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns once the directory's entries as they were when this was called are on disk.
    pub(crate) async fn sync(&self) -> io::Result<()> {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = self.running.lock().await;
        if self.synced.load(Ordering::SeqCst) >= ticket {
            return Ok(()); // someone's fsync started after our change and succeeded
        }
        // Every ticket taken so far belongs to a change made before the fsync below starts.
        let covers = self.requested.load(Ordering::SeqCst);
        let dir = std::sync::Arc::clone(&self.dir);
        match tokio::task::spawn_blocking(move || rustix::fs::fsync(&*dir)).await {
            Ok(Ok(())) => {
                self.synced.fetch_max(covers, Ordering::SeqCst);
                Ok(())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(io::Error::other(e)),
        }
    }

    /// How many fsyncs a run needed, for tests: `synced` only moves when one succeeds.
    #[cfg(test)]
    fn covered(&self) -> u64 {
        self.synced.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write as _;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_completions_share_directory_fsyncs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let group = Arc::new(DirSync::new(File::open(dir.path()).expect("dir").into()));
        let mut tasks = Vec::new();
        for i in 0..64u8 {
            let group = Arc::clone(&group);
            let path = dir.path().join(format!("f{i}"));
            tasks.push(tokio::spawn(async move {
                let mut file = File::create(&path)?;
                file.write_all(&[i; 10_000])?;
                sync_files(vec![file.into()]).await?;
                group.sync().await
            }));
        }
        for task in tasks {
            task.await.expect("join").expect("synced");
        }
        assert_eq!(group.covered(), 64, "the last fsync covers every ticket");
    }

    #[tokio::test]
    async fn a_caller_waits_for_an_fsync_that_started_after_it_asked() {
        // The second caller's change came after the first fsync: that fsync does not cover
        // it, so the second call runs one of its own.
        let dir = tempfile::tempdir().expect("tempdir");
        let group = DirSync::new(File::open(dir.path()).expect("dir").into());
        group.sync().await.expect("first");
        assert_eq!(group.covered(), 1);
        group.sync().await.expect("second");
        assert_eq!(group.covered(), 2, "a later change needs a later fsync");
    }

    #[tokio::test]
    async fn a_failed_fsync_is_reported_and_covers_nothing() {
        // fsync of a socket is EINVAL.
        let (socket, _peer) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let group = DirSync::new(socket.into());
        assert!(group.sync().await.is_err());
        assert_eq!(group.covered(), 0);
        assert!(group.sync().await.is_err(), "the next caller tries again");
    }

    #[tokio::test]
    async fn sync_files_reports_the_first_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = File::create(dir.path().join("f")).expect("create");
        sync_files(vec![file.try_clone().expect("dup").into()])
            .await
            .expect("a file syncs");
        let (socket, _peer) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        assert!(sync_files(vec![file.into(), socket.into()]).await.is_err());
    }
}
