//! S3-compatible storage (AWS S3, Cloudflare R2, Backblaze B2, GCS interop, MinIO, SeaweedFS),
//! through object_store's low-level `MultipartStore`, the only multipart API whose upload id
//! and part ids can be persisted and resumed by another process.
//!
//! Layout in the bucket, under the object prefix `P` (`--s3-object-prefix`, may be empty):
//! - `P/<id>.info`: the upload's state — tusd's FileInfo JSON plus, under `TusgateBackend`, the
//!   part size, the multipart upload id, the parts (size and ETag) and the tail. It is the
//!   **commit point**: it is rewritten after a PATCH's bytes are safely in the bucket and before
//!   the PATCH is answered, so every acknowledged byte survives a crash at any step, and any
//!   instance sharing the bucket can continue the upload.
//! - `P/<id>.part.<generation>`: the tail, bytes that do not fill a part yet (tus chunks can be
//!   any size; S3 parts must be ≥ 5 MiB). Every PATCH that leaves a tail writes a new
//!   generation, so a crash never leaves the state pointing at overwritten bytes.
//! - The object: `P/<visibility>/<key>` for tokened uploads — the multipart upload is created
//!   there, so completing it *is* the publish, with no copy and the token's Content-Type —, and
//!   `P/<id>` for uploads without a token (where tusd's s3store puts them).
//!
//! Part size is fixed per upload and recorded in its state (R2 rejects unequal parts, also
//! across restarts): `--s3-part-size`, raised for huge uploads to stay under 10,000 parts.
//! Memory per PATCH is bounded by part size × (parts in flight + 1), and that of all PATCHes
//! together by `--s3-max-buffer` (the [`Budget`]: a part's bytes are reserved before it is
//! filled and released when S3 has it; see `budget.rs`). No temporary files. An
//! upload that fits in one part is a single PUT; the multipart upload is only created once a
//! whole part exists. Completion is recorded in the state, never inferred from S3 errors
//! (SeaweedFS answers ListParts on completed uploads). No checksum headers (B2 rejects them)
//! and no bulk delete (GCS lacks it).
//!
//! Permissions needed: GetObject, PutObject, DeleteObject, ListBucket, AbortMultipartUpload
//! (and CreateBucket with `STORAGE_CREATE_BUCKET`). Configure a lifecycle rule that aborts
//! incomplete multipart uploads after a few days: object_store cannot list orphaned ones.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig,
};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::budget::Budget;
use super::{
    ByteSource, ByteStream, ReadObject, Readable, Result, StorageError, Store, next_chunk,
    tusd_info,
};
use crate::tokens::Secret;
use crate::upload::{Phase, UploadId, UploadInfo};

/// S3 allows at most this many parts per upload.
const MAX_PARTS: u64 = 10_000;
/// Smallest part S3 accepts (except the last).
const MIN_PART_SIZE: u64 = 5 << 20;
/// Parts uploaded concurrently per PATCH while the next one is being received.
const PARTS_IN_FLIGHT: usize = 2;

/// How to reach the bucket (`STORAGE_*` variables and tusd's `-s3-*` flags).
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// `None` = AWS itself (virtual-hosted style); otherwise path-style requests to this URL.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key: Option<String>,
    pub secret_key: Option<Secret>,
    pub use_ssl: bool,
    pub verify_ssl: bool,
    pub prefix: String,
    pub part_size: u64,
    pub create_bucket: bool,
    /// Most bytes of parts held in memory by all uploads together (`--s3-max-buffer`).
    pub max_buffer: u64,
}

/// An upload's backend state, stored in its `.info` under `TusgateBackend`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct S3State {
    part_size: u64,
    /// The object this upload completes into (relative to the bucket).
    object: String,
    #[serde(default)]
    multipart_id: Option<String>,
    #[serde(default)]
    parts: Vec<Part>,
    #[serde(default)]
    tail: Option<Tail>,
    #[serde(default)]
    next_generation: u64,
    /// The object holds every byte (single PUT done or multipart completed), or a newer
    /// upload's object took its place (the multipart upload was aborted): nothing is left to
    /// write either way.
    #[serde(default)]
    object_written: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Part {
    size: u64,
    /// object_store's `PartId::content_id` (the ETag), kept exactly as returned.
    content_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Tail {
    generation: u64,
    size: u64,
}

impl S3State {
    fn object_path(&self) -> Result<Path> {
        Path::parse(&self.object).map_err(|e| StorageError::Corrupt(e.to_string()))
    }

    fn stored(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum::<u64>() + self.tail.map_or(0, |t| t.size)
    }
}

/// Uploads and published assets in an S3-compatible bucket.
#[derive(Debug)]
pub struct S3Store {
    s3: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
    part_size: u64,
    /// Bounds the bytes of parts in memory, across all uploads.
    budget: Budget,
    /// The state read by the last `info` of each upload. Every request reads `info` under the
    /// upload's lock before changing anything, so this is current for the request that holds
    /// the lock; entries go when an upload completes or is terminated.
    states: Mutex<HashMap<UploadId, S3State>>,
}

impl S3Store {
    /// Connects, creates the bucket if asked to, and checks that the bucket can be listed so
    /// bad credentials or a missing bucket fail at startup with a clear message.
    pub async fn connect(config: &S3Config) -> Result<Self, String> {
        let s3 = build(config, true)?;
        let store = S3Store {
            s3: Arc::new(s3),
            bucket: config.bucket.clone(),
            prefix: config.prefix.trim_matches('/').to_owned(),
            part_size: config.part_size.max(MIN_PART_SIZE),
            budget: Budget::new(config.max_buffer),
            states: Mutex::new(HashMap::new()),
        };
        if config.create_bucket {
            create_bucket(config).await?;
        }
        // A short-retry client, so a wrong endpoint fails in seconds rather than minutes.
        let probe = build(config, false)?;
        let prefix = store.prefix_path();
        let listing =
            tokio::time::timeout(REQUEST_DEADLINE, probe.list_with_delimiter(prefix.as_ref()));
        let listing = listing.await.map_err(|_| {
            format!(
                "bucket {:?}: no answer within {REQUEST_DEADLINE:?}",
                config.bucket
            )
        })?;
        match listing {
            Ok(_) => Ok(store),
            Err(object_store::Error::NotFound { .. }) => Err(format!(
                "bucket {:?} does not exist; create it, or set STORAGE_CREATE_BUCKET=true",
                config.bucket
            )),
            Err(
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. },
            ) => Err(format!(
                "the S3 credentials were rejected for bucket {:?}; check STORAGE_ACCESS_KEY and STORAGE_SECRET_KEY",
                config.bucket
            )),
            Err(e) => Err(format!("cannot reach bucket {:?}: {e}", config.bucket)),
        }
    }

    fn prefix_path(&self) -> Option<Path> {
        (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()))
    }

    /// A key under the prefix, parsed (never percent-encoded: `Path::from` would mangle keys).
    fn key(&self, relative: &str) -> Result<Path> {
        let full = if self.prefix.is_empty() {
            relative.to_owned()
        } else {
            format!("{}/{relative}", self.prefix)
        };
        Path::parse(full).map_err(|e| StorageError::Corrupt(format!("invalid object key: {e}")))
    }

    fn info_key(&self, id: &UploadId) -> Result<Path> {
        self.key(&format!("{id}.info"))
    }

    fn tail_key(&self, id: &UploadId, generation: u64) -> Result<Path> {
        self.key(&format!("{id}.part.{generation}"))
    }

    fn cached(&self, id: &UploadId) -> Option<S3State> {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    fn remember(&self, id: &UploadId, state: Option<S3State>) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        match state {
            Some(state) => states.insert(id.clone(), state),
            None => states.remove(id),
        };
    }

    /// The backend state of `info`, from the cache or the bucket.
    async fn state(&self, info: &UploadInfo) -> Result<S3State> {
        match self.cached(&info.id) {
            Some(state) => Ok(state),
            None => self.load(&info.id).await.map(|(_, state)| state),
        }
    }

    async fn load(&self, id: &UploadId) -> Result<(UploadInfo, S3State)> {
        let key = self.info_key(id)?;
        let (modified, bytes) = bounded(0, async {
            let result = self.s3.get(&key).await?;
            let modified: SystemTime = result.meta.last_modified.into();
            Ok((modified, result.bytes().await?))
        })
        .await?;
        let (mut info, backend) =
            tusd_info::decode_with_backend(&bytes).map_err(StorageError::Corrupt)?;
        let state: S3State = backend
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| StorageError::Corrupt(e.to_string()))?
            .ok_or_else(|| StorageError::Corrupt(format!("{id}.info has no S3 state")))?;
        info.offset = if state.object_written {
            info.length.unwrap_or(0)
        } else {
            state.stored()
        };
        info.updated = Some(modified);
        self.remember(id, Some(state.clone()));
        Ok((info, state))
    }

    /// Commits: writes the state object. Everything it refers to must already be stored.
    async fn save(&self, info: &UploadInfo, state: &S3State) -> Result<()> {
        let storage = BTreeMap::from([
            ("Type".to_owned(), "s3store".to_owned()),
            ("Bucket".to_owned(), self.bucket.clone()),
            ("Key".to_owned(), state.object.clone()),
        ]);
        let backend =
            serde_json::to_value(state).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        let bytes = tusd_info::encode_with_backend(info, storage, Some(backend));
        let key = self.info_key(&info.id)?;
        bounded(0, self.s3.put(&key, PutPayload::from(bytes))).await?;
        self.remember(&info.id, Some(state.clone()));
        Ok(())
    }

    /// The tail bytes of `id`, checked against the size the state recorded.
    async fn read_tail(&self, id: &UploadId, tail: Tail) -> Result<Bytes> {
        let key = self.tail_key(id, tail.generation)?;
        let bytes = bounded(tail.size, async { self.s3.get(&key).await?.bytes().await }).await?;
        if bytes.len() as u64 != tail.size {
            return Err(StorageError::Corrupt(format!(
                "{key} has {} bytes, the state says {}",
                bytes.len(),
                tail.size
            )));
        }
        Ok(bytes)
    }

    async fn delete_quietly(&self, path: Path) {
        match bounded(0, self.s3.delete(&path)).await {
            Ok(()) | Err(StorageError::NotFound) => {}
            Err(e) => tracing::warn!(%path, error = %e, "cannot delete object"),
        }
    }

    fn attributes(info: &UploadInfo) -> Attributes {
        let mut attributes = Attributes::new();
        if let Some(target) = &info.target {
            attributes.insert(Attribute::ContentType, target.content_type.clone().into());
        }
        attributes
    }

    /// Streams `source` into the upload: whole parts go to the multipart upload (created on the
    /// first one), the remainder becomes the new tail or, when the upload is now complete and
    /// no multipart upload exists, the object itself in one PUT. Returns the new state and the
    /// bytes taken from `source`; nothing is committed here.
    async fn write(
        &self,
        info: &UploadInfo,
        mut state: S3State,
        source: &mut (dyn ByteSource + '_),
    ) -> Result<(S3State, u64)> {
        let object = state.object_path()?;
        let mut buffer = PartBuffer::default();
        // Budget: the first part's bytes, the tail included, are reserved before any is read.
        let tail_len = state.tail.map_or(0, |t| t.size);
        let mut permit = self.budget.reserve(state.part_size, tail_len, source).await;
        if let Some(tail) = state.tail {
            buffer.push(self.read_tail(&info.id, tail).await?);
        }
        let already = state.stored();
        let mut received = 0u64;
        let mut in_flight: Vec<(u64, JoinHandle<Result<PartId>>)> = Vec::new();
        while let Some(chunk) = next_chunk(source).await {
            received += chunk.len() as u64;
            buffer.push(chunk);
            while buffer.len() >= state.part_size {
                let payload = buffer.take(state.part_size);
                let multipart_id = match &state.multipart_id {
                    Some(id) => id.clone(),
                    None => {
                        let opts = PutMultipartOptions {
                            attributes: Self::attributes(info),
                            ..Default::default()
                        };
                        let id = self.s3.create_multipart_opts(&object, opts);
                        let id = bounded(0, id).await?;
                        state.multipart_id = Some(id.clone());
                        id
                    }
                };
                if in_flight.len() >= PARTS_IN_FLIGHT {
                    let (size, job) = in_flight.remove(0);
                    state.parts.push(finish_part(size, job).await?);
                }
                let index = state.parts.len() + in_flight.len();
                let (s3, object, size) = (
                    Arc::clone(&self.s3),
                    object.clone(),
                    payload.content_length() as u64,
                );
                // Budget: the part's permit goes with it, released when its upload ends; the
                // next part is reserved only after that, before its bytes are read.
                let held = permit.take();
                let job = tokio::spawn(async move {
                    let _held = held;
                    bounded(size, s3.put_part(&object, &multipart_id, index, payload)).await
                });
                in_flight.push((size, job));
                permit = self
                    .budget
                    .reserve(state.part_size, buffer.len(), source)
                    .await;
            }
        }
        for (size, job) in in_flight {
            state.parts.push(finish_part(size, job).await?);
        }
        if !source.accept() {
            return Ok((self.cached(&info.id).unwrap_or(state), 0));
        }
        let total = already + received;
        let complete = info.length == Some(total);
        let rest = buffer.take(buffer.len());
        let rest_len = rest.content_length() as u64;
        state.tail = None;
        if complete && state.multipart_id.is_none() {
            // Everything fits in one part: a single PUT publishes it.
            let opts = PutOptions {
                attributes: Self::attributes(info),
                ..Default::default()
            };
            bounded(rest_len, self.s3.put_opts(&object, rest, opts)).await?;
            state.object_written = true;
        } else if complete && rest_len > 0 {
            // The last part may be smaller than the others (R2 requires ≤).
            let id = state.multipart_id.clone().unwrap_or_default();
            let part = self.s3.put_part(&object, &id, state.parts.len(), rest);
            let part = bounded(rest_len, part).await?;
            state.parts.push(Part {
                size: rest_len,
                content_id: part.content_id,
            });
        } else if rest_len > 0 {
            let generation = state.next_generation;
            let key = self.tail_key(&info.id, generation)?;
            bounded(rest_len, self.s3.put(&key, rest)).await?;
            state.tail = Some(Tail {
                generation,
                size: rest_len,
            });
            state.next_generation += 1;
        }
        Ok((state, received))
    }
}

async fn finish_part(size: u64, job: JoinHandle<Result<PartId>>) -> Result<Part> {
    let part = job
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))??;
    Ok(Part {
        size,
        content_id: part.content_id,
    })
}

#[async_trait]
impl Store for S3Store {
    async fn create(&self, info: &UploadInfo) -> Result<()> {
        let object = match &info.target {
            Some(target) => target.path.clone(),
            None => info.id.to_string(),
        };
        let object = self.key(&object)?.to_string();
        // Fixed for the upload's life; raised so that 10,000 parts hold the declared length.
        let needed = info.length.map_or(0, |len| len.div_ceil(MAX_PARTS));
        let part_size = self.part_size.max(needed.next_multiple_of(1 << 20));
        let state = S3State {
            part_size,
            object,
            ..S3State::default()
        };
        self.save(info, &state).await
    }

    async fn info(&self, id: &UploadId) -> Result<UploadInfo> {
        self.load(id).await.map(|(info, _)| info)
    }

    async fn append(&self, info: &UploadInfo, source: &mut (dyn ByteSource + '_)) -> Result<u64> {
        let state = self.state(info).await?;
        if state.object_written {
            return Ok(0);
        }
        let old_tail = state.tail;
        let (state, received) = self.write(info, state, source).await?;
        if received == 0 && old_tail == state.tail {
            return Ok(0);
        }
        self.save(info, &state).await?;
        if let Some(old) = old_tail.filter(|old| Some(*old) != state.tail) {
            self.delete_quietly(self.tail_key(&info.id, old.generation)?)
                .await;
        }
        Ok(received)
    }

    async fn save_info(&self, info: &UploadInfo) -> Result<()> {
        let state = self.state(info).await?;
        self.save(info, &state).await
    }

    async fn concatenate(&self, info: &UploadInfo, partials: &[UploadInfo]) -> Result<()> {
        // Correct first: the partials' bytes are read back and written as the final upload's
        // parts. That costs one download and one upload of every byte; UploadPartCopy would
        // avoid it but object_store does not offer it.
        let mut paths = Vec::new();
        for partial in partials {
            let state = self.load(&partial.id).await?.1;
            if !state.object_written {
                return Err(StorageError::Corrupt(format!(
                    "partial upload {} has no object",
                    partial.id
                )));
            }
            paths.push(state.object_path()?);
        }
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        let failed = Arc::new(Mutex::new(None));
        let reader = {
            let (s3, failed) = (Arc::clone(&self.s3), Arc::clone(&failed));
            tokio::spawn(async move {
                for path in paths {
                    let mut stream = match s3.get(&path).await {
                        Ok(result) => result.into_stream(),
                        Err(e) => {
                            *failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                            return;
                        }
                    };
                    while let Some(chunk) = stream.next().await {
                        match chunk {
                            Ok(bytes) => {
                                if sender.send(bytes).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                *failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                                return;
                            }
                        }
                    }
                }
            })
        };
        let mut source = ChannelSource(receiver);
        let mut target = info.clone();
        target.offset = 0;
        let stored = self.append(&target, &mut source).await;
        let _ = reader.await;
        if let Some(e) = failed.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Err(storage_error(e));
        }
        stored.map(drop)
    }

    async fn complete(&self, info: &mut UploadInfo) -> Result<()> {
        let mut state = self.state(info).await?;
        if !state.object_written {
            let object = state.object_path()?;
            match state.multipart_id.clone() {
                Some(id) if info.target.is_some() && self.superseded(info, &object).await? => {
                    // A newer upload of the key is already there: ours is dropped, not
                    // published over it (recovery long after a crash must not go back in time).
                    match bounded(0, self.s3.abort_multipart(&object, &id)).await {
                        Ok(()) | Err(StorageError::NotFound) => {}
                        Err(e) => return Err(e),
                    }
                    tracing::info!(
                        id = %info.id,
                        "a newer upload of this key is already published; this older one is not"
                    );
                }
                Some(id) => {
                    let parts = state
                        .parts
                        .iter()
                        .map(|p| PartId {
                            content_id: p.content_id.clone(),
                        })
                        .collect();
                    let completion = self.s3.complete_multipart(&object, &id, parts);
                    if let Err(e) = bounded(info.length.unwrap_or(0), completion).await {
                        // Completed before a crash, or the response was lost: the object is
                        // there with the right size, or this is a real failure.
                        let done = bounded(0, self.s3.head(&object))
                            .await
                            .is_ok_and(|meta| Some(meta.size) == info.length);
                        if !done {
                            return Err(e);
                        }
                    }
                }
                None => {
                    // All bytes are in the tail (or there are none): one PUT.
                    let data = match state.tail {
                        Some(tail) => self.read_tail(&info.id, tail).await?,
                        None => Bytes::new(),
                    };
                    let opts = PutOptions {
                        attributes: Self::attributes(info),
                        ..Default::default()
                    };
                    let len = data.len() as u64;
                    bounded(len, self.s3.put_opts(&object, PutPayload::from(data), opts)).await?;
                }
            }
            state.object_written = true;
        }
        let tail = state.tail.take();
        if info.target.is_some() {
            info.phase = Phase::Published;
        }
        self.save(info, &state).await?;
        if let Some(tail) = tail {
            self.delete_quietly(self.tail_key(&info.id, tail.generation)?)
                .await;
        }
        self.remember(&info.id, None);
        Ok(())
    }

    async fn terminate(&self, info: &UploadInfo) -> Result<()> {
        let state = self.state(info).await?;
        let object = state.object_path()?;
        if let (Some(id), false) = (&state.multipart_id, state.object_written) {
            match bounded(0, self.s3.abort_multipart(&object, id)).await {
                Ok(()) | Err(StorageError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(tail) = state.tail {
            self.delete_quietly(self.tail_key(&info.id, tail.generation)?)
                .await;
        }
        // A published asset belongs to the application; a tokenless upload's object is the
        // upload itself and goes with it (as in tusd's s3store).
        if info.target.is_none() && state.object_written {
            self.delete_quietly(object).await;
        }
        self.delete_quietly(self.info_key(&info.id)?).await;
        self.remember(&info.id, None);
        Ok(())
    }

    async fn read(&self, info: &UploadInfo) -> Result<ReadObject> {
        let state = self.state(info).await?;
        if !state.object_written {
            return Err(StorageError::Incomplete);
        }
        let object = state.object_path()?;
        self.open(object).await
    }

    async fn list(&self) -> Result<Vec<UploadId>> {
        let prefix = self.prefix_path();
        let listing = bounded(0, self.s3.list_with_delimiter(prefix.as_ref())).await?;
        Ok(listing
            .objects
            .iter()
            .filter_map(|meta| {
                meta.location
                    .filename()?
                    .strip_suffix(".info")
                    .and_then(UploadId::parse)
            })
            .collect())
    }

    async fn open_asset(&self, path: &[u8]) -> Result<ReadObject> {
        let path = std::str::from_utf8(path).map_err(|_| StorageError::NotFound)?;
        let object = self.key(path).map_err(|_| StorageError::NotFound)?;
        self.open(object).await
    }
}

impl S3Store {
    /// Whether the object at `object` was published after this upload's last byte was
    /// committed: the bucket's clock on both sides (the state object's and the object's
    /// `Last-Modified`), so the instances' clocks do not matter. Only multipart uploads can be
    /// left complete and unpublished (a single-PUT upload's object is written as its last
    /// byte is committed), so only they ask. `Last-Modified` has whole seconds: within one
    /// second, and for two uploads of one key completing within one publish of each other, the
    /// later publish wins.
    async fn superseded(&self, info: &UploadInfo, object: &Path) -> Result<bool> {
        let committed = bounded(0, self.s3.head(&self.info_key(&info.id)?)).await?;
        match bounded(0, self.s3.head(object)).await {
            Ok(existing) => Ok(existing.last_modified > committed.last_modified),
            Err(StorageError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn open(&self, object: Path) -> Result<ReadObject> {
        let meta = bounded(0, self.s3.head(&object)).await?;
        Ok(ReadObject {
            len: meta.size,
            modified: Some(meta.last_modified.into()),
            reader: Arc::new(S3Object {
                s3: Arc::clone(&self.s3),
                path: object,
                e_tag: meta.e_tag,
            }),
        })
    }
}

/// Bytes queued for the next part.
#[derive(Default)]
struct PartBuffer {
    chunks: VecDeque<Bytes>,
    len: u64,
}

impl PartBuffer {
    fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len() as u64;
        self.chunks.push_back(chunk);
    }

    fn len(&self) -> u64 {
        self.len
    }

    /// The first `n` bytes as a payload, without copying them.
    fn take(&mut self, n: u64) -> PutPayload {
        let mut taken = Vec::new();
        let mut missing = n;
        while missing > 0 {
            let Some(mut chunk) = self.chunks.pop_front() else {
                break;
            };
            if chunk.len() as u64 > missing {
                let rest = chunk.split_off(missing as usize);
                self.chunks.push_front(rest);
            }
            missing -= chunk.len() as u64;
            taken.push(chunk);
        }
        self.len -= n;
        taken.into_iter().collect()
    }
}

/// A byte source fed through a channel (the partials of a concatenation).
struct ChannelSource(tokio::sync::mpsc::Receiver<Bytes>);

impl ByteSource for ChannelSource {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.0.poll_recv(cx)
    }
}

/// An opened object; each range is one ranged GET, pinned to the ETag seen when it was opened
/// so a concurrent overwrite cannot mix two versions into one response.
struct S3Object {
    s3: Arc<AmazonS3>,
    path: Path,
    e_tag: Option<String>,
}

impl Readable for S3Object {
    fn stream(&self, range: Range<u64>) -> Box<dyn ByteStream> {
        let (s3, path) = (Arc::clone(&self.s3), self.path.clone());
        let options = GetOptions {
            range: (range.end > range.start).then(|| GetRange::Bounded(range.clone())),
            if_match: self.e_tag.clone(),
            ..GetOptions::default()
        };
        let empty = range.end <= range.start;
        let opened = async move {
            if empty {
                return Ok(futures::stream::empty().boxed());
            }
            Ok(s3.get_opts(&path, options).await?.into_stream())
        };
        Box::new(ObjectStream::Opening(Box::pin(opened)))
    }
}

type Opening = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = object_store::Result<BoxStream<'static, object_store::Result<Bytes>>>,
            > + Send,
    >,
>;

enum ObjectStream {
    Opening(Opening),
    Streaming(BoxStream<'static, object_store::Result<Bytes>>),
}

impl ByteStream for ObjectStream {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>> {
        loop {
            match self {
                ObjectStream::Opening(future) => match future.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(stream)) => *self = ObjectStream::Streaming(stream),
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(std::io::Error::other(e)))),
                },
                ObjectStream::Streaming(stream) => {
                    return stream
                        .poll_next_unpin(cx)
                        .map(|item| item.map(|r| r.map_err(std::io::Error::other)));
                }
            }
        }
    }
}

/// Every request on the upload path gets at least this long…
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// …plus the time to move its bytes at this rate (bytes per second).
const SLOWEST_RATE: u64 = 1 << 20;

/// Bounds one S3 request, retries included. object_store's retry budget only decides whether
/// to start another attempt, never cancels a hanging one, so without this a PATCH waiting on a
/// frozen S3 would wait for the client's total timeout. A PATCH that times out answers 500
/// (retryable) and nothing it did is committed.
async fn bounded<T>(
    bytes: u64,
    request: impl std::future::Future<Output = object_store::Result<T>>,
) -> Result<T> {
    let deadline = REQUEST_DEADLINE.max(Duration::from_secs(bytes / SLOWEST_RATE));
    match tokio::time::timeout(deadline, request).await {
        Ok(result) => result.map_err(storage_error),
        Err(_) => Err(StorageError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("S3 request did not finish within {deadline:?}"),
        ))),
    }
}

fn storage_error(e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::NotFound { .. } => StorageError::NotFound,
        object_store::Error::AlreadyExists { .. } => StorageError::AlreadyExists,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => StorageError::PermissionDenied,
        other => StorageError::Io(std::io::Error::other(other)),
    }
}

fn build(config: &S3Config, patient: bool) -> Result<AmazonS3, String> {
    // Client options first: `with_client_options` replaces them wholesale, `allow_http` too.
    // No total timeout: a long download must not be cut. Requests on the upload path carry
    // their own deadline instead (see `bounded`).
    let mut client = ClientOptions::new()
        .with_timeout_disabled()
        .with_connect_timeout(Duration::from_secs(10));
    if !config.verify_ssl {
        client = client.with_allow_invalid_certificates(true);
    }
    let retry = RetryConfig {
        max_retries: if patient { 5 } else { 1 },
        // When to stop starting new attempts; a hanging attempt is cut by `bounded`.
        retry_timeout: Duration::from_secs(if patient { 30 } else { 5 }),
        ..RetryConfig::default()
    };
    let mut builder = AmazonS3Builder::new()
        .with_client_options(client)
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_retry(retry)
        // GCS has no DeleteObjects, and B2 rejects its checksum header.
        .with_disable_bulk_delete(true);
    match (&config.access_key, &config.secret_key) {
        (Some(key), Some(secret)) => {
            let secret = String::from_utf8(secret.expose().to_vec())
                .map_err(|_| "STORAGE_SECRET_KEY must be UTF-8")?;
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        // Without keys the AWS SDK chain would probe instance metadata: slow and confusing off AWS.
        _ => return Err("set STORAGE_ACCESS_KEY and STORAGE_SECRET_KEY for the S3 backend".into()),
    }
    match &config.endpoint {
        Some(endpoint) => {
            let endpoint = if endpoint.contains("://") {
                endpoint.clone()
            } else {
                format!(
                    "{}://{endpoint}",
                    if config.use_ssl { "https" } else { "http" }
                )
            };
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        None => builder = builder.with_virtual_hosted_style_request(true),
    }
    builder
        .build()
        .map_err(|e| format!("invalid S3 configuration: {e}"))
}

/// CreateBucket through a presigned request (object_store has no bucket API). An existing
/// bucket is fine.
async fn create_bucket(config: &S3Config) -> Result<(), String> {
    use object_store::signer::Signer;
    let s3 = build(config, false)?;
    let url = s3
        .signed_url(http::Method::PUT, &Path::from(""), Duration::from_secs(60))
        .await
        .map_err(|e| format!("cannot sign the bucket creation: {e}"))?;
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(!config.verify_ssl)
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .put(url)
        .header("content-length", "0")
        .body(Vec::new())
        .send()
        .await
        .map_err(|e| format!("cannot create bucket {:?}: {e}", config.bucket))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success()
        || body.contains("BucketAlreadyOwnedByYou")
        || body.contains("BucketAlreadyExists")
    {
        Ok(())
    } else {
        Err(format!(
            "cannot create bucket {:?}: {status} {}",
            config.bucket,
            body.chars().take(200).collect::<String>()
        ))
    }
}
