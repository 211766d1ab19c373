//! S3-compatible storage (AWS S3, Cloudflare R2, Backblaze B2, GCS interop, MinIO, SeaweedFS),
//! through object_store's low-level `MultipartStore`, the only multipart API whose upload id
//! and part ids can be persisted and resumed by another process.
//!
//! Layout in the bucket, under the object prefix `P` (`--s3-object-prefix`, may be empty):
//! - `P/<id>.info`: the upload's state — tusd's FileInfo JSON plus, under `TusgateBackend`, the
//!   part size, the multipart upload id, the parts (number, size and ETag), the tail, and the
//!   ownership epoch. It is the **commit point**: it is rewritten after a PATCH's bytes are
//!   safely in the bucket and before the PATCH is answered, so every acknowledged byte survives
//!   a crash at any step, and any instance sharing the bucket can continue the upload.
//! - `P/<id>.part.<generation>`: the tail, bytes that do not fill a part yet (tus chunks can be
//!   any size; S3 parts must be ≥ 5 MiB). Every PATCH that leaves a tail writes it under a
//!   generation of its own, so nobody ever overwrites bytes a state refers to.
//! - The object: `P/<visibility>/<key>` for tokened uploads — the multipart upload is created
//!   there, so completing it *is* the publish, with no copy and the token's Content-Type —, and
//!   `P/<id>` for uploads without a token (where tusd's s3store puts them). It carries
//!   `x-amz-meta-tusgate-upload: <id>`, so anyone can tell which upload wrote it.
//!
//! Part size is fixed per upload and recorded in its state (R2 rejects unequal parts, also
//! across restarts): `--s3-part-size`, raised for huge uploads so that half of S3's 10,000 part
//! numbers hold the declared length (the other half absorbs numbers reserved by PATCHes that
//! broke off). Memory per PATCH is bounded by part size × (parts in flight + 1), and that of all
//! PATCHes together by `--s3-max-buffer` (the [`Budget`]: a part's bytes are reserved before it
//! is filled and released when S3 has it; see `budget.rs`). No temporary files. The object is written only after the last byte is committed: in one PUT if the upload
//! never filled a part, otherwise by completing the multipart upload. No checksum headers (B2
//! rejects them) and no bulk delete (GCS lacks it). Request bodies are covered by the SigV4
//! signature over plain http and not over https ([`PayloadSigning`], `--s3-payload-signing`).
//!
//! # Several instances on one bucket
//!
//! Any number of instances may share a bucket, with no sticky sessions and no lock service: the
//! bucket's conditional writes are the lock. Why no interleaving of two instances can publish a
//! wrong byte or lose an acknowledged one:
//!
//! 1. **Every state write is a compare-and-swap.** `.info` is created with `If-None-Match: *`
//!    and rewritten only with `If-Match: <the ETag this request last read or wrote>`. A request
//!    that loses one has been overtaken: it stops at once with [`StorageError::TakenOver`]
//!    (answered as a lock hand-over is) and commits nothing more.
//! 2. **Every append begins with a claim**: a CAS that bumps the ownership `epoch` and reserves
//!    a tail generation and a range of part numbers for this request alone. So a PATCH at
//!    instance B for an upload whose PATCH still streams into A changes the state's ETag; A
//!    looks every [`WATCH_EVERY`] while it streams and stops (tusd's interrupt, across
//!    machines), and if A is frozen and cannot look, its next CAS fails all the same.
//! 3. **What an owner writes before its commit is its own.** Part numbers are reserved by CAS
//!    before use and the counter only grows, so no number is ever handed out twice; tails are
//!    named by their reserved generation; a new multipart upload id is committed right after it
//!    is created. A stale owner's late `UploadPart` lands on a number no state lists and no
//!    other owner will use (this matters: SeaweedFS keeps the first copy of a part number and
//!    does not check ETags at completion, so a reused number could publish wrong bytes), its
//!    late tail is an object nobody refers to, and it deletes that tail when its CAS fails.
//! 4. **Bytes are acknowledged only through a commit**, the CAS that lists them. Each CAS is
//!    made against the state before it, and states only add parts, so every later state lists
//!    every acknowledged byte, and never a byte of a stale owner.
//! 5. **The object is written from committed state only, after the commit of the last byte**,
//!    and conditionally: a single PUT with `If-None-Match: *`, or `If-Match` the ETag seen just
//!    before; a multipart completion, which consumes its upload id (a second one fails). Before
//!    writing, a completer looks at the object: carrying this upload's id, it is published
//!    already (a concurrent completer, or one before a crash) and is not written again. So
//!    whatever completes at once — the request, a recovery on another instance, a frozen one
//!    waking up — the object is written at most once, always with the committed bytes.
//! 6. **One completer counts the upload as finished**: the one whose final CAS
//!    (`object_written`) succeeds; the others re-read the state, find it written and report
//!    [`Completion::AlreadyFinished`].
//! 7. `--overwrite keep` writes the object with `If-None-Match: *`, on the PUT and on the
//!    completion (signed here: object_store has no conditional completion), so an existing
//!    asset is never replaced, not even by two uploads of one key finishing at once.
//!
//! A bucket without conditional writes (Backblaze B2) cannot fence: [`S3Store::connect`] probes
//! for them and refuses such a bucket unless `--s3-single-instance` says that one instance
//! alone uses it; then writes are unconditional, as before.
//!
//! Permissions needed: GetObject, PutObject, DeleteObject, ListBucket, AbortMultipartUpload
//! (and CreateBucket with `STORAGE_CREATE_BUCKET`). Configure a lifecycle rule that aborts
//! incomplete multipart uploads after a few days: object_store cannot list orphaned ones, and a
//! process killed between creating a multipart upload (or a tail) and committing it leaves one.

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
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, RetryConfig, UpdateVersion,
};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::budget::Budget;
use super::{
    ByteSource, ByteStream, Completion, Overwrite, ReadObject, Readable, Result, StorageError,
    Store, next_chunk, tusd_info,
};
use crate::tokens::Secret;
use crate::upload::{Phase, UploadId, UploadInfo};

/// S3 allows at most this many parts per upload.
const MAX_PARTS: usize = 10_000;
/// Smallest part S3 accepts (except the last).
const MIN_PART_SIZE: u64 = 5 << 20;
/// Parts uploaded concurrently per PATCH while the next one is being received.
const PARTS_IN_FLIGHT: usize = 2;
/// Part numbers reserved per claim at most; a PATCH needing more reserves again as it goes.
/// A PATCH that breaks off wastes what it reserved and did not use, so this is small.
const RESERVE_AT_MOST: usize = 16;
/// How often a streaming PATCH checks whether another instance took its upload over.
pub const WATCH_EVERY: Duration = Duration::from_millis(500);
/// The user metadata naming the upload that wrote an object.
const UPLOAD_METADATA: &str = "tusgate-upload";

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
    /// What publishing does when the asset exists.
    pub overwrite: Overwrite,
    /// Only this instance uses the bucket: no conditional writes (for buckets without them).
    pub single_instance: bool,
    /// Most bytes of parts held in memory by all uploads together (`--s3-max-buffer`).
    pub max_buffer: u64,
    /// Whether request signatures cover the body (`--s3-payload-signing`).
    pub payload_signing: PayloadSigning,
}

/// Whether a request's SigV4 signature covers its body (`x-amz-content-sha256`), and so lets a
/// store that checks it refuse bytes changed on the way. Signing costs a SHA-256 of every part
/// here; over https, TLS already protects the body, and AWS's SDKs send `UNSIGNED-PAYLOAD`
/// there. Requests sent as presigned URLs (the multipart completion, bucket creation) are
/// never payload-signed: presigned URLs cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PayloadSigning {
    /// Signed over plain http (the signature is the only integrity check on the way), unsigned
    /// over https.
    #[default]
    Auto,
    /// Always signed.
    On,
    /// Never signed (`UNSIGNED-PAYLOAD`).
    Off,
}

impl PayloadSigning {
    /// Whether bodies sent to an endpoint reached over https (`tls`) or plain http are signed.
    pub fn signs(self, tls: bool) -> bool {
        match self {
            PayloadSigning::Auto => !tls,
            PayloadSigning::On => true,
            PayloadSigning::Off => false,
        }
    }
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
    /// The next tail generation nobody has reserved.
    #[serde(default)]
    next_generation: u64,
    /// The next part index (part number − 1) nobody has reserved.
    #[serde(default)]
    next_part: usize,
    /// Bumped by every claim: the request that made the last one owns the upload.
    #[serde(default)]
    epoch: u64,
    /// The object holds every byte (single PUT done or multipart completed), or a newer
    /// upload's object took its place (the multipart upload was aborted): nothing is left to
    /// write either way.
    #[serde(default)]
    object_written: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Part {
    /// object_store's part index (the S3 part number − 1). Absent in states written before
    /// parts were numbered by reservation, where it is the position.
    #[serde(default)]
    index: Option<usize>,
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

    /// Numbers the parts of states written before reservations, by position.
    fn normalize(&mut self) {
        for (position, part) in self.parts.iter_mut().enumerate() {
            part.index.get_or_insert(position);
        }
        let used = self.parts.iter().filter_map(|p| p.index).max();
        self.next_part = self.next_part.max(used.map_or(0, |i| i + 1));
    }
}

/// What this process last saw of an upload's state object.
#[derive(Debug, Clone)]
struct Known {
    state: S3State,
    /// The state object's ETag when it was read or written (`None` without conditional writes).
    etag: Option<String>,
    /// A claim this process already holds: set by `create`, which is a claim of its own (nobody
    /// else can know the id before the creation is answered).
    claimed: Option<Claim>,
    /// The committed tail's bytes when this process wrote them and the upload is complete, so
    /// the publish does not read them back.
    tail_bytes: Option<Bytes>,
}

/// What a claim reserved for one request.
#[derive(Debug, Clone)]
struct Claim {
    generation: u64,
    parts: Range<usize>,
}

/// A claimed upload during one append: the committed state as the bucket has it under `etag`.
struct Lease {
    committed: S3State,
    etag: Option<String>,
    claim: Claim,
}

/// Uploads and published assets in an S3-compatible bucket.
#[derive(Debug)]
pub struct S3Store {
    s3: Arc<AmazonS3>,
    /// For the requests object_store cannot make (a conditional, sparse completion).
    http: reqwest::Client,
    bucket: String,
    prefix: String,
    part_size: u64,
    overwrite: Overwrite,
    /// Conditional writes fence other instances (off with `--s3-single-instance`).
    fenced: bool,
    /// Bounds the bytes of parts in memory, across all uploads.
    budget: Budget,
    /// The state read by the last `info` of each upload. Every request reads `info` under the
    /// upload's lock before changing anything, so this is current for the request that holds
    /// the lock; entries go when an upload completes or is terminated.
    known: Mutex<HashMap<UploadId, Known>>,
}

impl S3Store {
    /// Connects, creates the bucket if asked to, and checks that the bucket can be listed and
    /// honours conditional writes, so bad credentials, a missing bucket or a bucket that cannot
    /// fence instances fail at startup with a clear message.
    pub async fn connect(config: &S3Config) -> Result<Self, String> {
        let s3 = build(config, true)?;
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(!config.verify_ssl)
            .build()
            .map_err(|e| e.to_string())?;
        let store = S3Store {
            s3: Arc::new(s3),
            http,
            bucket: config.bucket.clone(),
            prefix: config.prefix.trim_matches('/').to_owned(),
            part_size: config.part_size.max(MIN_PART_SIZE),
            overwrite: config.overwrite,
            fenced: !config.single_instance,
            budget: Budget::new(config.max_buffer),
            known: Mutex::new(HashMap::new()),
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
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => {
                return Err(format!(
                    "bucket {:?} does not exist; create it, or set STORAGE_CREATE_BUCKET=true",
                    config.bucket
                ));
            }
            Err(
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. },
            ) => {
                return Err(format!(
                    "the S3 credentials were rejected for bucket {:?}; check STORAGE_ACCESS_KEY and STORAGE_SECRET_KEY",
                    config.bucket
                ));
            }
            Err(e) => return Err(format!("cannot reach bucket {:?}: {e}", config.bucket)),
        }
        if store.fenced {
            store.probe_conditional_writes(&probe).await?;
        }
        Ok(store)
    }

    /// Writes a probe object three times — create, create again, update with a wrong ETag —
    /// and insists that the last two are refused: instances sharing the bucket rely on it.
    async fn probe_conditional_writes(&self, probe: &AmazonS3) -> Result<(), String> {
        let key = self
            .key(&format!(".tusgate-probe-{}", UploadId::generate()))
            .map_err(|e| e.to_string())?;
        let put = |mode: PutMode| {
            let opts = PutOptions {
                mode,
                ..PutOptions::default()
            };
            probe.put_opts(&key, PutPayload::from_static(b"probe"), opts)
        };
        let first = put(PutMode::Create).await;
        let again = put(PutMode::Create).await;
        let stale = put(PutMode::Update(UpdateVersion {
            e_tag: Some("\"0123456789abcdef0123456789abcdef\"".into()),
            version: None,
        }))
        .await;
        let _ = probe.delete(&key).await;
        let first = first.map_err(|e| format!("cannot write to bucket {:?}: {e}", self.bucket))?;
        drop(first);
        let honoured = matches!(again, Err(object_store::Error::AlreadyExists { .. }))
            && matches!(stale, Err(object_store::Error::Precondition { .. }));
        if honoured {
            Ok(())
        } else {
            Err(format!(
                "bucket {:?} does not honour conditional writes (If-None-Match / If-Match), so \
                 instances sharing it cannot be kept from overwriting each other's uploads \
                 (Backblaze B2 lacks them). If exactly one tusgate uses this bucket, pass \
                 --s3-single-instance",
                self.bucket
            ))
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

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<UploadId, Known>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn forget(&self, id: &UploadId) {
        self.table().remove(id);
    }

    /// What is known of `info`'s state: from this process's last look, or from the bucket.
    async fn known(&self, info: &UploadInfo) -> Result<Known> {
        let cached = self.table().get(&info.id).cloned();
        match cached {
            Some(known) => Ok(known),
            None => self.load(&info.id).await.map(|(_, known)| known),
        }
    }

    async fn load(&self, id: &UploadId) -> Result<(UploadInfo, Known)> {
        let key = self.info_key(id)?;
        let (modified, etag, bytes) = bounded(0, async {
            let result = self.s3.get(&key).await?;
            let modified: SystemTime = result.meta.last_modified.into();
            let etag = result.meta.e_tag.clone();
            Ok((modified, etag, result.bytes().await?))
        })
        .await?;
        let (mut info, backend) =
            tusd_info::decode_with_backend(&bytes).map_err(StorageError::Corrupt)?;
        let mut state: S3State = backend
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| StorageError::Corrupt(e.to_string()))?
            .ok_or_else(|| StorageError::Corrupt(format!("{id}.info has no S3 state")))?;
        state.normalize();
        info.offset = if state.object_written {
            info.length.unwrap_or(0)
        } else {
            state.stored()
        };
        if info.target.is_none() && info.is_complete() && !state.object_written {
            // Complete, but the object a GET serves is not written yet (see `awaits_publish`).
            info.phase = Phase::Publishing;
        }
        info.updated = Some(modified);
        let known = Known {
            state,
            etag: etag.filter(|_| self.fenced),
            claimed: None,
            tail_bytes: None,
        };
        self.table().insert(id.clone(), known.clone());
        Ok((info, known))
    }

    /// Writes the state object: created if `etag` is `None` (fails with `AlreadyExists` if the
    /// id is taken), otherwise swapped for the version with that ETag (fails with `TakenOver`
    /// if it changed). Everything it refers to must already be stored. Returns the new ETag.
    async fn put_state(
        &self,
        info: &UploadInfo,
        state: &S3State,
        etag: Option<&str>,
    ) -> Result<Option<String>> {
        let storage = BTreeMap::from([
            ("Type".to_owned(), "s3store".to_owned()),
            ("Bucket".to_owned(), self.bucket.clone()),
            ("Key".to_owned(), state.object.clone()),
        ]);
        let backend =
            serde_json::to_value(state).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        // The phase S3 reports for a complete tokenless upload is derived, never stored; only
        // then is the upload copied (every PATCH writes state twice, metadata included).
        let info = if info.target.is_none() && info.phase != Phase::Receiving {
            std::borrow::Cow::Owned(UploadInfo {
                phase: Phase::Receiving,
                ..info.clone()
            })
        } else {
            std::borrow::Cow::Borrowed(info)
        };
        let bytes = tusd_info::encode_with_backend(&info, storage, Some(backend));
        let key = self.info_key(&info.id)?;
        let mode = match (self.fenced, etag) {
            (false, _) => PutMode::Overwrite,
            (true, None) => PutMode::Create,
            (true, Some(etag)) => PutMode::Update(UpdateVersion {
                e_tag: Some(etag.to_owned()),
                version: None,
            }),
        };
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let written = bounded(0, self.s3.put_opts(&key, PutPayload::from(bytes), opts)).await?;
        Ok(written.e_tag.filter(|_| self.fenced))
    }

    /// Records what this process now knows of an upload.
    fn remember(&self, id: &UploadId, state: S3State, etag: Option<String>) {
        self.table().insert(
            id.clone(),
            Known {
                state,
                etag,
                claimed: None,
                tail_bytes: None,
            },
        );
    }

    /// Takes the upload over for one append: a CAS that bumps the epoch and reserves a tail
    /// generation and up to `parts` part numbers (see the module doc).
    async fn claim(&self, info: &UploadInfo, known: &Known, parts: usize) -> Result<Lease> {
        let mut state = known.state.clone();
        state.epoch += 1;
        let generation = state.next_generation;
        state.next_generation += 1;
        let first = state.next_part;
        state.next_part = (first + parts).min(MAX_PARTS);
        let etag = self.put_state(info, &state, known.etag.as_deref()).await?;
        Ok(Lease {
            claim: Claim {
                generation,
                parts: first..state.next_part,
            },
            committed: state,
            etag,
        })
    }

    /// Claims for a request that has read no body yet. If another request claimed between this
    /// one's read of the state and its claim, this one is still the newer request, and the newest
    /// request for an upload wins (as with tusd's lock hand-over): it reads the state again and
    /// claims again, as long as the upload is still where the request found it (same offset and
    /// length; otherwise its `Upload-Offset` no longer holds and it must not write).
    async fn claim_newest(
        &self,
        info: &UploadInfo,
        mut known: Known,
        parts: usize,
    ) -> Result<Lease> {
        for _ in 0..3 {
            match self.claim(info, &known, parts).await {
                Err(StorageError::TakenOver) => {
                    let (now, again) = self.load(&info.id).await?;
                    let unchanged = now.offset == info.offset
                        && now.length == info.length
                        && !again.state.object_written;
                    if !unchanged {
                        return Err(StorageError::TakenOver);
                    }
                    known = again;
                }
                claimed => return claimed,
            }
        }
        Err(StorageError::TakenOver)
    }

    /// The next reserved part index, reserving more (one CAS, which also notices a takeover)
    /// when this request's numbers are used up.
    async fn next_part_index(&self, info: &UploadInfo, lease: &mut Lease) -> Result<usize> {
        if lease.claim.parts.is_empty() {
            let first = lease.committed.next_part;
            if first >= MAX_PARTS {
                return Err(StorageError::Io(std::io::Error::other(
                    "the upload has used all 10,000 S3 part numbers (too many interrupted PATCHes)",
                )));
            }
            let mut state = lease.committed.clone();
            state.next_part = (first + RESERVE_AT_MOST).min(MAX_PARTS);
            lease.etag = self.put_state(info, &state, lease.etag.as_deref()).await?;
            lease.claim.parts = first..state.next_part;
            lease.committed = state;
        }
        let index = lease.claim.parts.start;
        lease.claim.parts.start += 1;
        Ok(index)
    }

    /// Whether the state object no longer has the ETag `etag` (taken over, or terminated).
    async fn taken_over(&self, id: &UploadId, etag: &str) -> Result<bool> {
        match bounded(0, self.s3.head(&self.info_key(id)?)).await {
            Ok(meta) => Ok(meta.e_tag.as_deref() != Some(etag)),
            Err(StorageError::NotFound) => Ok(true),
            Err(e) => Err(e),
        }
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
        attributes.insert(
            Attribute::Metadata(UPLOAD_METADATA.into()),
            info.id.to_string().into(),
        );
        attributes
    }

    /// Creates the multipart upload and commits its id at once (a CAS), so that an owner that
    /// loses the upload afterwards cannot leave a second one behind unnoticed.
    async fn start_multipart(&self, info: &UploadInfo, lease: &mut Lease) -> Result<String> {
        let object = lease.committed.object_path()?;
        let opts = PutMultipartOptions {
            attributes: Self::attributes(info),
            ..Default::default()
        };
        let id = bounded(0, self.s3.create_multipart_opts(&object, opts)).await?;
        let mut state = lease.committed.clone();
        state.multipart_id = Some(id.clone());
        match self.put_state(info, &state, lease.etag.as_deref()).await {
            Ok(etag) => {
                lease.etag = etag;
                lease.committed = state;
                Ok(id)
            }
            Err(e) => {
                let _ = bounded(0, self.s3.abort_multipart(&object, &id)).await;
                Err(e)
            }
        }
    }

    /// Streams `source` into the upload under `lease`: whole parts go to the multipart upload
    /// (created on the first one), the remainder becomes the new tail or, when the upload is
    /// now complete and has parts, its last part. Returns the state to commit, the bytes taken
    /// from `source`, and the new tail's bytes. Nothing is committed here.
    async fn write(
        &self,
        info: &UploadInfo,
        lease: &mut Lease,
        source: &mut (dyn ByteSource + '_),
    ) -> Result<(S3State, u64, Option<Bytes>)> {
        let part_size = lease.committed.part_size;
        let object = lease.committed.object_path()?;
        let mut buffer = PartBuffer::default();
        // Budget: the first part's bytes, the old tail included, are reserved before any is
        // read.
        let tail = lease.committed.tail;
        let tail_len = tail.map_or(0, |t| t.size);
        let mut permit = self.budget.reserve(part_size, tail_len, source).await;
        if let Some(tail) = tail {
            buffer.push(self.read_tail(&info.id, tail).await?);
        }
        let already = lease.committed.stored();
        let mut received = 0u64;
        let mut parts: Vec<Part> = Vec::new();
        let mut in_flight: VecDeque<(usize, u64, JoinHandle<Result<PartId>>)> = VecDeque::new();
        let mut watch =
            tokio::time::interval_at(tokio::time::Instant::now() + WATCH_EVERY, WATCH_EVERY);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let chunk = tokio::select! {
                chunk = next_chunk(source) => chunk,
                _ = watch.tick(), if lease.etag.is_some() => {
                    // A look that fails (S3 briefly unreachable) proves nothing either way;
                    // the commit's CAS decides in the end.
                    let etag = lease.etag.as_deref().unwrap_or_default();
                    if self.taken_over(&info.id, etag).await.unwrap_or(false) {
                        return Err(StorageError::TakenOver);
                    }
                    continue;
                }
            };
            let Some(chunk) = chunk else { break };
            received += chunk.len() as u64;
            buffer.push(chunk);
            while buffer.len() >= part_size {
                let payload = buffer.take(part_size);
                let multipart_id = match lease.committed.multipart_id.clone() {
                    Some(id) => id,
                    None => self.start_multipart(info, lease).await?,
                };
                if in_flight.len() >= PARTS_IN_FLIGHT {
                    if let Some((index, size, job)) = in_flight.pop_front() {
                        parts.push(finish_part(index, size, job).await?);
                    }
                }
                let index = self.next_part_index(info, lease).await?;
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
                in_flight.push_back((index, size, job));
                permit = self.budget.reserve(part_size, buffer.len(), source).await;
            }
        }
        for (index, size, job) in in_flight {
            parts.push(finish_part(index, size, job).await?);
        }
        let mut state = lease.committed.clone();
        let complete = info.length == Some(already + received);
        // A tail parked while the length was deferred, in an upload with parts that is
        // complete now that its length is declared: with no new bytes it still has to become
        // the last part, or completing the multipart upload would leave it out (tusd #1385).
        let promote_tail =
            received == 0 && complete && tail.is_some() && state.multipart_id.is_some();
        if !source.accept() || (received == 0 && !promote_tail) {
            return Ok((state, 0, None));
        }
        state.parts.extend(parts);
        let rest = buffer.take(buffer.len());
        let rest_len = rest.content_length() as u64;
        state.tail = None;
        let mut tail_bytes = None;
        if complete && rest_len > 0 && state.multipart_id.is_some() {
            // The last part may be smaller than the others (R2 requires ≤).
            let id = state.multipart_id.clone().unwrap_or_default();
            let index = self.next_part_index(info, lease).await?;
            let part = self.s3.put_part(&object, &id, index, rest);
            let part = bounded(rest_len, part).await?;
            state.parts.push(Part {
                index: Some(index),
                size: rest_len,
                content_id: part.content_id,
            });
        } else if rest_len > 0 {
            let generation = lease.claim.generation;
            let key = self.tail_key(&info.id, generation)?;
            let bytes: Bytes = rest.into();
            bounded(rest_len, self.s3.put(&key, bytes.clone().into())).await?;
            state.tail = Some(Tail {
                generation,
                size: rest_len,
            });
            tail_bytes = complete.then_some(bytes);
        }
        // Reservations made while streaming are part of the state to commit.
        state.next_part = lease.committed.next_part;
        Ok((state, received, tail_bytes))
    }

    /// Publishes a complete upload's committed bytes at its object (see the module doc, points
    /// 5 and 7). Returns when the object holds them, or was found holding them already, or a
    /// newer upload's object is there (`Replace`: it is not published over).
    async fn write_object(&self, info: &UploadInfo, known: &Known) -> Result<()> {
        let state = &known.state;
        let object = state.object_path()?;
        // A few rounds at most: each one that fails found the object changed by somebody else,
        // which the next round looks at.
        for _ in 0..3 {
            let existing = self.identify(&object).await?;
            if let Some(existing) = &existing {
                if existing.upload.as_deref() == Some(info.id.as_str()) || info.target.is_none() {
                    // Published already (by a concurrent completer, or before a crash); an
                    // upload's own object (no target) is only ever written by the upload.
                    return Ok(());
                }
                if self.overwrite == Overwrite::Keep {
                    return Err(StorageError::AlreadyExists);
                }
                if self.superseded(info, existing).await? {
                    self.abort_quietly(state).await;
                    tracing::info!(
                        id = %info.id,
                        "a newer upload of this key is already published; this older one is not"
                    );
                    return Ok(());
                }
            }
            if self.overwrite == Overwrite::Keep && existing.is_none() {
                self.take_key(info).await?;
            }
            let condition = match &existing {
                None => Condition::Absent,
                Some(existing) => Condition::Matches(existing.etag.clone()),
            };
            let written = match &state.multipart_id {
                Some(id) => {
                    self.complete_multipart(&object, id, &state.parts, &condition)
                        .await
                }
                None => {
                    let data = match (&known.tail_bytes, state.tail) {
                        (Some(bytes), _) => bytes.clone(),
                        (None, Some(tail)) => self.read_tail(&info.id, tail).await?,
                        (None, None) => Bytes::new(),
                    };
                    let opts = PutOptions {
                        mode: condition.put_mode(),
                        attributes: Self::attributes(info),
                        ..Default::default()
                    };
                    let len = data.len() as u64;
                    let put = self.s3.put_opts(&object, PutPayload::from(data), opts);
                    bounded(len, put).await.map(drop)
                }
            };
            match written {
                Ok(()) => return Ok(()),
                // A completion that failed because somebody else completed the same multipart
                // upload at the same moment (moto answers 500, SeaweedFS 404): the object says
                // so once their completion is done. Both wrote the same committed parts.
                Err(e @ StorageError::Io(_)) if state.multipart_id.is_some() => {
                    for _ in 0..10 {
                        if self.written_by(info, &object).await {
                            return Ok(());
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    return Err(e);
                }
                // Somebody wrote the object since we looked: look again.
                Err(StorageError::TakenOver | StorageError::AlreadyExists) => continue,
                // The multipart upload is gone: completed by somebody else (the object says
                // whose) or aborted with the upload (whose state is gone too, so the final
                // CAS fails).
                Err(StorageError::NotFound) if state.multipart_id.is_some() => continue,
                Err(e) => return Err(e),
            }
        }
        if self.written_by(info, &object).await {
            return Ok(());
        }
        Err(StorageError::Io(std::io::Error::other(
            "the object kept changing while this upload was being published",
        )))
    }

    /// Whether the object at `object` was written by `info`'s upload.
    async fn written_by(&self, info: &UploadInfo, object: &Path) -> bool {
        matches!(self.identify(object).await, Ok(Some(existing))
            if existing.upload.as_deref() == Some(info.id.as_str()))
    }

    /// `--overwrite keep`: makes this upload the one that may publish at its key, through a
    /// marker object `P/.tusgate-keep/<visibility>/<key>` holding the upload's id, created with
    /// `If-None-Match: *`. Conditional completion alone is not enough: neither SeaweedFS nor
    /// moto makes two concurrent conditional CompleteMultipartUploads exclusive, while both
    /// make conditional PutObject atomic. A marker left by an upload that can no longer
    /// publish (removed, or published and its asset deleted since) is taken over with
    /// `If-Match`. `AlreadyExists` if another upload holds the key.
    async fn take_key(&self, info: &UploadInfo) -> Result<()> {
        let Some(target) = &info.target else {
            return Ok(());
        };
        let marker = self.key(&format!(".tusgate-keep/{}", target.path))?;
        let ours = PutPayload::from(info.id.to_string().into_bytes());
        for _ in 0..3 {
            let opts = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match bounded(0, self.s3.put_opts(&marker, ours.clone(), opts)).await {
                Ok(_) => return Ok(()),
                Err(StorageError::AlreadyExists) => {}
                Err(e) => return Err(e),
            }
            let (etag, holder) = match bounded(0, async {
                let result = self.s3.get(&marker).await?;
                let etag = result.meta.e_tag.clone();
                Ok((etag, result.bytes().await?))
            })
            .await
            {
                Ok(found) => found,
                Err(StorageError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            let holder = std::str::from_utf8(&holder).ok().and_then(UploadId::parse);
            if holder.as_ref() == Some(&info.id) {
                return Ok(());
            }
            // The holder may still publish unless its state is gone or says it is done (then
            // its asset, checked by the caller, is what decides).
            if let Some(holder) = &holder {
                match self.load(holder).await {
                    Ok((_, known)) if !known.state.object_written => {
                        self.forget(holder);
                        return Err(StorageError::AlreadyExists);
                    }
                    Ok(_) => self.forget(holder),
                    Err(StorageError::NotFound | StorageError::Corrupt(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let opts = PutOptions {
                mode: PutMode::Update(UpdateVersion {
                    e_tag: etag,
                    version: None,
                }),
                ..PutOptions::default()
            };
            match bounded(0, self.s3.put_opts(&marker, ours.clone(), opts)).await {
                Ok(_) => return Ok(()),
                Err(StorageError::TakenOver) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StorageError::AlreadyExists)
    }

    async fn abort_quietly(&self, state: &S3State) {
        if let (Some(id), Ok(object)) = (&state.multipart_id, state.object_path()) {
            match bounded(0, self.s3.abort_multipart(&object, id)).await {
                Ok(()) | Err(StorageError::NotFound) => {}
                Err(e) => tracing::warn!(error = %e, "cannot abort a multipart upload"),
            }
        }
    }

    /// The object at `object`, if any: its ETag, `Last-Modified` and the upload that wrote it.
    async fn identify(&self, object: &Path) -> Result<Option<Existing>> {
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        match bounded(0, self.s3.get_opts(object, options)).await {
            Ok(result) => Ok(Some(Existing {
                etag: result.meta.e_tag.clone(),
                modified: result.meta.last_modified.into(),
                upload: result
                    .attributes
                    .get(&Attribute::Metadata(UPLOAD_METADATA.into()))
                    .map(|v| v.to_string()),
            })),
            Err(StorageError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether `existing` was published after this upload's last byte was committed: the
    /// bucket's clock on both sides (the state object's and the object's `Last-Modified`), so
    /// the instances' clocks do not matter. Until the final CAS the state object was last
    /// written by the commit of the last byte. `Last-Modified` has whole seconds: within one
    /// second, the later publish wins.
    async fn superseded(&self, info: &UploadInfo, existing: &Existing) -> Result<bool> {
        if info.target.is_none() {
            return Ok(false);
        }
        let committed = bounded(0, self.s3.head(&self.info_key(&info.id)?)).await?;
        Ok(existing.modified > SystemTime::from(committed.last_modified))
    }

    /// CompleteMultipartUpload with the parts' own numbers (object_store's numbers them by
    /// position) and a condition on the object, through a presigned request.
    async fn complete_multipart(
        &self,
        object: &Path,
        upload_id: &str,
        parts: &[Part],
        condition: &Condition,
    ) -> Result<()> {
        let mut options = SignedUrlOptions::new().with_query([("uploadId", upload_id)]);
        let header = condition.header(self.overwrite);
        if let Some((name, value)) = &header {
            options = options.with_signed_header(name.clone(), value.clone());
        }
        let url = self
            .s3
            .signed_url_opts(
                http::Method::POST,
                object,
                Duration::from_secs(300),
                &options,
            )
            .await
            .map_err(storage_error)?;
        let mut body = String::from("<CompleteMultipartUpload>");
        for part in parts {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                part.index.unwrap_or(0) + 1,
                xml_escape(&part.content_id)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let mut request = self.http.post(url).body(body);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let deadline = REQUEST_DEADLINE.max(Duration::from_secs(
            parts.iter().map(|p| p.size).sum::<u64>() / (64 * SLOWEST_RATE),
        ));
        let answer = async {
            let response = request.send().await?;
            let status = response.status();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        };
        let (status, text) = tokio::time::timeout(deadline, answer)
            .await
            .map_err(|_| {
                StorageError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("CompleteMultipartUpload did not finish within {deadline:?}"),
                ))
            })?
            .map_err(|e| StorageError::Io(std::io::Error::other(e)))?;
        // S3 may answer 200 and put the error in the body.
        let code = s3_error_code(&text);
        match (status.as_u16(), code.as_deref()) {
            (412, _) | (_, Some("PreconditionFailed")) => Err(StorageError::TakenOver),
            (404, _) | (_, Some("NoSuchUpload")) => Err(StorageError::NotFound),
            (200..=299, None) => Ok(()),
            _ => Err(StorageError::Io(std::io::Error::other(format!(
                "CompleteMultipartUpload: {status} {}",
                code.unwrap_or_default()
            )))),
        }
    }
}

/// The object a completer found at its key.
struct Existing {
    etag: Option<String>,
    modified: SystemTime,
    upload: Option<String>,
}

/// What the object must look like for a publish to go ahead: what was seen just before.
enum Condition {
    Absent,
    Matches(Option<String>),
}

impl Condition {
    fn put_mode(&self) -> PutMode {
        match self {
            Condition::Absent => PutMode::Create,
            Condition::Matches(etag) => PutMode::Update(UpdateVersion {
                e_tag: etag.clone(),
                version: None,
            }),
        }
    }

    fn header(&self, overwrite: Overwrite) -> Option<(http::HeaderName, http::HeaderValue)> {
        match (self, overwrite) {
            (Condition::Absent, _) | (_, Overwrite::Keep) => Some((
                http::header::IF_NONE_MATCH,
                http::HeaderValue::from_static("*"),
            )),
            (Condition::Matches(Some(etag)), Overwrite::Replace) => {
                http::HeaderValue::from_str(etag)
                    .ok()
                    .map(|value| (http::header::IF_MATCH, value))
            }
            (Condition::Matches(None), Overwrite::Replace) => None,
        }
    }
}

/// The `<Code>` of an S3 error document, if `body` is one.
fn s3_error_code(body: &str) -> Option<String> {
    if !body.contains("<Error>") {
        return None;
    }
    let start = body.find("<Code>")? + "<Code>".len();
    let end = body[start..].find("</Code>")? + start;
    Some(body[start..end].to_owned())
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn finish_part(index: usize, size: u64, job: JoinHandle<Result<PartId>>) -> Result<Part> {
    let part = job
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))??;
    Ok(Part {
        index: Some(index),
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
        // Fixed for the upload's life; raised so that half the part numbers hold the declared
        // length (the other half is slack for reservations that PATCHes broke off).
        let needed = info
            .length
            .map_or(0, |len| len.div_ceil(MAX_PARTS as u64 / 2));
        let part_size = self.part_size.max(needed.next_multiple_of(1 << 20));
        // Creating is a claim of its own: generation 0 is this request's.
        let state = S3State {
            part_size,
            object,
            next_generation: 1,
            ..S3State::default()
        };
        let etag = self.put_state(info, &state, None).await?;
        self.table().insert(
            info.id.clone(),
            Known {
                state,
                etag,
                claimed: Some(Claim {
                    generation: 0,
                    parts: 0..0,
                }),
                tail_bytes: None,
            },
        );
        Ok(())
    }

    async fn info(&self, id: &UploadId) -> Result<UploadInfo> {
        self.load(id).await.map(|(info, _)| info)
    }

    async fn append(&self, info: &UploadInfo, source: &mut (dyn ByteSource + '_)) -> Result<u64> {
        let mut known = self.known(info).await?;
        if known.state.object_written {
            return Ok(0);
        }
        let old_tail = known.state.tail;
        // Part numbers this request may need, so that it usually reserves them in its claim.
        let expected = source
            .remaining()
            .or_else(|| info.length.map(|len| len.saturating_sub(info.offset)))
            .unwrap_or(0);
        let wanted = (old_tail.map_or(0, |t| t.size) + expected).div_ceil(known.state.part_size);
        let wanted = usize::try_from(wanted)
            .unwrap_or(usize::MAX)
            .min(RESERVE_AT_MOST);
        let mut lease = match known.claimed.take() {
            Some(claim) => Lease {
                committed: known.state.clone(),
                etag: known.etag.clone(),
                claim,
            },
            None => self.claim_newest(info, known, wanted).await?,
        };
        // The claim is spent either way: a later append claims anew.
        self.remember(&info.id, lease.committed.clone(), lease.etag.clone());
        let old_tail = lease.committed.tail;
        let written = self.write(info, &mut lease, source).await;
        // Whatever happened, the reservations are committed (a CAS made them).
        self.remember(&info.id, lease.committed.clone(), lease.etag.clone());
        let (state, received, tail_bytes) = written?;
        if received == 0 && state.tail == old_tail && state.parts == lease.committed.parts {
            return Ok(0);
        }
        let committed = self.put_state(info, &state, lease.etag.as_deref()).await;
        let etag = match committed {
            Ok(etag) => etag,
            Err(e) => {
                // Not committed: the new tail is nobody's. (A failure that is not a takeover
                // may have committed after all, so only a takeover deletes it.)
                if let (Some(tail), StorageError::TakenOver) = (state.tail, &e) {
                    if Some(tail) != old_tail {
                        self.delete_quietly(self.tail_key(&info.id, tail.generation)?)
                            .await;
                    }
                }
                return Err(e);
            }
        };
        self.table().insert(
            info.id.clone(),
            Known {
                state: state.clone(),
                etag,
                claimed: None,
                tail_bytes,
            },
        );
        if let Some(old) = old_tail.filter(|old| Some(*old) != state.tail) {
            self.delete_quietly(self.tail_key(&info.id, old.generation)?)
                .await;
        }
        Ok(received)
    }

    async fn save_info(&self, info: &UploadInfo) -> Result<()> {
        let known = self.known(info).await?;
        let etag = self
            .put_state(info, &known.state, known.etag.as_deref())
            .await?;
        self.remember(&info.id, known.state, etag);
        Ok(())
    }

    async fn concatenate(&self, info: &UploadInfo, partials: &[UploadInfo]) -> Result<()> {
        // Correct first: the partials' bytes are read back and written as the final upload's
        // parts. That costs one download and one upload of every byte; UploadPartCopy would
        // avoid it but object_store does not offer it.
        let mut paths = Vec::new();
        for partial in partials {
            let state = self.load(&partial.id).await?.1.state;
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

    async fn complete(&self, info: &mut UploadInfo) -> Result<Completion> {
        let mut known = self.known(info).await?;
        if needs_tail_promotion(&known.state) {
            // All bytes arrived while the length was deferred and the length was declared
            // without another append (a crash between the declaration and the PATCH's append,
            // then recovery or the client's retry): the tail must become the last part first.
            // What this process knows may be stale (another instance may have finished it), so
            // look at the bucket first.
            self.forget(&info.id);
            let fresh = self.known(info).await?;
            if fresh.state.object_written {
                // Finished by somebody else: go on with what this process knew, whose final
                // CAS then fails and reports it as theirs (point 6 of the module doc).
            } else if needs_tail_promotion(&fresh.state) {
                // An append of nothing moves the tail; it claims and commits as any append.
                self.append(info, &mut NothingMore).await?;
                known = self.known(info).await?;
                if needs_tail_promotion(&known.state) {
                    return Err(StorageError::Corrupt(format!(
                        "upload {}: its parts and tail hold {} bytes, not its length {:?}",
                        info.id,
                        known.state.stored(),
                        info.length
                    )));
                }
            } else {
                // Somebody else moved the tail already: their committed state is the truth.
                known = fresh;
            }
        }
        let mut state = known.state.clone();
        if !state.object_written {
            self.write_object(info, &known).await?;
            state.object_written = true;
        }
        let tail = state.tail.take();
        let mut finished = info.clone();
        finished.phase = if info.target.is_some() {
            Phase::Published
        } else {
            Phase::Receiving
        };
        match self
            .put_state(&finished, &state, known.etag.as_deref())
            .await
        {
            Ok(_) => {}
            Err(StorageError::TakenOver) => {
                // Somebody else finished it first (or removed it): their state is the truth.
                self.forget(&info.id);
                let (now, again) = self.load(&info.id).await?;
                self.forget(&info.id);
                if again.state.object_written {
                    *info = now;
                    return Ok(Completion::AlreadyFinished);
                }
                return Err(StorageError::TakenOver);
            }
            Err(e) => return Err(e),
        }
        *info = finished;
        if let Some(tail) = tail {
            self.delete_quietly(self.tail_key(&info.id, tail.generation)?)
                .await;
        }
        self.forget(&info.id);
        Ok(Completion::Finished)
    }

    async fn terminate(&self, info: &UploadInfo) -> Result<()> {
        let known = self.known(info).await?;
        let state = known.state;
        let object = state.object_path()?;
        if !state.object_written {
            self.abort_quietly(&state).await;
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
        // Deleting the state fences whoever still works on the upload: their next CAS fails.
        self.delete_quietly(self.info_key(&info.id)?).await;
        self.forget(&info.id);
        Ok(())
    }

    async fn read(&self, info: &UploadInfo) -> Result<ReadObject> {
        let known = self.known(info).await?;
        if !known.state.object_written {
            return Err(StorageError::Incomplete);
        }
        let object = known.state.object_path()?;
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

    fn is_shared(&self) -> bool {
        true
    }

    fn describe(&self, info: &UploadInfo) -> BTreeMap<String, String> {
        // The object the upload becomes: at its asset key when tokened, else at its id.
        let relative = info
            .target
            .as_ref()
            .map_or(info.id.as_str(), |t| t.path.as_str());
        let key = match self.key(relative) {
            Ok(key) => key.to_string(),
            Err(_) => relative.to_owned(),
        };
        BTreeMap::from([
            ("Type".to_owned(), "s3store".to_owned()),
            ("Bucket".to_owned(), self.bucket.clone()),
            ("Key".to_owned(), key),
        ])
    }

    async fn open_asset(&self, path: &[u8]) -> Result<ReadObject> {
        let path = std::str::from_utf8(path).map_err(|_| StorageError::NotFound)?;
        let object = self.key(path).map_err(|_| StorageError::NotFound)?;
        self.open(object).await
    }
}

impl S3Store {
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

/// Whether completing `state` would leave its tail out: a multipart upload completes with its
/// parts only, so a tail must have become the last part before (see [`S3Store::write`]).
fn needs_tail_promotion(state: &S3State) -> bool {
    !state.object_written && state.multipart_id.is_some() && state.tail.is_some()
}

/// A byte source with nothing in it: an append that only moves the committed tail.
struct NothingMore;

impl ByteSource for NothingMore {
    fn poll_chunk(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        Poll::Ready(None)
    }

    fn remaining(&self) -> Option<u64> {
        Some(0)
    }

    fn poll_stopped(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
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
        // A conditional write that lost: somebody else changed the object first.
        object_store::Error::Precondition { .. } | object_store::Error::NotModified { .. } => {
            StorageError::TakenOver
        }
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
    // `None`: AWS itself, always https.
    let endpoint = config.endpoint.as_ref().map(|endpoint| {
        if endpoint.contains("://") {
            endpoint.clone()
        } else {
            format!(
                "{}://{endpoint}",
                if config.use_ssl { "https" } else { "http" }
            )
        }
    });
    let tls = endpoint.as_ref().is_none_or(|e| e.starts_with("https://"));
    let mut builder = AmazonS3Builder::new()
        .with_client_options(client)
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_retry(retry)
        // GCS has no DeleteObjects, and B2 rejects its checksum header.
        .with_disable_bulk_delete(true)
        .with_unsigned_payload(!config.payload_signing.signs(tls));
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
    match endpoint {
        Some(endpoint) => {
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
