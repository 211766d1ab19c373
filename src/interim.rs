//! Interim (1xx) responses sent before a request's final response: the draft's
//! `104 (Upload Resumption Supported)`, which tells a client where to resume an upload whose
//! creation is still streaming (issue 13). hyper 1.x has no server API for them (hyper PRs
//! #3815 and #4114 are open proposals), so on HTTP/1.1 this module writes them itself, beside
//! hyper, into the connection's byte stream. On HTTP/2 nothing is sent: h2 0.4 has
//! `SendResponse::send_informational`, but hyper keeps its `SendResponse` private. The draft
//! lets a server skip the 104.
//!
//! Owns: [`Interim`], the handle a handler finds in an HTTP/1.1 request's extensions;
//! [`Connection`], the per-connection state the server attaches it from; [`InterimIo`], the
//! connection's (decrypted) stream as hyper sees it, which writes queued interim responses.
//!
//! Invariant: an interim response reaches the socket whole, after every byte of every earlier
//! message and before the first byte of its request's final response. Why that holds, from
//! hyper 1.12's HTTP/1 server (`src/proto/h1/`):
//! 1. One request at a time: hyper reads the next request head only once the previous
//!    request's service future has finished (`Server::poll_ready`, dispatch.rs:634) and its
//!    response has been encoded to the end (`Reading::Init` comes back only through
//!    `State::idle`, conn.rs:1132, reached from `try_keep_alive` when the response is in
//!    `Writing::KeepAlive`, conn.rs:1100). So while a request's future runs, hyper's write
//!    buffer holds only whole messages: the end of the previous response, possibly still
//!    unflushed (an early response whose request body ended afterwards goes idle without a
//!    flush, conn.rs:427), and this request's own `100 Continue` (conn.rs:412, one whole
//!    message, buffered once the handler polls the body).
//! 2. hyper writes to its IO only in `Buffered::poll_flush` and calls the IO's `poll_flush`
//!    only after its whole write buffer has been written (io.rs:278-335; with
//!    `pipeline_flush`, which tusgate does not set, it skips the IO flush instead). So when
//!    [`InterimIo::poll_flush`] runs, every byte hyper has produced has passed through: the
//!    stream is at a message boundary, as long as the current request's final response has
//!    not been handed to hyper. The queue is written there, and only there.
//! 3. The request's final response is handed to hyper only after its interim responses have
//!    left: [`Pending::run`] stops accepting sends when the handler returns and then waits
//!    until the queue is empty. hyper polls that future in `poll_msg` (dispatch.rs:597) and
//!    calls `poll_flush` on every turn of its loop after it (dispatch.rs:174-175), so the wait
//!    ends at the next flush.
//! 4. An interim response once started is finished before any further byte of hyper's:
//!    [`InterimIo`]'s writes first drain what it started.
//!
//! Pipelined requests therefore need no refusal: request B's 104 goes after all of A's
//! response and before B's. Sends are refused (`false`) on HTTP/2 and HTTP/1.0 (no handle; RFC
//! 9110 15.2 forbids 1xx to HTTP/1.0 clients), after the handler returned, once the connection
//! is closed, for `100` (hyper's own to send) and `101`, and for fields that frame a body.
//!
//! Cost when nothing is sent: one atomic load per write and flush on every connection, plus
//! per HTTP/1.1 request three uncontended locks, two `Arc` clones, a waker clone and an
//! extension (about 0.1 µs measured, against tens of µs a request costs).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, StatusCode, Version, header};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A request's handle for sending interim responses on its connection, found in the
/// request's extensions when the connection can carry them (HTTP/1.1). The default handle
/// sends nothing.
#[derive(Debug, Clone, Default)]
pub struct Interim(Option<Handle>);

#[derive(Debug, Clone)]
struct Handle {
    shared: Arc<Shared>,
    request: u64,
}

impl Interim {
    /// Sends an informational response (`status` is 1xx) with `headers` ahead of the final
    /// response. Returns whether it was sent (queued in order on the connection): it leaves at
    /// the connection's next message boundary, before the final response.
    pub fn send(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        let Some(handle) = &self.0 else {
            return false;
        };
        let Some(message) = serialize(status, headers) else {
            return false;
        };
        let mut state = handle.shared.lock();
        if state.closed || state.open != Some(handle.request) {
            return false;
        }
        state.queued.extend_from_slice(&message);
        handle.shared.armed.store(true, Ordering::Release);
        // The connection task writes it at its next flush. A send from that task (the
        // handler's future) is followed by one in the same turn; a send from another task
        // needs the wake-up.
        if let Some(waker) = &state.connection {
            waker.wake_by_ref();
        }
        true
    }
}

/// `HTTP/1.1 <code> <reason>\r\n<fields>\r\n`, or `None` for a status or fields that cannot be
/// an interim response sent by us.
fn serialize(status: StatusCode, headers: &HeaderMap) -> Option<Vec<u8>> {
    // 100 is hyper's to send (it answers `Expect` itself) and 101 switches protocols.
    if !status.is_informational()
        || status == StatusCode::CONTINUE
        || status == StatusCode::SWITCHING_PROTOCOLS
    {
        return None;
    }
    // A 1xx has no content: fields that frame one would only confuse the client.
    if headers.contains_key(header::CONTENT_LENGTH)
        || headers.contains_key(header::TRANSFER_ENCODING)
    {
        return None;
    }
    let reason = match status.as_u16() {
        104 => "Upload Resumption Supported",
        _ => status.canonical_reason().unwrap_or(""),
    };
    let mut out = Vec::with_capacity(64 + headers.len() * 48);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        // Title case, as hyper writes the final response's fields (`title_case_headers`).
        let mut upper = true;
        for &b in name.as_str().as_bytes() {
            out.push(if upper { b.to_ascii_uppercase() } else { b });
            upper = b == b'-';
        }
        out.extend_from_slice(b": ");
        // `HeaderValue` holds no CR, LF or NUL, so a value cannot end the field early.
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

/// The interim state of one connection.
#[derive(Debug, Default)]
struct Shared {
    /// Set while `queued` or `started` hold bytes, so the IO's hot path is one load.
    armed: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The request that may send now: the one whose final response hyper does not have yet.
    open: Option<u64>,
    /// The id the next request gets.
    next: u64,
    /// Whole interim responses waiting for the next message boundary.
    queued: BytesMut,
    /// The part not yet written of responses already started: finished before hyper's bytes.
    started: Bytes,
    /// The connection task, to be woken by a send from another task.
    connection: Option<Waker>,
    /// A request future waiting for its interim responses to leave.
    released: Option<Waker>,
    /// The IO was shut down or dropped, or failed: nothing more is written.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; should it, the state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.queued.clear();
        state.started.clear();
        // The connection's task holds this state through its IO: no waker of it kept here.
        state.connection = None;
        self.armed.store(false, Ordering::Relaxed);
        if let Some(waker) = state.released.take() {
            waker.wake();
        }
    }
}

/// One connection's interim state, from which the server wraps the connection's stream and
/// attaches an [`Interim`] to each HTTP/1.1 request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connection(Arc<Shared>);

impl Connection {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The stream hyper is to read and write: `io` with this connection's interim responses
    /// written into it at message boundaries.
    pub(crate) fn io<T>(&self, io: T) -> InterimIo<T> {
        InterimIo {
            io,
            shared: Arc::clone(&self.0),
        }
    }

    /// Attaches an [`Interim`] to an HTTP/1.1 request, and returns what its response must be
    /// produced through ([`Pending::run`]); `None` for other versions.
    pub(crate) fn attach<B>(&self, request: &mut http::Request<B>) -> Option<Pending> {
        if request.version() != Version::HTTP_11 {
            return None;
        }
        let request_id = {
            let mut state = self.0.lock();
            let id = state.next;
            state.next += 1;
            // hyper dispatches one request at a time (see the module doc), so the previous
            // one's future has finished or been dropped, either of which closed it.
            state.open = Some(id);
            id
        };
        request.extensions_mut().insert(Interim(Some(Handle {
            shared: Arc::clone(&self.0),
            request: request_id,
        })));
        Some(Pending {
            shared: Arc::clone(&self.0),
            request: request_id,
        })
    }
}

/// An HTTP/1.1 request that may send interim responses: its final response is held until
/// they have left.
#[derive(Debug)]
pub(crate) struct Pending {
    shared: Arc<Shared>,
    request: u64,
}

impl Pending {
    /// Runs the request's handler and holds its result until every interim response it sent
    /// has been written (or the connection has closed).
    pub(crate) async fn run<F: Future>(self, handler: F) -> F::Output {
        // hyper polls the request's future from the connection's task, so this is the waker
        // a send from elsewhere needs to get the queue written.
        std::future::poll_fn(|cx| {
            let mut state = self.shared.lock();
            if !state
                .connection
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                state.connection = Some(cx.waker().clone());
            }
            Poll::Ready(())
        })
        .await;
        let output = handler.await;
        std::future::poll_fn(|cx| self.poll_released(cx)).await;
        output
    }

    fn poll_released(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock();
        if state.open == Some(self.request) {
            state.open = None;
        }
        if state.closed || (state.queued.is_empty() && state.started.is_empty()) {
            return Poll::Ready(());
        }
        state.released = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // A future dropped before its end (the connection is going away): nothing more may be
        // sent for it, and what was queued but not started goes unsent. What was started must
        // still be finished, or the stream would hold half a message.
        let mut state = self.shared.lock();
        if state.open == Some(self.request) {
            state.open = None;
            state.queued.clear();
            if state.started.is_empty() {
                self.shared.armed.store(false, Ordering::Relaxed);
            }
        }
    }
}

/// The connection's stream as hyper sees it (above TLS): passes everything through, and
/// writes queued interim responses when hyper flushes (module doc, points 2 and 4).
pub(crate) struct InterimIo<T> {
    io: T,
    shared: Arc<Shared>,
}

impl<T: AsyncWrite + Unpin> InterimIo<T> {
    /// Writes what was started; with `boundary` (hyper has nothing unwritten), first starts
    /// everything queued. Ready once nothing started is left.
    fn poll_interim(&mut self, cx: &mut Context<'_>, boundary: bool) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        loop {
            if state.started.is_empty() {
                // What was queued meanwhile goes now too, or it would wait for another flush
                // that nothing may wake.
                if !boundary || state.queued.is_empty() {
                    break;
                }
                state.started = state.queued.split().freeze();
            }
            match Pin::new(&mut self.io).poll_write(cx, state.started.chunk()) {
                Poll::Ready(Ok(0)) => {
                    drop(state);
                    self.shared.close();
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => state.started.advance(n),
                Poll::Ready(Err(e)) => {
                    drop(state);
                    self.shared.close();
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        if state.queued.is_empty() {
            self.shared.armed.store(false, Ordering::Relaxed);
            if let Some(waker) = state.released.take() {
                waker.wake();
            }
        }
        Poll::Ready(Ok(()))
    }

    fn armed(&self) -> bool {
        self.shared.armed.load(Ordering::Acquire)
    }
}

impl<T> Drop for InterimIo<T> {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for InterimIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for InterimIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.armed() {
            ready!(this.poll_interim(cx, false))?;
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.armed() {
            ready!(this.poll_interim(cx, false))?;
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.armed() {
            ready!(this.poll_interim(cx, true))?;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // hyper flushed before shutting down (io.rs:337), so anything started is out; a
        // response queued now would precede no final response.
        let this = self.get_mut();
        this.shared.close();
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    //! A real hyper server (hyper-util's auto builder, as `server::run` builds it) over
    //! [`InterimIo`], with a test service; clients are raw TCP parsed by httparse, and hyper's
    //! own client (which reports 1xx through `on_informational`).

    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::time::Duration;

    use http::{HeaderValue, Request, Response};
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;

    use super::*;

    const LOCATION: &str = "https://example.test/files/abc";
    const EXACT_104: &[u8] = b"HTTP/1.1 104 Upload Resumption Supported\r\n\
        Location: https://example.test/files/abc\r\n\
        Upload-Draft-Interop-Version: 9\r\n\
        Upload-Limit: max-size=1000\r\n\r\n";
    /// Large enough that the client's not reading blocks the server's writes.
    const BIG: usize = 8 << 20;
    const WAIT: Duration = Duration::from_secs(5);

    fn draft_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, HeaderValue::from_static(LOCATION));
        headers.insert(
            "upload-draft-interop-version",
            HeaderValue::from_static("9"),
        );
        headers.insert("upload-limit", HeaderValue::from_static("max-size=1000"));
        headers
    }

    fn status_104() -> StatusCode {
        StatusCode::from_u16(104).expect("1xx")
    }

    /// `/create` sends a 104 and then reads the body; `/spawned` sends it from another task;
    /// `/big` reads the body and answers [`BIG`] bytes of `a`; `/early` answers [`BIG`] bytes
    /// at once while another task reads the body.
    async fn handle(request: Request<Incoming>) -> Response<Full<Bytes>> {
        let interim = request.extensions().get::<Interim>().cloned();
        let path = request.uri().path().to_owned();
        let mut sent = false;
        match path.as_str() {
            "/create" => {
                if let Some(interim) = &interim {
                    sent = interim.send(status_104(), &draft_headers());
                }
            }
            "/twice" => {
                if let Some(interim) = &interim {
                    let mut progress = HeaderMap::new();
                    progress.insert("upload-offset", HeaderValue::from_static("0"));
                    sent = interim.send(status_104(), &draft_headers())
                        && interim.send(status_104(), &progress);
                }
            }
            "/spawned" => {
                if let Some(interim) = interim.clone() {
                    sent = tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        interim.send(status_104(), &draft_headers())
                    })
                    .await
                    .expect("task");
                }
            }
            "/early" => {
                tokio::spawn(async move {
                    let _ = request.into_body().collect().await;
                });
                let mut response = Response::new(Full::new(Bytes::from(vec![b'a'; BIG])));
                *response.status_mut() = StatusCode::CREATED;
                return response;
            }
            _ => {}
        }
        let Ok(body) = request.into_body().collect().await else {
            let mut response = Response::new(Full::new(Bytes::from_static(b"no body")));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            return response;
        };
        let body = body.to_bytes();
        let content = if path == "/big" {
            Bytes::from(vec![b'a'; BIG])
        } else {
            Bytes::from(format!("{} bytes", body.len()))
        };
        let mut response = Response::new(Full::new(content));
        *response.status_mut() = StatusCode::CREATED;
        response.headers_mut().insert(
            "x-sent",
            HeaderValue::from_static(if sent { "yes" } else { "no" }),
        );
        response
    }

    /// A server on a free port, and the tasks of the connections it accepts.
    async fn start() -> (SocketAddr, mpsc::UnboundedReceiver<JoinHandle<()>>) {
        start_with(true).await
    }

    /// `writev: false` makes hyper copy everything into one buffer ("flatten"), as it does for
    /// streams without vectored writes: then a previous response's tail can sit in that buffer
    /// while the next request's handler runs.
    async fn start_with(writev: bool) -> (SocketAddr, mpsc::UnboundedReceiver<JoinHandle<()>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let interim = Connection::new();
                let io = TokioIo::new(interim.io(stream));
                let service = service_fn(move |mut request: Request<Incoming>| {
                    let pending = interim.attach(&mut request);
                    async move {
                        let response = match pending {
                            Some(pending) => pending.run(handle(request)).await,
                            None => handle(request).await,
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder.http1().title_case_headers(true).writev(writev);
                let task = tokio::spawn(async move {
                    let _ = builder.serve_connection(io, service).await;
                });
                let _ = tx.send(task);
            }
        });
        (addr, rx)
    }

    #[derive(Debug)]
    struct Message {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        /// The message's bytes as they came.
        raw: Vec<u8>,
    }

    impl Message {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// Reads whole responses from a raw stream with httparse: a 1xx ends at its head, others
    /// carry `Content-Length` bytes. Reads no further than the messages asked for.
    struct Reader<S = TcpStream> {
        stream: S,
        buf: Vec<u8>,
    }

    impl<S: tokio::io::AsyncRead + Unpin> Reader<S> {
        fn new(stream: S) -> Self {
            Reader {
                stream,
                buf: Vec::new(),
            }
        }

        async fn fill(&mut self) -> usize {
            let mut chunk = vec![0; 64 << 10];
            let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .expect("a response in time")
                .expect("read");
            self.buf.extend_from_slice(&chunk[..n]);
            n
        }

        async fn message(&mut self) -> Message {
            loop {
                let mut fields = [httparse::EMPTY_HEADER; 32];
                let mut response = httparse::Response::new(&mut fields);
                match response.parse(&self.buf).expect("a well-formed response") {
                    httparse::Status::Complete(head) => {
                        let status = response.code.expect("status");
                        let headers: Vec<(String, String)> = response
                            .headers
                            .iter()
                            .map(|h| {
                                let value = String::from_utf8(h.value.to_vec()).expect("utf-8");
                                (h.name.to_owned(), value)
                            })
                            .collect();
                        let length = if (100..200).contains(&status) {
                            0
                        } else {
                            headers
                                .iter()
                                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                                .map(|(_, v)| v.parse::<usize>().expect("length"))
                                .expect("Content-Length")
                        };
                        while self.buf.len() < head + length {
                            assert!(self.fill().await > 0, "closed mid-message");
                        }
                        let raw: Vec<u8> = self.buf.drain(..head + length).collect();
                        let body = raw[head..].to_vec();
                        return Message {
                            status,
                            headers,
                            body,
                            raw,
                        };
                    }
                    httparse::Status::Partial => {
                        assert!(self.fill().await > 0, "closed mid-head");
                    }
                }
            }
        }
    }

    async fn connect(addr: SocketAddr) -> TcpStream {
        TcpStream::connect(addr).await.expect("connect")
    }

    #[test]
    fn serializes_a_104_as_the_draft_shows_it() {
        let message = serialize(status_104(), &draft_headers()).expect("serializable");
        assert_eq!(message, EXACT_104);
        let hints = serialize(StatusCode::from_u16(103).expect("1xx"), &HeaderMap::new());
        assert_eq!(
            hints.as_deref(),
            Some(&b"HTTP/1.1 103 Early Hints\r\n\r\n"[..])
        );
        // No reason phrase is known: the status line keeps its space (RFC 9112 4).
        let bare = serialize(StatusCode::from_u16(199).expect("1xx"), &HeaderMap::new());
        assert_eq!(bare.as_deref(), Some(&b"HTTP/1.1 199 \r\n\r\n"[..]));
    }

    #[test]
    fn refuses_what_cannot_be_an_interim_response_of_ours() {
        let empty = HeaderMap::new();
        assert!(serialize(StatusCode::CONTINUE, &empty).is_none());
        assert!(serialize(StatusCode::SWITCHING_PROTOCOLS, &empty).is_none());
        assert!(serialize(StatusCode::OK, &empty).is_none());
        let mut framed = draft_headers();
        framed.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        assert!(serialize(status_104(), &framed).is_none());
    }

    #[tokio::test]
    async fn a_handle_sends_only_while_its_handler_runs() {
        assert!(!Interim::default().send(status_104(), &draft_headers()));
        let connection = Connection::new();
        let mut request = Request::new(());
        let pending = connection.attach(&mut request).expect("HTTP/1.1");
        let interim = request
            .extensions()
            .get::<Interim>()
            .cloned()
            .expect("attached");
        assert!(interim.send(status_104(), &draft_headers()));
        // Nothing flushes here, so drop what was queued (as a dropped connection would).
        connection.0.close();
        pending.run(async {}).await;
        assert!(!interim.send(status_104(), &draft_headers()));
        // Another request on the connection does not revive an older handle.
        let mut next = Request::new(());
        let _next = Connection(Arc::clone(&connection.0)).attach(&mut next);
        assert!(!interim.send(status_104(), &draft_headers()));

        let mut old = Request::new(());
        *old.version_mut() = Version::HTTP_10;
        assert!(Connection::new().attach(&mut old).is_none());
        assert!(old.extensions().get::<Interim>().is_none());
    }

    #[tokio::test]
    async fn the_104_arrives_whole_before_the_body_is_read() {
        let (addr, _tasks) = start().await;
        let mut stream = connect(addr).await;
        stream
            .write_all(b"POST /create HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
            .await
            .expect("write");
        let mut reader = Reader::new(stream);
        // The body has not been sent: the handler waits for it after sending the 104.
        let interim = reader.message().await;
        assert_eq!(interim.raw, EXACT_104);
        assert!(reader.buf.is_empty(), "nothing after the 104 yet");
        reader.stream.write_all(b"hello").await.expect("write");
        let last = reader.message().await;
        assert_eq!(last.status, 201);
        assert_eq!(last.header("X-Sent"), Some("yes"));
        assert_eq!(last.body, b"5 bytes");
        // The connection stays usable, and the next request may send its own.
        reader
            .stream
            .write_all(b"POST /create HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
            .await
            .expect("write");
        assert_eq!(reader.message().await.raw, EXACT_104);
        let last = reader.message().await;
        assert_eq!((last.status, last.body.as_slice()), (201, &b"2 bytes"[..]));
    }

    #[tokio::test]
    async fn several_interim_responses_go_out_whole_and_in_order() {
        let (addr, _tasks) = start().await;
        let mut stream = connect(addr).await;
        stream
            .write_all(b"POST /twice HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .expect("write");
        let mut reader = Reader::new(stream);
        assert_eq!(reader.message().await.raw, EXACT_104);
        assert_eq!(
            reader.message().await.raw,
            b"HTTP/1.1 104 Upload Resumption Supported\r\nUpload-Offset: 0\r\n\r\n"
        );
        let created = reader.message().await;
        assert_eq!(created.header("X-Sent"), Some("yes"));
        assert_eq!(created.body, b"5 bytes");
    }

    /// A stream that takes a few bytes per write: every message, the 104s included, is written
    /// in pieces, and hyper's bytes must wait until a started 104 is out.
    #[tokio::test]
    async fn messages_written_in_small_pieces_stay_whole() {
        let (client, server) = tokio::io::duplex(61);
        let interim = Connection::new();
        let io = TokioIo::new(interim.io(server));
        let service = service_fn(move |mut request: Request<Incoming>| {
            let pending = interim.attach(&mut request);
            async move {
                let pending = pending.expect("HTTP/1.1");
                Ok::<_, Infallible>(pending.run(handle(request)).await)
            }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .title_case_headers(true)
                .serve_connection(io, service)
                .await;
        });
        let (read, mut write) = tokio::io::split(client);
        // Written while the responses are read: hyper reads the next request only once it has
        // answered this one, so a client that writes everything first would deadlock.
        tokio::spawn(async move {
            let _ = write
                .write_all(
                    b"POST /create HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
                  POST /twice HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi\
                  POST /create HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
                )
                .await;
        });
        let mut reader = Reader::new(read);
        assert_eq!(reader.message().await.raw, EXACT_104);
        assert_eq!(reader.message().await.body, b"5 bytes");
        assert_eq!(reader.message().await.raw, EXACT_104);
        assert_eq!(reader.message().await.status, 104);
        assert_eq!(reader.message().await.body, b"2 bytes");
        assert_eq!(reader.message().await.raw, EXACT_104);
        assert_eq!(reader.message().await.body, b"3 bytes");
    }

    #[tokio::test]
    async fn hyper_client_reports_the_104_and_reads_the_final_response() {
        let (addr, _tasks) = start().await;
        let io = TokioIo::new(connect(addr).await);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut request = Request::post("/create")
            .header("host", "t")
            .body(Full::new(Bytes::from_static(b"hello")))
            .expect("request");
        let record = Arc::clone(&seen);
        hyper::ext::on_informational(&mut request, move |response| {
            record
                .lock()
                .expect("lock")
                .push((response.status(), response.headers().clone()));
        });
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body = response.into_body().collect().await.expect("body");
        assert_eq!(body.to_bytes(), "5 bytes");
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, status_104());
        assert_eq!(seen[0].1, draft_headers());
    }

    /// Every byte of `/big`'s body must be `a`: a 104 written inside it would show.
    fn assert_big(message: &Message) {
        assert_eq!(message.status, 201);
        assert_eq!(message.body.len(), BIG);
        assert!(message.body.iter().all(|&b| b == b'a'), "body corrupted");
    }

    #[tokio::test]
    async fn pipelined_requests_get_each_response_whole_and_in_order() {
        pipelined(true).await;
        pipelined(false).await;
    }

    async fn pipelined(writev: bool) {
        let (addr, _tasks) = start_with(writev).await;
        let mut stream = connect(addr).await;
        stream
            .write_all(
                b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n\
                  POST /create HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
                  GET /big HTTP/1.1\r\nHost: t\r\n\r\n\
                  POST /create HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
            )
            .await
            .expect("write");
        // Let the first response fill the socket buffers so hyper's writes block.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut reader = Reader::new(stream);
        assert_big(&reader.message().await);
        assert_eq!(reader.message().await.raw, EXACT_104);
        let created = reader.message().await;
        assert_eq!(
            (created.status, created.body.as_slice()),
            (201, &b"5 bytes"[..])
        );
        assert_big(&reader.message().await);
        assert_eq!(reader.message().await.raw, EXACT_104);
        let created = reader.message().await;
        assert_eq!(
            (created.status, created.body.as_slice()),
            (201, &b"3 bytes"[..])
        );
    }

    /// The one case where hyper dispatches the next request with the previous response still
    /// in its write buffer: that response ended before its request body did (conn.rs:427),
    /// and hyper copies responses into one buffer (`writev: false`; with vectored writes it
    /// polls the next handler only once the previous body has left, io.rs:135).
    ///
    /// Not run with vectored writes: there hyper 1.12 itself sometimes never answers the
    /// pipelined request after such an early response, with no interim response involved
    /// (seen with a request that sends none), so the case would test hyper's stall.
    #[tokio::test]
    async fn a_104_waits_for_an_early_response_still_in_hypers_buffer() {
        early_response(false).await;
    }

    async fn early_response(writev: bool) {
        let (addr, _tasks) = start_with(writev).await;
        let mut stream = connect(addr).await;
        stream
            .write_all(b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab")
            .await
            .expect("write");
        // The response is encoded and its writes block while the body is still open.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream
            .write_all(b"cdPOST /create HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut reader = Reader::new(stream);
        assert_big(&reader.message().await);
        assert_eq!(reader.message().await.raw, EXACT_104);
        let created = reader.message().await;
        assert_eq!(
            (created.status, created.body.as_slice()),
            (201, &b"5 bytes"[..])
        );
    }

    #[tokio::test]
    async fn expect_100_continue_and_the_104_are_both_whole_messages() {
        let (addr, _tasks) = start().await;
        let mut stream = connect(addr).await;
        stream
            .write_all(
                b"POST /create HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\
                  Expect: 100-continue\r\n\r\n",
            )
            .await
            .expect("write");
        let mut reader = Reader::new(stream);
        // The handler sends the 104 before it polls the body, which is when hyper answers
        // the expectation.
        assert_eq!(reader.message().await.raw, EXACT_104);
        assert_eq!(reader.message().await.raw, b"HTTP/1.1 100 Continue\r\n\r\n");
        reader.stream.write_all(b"hello").await.expect("write");
        let created = reader.message().await;
        assert_eq!(
            (created.status, created.body.as_slice()),
            (201, &b"5 bytes"[..])
        );
    }

    #[tokio::test]
    async fn a_send_from_another_task_gets_the_104_out_while_the_client_waits() {
        let (addr, _tasks) = start().await;
        let mut stream = connect(addr).await;
        stream
            .write_all(b"POST /spawned HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
            .await
            .expect("write");
        let mut reader = Reader::new(stream);
        assert_eq!(reader.message().await.raw, EXACT_104);
        reader.stream.write_all(b"hello").await.expect("write");
        let created = reader.message().await;
        assert_eq!(created.header("X-Sent"), Some("yes"));
        assert_eq!(created.body, b"5 bytes");
    }

    #[tokio::test]
    async fn http2_and_http10_get_no_interim_response_and_no_harm() {
        let (addr, _tasks) = start().await;
        let io = TokioIo::new(connect(addr).await);
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .expect("h2 handshake");
        tokio::spawn(connection);
        let seen = Arc::new(AtomicBool::new(false));
        let mut request = Request::post("http://t/create")
            .body(Full::new(Bytes::from_static(b"hello")))
            .expect("request");
        let record = Arc::clone(&seen);
        hyper::ext::on_informational(&mut request, move |_| {
            record.store(true, Ordering::Relaxed);
        });
        let response = sender.send_request(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["x-sent"], "no");
        let body = response.into_body().collect().await.expect("body");
        assert_eq!(body.to_bytes(), "5 bytes");
        assert!(!seen.load(Ordering::Relaxed));

        let mut stream = connect(addr).await;
        stream
            .write_all(b"POST /create HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .expect("write");
        let mut reader = Reader::new(stream);
        let last = reader.message().await;
        assert_eq!(last.status, 201);
        assert!(last.raw.starts_with(b"HTTP/1.0 201"));
        assert_eq!(last.header("X-Sent"), Some("no"));
    }

    #[tokio::test]
    async fn a_client_gone_after_the_104_ends_its_connection() {
        let (addr, mut tasks) = start().await;
        let mut stream = connect(addr).await;
        stream
            .write_all(b"POST /create HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
            .await
            .expect("write");
        let mut reader = Reader::new(stream);
        assert_eq!(reader.message().await.raw, EXACT_104);
        drop(reader);
        let task = tasks.recv().await.expect("the connection's task");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("the connection ended")
            .expect("task");
    }
}
