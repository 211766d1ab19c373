//! The whole request path: a fuzzed request (method, target, header set, small body) through
//! `App::handle` against a `LocalStore` on a temporary directory, its response body read to
//! the end. Input, HTTP/1-like: `METHOD TARGET`, then `Name: value` lines, an empty line, the
//! body.
//!
//! Every iteration gets a fresh store with the same fixture (two public assets, a private one,
//! an upload waiting for bytes, a complete partial upload), so an input does the same thing
//! whenever it runs and the directory does not grow with the run. Checked: no panic, a
//! `Content-Length` that matches the body, and the bytes of the private asset only ever go to
//! a request with a valid signature for it.
#![no_main]

mod header_lines;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tusgate::app::App;
use tusgate::config::{Cli, Config, normalize_go_args};
use tusgate::download::secure_link::{LinkCheck, check};
use tusgate::download::uri::normalize;
use tusgate::storage::Store;
use tusgate::storage::local::LocalStore;
use tusgate::upload::{Concat, Metadata, UploadId, UploadInfo};

const UPLOAD_SECRET: &str = "fuzz-upload-secret";
const LINK_SECRET: &str = "fuzz-link-secret";
/// The private asset's bytes: they must never reach an unsigned request.
const PRIVATE_BYTES: &[u8] = b"PRIVATE-ASSET-BYTES-7f3a";
/// An upload waiting for its 11 bytes, and a complete partial of 5.
const WAITING: &str = "0123456789abcdef0123456789abcdef";
const PARTIAL: &str = "fedcba9876543210fedcba9876543210";

struct Harness {
    runtime: tokio::runtime::Runtime,
    config: Config,
    root: PathBuf,
    next: AtomicU64,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    // scripts/fuzz.sh points TMPDIR at a directory it removes afterwards.
    let root = std::env::temp_dir().join(format!("tusgate-fuzz-request-{}", std::process::id()));
    let args = [
        "tusgate",
        "-allow-uploads-without-token",
        "--upload-secret",
        UPLOAD_SECRET,
        "--secure-link-secret",
        LINK_SECRET,
        "-behind-proxy",
        "-max-size=65536",
        "-expose-metrics",
        "--fsync=never",
    ];
    let cli = <Cli as clap::Parser>::parse_from(
        normalize_go_args(args.iter().map(|s| (*s).to_owned())).args,
    );
    let config = Config::from_args(&cli.serve).expect("the fuzz configuration is valid");
    // One thread, built once: a request must not pay for a runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    Harness {
        runtime,
        config,
        root,
        next: AtomicU64::new(0),
    }
});

/// A fresh store with the fixture, and the app serving it.
async fn app(dir: &std::path::Path, config: &Config) -> Arc<App> {
    let mut config = config.clone();
    config.upload_dir = dir.to_owned();
    config.assets_dir = dir.to_owned();
    for (path, bytes) in [
        ("public/hello.txt", &b"hello world"[..]),
        ("public/range.txt", b"0123456789abcdefghij"),
        ("private/secret.txt", PRIVATE_BYTES),
    ] {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("fixture dir");
        std::fs::write(path, bytes).expect("fixture asset");
    }
    let store = LocalStore::open(dir, dir, config.fsync, config.overwrite).expect("store");
    let id = |raw| UploadId::parse(raw).expect("fixture id");
    let mut meta = Metadata::new();
    meta.insert("filename".into(), "a.txt".into());
    let waiting = UploadInfo::new(id(WAITING), Some(11), meta, Concat::None);
    store.create(&waiting).await.expect("fixture upload");
    let partial = UploadInfo::new(id(PARTIAL), Some(5), Metadata::new(), Concat::Partial);
    store.create(&partial).await.expect("fixture partial");
    // An upload's offset is its data file's size.
    std::fs::write(dir.join(PARTIAL), b"hello").expect("fixture partial bytes");
    Arc::new(App::new(config, Arc::new(store)).expect("the fixture app has no hooks to set up"))
}

/// `METHOD TARGET\nName: value\n…\n\nbody`; `None` for what `http` cannot represent.
fn request(data: &[u8]) -> Option<Request<Full<Bytes>>> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &b""[..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let first = lines.next()?;
    let space = first.iter().position(|&b| b == b' ')?;
    let method = Method::from_bytes(&first[..space]).ok()?;
    let uri = Uri::try_from(&first[space + 1..]).ok()?;
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in header_lines::parse(lines) {
        builder = builder.header(name, value);
    }
    builder.body(Full::new(Bytes::copy_from_slice(body))).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = request(data) else {
        return;
    };
    let method = request.method().clone();
    let uri = request.uri().clone();
    let h = &*HARNESS;
    let dir = h
        .root
        .join(h.next.fetch_add(1, Ordering::Relaxed).to_string());
    let (status, headers, body) = h.runtime.block_on(async {
        let app = app(&dir, &h.config).await;
        let response = app.handle(request).await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes());
        (parts.status, parts.headers, body)
    });
    let _ = std::fs::remove_dir_all(&dir);

    // A stored object that cannot be read ends the body with an error; none here should.
    let body = body.expect("response body");
    // hyper sends no body for these (`can_have_body` in its h1 role), so a handler may leave
    // one in place.
    let no_body = method == Method::HEAD
        || status == StatusCode::NOT_MODIFIED
        || status == StatusCode::NO_CONTENT
        || status.is_informational()
        || (method == Method::CONNECT && status.is_success());
    if let Some(len) = headers.get(http::header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|l| l.parse().ok())
            .expect("numeric length");
        if !no_body {
            assert_eq!(len, body.len() as u64, "{method} {uri} -> {status}");
        }
    }
    if body
        .windows(PRIVATE_BYTES.len())
        .any(|w| w == PRIVATE_BYTES)
    {
        let path = normalize(uri.path().as_bytes()).expect("served from a valid path");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let query = uri.query().map(str::as_bytes);
        assert_eq!(
            (
                path.as_slice(),
                check(query, &path, LINK_SECRET.as_bytes(), now)
            ),
            (&b"/assets/private/secret.txt"[..], LinkCheck::Valid),
            "private bytes served for {method} {uri}"
        );
    }
});
