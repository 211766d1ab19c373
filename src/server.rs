//! The transport: accepts connections, serves HTTP/1.1 and cleartext HTTP/2 (prior knowledge)
//! on each with hyper, or with `--tls-certificate` terminates TLS and serves the HTTP version
//! ALPN chose, bounds how many are open and how long each may live without progress, and shuts
//! down gracefully. Every request carries its peer's address as a [`RemoteAddr`] extension,
//! and every HTTP/1.1 request an [`crate::interim::Interim`] for sending 104s: hyper reads
//! and writes each connection through [`crate::interim::InterimIo`], above TLS and below
//! nothing else, which writes them between hyper's messages (see that module for why that is
//! sound).
//!
//! [`run`] takes an already-bound listener and any shutdown future, so tests and benchmarks
//! start a real server on port 0 and stop it when they like. On shutdown it stops accepting,
//! cancels `App::shutdown` (bodies being read stop, keep what they stored and answer 503
//! `ERR_SERVER_SHUTDOWN`), closes connections with no request in flight, and waits up to the
//! shutdown timeout for open requests and for the publishes they started (`App::tasks`).
//!
//! Every open connection holds a file descriptor, so none may stay open without doing work:
//! - at most `max_connections` are open; the listener accepts only while a slot is free, so
//!   further clients wait in the kernel's backlog instead of the process running out of files;
//! - a connection with no request in flight is closed once the network timeout has passed since
//!   it was accepted or since its last request ended, on both protocols. hyper's own
//!   header-read timeout is not enough: it starts only after hyper-util has read enough bytes to
//!   pick a protocol, and HTTP/2 has none at all. Idleness counts requests, not bytes, because
//!   HTTP/2 pings and window updates keep bytes moving on a connection that serves nothing;
//! - a connection whose writes have been blocked for the network timeout (its client stopped
//!   reading) is closed even with a request in flight, as nginx's `send_timeout` does;
//! - a connection with responses being sent, none of which has made progress for the network
//!   timeout, is closed (see `Activity::progress_at`). Blocked writes alone do not catch
//!   this on HTTP/2: a client that grants no flow-control window stops hyper from writing any
//!   DATA, so no write ever blocks while pings keep the connection alive and every stream
//!   keeps its open file and read buffers. Only responses count, not requests whose handler
//!   still runs: request bodies have their own per-read timeout, publishes their own bounds;
//! - an HTTP/2 connection carries at most [`MAX_CONCURRENT_STREAMS`] requests at once, so one
//!   connection holds at most that many open files;
//! - an HTTP/2 peer that stops answering pings is dropped by hyper's keep-alive;
//! - a TLS handshake runs in the connection's own task, never in the accept loop, so a client
//!   that handshakes slowly stalls only itself. It holds the connection's slot and counts as
//!   open, must finish within the network timeout, and is abandoned at shutdown; the rules
//!   above then apply to the connection as to a plain one, measured from its accept. The
//!   watchdog sees the socket under the TLS layer, so blocked writes are blocked socket writes.
//!
//! With TLS, SIGHUP reloads the certificate and key ([`crate::tls::reload_on_sighup`]) while
//! the server runs; open connections are not touched.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::app::App;
use crate::interim;
use crate::response::Body;
use crate::tls::{Protocol, Tls};

/// The address of the peer a request came from: `None` on a UNIX socket. Inserted into the
/// extensions of every request, TCP and TLS alike (hooks send it as `HTTPRequest.RemoteAddr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub Option<SocketAddr>);

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// The address clients reach, for the startup line.
    pub fn display_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Listener::Unix(_, path) => path.display().to_string(),
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }
}

/// Once shutdown has started, a connection with no request in flight is closed after this
/// much quiet: long enough for the last response's final bytes, which hyper still writes after
/// the response body has ended, to leave.
const SHUTDOWN_QUIET: Duration = Duration::from_millis(100);

/// Concurrent requests on one HTTP/2 connection (hyper's default is 200). Each request for a
/// download holds an open file and up to two read chunks while its response is sent, so this
/// bounds what a single connection can pin; the progress rule bounds for how long. 64 is still
/// well above what clients use in parallel (browsers opened 6 HTTP/1.1 connections per host;
/// tus clients upload a handful of parts at once), and a client that wants more queues the
/// rest, it does not fail. nginx allows 128, Apache 100; they hold no such buffers per stream.
pub const MAX_CONCURRENT_STREAMS: u32 = 64;

/// Response bodies are handed to hyper in pieces of at most this size, so that "a response
/// body yielded a frame" (the progress the watchdog counts) happens every 64 KiB sent rather
/// than every 1 MiB read chunk: a slow but steady client must receive this much, not a whole
/// read chunk, within the network timeout. Splitting `Bytes` copies nothing.
const PROGRESS_PIECE: usize = 64 << 10;

/// Serves `app` on `listener` until `shutdown` resolves, then drains open requests for at most
/// the configured shutdown timeout.
pub async fn run(
    listener: Listener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let timeout = app.config.network_timeout;
    let tls = match &app.config.tls {
        Some(config) => {
            let tls = Tls::new(config).map_err(io::Error::other)?;
            tokio::spawn(crate::tls::reload_on_sighup(
                tls.clone(),
                app.shutdown.clone().cancelled_owned(),
            ));
            Some(tls)
        }
        None => None,
    };
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Go writes canonical header names; some clients in the wild compare them exactly.
        .title_case_headers(true)
        // Request heads must arrive promptly; bodies have their own per-read timeout.
        .header_read_timeout(timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        // A peer that vanished without a FIN or RST is found even while a request is in
        // flight (the idle watchdog only looks at connections without one).
        .keep_alive_interval(timeout)
        .keep_alive_timeout(timeout)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        // Flow control sized by hyper's BDP estimate (pings) instead of its fixed 1 MiB windows:
        // an upload stream can have only one window in flight per round trip, so 1 MiB caps an
        // HTTP/2 upload at ~1 MiB/RTT (29 MiB/s at 20 ms, 15 MiB/s at 50 ms, measured in
        // benches/README.md "HTTP/2 flow control"). The adaptive window grows to the
        // connection's bandwidth-delay product, up to 16 MiB, only where it is needed, so LAN
        // clients keep small windows: a window is what hyper buffers for a stream nobody reads
        // (storage waiting for S3), and fixed large windows would pin that on every connection.
        .adaptive_window(true);
    let slots = Arc::new(Semaphore::new(
        app.config.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let mut backoff = Backoff::default();
    tokio::pin!(shutdown);
    loop {
        // Take a slot before accepting: while all are taken, new clients wait in the backlog.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = acquire(&slots) => slot,
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, app.config.tcp_receive_buffer) => accepted,
        };
        let (io, peer) = match accepted {
            Ok(accepted) => {
                backoff.reset();
                accepted
            }
            // The client gave up while queued: nothing wrong with the listener.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like. Retrying at once would spin, and log a
                // line per spin; slowing down gives the open connections time to end.
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "accept failed");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        let open = Open::new(Arc::clone(&app), slot);
        let activity = Arc::new(Activity::new());
        let interim = interim::Connection::new();
        let io = Tracked {
            io,
            activity: Arc::clone(&activity),
        };
        let service = {
            let app = Arc::clone(&app);
            let activity = Arc::clone(&activity);
            let peer = RemoteAddr(peer);
            let interim = interim.clone();
            service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(peer);
                // HTTP/1.1 only: the handler may send interim responses (104) through it.
                let pending = interim.attach(&mut request);
                // Counted from the moment hyper hands the request over until its response body
                // is done or dropped; dropped with the future if the client goes away first.
                let in_flight = InFlight::start(Arc::clone(&activity));
                let app = Arc::clone(&app);
                let activity = Arc::clone(&activity);
                async move {
                    let response = match pending {
                        // Holds the response until the interim responses sent have left.
                        Some(pending) => pending.run(app.handle(request)).await,
                        None => app.handle(request).await,
                    };
                    // From here the response is hyper's to send: its clock starts now, before
                    // hyper polls the body (which it may never do without a window).
                    let streaming = Streaming::start(activity);
                    Ok::<_, Infallible>(response.map(|body| CountedBody {
                        body,
                        pending: Bytes::new(),
                        streaming,
                        _in_flight: in_flight,
                    }))
                }
            })
        };
        // Taken now, before a shutdown can start: a connection still handshaking then is
        // waited for (it gives up at once, see `handshake`) and, if it got through, told to close.
        let watcher = graceful.watcher();
        match &tls {
            None => {
                let io = TokioIo::new(interim.io(io));
                let connection = builder.serve_connection(io, service);
                let connection = watcher.watch(connection.into_owned());
                tokio::spawn(supervise(connection, activity, open));
            }
            Some(tls) => {
                let acceptor = tls.acceptor().clone();
                let builder = builder.clone();
                tokio::spawn(async move {
                    let Some(stream) = handshake(&acceptor, io, &open.app).await else {
                        return;
                    };
                    // Honour ALPN: a client that chose HTTP/1.1 must not be read as HTTP/2
                    // because its first bytes happen to look like the preface, nor the reverse.
                    let builder = match Protocol::negotiated(stream.get_ref().1.alpn_protocol()) {
                        Protocol::Http2 => builder.http2_only(),
                        Protocol::Http1 => builder.http1_only(),
                    };
                    // Above TLS: interim responses are plaintext messages like hyper's.
                    let io = TokioIo::new(interim.io(stream));
                    let connection = builder.serve_connection(io, service);
                    let connection = watcher.watch(connection.into_owned());
                    supervise(connection, activity, open).await;
                });
            }
        }
    }
    app.shutdown.cancel();
    // Connections first, then the work they started that outlives them (a publish whose client
    // left): both within the one shutdown timeout.
    app.tasks.close();
    let drained = async {
        graceful.shutdown().await;
        app.tasks.wait().await;
    };
    if tokio::time::timeout(app.config.shutdown_timeout, drained)
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout reached with requests or publishes still open");
    }
    Ok(())
}

async fn acquire(slots: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    match Arc::clone(slots).acquire_owned().await {
        Ok(slot) => slot,
        // Never closed; should it be, accept nothing more rather than everything.
        Err(_) => std::future::pending().await,
    }
}

/// An accepted connection, from accept to close: holds its slot and counts it as open (from
/// accept, as tusd's `ConnState` does, so a TLS handshake in progress counts).
#[derive(Debug)]
struct Open {
    app: Arc<App>,
    _slot: OwnedSemaphorePermit,
}

impl Open {
    fn new(app: Arc<App>, slot: OwnedSemaphorePermit) -> Self {
        app.metrics.connections_open.inc();
        Open { app, _slot: slot }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.app.metrics.connections_open.dec();
    }
}

/// The server side of a TLS handshake, within the network timeout; `None` (logged at debug: a
/// port scanner or a client that distrusts the certificate is routine) if it failed, took too
/// long or the server started shutting down meanwhile.
async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    io: Tracked,
    app: &App,
) -> Option<tokio_rustls::server::TlsStream<Tracked>> {
    let accept = tokio::time::timeout(app.config.network_timeout, acceptor.accept(io));
    tokio::select! {
        result = accept => match result {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!("TLS handshake not done within the network timeout");
                None
            }
        },
        () = app.shutdown.cancelled() => None,
    }
}

/// Drives one connection until it ends, or until [`Activity::verdict`] says it has gone without
/// progress for too long; dropping it closes the socket. Holds the connection's slot (`open`).
async fn supervise<C, E>(connection: C, activity: Arc<Activity>, open: Open)
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let app = &open.app;
    tokio::pin!(connection);
    let timeout = app.config.network_timeout;
    let mut shutting_down = false;
    loop {
        let check_at = match activity.verdict(Instant::now(), timeout, shutting_down) {
            Ok(check_at) => check_at,
            Err(reason) => {
                tracing::debug!(reason, "closing connection");
                break;
            }
        };
        tokio::select! {
            result = &mut connection => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = tokio::time::sleep_until(check_at) => {}
            () = app.shutdown.cancelled(), if !shutting_down => shutting_down = true,
        }
    }
    drop(open);
}

/// What the watchdog knows of a connection. Times are milliseconds since `opened`, so they fit
/// in atomics shared with the IO wrapper and the in-flight guards.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Requests handed to the service whose response body has not ended yet.
    in_flight: AtomicUsize,
    /// When the connection last became free of requests (0: when it was opened).
    quiet_since: AtomicU64,
    /// 1 + when a write started to wait for the socket; 0 while writes go through.
    write_blocked_since: AtomicU64,
    /// Responses handed to hyper whose body has not ended yet (the handler has returned).
    streaming: AtomicUsize,
    /// When a response body last yielded a frame, or when a response was handed to hyper while
    /// none was streaming. With `streaming > 0`, the connection is closed once this is the
    /// network timeout old, as nginx's `send_timeout` does for writes. Measured per
    /// connection: one response that moves keeps a connection whose other streams wait (a
    /// paused video) open. A new response does not restart the clock while others stream,
    /// so stalled streams cannot be kept open by opening more beside them; a client can
    /// still reset a stalled stream and open another each timeout, at the cost of a request
    /// each, holding at most [`MAX_CONCURRENT_STREAMS`] files.
    progress_at: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            quiet_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            streaming: AtomicUsize::new(0),
            progress_at: AtomicU64::new(0),
        }
    }

    fn note_progress(&self) {
        let now = self.millis(Instant::now());
        self.progress_at.fetch_max(now, Ordering::Relaxed);
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.opened).as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, millis: u64) -> Instant {
        self.opened + Duration::from_millis(millis)
    }

    fn note_write(&self, blocked: bool) {
        if blocked {
            let since = self.millis(Instant::now()).saturating_add(1);
            let _ = self.write_blocked_since.compare_exchange(
                0,
                since,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        } else if self.write_blocked_since.load(Ordering::Relaxed) != 0 {
            self.write_blocked_since.store(0, Ordering::Relaxed);
        }
    }

    /// `Err(reason)` if the connection must be closed now, else when to look again. That time
    /// is never later than the earliest deadline anything after `now` can set, because each
    /// deadline is at least `timeout` after the event that sets it.
    fn verdict(
        &self,
        now: Instant,
        timeout: Duration,
        shutting_down: bool,
    ) -> Result<Instant, &'static str> {
        let mut check_at = now + timeout;
        let blocked = self.write_blocked_since.load(Ordering::Relaxed);
        if blocked != 0 {
            let deadline = self.at(blocked - 1) + timeout;
            if now >= deadline {
                return Err("the client has not read anything for the network timeout");
            }
            check_at = check_at.min(deadline);
        }
        // Acquire pairs with `Streaming::start`'s Release: a response seen streaming has
        // already set `progress_at` if it was the first.
        if self.streaming.load(Ordering::Acquire) != 0 {
            let deadline = self.at(self.progress_at.load(Ordering::Relaxed)) + timeout;
            if now >= deadline {
                return Err("no response made progress for the network timeout");
            }
            check_at = check_at.min(deadline);
        }
        // Acquire pairs with the guard's Release: with no request in flight, `quiet_since`
        // already says when the last one ended.
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let allowed = if shutting_down && blocked == 0 {
                SHUTDOWN_QUIET.min(timeout)
            } else {
                timeout
            };
            let deadline = self.at(self.quiet_since.load(Ordering::Relaxed)) + allowed;
            if now >= deadline {
                return Err(if shutting_down {
                    "shutting down with no request in flight"
                } else {
                    "no request for the network timeout"
                });
            }
            check_at = check_at.min(deadline);
        }
        if shutting_down {
            // Requests ending now do not wake the watchdog; look often so the connection
            // closes soon after its last one.
            check_at = check_at.min(now + SHUTDOWN_QUIET);
        }
        Ok(check_at)
    }
}

/// One request in flight on a connection; its end starts the connection's idle time.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.millis(Instant::now());
        // Before the decrement, so the watchdog never sees zero requests and an older time; max
        // because concurrent HTTP/2 requests end on different threads.
        self.0.quiet_since.fetch_max(now, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Release);
    }
}

/// One response handed to hyper and not yet ended; see [`Activity::progress_at`].
#[derive(Debug)]
struct Streaming(Arc<Activity>);

impl Streaming {
    fn start(activity: Arc<Activity>) -> Self {
        // Only the first response restarts the clock; while others stream it runs on.
        if activity.streaming.load(Ordering::Relaxed) == 0 {
            activity.note_progress();
        }
        activity.streaming.fetch_add(1, Ordering::Release);
        Streaming(activity)
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.0.streaming.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in flight until hyper has taken its last
/// frame or dropped it, records each frame it yields as progress, and yields data in pieces of
/// at most [`PROGRESS_PIECE`].
#[derive(Debug)]
struct CountedBody {
    body: Body,
    /// The rest of a data frame larger than a piece.
    pending: Bytes,
    // Dropped before `_in_flight`, so the watchdog never sees no request in flight but a
    // response still streaming.
    streaming: Streaming,
    _in_flight: InFlight,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.pending.is_empty() {
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.pending = data,
                    Err(frame) => {
                        this.streaming.0.note_progress();
                        return Poll::Ready(Some(Ok(frame)));
                    }
                },
                other => return Poll::Ready(other),
            }
        }
        let piece = this
            .pending
            .split_to(this.pending.len().min(PROGRESS_PIECE));
        this.streaming.0.note_progress();
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.body.size_hint();
        let pending = self.pending.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(pending));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(pending));
        }
        hint
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// An accepted stream that tells its [`Activity`] whether writes go through.
struct Tracked {
    io: Box<dyn Io>,
    activity: Arc<Activity>,
}

impl Tracked {
    fn note<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.activity.note_write(poll.is_pending());
        poll
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.note(poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.note(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.note(poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The next connection and its peer's address (`None` on a UNIX socket).
async fn accept(
    listener: &Listener,
    receive_buffer: Option<usize>,
) -> io::Result<(Box<dyn Io>, Option<SocketAddr>)> {
    Ok(match listener {
        Listener::Tcp(l) => {
            let (stream, peer) = l.accept().await?;
            // Small responses (204s) must not wait for Nagle. This fails only for a peer that
            // is already gone, which serving finds out soon enough.
            let _ = stream.set_nodelay(true);
            if let Some(size) = receive_buffer {
                // --tcp-receive-buffer: what the kernel may queue while nobody reads (the same
                // failure as above is as harmless).
                let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&stream, size);
            }
            (Box::new(stream), Some(peer))
        }
        Listener::Unix(l, _) => (Box::new(l.accept().await?.0), None),
    })
}

/// Errors that concern one queued connection, not the listener (hyper 0.14's `AddrIncoming`
/// drew the same line).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// Delays between failed accepts: 5 ms doubling up to 1 s, back to 5 ms after a success.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    fn next_delay(&mut self) -> Duration {
        let delay = Self::FIRST
            .saturating_mul(1 << self.failures.min(16))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Raises the soft limit on open files to the hard limit, as Go does at startup (and so tusd):
/// every connection and every open upload needs one, and distributions still default the soft
/// limit to 1024.
pub fn raise_open_file_limit() -> io::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return Ok(());
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    Ok(setrlimit(Resource::Nofile, raised)?)
}

/// Files kept free of connections: the runtime, the listener, logs, and the stores' own.
const RESERVED_FILES: u64 = 64;

/// The default connection cap for a soft open-file limit: half of what is left after
/// [`RESERVED_FILES`], since a connection with a request in flight can hold a second
/// descriptor (the upload or asset file it reads or writes).
///
/// That holds for HTTP/1.1 (one request at a time), not for HTTP/2, where one connection can
/// hold up to [`MAX_CONCURRENT_STREAMS`] files. Budgeting for that (limit / 65) would cut the
/// HTTP/1.1 capacity 30-fold for a worst case that is bounded in time instead: streams that
/// make no progress lose their connection after the network timeout, and a failed `open` or
/// `accept` meanwhile answers 500 or backs off rather than wedging the server. Operators who
/// expose cleartext HTTP/2 to untrusted clients under a low file limit can set
/// `--max-connections` lower (or raise the hard limit, which startup adopts).
pub fn default_max_connections(open_file_limit: Option<u64>) -> usize {
    // Unlimited cannot happen for files on Linux; a million is what such systems allow.
    let limit = open_file_limit.unwrap_or(1 << 20);
    let connections = limit.saturating_sub(RESERVED_FILES) / 2;
    usize::try_from(connections).unwrap_or(usize::MAX).max(1)
}

/// The current soft limit on open files (`None`: unlimited).
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_second_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..10).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays[0], Duration::from_millis(5));
        assert_eq!(delays[1], Duration::from_millis(10));
        assert_eq!(delays[7], Duration::from_millis(640));
        assert_eq!(delays[8], Duration::from_secs(1));
        assert_eq!(delays[9], Duration::from_secs(1));
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(5));
    }

    #[test]
    fn default_cap_leaves_room_for_files() {
        assert_eq!(default_max_connections(Some(256)), 96);
        assert_eq!(default_max_connections(Some(1024)), 480);
        assert_eq!(default_max_connections(Some(10)), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn silent_connection_closes_at_the_timeout() {
        let activity = Activity::new();
        let timeout = Duration::from_secs(2);
        let check_at = activity
            .verdict(Instant::now(), timeout, false)
            .expect("open");
        assert_eq!(check_at, activity.opened + timeout);
        tokio::time::advance(timeout).await;
        assert!(activity.verdict(Instant::now(), timeout, false).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_keeps_the_connection_until_it_ends() {
        let activity = Arc::new(Activity::new());
        let timeout = Duration::from_secs(2);
        let request = InFlight::start(Arc::clone(&activity));
        tokio::time::advance(timeout * 5).await;
        assert!(activity.verdict(Instant::now(), timeout, false).is_ok());
        drop(request);
        let ended = Instant::now();
        assert_eq!(activity.verdict(ended, timeout, false), Ok(ended + timeout));
        tokio::time::advance(timeout).await;
        assert!(activity.verdict(Instant::now(), timeout, false).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn blocked_writes_close_even_with_a_request_in_flight() {
        let activity = Arc::new(Activity::new());
        let timeout = Duration::from_secs(2);
        let _request = InFlight::start(Arc::clone(&activity));
        activity.note_write(true);
        tokio::time::advance(timeout / 2).await;
        activity.note_write(true);
        assert!(activity.verdict(Instant::now(), timeout, false).is_ok());
        tokio::time::advance(timeout / 2).await;
        assert!(activity.verdict(Instant::now(), timeout, false).is_err());
        activity.note_write(false);
        assert!(activity.verdict(Instant::now(), timeout, false).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_without_progress_closes_the_connection() {
        let activity = Arc::new(Activity::new());
        let timeout = Duration::from_secs(2);
        let _request = InFlight::start(Arc::clone(&activity));
        // A handler that runs long (a body being read, a publish) is not subject to the rule.
        tokio::time::advance(timeout * 5).await;
        assert!(activity.verdict(Instant::now(), timeout, false).is_ok());
        // Handed to hyper: the clock starts now, whether or not the body is ever polled.
        let first = Streaming::start(Arc::clone(&activity));
        let started = Instant::now();
        assert_eq!(
            activity.verdict(started, timeout, false),
            Ok(started + timeout)
        );
        tokio::time::advance(timeout / 2).await;
        // A second response does not restart the clock of a stalled first one.
        let second = Streaming::start(Arc::clone(&activity));
        tokio::time::advance(timeout / 2).await;
        assert!(activity.verdict(Instant::now(), timeout, false).is_err());
        // A frame from any of them does.
        activity.note_progress();
        assert!(activity.verdict(Instant::now(), timeout, false).is_ok());
        tokio::time::advance(timeout).await;
        assert!(activity.verdict(Instant::now(), timeout, false).is_err());
        drop((first, second));
        assert!(activity.verdict(Instant::now(), timeout, false).is_ok());
    }

    #[tokio::test]
    async fn counted_body_yields_pieces_and_keeps_its_length() {
        use http_body_util::BodyExt;
        let activity = Arc::new(Activity::new());
        let data = Bytes::from(vec![7u8; PROGRESS_PIECE * 2 + 5]);
        let body = CountedBody {
            body: Body::full(data.clone()),
            pending: Bytes::new(),
            streaming: Streaming::start(Arc::clone(&activity)),
            _in_flight: InFlight::start(Arc::clone(&activity)),
        };
        assert_eq!(
            http_body::Body::size_hint(&body).exact(),
            Some(data.len() as u64)
        );
        let mut body = std::pin::pin!(body);
        let mut sizes = Vec::new();
        let mut collected = Vec::new();
        while let Some(frame) = body.frame().await {
            let piece = frame.expect("frame").into_data().expect("data");
            sizes.push(piece.len());
            collected.extend_from_slice(&piece);
        }
        assert_eq!(sizes, [PROGRESS_PIECE, PROGRESS_PIECE, 5]);
        assert_eq!(collected, data);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_closes_quiet_connections_soon() {
        let activity = Activity::new();
        let timeout = Duration::from_secs(60);
        tokio::time::advance(SHUTDOWN_QUIET).await;
        assert!(activity.verdict(Instant::now(), timeout, true).is_err());
        assert!(activity.verdict(Instant::now(), timeout, false).is_ok());
    }
}
