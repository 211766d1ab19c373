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

/// Linux's "text file busy": exec of a file open for writing.
const ETXTBSY: i32 = 26;
/// Retries of a spawn that met ETXTBSY (20 ms apart).
const ETXTBSY_RETRIES: usize = 10;

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
        let mut command = tokio::process::Command::new(&path);
        command
            .env("TUS_ID", &upload.id)
            .env("TUS_SIZE", upload.size.to_string())
            .env("TUS_OFFSET", upload.offset.to_string())
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true);
        let mut spawned = command.spawn();
        // ETXTBSY: the script is open for writing somewhere, typically a descriptor another
        // thread's fork inherited for an instant, or an operator replacing the script. It
        // passes; a few short retries spare the upload a refused hook.
        for _ in 0..ETXTBSY_RETRIES {
            match &spawned {
                Err(e) if e.raw_os_error() == Some(ETXTBSY) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    spawned = command.spawn();
                }
                _ => break,
            }
        }
        let mut child = match spawned {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, hook: HookType, body: &str) {
        let path = dir.join(hook.as_str());
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn upload() -> FileInfo {
        FileInfo {
            id: "abc".into(),
            size: 11,
            offset: 5,
            ..FileInfo::default()
        }
    }

    async fn run(
        dir: &Path,
        hook: HookType,
        body: &[u8],
        timeout: Duration,
    ) -> Result<HookResponse, HookError> {
        FileBackend::new(dir, timeout)
            .invoke(hook, Bytes::copy_from_slice(body), &upload())
            .await
    }

    const SECOND: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn the_event_goes_to_stdin_and_stdout_is_the_response() {
        let dir = tempfile::tempdir().expect("tempdir");
        script(
            dir.path(),
            HookType::PreCreate,
            r#"cat > stdin.json
printf '%s %s %s %s' "$TUS_ID" "$TUS_SIZE" "$TUS_OFFSET" "$(pwd)" > env.txt
echo '{"RejectUpload": true, "HTTPResponse": {"StatusCode": 403, "Body": "no"}}'"#,
        );
        let response = run(
            dir.path(),
            HookType::PreCreate,
            b"{\"Type\":\"pre-create\"}",
            SECOND,
        )
        .await
        .expect("response");
        assert!(response.reject_upload);
        assert_eq!(response.http_response.status_code, 403);
        let stdin = std::fs::read(dir.path().join("stdin.json")).expect("stdin");
        assert_eq!(stdin, b"{\"Type\":\"pre-create\"}");
        let env = std::fs::read_to_string(dir.path().join("env.txt")).expect("env");
        assert_eq!(env, format!("abc 11 5 {}", dir.path().display()));
    }

    #[tokio::test]
    async fn empty_output_and_a_missing_executable_mean_no_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        script(dir.path(), HookType::PostFinish, "exit 0");
        for hook in [HookType::PostFinish, HookType::PreFinish] {
            let response = run(dir.path(), hook, b"{}", SECOND).await.expect("ok");
            assert_eq!(response, HookResponse::default());
        }
        // A missing interpreter is ENOENT too: tusd skips such a hook silently as well.
        let path = dir.path().join("pre-terminate");
        std::fs::write(&path, "#!/nonexistent/interpreter\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let response = run(dir.path(), HookType::PreTerminate, b"{}", SECOND).await;
        assert_eq!(response.expect("skipped"), HookResponse::default());
    }

    #[tokio::test]
    async fn failures_are_errors_with_tusds_messages() {
        let dir = tempfile::tempdir().expect("tempdir");
        script(dir.path(), HookType::PreCreate, "echo partial; exit 3");
        let error = run(dir.path(), HookType::PreCreate, b"{}", SECOND)
            .await
            .expect_err("exit 3");
        assert_eq!(
            error.to_string(),
            "unexpected return code 3 from hook endpoint: partial\n"
        );

        script(dir.path(), HookType::PreFinish, "kill -9 $$");
        let error = run(dir.path(), HookType::PreFinish, b"{}", SECOND)
            .await
            .expect_err("killed");
        assert!(
            matches!(error, HookError::Exit { code: -1, .. }),
            "{error:?}"
        );

        script(dir.path(), HookType::PostCreate, "echo not json");
        let error = run(dir.path(), HookType::PostCreate, b"{}", SECOND)
            .await
            .expect_err("bad");
        let message = error.to_string();
        assert!(
            message.starts_with("failed to parse hook response: "),
            "{message}"
        );
        assert!(message.ends_with(", response was: not json\n"), "{message}");

        let path = dir.path().join("post-terminate");
        std::fs::write(&path, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = run(dir.path(), HookType::PostTerminate, b"{}", SECOND).await;
        assert!(
            matches!(error, Err(HookError::Spawn { .. })),
            "not executable: {error:?}"
        );
    }

    #[tokio::test]
    async fn a_hook_that_hangs_is_killed_with_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        script(
            dir.path(),
            HookType::PreCreate,
            "sleep 30 &\necho $! > child.pid\nwait",
        );
        let started = std::time::Instant::now();
        let error = run(
            dir.path(),
            HookType::PreCreate,
            b"{}",
            Duration::from_millis(300),
        )
        .await
        .expect_err("timeout");
        assert!(matches!(error, HookError::FileTimeout { .. }), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        let child: i32 = std::fs::read_to_string(dir.path().join("child.pid"))
            .expect("pid")
            .trim()
            .parse()
            .expect("number");
        // The grandchild got SIGKILL too (it may linger as a zombie of init for a moment).
        let mut gone = false;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "sleep {child} survived");
    }

    #[tokio::test]
    async fn output_and_input_are_bounded_without_deadlock() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Prints more than the bound and never stops by itself.
        script(dir.path(), HookType::PostReceive, "yes");
        let error = run(dir.path(), HookType::PostReceive, b"{}", SECOND).await;
        assert!(
            matches!(error, Err(HookError::ResponseTooLarge { .. })),
            "{error:?}"
        );
        // A large event to a hook that answers before reading (and one that never reads).
        let event = vec![b' '; 4 << 20];
        script(
            dir.path(),
            HookType::PreFinish,
            "echo '{}'; cat > /dev/null",
        );
        assert!(
            run(dir.path(), HookType::PreFinish, &event, SECOND)
                .await
                .is_ok()
        );
        script(dir.path(), HookType::PostFinish, "echo '{}'");
        assert!(
            run(dir.path(), HookType::PostFinish, &event, SECOND)
                .await
                .is_ok()
        );
    }
}
