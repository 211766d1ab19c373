//! The file hook backend (`-hooks-dir`): tusd's `pkg/hooks/file`.
//!
//! The executable `<dir>/<event>` runs with the JSON on stdin, `TUS_ID`, `TUS_SIZE` and
//! `TUS_OFFSET` added to tusgate's environment, the directory as working directory and
//! tusgate's stderr. Its stdout is the response (empty = no changes); a non-zero exit is an
//! error; a missing executable (or a missing interpreter on its `#!` line: both are ENOENT to
//! exec) means the event is not handled, silently, as in tusd.
//!
//! tusd waits for a hook forever and reads all it prints. Here a hook runs in its own process
//! group, which is killed (SIGKILL) when the hook outlives `--hooks-dir-timeout`, prints more
//! than [`MAX_OUTPUT`] bytes, or its caller goes away (a client that disconnects during
//! pre-create), so neither a hung script nor one of its children can hold a request, an
//! upload lock or shutdown forever.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{FileInfo, HookError, HookResponse, HookType};

/// Most bytes of stdout read from a hook. A response is a small JSON object; anything near
/// this size is a script printing its debug output to stdout, which tusd would fail to parse
/// anyway. 1 MiB leaves room for a large `HTTPResponse.Body`.
pub const MAX_OUTPUT: usize = 1 << 20;

#[derive(Debug)]
pub(crate) struct FileBackend {
    dir: PathBuf,
    timeout: Duration,
}

impl FileBackend {
    pub(crate) fn new(dir: &Path, timeout: Duration) -> FileBackend {
        FileBackend {
            dir: dir.to_owned(),
            timeout,
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn path(&self, hook: HookType) -> PathBuf {
        self.dir.join(hook.as_str())
    }

    pub(crate) async fn invoke(
        &self,
        hook: HookType,
        body: Bytes,
        upload: &FileInfo,
    ) -> Result<HookResponse, HookError> {
        let path = self.path(hook);
        let mut child = match tokio::process::Command::new(&path)
            .env("TUS_ID", &upload.id)
            .env("TUS_SIZE", upload.size.to_string())
            .env("TUS_OFFSET", upload.offset.to_string())
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(HookResponse::default());
            }
            Err(e) => {
                return Err(HookError::Spawn {
                    path,
                    error: e.to_string(),
                });
            }
        };
        let group = GroupKiller(child.id());
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(HookError::Spawn {
                path,
                error: "no pipes to the process".into(),
            });
        };
        let run = async {
            // Written while stdout is read: a hook that prints before reading all of a large
            // event must not deadlock. A hook that exits without reading is fine (EPIPE is
            // ignored, as Go's exec does).
            let feed = async move {
                let _ = stdin.write_all(&body).await;
                drop(stdin);
            };
            let read = async {
                let mut output = Vec::new();
                let read = stdout
                    .take(MAX_OUTPUT as u64 + 1)
                    .read_to_end(&mut output)
                    .await;
                read.map(|_| output)
            };
            let ((), output) = tokio::join!(feed, read);
            let output = output.map_err(|e| HookError::Spawn {
                path: path.clone(),
                error: format!("reading its output: {e}"),
            })?;
            if output.len() > MAX_OUTPUT {
                return Err(HookError::ResponseTooLarge {
                    limit: MAX_OUTPUT as u64,
                });
            }
            let status = child.wait().await.map_err(|e| HookError::Spawn {
                path: path.clone(),
                error: e.to_string(),
            })?;
            Ok((status, output))
        };
        let (status, output) = match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => return Err(e), // `group` kills what is left on drop
            Err(_) => {
                return Err(HookError::FileTimeout {
                    path: self.path(hook),
                    timeout: self.timeout,
                });
            }
        };
        group.disarm();
        if !status.success() {
            return Err(HookError::Exit {
                // Go's ExitCode(): -1 when killed by a signal.
                code: status.code().unwrap_or(-1),
                output: String::from_utf8_lossy(&output).into_owned(),
            });
        }
        if output.is_empty() {
            return Ok(HookResponse::default());
        }
        serde_json::from_slice(&output).map_err(|e| HookError::InvalidResponse {
            error: e.to_string(),
            output: Some(String::from_utf8_lossy(&output).into_owned()),
        })
    }
}

/// Kills the hook's process group when dropped armed (timeout, error, caller gone).
struct GroupKiller(Option<u32>);

impl GroupKiller {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        let pid = self
            .0
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            // The group outlives its leader while any member lives, so its id is not reused
            // before this; ESRCH (all gone) is fine.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}
