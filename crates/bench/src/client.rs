//! The HTTP side of the load generator: hyper's low-level HTTP/1.1 client on keep-alive
//! connections (one per worker), and request bodies cut from one pre-generated buffer.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use sha2::Digest as _;
use tokio::time::{Instant, Sleep};

/// Where requests go: `http://host:port/path?query`.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `host:port`, what is connected to.
    pub(crate) addr: String,
    pub(crate) host_header: HeaderValue,
    /// Path and query of the URL (origin form).
    pub(crate) path: String,
}

impl Target {
    /// Plain `http://` URLs only.
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "{url}: only http:// is supported (not {other}://); put a TLS terminator's \
                     plain-HTTP side in front of the load generator"
                ));
            }
            None => {
                return Err(format!(
                    "{url}: give a full URL such as http://127.0.0.1:8080/files/"
                ));
            }
        }
        let authority = uri.authority().ok_or_else(|| format!("{url}: no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let host = authority.host();
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|_| format!("{url}: invalid host"))?;
        let path = uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str)
            .to_owned();
        Ok(Target {
            addr,
            host_header,
            path,
        })
    }

    /// The request path of an upload URL from a `Location` header: absolute URLs keep their
    /// path (requests still go to this target's address), absolute paths are used as they
    /// are, anything else is relative to the creation URL.
    pub(crate) fn resolve(&self, location: &str) -> String {
        if let Some(rest) = location
            .strip_prefix("http://")
            .or_else(|| location.strip_prefix("https://"))
        {
            return rest
                .find('/')
                .map_or("/".to_owned(), |i| rest[i..].to_owned());
        }
        if location.starts_with('/') {
            return location.to_owned();
        }
        let base = self.path.split('?').next().unwrap_or("/");
        let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{location}")
    }
}

/// An upload: the URL it was created at (index into the plan's targets) and its path there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadAt {
    pub(crate) target: usize,
    pub(crate) path: String,
}

/// The bytes every upload is made of: the upload's byte at offset `o` is `bytes[o % len]`.
/// The length is not a power of two, so equal-sized chunks at different offsets differ and
/// a server that put chunks in the wrong place fails the sha256 check.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    bytes: Bytes,
}

/// 8 MiB plus a prime.
pub(crate) const PATTERN_LEN: usize = (8 << 20) + 4099;

impl Pattern {
    /// Deterministic pseudo-random bytes (splitmix64), written once: the buffer is warm and
    /// reused by every request, never allocated per request.
    pub(crate) fn new() -> Self {
        let mut buf = vec![0u8; PATTERN_LEN];
        let mut state: u64 = 0x7475_7367_6174_6521; // "tusgate!"
        for chunk in buf.chunks_mut(8) {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        Pattern {
            bytes: Bytes::from(buf),
        }
    }

    /// A zero-copy slice of at most `max` bytes of the upload starting at `offset`.
    pub(crate) fn slice(&self, offset: u64, max: u64) -> Bytes {
        let len = self.bytes.len() as u64;
        let start = (offset % len) as usize;
        let n = max.min(len - start as u64) as usize;
        self.bytes.slice(start..start + n)
    }

    /// The sha256 of an upload of `size` bytes, as hex.
    pub(crate) fn sha256(&self, size: u64) -> String {
        let mut hasher = sha2::Sha256::new();
        let mut offset = 0;
        while offset < size {
            let piece = self.slice(offset, size - offset);
            hasher.update(&piece);
            offset += piece.len() as u64;
        }
        hex(&hasher.finalize())
    }
}

/// Pacing of a slow body: at most `rate` bytes per second from its first frame on.
#[derive(Debug)]
struct Pace {
    rate: u64,
    started: Option<Instant>,
    sleep: Pin<Box<Sleep>>,
}

/// A request body: `[offset, end)` of the pattern, handed to hyper in frames of at most
/// `frame` bytes (each a `Bytes` slice of the pattern: no copy), optionally paced. Every
/// frame handed over is added to `progress`.
#[derive(Debug)]
pub(crate) struct PatternBody {
    pattern: Option<Pattern>,
    start: u64,
    offset: u64,
    end: u64,
    frame: u64,
    progress: Option<Arc<AtomicU64>>,
    pace: Option<Pace>,
}

impl PatternBody {
    pub(crate) fn empty() -> Self {
        PatternBody {
            pattern: None,
            start: 0,
            offset: 0,
            end: 0,
            frame: 1,
            progress: None,
            pace: None,
        }
    }

    pub(crate) fn new(
        pattern: &Pattern,
        range: std::ops::Range<u64>,
        frame: u64,
        progress: &Arc<AtomicU64>,
        rate: Option<u64>,
    ) -> Self {
        PatternBody {
            pattern: Some(pattern.clone()),
            start: range.start,
            offset: range.start,
            end: range.end,
            frame: frame.max(1),
            progress: Some(Arc::clone(progress)),
            pace: rate.filter(|&r| r > 0).map(|rate| Pace {
                rate,
                started: None,
                sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            }),
        }
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some(pattern) = &this.pattern else {
            return Poll::Ready(None);
        };
        if this.offset >= this.end {
            return Poll::Ready(None);
        }
        if let Some(pace) = &mut this.pace {
            let now = Instant::now();
            let started = *pace.started.get_or_insert(now);
            let sent = this.offset - this.start;
            let due = started + Duration::from_secs_f64(sent as f64 / pace.rate as f64);
            if due > now {
                pace.sleep.as_mut().reset(due);
                if pace.sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
        }
        let data = pattern.slice(this.offset, this.frame.min(this.end - this.offset));
        this.offset += data.len() as u64;
        if let Some(progress) = &this.progress {
            progress.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.offset >= self.end
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.end - self.offset)
    }
}

use std::future::Future as _;

/// One keep-alive HTTP/1.1 connection, opened on first use and again after it broke.
#[derive(Debug)]
pub(crate) struct Conn {
    target: Arc<Target>,
    sender: Option<http1::SendRequest<PatternBody>>,
    /// Request timeout (the whole exchange, body included).
    timeout: Duration,
}

/// A finished exchange: status, headers and how much body came back.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body_len: u64,
    /// The body's first bytes (error responses), or its sha256 when asked for.
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn offset(&self) -> Option<u64> {
        self.header("upload-offset")
            .and_then(|v| v.trim().parse().ok())
    }
}

/// What to do with a response body. The first bytes of an error response are always kept
/// as text, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drain {
    /// Count it only.
    Discard,
    /// Keep the first bytes as text.
    Text,
    /// Hash it all (sha256, hex into `Reply::text`).
    Sha256,
}

impl Conn {
    pub(crate) fn new(target: Arc<Target>, timeout: Duration) -> Self {
        Conn {
            target,
            sender: None,
            timeout,
        }
    }

    /// Where this connection goes.
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    async fn connect(&mut self) -> Result<&mut http1::SendRequest<PatternBody>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = None;
            let stream = tokio::net::TcpStream::connect(&self.target.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.target.addr))?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = http1::Builder::new()
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }

    /// Sends a request and reads the whole response. Any failure closes the connection, so
    /// the next request starts on a fresh one. `progress` counts received body bytes.
    pub(crate) async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: PatternBody,
        drain: Drain,
        progress: Option<&AtomicU64>,
    ) -> Result<Reply, String> {
        let what = method.to_string();
        let result = tokio::time::timeout(
            self.timeout,
            self.exchange_inner(method, path, headers, body, drain, progress),
        )
        .await;
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.sender = None;
                Err(format!("{what}: {e}"))
            }
            Err(_) => {
                self.sender = None;
                Err(format!("{what}: timed out after {:?}", self.timeout))
            }
        }
    }

    async fn exchange_inner(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: PatternBody,
        drain: Drain,
        progress: Option<&AtomicU64>,
    ) -> Result<Reply, String> {
        let host = self.target.host_header.clone();
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .body(body)
            .map_err(|e| format!("invalid request: {e}"))?;
        let request_headers = request.headers_mut();
        request_headers.insert(HOST, host);
        let length = request.body().size_hint().exact().unwrap_or(0);
        if length > 0 || method == Method::POST || method == Method::PATCH {
            request
                .headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
        for (name, value) in headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let sender = self.connect().await?;
        sender.ready().await.map_err(|e| e.to_string())?;
        let response: Response<Incoming> = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, mut body) = response.into_parts();
        let mut body_len = 0u64;
        let mut text = Vec::new();
        let success = parts.status.is_success();
        let keep_text = drain == Drain::Text || !success;
        let mut hasher = (drain == Drain::Sha256 && success).then(sha2::Sha256::new);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("reading the response: {e}"))?;
            if let Ok(data) = frame.into_data() {
                body_len += data.len() as u64;
                if let Some(progress) = progress {
                    progress.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                match &mut hasher {
                    Some(hasher) => hasher.update(&data),
                    None if keep_text && text.len() < 300 => {
                        text.extend_from_slice(&data[..data.len().min(300 - text.len())]);
                    }
                    None => {}
                }
            }
        }
        let text = match hasher {
            Some(hasher) => hex(&hasher.finalize()),
            None => String::from_utf8_lossy(&text).trim().to_owned(),
        };
        if success {
            if let Some(expected) = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|_| method != Method::HEAD)
            {
                if expected != body_len {
                    return Err(format!(
                        "short response body: {body_len} of {expected} bytes"
                    ));
                }
            }
        }
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body_len,
            text,
        })
    }
}

/// `status 409: <first line of the body>`, for error messages.
pub(crate) fn describe(what: &str, reply: &Reply) -> String {
    let first_line = reply.text.lines().next().unwrap_or("");
    if first_line.is_empty() {
        format!("{what}: status {}", reply.status.as_u16())
    } else {
        let mut line: String = first_line.chars().take(120).collect();
        if line.len() < first_line.len() {
            line.push('…');
        }
        format!("{what}: status {}: {line}", reply.status.as_u16())
    }
}

/// Lower-case hex, as `sha256sum` prints a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:1080/files/").expect("valid");
        assert_eq!(t.addr, "127.0.0.1:1080");
        assert_eq!(t.host_header, "127.0.0.1:1080");
        assert_eq!(t.path, "/files/");
        let t = Target::parse("http://localhost/a/b?x=1").expect("valid");
        assert_eq!(t.addr, "localhost:80");
        assert_eq!(t.path, "/a/b?x=1");
        let t = Target::parse("http://[::1]:8080").expect("valid");
        assert_eq!(t.addr, "[::1]:8080");
        assert_eq!(t.path, "/");
        assert!(Target::parse("https://example.com/").is_err());
        assert!(Target::parse("/files/").is_err());
    }

    #[test]
    fn locations() {
        let t = Target::parse("http://127.0.0.1:1080/files/").expect("valid");
        assert_eq!(t.resolve("http://127.0.0.1:1080/files/abc"), "/files/abc");
        assert_eq!(t.resolve("http://elsewhere"), "/");
        assert_eq!(t.resolve("/files/abc"), "/files/abc");
        assert_eq!(t.resolve("abc"), "/files/abc");
        let t = Target::parse("http://127.0.0.1:1080/files").expect("valid");
        assert_eq!(t.resolve("files/abc"), "/files/abc");
    }

    #[test]
    fn pattern_slices_wrap_and_hash_consistently() {
        let p = Pattern::new();
        let len = PATTERN_LEN as u64;
        assert_eq!(p.slice(0, 10).len(), 10);
        assert_eq!(p.slice(len - 3, 10).len(), 3, "a slice stops at the wrap");
        assert_eq!(p.slice(len, 4), p.slice(0, 4));
        assert_ne!(p.slice(8 << 20, 16), p.slice(0, 16));
        // Hashing in pieces of any size gives the same digest.
        let size = len + 12345;
        let mut hasher = sha2::Sha256::new();
        let mut offset = 0;
        while offset < size {
            let piece = p.slice(offset, 1000.min(size - offset));
            hasher.update(&piece);
            offset += piece.len() as u64;
        }
        assert_eq!(hex(&hasher.finalize()), p.sha256(size));
    }

    #[tokio::test]
    async fn body_frames_cover_the_range() {
        let p = Pattern::new();
        let progress = Arc::new(AtomicU64::new(0));
        let mut body = PatternBody::new(&p, 100..100 + 3 * 1024 + 5, 1024, &progress, None);
        assert_eq!(body.size_hint().exact(), Some(3 * 1024 + 5));
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.expect("infallible").into_data().expect("data");
            assert!(data.len() <= 1024);
            got.extend_from_slice(&data);
        }
        assert_eq!(got.len(), 3 * 1024 + 5);
        assert_eq!(&got[..], &p.slice(100, 4000)[..3 * 1024 + 5]);
        assert_eq!(progress.load(Ordering::Relaxed), 3 * 1024 + 5);
        assert!(body.is_end_stream());
    }

    #[tokio::test(start_paused = true)]
    async fn paced_bodies_keep_their_rate() {
        let p = Pattern::new();
        let progress = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut body = PatternBody::new(&p, 0..40_000, 1000, &progress, Some(10_000));
        let mut n = 0;
        while let Some(frame) = body.frame().await {
            n += frame.expect("infallible").into_data().expect("data").len();
        }
        assert_eq!(n, 40_000);
        // The last frame starts at 39 000 bytes, due 3.9 s after the first.
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(3900) && elapsed < Duration::from_millis(4000),
            "{elapsed:?}"
        );
    }
}
