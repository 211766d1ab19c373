//! The application: shared state, and the top-level routing of every request.
//!
//! [`Route::parse`] is a pure function from path to a typed route; [`App::handle`] serves it.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body as HttpBody;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::hooks::Hooks;
use crate::metrics::Metrics;
use crate::response::{self, Body};
use crate::storage::Store;
use crate::tus;
use crate::upload::lock::LockTable;

/// Everything a request handler can reach.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub locks: Arc<LockTable>,
    pub metrics: Metrics,
    /// Cancelled when the server starts shutting down: bodies being read stop and answer 503.
    pub shutdown: CancellationToken,
    /// Work that must finish even if the request that started it is dropped (a client that
    /// disconnects after its last byte still gets its upload published); shutdown waits for it.
    pub tasks: TaskTracker,
    /// Complete uploads whose publish failed (disk full, store down): the janitor retries them.
    pub unpublished: crate::janitor::Pending,
    /// tusd's hooks, fired by the upload lifecycle.
    pub hooks: Hooks,
}

/// Where a request goes, decided from its path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// The tus endpoint; `rest` is the raw path after the base path (`""` = the collection).
    Tus {
        rest: &'a str,
    },
    /// A download; `path` is the nginx-normalised path (it includes the mount).
    Assets {
        path: Vec<u8>,
    },
    Metrics,
    Health,
    Greeting,
    /// The path cannot be decoded (nginx answers 400).
    BadRequest,
    NotFound,
}

impl<'a> Route<'a> {
    /// Tus paths are matched raw, as tusd does; everything else on the nginx-normalised path,
    /// as nginx chooses its locations.
    pub fn parse(path: &'a str, config: &Config) -> Route<'a> {
        if config.metrics_path.as_deref() == Some(path) {
            return Route::Metrics;
        }
        if path == "/health" {
            return Route::Health;
        }
        let base = config.base_path.as_str();
        let mount = config.assets.mount.as_str();
        if base != "/" {
            if let Some(rest) = path.strip_prefix(base) {
                return Route::Tus { rest };
            }
            if path == base.trim_end_matches('/') {
                return Route::Tus { rest: "" };
            }
        }
        let Ok(normalized) = crate::download::uri::normalize(path.as_bytes()) else {
            return Route::BadRequest;
        };
        if normalized
            .strip_prefix(mount.as_bytes())
            .is_some_and(|rest| rest.starts_with(b"/"))
        {
            return Route::Assets { path: normalized };
        }
        if base == "/" {
            return Route::Tus { rest: &path[1..] };
        }
        match normalized.as_slice() {
            b"/" if config.show_greeting => Route::Greeting,
            b"/health" => Route::Health,
            _ => Route::NotFound,
        }
    }
}

impl App {
    /// Fails only if the hook backend cannot be set up.
    pub fn new(config: Config, store: Arc<dyn Store>) -> Result<Self, String> {
        let locks = LockTable::new(config.acquire_lock_timeout);
        let metrics = Metrics::new();
        let tasks = TaskTracker::new();
        let hooks = Hooks::new(&config.hooks, &metrics, tasks.clone())?;
        Ok(App {
            config,
            store,
            locks,
            metrics,
            shutdown: CancellationToken::new(),
            tasks,
            unpublished: crate::janitor::Pending::default(),
            hooks,
        })
    }

    /// Serves one request. Takes the `Arc` because some work outlives the request (see
    /// [`App::tasks`]).
    pub async fn handle<B>(self: &Arc<Self>, request: Request<B>) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let method = request.method().clone();
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|id| id.chars().take(36).collect::<String>());
        // The path only: queries may carry download tokens.
        let path = request.uri().path().to_owned();
        let route = Route::parse(&path, &self.config);
        let response = match route {
            // TRACE echoes requests back; nginx refuses it everywhere, and tus never uses it.
            _ if method == Method::TRACE && !matches!(route, Route::Tus { .. }) => {
                let mut response =
                    response::text(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed\n");
                response.headers_mut().insert(
                    http::header::ALLOW,
                    http::HeaderValue::from_static("GET, HEAD"),
                );
                response
            }
            Route::Tus { rest } => tus::handle(self, request, rest).await,
            Route::Assets { path } => {
                let query = request.uri().query().map(str::as_bytes);
                crate::download::handle(self, &method, request.headers(), &path, query).await
            }
            Route::BadRequest => response::text(StatusCode::BAD_REQUEST, "400 Bad Request\n"),
            Route::Metrics => {
                let mut response = response::text(StatusCode::OK, self.metrics.render());
                response::set_header(
                    &mut response,
                    http::header::CONTENT_TYPE,
                    prometheus::TEXT_FORMAT,
                );
                response
            }
            Route::Health => health(&method),
            Route::Greeting => response::text(StatusCode::OK, greeting(&self.config)),
            Route::NotFound => response::text(StatusCode::NOT_FOUND, "404 page not found\n"),
        };
        let elapsed = started.elapsed();
        self.metrics
            .request_duration
            .with_label_values(&[metric_method(&method)])
            .observe(elapsed.as_secs_f64());
        if self.config.verbose && path != "/health" {
            // An absent X-Request-ID leaves the field out (an `Option` records nothing).
            tracing::info!(
                request_id = request_id.as_deref(),
                %method,
                %path,
                status = response.status().as_u16(),
                ms = log_millis(elapsed),
                "request"
            );
        }
        response
    }
}

/// A duration for the request log: milliseconds in whole microseconds (`ms=0.412`,
/// `ms=1530.2`). Cutting the number, not formatting it, keeps it a number in JSON logs; the
/// double nearest to a whole number of microseconds / 1000 prints with at most three decimals.
fn log_millis(elapsed: std::time::Duration) -> f64 {
    elapsed.as_micros() as f64 / 1000.0
}

/// `/health`: 200 `OK\n` with a single `Content-Type: text/plain` (nginx's template sends two).
fn health(method: &Method) -> Response<Body> {
    let mut response = response::text(StatusCode::OK, "OK\n");
    let text_plain = http::HeaderValue::from_static("text/plain");
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, text_plain);
    if *method == Method::HEAD {
        response::strip_body(response)
    } else {
        response
    }
}

fn metric_method(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

fn greeting(config: &Config) -> String {
    let metrics = config
        .metrics_path
        .as_ref()
        .map(|p| format!("- {p} - gather statistics to keep tusgate running smoothly\n"))
        .unwrap_or_default();
    format!(
        "Welcome to tusgate\n==================\n\nThis is a tus 1.0 upload server (a drop-in for tusd).\n\n- {} - send your tus uploads to this endpoint\n{metrics}\nVersion = {}\n",
        config.base_path,
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Cli, normalize_go_args};
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["tusgate", "-allow-uploads-without-token"];
        all.extend_from_slice(args);
        let cli = Cli::parse_from(normalize_go_args(all.iter().map(|s| (*s).to_owned())).args);
        Config::from_args(&cli.serve).expect("valid config")
    }

    #[test]
    fn routes() {
        let c = config(&[]);
        assert_eq!(Route::parse("/files/", &c), Route::Tus { rest: "" });
        assert_eq!(Route::parse("/files", &c), Route::Tus { rest: "" });
        assert_eq!(Route::parse("/files/abc", &c), Route::Tus { rest: "abc" });
        assert_eq!(Route::parse("/filesx", &c), Route::NotFound);
        assert_eq!(Route::parse("/metrics", &c), Route::Metrics);
        assert_eq!(Route::parse("/health", &c), Route::Health);
        assert_eq!(Route::parse("/", &c), Route::Greeting);
        assert_eq!(Route::parse("/other", &c), Route::NotFound);
        assert_eq!(
            Route::parse("/assets/public/a.txt", &c),
            Route::Assets {
                path: b"/assets/public/a.txt".to_vec()
            }
        );
        assert_eq!(
            Route::parse("/assets/", &c),
            Route::Assets {
                path: b"/assets/".to_vec()
            }
        );
        assert_eq!(Route::parse("/assets", &c), Route::NotFound);
        assert_eq!(
            Route::parse("/%61ssets/public/x", &c),
            Route::Assets {
                path: b"/assets/public/x".to_vec()
            }
        );
        assert_eq!(
            Route::parse("/x/../assets/private/y", &c),
            Route::Assets {
                path: b"/assets/private/y".to_vec()
            }
        );
        assert_eq!(Route::parse("/assets/%zz", &c), Route::BadRequest);
    }

    #[test]
    fn root_base_path_takes_everything_but_metrics() {
        let c = config(&["-base-path=/", "-expose-metrics=false"]);
        assert_eq!(Route::parse("/", &c), Route::Tus { rest: "" });
        assert_eq!(Route::parse("/abc", &c), Route::Tus { rest: "abc" });
        assert_eq!(Route::parse("/metrics", &c), Route::Tus { rest: "metrics" });
        assert_eq!(
            Route::parse("/assets/public/x", &c),
            Route::Assets {
                path: b"/assets/public/x".to_vec()
            }
        );
    }

    #[test]
    fn logged_durations_have_at_most_three_decimals() {
        use std::time::Duration;
        assert_eq!(
            format!("{:?}", log_millis(Duration::from_nanos(412_999))),
            "0.412"
        );
        assert_eq!(
            format!("{:?}", log_millis(Duration::from_micros(1_530_200))),
            "1530.2"
        );
        assert_eq!(
            format!("{:?}", log_millis(Duration::from_secs(3))),
            "3000.0"
        );
        for micros in (0..2_000_000u64).step_by(997).chain([u64::from(u32::MAX)]) {
            let text = format!("{:?}", log_millis(Duration::from_micros(micros)));
            let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
            assert!(decimals <= 3, "{micros} µs logs as {text}");
        }
    }

    #[test]
    fn base_path_is_normalised() {
        assert_eq!(config(&["-base-path=uploads"]).base_path, "/uploads/");
        assert_eq!(config(&["-base-path=/a/b/"]).base_path, "/a/b/");
    }
}
