//! Micro-benchmarks of the PATCH body path without HTTP: the request body wrapped as a
//! [`BodySource`] (timeouts, size limit, optional `Upload-Checksum` hashing) feeding
//! `LocalStore::append` (the pipelined `writev` loop) on a temporary directory.
//! `cargo bench --bench write_path`.
//!
//! Each iteration writes the same 16 MiB at offset 0 of the same file, so the page cache pages
//! are reused and the numbers show the loop's own cost, not page allocation or the disk.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http_body::{Body, Frame};
use sha2::Digest as _;
use tokio_util::sync::CancellationToken;
use tusgate::lifecycle::body::{BodySource, Stops};
use tusgate::storage::local::LocalStore;
use tusgate::storage::{FsyncPolicy, Overwrite, Store, next_chunk};
use tusgate::tus::headers::parse_checksum;
use tusgate::upload::{Concat, Metadata, UploadId, UploadInfo};

const TOTAL: usize = 16 << 20;

/// A request body that yields prepared frames (zero-copy slices of one buffer), as hyper
/// yields what it read from the socket.
struct Frames {
    frames: Vec<Bytes>,
    next: usize,
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let frame = this.frames.get(this.next).cloned();
        this.next += 1;
        Poll::Ready(frame.map(|f| Ok(Frame::data(f))))
    }
}

fn data() -> Bytes {
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut buf = vec![0u8; TOTAL];
    for chunk in buf.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    Bytes::from(buf)
}

fn frames(data: &Bytes, frame: usize) -> Vec<Bytes> {
    (0..data.len())
        .step_by(frame)
        .map(|start| data.slice(start..(start + frame).min(data.len())))
        .collect()
}

fn stops() -> Stops {
    Stops {
        interrupt: CancellationToken::new().cancelled_owned(),
        shutdown: CancellationToken::new().cancelled_owned(),
        stop_upload: None,
        idle_timeout: Duration::from_secs(60),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // Two workers, as the server has on the reference machine.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `BodySource` alone: framing, limits and the checksum hashers, no storage.
fn body_source(c: &mut Criterion) {
    let rt = runtime();
    let data = data();
    let frames = frames(&data, 256 << 10);
    let sha256 = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&data));
    let sha1 = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(&data));
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&data));
    let mut g = c.benchmark_group("body_source");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.sample_size(20);
    for (name, header) in [
        ("none", None),
        ("md5", Some(format!("md5 {md5}"))),
        ("sha1", Some(format!("sha1 {sha1}"))),
        ("sha256", Some(format!("sha256 {sha256}"))),
    ] {
        let checksum = header.map(|h| parse_checksum(&h).expect("valid checksum header"));
        g.bench_function(BenchmarkId::new("checksum", name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let body = Frames {
                        frames: frames.clone(),
                        next: 0,
                    };
                    let mut source = BodySource::new(body, TOTAL as u64, stops(), checksum.clone());
                    let mut n = 0;
                    while let Some(chunk) = next_chunk(&mut source).await {
                        n += chunk.len();
                    }
                    assert_eq!(n, TOTAL);
                    assert!(tusgate::storage::ByteSource::accept(&mut source));
                })
            })
        });
    }
    g.finish();
}

/// The whole in-process PATCH write path: `BodySource` → `LocalStore::append` → the file.
fn append(c: &mut Criterion) {
    let rt = runtime();
    let data = data();
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LocalStore::open(
        dir.path(),
        dir.path(),
        FsyncPolicy::Never,
        Overwrite::Replace,
    )
    .expect("store");
    let info = UploadInfo::new(
        UploadId::generate(),
        Some(TOTAL as u64),
        Metadata::new(),
        Concat::None,
    );
    rt.block_on(store.create(&info)).expect("create upload");
    let sha256 = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&data));
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(4));
    for (frame, checksum) in [
        (16 << 10, false),
        (64 << 10, false),
        (256 << 10, false),
        (256 << 10, true),
    ] {
        let frames = frames(&data, frame);
        let checksum = checksum
            .then(|| parse_checksum(&format!("sha256 {sha256}")).expect("valid checksum header"));
        let name = format!(
            "{}KiB_frames{}",
            frame >> 10,
            if checksum.is_some() { "+sha256" } else { "" }
        );
        g.bench_function(BenchmarkId::new("local_store", name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let body = Frames {
                        frames: frames.clone(),
                        next: 0,
                    };
                    let mut source = BodySource::new(body, TOTAL as u64, stops(), checksum.clone());
                    let written = store.append(&info, &mut source).await.expect("append");
                    assert_eq!(written, TOTAL as u64);
                })
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = body_source, append
}
criterion_main!(benches);
