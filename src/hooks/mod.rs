//! tusd's hooks (HTTP and file backends), with tusd v2.10.1's wire format.
//!
//! Owns: the hook request and response types, the backends that deliver them, which events
//! are enabled, and the hook metrics. It does not decide *where* hooks fire: the upload
//! lifecycle calls [`Hooks::call`] (blocking hooks) and [`Hooks::notify`] (notifications).
//!
//! (Skeleton: the behaviour notes and the backends follow.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::task::TaskTracker;

use crate::config::HooksConfig;
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
    /// The request as tusd describes it to hooks.
    pub fn from_parts(
        method: &http::Method,
        uri: &http::Uri,
        version: http::Version,
        headers: &http::HeaderMap,
        remote: Option<SocketAddr>,
    ) -> HttpRequest {
        let _ = (uri, version, headers);
        HttpRequest {
            method: method.as_str().to_owned(),
            remote_addr: remote.map(|a| a.to_string()).unwrap_or_default(),
            ..HttpRequest::default()
        }
    }
}

/// tusd's `handler.HTTPResponse`: changes a hook asks for in the response to the client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct HttpResponse {
    #[serde(rename = "StatusCode")]
    pub status_code: i64,
    #[serde(rename = "Body")]
    pub body: String,
    #[serde(rename = "Header")]
    pub header: BTreeMap<String, String>,
}

/// tusd's `handler.FileInfoChanges` (pre-create only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FileInfoChanges {
    /// Empty: the store picks the id.
    #[serde(rename = "ID")]
    pub id: String,
    /// `Some` replaces all the metadata (even with an empty map).
    #[serde(rename = "MetaData")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(rename = "Storage")]
    pub storage: Option<BTreeMap<String, String>>,
}

/// tusd's `hooks.HookResponse`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct HookResponse {
    #[serde(rename = "HTTPResponse")]
    pub http_response: HttpResponse,
    #[serde(rename = "RejectUpload")]
    pub reject_upload: bool,
    #[serde(rename = "RejectTermination")]
    pub reject_termination: bool,
    #[serde(rename = "ChangeFileInfo")]
    pub change_file_info: FileInfoChanges,
    #[serde(rename = "StopUpload")]
    pub stop_upload: bool,
}

/// Why a hook did not deliver a response.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{0}")]
    Other(String),
}

/// The configured hook backend and enabled events; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Hooks {}

impl Hooks {
    /// No backend: every hook is disabled.
    pub fn disabled() -> Hooks {
        Hooks::default()
    }

    pub fn new(
        config: &HooksConfig,
        metrics: &Metrics,
        tasks: TaskTracker,
    ) -> Result<Hooks, String> {
        let _ = (config, metrics, tasks);
        Ok(Hooks::default())
    }

    /// Whether `hook` fires at all (a backend is configured and the event is enabled).
    pub fn enabled(&self, hook: HookType) -> bool {
        let _ = hook;
        false
    }

    /// How often post-receive fires during a PATCH (`-progress-hooks-interval`).
    pub fn progress_interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// A blocking hook: its response, or the error after the backend's retries.
    pub async fn call(&self, hook: HookType, event: &Event) -> Result<HookResponse, HookError> {
        let _ = (hook, event);
        Ok(HookResponse::default())
    }

    /// A notification: runs in a tracked task and never blocks the caller.
    pub fn notify(&self, hook: HookType, event: Event) {
        let _ = (hook, event);
    }
}
