//! The lifecycle's side of tusd's hooks: the event a hook receives for an upload, blocking
//! calls, notifications, and post-receive progress (which may stop an upload).
//!
//! Which hook fires where is decided in the lifecycle; this module only turns uploads into
//! tusd's `FileInfo` and runs the calls. Nothing here builds an event for a hook that is not
//! enabled, so a server without hooks pays nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::app::App;
use crate::error::{Error, Result};
use crate::hooks::{Event, FileInfo, HookResponse, HookType, Hooks, HttpRequest, HttpResponse};
use crate::upload::{Concat, UploadInfo};

/// The request behind a lifecycle step, as hooks describe it (`HTTPRequest`). Described only
/// when some hook is enabled; empty for work no request drives (startup recovery, retries,
/// expiry), which hooks then see with an empty `HTTPRequest`.
#[derive(Debug, Clone, Default)]
pub struct Caller(Option<Arc<HttpRequest>>);

impl Caller {
    /// `describe` runs only if a hook may fire.
    pub fn new(hooks: &Hooks, describe: impl FnOnce() -> HttpRequest) -> Caller {
        let any = HookType::ALL.into_iter().any(|hook| hooks.enabled(hook));
        Caller(any.then(|| Arc::new(describe())))
    }

    /// No request: background work.
    pub fn none() -> Caller {
        Caller(None)
    }

    pub(super) fn is_request(&self) -> bool {
        self.0.is_some()
    }

    fn request(&self) -> HttpRequest {
        self.0.as_deref().cloned().unwrap_or_default()
    }
}

/// tusd's `FileInfo` for an upload: the store says where its bytes are (`Storage`), and a
/// tokened upload also where its asset is (`Asset`, the storage-relative path, and `AssetURL`,
/// the download path on this server), which tusd's hooks had to work out themselves.
pub(super) fn file_info(app: &App, info: &UploadInfo) -> FileInfo {
    let mut storage = app.store.describe(info);
    if let Some(target) = &info.target {
        storage.insert("Asset".to_owned(), target.path.clone());
        storage.insert(
            "AssetURL".to_owned(),
            format!("{}/{}", app.config.assets.mount, target.path),
        );
    }
    FileInfo {
        id: info.id.to_string(),
        size: info.length.map_or(0, clamp),
        size_is_deferred: info.length.is_none(),
        offset: clamp(info.offset),
        metadata: info.metadata.clone(),
        is_partial: info.concat == Concat::Partial,
        is_final: info.is_final(),
        partial_uploads: match &info.concat {
            Concat::Final(ids) => Some(ids.iter().map(ToString::to_string).collect()),
            _ => None,
        },
        storage: Some(storage),
    }
}

/// Go's int64.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Fires notification `hook` for `upload` if it is enabled.
pub(super) fn notify(
    app: &App,
    hook: HookType,
    upload: impl FnOnce() -> FileInfo,
    caller: &Caller,
) {
    if app.hooks.enabled(hook) {
        let event = Event {
            upload: upload(),
            http_request: caller.request(),
        };
        app.hooks.notify(hook, event);
    }
}

/// Calls blocking `hook` if it is enabled: `None` when it is not, the hook's response when it
/// answered, [`Error::HookFailed`] when it did not (the hooks module logged and counted why).
pub(super) async fn call(
    app: &App,
    hook: HookType,
    upload: impl FnOnce() -> FileInfo,
    caller: &Caller,
) -> Result<Option<HookResponse>> {
    if !app.hooks.enabled(hook) {
        return Ok(None);
    }
    let event = Event {
        upload: upload(),
        http_request: caller.request(),
    };
    match app.hooks.call(hook, &event).await {
        Ok(response) => Ok(Some(response)),
        Err(_) => Err(Error::HookFailed(hook)),
    }
}

/// post-receive while a body streams: every `-progress-hooks-interval`, and once more when the
/// body ends, if the offset moved since the last one (tusd's `sendProgressMessages`). A hook
/// answering `StopUpload` stops the body; the lifecycle then terminates the upload.
pub(super) struct Progress {
    done: CancellationToken,
    stop: CancellationToken,
    reply: Arc<Mutex<Option<HttpResponse>>>,
}

impl Progress {
    /// Starts reporting the bytes `received` past `info.offset`; `None` if post-receive is off.
    pub(super) fn start(
        app: &Arc<App>,
        info: &UploadInfo,
        caller: &Caller,
        received: Arc<AtomicU64>,
    ) -> Option<Progress> {
        if !app.hooks.enabled(HookType::PostReceive) {
            return None;
        }
        let progress = Progress {
            done: CancellationToken::new(),
            stop: CancellationToken::new(),
            reply: Arc::default(),
        };
        let event = Event {
            upload: file_info(app, info),
            http_request: caller.request(),
        };
        let base = event.upload.offset;
        let (done, stop, reply) = (
            progress.done.clone(),
            progress.stop.clone(),
            Arc::clone(&progress.reply),
        );
        let interval = app.hooks.progress_interval();
        let app = Arc::clone(app);
        app.tasks.clone().spawn(async move {
            let mut last = None;
            loop {
                let ended = tokio::select! {
                    () = done.cancelled() => true,
                    () = tokio::time::sleep(interval) => false,
                };
                let offset = base.saturating_add(clamp(received.load(Ordering::Relaxed)));
                if last != Some(offset) {
                    last = Some(offset);
                    let mut event = event.clone();
                    event.upload.offset = offset;
                    // Each call on its own, as tusd does: a slow hook delays no later report.
                    let (app, stop, reply) = (Arc::clone(&app), stop.clone(), Arc::clone(&reply));
                    app.tasks.clone().spawn(async move {
                        let answer = app.hooks.call(HookType::PostReceive, &event).await;
                        if let Ok(answer) = answer {
                            if answer.stop_upload {
                                tracing::info!(id = %event.upload.id, "post-receive hook stopped the upload");
                                let mut slot = reply.lock().unwrap_or_else(PoisonError::into_inner);
                                slot.get_or_insert(answer.http_response);
                                stop.cancel();
                            }
                        }
                    });
                }
                if ended {
                    return;
                }
            }
        });
        Some(progress)
    }

    /// Resolves when a hook asked to stop the upload.
    pub(super) fn stop_requested(&self) -> WaitForCancellationFutureOwned {
        self.stop.clone().cancelled_owned()
    }

    /// The response the stopping hook asked for.
    pub(super) fn take_reply(&self) -> HttpResponse {
        self.reply
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default()
    }

    /// The body ended: one last report if the offset moved, then no more.
    pub(super) fn end(&self) {
        self.done.cancel();
    }
}
