//! Local-disk storage, the embedded default, in tusd's filestore layout.
//!
//! Under the upload directory (`-upload-dir`, default `./data`):
//! - `<id>`: the upload's bytes. Its size *is* the offset, as in tusd.
//! - `<id>.info`: the state, tusd's `FileInfo` JSON ([`super::tusd_info`]). Written at
//!   creation (before the upload's URL exists, so nobody reads it half-written), then, unlike
//!   tusd, only ever replaced atomically (written to `<id>.info.tmp`, then renamed), so a crash
//!   leaves the old or the new state, never a torn one: when a deferred length is declared and
//!   around a publish, never per PATCH.
//!
//! Durability (`-fsync`, default `completion`): the response that completes an upload is sent
//! only once its bytes, its `.info` and their names are on disk ([`super::durable`]: files are
//! fdatasynced by their completion, the upload directory by a group commit).
//!
//! Under the assets directory (by default the upload directory too): tokened uploads are
//! published at `<visibility prefix>/<key>` by renaming `<id>` into place, so the asset
//! appears whole or not at all. The publish is a small state machine recorded in `.info`:
//! `Receiving` → `Publishing` (data fsynced first) → rename → directory fsynced → `Published`
//! (not waited for: startup finds the asset in place and records it). A
//! crash anywhere in it leaves the old asset or the new one, and [`Store::complete`] run
//! again at startup finishes an interrupted publish. Publishing walks beneath the prefix
//! directory one component at a time and follows no symlink, and it never puts an upload over
//! an asset whose last byte was stored after its own (see `publish_file`).
//!
//! Finished uploads without a target stay where they are, and nothing is ever cleaned up
//! except by the expiry (incomplete uploads, and tokened ones that could never be published)
//! or a DELETE. A creation that fails halfway (disk full) removes what it wrote.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use tokio::task::JoinHandle;

use super::durable::{DirSync, sync_files, sync_paths};
use super::writeback::{WINDOW_BYTES, Writeback};
use super::{
    ByteSource, ByteStream, Completion, FsyncPolicy, Overwrite, ReadObject, Readable, Result,
    StorageError, Store, next_chunk, ready_chunk, tusd_info,
};
use crate::failpoint;
use crate::upload::{Phase, UploadId, UploadInfo};

/// A write batch goes to the disk once it holds this much, or as soon as the body has nothing
/// more ready: fast bodies are written in few syscalls, slow ones without holding their bytes
/// in memory. Small on purpose: a frame dropped right after its write lets hyper reuse its
/// read buffer (a fast HTTP/1 body's frames are hyper's reads of up to ~400 KiB, so each is
/// written alone; HTTP/2's 16 KiB frames are still gathered). Holding 2 MiB of frames made
/// hyper allocate a fresh buffer per read and glibc hand the freed memory back to the kernel,
/// so later reads faulted in fresh pages, which are slow on this machine: 1 GiB in 8 MiB
/// PATCHes took 34-38k page faults with 2 MiB batches, 7.5k with 256 KiB (`perf stat`,
/// -fsync=never; benches/README.md).
const WRITE_BATCH_BYTES: usize = 256 << 10;
/// `writev` takes at most 1024 buffers (IOV_MAX).
const WRITE_BATCH_FRAMES: usize = 512;
/// Reads for GET are this large; one is always in flight ahead of the network.
const READ_CHUNK_BYTES: u64 = 1 << 20;

/// Uploads and published assets on a local filesystem.
#[derive(Debug)]
pub struct LocalStore {
    upload_dir: PathBuf,
    assets_dir: PathBuf,
    fsync: FsyncPolicy,
    overwrite: Overwrite,
    /// The visibility directories, opened once: downloads and publishes resolve beneath them.
    prefix_dirs: Mutex<HashMap<std::ffi::OsString, Arc<OwnedFd>>>,
    /// Held around the last step of every publish (see [`publish_file`]).
    publishing: Arc<Mutex<()>>,
    /// The upload directory's entries, fsynced once for all completions that wait together.
    upload_dir_sync: DirSync,
    /// The exclusive lock on the upload directory, held for the life of the store.
    _dir_lock: OwnedFd,
}

/// Takes `<upload dir>/.tusgate.lock` exclusively, or says who has it. Upload locks live in
/// this process's memory, so a second process on the same directory would append to and
/// publish the same uploads without either knowing: refused at startup instead. The kernel
/// drops the lock with the process, however it ends, so a crash never leaves it behind.
fn lock_directory(upload_dir: &Path) -> io::Result<OwnedFd> {
    let path = upload_dir.join(".tusgate.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    let fd = OwnedFd::from(file);
    match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(fd),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "another tusgate process is using this upload directory (it holds {}); two processes on one directory would corrupt uploads, so give each its own or share an S3 bucket",
                path.display()
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

impl LocalStore {
    /// Opens (and creates if needed) the two directories.
    pub fn open(
        upload_dir: &Path,
        assets_dir: &Path,
        fsync: FsyncPolicy,
        overwrite: Overwrite,
    ) -> io::Result<Self> {
        let durable = fsync != FsyncPolicy::Never;
        create_dirs(upload_dir, durable)?;
        create_dirs(assets_dir, durable)?;
        let dir_lock = lock_directory(upload_dir)?;
        let upload_dir_sync = DirSync::new(File::open(upload_dir)?.into());
        // Absolute once, here: `.info` records absolute paths (as tusd's does), and resolving a
        // relative directory on every write would cost a getcwd each time.
        Ok(LocalStore {
            _dir_lock: dir_lock,
            upload_dir: std::path::absolute(upload_dir)?,
            assets_dir: std::path::absolute(assets_dir)?,
            fsync,
            overwrite,
            prefix_dirs: Mutex::new(HashMap::new()),
            publishing: Arc::new(Mutex::new(())),
            upload_dir_sync,
        })
    }

    /// The directory of a visibility prefix (`assets/public`), opened on first use. Only
    /// successful opens are cached, so a prefix created by the first publish is found then.
    fn prefix_dir(&self, prefix: &std::ffi::OsStr) -> Result<Arc<OwnedFd>> {
        let mut dirs = self
            .prefix_dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(dir) = dirs.get(prefix) {
            return Ok(Arc::clone(dir));
        }
        let path = self.assets_dir.join(prefix);
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir =
            rustix::fs::open(&path, flags, Mode::empty()).map_err(|e| asset_error(e.into()))?;
        let dir = Arc::new(dir);
        dirs.insert(prefix.to_owned(), Arc::clone(&dir));
        Ok(dir)
    }

    fn data_path(&self, id: &UploadId) -> PathBuf {
        self.upload_dir.join(id.as_str())
    }

    fn info_path(&self, id: &UploadId) -> PathBuf {
        self.upload_dir.join(format!("{id}.info"))
    }

    /// Where the upload's bytes are now: at its target once published, else its data file.
    fn current_data_path(&self, info: &UploadInfo) -> PathBuf {
        match (&info.target, info.phase) {
            (Some(target), Phase::Published) => self.assets_dir.join(&target.path),
            _ => self.data_path(&info.id),
        }
    }

    fn storage_map(&self, id: &UploadId) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("Type".to_owned(), "filestore".to_owned()),
            (
                "Path".to_owned(),
                self.data_path(id).to_string_lossy().into_owned(),
            ),
            (
                "InfoPath".to_owned(),
                self.info_path(id).to_string_lossy().into_owned(),
            ),
        ])
    }

    /// Replaces `.info`; when `durable`, the new state and its name are on disk on return.
    async fn write_info(&self, info: &UploadInfo, durable: bool) -> Result<()> {
        let bytes = tusd_info::encode(info, self.storage_map(&info.id));
        let path = self.info_path(&info.id);
        if durable {
            let dir = self.upload_dir_sync.clone();
            blocking(move || {
                replace_file(&path, &bytes, true)?;
                dir.sync()
            })
            .await?;
        } else {
            quick(|| replace_file(&path, &bytes, false))?;
        }
        Ok(())
    }

    /// Moves the completed data file to its target (see the module doc for the steps).
    async fn publish(&self, info: &mut UploadInfo) -> Result<()> {
        let Some(target) = info.target.clone() else {
            return Ok(());
        };
        let durable = self.fsync != FsyncPolicy::Never;
        if info.phase == Phase::Receiving {
            // The bytes first, then the state that says they are all there.
            if durable {
                let data = [self.data_path(&info.id)];
                blocking(move || sync_paths(&data))
                    .await
                    .map_err(not_found)?;
            }
            info.phase = Phase::Publishing;
            self.write_info(info, durable).await?;
        }
        failpoint::hit("publish:phase-recorded");
        let (prefix, key) = split_target(&target.path)?;
        let prefix_dir = self.create_prefix_dir(prefix, durable).await?;
        let from = self.data_path(&info.id);
        let key = PathBuf::from(key);
        let overwrite = self.overwrite;
        let serial = Arc::clone(&self.publishing);
        let placed = blocking(move || {
            // One publish at a time: "is the asset there newer than ours?" and the rename must
            // not interleave with another publish of the same key.
            let _one = serial
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            publish_file(&from, &prefix_dir, &key, overwrite, durable)
        })
        .await;
        match placed.map_err(publish_error) {
            Ok(Placed::Published) => {}
            Ok(Placed::Superseded) => tracing::warn!(
                id = %info.id,
                "a newer upload of this key is already published; this older one is not"
            ),
            Err(e @ (StorageError::AlreadyExists | StorageError::Conflict)) => {
                // It can never be published: complete and unpublished, for the expiry to reap.
                info.phase = Phase::Receiving;
                self.write_info(info, durable).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        failpoint::hit("publish:renamed");
        info.phase = Phase::Published;
        // Not waited for: the asset is durable already (`place` fsynced its directory), and a
        // `Publishing` state that a crash brings back only makes the startup pass find the
        // asset in place and record this (see `publish_file`).
        self.write_info(info, false).await
    }

    /// The prefix directory (`assets/public`), created on first use like nginx's root would
    /// have been by an operator.
    async fn create_prefix_dir(&self, prefix: &str, durable: bool) -> Result<Arc<OwnedFd>> {
        let os_prefix = std::ffi::OsStr::new(prefix);
        if let Ok(dir) = self.prefix_dir(os_prefix) {
            return Ok(dir);
        }
        let path = self.assets_dir.join(prefix);
        blocking(move || match fs::create_dir(&path) {
            Ok(()) if durable => sync_parent(&path),
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        })
        .await?;
        self.prefix_dir(os_prefix)
    }
}

#[async_trait]
impl Store for LocalStore {
    fn describe(&self, info: &UploadInfo) -> BTreeMap<String, String> {
        let mut map = self.storage_map(&info.id);
        // `Path` is where the bytes are now: a hook written for tusd reads or moves the file
        // there, and once published it is the asset.
        map.insert(
            "Path".to_owned(),
            self.current_data_path(info).to_string_lossy().into_owned(),
        );
        if let Some(target) = &info.target {
            let path = self.assets_dir.join(&target.path);
            map.insert("AssetPath".to_owned(), path.to_string_lossy().into_owned());
        }
        map
    }

    async fn create(&self, info: &UploadInfo) -> Result<()> {
        let path = self.data_path(&info.id);
        quick(|| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map(drop)
        })
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => StorageError::AlreadyExists,
            _ => StorageError::Io(e),
        })?;
        // A new state file is written in place, not through a renamed temporary: nobody can
        // read it before this creation is answered, and it saves a rename per upload.
        let bytes = tusd_info::encode(info, self.storage_map(&info.id));
        let info_path = self.info_path(&info.id);
        let written = quick(|| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&info_path)?
                .write_all(&bytes)
        });
        if let Err(e) = written {
            // Disk full, most likely: leave nothing behind that no listing would find.
            let _ = fs::remove_file(&info_path);
            let _ = fs::remove_file(self.data_path(&info.id));
            return Err(e.into());
        }
        Ok(())
    }

    async fn info(&self, id: &UploadId) -> Result<UploadInfo> {
        let info_path = self.info_path(id);
        let data_path = self.data_path(id);
        let (bytes, data_meta) = quick(|| {
            let bytes = read_small_file(&info_path)?;
            let data_meta = match fs::metadata(data_path) {
                Ok(meta) => Some(meta),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            Ok((bytes, data_meta))
        })
        .map_err(not_found)?;
        let mut info = tusd_info::decode(&bytes).map_err(StorageError::Corrupt)?;
        if &info.id != id {
            return Err(StorageError::Corrupt(format!(
                "{id}.info names upload {}",
                info.id
            )));
        }
        match (info.phase, data_meta) {
            (Phase::Receiving, None) => return Err(StorageError::NotFound),
            (Phase::Receiving, Some(meta)) => {
                info.offset = meta.len();
                info.updated = meta.modified().ok();
            }
            // Every byte was stored before publishing began; the data file (until it moves) says
            // when the last one came, which the expiry needs for a publish that never ends.
            (Phase::Publishing | Phase::Published, meta) => {
                info.offset = info.length.unwrap_or(0);
                info.updated = meta.and_then(|m| m.modified().ok());
            }
        }
        Ok(info)
    }

    async fn append(&self, info: &UploadInfo, source: &mut (dyn ByteSource + '_)) -> Result<u64> {
        let path = self.data_path(&info.id);
        let start = info.offset;
        let file = quick(|| {
            let mut file = OpenOptions::new().write(true).open(path)?;
            file.seek(SeekFrom::Start(start))?;
            Ok(file)
        })
        .map_err(not_found)?;

        let writeback = (self.fsync != FsyncPolicy::Never).then(|| Writeback::new(WINDOW_BYTES));
        let (file, written) = write_batches(file, source, start, writeback).await;
        let written = match written {
            Ok(written) => written,
            Err(e) => {
                // A checksummed chunk is kept whole or not at all, also when the disk fills.
                if source.all_or_nothing() {
                    blocking(move || file.set_len(start)).await?;
                }
                return Err(e.into());
            }
        };
        let fsync = self.fsync;
        if !source.accept() {
            blocking(move || file.set_len(start)).await?;
            return Ok(0);
        }
        if fsync == FsyncPolicy::Always && written > 0 {
            blocking(move || sync_files([&OwnedFd::from(file)])).await?;
        }
        Ok(written)
    }

    async fn save_info(&self, info: &UploadInfo) -> Result<()> {
        self.write_info(info, self.fsync == FsyncPolicy::Always)
            .await
    }

    async fn concatenate(&self, info: &UploadInfo, partials: &[UploadInfo]) -> Result<()> {
        let dest = self.data_path(&info.id);
        let sources: Vec<PathBuf> = partials.iter().map(|p| self.current_data_path(p)).collect();
        blocking(move || {
            let mut out = OpenOptions::new().write(true).open(dest)?;
            for source in sources {
                // std::io::copy between files uses copy_file_range on Linux: no user-space copy.
                io::copy(&mut File::open(source)?, &mut out)?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn complete(&self, info: &mut UploadInfo) -> Result<Completion> {
        // One process owns the directory (the startup lock) and the caller holds the upload's
        // lock: nobody else can have finished it.
        if info.target.is_some() {
            self.publish(info).await?;
        } else if self.fsync != FsyncPolicy::Never {
            // All of the upload: its bytes, the state written at its creation, and both names.
            let files = [self.data_path(&info.id), self.info_path(&info.id)];
            let dir = self.upload_dir_sync.clone();
            blocking(move || {
                sync_paths(&files)?;
                dir.sync()
            })
            .await
            .map_err(not_found)?;
        }
        Ok(Completion::Finished)
    }

    async fn terminate(&self, info: &UploadInfo) -> Result<()> {
        // A published asset belongs to the application now; only the upload goes away.
        let paths = [self.data_path(&info.id), self.info_path(&info.id)];
        blocking(move || {
            for path in paths {
                match fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn read(&self, info: &UploadInfo) -> Result<ReadObject> {
        let path = self.current_data_path(info);
        let (file, meta) = blocking(move || {
            let file = File::open(path)?;
            let meta = file.metadata()?;
            Ok((file, meta))
        })
        .await
        .map_err(not_found)?;
        Ok(ReadObject {
            len: meta.len(),
            modified: meta.modified().ok(),
            reader: Arc::new(OpenFile(Arc::new(Mutex::new(file)))),
        })
    }

    async fn check_publishable(&self, path: &str) -> Result<()> {
        let (prefix, key) = split_target(path)?;
        // No prefix directory yet: nothing can be in the way.
        let Ok(prefix_dir) = self.prefix_dir(std::ffi::OsStr::new(prefix)) else {
            return Ok(());
        };
        let components: Vec<&str> = key.split('/').collect();
        let mut at = PathBuf::new();
        for (i, component) in components.iter().enumerate() {
            at.push(component);
            let last = i + 1 == components.len();
            match stat_beneath(&prefix_dir, &at) {
                Ok(stat) => {
                    let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
                    if is_dir == last {
                        return Err(StorageError::Conflict);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(publish_error(e)),
            }
        }
        Ok(())
    }

    async fn open_asset(&self, path: &[u8]) -> Result<ReadObject> {
        use std::os::unix::ffi::OsStrExt;
        // Split by hand: `Path::components` would drop a trailing slash, and `file/` must stay a
        // path the kernel refuses (ENOTDIR, 404 as in nginx).
        let (prefix, rest) = match path.iter().position(|&b| b == b'/') {
            Some(slash) => (&path[..slash], &path[slash + 1..]),
            None => (path, &b""[..]),
        };
        if prefix.is_empty() || prefix == b"." || prefix == b".." {
            return Err(StorageError::NotFound);
        }
        let prefix = std::ffi::OsStr::from_bytes(prefix);
        let rest = PathBuf::from(std::ffi::OsStr::from_bytes(rest));
        let prefix_dir = self.prefix_dir(prefix)?;
        // Inline, not on the blocking pool: like nginx's event loop, an open, an fstat and a
        // small read of a cached file take microseconds, while the hand-off to a blocking thread
        // and back costs two context switches and was most of the time of a small download.
        // Large files are still read on the blocking pool.
        let opened = (|| -> io::Result<_> {
            let file = open_beneath(&prefix_dir, &rest)?;
            let meta = file.metadata()?;
            // Small files are read right away, in the same trip to the blocking pool.
            let head = if meta.is_file() && meta.len() <= SMALL_FILE_BYTES {
                let mut buf = Vec::with_capacity(meta.len() as usize);
                (&file).take(meta.len()).read_to_end(&mut buf)?;
                Some(Bytes::from(buf))
            } else {
                None
            };
            Ok((file, meta, head))
        })();
        let (file, meta, head) = opened.map_err(asset_error)?;
        if meta.is_dir() {
            return Err(StorageError::IsDirectory);
        }
        if !meta.is_file() {
            return Err(StorageError::NotFound);
        }
        let reader: Arc<dyn Readable> = match head {
            Some(bytes) if bytes.len() as u64 == meta.len() => Arc::new(InMemory(bytes)),
            _ => Arc::new(OpenFile(Arc::new(Mutex::new(file)))),
        };
        Ok(ReadObject {
            len: meta.len(),
            modified: meta.modified().ok(),
            reader,
        })
    }

    async fn list(&self) -> Result<Vec<UploadId>> {
        let dir = self.upload_dir.clone();
        let ids = blocking(move || {
            let mut ids = Vec::new();
            for entry in fs::read_dir(dir)? {
                let name = entry?.file_name();
                let id = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".info"))
                    .and_then(UploadId::parse);
                ids.extend(id);
            }
            Ok(ids)
        })
        .await?;
        Ok(ids)
    }
}

/// Files up to this size are read whole when opened for download.
const SMALL_FILE_BYTES: u64 = 64 << 10;

/// Opens `relative` below `dir`, the kernel refusing any resolution that leaves `dir` (`..`,
/// absolute symlinks, symlinks pointing outside): a link in `public/` can never serve a file
/// from `private/`, which nginx's plain `open` allows. One syscall, no path walking of our own.
/// `O_NONBLOCK` so that opening a FIFO does not wait for a writer.
fn open_beneath(dir: &OwnedFd, relative: &Path) -> io::Result<File> {
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let fd = rustix::fs::openat2(dir, relative, flags, Mode::empty(), resolve)?;
    Ok(File::from(fd))
}

/// How a failed asset open is reported.
fn asset_error(e: io::Error) -> StorageError {
    match (e.kind(), e.raw_os_error()) {
        // ENAMETOOLONG by its number: io::ErrorKind::InvalidFilename needs Rust 1.87, and
        // rust-version in Cargo.toml is 1.85.
        (io::ErrorKind::NotFound | io::ErrorKind::NotADirectory, _) | (_, Some(ENAMETOOLONG)) => {
            StorageError::NotFound
        }
        // EXDEV: the path resolved outside its prefix (RESOLVE_BENEATH).
        (_, Some(EXDEV)) => StorageError::NotFound,
        // ELOOP: a symlink loop, which nginx answers with 403.
        (io::ErrorKind::PermissionDenied, _) | (_, Some(ELOOP)) => StorageError::PermissionDenied,
        _ => StorageError::Io(e),
    }
}

/// A small file already in memory.
struct InMemory(Bytes);

impl Readable for InMemory {
    fn stream(&self, range: std::ops::Range<u64>) -> Box<dyn ByteStream> {
        Box::new(self.in_memory(range))
    }

    fn in_memory(&self, range: std::ops::Range<u64>) -> Option<Bytes> {
        Some(self.0.slice(range.start as usize..range.end as usize))
    }
}

/// A single chunk as a stream.
impl ByteStream for Option<Bytes> {
    fn poll_next(&mut self, _: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        Poll::Ready(self.take().map(Ok))
    }
}

/// Streams `source` into `file` in batches written on this thread. Handing batches to the
/// blocking pool so the network and the disk overlap was measured slower: the page-cache copy is
/// cheaper than the hand-off (one 1 GiB PATCH: 2.0-2.6 GB/s inline, 1.4 GB/s pipelined).
/// `block_in_place` around large writes was measured too (1.6-2.0 GB/s): its own cost ate most
/// of the gain. The trade-off is nginx's, which writes request bodies from its event loop: if
/// the kernel throttles a write (dirty-page limits on a slow disk), this worker thread waits
/// with it while the others keep serving. With `writeback`, the windows the file completes
/// (it grows from `start`) are handed to the kernel's writeback as they fill. Returns the file
/// and the bytes written; on a write error, what was written before it stays written.
async fn write_batches(
    mut file: File,
    source: &mut (dyn ByteSource + '_),
    start: u64,
    mut writeback: Option<Writeback>,
) -> (File, io::Result<u64>) {
    let mut written = 0u64;
    let mut ended = false;
    while !ended {
        let mut batch = Vec::new();
        let mut batch_len = 0;
        match next_chunk(source).await {
            Some(chunk) => {
                batch_len += chunk.len();
                batch.push(chunk);
            }
            None => ended = true,
        }
        while !ended && batch_len < WRITE_BATCH_BYTES && batch.len() < WRITE_BATCH_FRAMES {
            match ready_chunk(source).await {
                Some(Some(chunk)) => {
                    batch_len += chunk.len();
                    batch.push(chunk);
                }
                Some(None) => ended = true,
                None => break,
            }
        }
        if batch_len == 0 {
            continue;
        }
        let written_before = written;
        match write_all_vectored(&mut file, &batch) {
            Ok(()) => written += batch_len as u64,
            Err(e) => return (file, Err(e)),
        }
        drop(batch);
        if let Some(writeback) = &mut writeback {
            writeback
                .grew(&file, start + written_before, start + written)
                .await;
        }
    }
    (file, Ok(written))
}

fn write_all_vectored(file: &mut File, batch: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An opened file; reading starts when a range is asked for. The mutex makes each
/// seek-and-read atomic when several streams of one file exist (multi-range responses).
struct OpenFile(Arc<Mutex<File>>);

impl Readable for OpenFile {
    fn stream(&self, range: std::ops::Range<u64>) -> Box<dyn ByteStream> {
        Box::new(FileStream::new(Arc::clone(&self.0), range))
    }
}

/// Reads a file range front to back in large chunks, one read always in flight ahead of the
/// consumer, so disk and network work overlap. The first read starts on the first poll, not at
/// construction: a response that is never sent (its client grants no HTTP/2 window, or goes
/// away first) costs no read buffer.
struct FileStream {
    file: Arc<Mutex<File>>,
    /// Where the next read starts (the file cursor is set before each read).
    position: u64,
    remaining: u64,
    started: bool,
    in_flight: Option<JoinHandle<io::Result<Bytes>>>,
}

impl FileStream {
    fn new(file: Arc<Mutex<File>>, range: std::ops::Range<u64>) -> Self {
        let remaining = range.end.saturating_sub(range.start);
        FileStream {
            file,
            position: range.start,
            remaining,
            started: false,
            in_flight: None,
        }
    }

    fn start_read(&mut self) {
        if self.remaining == 0 {
            return;
        }
        let want = self.remaining.min(READ_CHUNK_BYTES);
        let position = self.position;
        self.remaining -= want;
        self.position += want;
        let file = Arc::clone(&self.file);
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(want as usize);
            let mut file = file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            file.seek(SeekFrom::Start(position))?;
            // read_to_end fills the spare capacity without zeroing it first.
            (&mut *file).take(want).read_to_end(&mut buf)?;
            if (buf.len() as u64) < want {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being read",
                ));
            }
            Ok(Bytes::from(buf))
        }));
    }
}

impl ByteStream for FileStream {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if !self.started {
            self.started = true;
            self.start_read();
        }
        let Some(job) = self.in_flight.as_mut() else {
            return Poll::Ready(None);
        };
        let result = match std::pin::Pin::new(job).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(result)) => result,
            Poll::Ready(Err(e)) => Err(io::Error::other(e)),
        };
        self.in_flight = None;
        if result.is_ok() {
            self.start_read();
        }
        Poll::Ready(Some(result))
    }
}

use std::future::Future as _;

/// Reads a file of a few hundred bytes with one `read` where `fs::read` makes three calls (a
/// `statx` to size its buffer, the read, and a read that finds the end): a short read of a
/// regular file only happens at its end.
fn read_small_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let mut bytes = vec![0; 4096];
    let mut len = 0;
    loop {
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len < bytes.len() {
                    break;
                }
                bytes.resize(bytes.len() * 2, 0);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(len);
    Ok(bytes)
}

/// Replaces `path` with `bytes` atomically: a temporary file renamed over it. When `durable`,
/// the bytes are synced *before* the rename (the kernel may write the directory's new entry
/// at any time, and it must never name a file whose bytes are not there yet); the caller then
/// makes the directory durable.
fn replace_file(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_data()?;
        }
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        // ENOSPC, typically: no half-written temporary file stays behind.
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// What the last step of a publish did.
#[derive(Debug, PartialEq, Eq)]
enum Placed {
    /// The data file is now the asset (or was already, before a crash).
    Published,
    /// The asset there is newer (its last byte was stored after ours): ours is dropped.
    Superseded,
}

/// Moves a finished upload's data file to `key` below the prefix directory, every directory
/// opened beneath it with no symlink followed (a link planted in `public/a/` must not send a
/// private upload elsewhere; downloads refuse to leave the prefix the same way). With
/// `Replace` one rename swaps the new file in; with `Keep` a hard link creates it only if
/// nothing is there (`AlreadyExists` otherwise). Across filesystems the bytes are first copied
/// into a temporary file beside the target, so the target still changes in one atomic step.
///
/// Newest wins: an asset's mtime is the time its upload's last byte was written (a rename
/// keeps it, the cross-filesystem copy sets it), so an existing asset with a later mtime than
/// our data file came from a newer upload and stays. The kernel's timestamps are coarse (a
/// clock tick); two uploads finishing within one tick are ordered by their publishes.
fn publish_file(
    from: &Path,
    prefix_dir: &OwnedFd,
    key: &Path,
    overwrite: Overwrite,
    durable: bool,
) -> io::Result<Placed> {
    let name = key.file_name().ok_or(io::ErrorKind::InvalidInput)?;
    let parent = open_dirs_beneath(prefix_dir, key.parent().unwrap_or(Path::new("")), durable)?;
    let ours = match fs::metadata(from) {
        Ok(meta) => meta,
        // Moved before a crash: only the state update was missing.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(_) => Ok(Placed::Published),
                Err(_) => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    if let Ok(there) = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        use std::os::unix::fs::MetadataExt;
        let kind = FileType::from_raw_mode(there.st_mode);
        if kind == FileType::Directory {
            return Err(io::Error::from_raw_os_error(EISDIR));
        }
        if (there.st_dev, there.st_ino) == (ours.dev(), ours.ino()) {
            // `Keep` crashed between link and unlink: the asset is already ours.
            fs::remove_file(from)?;
            return Ok(Placed::Published);
        }
        // A time in the future (a clock stepped back, files restored with their times) says
        // nothing about which upload came last: such an asset is replaced.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let plausible = there.st_mtime <= now + 60;
        let newer = plausible
            && (there.st_mtime, there.st_mtime_nsec as i64) > (ours.mtime(), ours.mtime_nsec());
        if overwrite == Overwrite::Replace && kind == FileType::RegularFile && newer {
            fs::remove_file(from)?;
            return Ok(Placed::Superseded);
        }
    }
    match place(rustix::fs::CWD, from, &parent, name, overwrite, durable) {
        Err(e) if e.raw_os_error() == Some(EXDEV) => {
            // A fresh name (never an asset's: keys cannot start with a dot and end like this),
            // created exclusively and never through a symlink, and removed on every failure.
            let tmp_name = format!(".tusgate-{}.tmp", crate::upload::UploadId::generate());
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
            let mut out = File::from(rustix::fs::openat(
                &parent,
                &tmp_name,
                flags | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            )?);
            let placed = (|| {
                io::copy(&mut File::open(from)?, &mut out)?;
                out.set_modified(ours.modified()?)?;
                if durable {
                    out.sync_data()?;
                }
                place(
                    &parent,
                    tmp_name.as_str(),
                    &parent,
                    name,
                    overwrite,
                    durable,
                )
            })();
            if placed.is_err() {
                let _ = rustix::fs::unlinkat(&parent, tmp_name.as_str(), AtFlags::empty());
            }
            placed?;
            fs::remove_file(from)?;
            Ok(Placed::Published)
        }
        other => other.map(|()| Placed::Published),
    }
}

/// The one atomic step of a publish: `from` (relative to `from_dir`) becomes `name` in `dir`.
fn place(
    from_dir: impl AsFd,
    from: impl rustix::path::Arg + Copy,
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    overwrite: Overwrite,
    durable: bool,
) -> io::Result<()> {
    match overwrite {
        Overwrite::Replace => {
            rustix::fs::renameat(&from_dir, from, dir, name)?;
            if durable {
                rustix::fs::fsync(dir)?;
            }
        }
        Overwrite::Keep => {
            rustix::fs::linkat(&from_dir, from, dir, name, AtFlags::empty())?;
            // The asset's name is on disk before the upload's goes. The unlink then changes
            // only the upload's directory: a crash that undoes it leaves a second name of the
            // published file, which startup recognises (same inode) and removes.
            if durable {
                rustix::fs::fsync(dir)?;
            }
            failpoint::hit("publish:linked");
            rustix::fs::unlinkat(&from_dir, from, AtFlags::empty())?;
        }
    }
    Ok(())
}

/// Opens `relative` below `dir` for writing into, creating what is missing, one component at a
/// time with no symlink followed. A component that is a file or a symlink fails (`ENOTDIR`,
/// `ELOOP`). Each new directory's entry is fsynced when `durable`.
fn open_dirs_beneath(dir: &OwnedFd, relative: &Path, durable: bool) -> io::Result<OwnedFd> {
    // A real descriptor (the cached prefix one is O_PATH, which cannot be fsynced).
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
    let mut at = rustix::fs::openat2(dir, ".", flags, Mode::empty(), resolve)?;
    for component in relative.components() {
        let std::path::Component::Normal(name) = component else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        match rustix::fs::mkdirat(&at, name, Mode::from_raw_mode(0o777)) {
            Ok(()) if durable => rustix::fs::fsync(&at)?,
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        at = rustix::fs::openat2(&at, name, flags, Mode::empty(), resolve)?;
    }
    Ok(at)
}

/// `fstat` of `relative` below `dir`, following no symlink on the way (a final symlink is
/// reported as one).
fn stat_beneath(dir: &OwnedFd, relative: &Path) -> io::Result<rustix::fs::Stat> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
    let fd = rustix::fs::openat2(dir, relative, flags, Mode::empty(), resolve)?;
    Ok(rustix::fs::fstat(&fd)?)
}

/// `<prefix>/<key>` of a validated target.
fn split_target(path: &str) -> Result<(&str, &str)> {
    path.split_once('/')
        .ok_or_else(|| StorageError::Corrupt(format!("publish target {path:?} has no prefix")))
}

/// How a failed publish step is reported: paths that cannot hold the asset are a `Conflict`.
fn publish_error(e: io::Error) -> StorageError {
    match e.raw_os_error() {
        Some(EEXIST) => StorageError::AlreadyExists,
        Some(ENOTDIR | EISDIR | ELOOP | ENOTEMPTY | EXDEV | ENAMETOOLONG) => StorageError::Conflict,
        _ => StorageError::Io(e),
    }
}

/// Linux `errno` values (the io::ErrorKind for some of them is still unstable).
const EXDEV: i32 = 18;
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const ELOOP: i32 = 40;
const ENOTEMPTY: i32 = 39;
const ENAMETOOLONG: i32 = 36;

/// `create_dir_all`, and when `durable` each directory it created is fsynced into its parent:
/// an upload directory made at first start is as much part of a completed upload as the
/// upload's own entries in it, and a power cut could otherwise lose it with all it holds.
fn create_dirs(path: &Path, durable: bool) -> io::Result<()> {
    let path = std::path::absolute(path)?;
    // Outermost last; a concurrent creator only makes an fsync redundant.
    let missing: Vec<&Path> = path.ancestors().take_while(|dir| !dir.exists()).collect();
    fs::create_dir_all(&path)?;
    if durable {
        missing.iter().rev().try_for_each(|dir| sync_parent(dir))?;
    }
    Ok(())
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

fn not_found(e: io::Error) -> StorageError {
    match e.kind() {
        io::ErrorKind::NotFound => StorageError::NotFound,
        _ => StorageError::Io(e),
    }
}

/// Filesystem work that is quick when the page cache is warm (creating a file, reading or
/// replacing a small `.info` without fsync, a stat, an open): it runs on the calling thread,
/// because handing it to the blocking pool and back costs two context switches, more than the
/// work itself. What can really block (fsync, large writes and reads) uses [`blocking`].
fn quick<T>(f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    f()
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(io::Error::other(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_store_suite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::open(
            &dir.path().join("uploads"),
            &dir.path().join("assets"),
            FsyncPolicy::Completion,
            Overwrite::Replace,
        )
        .expect("open");
        crate::storage::suite::run_all(&store).await;
    }

    /// Construction starts no read (it would need a runtime to: this test has none), so a
    /// response that is never polled holds no buffer; the first poll starts it.
    #[test]
    fn a_file_stream_reads_nothing_until_polled() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        fs::write(&path, b"0123456789").expect("write");
        let file = Arc::new(Mutex::new(File::open(&path).expect("open")));
        let mut stream = FileStream::new(file, 2..7);
        assert!(stream.in_flight.is_none());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let chunk = runtime.block_on(std::future::poll_fn(|cx| stream.poll_next(cx)));
        assert_eq!(&chunk.expect("a chunk").expect("read")[..], b"23456");
        let end = runtime.block_on(std::future::poll_fn(|cx| stream.poll_next(cx)));
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn a_symlink_out_of_its_prefix_is_not_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::open(
            &dir.path().join("u"),
            dir.path(),
            FsyncPolicy::Never,
            Overwrite::Replace,
        )
        .expect("open");
        fs::create_dir_all(dir.path().join("public")).expect("mkdir");
        fs::create_dir_all(dir.path().join("private")).expect("mkdir");
        fs::write(dir.path().join("private/secret.txt"), b"secret").expect("write");
        std::os::unix::fs::symlink("../private/secret.txt", dir.path().join("public/link.txt"))
            .expect("symlink");
        assert!(matches!(
            store.open_asset(b"public/link.txt").await,
            Err(StorageError::NotFound)
        ));
        assert!(store.open_asset(b"private/secret.txt").await.is_ok());
        assert!(matches!(
            store.open_asset(b"public").await,
            Err(StorageError::IsDirectory)
        ));
    }
}
