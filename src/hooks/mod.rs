//! tusd's hooks (HTTP and file backends), with tusd v2.10.1's wire format.
//!
//! Owns: the hook request and response types, the backends that deliver them, which events
//! are enabled, and the hook metrics. It does not decide *where* hooks fire: the upload
//! lifecycle calls [`Hooks::call`] (blocking hooks) and [`Hooks::notify`] (notifications).
//!
//! # What tusd v2.10.1 does, and what we keep
//!
//! Read from tusd's `pkg/hooks`, `pkg/hooks/{http,file}`, `pkg/handler/unrouted_handler.go`
//! and `cmd/tusd/cli/{flags,hooks,serve}.go`, and checked against the binary where noted.
//!
//! **Events.** Blocking: `pre-create` (POST, before the store creates the upload),
//! `pre-finish` (after the last byte is stored, before the response), `pre-terminate`
//! (DELETE, before the store removes the upload). Notifications, fired in a goroutine after
//! the fact: `post-create`, `post-finish` (after pre-finish, whatever the client does next),
//! `post-terminate`. `post-receive` is a notification whose answer still matters: tusd sends
//! it every `-progress-hooks-interval` (default 1 s; 0 or less means 1 s) during a PATCH
//! while the offset moved, and once more when the request ends; a response with `StopUpload`
//! cancels the PATCH, answers `400 ERR_UPLOAD_STOPPED: upload has been stopped by server`
//! merged with the hook's `HTTPResponse`, and terminates the upload.
//!
//! **Responses.** Only these fields act: pre-create `RejectUpload` (400
//! `ERR_UPLOAD_REJECTED: upload creation has been rejected by server`, merged with
//! `HTTPResponse`) and `ChangeFileInfo` (`ID` if non-empty, checked by tusd's
//! `validateUploadId`; `MetaData` and `Storage` replace the whole map when non-null, even
//! with `{}`); pre-terminate `RejectTermination` (400 `ERR_UPLOAD_TERMINATION_REJECTED:
//! upload termination has been rejected by server`); post-receive `StopUpload`; and the
//! `HTTPResponse` of pre-create, pre-finish and pre-terminate, merged into the normal answer
//! ([`HttpResponse::merge_with`]: a non-zero status and a non-empty body replace, headers are
//! added). Everything else a hook returns is ignored.
//!
//! **Failures.** A hook that fails (after the HTTP retries) makes a blocking hook's request
//! fail with `500 ERR_INTERNAL_SERVER_ERROR: <error>` (for pre-finish the upload is already
//! complete in the store); a failed notification is only logged (`HookInvocationError`) and
//! counted in `tusd_hook_errors_total{hooktype}`. Every invocation, failed or not, counts in
//! `tusd_hook_invocations_total{hooktype}`. tusd loses failed notifications silently beyond
//! that log line and counter; here a failed notification also counts in
//! `tusgate_hook_notifications_lost_total{hooktype}` and its error log line names the upload,
//! so a lost post-finish can be found and replayed.
//!
//! **HTTP backend** (`-hooks-http`). `POST` of `{"Type": …, "Event": {"Upload": …,
//! "HTTPRequest": …}}` with `Content-Type: application/json` and the client request's
//! headers named in `-hooks-http-forward-headers` (comma-separated, looked up by Go's
//! canonical name, sent as spelled). Retries through `pester`: `-hooks-http-retry` (default
//! 3) is the number of *attempts* (0 or less: 1); a transport error or a 5xx is retried after
//! a constant `-hooks-http-backoff` (default 1 s); 429 and every other status are not.
//! `-hooks-http-timeout` (default 15 s) bounds the whole call, retries, backoffs and reading
//! the answer included. The answer must be 2xx (else `unexpected response code from hook
//! endpoint (<status>): <body>`), at most `-hooks-http-size-limit` bytes (default 5120; the
//! status check comes first), with `Content-Type: application/json` (parameters allowed) and
//! a JSON body that Go decodes (see [`wire`]): an empty body is an error, `null` or `{}` is
//! "no changes". Redirects are followed (10 at most, 301-303 turn the POST into a GET, as in
//! Go). A down endpoint therefore delays each blocking hook by (attempts - 1) x backoff, 2 s
//! by default, then refuses the request with 500 (measured with tusd v2.10.1: a POST against a
//! closed port answered 500 after 2.03 s). `-hooks-http-skip-verify` disables certificate
//! checks for https endpoints; https works with the system's roots through rustls.
//!
//! **File backend** (`-hooks-dir`): see [`file`]. tusd makes the directory absolute.
//!
//! **Configuration.** `-hooks-dir` wins over `-hooks-http` (which wins over gRPC and plugin
//! hooks), silently in tusd; here the ignored one is logged at startup. gRPC and plugin hooks
//! are not implemented (a startup warning says so). `-hooks-enabled-events` defaults to
//! `pre-create,post-create,post-receive,post-terminate,post-finish` (pre-finish and
//! pre-terminate are off unless asked for); an empty value enables all seven; an unknown name
//! stops startup. tusd compares the untrimmed names (`pre-create, post-finish` fails there);
//! we trim them. The hook metrics' series exist from startup with 0, as in tusd.
//!
//! **The request in the event.** `Method`; `URI` as the client sent the request target
//! (`RequestURI`: path and query, absolute-form kept; over HTTP/2 the `:path`); `RemoteAddr`
//! `ip:port` of the peer (`@` over a UNIX socket, as Go prints it); `Header`: every request
//! header under Go's canonical name with its values in order, plus `Host` (Go moves it out of
//! the map and tusd puts it back: the authority of an absolute-form target or of HTTP/2, else
//! the Host header), without `Transfer-Encoding` and `Trailer` (Go's server removes them),
//! and HTTP/2 `Cookie` fields joined with `; ` (Go's HTTP/2 server does). Header bytes that
//! are not UTF-8 become U+FFFD (Go writes the escape `\ufffd` instead: the only byte-level
//! difference we know of).
//!
//! **Deliberate differences.** tusd ties a notification to its request's context, so a
//! post-finish still retrying 10 s (`-request-completion-timeout`) after the response is
//! cancelled; here notifications run to their own timeout, in tasks shutdown waits for.
//! File hooks are bounded in time and output (see [`file`]). A `-hooks-http` URL that is not
//! http(s) is refused at startup instead of failing every call.

pub mod file;
pub mod http;
pub mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use prometheus::IntCounterVec;

use serde::Serialize;
use tokio_util::task::TaskTracker;

use crate::config::{HookBackendConfig, HooksConfig};
use crate::metrics::Metrics;

/// The seven hook events of tusd v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookType {
    PreCreate,
    PostCreate,
    PostReceive,
    PreFinish,
    PostFinish,
    PreTerminate,
    PostTerminate,
}

impl HookType {
    /// tusd's `AvailableHooks` order.
    pub const ALL: [HookType; 7] = [
        HookType::PreCreate,
        HookType::PostCreate,
        HookType::PostReceive,
        HookType::PreTerminate,
        HookType::PostTerminate,
        HookType::PostFinish,
        HookType::PreFinish,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HookType::PreCreate => "pre-create",
            HookType::PostCreate => "post-create",
            HookType::PostReceive => "post-receive",
            HookType::PreFinish => "pre-finish",
            HookType::PostFinish => "post-finish",
            HookType::PreTerminate => "pre-terminate",
            HookType::PostTerminate => "post-terminate",
        }
    }

    /// Fired after the fact, without waiting for an answer (post-receive's answer still
    /// matters: the caller decides whether to wait for it).
    pub fn is_notification(self) -> bool {
        matches!(
            self,
            HookType::PostCreate
                | HookType::PostReceive
                | HookType::PostFinish
                | HookType::PostTerminate
        )
    }

    pub fn parse(name: &str) -> Option<HookType> {
        HookType::ALL.into_iter().find(|h| h.as_str() == name)
    }
}

impl std::fmt::Display for HookType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// tusd's `handler.HookEvent` (without its context).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Event {
    #[serde(rename = "Upload")]
    pub upload: FileInfo,
    #[serde(rename = "HTTPRequest")]
    pub http_request: HttpRequest,
}

/// tusd's `handler.FileInfo`, field for field in its JSON order.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct FileInfo {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Size")]
    pub size: i64,
    #[serde(rename = "SizeIsDeferred")]
    pub size_is_deferred: bool,
    #[serde(rename = "Offset")]
    pub offset: i64,
    #[serde(rename = "MetaData")]
    pub metadata: BTreeMap<String, String>,
    #[serde(rename = "IsPartial")]
    pub is_partial: bool,
    #[serde(rename = "IsFinal")]
    pub is_final: bool,
    /// `None` is Go's nil slice (`null`): every upload that is not a final one.
    #[serde(rename = "PartialUploads")]
    pub partial_uploads: Option<Vec<String>>,
    /// `None` is Go's nil map (`null`): before the store has created the upload.
    #[serde(rename = "Storage")]
    pub storage: Option<BTreeMap<String, String>>,
}

/// tusd's `handler.HTTPRequest`.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct HttpRequest {
    #[serde(rename = "Method")]
    pub method: String,
    #[serde(rename = "URI")]
    pub uri: String,
    #[serde(rename = "RemoteAddr")]
    pub remote_addr: String,
    /// Go's canonical header names (`Upload-Length`), values in arrival order.
    #[serde(rename = "Header")]
    pub header: BTreeMap<String, Vec<String>>,
}

impl HttpRequest {
    /// The request as tusd describes it to hooks (see the module doc). `remote` is the
    /// peer's address, `None` on a UNIX socket.
    pub fn from_parts(
        method: &::http::Method,
        uri: &::http::Uri,
        version: ::http::Version,
        headers: &::http::HeaderMap,
        remote: Option<SocketAddr>,
    ) -> HttpRequest {
        let h2 = version >= ::http::Version::HTTP_2;
        let request_uri = if h2 {
            uri.path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned())
        } else {
            uri.to_string()
        };
        let mut header: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in headers {
            if matches!(name.as_str(), "host" | "transfer-encoding" | "trailer") {
                continue;
            }
            header
                .entry(wire::canonical_header_key(name.as_str()))
                .or_default()
                .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        if h2 {
            if let Some(cookies) = header.get_mut("Cookie").filter(|c| c.len() > 1) {
                *cookies = vec![cookies.join("; ")];
            }
        }
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                headers
                    .get(::http::header::HOST)
                    .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            })
            .unwrap_or_default();
        header.insert("Host".to_owned(), vec![host]);
        HttpRequest {
            method: method.as_str().to_owned(),
            uri: request_uri,
            remote_addr: remote.map_or_else(|| "@".to_owned(), |a| a.to_string()),
            header,
        }
    }

    /// [`HttpRequest::from_parts`] of a request's head.
    pub fn from_request_parts(parts: &::http::request::Parts, remote: Option<SocketAddr>) -> Self {
        HttpRequest::from_parts(
            &parts.method,
            &parts.uri,
            parts.version,
            &parts.headers,
            remote,
        )
    }
}

/// tusd's `handler.HTTPResponse`: changes a hook asks for in the response to the client.
/// Decoded as Go does (see [`wire`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// 0: unchanged.
    pub status_code: i64,
    /// Empty: unchanged.
    pub body: String,
    /// Set on the response, each replacing a header of that name.
    pub header: BTreeMap<String, String>,
}

/// tusd's `handler.FileInfoChanges` (pre-create only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileInfoChanges {
    /// Empty: the store picks the id.
    pub id: String,
    /// `Some` replaces all the metadata (even with an empty map).
    pub metadata: Option<BTreeMap<String, String>>,
    /// `Some` replaces the storage details.
    pub storage: Option<BTreeMap<String, String>>,
}

/// tusd's `hooks.HookResponse`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookResponse {
    pub http_response: HttpResponse,
    pub reject_upload: bool,
    pub reject_termination: bool,
    pub change_file_info: FileInfoChanges,
    pub stop_upload: bool,
}

impl HttpResponse {
    /// The status to send, if it is one HTTP can carry. tusd passes any non-zero value to Go's
    /// `WriteHeader`, which panics outside 100..=999: the server then drops the connection
    /// without an answer. `None` for 0 (unchanged) and for such values.
    pub fn status(&self) -> Option<::http::StatusCode> {
        u16::try_from(self.status_code)
            .ok()
            .and_then(|code| ::http::StatusCode::from_u16(code).ok())
    }

    /// tusd's `HTTPResponse.MergeWith`: `other`'s non-zero status and non-empty body replace
    /// ours; its headers are added to ours, replacing same-named ones.
    pub fn merge_with(&self, other: &HttpResponse) -> HttpResponse {
        let mut merged = self.clone();
        if other.status_code != 0 {
            merged.status_code = other.status_code;
        }
        if !other.body.is_empty() {
            merged.body.clone_from(&other.body);
        }
        merged
            .header
            .extend(other.header.iter().map(|(k, v)| (k.clone(), v.clone())));
        merged
    }
}

/// One of tusd's `handler.Error`s that hooks cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TusdError {
    pub code: &'static str,
    pub message: &'static str,
    pub status: u16,
}

/// pre-create answered `RejectUpload`.
pub const ERR_UPLOAD_REJECTED: TusdError = TusdError {
    code: "ERR_UPLOAD_REJECTED",
    message: "upload creation has been rejected by server",
    status: 400,
};
/// pre-terminate answered `RejectTermination`.
pub const ERR_UPLOAD_TERMINATION_REJECTED: TusdError = TusdError {
    code: "ERR_UPLOAD_TERMINATION_REJECTED",
    message: "upload termination has been rejected by server",
    status: 400,
};
/// post-receive answered `StopUpload`.
pub const ERR_UPLOAD_STOPPED: TusdError = TusdError {
    code: "ERR_UPLOAD_STOPPED",
    message: "upload has been stopped by server",
    status: 400,
};

impl TusdError {
    /// tusd's `NewError` response: `CODE: message\n` as text/plain.
    pub fn response(&self) -> HttpResponse {
        HttpResponse {
            status_code: i64::from(self.status),
            body: format!("{}: {}\n", self.code, self.message),
            header: BTreeMap::from([(
                "Content-Type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            )]),
        }
    }

    /// The error's response with a hook's changes merged in, as tusd sends it.
    pub fn response_with(&self, hook: &HttpResponse) -> HttpResponse {
        self.response().merge_with(hook)
    }
}

impl HookResponse {
    /// pre-create: the answer to send instead of creating the upload, if the hook rejected it.
    pub fn upload_rejection(&self) -> Option<HttpResponse> {
        self.reject_upload
            .then(|| ERR_UPLOAD_REJECTED.response_with(&self.http_response))
    }

    /// pre-terminate: the answer to send instead of terminating, if the hook refused.
    pub fn termination_rejection(&self) -> Option<HttpResponse> {
        self.reject_termination
            .then(|| ERR_UPLOAD_TERMINATION_REJECTED.response_with(&self.http_response))
    }

    /// post-receive: the answer that ends the PATCH (and the upload), if the hook stopped it.
    pub fn stop(&self) -> Option<HttpResponse> {
        self.stop_upload
            .then(|| ERR_UPLOAD_STOPPED.response_with(&self.http_response))
    }
}

impl FileInfoChanges {
    /// tusd's `validateUploadId` of a pre-create `ChangeFileInfo.ID` (tusd answers 500 with
    /// this message when it fails).
    pub fn validate_id(&self) -> Result<(), String> {
        let id = self.id.as_str();
        if id.is_empty() {
            return Ok(());
        }
        if id.starts_with('/') || id.ends_with('/') {
            return Err(format!(
                "validation error in FileInfoChanges: ID must not begin or end with a forward slash (got: {id})"
            ));
        }
        const ALLOWED: &[u8] = b"-._~%!$'()*+,;=/:@";
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || ALLOWED.contains(&b))
        {
            return Err(format!(
                "validation error in FileInfoChanges: ID must contain only URL-safe character: ^[A-Za-z0-9\\-._~%!$'()*+,;=/:@]*$ (got: {id})"
            ));
        }
        Ok(())
    }
}

impl HookError {
    /// What tusd answers when a blocking hook fails: `500 ERR_INTERNAL_SERVER_ERROR: <error>`
    /// (it reveals the hook's error text to the client; tusgate may choose to say less).
    pub fn tusd_response(&self) -> HttpResponse {
        HttpResponse {
            status_code: 500,
            body: format!("ERR_INTERNAL_SERVER_ERROR: {self}\n"),
            header: BTreeMap::from([(
                "Content-Type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            )]),
        }
    }
}

/// Why a hook did not deliver a response. The texts follow tusd's where it has one: tusd
/// puts them in the 500 answer to the client and in its log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HookError {
    /// Connecting, sending or reading failed on the last attempt.
    #[error("Post \"{url}\": {error}")]
    Transport { url: String, error: String },
    #[error("Post \"{url}\": no answer within {timeout:?} (-hooks-http-timeout)")]
    Timeout { url: String, timeout: Duration },
    #[error("unexpected response code from hook endpoint ({status}): {body}")]
    Status { status: u16, body: String },
    #[error("hook response exceeded maximum size of {limit} bytes")]
    ResponseTooLarge { limit: u64 },
    #[error("{0}")]
    ContentType(String),
    #[error("failed to parse hook response: {error}{}", output.as_ref().map(|o| format!(", response was: {o}")).unwrap_or_default())]
    InvalidResponse {
        error: String,
        output: Option<String>,
    },
    #[error("cannot run hook {}: {error}", path.display())]
    Spawn { path: PathBuf, error: String },
    #[error("hook {} did not finish within {timeout:?} (--hooks-dir-timeout) and was killed", path.display())]
    FileTimeout { path: PathBuf, timeout: Duration },
    #[error("unexpected return code {code} from hook endpoint: {output}")]
    Exit { code: i32, output: String },
}

#[derive(Debug)]
enum Backend {
    Http(http::HttpBackend),
    File(file::FileBackend),
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    enabled: Vec<HookType>,
    progress_interval: Duration,
    invocations: IntCounterVec,
    errors: IntCounterVec,
    lost: IntCounterVec,
    tasks: TaskTracker,
    /// Notifications started and not yet done (for the shutdown report).
    pending: AtomicUsize,
}

/// The configured hook backend and enabled events; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    inner: Option<Arc<Inner>>,
}

/// The hook request body: tusd's `hooks.HookRequest`.
#[derive(Serialize)]
struct HookRequest<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "Event")]
    event: &'a Event,
}

/// The exact body tusd would send for `hook` and `event`.
pub fn request_body(hook: HookType, event: &Event) -> Vec<u8> {
    wire::to_go_json(&HookRequest {
        kind: hook.as_str(),
        event,
    })
}

impl Hooks {
    /// No backend: every hook is disabled.
    pub fn disabled() -> Hooks {
        Hooks::default()
    }

    /// Sets up the configured backend (nothing when none is configured) and logs what it
    /// will do, as tusd's startup lines do.
    pub fn new(
        config: &HooksConfig,
        metrics: &Metrics,
        tasks: TaskTracker,
    ) -> Result<Hooks, String> {
        for note in &config.notes {
            tracing::warn!("{note}");
        }
        let backend = match &config.backend {
            None => return Ok(Hooks::disabled()),
            Some(HookBackendConfig::File { dir, timeout }) => {
                let backend = file::FileBackend::new(dir, *timeout);
                describe_dir(&backend, &config.enabled);
                Backend::File(backend)
            }
            Some(HookBackendConfig::Http {
                url,
                attempts,
                backoff,
                forward_headers,
                timeout,
                size_limit,
                skip_verify,
            }) => {
                let backend = http::HttpBackend::new(&http::HttpBackendConfig {
                    url,
                    attempts: *attempts,
                    backoff: *backoff,
                    forward_headers,
                    timeout: *timeout,
                    size_limit: *size_limit,
                    skip_verify: *skip_verify,
                })?;
                tracing::info!("Using '{}' as the endpoint for hooks", backend.url());
                Backend::Http(backend)
            }
        };
        tracing::info!(
            "Enabled hook events: {}",
            config
                .enabled
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(Hooks {
            inner: Some(Arc::new(Inner {
                backend,
                enabled: config.enabled.clone(),
                progress_interval: config.progress_interval,
                invocations: metrics.hook_invocations_total.clone(),
                errors: metrics.hook_errors_total.clone(),
                lost: metrics.hook_notifications_lost_total.clone(),
                tasks,
                pending: AtomicUsize::new(0),
            })),
        })
    }

    /// Whether `hook` fires at all (a backend is configured and the event is enabled).
    pub fn enabled(&self, hook: HookType) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| inner.enabled.contains(&hook))
    }

    /// How often post-receive fires during a PATCH (`-progress-hooks-interval`).
    pub fn progress_interval(&self) -> Duration {
        self.inner
            .as_ref()
            .map_or(Duration::from_secs(1), |inner| inner.progress_interval)
    }

    /// Notifications still running (shutdown reports those it abandons).
    pub fn pending_notifications(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.pending.load(Ordering::Relaxed))
    }

    /// A blocking hook: its response, or the error after the backend's retries (logged and
    /// counted here). A hook that is not enabled answers the default response without any
    /// call; check [`Hooks::enabled`] first to skip building the event.
    pub async fn call(&self, hook: HookType, event: &Event) -> Result<HookResponse, HookError> {
        match &self.inner {
            Some(inner) if inner.enabled.contains(&hook) => inner.invoke(hook, event).await,
            _ => Ok(HookResponse::default()),
        }
    }

    /// A notification: runs in a task of the tracker given to [`Hooks::new`] and never blocks
    /// the caller. A failure (after the backend's retries) is logged at error level with the
    /// upload id and counted in `tusgate_hook_notifications_lost_total`.
    pub fn notify(&self, hook: HookType, event: Event) {
        let Some(inner) = self.inner.as_ref().filter(|i| i.enabled.contains(&hook)) else {
            return;
        };
        let inner = Arc::clone(inner);
        inner.pending.fetch_add(1, Ordering::Relaxed);
        inner.tasks.clone().spawn(async move {
            if let Err(error) = inner.invoke(hook, &event).await {
                inner.lost.with_label_values(&[hook.as_str()]).inc();
                tracing::error!(
                    hook = hook.as_str(),
                    id = %event.upload.id,
                    %error,
                    "hook notification lost: the {hook} hook of upload {} failed and is not retried",
                    event.upload.id
                );
            }
            inner.pending.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

impl Inner {
    async fn invoke(&self, hook: HookType, event: &Event) -> Result<HookResponse, HookError> {
        self.invocations.with_label_values(&[hook.as_str()]).inc();
        tracing::debug!(hook = hook.as_str(), id = %event.upload.id, "HookInvocationStart");
        let body = Bytes::from(request_body(hook, event));
        let result = match &self.backend {
            Backend::Http(backend) => backend.invoke(body, &event.http_request.header).await,
            Backend::File(backend) => backend.invoke(hook, body, &event.upload).await,
        };
        match &result {
            Ok(_) => {
                tracing::debug!(hook = hook.as_str(), id = %event.upload.id, "HookInvocationFinish")
            }
            Err(error) => {
                self.errors.with_label_values(&[hook.as_str()]).inc();
                tracing::error!(hook = hook.as_str(), id = %event.upload.id, %error, "HookInvocationError");
            }
        }
        result
    }
}

/// tusd says nothing about the directory; a typo there silently disables every hook, so we
/// say what we found.
fn describe_dir(backend: &file::FileBackend, enabled: &[HookType]) {
    let dir = backend.dir();
    if !dir.is_dir() {
        tracing::warn!(
            "the hooks directory {} does not exist (yet): no hook runs until it does",
            dir.display()
        );
        return;
    }
    tracing::info!("Using '{}' for hooks", dir.display());
    let missing: Vec<&str> = enabled
        .iter()
        .filter(|h| !backend.path(**h).exists())
        .map(|h| h.as_str())
        .collect();
    if !missing.is_empty() {
        tracing::info!(
            "no executable in {} for the enabled events {}: they are skipped, as in tusd",
            dir.display(),
            missing.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HookBackendConfig;
    use std::net::SocketAddr;

    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncWriteExt;

    /// The head of `raw` as a real hyper server parses it.
    async fn parse_with_hyper(raw: &'static [u8]) -> ::http::request::Parts {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let service = service_fn(move |request: ::http::Request<hyper::body::Incoming>| {
                if let Some(tx) = tx.lock().expect("lock").take() {
                    let _ = tx.send(request.into_parts().0);
                }
                async {
                    Ok::<_, std::convert::Infallible>(::http::Response::new(
                        Full::new(Bytes::new()),
                    ))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        client.write_all(raw).await.expect("write");
        let parts = rx.await.expect("request");
        server.abort();
        parts
    }

    fn remote(addr: &str) -> Option<SocketAddr> {
        Some(addr.parse().expect("socket address"))
    }

    fn fixture(name: &str) -> String {
        let path = format!("{}/src/hooks/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).expect("fixture")
    }

    fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Bodies captured from tusd v2.10.1 (testdata/record.py as its -hooks-http endpoint,
    /// curl as the client) and rebuilt here from the same request bytes: equal byte for byte.
    #[tokio::test]
    async fn request_bodies_are_byte_identical_to_tusds() {
        let parts = parse_with_hyper(
            b"POST /files/ HTTP/1.1\r\nHost: 127.0.0.1:18766\r\nUser-Agent: curl/7.88.1\r\n\
Accept: */*\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 11\r\n\
Upload-Metadata: filename aGVsbG8udHh0,empty\r\nX-Custom: a<b>&c\r\nX-Custom: second\r\n\
Authorization: Bearer x\r\n\r\n",
        )
        .await;
        let event = Event {
            upload: FileInfo {
                size: 11,
                metadata: metadata(&[("filename", "hello.txt"), ("empty", "")]),
                ..FileInfo::default()
            },
            http_request: HttpRequest::from_request_parts(&parts, remote("127.0.0.1:52368")),
        };
        let body = request_body(HookType::PreCreate, &event);
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            fixture("tusd-pre-create.json")
        );

        let parts = parse_with_hyper(
            b"PATCH /files/eca4caab6457fcd90c159abdfe2d75b7?q=1 HTTP/1.1\r\nHost: 127.0.0.1:18766\r\n\
User-Agent: curl/7.88.1\r\nAccept: */*\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n\
Content-Type: application/offset+octet-stream\r\nContent-Length: 11\r\n\r\nhello world",
        )
        .await;
        let id = "eca4caab6457fcd90c159abdfe2d75b7";
        let event = Event {
            upload: FileInfo {
                id: id.into(),
                size: 11,
                offset: 11,
                metadata: metadata(&[("filename", "hello.txt"), ("empty", "")]),
                storage: Some(metadata(&[
                    ("Type", "filestore"),
                    ("Path", &format!("/tmp/hookcap/data/{id}")),
                    ("InfoPath", &format!("/tmp/hookcap/data/{id}.info")),
                ])),
                ..FileInfo::default()
            },
            http_request: HttpRequest::from_request_parts(&parts, remote("127.0.0.1:52374")),
        };
        let body = request_body(HookType::PostFinish, &event);
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            fixture("tusd-post-finish.json")
        );

        let parts = parse_with_hyper(
            b"POST /files/ HTTP/1.1\r\nHost: 127.0.0.1:18766\r\nUser-Agent: curl/7.88.1\r\n\
Accept: */*\r\nTus-Resumable: 1.0.0\r\nUpload-Defer-Length: 1\r\nUpload-Concat: partial\r\n\r\n",
        )
        .await;
        let event = Event {
            upload: FileInfo {
                size_is_deferred: true,
                is_partial: true,
                ..FileInfo::default()
            },
            http_request: HttpRequest::from_request_parts(&parts, remote("127.0.0.1:38932")),
        };
        let body = request_body(HookType::PreCreate, &event);
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            fixture("tusd-pre-create-deferred-partial.json")
        );

        let parts = parse_with_hyper(
            b"POST /files/ HTTP/1.1\r\nHost: 127.0.0.1:18766\r\nUser-Agent: curl/7.88.1\r\n\
Accept: */*\r\nTus-Resumable: 1.0.0\r\nUpload-Concat: final;\
http://127.0.0.1:18766/files/cf83438415c19a751396d83389459d9f \
http://127.0.0.1:18766/files/3d99afe7a2dd3cdba1dca36373390f97\r\n\r\n",
        )
        .await;
        let event = Event {
            upload: FileInfo {
                size: 3,
                is_final: true,
                partial_uploads: Some(vec![
                    "cf83438415c19a751396d83389459d9f".into(),
                    "3d99afe7a2dd3cdba1dca36373390f97".into(),
                ]),
                ..FileInfo::default()
            },
            http_request: HttpRequest::from_request_parts(&parts, remote("127.0.0.1:38964")),
        };
        let body = request_body(HookType::PreCreate, &event);
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            fixture("tusd-pre-create-final.json")
        );
    }

    #[test]
    fn the_request_follows_gos_server() {
        let mut headers = ::http::HeaderMap::new();
        headers.insert("host", "ignored.example".parse().expect("value"));
        headers.insert("transfer-encoding", "chunked".parse().expect("value"));
        headers.append("cookie", "a=1".parse().expect("value"));
        headers.append("cookie", "b=2".parse().expect("value"));
        headers.insert(
            "x-bytes",
            ::http::HeaderValue::from_bytes(b"caf\xe9").expect("value"),
        );
        let uri: ::http::Uri = "http://proxy.example:81/files/x?y".parse().expect("uri");
        let h1 = HttpRequest::from_parts(
            &::http::Method::PATCH,
            &uri,
            ::http::Version::HTTP_11,
            &headers,
            None,
        );
        assert_eq!(
            h1.uri, "http://proxy.example:81/files/x?y",
            "absolute-form kept"
        );
        assert_eq!(h1.header["Host"], ["proxy.example:81"]);
        assert!(!h1.header.contains_key("Transfer-Encoding"));
        assert_eq!(h1.header["Cookie"], ["a=1", "b=2"]);
        assert_eq!(h1.header["X-Bytes"], ["caf\u{fffd}"]);
        assert_eq!(h1.remote_addr, "@", "a UNIX socket peer, as Go prints it");
        let h2 = HttpRequest::from_parts(
            &::http::Method::PATCH,
            &uri,
            ::http::Version::HTTP_2,
            &headers,
            remote("[::1]:5000"),
        );
        assert_eq!(h2.uri, "/files/x?y");
        assert_eq!(h2.header["Cookie"], ["a=1; b=2"]);
        assert_eq!(h2.remote_addr, "[::1]:5000");
    }

    #[test]
    fn rejections_merge_the_hook_response_into_tusds_error() {
        let hook: HookResponse = serde_json::from_str(
            r#"{"RejectUpload":true,"HTTPResponse":{"StatusCode":403,"Header":{"X-Why":"quota"}}}"#,
        )
        .expect("valid");
        let response = hook.upload_rejection().expect("rejected");
        assert_eq!(response.status_code, 403);
        assert_eq!(
            response.body,
            "ERR_UPLOAD_REJECTED: upload creation has been rejected by server\n"
        );
        assert_eq!(response.header["X-Why"], "quota");
        assert_eq!(response.header["Content-Type"], "text/plain; charset=utf-8");
        assert!(hook.termination_rejection().is_none() && hook.stop().is_none());
        let stop = HookResponse {
            stop_upload: true,
            ..HookResponse::default()
        };
        let response = stop.stop().expect("stopped");
        assert_eq!(response.status_code, 400);
        assert!(response.body.starts_with("ERR_UPLOAD_STOPPED: "));
    }

    #[test]
    fn statuses_and_failure_answers() {
        let status = |code| {
            HttpResponse {
                status_code: code,
                ..HttpResponse::default()
            }
            .status()
        };
        assert_eq!(status(403), Some(::http::StatusCode::FORBIDDEN));
        assert_eq!(status(0), None);
        assert_eq!(status(-1), None);
        assert_eq!(status(1000), None);
        let error = HookError::Status {
            status: 503,
            body: "busy".into(),
        };
        assert_eq!(
            error.tusd_response().body,
            "ERR_INTERNAL_SERVER_ERROR: unexpected response code from hook endpoint (503): busy\n"
        );
    }

    #[test]
    fn changed_ids_are_validated_as_tusd_does() {
        let ok = |id: &str| {
            FileInfoChanges {
                id: id.into(),
                ..FileInfoChanges::default()
            }
            .validate_id()
        };
        assert!(ok("").is_ok() && ok("a-b_c.d~e%20:@").is_ok() && ok("a/b").is_ok());
        assert!(ok("/a").is_err() && ok("a/").is_err() && ok("a b").is_err() && ok("é").is_err());
    }

    fn http_config(url: &str, enabled: &[HookType]) -> HooksConfig {
        HooksConfig {
            backend: Some(HookBackendConfig::Http {
                url: url.into(),
                attempts: 2,
                backoff: Duration::from_millis(10),
                forward_headers: Vec::new(),
                timeout: Duration::from_secs(5),
                size_limit: 5120,
                skip_verify: false,
            }),
            enabled: enabled.to_vec(),
            ..HooksConfig::default()
        }
    }

    fn count(metrics: &Metrics, name: &str, hook: HookType) -> u64 {
        let text = String::from_utf8(metrics.render()).expect("utf-8");
        let series = format!("{name}{{hooktype=\"{}\"}} ", hook.as_str());
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(u64::MAX, |v| v.parse().expect("count"))
    }

    #[tokio::test]
    async fn blocking_calls_and_notifications_are_counted() {
        use self::super::http::tests::{endpoint, json};
        let server = endpoint(vec![json(200, r#"{"RejectUpload":true}"#)]).await;
        let metrics = Metrics::new();
        let tasks = TaskTracker::new();
        let config = http_config(&server.url, &[HookType::PreCreate, HookType::PostFinish]);
        let hooks = Hooks::new(&config, &metrics, tasks.clone()).expect("hooks");
        assert!(hooks.enabled(HookType::PreCreate) && !hooks.enabled(HookType::PreFinish));
        let event = Event::default();
        let response = hooks
            .call(HookType::PreCreate, &event)
            .await
            .expect("answer");
        assert!(response.reject_upload);
        // Not enabled: no call, default answer, nothing counted.
        let response = hooks
            .call(HookType::PreFinish, &event)
            .await
            .expect("answer");
        assert_eq!(response, HookResponse::default());
        hooks.notify(HookType::PostFinish, event.clone());
        hooks.notify(HookType::PostTerminate, event);
        tasks.close();
        tasks.wait().await;
        assert_eq!(server.received.lock().expect("lock").len(), 2);
        let body = server.received.lock().expect("lock")[1].body.clone();
        assert!(body.starts_with(b"{\"Type\":\"post-finish\",\"Event\":{\"Upload\":{\"ID\":\"\""));
        assert_eq!(
            count(&metrics, "tusd_hook_invocations_total", HookType::PreCreate),
            1
        );
        assert_eq!(
            count(
                &metrics,
                "tusd_hook_invocations_total",
                HookType::PostFinish
            ),
            1
        );
        assert_eq!(
            count(&metrics, "tusd_hook_invocations_total", HookType::PreFinish),
            0
        );
        assert_eq!(
            count(&metrics, "tusd_hook_errors_total", HookType::PostFinish),
            0
        );
        assert_eq!(hooks.pending_notifications(), 0);
    }

    #[tokio::test]
    async fn a_failed_notification_is_logged_and_counted_as_lost() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        drop(listener);
        let metrics = Metrics::new();
        let tasks = TaskTracker::new();
        let config = http_config(&url, &[HookType::PreCreate, HookType::PostFinish]);
        let hooks = Hooks::new(&config, &metrics, tasks.clone()).expect("hooks");
        let event = Event {
            upload: FileInfo {
                id: "abc".into(),
                ..FileInfo::default()
            },
            ..Event::default()
        };
        hooks.notify(HookType::PostFinish, event.clone());
        let error = hooks
            .call(HookType::PreCreate, &event)
            .await
            .expect_err("down");
        assert!(matches!(error, HookError::Transport { .. }), "{error:?}");
        tasks.close();
        tasks.wait().await;
        for (name, hook, expected) in [
            ("tusd_hook_invocations_total", HookType::PostFinish, 1),
            ("tusd_hook_errors_total", HookType::PostFinish, 1),
            ("tusd_hook_errors_total", HookType::PreCreate, 1),
            (
                "tusgate_hook_notifications_lost_total",
                HookType::PostFinish,
                1,
            ),
            (
                "tusgate_hook_notifications_lost_total",
                HookType::PostCreate,
                0,
            ),
        ] {
            assert_eq!(count(&metrics, name, hook), expected, "{name} {hook}");
        }
    }

    #[tokio::test]
    async fn without_a_backend_nothing_fires() {
        let metrics = Metrics::new();
        let hooks =
            Hooks::new(&HooksConfig::default(), &metrics, TaskTracker::new()).expect("hooks");
        assert!(HookType::ALL.iter().all(|h| !hooks.enabled(*h)));
        assert_eq!(
            hooks
                .call(HookType::PreCreate, &Event::default())
                .await
                .expect("default"),
            HookResponse::default()
        );
        assert_eq!(
            count(&metrics, "tusd_hook_invocations_total", HookType::PreCreate),
            0
        );
    }
}
