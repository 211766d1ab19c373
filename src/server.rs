//! The transport: accepts connections, serves HTTP/1.1 and cleartext HTTP/2 (prior knowledge)
//! on each with hyper, and shuts down gracefully.
//!
//! [`run`] takes an already-bound listener and any shutdown future, so tests and benchmarks
//! start a real server on port 0 and stop it when they like. On shutdown it stops accepting,
//! cancels `App::shutdown` (bodies being read stop, keep what they stored and answer 503
//! `ERR_SERVER_SHUTDOWN`), and waits up to the shutdown timeout for open requests.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

use crate::app::App;

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

/// Serves `app` on `listener` until `shutdown` resolves, then drains open requests for at most
/// the configured shutdown timeout.
pub async fn run(
    listener: Listener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Go writes canonical header names; some clients in the wild compare them exactly.
        .title_case_headers(true)
        // Request heads must arrive promptly; bodies have their own per-read timeout.
        .header_read_timeout(app.config.network_timeout);
    builder.http2().timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener) => accepted,
        };
        let io = match accepted {
            Ok(io) => io,
            Err(e) => {
                // Out of file descriptors and the like: log, back off briefly, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let app_for_conn = Arc::clone(&app);
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let app = Arc::clone(&app_for_conn);
            async move { Ok::<_, Infallible>(app.handle(request).await) }
        });
        let connection = builder.serve_connection(io, service).into_owned();
        let connection = graceful.watch(connection);
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            app.metrics.connections_open.inc();
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            app.metrics.connections_open.dec();
        });
    }
    app.shutdown.cancel();
    if tokio::time::timeout(app.config.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout reached with requests still open");
    }
    Ok(())
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

async fn accept(listener: &Listener) -> io::Result<TokioIo<Box<dyn Io>>> {
    Ok(TokioIo::new(match listener {
        Listener::Tcp(l) => {
            let (stream, _) = l.accept().await?;
            // Small responses (204s) must not wait for Nagle.
            stream.set_nodelay(true)?;
            Box::new(stream) as Box<dyn Io>
        }
        Listener::Unix(l, _) => Box::new(l.accept().await?.0),
    }))
}
