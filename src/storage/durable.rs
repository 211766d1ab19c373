//! Making the local store's writes durable: files are fdatasynced by the completion that wrote
//! them, and a directory's entries by a group commit that concurrent completions share.
//!
//! Every completed upload needs its bytes, its state (`.info`) and both names on disk before
//! its last response. The two files are the upload's own: the blocking thread that completes
//! the upload syncs them ([`sync_paths`]). The upload directory is everybody's: instead
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
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// `fdatasync`s each file: its bytes and the metadata needed to read them back. Blocking.
pub(crate) fn sync_files<'a>(files: impl IntoIterator<Item = &'a OwnedFd>) -> io::Result<()> {
    files
        .into_iter()
        .try_for_each(|fd| rustix::fs::fdatasync(fd).map_err(io::Error::from))
}

/// Opens the named files and [`sync_files`] them. Blocking.
pub(crate) fn sync_paths(paths: &[PathBuf]) -> io::Result<()> {
    let files = paths
        .iter()
        .map(|path| std::fs::File::open(path).map(OwnedFd::from))
        .collect::<io::Result<Vec<_>>>()?;
    sync_files(&files)
}

/// Group commit of one directory's entries (the upload directory: every creation, state
/// replacement and completion changes it). Cheap to clone; clones share the group.
#[derive(Debug, Clone)]
pub(crate) struct DirSync(Arc<Group>);

#[derive(Debug)]
struct Group {
    dir: OwnedFd,
    /// Tickets handed out: a caller takes one after making its change.
    requested: AtomicU64,
    /// Every ticket up to this one is covered by an fsync that has succeeded.
    synced: AtomicU64,
    /// One fsync of the directory at a time; the callers queued behind it are the next group.
    running: Mutex<()>,
}

impl DirSync {
    pub(crate) fn new(dir: OwnedFd) -> Self {
        DirSync(Arc::new(Group {
            dir,
            requested: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            running: Mutex::new(()),
        }))
    }

    /// Returns once the directory's entries as they were when this was called are on disk.
    /// Blocking: called on the blocking thread that made the change, so a completion costs one
    /// hand-off from the async threads, not one per file and one for the directory.
    pub(crate) fn sync(&self) -> io::Result<()> {
        let group = &*self.0;
        let ticket = group.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = group.running.lock().unwrap_or_else(PoisonError::into_inner);
        if group.synced.load(Ordering::SeqCst) >= ticket {
            return Ok(()); // someone's fsync started after our change and succeeded
        }
        // Every ticket taken so far belongs to a change made before the fsync below starts.
        let covers = group.requested.load(Ordering::SeqCst);
        rustix::fs::fsync(&group.dir)?;
        group.synced.fetch_max(covers, Ordering::SeqCst);
        Ok(())
    }

    /// Tickets covered by successful fsyncs, for tests.
    #[cfg(test)]
    fn covered(&self) -> u64 {
        self.0.synced.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write as _;

    #[test]
    fn concurrent_completions_share_directory_fsyncs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let group = DirSync::new(File::open(dir.path()).expect("dir").into());
        let threads: Vec<_> = (0..32u8)
            .map(|i| {
                let group = group.clone();
                let path = dir.path().join(format!("f{i}"));
                std::thread::spawn(move || -> io::Result<()> {
                    let mut file = File::create(&path)?;
                    file.write_all(&[i; 10_000])?;
                    sync_files([&OwnedFd::from(file)])?;
                    group.sync()
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("join").expect("synced");
        }
        assert_eq!(group.covered(), 32, "the last fsync covers every ticket");
    }

    #[test]
    fn a_caller_waits_for_an_fsync_that_started_after_it_asked() {
        // The second caller's change came after the first fsync: that fsync does not cover
        // it, so the second call runs one of its own.
        let dir = tempfile::tempdir().expect("tempdir");
        let group = DirSync::new(File::open(dir.path()).expect("dir").into());
        group.sync().expect("first");
        assert_eq!(group.covered(), 1);
        group.sync().expect("second");
        assert_eq!(group.covered(), 2, "a later change needs a later fsync");
    }

    #[test]
    fn a_failed_fsync_is_reported_and_covers_nothing() {
        // fsync of a socket is EINVAL.
        let (socket, _peer) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let group = DirSync::new(socket.into());
        assert!(group.sync().is_err());
        assert_eq!(group.covered(), 0);
        assert!(group.sync().is_err(), "the next caller tries again");
    }

    #[test]
    fn sync_files_reports_the_first_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = OwnedFd::from(File::create(dir.path().join("f")).expect("create"));
        sync_files([&file]).expect("a file syncs");
        let (socket, _peer) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        assert!(sync_files([&file, &OwnedFd::from(socket)]).is_err());
        assert!(sync_paths(&[dir.path().join("missing")]).is_err());
    }
}
