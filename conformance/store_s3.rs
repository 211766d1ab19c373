//! The storage suite (`tusgate::storage::suite`) against a real S3-compatible server: the same
//! cases the local store passes in its unit tests. The server comes from the environment
//! (`scripts/with-moto.sh` starts moto and sets it); a missing server is a failure, not a skip.

use tusgate::storage::s3::{PayloadSigning, S3Config, S3Store};
use tusgate::tokens::Secret;

fn required(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run this under scripts/with-moto.sh"))
}

fn config(prefix: &str) -> S3Config {
    S3Config {
        bucket: required("STORAGE_BUCKET"),
        endpoint: Some(required("STORAGE_ENDPOINT_URL")),
        region: "us-east-1".into(),
        access_key: Some(required("STORAGE_ACCESS_KEY")),
        secret_key: Some(Secret::new(required("STORAGE_SECRET_KEY"))),
        use_ssl: false,
        verify_ssl: true,
        prefix: prefix.into(),
        part_size: 5 << 20,
        create_bucket: true,
        overwrite: tusgate::storage::Overwrite::Replace,
        single_instance: false,
        // The suite runs with each setting (plain http: `auto` signs).
        payload_signing: match std::env::var("TUSGATE_S3_PAYLOAD_SIGNING").as_deref() {
            Ok("on") => PayloadSigning::On,
            Ok("off") => PayloadSigning::Off,
            Ok("auto") | Err(_) => PayloadSigning::Auto,
            Ok(other) => panic!("TUSGATE_S3_PAYLOAD_SIGNING={other}: auto, on or off"),
        },
        // Two parts: less than one upload's pipeline (a part filling, two in flight), so
        // every multi-part write also waits for its own parts to release the budget.
        max_buffer: 10 << 20,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_passes_the_store_suite() {
    let store = S3Store::connect(&config("suite")).await.expect("connect");
    tusgate::storage::suite::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_a_clear_startup_error() {
    let mut missing = config("");
    missing.bucket = "no-such-bucket-for-tusgate".into();
    missing.create_bucket = false;
    let err = S3Store::connect(&missing).await.expect_err("must fail");
    assert!(err.contains("does not exist"), "{err}");
}

// --- Several instances on one bucket -------------------------------------------------------
//
// Two `S3Store`s on one bucket and prefix are two instances: they share nothing but the bucket.
// These cases pin the fencing argument of `tusgate::storage::s3` (its module doc) at the seam,
// where each interleaving can be driven step by step.

use std::task::{Context, Poll};

use bytes::Bytes;
use tusgate::storage::suite::{Chunks, pattern, read_range};
use tusgate::storage::{ByteSource, Completion, Overwrite, StorageError, Store};
use tusgate::upload::{Concat, Metadata, Target, UploadId, UploadInfo};

const MIB: usize = 1 << 20;

/// A body whose chunks the test hands over one at a time, as a slow or frozen client would.
struct Fed(tokio::sync::mpsc::Receiver<Bytes>);

impl ByteSource for Fed {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.0.poll_recv(cx)
    }
}

async fn two_instances(prefix: &str, overwrite: Overwrite) -> (S3Store, S3Store) {
    let mut config = config(prefix);
    config.overwrite = overwrite;
    let a = S3Store::connect(&config).await.expect("connect a");
    let b = S3Store::connect(&config).await.expect("connect b");
    (a, b)
}

async fn tokened(store: &S3Store, len: usize, key: &str) -> UploadInfo {
    let mut info = UploadInfo::new(
        UploadId::generate(),
        Some(len as u64),
        Metadata::new(),
        Concat::None,
    );
    info.target = Some(Target {
        path: key.to_owned(),
        content_type: "application/x-test".into(),
    });
    store.create(&info).await.expect("create");
    info
}

async fn append(store: &S3Store, info: &mut UploadInfo, data: &[u8]) {
    let stored = store
        .append(info, &mut Chunks::new(data, MIB))
        .await
        .expect("append");
    info.offset += stored;
}

async fn published(store: &S3Store, key: &str) -> Vec<u8> {
    let object = store.open_asset(key.as_bytes()).await.expect("open asset");
    read_range(&object, 0..object.len).await
}

/// The report: instance A streams a PATCH and freezes; the client resumes on B, which
/// completes and publishes; A wakes and goes on. A must be stopped, and none of its bytes —
/// not the whole part it uploaded under its own part number, not its tail — may be published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_owner_is_fenced_and_none_of_its_bytes_are_published() {
    let (a, b) = two_instances("fence-stale", Overwrite::Replace).await;
    let key = format!("fence-stale/public/{}.bin", UploadId::generate());
    let len = 14 * MIB;
    let first = pattern(6 * MIB, 1);
    let stale = pattern(len - first.len(), 2);
    let resumed = pattern(len - first.len(), 3);
    let mut info = tokened(&a, len, &key).await;
    append(&a, &mut info, &first).await;

    // A receives 6 MiB more (a whole part goes out under A's number), then its client stalls.
    let (feed, fed) = tokio::sync::mpsc::channel(16);
    for chunk in stale[..6 * MIB].chunks(MIB) {
        feed.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    let stale_info = info.clone();
    let a = std::sync::Arc::new(a);
    let a_task = {
        let a = std::sync::Arc::clone(&a);
        tokio::spawn(async move { a.append(&stale_info, &mut Fed(fed)).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // The client resumes on B from the committed offset and finishes there.
    let mut on_b = b.info(&info.id).await.expect("info on b");
    assert_eq!(
        on_b.offset,
        first.len() as u64,
        "only committed bytes count"
    );
    append(&b, &mut on_b, &resumed).await;
    assert_eq!(
        b.complete(&mut on_b).await.expect("complete on b"),
        Completion::Finished
    );

    // A notices the takeover by itself (it looks while it streams), without its client.
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(3), a_task)
        .await
        .expect("A stops within a few seconds")
        .expect("join");
    assert!(
        matches!(stopped, Err(StorageError::TakenOver)),
        "{stopped:?}"
    );
    // A's client wakes up and sends the rest: nothing of it may land anywhere.
    for chunk in stale[6 * MIB..].chunks(MIB) {
        let _ = feed.send(Bytes::copy_from_slice(chunk)).await;
    }
    drop(feed);
    let mut late = info.clone();
    late.offset = len as u64;
    assert_eq!(
        a.complete(&mut late).await.expect("late complete"),
        Completion::AlreadyFinished
    );

    let mut expected = first.clone();
    expected.extend_from_slice(&resumed);
    assert!(
        published(&b, &key).await == expected,
        "the object holds B's bytes only"
    );
}

/// A frozen owner that wakes after another instance took over must not commit: its CAS fails,
/// and what B acknowledged stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_commit_loses_and_acknowledged_bytes_stay() {
    let (a, b) = two_instances("fence-late", Overwrite::Replace).await;
    let key = format!("fence-late/public/{}.bin", UploadId::generate());
    let len = 3 * MIB;
    let mut info = tokened(&a, len, &key).await;
    append(&a, &mut info, &pattern(MIB, 1)).await;
    // A has read the state (its request began) when B's request comes and commits 1 MiB.
    let stale = a.info(&info.id).await.expect("info on a");
    let mut on_b = b.info(&info.id).await.expect("info on b");
    append(&b, &mut on_b, &pattern(MIB, 3)).await;
    // A goes on with what it read: its claim is refused, nothing is stored.
    let late = a
        .append(&stale, &mut Chunks::new(&pattern(2 * MIB, 2), MIB))
        .await;
    assert!(matches!(late, Err(StorageError::TakenOver)), "{late:?}");
    let now = b.info(&info.id).await.expect("info");
    assert_eq!(
        now.offset,
        2 * MIB as u64,
        "B's acknowledged megabyte is still there"
    );
}

/// Two instances finishing one upload at once (a client's retry on B while A publishes, or a
/// recovery): one publish, one of them counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_completers_publish_once() {
    for (name, len) in [("single-put", MIB + 17), ("multipart", 7 * MIB + 17)] {
        let (a, b) = two_instances("fence-complete", Overwrite::Replace).await;
        let key = format!("fence-complete/public/{name}-{}.bin", UploadId::generate());
        let data = pattern(len, 9);
        let mut on_a = tokened(&a, len, &key).await;
        append(&a, &mut on_a, &data).await;
        let mut on_b = b.info(&on_a.id).await.expect("info on b");
        assert!(on_b.awaits_publish());
        let (ra, rb) = tokio::join!(a.complete(&mut on_a), b.complete(&mut on_b));
        let mut outcomes = [ra.expect("a"), rb.expect("b")];
        outcomes.sort_by_key(|c| *c == Completion::AlreadyFinished);
        assert_eq!(
            outcomes,
            [Completion::Finished, Completion::AlreadyFinished],
            "{name}"
        );
        assert!(
            published(&a, &key).await == data,
            "{name}: the committed bytes"
        );
    }
}

/// `--overwrite keep` never replaces an asset, also when two uploads of one key finish at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_publishes_one_of_two_racing_uploads_and_never_replaces() {
    for (name, len) in [("single-put", MIB), ("multipart", 6 * MIB)] {
        let (a, b) = two_instances("fence-keep", Overwrite::Keep).await;
        let key = format!("fence-keep/public/{name}-{}.bin", UploadId::generate());
        let (one, two) = (pattern(len, 4), pattern(len, 5));
        let mut first = tokened(&a, len, &key).await;
        let mut second = tokened(&b, len, &key).await;
        append(&a, &mut first, &one).await;
        append(&b, &mut second, &two).await;
        let (ra, rb) = tokio::join!(a.complete(&mut first), b.complete(&mut second));
        let won = [ra.is_ok(), rb.is_ok()];
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{name}: {won:?}");
        let loser = if won[0] { &rb } else { &ra };
        assert!(
            matches!(loser, Err(StorageError::AlreadyExists)),
            "{name}: {loser:?}"
        );
        let bytes = published(&a, &key).await;
        assert!(
            bytes == if won[0] { one } else { two },
            "{name}: the winner's bytes"
        );
    }
}

/// B read the state, then A's request claimed before B's did: B is still the newer request and
/// wins (tusd's hand-over semantics, across instances), and A, still streaming, is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newer_request_wins_a_claim_race() {
    let (a, b) = two_instances("fence-race", Overwrite::Replace).await;
    let key = format!("fence-race/public/{}.bin", UploadId::generate());
    let len = 2 * MIB;
    let data = pattern(len, 6);
    let info = tokened(&a, len, &key).await;
    let on_a = a.info(&info.id).await.expect("info on a");
    let mut on_b = b.info(&info.id).await.expect("info on b");
    // A claims and starts streaming after B's read.
    let (feed, fed) = tokio::sync::mpsc::channel(4);
    feed.send(Bytes::from(pattern(MIB, 7))).await.unwrap();
    let a = std::sync::Arc::new(a);
    let a_task = {
        let a = std::sync::Arc::clone(&a);
        tokio::spawn(async move { a.append(&on_a, &mut Fed(fed)).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    append(&b, &mut on_b, &data).await;
    assert_eq!(on_b.offset, len as u64, "B's request went through");
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(3), a_task)
        .await
        .expect("A stops")
        .expect("join");
    assert!(
        matches!(stopped, Err(StorageError::TakenOver)),
        "{stopped:?}"
    );
    drop(feed);
    assert_eq!(
        b.complete(&mut on_b).await.expect("complete"),
        Completion::Finished
    );
    assert!(published(&b, &key).await == data);
}
