//! The conformance harness: starts the server under test as a real process with tusd's flags,
//! and talks raw HTTP/1.1 to it so every test controls exactly the bytes sent (partial bodies,
//! chunked overflows, stalls, resets).
//!
//! Target selection (environment):
//! - `CONFORMANCE_TARGET`: `tusgate` (default) or `tusd`;
//! - `CONFORMANCE_SERVER`: the binary (default: the tusgate this crate builds; required for tusd).
//!
//! Both binaries take the same flags, print the same `You can now upload files to: URL` line on
//! startup and are stopped when the [`Server`] is dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which implementation is under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Tusgate,
    Tusd,
}

pub(crate) fn target() -> Target {
    match std::env::var("CONFORMANCE_TARGET").as_deref() {
        Ok("tusd") => Target::Tusd,
        Ok("tusgate") | Err(_) => Target::Tusgate,
        Ok(other) => panic!("CONFORMANCE_TARGET must be tusgate or tusd, not {other:?}"),
    }
}

/// How to start a server (see [`Server::start`] for the common case).
#[derive(Debug, Clone, Default)]
pub(crate) struct Launch {
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// Leave out `-allow-uploads-without-token` (tusgate then needs UPLOAD_SECRET).
    pub(crate) require_tokens: bool,
    /// A command the server is started through (`prlimit --nofile=256:256`); it must exec the
    /// server so that the child's pid is the server's.
    pub(crate) wrapper: Vec<String>,
    /// Close the read end of the server's stderr right after starting it, as a log collector
    /// that died would leave it.
    pub(crate) close_stderr: bool,
}

impl Launch {
    pub(crate) fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    pub(crate) fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn require_tokens(mut self) -> Self {
        self.require_tokens = true;
        self
    }

    pub(crate) fn wrapper(mut self, command: &[&str]) -> Self {
        self.wrapper = command.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    pub(crate) fn close_stderr(mut self) -> Self {
        self.close_stderr = true;
        self
    }

    pub(crate) fn start(self) -> Server {
        Server::launch(tempfile::tempdir().expect("temp dir"), self)
    }
}

/// A running server; killed on drop.
pub(crate) struct Server {
    child: Child,
    launch: Launch,
    /// `host:port`
    pub(crate) addr: String,
    pub(crate) base_path: String,
    pub(crate) dir: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server with the default base path and `extra` tusd flags.
    pub(crate) fn start(extra: &[&str]) -> Server {
        let launch = Launch {
            args: extra.iter().map(|s| (*s).to_owned()).collect(),
            ..Launch::default()
        };
        Self::launch(tempfile::tempdir().expect("temp dir"), launch)
    }

    fn launch(dir: tempfile::TempDir, launch: Launch) -> Server {
        let (child, log, url) = spawn(&dir, &launch);
        let rest = url.strip_prefix("http://").expect("http URL");
        let slash = rest.find('/').expect("URL has a path");
        Server {
            child,
            launch,
            addr: rest[..slash].to_owned(),
            base_path: rest[slash..].to_owned(),
            dir,
            log,
        }
    }

    /// Kills the process with SIGKILL (no chance to clean up) and waits for it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same server again on the same directory (and the same port, so upload URLs
    /// stay valid); `launch` may change the environment, e.g. to remove a crash point.
    pub(crate) fn restart_with(&mut self, launch: Launch) {
        self.kill();
        let port = self.addr.rsplit(':').next().expect("port").to_owned();
        let mut launch = launch;
        launch.args.retain(|a| !a.starts_with("-port"));
        launch.args.push(format!("-port={port}"));
        let (child, log, _) = spawn(&self.dir, &launch);
        self.child = child;
        self.log = log;
        self.launch = launch;
    }

    /// Restarts without the crash point the last start had (the crash tests' second start).
    pub(crate) fn restart_without_crash_point(&mut self) {
        let mut clean = self.launch_settings();
        clean.env.retain(|(k, _)| k != "TUSGATE_CRASH_AT");
        self.restart_with(clean);
    }

    pub(crate) fn restart(&mut self) {
        let launch = self.launch.clone();
        self.restart_with(launch);
    }

    /// The launch settings (to derive a restart's).
    pub(crate) fn launch_settings(&self) -> Launch {
        self.launch.clone()
    }
}

/// Starts the process and waits for its startup line; returns it with its log and URL.
fn spawn(dir: &tempfile::TempDir, launch: &Launch) -> (Child, Arc<Mutex<String>>, String) {
    let binary = match (target(), std::env::var("CONFORMANCE_SERVER")) {
        (_, Ok(path)) => path,
        (Target::Tusgate, Err(_)) => env!("CARGO_BIN_EXE_tusgate").to_owned(),
        (Target::Tusd, Err(_)) => {
            panic!("CONFORMANCE_TARGET=tusd needs CONFORMANCE_SERVER=/path/to/tusd")
        }
    };
    let upload_dir = dir.path().join("uploads");
    let mut args: Vec<String> = vec!["-host=127.0.0.1".into()];
    // A test may bring its own upload directory (a small filesystem, say).
    if !launch.args.iter().any(|a| a.starts_with("-upload-dir")) {
        args.push(format!("-upload-dir={}", upload_dir.display()));
    }
    if !launch.args.iter().any(|a| a.starts_with("-port")) {
        args.push("-port=0".into());
    }
    if target() == Target::Tusgate && !launch.require_tokens {
        args.push("-allow-uploads-without-token".into());
    }
    args.extend(launch.args.iter().cloned());
    let mut command = match launch.wrapper.split_first() {
        Some((program, wrapper_args)) => {
            let mut command = Command::new(program);
            command.args(wrapper_args).arg(&binary);
            command
        }
        None => Command::new(&binary),
    };
    let mut child = command
        .args(&args)
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("piped stderr");
    if launch.close_stderr {
        drop(stderr);
    } else {
        let stderr_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = stderr_log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let stdout_log = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, url)) = line.split_once("You can now upload files to: ") {
                let _ = tx.send(url.trim().to_owned());
            }
            let mut log = stdout_log.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&line);
            log.push('\n');
        }
    });
    let url = match rx.recv_timeout(Duration::from_secs(15)) {
        Ok(url) => url,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "server did not start; output:\n{}",
                log.lock().unwrap_or_else(|e| e.into_inner())
            );
        }
    };
    (child, log, url)
}

impl Server {
    /// The server's output so far (for failure messages).
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A request to `path`; relative paths are under the base path.
    pub(crate) fn req(&self, method: &str, path: &str) -> Req<'_> {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("{}{path}", self.base_path)
        };
        Req {
            server: self,
            method: method.to_owned(),
            path,
            headers: Vec::new(),
            body: Payload::None,
            headers_only: false,
        }
    }

    /// A tus request (carries `Tus-Resumable: 1.0.0`).
    pub(crate) fn tus(&self, method: &str, path: &str) -> Req<'_> {
        self.req(method, path).header("Tus-Resumable", "1.0.0")
    }

    /// Creates an upload of `length` bytes (or deferred) and returns its path.
    pub(crate) fn create(&self, length: Option<u64>) -> String {
        let mut req = self.tus("POST", "");
        req = match length {
            Some(len) => req.header("Upload-Length", &len.to_string()),
            None => req.header("Upload-Defer-Length", "1"),
        };
        let resp = req.send().status(201);
        self.location(&resp)
    }

    /// Creates an upload with `data` fully uploaded; returns its path.
    pub(crate) fn create_complete(&self, data: &[u8]) -> String {
        let path = self.create(Some(data.len() as u64));
        if !data.is_empty() {
            self.patch(&path, 0, data).status(204);
        }
        path
    }

    pub(crate) fn patch(&self, path: &str, offset: u64, data: &[u8]) -> Resp {
        self.tus("PATCH", path)
            .header("Upload-Offset", &offset.to_string())
            .chunk(data)
            .send()
    }

    /// The stored bytes, through GET on the upload URL.
    pub(crate) fn stored(&self, path: &str) -> Vec<u8> {
        self.req("GET", path).send().status(200).body
    }

    /// The path of the upload a creation response points to.
    pub(crate) fn location(&self, resp: &Resp) -> String {
        self.path_of(&resp.header("location").expect("Location header"))
    }

    /// The path part of an absolute upload URL.
    pub(crate) fn path_of(&self, url: &str) -> String {
        let prefix = format!("http://{}", self.addr);
        url.strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{url} is not on {prefix}"))
            .to_owned()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream
    }

    /// Sends SIGTERM and waits for the process to exit (bounded).
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        self.terminate_within(Duration::from_secs(30))
            .expect("server did not exit after SIGTERM")
    }

    /// Sends SIGTERM and waits at most `bound` for the process to exit.
    pub(crate) fn terminate_within(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + bound;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- server output ---\n{}", self.log());
        }
    }
}

/// How the request body is sent.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    None,
    Bytes(Vec<u8>),
    /// `Transfer-Encoding: chunked` with these chunks.
    Chunked(Vec<Vec<u8>>),
}

/// A request being built.
pub(crate) struct Req<'a> {
    server: &'a Server,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Payload,
    headers_only: bool,
}

impl Req<'_> {
    /// Reads the response as if to a HEAD request (no body, whatever the headers say).
    pub(crate) fn headers_only(mut self) -> Self {
        self.headers_only = true;
        self
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A tus chunk: `data` as an `application/offset+octet-stream` body.
    pub(crate) fn chunk(self, data: &[u8]) -> Self {
        self.header("Content-Type", "application/offset+octet-stream")
            .body(data)
    }

    pub(crate) fn body(mut self, data: &[u8]) -> Self {
        self.body = Payload::Bytes(data.to_vec());
        self
    }

    pub(crate) fn chunked(mut self, chunks: &[&[u8]]) -> Self {
        self.body = Payload::Chunked(chunks.iter().map(|c| c.to_vec()).collect());
        self
    }

    /// The request head (and `Content-Length` for byte bodies unless one was set).
    pub(crate) fn head_bytes(&self, content_length: Option<u64>) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.method, self.path, self.server.addr
        );
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        match (&self.body, content_length) {
            (Payload::Chunked(_), _) => head.push_str("Transfer-Encoding: chunked\r\n"),
            (_, Some(len)) if !has("content-length") => {
                head.push_str(&format!("Content-Length: {len}\r\n"))
            }
            (Payload::Bytes(b), None) if !has("content-length") => {
                head.push_str(&format!("Content-Length: {}\r\n", b.len()))
            }
            _ => {}
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// Sends the request and reads the whole response.
    pub(crate) fn send(self) -> Resp {
        let mut stream = self.server.connect();
        stream
            .write_all(&self.head_bytes(None))
            .expect("write head");
        match &self.body {
            Payload::None => {}
            Payload::Bytes(b) => {
                // The server may answer and close before reading the body (e.g. 413).
                let _ = stream.write_all(b);
            }
            Payload::Chunked(chunks) => {
                for chunk in chunks {
                    let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
                    let _ = stream.write_all(chunk);
                    let _ = stream.write_all(b"\r\n");
                }
                let _ = stream.write_all(b"0\r\n\r\n");
            }
        }
        read_response(&mut stream, self.method == "HEAD" || self.headers_only)
    }

    /// Sends the head and `sent` body bytes of a body declared `declared` bytes long, then
    /// leaves the connection open; the caller reads the response from the returned stream.
    pub(crate) fn send_partial(self, declared: u64, sent: &[u8]) -> (TcpStream, bool) {
        let mut stream = self.server.connect();
        stream
            .write_all(&self.head_bytes(Some(declared)))
            .expect("write head");
        stream.write_all(sent).expect("write body");
        let is_head = self.method == "HEAD";
        (stream, is_head)
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    /// Lower-cased names; repeated headers keep every value in order.
    pub(crate) headers: BTreeMap<String, Vec<String>>,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(|v| v.join(", "))
    }

    pub(crate) fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the status.
    #[track_caller]
    pub(crate) fn status(self, expected: u16) -> Self {
        assert_eq!(self.status, expected, "status; response: {self:#?}");
        self
    }

    /// Asserts a header's exact value.
    #[track_caller]
    pub(crate) fn has(self, name: &str, value: &str) -> Self {
        assert_eq!(
            self.header(name).as_deref(),
            Some(value),
            "header {name}; response: {self:#?}"
        );
        self
    }

    /// Asserts a header is absent.
    #[track_caller]
    pub(crate) fn lacks(self, name: &str) -> Self {
        assert_eq!(
            self.header(name),
            None,
            "header {name} must be absent; response: {self:#?}"
        );
        self
    }

    /// Asserts the exact body.
    #[track_caller]
    pub(crate) fn body_is(self, expected: &str) -> Self {
        assert_eq!(self.body_text(), expected, "body; response: {self:#?}");
        self
    }
}

/// Reads one response (Content-Length, chunked or close-delimited body).
pub(crate) fn read_response(stream: &mut TcpStream, is_head: bool) -> Resp {
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    // Skip interim responses (100 Continue).
    while status_line.starts_with("HTTP/1.1 1") {
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("interim header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        status_line.clear();
        reader.read_line(&mut status_line).expect("status line");
    }
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header colon");
        headers
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value.trim().to_owned());
    }
    let mut body = Vec::new();
    let no_body = is_head || status == 204 || status == 304;
    if !no_body {
        if headers
            .get("transfer-encoding")
            .is_some_and(|v| v.iter().any(|v| v.contains("chunked")))
        {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).expect("chunk size");
                let size = usize::from_str_radix(size.trim(), 16).expect("chunk size hex");
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).expect("chunk");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = headers
            .get("content-length")
            .and_then(|v| v[0].parse::<usize>().ok())
        {
            body.resize(len, 0);
            reader.read_exact(&mut body).expect("body");
        } else {
            let _ = reader.read_to_end(&mut body);
        }
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// `n` bytes of deterministic test data.
pub(crate) fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Standard base64 (for Upload-Metadata and checksums).
pub(crate) fn b64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The secrets the token tests run with.
pub(crate) const UPLOAD_SECRET: &str = "upload-secret-for-tests";
pub(crate) const LINK_SECRET: &str = "link-secret-for-tests";

/// A tusgate that requires upload tokens and signs private downloads.
pub(crate) fn tokened() -> Launch {
    Launch::default()
        .require_tokens()
        .env("UPLOAD_SECRET", UPLOAD_SECRET)
        .env("SECURE_LINK_SECRET", LINK_SECRET)
}

/// Unix time now, in seconds.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `Upload-Metadata` granite-assets sends for a tokened upload.
pub(crate) fn token_metadata(key: &str, visibility: &str, content_type: &str) -> String {
    tusgate::sign::upload_metadata(
        &tusgate::tokens::Secret::new(UPLOAD_SECRET),
        key,
        content_type,
        visibility,
        unix_now() + 600,
    )
}

impl Server {
    /// Creates a tokened upload of `len` bytes; returns its path.
    pub(crate) fn create_tokened(&self, key: &str, visibility: &str, len: usize) -> String {
        let metadata = token_metadata(key, visibility, "application/octet-stream");
        let resp = self
            .tus("POST", "")
            .header("Upload-Length", &len.to_string())
            .header("Upload-Metadata", &metadata)
            .send()
            .status(201);
        self.location(&resp)
    }

    /// Where a published asset lives on disk (`public/k`): the assets dir is the upload dir.
    pub(crate) fn asset(&self, path: &str) -> std::path::PathBuf {
        self.dir.path().join("uploads").join(path)
    }

    /// A signed `/assets/private/<key>` path, valid for an hour.
    pub(crate) fn signed_private(&self, key: &str) -> String {
        let url = tusgate::sign::download_url(
            "http://x/assets",
            "private",
            key,
            Some((
                &tusgate::tokens::Secret::new(LINK_SECRET),
                (unix_now() + 3600) as i64,
            )),
        );
        url[url.find("/assets").expect("path")..].to_owned()
    }
}
