//! tusgate's own behaviour beyond tusd, end to end against the real binary: upload tokens at
//! creation, publishing into `<visibility>/<key>`, the overwrite policy, and what a crash at
//! any moment of a publish leaves behind.

// Shared with the `conformance` target, which uses parts this one does not.
#[allow(dead_code)]
mod harness;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::{Launch, Server, data};
use tusgate::sign;
use tusgate::tokens::Secret;

const UPLOAD_SECRET: &str = "upload-secret-for-tests";
const LINK_SECRET: &str = "link-secret-for-tests";

fn tokened() -> Launch {
    Launch::default()
        .require_tokens()
        .env("UPLOAD_SECRET", UPLOAD_SECRET)
        .env("SECURE_LINK_SECRET", LINK_SECRET)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn metadata(key: &str, visibility: &str, expires: u64) -> String {
    sign::upload_metadata(
        &Secret::new(UPLOAD_SECRET),
        key,
        "application/octet-stream",
        visibility,
        expires,
    )
}

/// Creates a tokened upload of `len` bytes; returns its path.
fn create(s: &Server, key: &str, visibility: &str, len: usize) -> String {
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", &len.to_string())
        .header("Upload-Metadata", &metadata(key, visibility, now() + 600))
        .send()
        .status(201);
    s.location(&resp)
}

fn asset(s: &Server, path: &str) -> PathBuf {
    s.dir.path().join("uploads").join(path)
}

fn upload_files(s: &Server) -> Vec<String> {
    std::fs::read_dir(s.dir.path().join("uploads"))
        .map(|dir| {
            dir.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() >= 32)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn refuses_to_start_without_a_secret_or_the_opt_in() {
    let dir = tempfile::tempdir().expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tusgate"))
        .args([
            "-port=0",
            "-host=127.0.0.1",
            &format!("-upload-dir={}", dir.path().display()),
        ])
        .env_remove("UPLOAD_SECRET")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("UPLOAD_SECRET") && stderr.contains("--allow-uploads-without-token"),
        "{stderr}"
    );
}

#[test]
fn a_tokened_upload_is_published_at_visibility_and_key() {
    let s = tokened().start();
    let bytes = data(300_000);
    let upload = create(&s, "reports/2026/q1 report+ü.bin", "private", bytes.len());
    s.patch(&upload, 0, &bytes[..100_000]).status(204);
    assert!(
        !asset(&s, "private/reports/2026/q1 report+ü.bin").exists(),
        "published before complete"
    );
    s.patch(&upload, 100_000, &bytes[100_000..])
        .status(204)
        .has("Upload-Offset", "300000");
    assert_eq!(
        std::fs::read(asset(&s, "private/reports/2026/q1 report+ü.bin")).expect("published"),
        bytes
    );
    // The upload still answers as complete; its bytes are read through the asset URL only.
    s.req("HEAD", &upload)
        .send()
        .status(200)
        .has("Upload-Offset", "300000")
        .has("Upload-Length", "300000");
    s.req("GET", &upload).send().status(403);
    assert_eq!(
        upload_files(&s).len(),
        1,
        "only the state file remains: {:?}",
        upload_files(&s)
    );
}

#[test]
fn public_and_private_downloads_of_a_published_upload() {
    let s = tokened().start();
    let public = create(&s, "site/logo.png", "public", 4);
    s.patch(&public, 0, b"\x89PNG").status(204);
    s.req("GET", "/assets/public/site/logo.png")
        .send()
        .status(200)
        .has("Content-Type", "image/png")
        .has("Cache-Control", "public, max-age=86400, immutable")
        .body_is("\u{FFFD}PNG");
    let private = create(&s, "docs/a b.pdf", "private", 3);
    s.patch(&private, 0, b"pdf").status(204);
    let url = sign::download_url(
        "http://x/assets",
        "private",
        "docs/a b.pdf",
        Some((&Secret::new(LINK_SECRET), 4102444800)),
    );
    let target = &url[url.find("/assets").expect("path")..];
    s.req("GET", target)
        .send()
        .status(200)
        .has("Content-Type", "application/pdf")
        .has("Cache-Control", "private, no-store")
        .body_is("pdf");
    let expired = sign::download_url(
        "http://x/assets",
        "private",
        "docs/a b.pdf",
        Some((&Secret::new(LINK_SECRET), 1000)),
    );
    s.req("GET", &expired[expired.find("/assets").expect("path")..])
        .send()
        .status(410);
    s.req("GET", "/assets/private/docs/a%20b.pdf")
        .send()
        .status(403);
}

/// Issue 9, finding 9: 50,000 one-byte parts cost 1.2 CPU-seconds and a multipart answer 26
/// times the request. Past `range::MAX_RANGES` parts the whole asset is sent, as nginx does
/// with `max_ranges`.
#[test]
fn a_range_with_more_parts_than_max_ranges_gets_the_whole_asset() {
    let s = tokened().start();
    let bytes = data(1000);
    let upload = create(&s, "many/parts.bin", "public", bytes.len());
    s.patch(&upload, 0, &bytes).status(204);
    let parts = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("{0}-{0}", i * 2)).collect();
        format!("bytes={}", list.join(","))
    };
    let at_cap = s
        .req("GET", "/assets/public/many/parts.bin")
        .header("Range", &parts(tusgate::range::MAX_RANGES))
        .send()
        .status(206);
    let content_type = at_cap.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/byteranges"),
        "{content_type}"
    );
    // One part more, still far less than the asset in total: the whole asset.
    let over = s
        .req("GET", "/assets/public/many/parts.bin")
        .header("Range", &parts(tusgate::range::MAX_RANGES + 1))
        .send()
        .status(200)
        .has("Content-Length", "1000")
        .lacks("Content-Range");
    assert!(over.body == bytes, "not the whole asset");
}

#[test]
fn missing_bad_and_expired_tokens_store_nothing() {
    let s = tokened().start();
    s.tus("POST", "")
        .header("Upload-Length", "5")
        .send()
        .status(403);
    let expired = metadata("k.bin", "public", now() - 10);
    s.tus("POST", "")
        .header("Upload-Length", "5")
        .header("Upload-Metadata", &expired)
        .send()
        .status(400);
    // Signed for one key, sent for another.
    let other_key = metadata("k.bin", "public", now() + 600)
        .replace(&sign_key_b64("k.bin"), &sign_key_b64("other.bin"));
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "5")
        .header("Upload-Metadata", &other_key)
        .send();
    assert_eq!(resp.status, 403, "{resp:?}");
    assert!(
        resp.body_text().starts_with("ERR_UPLOAD_TOKEN_INVALID: "),
        "{resp:?}"
    );
    let unservable = metadata("a//b.bin", "public", now() + 600);
    s.tus("POST", "")
        .header("Upload-Length", "5")
        .header("Upload-Metadata", &unservable)
        .send()
        .status(400);
    assert!(upload_files(&s).is_empty(), "{:?}", upload_files(&s));
}

fn sign_key_b64(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(key)
}

#[test]
fn partials_need_tokens_and_only_the_final_publishes() {
    let s = tokened().start();
    let meta = metadata("joined.bin", "public", now() + 600);
    let mut partials = Vec::new();
    for part in [&b"hello "[..], b"world"] {
        let resp = s
            .tus("POST", "")
            .header("Upload-Length", &part.len().to_string())
            .header("Upload-Concat", "partial")
            .header("Upload-Metadata", &meta)
            .send()
            .status(201);
        let path = s.location(&resp);
        s.patch(&path, 0, part).status(204);
        partials.push(path);
    }
    assert!(
        !asset(&s, "public/joined.bin").exists(),
        "a partial published itself"
    );
    s.tus("POST", "")
        .header("Upload-Concat", "partial")
        .header("Upload-Length", "1")
        .send()
        .status(403);
    s.tus("POST", "")
        .header(
            "Upload-Concat",
            &format!("final;{} {}", partials[0], partials[1]),
        )
        .header("Upload-Metadata", &meta)
        .send()
        .status(201);
    assert_eq!(
        std::fs::read(asset(&s, "public/joined.bin")).expect("published"),
        b"hello world"
    );
}

#[test]
fn replace_is_the_default_overwrite_policy() {
    let s = tokened().start();
    for content in [&b"first version"[..], b"second"] {
        let upload = create(&s, "same.txt", "public", content.len());
        s.patch(&upload, 0, content).status(204);
    }
    assert_eq!(
        std::fs::read(asset(&s, "public/same.txt")).expect("published"),
        b"second"
    );
}

#[test]
fn keep_refuses_to_overwrite_an_existing_asset() {
    let s = tokened().arg("-overwrite=keep").start();
    let upload = create(&s, "once.txt", "public", 3);
    s.patch(&upload, 0, b"one").status(204);
    let resp = s
        .tus("POST", "")
        .header("Upload-Length", "3")
        .header(
            "Upload-Metadata",
            &metadata("once.txt", "public", now() + 600),
        )
        .send()
        .status(403);
    assert!(resp.body_text().starts_with("ERR_ASSET_EXISTS"), "{resp:?}");
    assert_eq!(
        std::fs::read(asset(&s, "public/once.txt")).expect("kept"),
        b"one"
    );
}

/// Uploads all but the last byte, then sends the last one into a server that crashes at
/// `point` during the publish; after a restart the asset must be whole.
fn crash_during_publish(point: &str) {
    let mut s = tokened().start();
    let old = data(50_000);
    let first = create(&s, "crash.bin", "private", old.len());
    s.patch(&first, 0, &old).status(204);

    let new: Vec<u8> = data(200_000).iter().map(|b| b.wrapping_add(1)).collect();
    let upload = create(&s, "crash.bin", "private", new.len());
    s.patch(&upload, 0, &new[..new.len() - 1]).status(204);
    s.restart_with(s.launch_settings().env("TUSGATE_CRASH_AT", point));
    let mut stream = s.connect();
    let head = format!(
        "PATCH {upload} HTTP/1.1\r\nHost: {}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 1\r\n\r\n",
        s.addr,
        new.len() - 1
    );
    use std::io::{Read, Write};
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(&new[new.len() - 1..]).expect("last byte");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(
        answer.is_empty(),
        "the server answered instead of crashing: {}",
        String::from_utf8_lossy(&answer)
    );
    // Right after the crash the asset is the old file or the new one, never torn.
    let on_disk = std::fs::read(asset(&s, "private/crash.bin")).expect("an asset is there");
    assert!(
        on_disk == old || on_disk == new,
        "torn asset after crashing at {point}"
    );
    // The restart finishes the interrupted publish.
    s.restart_without_crash_point();
    assert!(
        std::fs::read(asset(&s, "private/crash.bin")).expect("published") == new,
        "publish not finished at {point}"
    );
    s.req("HEAD", &upload)
        .send()
        .status(200)
        .has("Upload-Offset", &new.len().to_string());
}

#[test]
fn crash_after_the_last_byte_before_the_publish() {
    crash_during_publish("upload:stored");
}

#[test]
fn crash_after_the_publish_is_recorded() {
    crash_during_publish("publish:phase-recorded");
}

#[test]
fn crash_after_the_rename() {
    crash_during_publish("publish:renamed");
}

/// SIGKILL at arbitrary moments while uploads of two versions of one key complete: every time,
/// the asset on disk is absent (before the first publish) or exactly one version.
#[test]
fn sigkill_at_random_moments_never_tears_an_asset() {
    let mut s = tokened().arg("-fsync=never").start();
    let versions = [
        data(3 << 20),
        data(3 << 20).iter().map(|b| b ^ 0x5a).collect::<Vec<u8>>(),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seed = now();
    for round in 0..12 {
        assert!(Instant::now() < deadline, "too slow");
        let version = &versions[round % 2];
        let upload = create(&s, "kill.bin", "public", version.len());
        let sender = {
            let addr = s.addr.clone();
            let body = version.clone();
            let upload = upload.clone();
            std::thread::spawn(move || {
                use std::io::Write;
                let Ok(mut stream) = std::net::TcpStream::connect(&addr) else {
                    return;
                };
                let head = format!(
                    "PATCH {upload} HTTP/1.1\r\nHost: {addr}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            })
        };
        // A pseudo-random moment within the upload and publish.
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(seed >> 33 & 31));
        s.kill();
        let _ = sender.join();
        if let Ok(on_disk) = std::fs::read(asset(&s, "public/kill.bin")) {
            assert!(versions.contains(&on_disk), "torn asset in round {round}");
        }
        s.restart();
        // Resume whatever is missing, so the upload completes and publishes.
        let offset: usize = s
            .req("HEAD", &upload)
            .send()
            .status(200)
            .header("Upload-Offset")
            .and_then(|o| o.parse().ok())
            .expect("offset");
        if offset < version.len() {
            s.patch(&upload, offset as u64, &version[offset..])
                .status(204);
        }
        assert!(
            std::fs::read(asset(&s, "public/kill.bin")).expect("published") == *version,
            "round {round}"
        );
    }
}

/// Upload locks live in one process's memory, so a second process on the same upload dir
/// would write and publish the same uploads unseen: it is refused at startup with a clear
/// reason. The lock goes with the process, so a restart after SIGKILL is not refused.
#[test]
fn a_second_process_on_the_same_upload_dir_is_refused() {
    let mut s = tokened().start();
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_tusgate"))
        .args([
            "-port=0",
            "-host=127.0.0.1",
            "-allow-uploads-without-token",
            &format!("-upload-dir={}", s.dir.path().join("uploads").display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second process started on the same upload dir");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(
        stderr.contains("another tusgate process is using this upload directory"),
        "{stderr}"
    );
    s.kill();
    s.restart();
    s.req("GET", "/health").send().status(200);
}
