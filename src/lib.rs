//! tusgate: one binary in place of tusd + hooks + nginx in front of an asset store.
//!
//! # Layout
//!
//! The upload path reads top to bottom:
//! - [`server`]: accepts connections (capped), runs hyper (HTTP/1.1 and h2c, or over TLS the
//!   version ALPN chose, the handshake in each connection's task), closes connections that make
//!   no progress, graceful shutdown; [`tls`]: tusd's TLS flags and modes with rustls, the
//!   certificate checks at startup and the reload on SIGHUP;
//! - [`app`]: shared state and the typed top-level [`app::Route`];
//! - [`tus`]: the tus 1.0 protocol, tusd-exact: a dispatcher (method override, CORS, version
//!   check, routing) and one module per method that keeps only HTTP; [`tus::headers`] holds the
//!   pure header parsers;
//! - [`draft`]: the IETF resumable upload draft (interop 9, 8, 6, 5) on the same endpoint,
//!   handed over by the tus dispatcher per request: pure parsers (structured fields, the
//!   draft's fields, problem documents, request classification) and handlers over the same
//!   lifecycle; [`interim`] sends its 104 interim responses on the connection;
//! - [`lifecycle`]: the upload lifecycle every protocol shares (create, append, finish and
//!   publish, terminate: locks, tokens, storage, metrics, in one order);
//!   [`lifecycle::body`] turns a request body into a byte source with timeouts and
//!   interruption, stored and finished in a task that owns the upload's lock; the lifecycle
//!   is the one place [`hooks`] fire (tusd v2's HTTP and file hooks, its JSON, its events);
//! - [`tokens`] and [`keys`]: upload tokens checked at creation, and which asset keys are safe;
//! - [`upload`]: what an upload is, and [`upload::lock`], the per-upload lock with hand-over;
//! - [`storage`]: the `Store` trait every backend implements; [`storage::local`], the disk
//!   backend in tusd's filestore layout with atomic publish into `<visibility>/<key>` (one
//!   process per directory; `storage::durable` group-commits its fsyncs and
//!   [`storage::writeback`] starts writeback while a body streams); and [`storage::s3`], where the bucket's conditional writes fence
//!   instances sharing it, so any instance can serve any request of any upload.
//!
//! The download path: [`download`] checks nginx `secure_link` tokens ([`download::secure_link`])
//! on nginx-normalised paths ([`download::uri`]) and serves published assets with Range and
//! conditional requests, through the same `Store`.
//!
//! Around them: [`config`] (tusd-compatible flags, two-stage validation), [`cors`], [`range`]
//! (nginx's Range rules), [`metrics`] (tusd's metric names), [`janitor`] (finishing uploads:
//! the publish after the last byte, startup recovery, retries of failed publishes, expiry),
//! [`error`] (the error catalogue with exhaustive status mapping), [`response`],
//! [`failpoint`] (crash and pause injection for the tests), [`startup`] (what the server says
//! when it starts: a URL clients can use, a warning about uploads open to anyone).
//!
//! Not part of this library: the `tusgate bench` load generator is the `tusgate-bench` crate
//! (`crates/bench`), which only the binary links (see `benches/README.md`).

pub mod app;
pub mod config;
pub mod cors;
pub mod download;
pub mod draft;
pub mod error;
pub mod failpoint;
pub mod hooks;
pub mod interim;
pub mod janitor;
pub mod keys;
pub mod lifecycle;
pub mod metrics;
pub mod range;
pub mod response;
pub mod server;
pub mod sign;
pub mod startup;
pub mod storage;
pub mod tls;
pub mod tokens;
pub mod tus;
pub mod upload;
