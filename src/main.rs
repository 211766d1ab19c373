//! The `tusgate` binary: parses the command line, builds the app and runs the server until
//! SIGINT or SIGTERM (a second signal exits at once, as tusd does).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tusgate::app::App;
use tusgate::config::{Cli, Command, Config, Listen, SignCommand, normalize_go_args, read_secret};
use tusgate::server::{self, Listener};
use tusgate::storage::Store;
use tusgate::storage::local::LocalStore;
use tusgate::storage::s3::S3Store;

fn main() -> ExitCode {
    // The load generator parses its own command line (its flags are not the server's), so
    // `tusgate bench …` goes to it whole; `tusgate help bench` is its `--help`.
    let mut raw = std::env::args().skip(1).peekable();
    match raw.peek().map(String::as_str) {
        Some("bench") => return tusgate_bench::main_with("tusgate bench", raw.skip(1)),
        Some("help") if std::env::args().nth(2).as_deref() == Some("bench") => {
            return tusgate_bench::main_with("tusgate bench", ["--help".to_owned()]);
        }
        _ => {}
    }
    let normalized = normalize_go_args(std::env::args());
    let cli = Cli::parse_from(normalized.args);
    let args = match cli.command {
        Some(Command::Serve(args)) => *args,
        Some(Command::Sign(what)) => return sign(what),
        Some(Command::Healthcheck { addr, tls }) => return healthcheck(&addr, tls),
        // Handled above, before parsing; clap only lists it in --help.
        Some(Command::Bench { .. }) => unreachable!("tusgate bench is dispatched before parsing"),
        None => cli.serve,
    };
    if !normalized.refused.is_empty() {
        for line in &normalized.refused {
            report(line);
        }
        return ExitCode::from(2);
    }
    // Before the configuration, whose default connection cap follows the limit.
    let raised = server::raise_open_file_limit();
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(e) => {
            report(e);
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    for warning in &normalized.warnings {
        tracing::warn!("{warning}");
    }
    if let Err(e) = raised {
        tracing::warn!(error = %e, "cannot raise the open-file limit to the hard limit");
    }
    tracing::info!(
        open_file_limit = server::open_file_limit(),
        max_connections = config.max_connections,
        "connection limits"
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            report(format_args!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(e);
            ExitCode::FAILURE
        }
    }
}

/// Writes `tusgate: <message>` to stderr. A failed write is ignored: with stderr gone there is
/// nowhere to say so, and `eprintln!` would panic instead, failing whatever called it.
fn report(message: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "tusgate: {message}");
}

/// `tusgate healthcheck`: one GET /health with a short timeout, over TLS with `tls`.
fn healthcheck(addr: &str, tls: bool) -> ExitCode {
    use std::io::{Read, Write};
    use std::time::Duration;
    fn get(mut stream: impl Read + Write) -> std::io::Result<bool> {
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200"))
    }
    let check = || -> std::io::Result<bool> {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(addr)?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        stream.set_read_timeout(Some(Duration::from_secs(3)))?;
        stream.set_write_timeout(Some(Duration::from_secs(3)))?;
        if !tls {
            return get(stream);
        }
        let name = rustls::pki_types::ServerName::from(addr.ip());
        let client = rustls::ClientConnection::new(
            std::sync::Arc::new(tusgate::tls::healthcheck_client_config()),
            name,
        )
        .map_err(std::io::Error::other)?;
        get(rustls::StreamOwned::new(client, stream))
    };
    match check() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            report(format_args!("healthcheck of {addr} failed: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// `tusgate sign upload|download`: prints what granite-assets would build.
#[allow(clippy::print_stdout)]
fn sign(what: SignCommand) -> ExitCode {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let result = match what {
        SignCommand::Upload(args) => read_secret(
            "upload secret",
            args.upload_secret.as_deref(),
            args.upload_secret_file.as_deref(),
        )
        .and_then(|secret| {
            secret
                .ok_or_else(|| "set UPLOAD_SECRET (or --upload-secret) to sign uploads".to_owned())
        })
        .and_then(|secret| {
            let expires = now + args.ttl.as_secs();
            let metadata = tusgate::sign::upload_metadata(
                &secret,
                &args.key,
                &args.content_type,
                &args.visibility,
                expires,
            );
            let file = match &args.file {
                Some(path) => {
                    let size = std::fs::metadata(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?
                        .len();
                    Some((path.display().to_string(), size))
                }
                None => None,
            };
            let file = file.as_ref().map(|(p, s)| (p.as_str(), *s));
            println!("Upload-Metadata: {metadata}");
            println!(
                "{}",
                tusgate::sign::upload_command(&args.endpoint, &metadata, file)
            );
            Ok(())
        }),
        SignCommand::Download(args) => {
            let private = args.visibility == "private";
            let prefix = if private {
                &args.private_prefix
            } else {
                &args.public_prefix
            };
            read_secret(
                "secure_link secret",
                args.secure_link_secret.as_deref(),
                args.secure_link_secret_file.as_deref(),
            )
            .and_then(|secret| {
                let signing =
                    match (private, &secret) {
                        (false, _) => None,
                        (true, Some(secret)) => Some((secret, (now + args.ttl.as_secs()) as i64)),
                        (true, None) => return Err(
                            "set SECURE_LINK_SECRET (or --secure-link-secret) to sign private URLs"
                                .to_owned(),
                        ),
                    };
                println!(
                    "{}",
                    tusgate::sign::download_url(&args.base_url, prefix, &args.key, signing)
                );
                Ok(())
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(e);
            ExitCode::from(2)
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let store: Arc<dyn Store> = match &config.s3 {
        Some(s3) => Arc::new(S3Store::connect(s3).await?),
        None => Arc::new(
            LocalStore::open(
                &config.upload_dir,
                &config.assets_dir,
                config.fsync,
                config.overwrite,
            )
            .map_err(|e| {
                format!(
                    "cannot open the upload directory {}: {e}",
                    config.upload_dir.display()
                )
            })?,
        ),
    };
    let listener = bind(&config.listen).await?;
    let app = Arc::new(App::new(config, store)?);
    tusgate::janitor::recover(&app).await;

    if app.config.show_startup_logs {
        let scheme = if app.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        print_startup_line(&listener, scheme, &app.config.base_path);
    }
    if let Some(warning) = listener.local_addr().and_then(|addr| {
        // A pre-create hook decides who uploads tokenless: not open to anyone.
        let gated = app.hooks.enabled(tusgate::hooks::HookType::PreCreate);
        let open = app.config.tokens.allows_tokenless() && !gated;
        tusgate::startup::open_uploads_warning(addr, open)
    }) {
        tracing::warn!("{warning}");
    }
    tokio::spawn(tusgate::janitor::run(Arc::clone(&app)));
    server::run(listener, app, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// The line tusd prints (scripts wait for it), with a URL a client can use (see
/// [`tusgate::startup`]); for a UNIX socket, where tusd prints no URL, a plain statement of
/// where we listen. Nobody reading stdout is no reason not to serve, so a failed write is
/// ignored.
fn print_startup_line(listener: &Listener, scheme: &str, base_path: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout();
    let _ = match listener.local_addr() {
        Some(addr) => writeln!(
            stdout,
            "You can now upload files to: {}",
            tusgate::startup::client_url(scheme, addr, base_path)
        )
        .and_then(|()| {
            match tusgate::startup::all_interfaces_note(scheme, addr, base_path) {
                Some(note) => writeln!(stdout, "{note}"),
                None => Ok(()),
            }
        }),
        None => writeln!(
            stdout,
            "Listening on UNIX socket {}, base path {base_path}",
            listener.display_addr()
        ),
    };
}

async fn bind(listen: &Listen) -> Result<Listener, String> {
    match listen {
        Listen::Tcp { host, port } => {
            let addr = format!("{host}:{port}");
            tokio::net::TcpListener::bind(&addr)
                .await
                .map(Listener::Tcp)
                .map_err(|e| format!("cannot listen on {addr}: {e}"))
        }
        Listen::Unix(path) => {
            // Like tusd: replace a stale socket, but never delete anything else.
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                use std::os::unix::fs::FileTypeExt;
                if !meta.file_type().is_socket() {
                    return Err(format!("{} exists and is not a socket", path.display()));
                }
                let _ = std::fs::remove_file(path);
            }
            tokio::net::UnixListener::bind(path)
                .map(|l| Listener::Unix(l, path.clone()))
                .map_err(|e| format!("cannot listen on {}: {e}", path.display()))
        }
    }
}

/// Resolves on the first SIGINT/SIGTERM; a second one exits immediately.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(1);
    });
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let default = if config.verbose { "info" } else { "warn" };
    let filter = EnvFilter::try_from_env("TUSGATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Logging must never fail a request. With this on, a failed write to the log (stderr's
        // reader gone, a full disk) is reported with `eprintln!`, which panics on the same
        // broken stderr, inside whichever request was logging; such lines are dropped instead.
        .log_internal_errors(false);
    if config.log_json {
        builder.json().init();
    } else {
        builder.with_ansi(false).init();
    }
}
