//! The storage seam: everything the protocol needs from where bytes and upload state live.
//!
//! The HTTP layer talks to a `dyn Store` and never learns which backend it has. Bodies cross
//! the seam as [`ByteSource`] (upload bytes in) and [`ByteStream`] (bytes out), never as HTTP
//! types, so a backend can be tested without a server. Errors are semantic: a missing upload
//! is [`StorageError::NotFound`] whatever the backend says underneath.

pub mod budget;
mod durable;
pub mod local;
pub mod s3;
#[doc(hidden)]
pub mod suite;
pub mod tusd_info;
pub mod writeback;

use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::upload::{UploadId, UploadInfo};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No upload (or object) by that name.
    #[error("not found")]
    NotFound,
    /// The thing to create exists already.
    #[error("already exists")]
    AlreadyExists,
    /// A publish target that cannot exist beside what is stored: `a/b` when `a` is a file, or
    /// `a` when `a/…` exists. Creating another upload to the same key cannot help.
    #[error("the asset key conflicts with an existing file or directory")]
    Conflict,
    /// The name is a directory (downloads answer 403, as nginx does without autoindex).
    #[error("is a directory")]
    IsDirectory,
    /// The object exists but may not be read.
    #[error("permission denied")]
    PermissionDenied,
    /// The upload's bytes cannot be read before it is complete (S3: the object does not exist
    /// yet).
    #[error("upload is not complete")]
    Incomplete,
    /// Another request took the upload over (on a shared bucket: another instance won the
    /// compare-and-swap on its state) while this one was working on it; nothing this request
    /// did is committed. Answered as a lock hand-over is.
    #[error("another request took the upload over")]
    TakenOver,
    /// The stored upload state cannot be read.
    #[error("corrupt upload state: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// How often data is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FsyncPolicy {
    /// Never: the page cache decides (tusd's behaviour; fastest, a crash may lose recent bytes).
    Never,
    /// When an upload completes, and around every publish (the default).
    #[default]
    Completion,
    /// After every PATCH, so every acknowledged byte is on disk.
    Always,
}

/// What publishing does when the target asset already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Overwrite {
    /// Replace it atomically (readers see the old or the new file, never a mix).
    #[default]
    Replace,
    /// Keep it: the new upload is refused at creation, or left unpublished if the asset
    /// appeared meanwhile.
    Keep,
}

/// What [`Store::complete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// This call finished the upload (it counts as one finished upload).
    Finished,
    /// Somebody else finished it first (another instance on a shared bucket); `info` now says
    /// what they left.
    AlreadyFinished,
}

/// Upload bytes on their way in, handed over by the HTTP layer.
///
/// `poll_chunk` yields `None` both at the end of the body and when it broke off (client gone,
/// timeout, interruption): the backend keeps what it stored either way, and the HTTP layer,
/// which knows why it ended, answers accordingly.
pub trait ByteSource: Send {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>>;

    /// Asked once after the last chunk, before the bytes become part of the upload: `false`
    /// discards everything this source delivered (a checksum mismatch).
    fn accept(&mut self) -> bool {
        true
    }

    /// Whether bytes delivered before a failure may be kept. `true` for a checksummed chunk:
    /// bytes that were never verified must not become part of the upload, also when storing
    /// them fails halfway (disk full).
    fn all_or_nothing(&self) -> bool {
        false
    }

    /// At most how many more bytes this source can deliver, if it knows (a request body knows
    /// its `Content-Length`, or the room left in the upload). Sizes the S3 buffer reservations
    /// ([`budget`]) so a small PATCH does not reserve a whole part.
    fn remaining(&self) -> Option<u64> {
        None
    }

    /// Ready once the source will read nothing more (it ended, or stopped for a reason of its
    /// own: the upload's lock was asked for, the server shuts down), without reading any data.
    /// For a consumer that waits for something else before it reads on (the S3 buffer
    /// budget), so the wait ends when reading would end; the consumer then reads on to the
    /// end, because a source may still hold a chunk it read before it stopped. Never ready by
    /// default.
    fn poll_stopped(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// The next chunk of a source.
pub async fn next_chunk(source: &mut (dyn ByteSource + '_)) -> Option<Bytes> {
    std::future::poll_fn(|cx| source.poll_chunk(cx)).await
}

/// A chunk if one is ready right now, without waiting: `Some(None)` is the end.
pub async fn ready_chunk(source: &mut (dyn ByteSource + '_)) -> Option<Option<Bytes>> {
    std::future::poll_fn(|cx| match source.poll_chunk(cx) {
        Poll::Ready(chunk) => Poll::Ready(Some(chunk)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Stored bytes on their way out.
pub trait ByteStream: Send {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>>;
}

/// An opened object whose bytes have not been requested yet.
pub trait Readable: Send + Sync {
    /// Streams the bytes in `range` (within `0..len`). May be called several times (one
    /// stream per part of a multi-range response).
    fn stream(&self, range: Range<u64>) -> Box<dyn ByteStream>;

    /// The bytes of `range` if they are already in memory (small files), so the response can
    /// be written in one go.
    fn in_memory(&self, _range: Range<u64>) -> Option<Bytes> {
        None
    }
}

/// An open, readable object: an upload's data or a published asset. Opening fixes what is
/// read: a later overwrite of the same name does not change an open object's bytes.
pub struct ReadObject {
    pub len: u64,
    pub modified: Option<SystemTime>,
    pub reader: Arc<dyn Readable>,
}

impl fmt::Debug for ReadObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadObject")
            .field("len", &self.len)
            .field("modified", &self.modified)
            .finish()
    }
}

/// Where uploads live. Implementations hold no per-upload locks of their own: the protocol
/// layer holds the upload's lock around every call that names an existing upload.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Stores a new, empty upload. Fails with `AlreadyExists` if the id is taken.
    async fn create(&self, info: &UploadInfo) -> Result<()>;

    /// The upload's state, with its true offset. `NotFound` if there is no such upload.
    async fn info(&self, id: &UploadId) -> Result<UploadInfo>;

    /// Appends the source's bytes at `info.offset` and returns how many were stored. Bytes
    /// stored before the source broke off are kept; if the source does not `accept`, nothing
    /// of this call is kept and 0 is returned.
    async fn append(&self, info: &UploadInfo, source: &mut (dyn ByteSource + '_)) -> Result<u64>;

    /// Persists a changed length (a deferred length being declared) or other state.
    async fn save_info(&self, info: &UploadInfo) -> Result<()>;

    /// Fills the empty final upload `info` with the bytes of `partials`, in order.
    async fn concatenate(&self, info: &UploadInfo, partials: &[UploadInfo]) -> Result<()>;

    /// Called once every byte is stored: makes the data durable as the fsync policy says and,
    /// if the upload has a target, publishes it there atomically. Updates `info.phase`.
    /// Idempotent: called again after a crash or a failure at any step, it finishes the job.
    /// The newest upload of a target wins: an upload whose last byte was stored before that of
    /// the asset already published there is not published over it (it only becomes
    /// `Published`, its bytes discarded), so recovering an old upload never replaces a newer
    /// one.
    async fn complete(&self, info: &mut UploadInfo) -> Result<Completion>;

    /// Removes the upload's data and state.
    async fn terminate(&self, info: &UploadInfo) -> Result<()>;

    /// The bytes stored so far, for GET on the upload URL.
    async fn read(&self, info: &UploadInfo) -> Result<ReadObject>;

    /// Every upload id in the store (for the expiry reaper and for recovery at startup).
    async fn list(&self) -> Result<Vec<UploadId>>;

    /// Refuses, at creation, a publish target that can never be published: `Conflict` if the
    /// path would need a file to be a directory or the other way round. Backends with flat
    /// keys (S3) have no such conflicts.
    async fn check_publishable(&self, _path: &str) -> Result<()> {
        Ok(())
    }

    /// Where the upload's bytes live, as tusd's `FileInfo.Storage` says it to hooks (`Type`,
    /// `Path`/`InfoPath` on disk, `Bucket`/`Key` on S3), with the asset's place once published.
    fn describe(&self, _info: &UploadInfo) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::new()
    }

    /// Whether other processes may work on the same uploads (a bucket shared by instances):
    /// then background work also finishes uploads another instance left behind.
    fn is_shared(&self) -> bool {
        false
    }

    /// Opens a published asset by its storage-relative path (`<prefix>/<key>`, normalised, no
    /// dot segments; bytes because a request path need not be UTF-8). `NotFound` also for
    /// anything that is not a regular file inside its prefix (symlinks leading out of it,
    /// FIFOs, devices); `IsDirectory` for directories.
    async fn open_asset(&self, path: &[u8]) -> Result<ReadObject>;
}
