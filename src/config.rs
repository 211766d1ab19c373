//! Configuration in two stages: [`Cli`] is what the command line and the environment say,
//! [`Config`] is the validated result the rest of the program sees.
//!
//! tusd command lines must start tusgate unchanged, and tusd uses Go's `flag` syntax:
//! `-flag=value`, `-flag value`, `--flag value`, bare `-bool-flag`, `-bool-flag=false`,
//! durations like `1m30s`. [`normalize_go_args`] turns single-dash long flags into clap's
//! double-dash form, and the value parsers below accept Go's boolean and duration spellings.
//! tusd flags that have no meaning here are accepted and produce a one-line warning saying
//! what replaces them. Every setting also has an environment variable (`TUSGATE_<FLAG>`; the
//! secrets use the names granite-assets deployments already have).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::cors::CorsConfig;
use crate::download::AssetsConfig;
use crate::storage::s3::{PayloadSigning, S3Config};
use crate::storage::{FsyncPolicy, Overwrite};
use crate::tokens::{Prefixes, Secret, UploadTokens};

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    /// Always starts and ends with `/` (`/files/`).
    pub base_path: String,
    pub behind_proxy: bool,
    /// Serve the IETF resumable upload draft beside tus 1.0 (`crate::draft`).
    pub draft: bool,
    /// Send the draft's 104 interim responses where the connection can carry them.
    pub draft_104: bool,
    pub max_size: Option<u64>,
    pub download: bool,
    pub termination: bool,
    pub concatenation: bool,
    pub upload_expiry: Option<Duration>,
    pub cors: Option<CorsConfig>,
    pub upload_dir: PathBuf,
    pub assets_dir: PathBuf,
    pub fsync: FsyncPolicy,
    pub overwrite: Overwrite,
    /// `Some` selects the S3 backend.
    pub s3: Option<S3Config>,
    pub tokens: UploadTokens,
    pub assets: AssetsConfig,
    pub network_timeout: Duration,
    pub acquire_lock_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// At least 1.
    pub max_connections: usize,
    /// SO_RCVBUF of accepted TCP connections; `None` leaves the kernel's autotuning.
    pub tcp_receive_buffer: Option<usize>,
    /// `Some`: connections are TLS (`--tls-certificate`, `--tls-key`, `--tls-mode`).
    pub tls: Option<crate::tls::TlsConfig>,
    pub metrics_path: Option<String>,
    pub show_greeting: bool,
    pub worker_threads: Option<usize>,
    pub verbose: bool,
    pub show_startup_logs: bool,
    pub log_json: bool,
    pub hooks: HooksConfig,
}

/// Where hook events go (tusd's `-hooks-dir` / `-hooks-http`); see [`crate::hooks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookBackendConfig {
    /// One executable per event in this (absolute) directory.
    File { dir: PathBuf, timeout: Duration },
    /// A POST per event to this http(s) URL.
    Http {
        url: String,
        /// Total attempts (tusd's `-hooks-http-retry`, at least 1).
        attempts: u32,
        backoff: Duration,
        /// Names as the user spelled them (tusd sends them in that case).
        forward_headers: Vec<String>,
        /// For the whole call, retries and backoffs included.
        timeout: Duration,
        size_limit: u64,
        skip_verify: bool,
    },
}

/// The validated hook settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksConfig {
    /// `None`: no hooks fire.
    pub backend: Option<HookBackendConfig>,
    /// In tusd's order, no duplicates.
    pub enabled: Vec<crate::hooks::HookType>,
    pub progress_interval: Duration,
    /// Settings that are accepted but have no effect (logged once at startup).
    pub notes: Vec<String>,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            backend: None,
            enabled: Vec::new(),
            progress_interval: Duration::from_secs(1),
            notes: Vec::new(),
        }
    }
}

impl HooksConfig {
    pub fn from_args(args: &ServeArgs) -> Result<HooksConfig, String> {
        let enabled = parse_hook_events(&args.hooks_enabled_events)?;
        let mut notes = Vec::new();
        let hooks_http = args.hooks_http.as_deref().filter(|u| !u.is_empty());
        let backend =
            match (&args.hooks_dir, hooks_http) {
                (Some(dir), http) if !dir.as_os_str().is_empty() => {
                    if let Some(url) = http {
                        notes.push(format!(
                        "--hooks-http {url} is ignored: --hooks-dir takes precedence, as in tusd"
                    ));
                    }
                    if args.hooks_dir_timeout.is_zero() {
                        return Err("--hooks-dir-timeout must be greater than 0".into());
                    }
                    let dir = std::path::absolute(dir).map_err(|e| {
                        format!("--hooks-dir {}: cannot resolve it: {e}", dir.display())
                    })?;
                    Some(HookBackendConfig::File {
                        dir,
                        timeout: args.hooks_dir_timeout,
                    })
                }
                (_, Some(url)) => {
                    if args.hooks_http_timeout.is_zero() {
                        // tusd would fail every call at once.
                        return Err("--hooks-http-timeout must be greater than 0".into());
                    }
                    crate::hooks::http::parse_url(url)?;
                    let size_limit = u64::try_from(args.hooks_http_size_limit).map_err(|_| {
                    "--hooks-http-size-limit must be 0 or more bytes (tusd would fail every call)"
                })?;
                    Some(HookBackendConfig::Http {
                        url: url.to_owned(),
                        attempts: u32::try_from(args.hooks_http_retry.clamp(1, 1000)).unwrap_or(1),
                        backoff: args.hooks_http_backoff,
                        forward_headers: args
                            .hooks_http_forward_headers
                            .split(',')
                            .map(str::trim)
                            .filter(|h| !h.is_empty())
                            .map(|h| {
                                http::HeaderName::try_from(h).map(|_| h.to_owned()).map_err(|_| {
                                format!("--hooks-http-forward-headers: {h:?} is not a header name")
                            })
                            })
                            .collect::<Result<_, _>>()?,
                        timeout: args.hooks_http_timeout,
                        size_limit,
                        skip_verify: args.hooks_http_skip_verify,
                    })
                }
                _ => None,
            };
        Ok(HooksConfig {
            backend,
            enabled,
            progress_interval: Some(args.progress_hooks_interval)
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(1)),
            notes,
        })
    }
}

/// `-hooks-enabled-events`: tusd's names, comma-separated; empty means all of them.
fn parse_hook_events(list: &str) -> Result<Vec<crate::hooks::HookType>, String> {
    use crate::hooks::HookType;
    if list.trim().is_empty() {
        return Ok(HookType::ALL.to_vec());
    }
    let mut enabled = Vec::new();
    for name in list.split(',').map(str::trim) {
        let hook = HookType::parse(name).ok_or_else(|| {
            format!(
                "unknown hook event {name:?} in --hooks-enabled-events (known: {})",
                HookType::ALL.map(HookType::as_str).join(", ")
            )
        })?;
        if !enabled.contains(&hook) {
            enabled.push(hook);
        }
    }
    Ok(enabled)
}

impl Config {
    /// Validates the arguments; the error says what to change.
    pub fn from_args(args: &ServeArgs) -> Result<Config, String> {
        let upload_secret = read_secret(
            "upload secret",
            args.upload_secret.as_deref(),
            args.upload_secret_file.as_deref(),
        )?;
        let hooks = HooksConfig::from_args(args)?;
        // Without a secret, a pre-create hook is the gatekeeper, as it is under tusd: an
        // unchanged tusd command line with hooks starts, and the hook decides who uploads.
        let hook_decides = upload_secret.is_none()
            && hooks.backend.is_some()
            && hooks.enabled.contains(&crate::hooks::HookType::PreCreate);
        let allow_without_token = args.allow_uploads_without_token || hook_decides;
        if upload_secret.is_none() && !allow_without_token {
            return Err("no upload secret configured. Set UPLOAD_SECRET (or UPLOAD_SECRET_FILE, or --upload-secret) \
to the granite-assets upload_secret so uploads need a valid token, or pass --allow-uploads-without-token \
to accept uploads from anyone, as plain tusd does (or let a pre-create hook decide: -hooks-http or -hooks-dir)"
                .into());
        }
        let secure_link_secret = read_secret(
            "secure_link secret",
            args.secure_link_secret.as_deref(),
            args.secure_link_secret_file.as_deref(),
        )?;
        if !args.dev {
            for (name, secret) in [
                ("UPLOAD_SECRET", &upload_secret),
                ("SECURE_LINK_SECRET", &secure_link_secret),
            ] {
                if secret
                    .as_ref()
                    .is_some_and(|s| s.expose().starts_with(PLACEHOLDER_SECRET_PREFIX.as_bytes()))
                {
                    return Err(format!(
                        "{name} is still the placeholder from .env.example; generate a real one \
(python3 -c 'import secrets; print(secrets.token_urlsafe(32))') or pass --dev for local experiments"
                    ));
                }
            }
        }
        for prefix in [&args.public_prefix, &args.private_prefix] {
            if prefix.is_empty()
                || prefix.contains('/')
                || prefix == "."
                || prefix == ".."
                || crate::upload::UploadId::parse(prefix).is_some_and(|id| id.as_str().len() == 32)
            {
                return Err(format!(
                    "invalid visibility prefix {prefix:?}: use a plain directory name such as public"
                ));
            }
        }
        if args.public_prefix == args.private_prefix {
            return Err("--public-prefix and --private-prefix must differ".into());
        }
        let cors = if args.disable_cors {
            None
        } else {
            Some(CorsConfig::new(
                &args.cors_allow_origin,
                args.cors_allow_credentials,
                &args.cors_allow_methods,
                &args.cors_allow_headers,
                &args.cors_expose_headers,
                &args.cors_max_age,
            )?)
        };
        let listen = match &args.unix_sock {
            Some(path) => Listen::Unix(path.clone()),
            None => Listen::Tcp {
                host: args.host.clone(),
                port: args.port,
            },
        };
        let mount = format!("/{}", args.assets_base_path.trim_matches('/'));
        if mount == "/" {
            return Err("--assets-base-path must not be /: downloads need their own path".into());
        }
        let header = |value: &str, what: &str| {
            http::HeaderValue::try_from(value).map_err(|_| format!("invalid {what}: {value:?}"))
        };
        let assets = AssetsConfig {
            mount,
            secure_link_secret,
            public_cache_control: header(&args.public_cache_control, "--public-cache-control")?,
            private_cache_control: header(&args.private_cache_control, "--private-cache-control")?,
        };
        let s3 = match &args.s3_bucket {
            None => None,
            Some(bucket) => {
                let part_size = u64::try_from(args.s3_part_size)
                    .ok()
                    .filter(|&size| size >= 5 << 20)
                    .ok_or("--s3-part-size must be at least 5 MiB (5242880)")?;
                // Every upload fills one whole part before sending it: a smaller budget could
                // never hold one.
                let max_buffer = u64::try_from(args.s3_max_buffer)
                    .ok()
                    .filter(|&bytes| bytes >= part_size)
                    .ok_or_else(|| {
                        format!(
                            "--s3-max-buffer ({}) must be at least --s3-part-size ({part_size}): \
every upload holds one whole part in memory before sending it",
                            args.s3_max_buffer
                        )
                    })?;
                Some(S3Config {
                    bucket: bucket.clone(),
                    endpoint: args.s3_endpoint.clone().filter(|e| !e.is_empty()),
                    region: args.s3_region.clone(),
                    access_key: args.s3_access_key.clone(),
                    secret_key: read_secret(
                        "S3 secret key",
                        args.s3_secret_key.as_deref(),
                        args.s3_secret_key_file.as_deref(),
                    )?,
                    use_ssl: args.s3_use_ssl && !args.s3_disable_ssl,
                    verify_ssl: args.s3_verify_ssl,
                    prefix: args.s3_object_prefix.clone(),
                    part_size,
                    create_bucket: args.s3_create_bucket,
                    max_buffer,
                    overwrite: args.overwrite,
                    single_instance: args.s3_single_instance,
                    payload_signing: args.s3_payload_signing,
                })
            }
        };
        let tcp_receive_buffer = usize::try_from(args.tcp_receive_buffer).map_err(
            |_| "--tcp-receive-buffer must be 0 (the kernel's autotuning) or a size in bytes",
        )?;
        if args.network_timeout.is_zero() {
            // Every connection would be closed before its first request could arrive.
            return Err("--network-timeout must be greater than 0".into());
        }
        let tls = crate::tls::TlsConfig::from_flags(
            args.tls_certificate.as_deref(),
            args.tls_key.as_deref(),
            args.tls_mode,
        )?;
        if tls.is_some() && args.enable_h2c {
            // tusd's rule: h2c is cleartext by definition.
            return Err(
                "--enable-h2c cannot be combined with --tls-certificate: over TLS, HTTP/2 is \
negotiated by ALPN"
                    .into(),
            );
        }
        let trimmed = args.base_path.trim_matches('/');
        let base_path = if trimmed.is_empty() {
            "/".to_owned()
        } else {
            format!("/{trimmed}/")
        };
        Ok(Config {
            listen,
            base_path,
            behind_proxy: args.behind_proxy,
            draft: args.enable_experimental_protocol,
            draft_104: args.draft_104,
            max_size: u64::try_from(args.max_size).ok().filter(|&m| m > 0),
            download: !args.disable_download,
            termination: !args.disable_termination,
            concatenation: !args.disable_concatenation,
            upload_expiry: Some(args.upload_expiry).filter(|d| !d.is_zero()),
            cors,
            upload_dir: args.upload_dir.clone(),
            assets_dir: args
                .assets_dir
                .clone()
                .unwrap_or_else(|| args.upload_dir.clone()),
            fsync: args.fsync,
            overwrite: args.overwrite,
            s3,
            tokens: UploadTokens::new(
                upload_secret,
                allow_without_token,
                Prefixes {
                    public: args.public_prefix.clone(),
                    private: args.private_prefix.clone(),
                },
            ),
            assets,
            network_timeout: args.network_timeout,
            acquire_lock_timeout: args.acquire_lock_timeout,
            shutdown_timeout: args.shutdown_timeout,
            max_connections: match args.max_connections {
                0 => crate::server::default_max_connections(crate::server::open_file_limit()),
                n => n,
            },
            tcp_receive_buffer: Some(tcp_receive_buffer).filter(|&n| n > 0),
            tls,
            metrics_path: args.expose_metrics.then(|| args.metrics_path.clone()),
            show_greeting: args.show_greeting,
            worker_threads: args.worker_threads.filter(|&n| n > 0),
            verbose: args.verbose,
            show_startup_logs: args.show_startup_logs,
            log_json: args.log_format == "json",
            hooks,
        })
    }
}

/// Secrets starting with this are the placeholders of `.env.example`.
pub const PLACEHOLDER_SECRET_PREFIX: &str = "change-me";

/// A secret from its flag/variable or from a file (trailing newline removed), not both.
pub fn read_secret(
    what: &str,
    value: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<Option<Secret>, String> {
    match (value.filter(|v| !v.is_empty()), file) {
        (Some(_), Some(_)) => Err(format!(
            "the {what} is given both directly and as a file; give one"
        )),
        (Some(value), None) => Ok(Some(Secret::new(value))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))?;
            let text = text.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                return Err(format!("the {what} file {} is empty", path.display()));
            }
            Ok(Some(Secret::new(text)))
        }
        (None, None) => Ok(None),
    }
}

/// tusd's Go-style flags, normalised for clap (see [`normalize_go_args`]).
#[derive(Debug, Parser)]
#[command(
    name = "tusgate",
    version,
    about = "tus 1.0 uploads, inline upload tokens, atomic finalize and secure_link downloads in one binary",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve(Box<ServeArgs>),
    /// Print signed upload commands and download URLs, as granite-assets builds them.
    #[command(subcommand)]
    Sign(SignCommand),
    /// Exit 0 if the server at the address answers GET /health with 200 (for container
    /// HEALTHCHECKs: the runtime image has no curl).
    Healthcheck {
        /// host:port of the server.
        #[arg(
            long,
            default_value = "127.0.0.1:8080",
            env = "TUSGATE_HEALTHCHECK_ADDR"
        )]
        addr: String,
        /// Speak TLS, for a server started with --tls-certificate (any certificate is accepted:
        /// this checks that the server answers, not who it is).
        #[arg(long, env = "TUSGATE_HEALTHCHECK_TLS", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set)]
        tls: bool,
    },
    /// Load generator: tus uploads (any tus server) and downloads, with throughput, latency
    /// percentiles, the server's CPU and peak RSS, and verification (see benches/README.md).
    // Listed here for `--help` only: the binary hands `tusgate bench …` to the tusgate-bench
    // crate before parsing (`tusgate bench --help` prints its flags).
    #[command(disable_help_flag = true)]
    Bench {
        /// The load generator's command line (see `tusgate bench --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SignCommand {
    /// A curl command creating a tokened upload (granite's build_upload_url).
    Upload(SignUploadArgs),
    /// A download URL, signed for private assets (granite's build_download_url).
    Download(SignDownloadArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SignUploadArgs {
    /// The asset key the upload publishes to.
    #[arg(long)]
    pub key: String,
    /// The Content-Type the token is signed for and the asset is served with.
    #[arg(long, default_value = "application/octet-stream")]
    pub content_type: String,
    /// Publish under the public or the private prefix.
    #[arg(long, default_value = "private", value_parser = ["public", "private"])]
    pub visibility: String,
    /// How long the token is valid (Go duration).
    #[arg(long, default_value = "1h", value_parser = parse_go_duration)]
    pub ttl: Duration,
    /// The tus endpoint (granite: `{tusd_url}/files/`).
    #[arg(long, default_value = "http://localhost:8080/files/")]
    pub endpoint: String,
    /// A file to send with the creation request.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The server's upload secret (granite-assets `upload_secret`) the token is signed with.
    #[arg(long, env = "UPLOAD_SECRET", hide_env_values = true)]
    pub upload_secret: Option<String>,
    /// File holding the upload secret (for Docker secrets).
    #[arg(long, env = "UPLOAD_SECRET_FILE")]
    pub upload_secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SignDownloadArgs {
    /// The asset key to download.
    #[arg(long)]
    pub key: String,
    /// Whether the asset is public (an unsigned URL) or private (signed).
    #[arg(long, default_value = "private", value_parser = ["public", "private"])]
    pub visibility: String,
    /// How long a private URL is valid (Go duration).
    #[arg(long, default_value = "1h", value_parser = parse_go_duration)]
    pub ttl: Duration,
    /// The public root of downloads (granite's `base_url`).
    #[arg(long, default_value = "http://localhost:8080/assets")]
    pub base_url: String,
    /// URL segment of public assets (the server's --public-prefix).
    #[arg(long, env = "TUSGATE_PUBLIC_PREFIX", default_value = "public")]
    pub public_prefix: String,
    /// URL segment of private assets (the server's --private-prefix).
    #[arg(long, env = "TUSGATE_PRIVATE_PREFIX", default_value = "private")]
    pub private_prefix: String,
    /// The server's secure_link secret (granite-assets `secure_link_secret`) private URLs are
    /// signed with.
    #[arg(long, env = "SECURE_LINK_SECRET", hide_env_values = true)]
    pub secure_link_secret: Option<String>,
    /// File holding the secure_link secret (for Docker secrets).
    #[arg(long, env = "SECURE_LINK_SECRET_FILE")]
    pub secure_link_secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    // --- Listening ---
    /// Host to bind the HTTP server to.
    #[arg(
        long,
        env = "TUSGATE_HOST",
        default_value = "0.0.0.0",
        help_heading = "Listening"
    )]
    pub host: String,
    /// Port to bind the HTTP server to (0 picks a free port).
    #[arg(
        long,
        env = "TUSGATE_PORT",
        default_value = "8080",
        help_heading = "Listening"
    )]
    pub port: u16,
    /// Listen on this UNIX socket instead of host and port.
    #[arg(long, env = "TUSGATE_UNIX_SOCK", help_heading = "Listening")]
    pub unix_sock: Option<PathBuf>,
    /// Base path of the tus endpoint.
    #[arg(
        long,
        env = "TUSGATE_BASE_PATH",
        default_value = "/files/",
        help_heading = "Listening"
    )]
    pub base_path: String,
    /// Respect X-Forwarded-Host/-Proto and Forwarded when building upload URLs.
    #[arg(long, env = "TUSGATE_BEHIND_PROXY", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "Listening")]
    pub behind_proxy: bool,
    /// Receive buffer (SO_RCVBUF) of accepted TCP connections in bytes; 0 leaves it to the
    /// kernel's autotuning. It bounds what the kernel queues for a connection tusgate is not
    /// reading (an S3 upload waiting for --s3-max-buffer; autotuned buffers can grow to
    /// net.ipv4.tcp_rmem's maximum each) and caps one connection's upload rate at about this
    /// much per round trip. The kernel doubles the value and caps it at net.core.rmem_max.
    #[arg(long, env = "TUSGATE_TCP_RECEIVE_BUFFER", default_value = "0", value_parser = parse_go_i64, help_heading = "Listening")]
    pub tcp_receive_buffer: i64,
    /// Accepted for tusd compatibility: cleartext HTTP/2 (h2c, prior knowledge) is always on
    /// without TLS. Refused together with --tls-certificate, as tusd does.
    #[arg(long, env = "TUSGATE_ENABLE_H2C", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "Listening")]
    pub enable_h2c: bool,

    // --- TLS ---
    /// PEM file with the TLS certificate, followed by any intermediate certificates. With
    /// --tls-key, tusgate serves HTTPS (HTTP/2 and HTTP/1.1 by ALPN) instead of plain HTTP.
    /// Both files are read again on SIGHUP; a pair that fails to load keeps the previous one.
    #[arg(long, env = "TUSGATE_TLS_CERTIFICATE", help_heading = "TLS")]
    pub tls_certificate: Option<PathBuf>,
    /// PEM file with the private key of --tls-certificate (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TUSGATE_TLS_KEY", help_heading = "TLS")]
    pub tls_key: Option<PathBuf>,
    /// TLS versions and cipher suites, as tusd: tls12 (TLS 1.2 with ECDHE AES-GCM and
    /// ChaCha20-Poly1305 suites, and TLS 1.3), tls12-strong (TLS 1.2 only, ECDHE AES-256-GCM
    /// only), tls13 (TLS 1.3 only).
    #[arg(long, env = "TUSGATE_TLS_MODE", default_value = "tls12", value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<crate::tls::TlsMode>()), help_heading = "TLS")]
    pub tls_mode: crate::tls::TlsMode,

    // --- Protocol ---
    /// Largest upload in bytes (0 = unlimited).
    #[arg(long, env = "TUSGATE_MAX_SIZE", default_value = "0", value_parser = parse_go_i64, allow_hyphen_values = true, help_heading = "Protocol")]
    pub max_size: i64,
    /// Answer GET on upload URLs with 405 instead of the upload's bytes.
    #[arg(long, env = "TUSGATE_DISABLE_DOWNLOAD", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "Protocol")]
    pub disable_download: bool,
    /// Disable the termination extension (DELETE).
    #[arg(long, env = "TUSGATE_DISABLE_TERMINATION", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "Protocol")]
    pub disable_termination: bool,
    /// Serve the IETF resumable upload draft (interop versions 9, 8, 6 and 5) beside tus 1.0
    /// on the same endpoint, chosen per request by Upload-Draft-Interop-Version. On by default
    /// (tusd's flag of the same name is off by default and speaks 3–6); =false answers draft
    /// requests as tus 1.0 requests.
    #[arg(long, env = "TUSGATE_ENABLE_EXPERIMENTAL_PROTOCOL", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", action = ArgAction::Set, help_heading = "Protocol")]
    pub enable_experimental_protocol: bool,
    /// Send `104 Upload Resumption Supported` with the upload URL to draft creations before
    /// reading their body (HTTP/1.1), so an interrupted first request can be resumed. Off by
    /// default: nginx and other proxies break on unknown 1xx responses (nginx 1.22 takes it as
    /// the final response and hangs the connection; nginx/nginx#1427);
    /// turn it on when clients reach tusgate directly or through a proxy that forwards them.
    #[arg(long = "draft-104", env = "TUSGATE_DRAFT_104", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "Protocol")]
    pub draft_104: bool,
    /// Disable the concatenation extension.
    #[arg(long, env = "TUSGATE_DISABLE_CONCATENATION", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "Protocol")]
    pub disable_concatenation: bool,
    /// How long an incomplete upload lives after its last byte arrived before the reaper
    /// removes it (Go duration; `0` = never). Sent to clients as Upload-Expires.
    #[arg(long, env = "TUSGATE_UPLOAD_EXPIRY", default_value = "168h", value_parser = parse_go_duration, help_heading = "Protocol")]
    pub upload_expiry: Duration,

    // --- CORS ---
    /// Turn CORS handling off entirely.
    #[arg(long, env = "TUSGATE_DISABLE_CORS", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "CORS")]
    pub disable_cors: bool,
    /// Regular expression an Origin must match (unanchored, like tusd).
    #[arg(
        long,
        env = "TUSGATE_CORS_ALLOW_ORIGIN",
        default_value = ".*",
        help_heading = "CORS"
    )]
    pub cors_allow_origin: String,
    /// Send Access-Control-Allow-Credentials: true.
    #[arg(long, env = "TUSGATE_CORS_ALLOW_CREDENTIALS", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "CORS")]
    pub cors_allow_credentials: bool,
    /// Methods appended to the default Access-Control-Allow-Methods.
    #[arg(
        long,
        env = "TUSGATE_CORS_ALLOW_METHODS",
        default_value = "",
        help_heading = "CORS"
    )]
    pub cors_allow_methods: String,
    /// Headers appended to the default Access-Control-Allow-Headers.
    #[arg(
        long,
        env = "TUSGATE_CORS_ALLOW_HEADERS",
        default_value = "",
        help_heading = "CORS"
    )]
    pub cors_allow_headers: String,
    /// Headers appended to the default Access-Control-Expose-Headers.
    #[arg(
        long,
        env = "TUSGATE_CORS_EXPOSE_HEADERS",
        default_value = "",
        help_heading = "CORS"
    )]
    pub cors_expose_headers: String,
    /// Access-Control-Max-Age of preflight responses.
    #[arg(
        long,
        env = "TUSGATE_CORS_MAX_AGE",
        default_value = "86400",
        help_heading = "CORS"
    )]
    pub cors_max_age: String,

    // --- Storage ---
    /// Directory of in-flight uploads (`<id>` + `<id>.info`, tusd's filestore layout).
    #[arg(
        long,
        env = "TUSGATE_UPLOAD_DIR",
        default_value = "./data",
        help_heading = "Storage"
    )]
    pub upload_dir: PathBuf,
    /// Root of published assets (`<visibility>/<key>`); defaults to the upload directory.
    #[arg(long, env = "TUSGATE_ASSETS_DIR", help_heading = "Storage")]
    pub assets_dir: Option<PathBuf>,
    /// What a publish does when `<visibility>/<key>` exists: replace (atomically) or keep.
    #[arg(
        long,
        env = "TUSGATE_OVERWRITE",
        value_enum,
        default_value = "replace",
        help_heading = "Storage"
    )]
    pub overwrite: Overwrite,
    /// When to fsync: never (tusd's behaviour), completion, always (every PATCH).
    #[arg(
        long,
        env = "TUSGATE_FSYNC",
        value_enum,
        default_value = "completion",
        help_heading = "Storage"
    )]
    pub fsync: FsyncPolicy,

    // --- S3 storage ---
    /// Store uploads and assets in this S3 bucket instead of on local disk.
    #[arg(long, env = "STORAGE_BUCKET", help_heading = "S3 storage")]
    pub s3_bucket: Option<String>,
    /// S3-compatible endpoint URL (SeaweedFS, MinIO, R2, B2, GCS…); unset = AWS.
    #[arg(long, env = "STORAGE_ENDPOINT_URL", help_heading = "S3 storage")]
    pub s3_endpoint: Option<String>,
    /// S3 access key id (required with a bucket; no instance-metadata lookups).
    #[arg(long, env = "STORAGE_ACCESS_KEY", help_heading = "S3 storage")]
    pub s3_access_key: Option<String>,
    /// S3 secret access key (or --s3-secret-key-file).
    #[arg(
        long,
        env = "STORAGE_SECRET_KEY",
        hide_env_values = true,
        help_heading = "S3 storage"
    )]
    pub s3_secret_key: Option<String>,
    /// File holding the S3 secret key (for Docker secrets).
    #[arg(long, env = "STORAGE_SECRET_KEY_FILE", help_heading = "S3 storage")]
    pub s3_secret_key_file: Option<PathBuf>,
    /// Region (`auto` for R2; B2 and MinIO need the endpoint's region).
    #[arg(
        long,
        env = "STORAGE_REGION",
        default_value = "us-east-1",
        help_heading = "S3 storage"
    )]
    pub s3_region: String,
    /// Use https for an endpoint given without a scheme.
    #[arg(long, env = "STORAGE_USE_SSL", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", action = ArgAction::Set, help_heading = "S3 storage")]
    pub s3_use_ssl: bool,
    /// tusd's spelling of `--s3-use-ssl=false`.
    #[arg(long, value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "S3 storage")]
    pub s3_disable_ssl: bool,
    /// Verify the endpoint's TLS certificate.
    #[arg(long, env = "STORAGE_VERIFY_SSL", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", action = ArgAction::Set, help_heading = "S3 storage")]
    pub s3_verify_ssl: bool,
    /// Prefix of every object key (state, tails, uploads and published assets).
    #[arg(
        long,
        env = "TUSGATE_S3_OBJECT_PREFIX",
        default_value = "",
        help_heading = "S3 storage"
    )]
    pub s3_object_prefix: String,
    /// Size of every multipart part in bytes (at least 5 MiB; fixed per upload).
    #[arg(long, env = "TUSGATE_S3_PART_SIZE", default_value = "8388608", value_parser = parse_go_i64, help_heading = "S3 storage")]
    pub s3_part_size: i64,
    /// Most bytes of upload parts held in memory by all uploads together (default 256 MiB; at
    /// least --s3-part-size). An upload that finds it spent stops reading its request body
    /// until other uploads' parts have reached S3, so clients slow down instead of memory
    /// growing.
    #[arg(long, env = "TUSGATE_S3_MAX_BUFFER", default_value = "268435456", value_parser = parse_go_i64, help_heading = "S3 storage")]
    pub s3_max_buffer: i64,
    /// Create the bucket at startup if it does not exist.
    #[arg(long, env = "STORAGE_CREATE_BUCKET", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "S3 storage")]
    pub s3_create_bucket: bool,
    /// Only this instance uses the bucket. For buckets without conditional writes (Backblaze
    /// B2), which tusgate otherwise refuses because instances sharing them cannot be fenced.
    #[arg(long, env = "TUSGATE_S3_SINGLE_INSTANCE", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "S3 storage")]
    pub s3_single_instance: bool,
    /// Whether S3 request signatures cover the body (x-amz-content-sha256): `auto` signs over
    /// plain http, where the signature is the only check that the bytes reach the store
    /// unchanged (if the store checks it: AWS S3 and MinIO do; SeaweedFS 4.48 and moto do not), and
    /// not over https, where TLS protects them (AWS's SDKs do the same). Signing costs a
    /// SHA-256 of every part.
    #[arg(
        long,
        env = "TUSGATE_S3_PAYLOAD_SIGNING",
        value_enum,
        default_value = "auto",
        help_heading = "S3 storage"
    )]
    pub s3_payload_signing: PayloadSigning,

    // --- Upload tokens ---
    /// HMAC-SHA256 secret of upload tokens (granite-assets `upload_secret`).
    #[arg(
        long,
        env = "UPLOAD_SECRET",
        hide_env_values = true,
        help_heading = "Upload tokens"
    )]
    pub upload_secret: Option<String>,
    /// File holding the upload secret (for Docker secrets).
    #[arg(long, env = "UPLOAD_SECRET_FILE", help_heading = "Upload tokens")]
    pub upload_secret_file: Option<PathBuf>,
    /// Directory (and URL segment) of public assets.
    #[arg(
        long,
        env = "TUSGATE_PUBLIC_PREFIX",
        default_value = "public",
        help_heading = "Upload tokens"
    )]
    pub public_prefix: String,
    /// Directory (and URL segment) of private assets.
    #[arg(
        long,
        env = "TUSGATE_PRIVATE_PREFIX",
        default_value = "private",
        help_heading = "Upload tokens"
    )]
    pub private_prefix: String,
    // --- Downloads ---
    /// URL path under which published assets are served (granite-assets `base_url`'s path).
    #[arg(
        long,
        env = "TUSGATE_ASSETS_BASE_PATH",
        default_value = "/assets",
        help_heading = "Downloads"
    )]
    pub assets_base_path: String,
    /// Secret of nginx-style `secure_link` download tokens (granite-assets `secure_link_secret`).
    #[arg(
        long,
        env = "SECURE_LINK_SECRET",
        hide_env_values = true,
        help_heading = "Downloads"
    )]
    pub secure_link_secret: Option<String>,
    /// File holding the secure_link secret (for Docker secrets).
    #[arg(long, env = "SECURE_LINK_SECRET_FILE", help_heading = "Downloads")]
    pub secure_link_secret_file: Option<PathBuf>,
    /// Cache-Control of public downloads.
    #[arg(
        long,
        env = "TUSGATE_PUBLIC_CACHE_CONTROL",
        default_value = "public, max-age=86400, immutable",
        help_heading = "Downloads"
    )]
    pub public_cache_control: String,
    /// Cache-Control of private downloads.
    #[arg(
        long,
        env = "TUSGATE_PRIVATE_CACHE_CONTROL",
        default_value = "private, no-store",
        help_heading = "Downloads"
    )]
    pub private_cache_control: String,

    /// Threads serving requests (default: one per CPU core).
    #[arg(long, env = "TUSGATE_WORKER_THREADS", help_heading = "Operations")]
    pub worker_threads: Option<usize>,
    /// Development mode: allows the placeholder secrets of `.env.example`.
    #[arg(long, env = "TUSGATE_DEV", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "Operations")]
    pub dev: bool,

    /// Accept uploads without an upload token, as plain tusd does. Without this, a secret is required.
    #[arg(long, env = "TUSGATE_ALLOW_UPLOADS_WITHOUT_TOKEN", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "Upload tokens")]
    pub allow_uploads_without_token: bool,

    // --- Hooks ---
    /// Directory of hook executables, one per event, named after it (pre-create,
    /// post-finish, …): tusd's file hooks. Takes precedence over --hooks-http.
    #[arg(long, env = "TUSGATE_HOOKS_DIR", help_heading = "Hooks")]
    pub hooks_dir: Option<PathBuf>,
    /// Kill a file hook (and its children) that runs longer than this (Go duration; tusgate
    /// only: tusd waits forever). Blocking hooks hold the client's request and the upload
    /// while they run.
    #[arg(long, env = "TUSGATE_HOOKS_DIR_TIMEOUT", default_value = "60s", value_parser = parse_go_duration, help_heading = "Hooks")]
    pub hooks_dir_timeout: Duration,
    /// URL (http or https) that every hook event is POSTed to as JSON, as tusd's HTTP hooks.
    #[arg(long, env = "TUSGATE_HOOKS_HTTP", help_heading = "Hooks")]
    pub hooks_http: Option<String>,
    /// Comma-separated names of client request headers sent along to the hook endpoint.
    #[arg(
        long,
        env = "TUSGATE_HOOKS_HTTP_FORWARD_HEADERS",
        default_value = "",
        help_heading = "Hooks"
    )]
    pub hooks_http_forward_headers: String,
    /// Attempts per HTTP hook call (tusd's name says retries, but it counts attempts); a
    /// network error or a 5xx answer is tried again.
    #[arg(long, env = "TUSGATE_HOOKS_HTTP_RETRY", default_value = "3", value_parser = parse_go_i64, allow_hyphen_values = true, help_heading = "Hooks")]
    pub hooks_http_retry: i64,
    /// Wait between attempts of an HTTP hook call (Go duration).
    #[arg(long, env = "TUSGATE_HOOKS_HTTP_BACKOFF", default_value = "1s", value_parser = parse_go_duration, help_heading = "Hooks")]
    pub hooks_http_backoff: Duration,
    /// Time limit of one HTTP hook call, all attempts and waits included (Go duration).
    #[arg(long, env = "TUSGATE_HOOKS_HTTP_TIMEOUT", default_value = "15s", value_parser = parse_go_duration, help_heading = "Hooks")]
    pub hooks_http_timeout: Duration,
    /// Largest HTTP hook response body in bytes; a larger one fails the call.
    #[arg(long, env = "TUSGATE_HOOKS_HTTP_SIZE_LIMIT", default_value = "5120", value_parser = parse_go_i64, allow_hyphen_values = true, help_heading = "Hooks")]
    pub hooks_http_size_limit: i64,
    /// Do not verify the TLS certificate of an https hook endpoint.
    #[arg(long, env = "TUSGATE_HOOKS_HTTP_SKIP_VERIFY", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, help_heading = "Hooks")]
    pub hooks_http_skip_verify: bool,
    /// Comma-separated hook events to send; empty enables all seven (pre-create,
    /// post-create, post-receive, pre-terminate, post-terminate, post-finish, pre-finish).
    #[arg(
        long,
        env = "TUSGATE_HOOKS_ENABLED_EVENTS",
        default_value = "pre-create,post-create,post-receive,post-terminate,post-finish",
        help_heading = "Hooks"
    )]
    pub hooks_enabled_events: String,
    /// Interval of post-receive hooks during a PATCH, sent while the offset moves (Go
    /// duration; 0 means 1s, as in tusd).
    #[arg(long, env = "TUSGATE_PROGRESS_HOOKS_INTERVAL", default_value = "1s", value_parser = parse_go_duration, help_heading = "Hooks")]
    pub progress_hooks_interval: Duration,

    // --- Timeouts ---
    /// A request body that sends nothing for this long is considered dead. A connection is
    /// closed after this long without a request, or when its client reads nothing for this long.
    #[arg(long, env = "TUSGATE_NETWORK_TIMEOUT", default_value = "60s", value_parser = parse_go_duration, help_heading = "Timeouts")]
    pub network_timeout: Duration,
    /// How long a request waits for an upload's lock (after asking the holder to release).
    #[arg(long, env = "TUSGATE_ACQUIRE_LOCK_TIMEOUT", default_value = "20s", value_parser = parse_go_duration, help_heading = "Timeouts")]
    pub acquire_lock_timeout: Duration,
    /// How long shutdown waits for in-flight requests before exiting.
    #[arg(long, env = "TUSGATE_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_go_duration, help_heading = "Timeouts")]
    pub shutdown_timeout: Duration,
    /// Most connections open at once; more clients wait in the listen backlog until one closes.
    /// 0: derived from the open-file limit as (limit - 64) / 2, leaving room for the file each
    /// HTTP/1.1 request opens (an HTTP/2 connection can hold up to 64 while its streams make
    /// progress; see README).
    #[arg(
        long,
        env = "TUSGATE_MAX_CONNECTIONS",
        default_value = "0",
        help_heading = "Operations"
    )]
    pub max_connections: usize,

    // --- Operations ---
    /// Serve Prometheus metrics.
    #[arg(long, env = "TUSGATE_EXPOSE_METRICS", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", action = ArgAction::Set, help_heading = "Operations")]
    pub expose_metrics: bool,
    /// Path of the metrics endpoint.
    #[arg(
        long,
        env = "TUSGATE_METRICS_PATH",
        default_value = "/metrics",
        help_heading = "Operations"
    )]
    pub metrics_path: String,
    /// Answer GET / with a greeting.
    #[arg(long, env = "TUSGATE_SHOW_GREETING", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", action = ArgAction::Set, help_heading = "Operations")]
    pub show_greeting: bool,
    /// Log every request.
    #[arg(long, env = "TUSGATE_VERBOSE", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", action = ArgAction::Set, help_heading = "Operations")]
    pub verbose: bool,
    /// Print the startup lines (including `You can now upload files to: …`).
    #[arg(long, env = "TUSGATE_SHOW_STARTUP_LOGS", value_parser = parse_go_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", action = ArgAction::Set, help_heading = "Operations")]
    pub show_startup_logs: bool,
    /// Log format: text or json.
    #[arg(long, env = "TUSGATE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"], help_heading = "Operations")]
    pub log_format: String,
}

/// How a tusd flag that tusgate does not implement is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unsupported {
    /// Accepted; a warning says what replaces it.
    Warn(&'static str),
    /// Refused at startup: running without it would silently do something else than asked.
    #[allow(
        dead_code,
        reason = "no tusd flag is refused today; kept for one that would change behaviour silently"
    )]
    Refuse(&'static str),
}

/// tusd v2.10 flags with no tusgate equivalent: (name, takes a value, treatment).
const TUSD_ONLY_FLAGS: &[(&str, bool, Unsupported)] = {
    use Unsupported::Warn;
    const HOOKS: Unsupported = Warn(
        "gRPC and plugin hooks are not supported; use -hooks-http or -hooks-dir (tusd's HTTP and file hooks)",
    );
    const PPROF: Unsupported = Warn("no pprof endpoint; use /metrics and `perf` for profiling");
    const LOCKER: Unsupported =
        Warn("upload locks are in-process and hand over immediately; no lock files are polled");
    const S3_PARTS: Unsupported = Warn(
        "S3 parts have one fixed size per upload (--s3-part-size), two are in flight per PATCH, \
and --s3-max-buffer bounds their memory",
    );
    const OTHER_CLOUDS: Unsupported =
        Warn("GCS and Azure stores are not built in; GCS works through its S3-compatible endpoint");
    &[
        ("filelock-holder-poll-interval", true, LOCKER),
        ("filelock-acquirer-poll-interval", true, LOCKER),
        (
            "dir-perms",
            true,
            Warn("directories are created with the process umask"),
        ),
        (
            "file-perms",
            true,
            Warn("files are created with the process umask"),
        ),
        (
            "request-completion-timeout",
            true,
            Warn("storage work finishes before the response is sent"),
        ),
        ("expose-pprof", false, PPROF),
        ("pprof-path", true, PPROF),
        ("pprof-block-profile-rate", true, PPROF),
        ("pprof-mutex-profile-rate", true, PPROF),
        ("hooks-grpc", true, HOOKS),
        ("hooks-grpc-retry", true, HOOKS),
        ("hooks-grpc-backoff", true, HOOKS),
        ("hooks-grpc-secure", false, HOOKS),
        ("hooks-grpc-server-tls-certificate", true, HOOKS),
        ("hooks-grpc-client-tls-certificate", true, HOOKS),
        ("hooks-grpc-client-tls-key", true, HOOKS),
        ("hooks-grpc-forward-headers", true, HOOKS),
        ("hooks-plugin", true, HOOKS),
        ("gcs-bucket", true, OTHER_CLOUDS),
        ("gcs-object-prefix", true, OTHER_CLOUDS),
        ("gcs-endpoint", true, OTHER_CLOUDS),
        ("azure-storage", true, OTHER_CLOUDS),
        ("azure-container-access-type", true, OTHER_CLOUDS),
        ("azure-blob-access-tier", true, OTHER_CLOUDS),
        ("azure-object-prefix", true, OTHER_CLOUDS),
        ("azure-endpoint", true, OTHER_CLOUDS),
        ("s3-min-part-size", true, S3_PARTS),
        ("s3-max-buffered-parts", true, S3_PARTS),
        ("s3-concurrent-part-uploads", true, S3_PARTS),
        (
            "s3-disable-content-hashes",
            false,
            Warn("payloads are never MD5-hashed; SigV4 signs them"),
        ),
        (
            "s3-transfer-acceleration",
            false,
            Warn("use an accelerated endpoint URL as --s3-endpoint"),
        ),
        (
            "s3-log-api-calls",
            false,
            Warn("set TUSGATE_LOG=object_store=debug"),
        ),
    ]
};

/// The outcome of rewriting a tusd-style command line for clap.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NormalizedArgs {
    pub args: Vec<String>,
    /// One line per accepted-but-ignored tusd flag.
    pub warnings: Vec<String>,
    /// Flags that cannot be honoured; starting must fail.
    pub refused: Vec<String>,
}

/// Rewrites Go `flag` syntax into clap's: `-name…` becomes `--name…`, and the tusd-only flags
/// of [`TUSD_ONLY_FLAGS`] are removed (with their values) and reported. Single-letter flags
/// (`-h`, `-V`) and everything after `--` are left alone.
pub fn normalize_go_args(raw: impl IntoIterator<Item = String>) -> NormalizedArgs {
    let mut out = NormalizedArgs::default();
    let mut raw = raw.into_iter();
    out.args.extend(raw.next()); // the program name
    while let Some(arg) = raw.next() {
        if arg == "--" {
            out.args.push(arg);
            out.args.extend(raw.by_ref());
            break;
        }
        let long = match arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) {
            Some(rest) if rest.len() > 1 && !rest.starts_with('-') => rest,
            _ => {
                out.args.push(arg);
                continue;
            }
        };
        let (name, inline_value) = match long.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (long, None),
        };
        match TUSD_ONLY_FLAGS.iter().find(|(flag, _, _)| *flag == name) {
            Some((flag, takes_value, treatment)) => {
                if *takes_value && inline_value.is_none() {
                    raw.next();
                }
                match treatment {
                    Unsupported::Warn(why) => {
                        out.warnings.push(format!("-{flag} is ignored: {why}"))
                    }
                    Unsupported::Refuse(why) => out.refused.push(format!("-{flag}: {why}")),
                }
            }
            None => out.args.push(format!("--{long}")),
        }
    }
    out
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean {s:?} (use true or false)")),
    }
}

fn parse_go_i64(s: &str) -> Result<i64, String> {
    crate::tus::headers::parse_go_int(s).ok_or_else(|| format!("invalid integer {s:?}"))
}

/// Go's `time.ParseDuration` (`300ms`, `1.5h`, `2h45m`, `0`), plus `d` for days since upload
/// lifetimes are counted in days. Negative durations are refused.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {s:?} (examples: 500ms, 60s, 1m30s, 24h)");
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(invalid()),
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalize(args: &[&str]) -> NormalizedArgs {
        normalize_go_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn go_flags_become_clap_flags() {
        let out = normalize(&[
            "tusgate",
            "-port=8080",
            "-upload-dir",
            "/data",
            "--behind-proxy",
            "-h",
        ]);
        assert_eq!(
            out.args,
            [
                "tusgate",
                "--port=8080",
                "--upload-dir",
                "/data",
                "--behind-proxy",
                "-h"
            ]
        );
        assert!(out.warnings.is_empty() && out.refused.is_empty());
    }

    #[test]
    fn tusd_only_flags_are_dropped_with_their_values() {
        let out = normalize(&[
            "tusd",
            "-hooks-grpc",
            "app:9000",
            "-hooks-grpc-secure",
            "-port",
            "1",
            "-filelock-holder-poll-interval=1s",
        ]);
        assert_eq!(out.args, ["tusd", "--port", "1"]);
        assert_eq!(out.warnings.len(), 3);
        assert!(out.warnings[0].starts_with("-hooks-grpc is ignored: gRPC and plugin hooks"));
        assert!(out.refused.is_empty());
        let s3 = normalize(&["tusd", "-s3-bucket=b", "-s3-min-part-size=1"]);
        assert_eq!(s3.args, ["tusd", "--s3-bucket=b"]);
        assert_eq!(s3.warnings.len(), 1);
    }

    #[test]
    fn a_full_tusd_command_line_parses() {
        let out = normalize(&[
            "tusd",
            "-host=127.0.0.1",
            "-port=0",
            "-upload-dir=/data",
            "-behind-proxy",
            "-max-size=100",
            "-network-timeout=5s",
            "-cors-allow-origin",
            "^https://a$",
            "-disable-download=false",
            "-verbose=false",
            "-log-format=json",
            "-allow-uploads-without-token",
        ]);
        let cli = Cli::try_parse_from(out.args).expect("parses");
        assert!(cli.serve.behind_proxy);
        assert!(!cli.serve.disable_download);
        assert!(!cli.serve.verbose);
        assert_eq!(cli.serve.port, 0);
        assert_eq!(cli.serve.max_size, 100);
        assert_eq!(cli.serve.network_timeout, Duration::from_secs(5));
    }

    #[test]
    fn tusds_tls_flags_are_options() {
        let out = normalize(&[
            "tusd",
            "-tls-certificate",
            "/nonexistent/c.pem",
            "-tls-key=/nonexistent/k.pem",
            "-tls-mode",
            "tls13",
            "-allow-uploads-without-token",
        ]);
        assert!(out.warnings.is_empty() && out.refused.is_empty());
        let cli = Cli::try_parse_from(out.args).expect("parses");
        assert_eq!(cli.serve.tls_mode, crate::tls::TlsMode::Tls13);
        let error = Config::from_args(&cli.serve).expect_err("no such file");
        assert!(
            error.starts_with("cannot read the TLS certificate file /nonexistent/c.pem"),
            "{error}"
        );
        let default =
            Cli::try_parse_from(["tusd", "--allow-uploads-without-token"]).expect("parses");
        assert_eq!(default.serve.tls_mode, crate::tls::TlsMode::Tls12);
        assert!(
            Config::from_args(&default.serve)
                .expect("valid")
                .tls
                .is_none()
        );
        assert!(Cli::try_parse_from(["tusd", "--tls-mode", "tls11"]).is_err());
    }

    #[test]
    fn a_pre_create_hook_lets_a_tusd_command_line_start_without_a_secret() {
        let config = |args: &[&str]| {
            let cli = Cli::try_parse_from(normalize(args).args).expect("parses");
            Config::from_args(&cli.serve)
        };
        let hooked = config(&["tusd", "-hooks-http", "http://127.0.0.1:9/hooks"]).expect("starts");
        assert!(
            hooked
                .tokens
                .check_creation(&crate::upload::Metadata::new())
                .is_ok()
        );
        // Without pre-create no hook decides: tokens are required as before.
        let error = config(&[
            "tusd",
            "-hooks-http",
            "http://127.0.0.1:9/hooks",
            "-hooks-enabled-events=post-finish",
        ])
        .expect_err("refused");
        assert!(error.starts_with("no upload secret configured"), "{error}");
        assert!(config(&["tusd"]).is_err());
    }

    #[test]
    fn a_zero_network_timeout_is_refused() {
        let out = normalize(&["tusd", "-network-timeout=0", "-allow-uploads-without-token"]);
        let cli = Cli::try_parse_from(out.args).expect("parses");
        let error = Config::from_args(&cli.serve).expect_err("refused");
        assert!(error.contains("--network-timeout"), "{error}");
    }

    #[test]
    fn the_s3_buffer_must_hold_a_part() {
        let serve = |extra: &[&str]| {
            let mut args = vec!["tusd", "-allow-uploads-without-token", "-s3-bucket=b"];
            args.extend_from_slice(extra);
            let cli = Cli::try_parse_from(normalize(&args).args).expect("parses");
            Config::from_args(&cli.serve).map(|c| c.s3.expect("s3"))
        };
        let default = serve(&[]).expect("defaults are valid");
        assert_eq!(
            (default.max_buffer, default.part_size),
            (256 << 20, 8 << 20)
        );
        let tight = serve(&["-s3-part-size=6291456", "-s3-max-buffer=6291456"]).expect("one part");
        assert_eq!(tight.max_buffer, 6 << 20);
        let error = serve(&["-s3-max-buffer=8388607"]).expect_err("below one part");
        assert!(error.contains("--s3-max-buffer (8388607)"), "{error}");
        assert!(serve(&["-s3-max-buffer=-1"]).is_err());
    }

    #[test]
    fn s3_payloads_are_signed_over_plain_http_only_by_default() {
        let signing = |extra: &[&str]| {
            let mut args = vec!["tusd", "-allow-uploads-without-token", "-s3-bucket=b"];
            args.extend_from_slice(extra);
            let cli = Cli::try_parse_from(normalize(&args).args).expect("parses");
            let s3 = Config::from_args(&cli.serve)
                .expect("valid")
                .s3
                .expect("s3");
            s3.payload_signing
        };
        assert_eq!(signing(&[]), PayloadSigning::Auto);
        assert!(PayloadSigning::Auto.signs(false) && !PayloadSigning::Auto.signs(true));
        assert_eq!(signing(&["--s3-payload-signing=off"]), PayloadSigning::Off);
        assert!(!PayloadSigning::Off.signs(false));
        assert_eq!(signing(&["--s3-payload-signing", "on"]), PayloadSigning::On);
        assert!(PayloadSigning::On.signs(true));
    }

    #[test]
    fn the_tcp_receive_buffer_is_optional() {
        let config = |extra: &[&str]| {
            let mut args = vec!["tusd", "-allow-uploads-without-token"];
            args.extend_from_slice(extra);
            let cli = Cli::try_parse_from(normalize(&args).args).expect("parses");
            Config::from_args(&cli.serve).map(|c| c.tcp_receive_buffer)
        };
        assert_eq!(config(&[]), Ok(None), "autotuning by default");
        assert_eq!(config(&["-tcp-receive-buffer=262144"]), Ok(Some(262144)));
        assert!(config(&["-tcp-receive-buffer=-1"]).is_err());
    }

    fn hooks(extra: &[&str]) -> Result<HooksConfig, String> {
        let mut args = vec!["tusd", "-allow-uploads-without-token"];
        args.extend_from_slice(extra);
        let out = normalize(&args);
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        let cli = Cli::try_parse_from(out.args).expect("parses");
        Config::from_args(&cli.serve).map(|c| c.hooks)
    }

    #[test]
    fn hooks_default_to_tusds_settings() {
        use crate::hooks::HookType::*;
        let none = hooks(&[]).expect("valid");
        assert_eq!(none.backend, None);
        assert_eq!(
            none.enabled,
            [
                PreCreate,
                PostCreate,
                PostReceive,
                PostTerminate,
                PostFinish
            ]
        );
        assert_eq!(none.progress_interval, Duration::from_secs(1));
        let http = hooks(&["-hooks-http", "http://127.0.0.1:8000/hooks"]).expect("valid");
        assert_eq!(
            http.backend,
            Some(HookBackendConfig::Http {
                url: "http://127.0.0.1:8000/hooks".into(),
                attempts: 3,
                backoff: Duration::from_secs(1),
                forward_headers: Vec::new(),
                timeout: Duration::from_secs(15),
                size_limit: 5120,
                skip_verify: false,
            })
        );
        let all = hooks(&[
            "-hooks-http=https://app/h",
            "-hooks-enabled-events=",
            "-hooks-http-retry=0",
            "-hooks-http-backoff=250ms",
            "-hooks-http-forward-headers=Authorization, X-Request-Id",
            "-hooks-http-timeout=2s",
            "-hooks-http-size-limit=0",
            "-hooks-http-skip-verify",
            "-progress-hooks-interval=0",
        ])
        .expect("valid");
        assert_eq!(all.enabled.len(), 7, "empty enables every event");
        assert_eq!(all.progress_interval, Duration::from_secs(1), "0 means 1s");
        let Some(HookBackendConfig::Http {
            attempts,
            backoff,
            forward_headers,
            timeout,
            size_limit,
            skip_verify,
            ..
        }) = all.backend
        else {
            panic!("http backend");
        };
        assert_eq!(attempts, 1, "0 attempts means 1");
        assert_eq!(backoff, Duration::from_millis(250));
        assert_eq!(forward_headers, ["Authorization", "X-Request-Id"]);
        assert_eq!(
            (timeout, size_limit, skip_verify),
            (Duration::from_secs(2), 0, true)
        );
    }

    #[test]
    fn the_hooks_dir_wins_over_http_and_is_made_absolute() {
        let config = hooks(&[
            "-hooks-dir=rel/hooks",
            "-hooks-http=http://x/",
            "-hooks-enabled-events=pre-finish, post-finish,pre-finish",
        ])
        .expect("valid");
        let Some(HookBackendConfig::File { dir, timeout }) = config.backend else {
            panic!("file backend");
        };
        assert!(dir.is_absolute() && dir.ends_with("rel/hooks"));
        assert_eq!(timeout, Duration::from_secs(60));
        assert_eq!(config.notes.len(), 1);
        assert!(config.notes[0].contains("--hooks-dir takes precedence"));
        use crate::hooks::HookType::*;
        assert_eq!(config.enabled, [PreFinish, PostFinish]);
    }

    #[test]
    fn bad_hook_settings_stop_startup_with_a_reason() {
        for (args, expected) in [
            (
                &["-hooks-enabled-events=pre-create,post-upload"][..],
                "unknown hook event \"post-upload\"",
            ),
            (
                &["-hooks-enabled-events=pre-create,,post-finish"][..],
                "unknown hook event \"\"",
            ),
            (
                &["-hooks-http=localhost:8000"][..],
                "must be an http:// or https:// URL",
            ),
            (
                &["-hooks-http=http://x/", "-hooks-http-timeout=0"][..],
                "--hooks-http-timeout",
            ),
            (
                &["-hooks-http=http://x/", "-hooks-http-size-limit=-1"][..],
                "--hooks-http-size-limit",
            ),
            (
                &["-hooks-http=http://x/", "-hooks-http-forward-headers=a b"][..],
                "not a header name",
            ),
            (
                &["-hooks-dir=/h", "-hooks-dir-timeout=0"][..],
                "--hooks-dir-timeout",
            ),
        ] {
            let error = hooks(args).expect_err("refused");
            assert!(error.contains(expected), "{args:?}: {error}");
        }
        // gRPC and plugin hooks stay accepted with a warning.
        let out = normalize(&["tusd", "-hooks-grpc=x:1", "-hooks-plugin", "p.so"]);
        assert_eq!(out.warnings.len(), 2);
        assert!(out.refused.is_empty());
    }

    /// Every argument and subcommand of every command shows a description in `--help` (and so
    /// in docs/configuration.md): a clap field without a doc comment shows none.
    #[test]
    fn every_argument_has_a_help_text() {
        use clap::CommandFactory;
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                if !arg.is_hide_set() && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path}: --{}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{path} {} (the subcommand)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut command = Cli::command();
        command.build();
        let mut missing = Vec::new();
        walk(&command, "tusgate", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without a help text (add a doc comment):\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        for bad in ["", "5", "s", "-1s", "1x", "1.2.3s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn go_bools() {
        assert_eq!(parse_go_bool("T"), Ok(true));
        assert_eq!(parse_go_bool("0"), Ok(false));
        assert!(parse_go_bool("yes").is_err());
    }
}
