//! One behavioural suite that every [`Store`] must pass, so the second backend cannot drift
//! from the first (object_store's `integration.rs` pattern). The local store runs it in its
//! unit tests; the S3 store runs it against a real S3-compatible server in the `store_s3` test
//! target. Sizes straddle the 5 MiB S3 part minimum so parts, tails and single PUTs all occur.

use std::task::{Context, Poll};

use bytes::Bytes;

use super::{ByteSource, ReadObject, StorageError, Store};
use crate::upload::{Concat, Metadata, Phase, Target, UploadId, UploadInfo};

/// Runs every case against `store`.
pub async fn run_all(store: &dyn Store) {
    create_then_info(store).await;
    append_resumes_at_offset(store).await;
    bytes_before_a_break_are_kept(store).await;
    a_rejected_source_stores_nothing(store).await;
    deferred_length_is_declared_later(store).await;
    deferred_length_declared_after_the_last_byte(store).await;
    complete_publishes_at_the_target(store).await;
    small_uploads_publish_too(store).await;
    empty_upload_completes(store).await;
    concatenation_keeps_order(store).await;
    terminate_removes_the_upload(store).await;
    missing_things_are_not_found(store).await;
}

/// Deterministic test bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A source over fixed chunks that may stop early or reject everything.
#[derive(Debug)]
pub struct Chunks {
    chunks: Vec<Bytes>,
    accept: bool,
}

impl Chunks {
    pub fn new(data: &[u8], chunk: usize) -> Self {
        Chunks {
            chunks: data
                .chunks(chunk.max(1))
                .rev()
                .map(Bytes::copy_from_slice)
                .collect(),
            accept: true,
        }
    }

    pub fn rejected(mut self) -> Self {
        self.accept = false;
        self
    }
}

impl ByteSource for Chunks {
    fn poll_chunk(&mut self, _: &mut Context<'_>) -> Poll<Option<Bytes>> {
        Poll::Ready(self.chunks.pop())
    }

    fn accept(&mut self) -> bool {
        self.accept
    }

    fn remaining(&self) -> Option<u64> {
        Some(self.chunks.iter().map(|c| c.len() as u64).sum())
    }
}

/// Reads `range` of an opened object to memory.
pub async fn read_range(object: &ReadObject, range: std::ops::Range<u64>) -> Vec<u8> {
    let mut stream = object.reader.stream(range);
    let mut out = Vec::new();
    while let Some(chunk) = std::future::poll_fn(|cx| stream.poll_next(cx)).await {
        out.extend_from_slice(&chunk.expect("read"));
    }
    out
}

async fn new_upload(store: &dyn Store, length: Option<u64>, target: Option<&str>) -> UploadInfo {
    let mut info = UploadInfo::new(UploadId::generate(), length, Metadata::new(), Concat::None);
    info.target = target.map(|path| Target {
        path: path.to_owned(),
        content_type: "application/x-test".to_owned(),
    });
    store.create(&info).await.expect("create");
    info
}

/// Appends `data` in `chunk`-sized pieces at the current offset, as the handler would.
async fn append(store: &dyn Store, info: &mut UploadInfo, data: &[u8], chunk: usize) {
    let stored = store
        .append(info, &mut Chunks::new(data, chunk))
        .await
        .expect("append");
    assert_eq!(stored, data.len() as u64);
    info.offset += stored;
}

async fn create_then_info(store: &dyn Store) {
    let mut metadata = Metadata::new();
    metadata.insert("filename".into(), "a b.txt".into());
    let info = UploadInfo::new(UploadId::generate(), Some(10), metadata, Concat::Partial);
    store.create(&info).await.expect("create");
    let read = store.info(&info.id).await.expect("info");
    assert_eq!(
        (read.length, read.offset, &read.metadata, &read.concat),
        (Some(10), 0, &info.metadata, &Concat::Partial)
    );
    assert!(store.list().await.expect("list").contains(&info.id));
}

async fn append_resumes_at_offset(store: &dyn Store) {
    let data = pattern(13 << 20, 1);
    let mut info = new_upload(store, Some(data.len() as u64), None).await;
    // 3 MiB, then 6 MiB + 1, then the rest: tails below and above a part, then completion.
    for range in [
        0..3 << 20,
        3 << 20..(9 << 20) + 1,
        (9 << 20) + 1..data.len(),
    ] {
        append(store, &mut info, &data[range], 1 << 20).await;
        let fresh = store.info(&info.id).await.expect("info");
        assert_eq!(fresh.offset, info.offset, "offset after a PATCH");
        info = fresh;
    }
    store.complete(&mut info).await.expect("complete");
    let object = store.read(&info).await.expect("read");
    assert_eq!(object.len, data.len() as u64);
    assert!(
        read_range(&object, 0..object.len).await == data,
        "bytes differ"
    );
    assert_eq!(read_range(&object, 5..9).await, &data[5..9]);
}

async fn bytes_before_a_break_are_kept(store: &dyn Store) {
    // A body that ends before the declared length (the client went away): what came is kept.
    let data = pattern(7 << 20, 2);
    let mut info = new_upload(store, Some(20 << 20), None).await;
    append(store, &mut info, &data, 512 << 10).await;
    assert_eq!(
        store.info(&info.id).await.expect("info").offset,
        data.len() as u64
    );
    let more = pattern(1000, 3);
    append(store, &mut info, &more, 100).await;
    assert_eq!(
        store.info(&info.id).await.expect("info").offset,
        (data.len() + more.len()) as u64
    );
}

async fn a_rejected_source_stores_nothing(store: &dyn Store) {
    let mut info = new_upload(store, Some(8 << 20), None).await;
    append(store, &mut info, &pattern(1 << 20, 4), 1 << 20).await;
    let stored = store
        .append(
            &info,
            &mut Chunks::new(&pattern(6 << 20, 5), 1 << 20).rejected(),
        )
        .await
        .expect("append");
    assert_eq!(stored, 0);
    assert_eq!(store.info(&info.id).await.expect("info").offset, 1 << 20);
}

async fn deferred_length_is_declared_later(store: &dyn Store) {
    let data = pattern(6 << 20, 6);
    let mut info = new_upload(store, None, Some("public/suite/deferred.bin")).await;
    append(store, &mut info, &data[..4 << 20], 1 << 20).await;
    info = store.info(&info.id).await.expect("info");
    assert_eq!(info.length, None);
    info.length = Some(data.len() as u64);
    store.save_info(&info).await.expect("declare");
    append(store, &mut info, &data[4 << 20..], 1 << 20).await;
    assert!(info.is_complete());
    store.complete(&mut info).await.expect("complete");
    let object = store
        .open_asset(b"public/suite/deferred.bin")
        .await
        .expect("published");
    assert!(read_range(&object, 0..object.len).await == data);
}

/// tusd #1385 (fixed in v2.10.1): every byte arrives while the length is deferred, so the
/// tail shorter than a part is parked; then the length is declared and the upload completed
/// without another append. tusgate's PATCH appends (an empty body) after declaring, but a crash
/// between the declaration and that append leaves exactly this state, and the janitor's
/// recovery (or the client's retry, through PATCH's already-complete shortcut) then calls
/// `complete` directly: the parked tail must be in the object.
async fn deferred_length_declared_after_the_last_byte(store: &dyn Store) {
    // A tail alone, a part and a tail, and (tokenless: no target) a part and a tail again.
    let rounds = [
        ((3usize << 20) + 7, true),
        ((6 << 20) + 5, true),
        ((6 << 20) + 3, false),
    ];
    for (round, (len, tokened)) in rounds.into_iter().enumerate() {
        let data = pattern(len, 20 + round as u8);
        let path = format!("public/suite/deferred-late-{round}.bin");
        let target = tokened.then_some(path.as_str());
        let mut info = new_upload(store, None, target).await;
        append(store, &mut info, &data, 1 << 20).await;
        info = store.info(&info.id).await.expect("info");
        assert_eq!((info.length, info.offset), (None, len as u64));
        info.length = Some(len as u64);
        store.save_info(&info).await.expect("declare");
        info = store.info(&info.id).await.expect("info");
        assert!(info.is_complete());
        store.complete(&mut info).await.expect("complete");
        let object = if tokened {
            store.open_asset(path.as_bytes()).await.expect("published")
        } else {
            store.read(&info).await.expect("read")
        };
        assert_eq!(object.len, len as u64, "round {round}: object length");
        assert!(
            read_range(&object, 0..object.len).await == data,
            "round {round}: bytes differ"
        );
    }
}

async fn complete_publishes_at_the_target(store: &dyn Store) {
    let data = pattern(11 << 20, 7);
    let mut info = new_upload(
        store,
        Some(data.len() as u64),
        Some("private/suite/dir/large file+ü.bin"),
    )
    .await;
    append(store, &mut info, &data[..1 << 20], 1 << 20).await;
    assert!(matches!(
        store
            .open_asset("private/suite/dir/large file+ü.bin".as_bytes())
            .await,
        Err(StorageError::NotFound)
    ));
    append(store, &mut info, &data[1 << 20..], 3 << 20).await;
    store.complete(&mut info).await.expect("complete");
    assert_eq!(info.phase, Phase::Published);
    let object = store
        .open_asset("private/suite/dir/large file+ü.bin".as_bytes())
        .await
        .expect("published");
    assert_eq!(object.len, data.len() as u64);
    assert!(read_range(&object, 0..object.len).await == data);
    // The upload still reports itself complete and its bytes stay readable through it.
    let after = store.info(&info.id).await.expect("info");
    assert_eq!(after.offset, data.len() as u64);
    assert!(read_range(&store.read(&after).await.expect("read"), 0..3).await == data[..3]);
}

async fn small_uploads_publish_too(store: &dyn Store) {
    for (round, len) in [1usize, 4096].into_iter().enumerate() {
        let data = pattern(len, 8 + round as u8);
        let path = format!("public/suite/small-{len}.bin");
        let mut info = new_upload(store, Some(len as u64), Some(&path)).await;
        append(store, &mut info, &data, 1000).await;
        store.complete(&mut info).await.expect("complete");
        let object = store.open_asset(path.as_bytes()).await.expect("published");
        assert_eq!(read_range(&object, 0..object.len).await, data);
    }
    // Replacing an asset: the second upload wins.
    let mut info = new_upload(store, Some(2), Some("public/suite/small-1.bin")).await;
    append(store, &mut info, b"xy", 2).await;
    store.complete(&mut info).await.expect("complete");
    let object = store
        .open_asset(b"public/suite/small-1.bin")
        .await
        .expect("replaced");
    assert_eq!(read_range(&object, 0..object.len).await, b"xy");
}

async fn empty_upload_completes(store: &dyn Store) {
    let mut info = new_upload(store, Some(0), Some("public/suite/empty.bin")).await;
    store.complete(&mut info).await.expect("complete");
    assert_eq!(
        store
            .open_asset(b"public/suite/empty.bin")
            .await
            .expect("published")
            .len,
        0
    );
    assert_eq!(store.info(&info.id).await.expect("info").offset, 0);
}

async fn concatenation_keeps_order(store: &dyn Store) {
    let parts = [pattern(6 << 20, 10), pattern(100, 11), pattern(2 << 20, 12)];
    let mut partials = Vec::new();
    for part in &parts {
        let mut info = UploadInfo::new(
            UploadId::generate(),
            Some(part.len() as u64),
            Metadata::new(),
            Concat::Partial,
        );
        store.create(&info).await.expect("create");
        append(store, &mut info, part, 1 << 20).await;
        store.complete(&mut info).await.expect("complete partial");
        partials.push(store.info(&info.id).await.expect("info"));
    }
    let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let ids = partials.iter().map(|p| p.id.clone()).collect();
    let mut info = UploadInfo::new(
        UploadId::generate(),
        Some(total),
        Metadata::new(),
        Concat::Final(ids),
    );
    info.target = Some(Target {
        path: "public/suite/joined.bin".into(),
        content_type: "x/y".into(),
    });
    store.create(&info).await.expect("create final");
    store
        .concatenate(&info, &partials)
        .await
        .expect("concatenate");
    info.offset = total;
    store.complete(&mut info).await.expect("complete final");
    let object = store
        .open_asset(b"public/suite/joined.bin")
        .await
        .expect("published");
    assert!(
        read_range(&object, 0..object.len).await == parts.concat(),
        "concatenation differs"
    );
}

async fn terminate_removes_the_upload(store: &dyn Store) {
    let mut info = new_upload(store, Some(9 << 20), None).await;
    append(store, &mut info, &pattern(6 << 20, 13), 1 << 20).await;
    let info = store.info(&info.id).await.expect("info");
    store.terminate(&info).await.expect("terminate");
    assert!(matches!(
        store.info(&info.id).await,
        Err(StorageError::NotFound)
    ));
    assert!(!store.list().await.expect("list").contains(&info.id));
}

async fn missing_things_are_not_found(store: &dyn Store) {
    let id = UploadId::generate();
    assert!(matches!(store.info(&id).await, Err(StorageError::NotFound)));
    assert!(matches!(
        store.open_asset(b"public/suite/none.bin").await,
        Err(StorageError::NotFound)
    ));
}
