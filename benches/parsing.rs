//! Micro-benchmarks of the per-request parsing on the hot path: tus headers and metadata, the
//! upload token check at creation, and the download side's URI normalisation, Range parsing
//! and `secure_link` verification. `cargo bench --bench parsing`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tusgate::download::{secure_link, uri};
use tusgate::tokens::{Prefixes, Secret, UploadTokens};
use tusgate::tus::headers;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// The `Upload-Metadata` granite-assets sends (five pairs, an HMAC token).
fn granite_metadata(expires: u64) -> String {
    let secret = Secret::new(SECRET);
    tusgate::sign::upload_metadata(
        &secret,
        "users/42/reports/2025-q1 summary.pdf",
        "application/pdf",
        "private",
        expires,
    )
}

fn far_future() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 86_400
}

fn tus_headers(c: &mut Criterion) {
    let mut g = c.benchmark_group("tus_headers");
    g.bench_function("parse_size", |b| {
        b.iter(|| headers::parse_size(black_box("1073741824")))
    });
    g.bench_function("parse_creation_length", |b| {
        b.iter(|| headers::parse_creation_length(black_box(Some("10240")), black_box(None)))
    });
    let simple = "filename YmVuY2gtMS5iaW4=,filetype YXBwbGljYXRpb24vb2N0ZXQtc3RyZWFt";
    g.bench_function("parse_metadata/filename+filetype", |b| {
        b.iter(|| headers::parse_metadata(black_box(simple)))
    });
    let granite = granite_metadata(far_future());
    g.bench_function("parse_metadata/granite_5_pairs", |b| {
        b.iter(|| headers::parse_metadata(black_box(&granite)))
    });
    let parsed = headers::parse_metadata(&granite);
    g.bench_function("serialize_metadata/granite_5_pairs", |b| {
        b.iter(|| headers::serialize_metadata(black_box(&parsed)))
    });
    g.bench_function("parse_checksum/sha256", |b| {
        b.iter(|| {
            headers::parse_checksum(black_box(
                "sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            ))
        })
    });
    g.finish();
}

fn upload_token(c: &mut Criterion) {
    let tokens = UploadTokens::new(Some(Secret::new(SECRET)), false, Prefixes::default());
    let metadata = headers::parse_metadata(&granite_metadata(far_future()));
    assert!(
        tokens
            .check_creation(&metadata)
            .expect("valid token")
            .is_some()
    );
    c.bench_function("upload_token/check_creation", |b| {
        b.iter(|| tokens.check_creation(black_box(&metadata)))
    });
}

fn downloads(c: &mut Criterion) {
    let mut g = c.benchmark_group("downloads");
    let raw = b"/assets/private/users/42/reports/2025-q1%20summary.pdf";
    g.bench_function("uri_normalize", |b| {
        b.iter(|| uri::normalize(black_box(raw)))
    });
    let path = uri::normalize(raw).expect("valid path");
    let expires = i64::try_from(far_future()).unwrap_or(i64::MAX);
    let token = secure_link::sign(&path, expires, SECRET);
    let query = format!("md5={token}&expires={expires}");
    let now = expires - 3600;
    assert_eq!(
        secure_link::check(Some(query.as_bytes()), &path, SECRET, now),
        secure_link::LinkCheck::Valid
    );
    g.bench_function("secure_link_check/valid", |b| {
        b.iter(|| {
            secure_link::check(
                black_box(Some(query.as_bytes())),
                black_box(&path),
                SECRET,
                now,
            )
        })
    });
    let forged = format!("md5=AAAAAAAAAAAAAAAAAAAAAA&expires={expires}");
    g.bench_function("secure_link_check/forged", |b| {
        b.iter(|| {
            secure_link::check(
                black_box(Some(forged.as_bytes())),
                black_box(&path),
                SECRET,
                now,
            )
        })
    });
    g.bench_function("range_parse/single", |b| {
        b.iter(|| tusgate::range::parse(black_box("bytes=1048576-2097151"), 1 << 30))
    });
    g.bench_function("range_parse/multi", |b| {
        b.iter(|| tusgate::range::parse(black_box("bytes=0-99, 200-299, -500"), 1 << 30))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = tus_headers, upload_token, downloads
}
criterion_main!(benches);
