//! The request body as a [`ByteSource`] for storage: it streams frames as they arrive and
//! stops early, remembering why, when
//! - nothing arrives for the network timeout while storage waits for it: `ERR_READ_TIMEOUT`.
//!   The timer starts when storage asks for the chunk after the one it was last given, not
//!   when that one arrived: a long upload is never cut while it makes progress, and time
//!   storage spends elsewhere between two reads (waiting for S3, or for the S3 buffer budget,
//!   while the client cannot send because nobody reads) does not count as the client's
//!   silence;
//! - another request for the upload asks for the lock: `ERR_UPLOAD_INTERRUPTED`;
//! - the server shuts down: `ERR_SERVER_SHUTDOWN`;
//! - a post-receive hook answers `StopUpload`: `ERR_UPLOAD_STOPPED`;
//! - the client goes away: `ERR_UNEXPECTED_EOF` or `ERR_CONNECTION_RESET`;
//! - a chunked body runs past the upload's end: exactly the remainder is delivered, then
//!   `ERR_UPLOAD_SIZE_EXCEEDED`. With [`BodySource::strict_end`] (the draft, where such an
//!   upload becomes invalid) the bytes that would fill the upload are held back until the body
//!   is seen to end: a body that runs on delivers none of them, and neither does one a hook
//!   stopped, so the store never holds a complete upload that is about to be removed, not even
//!   for the moment before the removal (a crash there would have let recovery publish it).
//!   The wait for the end has its own full idle timeout.
//!
//! Storage keeps whatever was delivered before the stop, as tusd does; with `Upload-Checksum`
//! the whole chunk is hashed on the way through and discarded unless it is complete and
//! matches.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use md5::Digest as _;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::error::Error;
use crate::storage::ByteSource;

/// A checksum algorithm of the checksum extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Sha1,
    Md5,
    Sha256,
}

impl ChecksumAlgorithm {
    /// The `Tus-Checksum-Algorithm` value.
    pub const ADVERTISED: &'static str = "sha1,md5,sha256";
}

/// `Upload-Checksum: <algorithm> <base64 digest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub digest: Vec<u8>,
}

enum Hasher {
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            ChecksumAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// Why reading could stop before the body ended.
pub struct Stops {
    /// The upload's lock holder was asked to release.
    pub interrupt: WaitForCancellationFutureOwned,
    /// The server is shutting down.
    pub shutdown: WaitForCancellationFutureOwned,
    /// A hook asked to stop the upload (post-receive's `StopUpload`), if hooks may.
    pub stop_upload: Option<WaitForCancellationFutureOwned>,
    /// Longest silence tolerated between two reads.
    pub idle_timeout: Duration,
}

impl std::fmt::Debug for Stops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stops")
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl<B> std::fmt::Debug for BodySource<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodySource")
            .field("limit", &self.limit)
            .field("delivered", &self.delivered)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

/// A request body delivering at most `limit` bytes.
pub struct BodySource<B> {
    body: B,
    limit: u64,
    delivered: u64,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    /// `idle` runs for the current wait; cleared when a chunk is delivered, so the next call
    /// restarts it (once per chunk, as often as a per-frame reset).
    idle_running: bool,
    interrupt: Pin<Box<WaitForCancellationFutureOwned>>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    stop_upload: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// Bytes delivered so far, for whoever reports progress (post-receive hooks).
    received: Option<Arc<AtomicU64>>,
    checksum: Option<(Hasher, Vec<u8>)>,
    checksum_failed: bool,
    stopped: Option<Error>,
    done: bool,
    /// See [`BodySource::strict_end`].
    strict_end: bool,
    /// The frame that filled the room, waiting for the end of the body (strict end only).
    /// Delivered on any end but an overflow, even after `done` is set.
    held: Option<Bytes>,
}

impl<B> BodySource<B>
where
    B: Body<Data = Bytes> + Send + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    pub fn new(body: B, limit: u64, stops: Stops, checksum: Option<Checksum>) -> Self {
        BodySource {
            body,
            limit,
            delivered: 0,
            idle: Box::pin(tokio::time::sleep(stops.idle_timeout)),
            idle_timeout: stops.idle_timeout,
            idle_running: false,
            interrupt: Box::pin(stops.interrupt),
            shutdown: Box::pin(stops.shutdown),
            stop_upload: stops.stop_upload.map(Box::pin),
            received: None,
            checksum: checksum.map(|c| (Hasher::new(c.algorithm), c.digest)),
            checksum_failed: false,
            stopped: None,
            done: false,
            strict_end: false,
            held: None,
        }
    }

    /// Delivers the bytes that fill the room only once the body is seen to end (or to break
    /// off, which keeps what arrived): a body that runs past the room delivers none of them.
    pub fn strict_end(mut self) -> Self {
        self.strict_end = true;
        self
    }

    /// Counts the bytes delivered into `received` as they go.
    pub fn counting(mut self, received: Arc<AtomicU64>) -> Self {
        self.received = Some(received);
        self
    }

    /// Which stop, if any, has fired: the lock holder asked to let go, the server is shutting
    /// down, or a hook stopped the upload.
    fn poll_stops(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        if self.interrupt.as_mut().poll(cx).is_ready() {
            return Some(Error::UploadInterrupted);
        }
        if self.shutdown.as_mut().poll(cx).is_ready() {
            return Some(Error::ServerShutdown);
        }
        let stopped = self
            .stop_upload
            .as_mut()
            .is_some_and(|stop| stop.as_mut().poll(cx).is_ready());
        stopped.then(|| Error::UploadStopped(Box::default()))
    }

    /// Why the body stopped early, if it did.
    pub fn take_stop(&mut self) -> Option<Error> {
        self.stopped.take()
    }

    /// The chunk was discarded because its checksum did not match (or it was incomplete).
    pub fn checksum_failed(&self) -> bool {
        self.checksum_failed
    }

    /// Ends reading for `why`; a held frame is still delivered (what arrived is kept) unless
    /// a hook stopped the upload, which is about to be removed.
    fn stop(&mut self, why: Error) -> Poll<Option<Bytes>> {
        self.mark_stopped(why);
        self.end()
    }

    fn mark_stopped(&mut self, why: Error) {
        if matches!(why, Error::UploadStopped(_)) {
            self.held = None;
        }
        self.stopped.get_or_insert(why);
        self.done = true;
    }

    /// Ends reading; the held frame, if any, is the last chunk.
    fn end(&mut self) -> Poll<Option<Bytes>> {
        self.done = true;
        match self.held.take() {
            Some(data) => self.deliver(data),
            None => Poll::Ready(None),
        }
    }

    /// The body ran past the room: nothing more is delivered, a held frame included.
    fn overflow(&mut self) -> Poll<Option<Bytes>> {
        self.held = None;
        self.stop(Error::UploadSizeExceeded)
    }

    fn deliver(&mut self, data: Bytes) -> Poll<Option<Bytes>> {
        self.delivered += data.len() as u64;
        if let Some(received) = &self.received {
            received.store(self.delivered, Ordering::Relaxed);
        }
        self.idle_running = false;
        if let Some((hasher, _)) = self.checksum.as_mut() {
            hasher.update(&data);
        }
        Poll::Ready(Some(data))
    }
}

impl<B> ByteSource for BodySource<B>
where
    B: Body<Data = Bytes> + Send + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.done {
            return self.end();
        }
        if let Some(why) = self.poll_stops(cx) {
            return self.stop(why);
        }
        if !self.idle_running {
            let deadline = Instant::now() + self.idle_timeout;
            self.idle.as_mut().reset(deadline);
            self.idle_running = true;
        }
        loop {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(mut data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if self.held.is_some() {
                        return self.overflow();
                    }
                    let room = self.limit - self.delivered;
                    if data.len() as u64 > room {
                        if self.strict_end {
                            return self.overflow();
                        }
                        // A chunked body longer than the upload: keep exactly what fits.
                        data.truncate(room as usize);
                        self.stopped = Some(Error::UploadSizeExceeded);
                        self.done = true;
                        if data.is_empty() {
                            return Poll::Ready(None);
                        }
                    } else if self.strict_end && data.len() as u64 == room {
                        // Whether these bytes may be stored depends on what follows them.
                        // The end gets a full idle timeout of its own, as the next chunk
                        // would have had once these bytes were delivered.
                        self.held = Some(data);
                        let deadline = Instant::now() + self.idle_timeout;
                        self.idle.as_mut().reset(deadline);
                        continue;
                    }
                    return self.deliver(data);
                }
                Poll::Ready(Some(Err(e))) => return self.stop(classify(e.into())),
                Poll::Ready(None) => return self.end(),
                Poll::Pending => {
                    if self.idle.as_mut().poll(cx).is_ready() {
                        return self.stop(Error::ReadTimeout);
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn all_or_nothing(&self) -> bool {
        self.checksum.is_some()
    }

    fn remaining(&self) -> Option<u64> {
        Some(if self.done {
            self.held.as_ref().map_or(0, |held| held.len() as u64)
        } else {
            self.limit - self.delivered
        })
    }

    fn poll_stopped(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.done {
            if let Some(why) = self.poll_stops(cx) {
                // Not `stop`: a held frame is for the next `poll_chunk` to deliver.
                self.mark_stopped(why);
            }
        }
        if self.done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn accept(&mut self) -> bool {
        let Some((hasher, expected)) = self.checksum.take() else {
            return true;
        };
        // A chunk that did not arrive whole cannot match the digest of the whole chunk.
        let matches = self.stopped.is_none() && hasher.finish() == expected;
        self.checksum_failed = !matches;
        matches
    }
}

/// Maps a body error to what tusd reports for it.
fn classify(err: Box<dyn std::error::Error + Send + Sync>) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err.as_ref());
    while let Some(e) = source {
        if let Some(hyper_err) = e.downcast_ref::<hyper::Error>() {
            if hyper_err.is_incomplete_message() {
                return Error::UnexpectedEof;
            }
        }
        if let Some(io_err) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{
                BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof,
            };
            match io_err.kind() {
                ConnectionReset | ConnectionAborted | BrokenPipe => return Error::ConnectionReset,
                UnexpectedEof => return Error::UnexpectedEof,
                _ => {}
            }
        }
        source = e.source();
    }
    Error::UnexpectedEof
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::next_chunk;
    use http_body_util::{BodyExt, Full, StreamBody};
    use tokio_util::sync::CancellationToken;

    fn stops(interrupt: &CancellationToken, shutdown: &CancellationToken) -> Stops {
        Stops {
            interrupt: interrupt.clone().cancelled_owned(),
            shutdown: shutdown.clone().cancelled_owned(),
            stop_upload: None,
            idle_timeout: Duration::from_secs(60),
        }
    }

    async fn drain(source: &mut (dyn ByteSource + '_)) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = next_chunk(source).await {
            out.extend_from_slice(&chunk);
        }
        out
    }

    #[tokio::test]
    async fn overflow_delivers_exactly_the_remainder() {
        let (i, s) = (CancellationToken::new(), CancellationToken::new());
        let mut source = BodySource::new(
            Full::new(Bytes::from_static(b"hello world")),
            5,
            stops(&i, &s),
            None,
        );
        assert_eq!(drain(&mut source).await, b"hello");
        assert!(matches!(
            source.take_stop(),
            Some(Error::UploadSizeExceeded)
        ));
    }

    type Piece = Result<http_body::Frame<Bytes>, std::io::Error>;

    /// A channel-fed body and its sender, for bodies that arrive piece by piece.
    fn piecewise() -> (
        tokio::sync::mpsc::Sender<Piece>,
        StreamBody<tokio_stream_shim::Receiver<Piece>>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        (tx, StreamBody::new(tokio_stream_shim::Receiver(rx)))
    }

    fn piece(data: &'static [u8]) -> Piece {
        Ok(http_body::Frame::data(Bytes::from_static(data)))
    }

    #[tokio::test]
    async fn strict_end_delivers_a_body_that_ends_at_the_room() {
        let (i, s) = (CancellationToken::new(), CancellationToken::new());
        let (tx, body) = piecewise();
        let mut source = BodySource::new(body, 5, stops(&i, &s), None).strict_end();
        tx.send(piece(b"he")).await.expect("send");
        tx.send(piece(b"llo")).await.expect("send");
        drop(tx);
        assert_eq!(drain(&mut source).await, b"hello");
        assert!(source.take_stop().is_none());
    }

    #[tokio::test]
    async fn strict_end_delivers_nothing_that_fills_the_room_of_a_body_that_runs_on() {
        let (i, s) = (CancellationToken::new(), CancellationToken::new());
        // The overflow within one frame, and in the frame after the one that filled the room.
        let mut source = BodySource::new(
            Full::new(Bytes::from_static(b"hello world")),
            5,
            stops(&i, &s),
            None,
        )
        .strict_end();
        assert!(drain(&mut source).await.is_empty());
        assert!(matches!(
            source.take_stop(),
            Some(Error::UploadSizeExceeded)
        ));
        let (tx, body) = piecewise();
        let mut source = BodySource::new(body, 5, stops(&i, &s), None).strict_end();
        tx.send(piece(b"he")).await.expect("send");
        tx.send(piece(b"llo")).await.expect("send");
        tx.send(piece(b"!")).await.expect("send");
        assert_eq!(drain(&mut source).await, b"he");
        assert!(matches!(
            source.take_stop(),
            Some(Error::UploadSizeExceeded)
        ));
    }

    #[tokio::test]
    async fn strict_end_keeps_a_held_frame_when_reading_stops_for_another_reason() {
        let (i, s) = (CancellationToken::new(), CancellationToken::new());
        let (tx, body) = piecewise();
        let mut source = BodySource::new(body, 5, stops(&i, &s), None).strict_end();
        tx.send(piece(b"hello")).await.expect("send");
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(
            source.poll_chunk(&mut cx).is_pending(),
            "held, waiting for the end"
        );
        i.cancel();
        assert!(source.poll_stopped(&mut cx).is_ready());
        assert_eq!(source.remaining(), Some(5));
        assert_eq!(drain(&mut source).await, b"hello");
        assert!(matches!(source.take_stop(), Some(Error::UploadInterrupted)));
        drop(tx);
        // A body that breaks off right after filling the room keeps what arrived.
        let (tx, body) = piecewise();
        let i = CancellationToken::new();
        let mut source = BodySource::new(body, 5, stops(&i, &s), None).strict_end();
        tx.send(piece(b"hello")).await.expect("send");
        tx.send(Err(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )))
        .await
        .expect("send");
        assert_eq!(drain(&mut source).await, b"hello");
        assert!(matches!(source.take_stop(), Some(Error::ConnectionReset)));
    }

    #[tokio::test]
    async fn strict_end_drops_a_held_frame_when_a_hook_stops_the_upload() {
        let (i, s) = (CancellationToken::new(), CancellationToken::new());
        let hook = CancellationToken::new();
        let (tx, body) = piecewise();
        let stops = Stops {
            stop_upload: Some(hook.clone().cancelled_owned()),
            ..stops(&i, &s)
        };
        let mut source = BodySource::new(body, 5, stops, None).strict_end();
        tx.send(piece(b"he")).await.expect("send");
        tx.send(piece(b"llo")).await.expect("send");
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(matches!(source.poll_chunk(&mut cx), Poll::Ready(Some(_))));
        assert!(
            source.poll_chunk(&mut cx).is_pending(),
            "held, waiting for the end"
        );
        hook.cancel();
        assert!(drain(&mut source).await.is_empty());
        assert!(matches!(source.take_stop(), Some(Error::UploadStopped(_))));
        drop(tx);
    }

    /// Holding the last frame restarts the idle timeout: the end of the body gets a full one,
    /// as the next chunk would have after a delivery.
    #[tokio::test(start_paused = true)]
    async fn strict_end_gives_the_end_of_the_body_a_full_idle_timeout() {
        let (i, s) = (CancellationToken::new(), CancellationToken::new());
        let (tx, body) = piecewise();
        let mut source = BodySource::new(body, 5, stops(&i, &s), None).strict_end();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(59)).await;
            tx.send(piece(b"hello")).await.expect("send");
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(tx);
        });
        assert_eq!(drain(&mut source).await, b"hello");
        assert!(
            source.take_stop().is_none(),
            "the end came 30 s after the last bytes"
        );
        sender.await.expect("sender");
    }

    #[tokio::test]
    async fn interruption_stops_reading() {
        let (i, s) = (CancellationToken::new(), CancellationToken::new());
        i.cancel();
        let mut source = BodySource::new(
            Full::new(Bytes::from_static(b"data")),
            10,
            stops(&i, &s),
            None,
        );
        assert!(drain(&mut source).await.is_empty());
        assert!(matches!(source.take_stop(), Some(Error::UploadInterrupted)));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_times_out() {
        let (i, s) = (CancellationToken::new(), CancellationToken::new());
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, std::io::Error>>(1);
        let body = StreamBody::new(tokio_stream_shim::Receiver(rx));
        let mut source = BodySource::new(body, 10, stops(&i, &s), None);
        tx.send(Ok(http_body::Frame::data(Bytes::from_static(b"ab"))))
            .await
            .expect("send");
        assert_eq!(drain(&mut source).await, b"ab");
        assert!(matches!(source.take_stop(), Some(Error::ReadTimeout)));
        drop(tx);
    }

    /// Storage that does not read for longer than the idle timeout (waiting for S3 or for the
    /// buffer budget) must not make the next read time out at once: the client could not send
    /// while nobody read. Only silence while storage waits for the body counts.
    #[tokio::test(start_paused = true)]
    async fn time_spent_not_reading_is_not_silence() {
        let (i, s) = (CancellationToken::new(), CancellationToken::new());
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, std::io::Error>>(1);
        let body = StreamBody::new(tokio_stream_shim::Receiver(rx));
        let mut source = BodySource::new(body, 10, stops(&i, &s), None);
        // Before the first read, and between two reads.
        tokio::time::sleep(Duration::from_secs(600)).await;
        let sender = tokio::spawn(async move {
            for piece in [&b"ab"[..], b"cd"] {
                tokio::time::sleep(Duration::from_secs(30)).await;
                tx.send(Ok(http_body::Frame::data(Bytes::from_static(piece))))
                    .await
                    .expect("send");
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        });
        assert_eq!(next_chunk(&mut source).await.as_deref(), Some(&b"ab"[..]));
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(next_chunk(&mut source).await.as_deref(), Some(&b"cd"[..]));
        assert!(source.take_stop().is_none());
        // The silence after the last piece is real: the timeout still applies.
        assert!(next_chunk(&mut source).await.is_none());
        assert!(matches!(source.take_stop(), Some(Error::ReadTimeout)));
        sender.abort();
    }

    #[tokio::test]
    async fn an_interruption_is_seen_without_reading() {
        let (i, s) = (CancellationToken::new(), CancellationToken::new());
        let mut source = BodySource::new(
            Full::new(Bytes::from_static(b"data")),
            4,
            stops(&i, &s),
            None,
        );
        assert_eq!(source.remaining(), Some(4));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(source.poll_stopped(&mut cx).is_pending());
        i.cancel();
        assert!(source.poll_stopped(&mut cx).is_ready());
        assert_eq!(source.remaining(), Some(0));
        assert!(
            next_chunk(&mut source).await.is_none(),
            "nothing read after the stop"
        );
        assert!(matches!(source.take_stop(), Some(Error::UploadInterrupted)));
    }

    #[tokio::test]
    async fn checksum_accepts_matching_and_rejects_other_bytes() {
        let (i, s) = (CancellationToken::new(), CancellationToken::new());
        let digest = sha1::Sha1::digest(b"hello").to_vec();
        let good = Checksum {
            algorithm: ChecksumAlgorithm::Sha1,
            digest: digest.clone(),
        };
        let mut source = BodySource::new(
            Full::new(Bytes::from_static(b"hello")),
            5,
            stops(&i, &s),
            Some(good),
        );
        drain(&mut source).await;
        assert!(source.accept());
        let bad = Checksum {
            algorithm: ChecksumAlgorithm::Sha1,
            digest,
        };
        let mut source = BodySource::new(
            Full::new(Bytes::from_static(b"hellO")),
            5,
            stops(&i, &s),
            Some(bad),
        );
        drain(&mut source).await;
        assert!(!source.accept());
        assert!(source.checksum_failed());
        // Collecting a body the normal way still works for the types used here.
        assert_eq!(
            Full::new(Bytes::from_static(b"x"))
                .collect()
                .await
                .map(|c| c.to_bytes())
                .ok(),
            Some(Bytes::from_static(b"x"))
        );
    }

    /// A minimal `Stream` over an mpsc receiver, so tests need no extra crate.
    mod tokio_stream_shim {
        use std::pin::Pin;
        use std::task::{Context, Poll};

        pub(super) struct Receiver<T>(pub(super) tokio::sync::mpsc::Receiver<T>);

        impl<T> futures_core::Stream for Receiver<T> {
            type Item = T;
            fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
                self.0.poll_recv(cx)
            }
        }
    }
}
