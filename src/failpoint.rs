//! Fault injection for the crash and contention tests, driven by the environment and inert
//! without it (in production these variables are never set; each point costs one cached
//! lookup):
//! - `TUSGATE_CRASH_AT=<point>`: the process aborts the moment it reaches that point, without
//!   unwinding or flushing anything, as a power cut or SIGKILL would leave it;
//! - `TUSGATE_PAUSE_AT=<point>:<milliseconds>`: the task reaching that point sleeps that long
//!   first, as a slow disk or store would make it (to hold an upload's lock, for example).

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

/// Aborts the process if `TUSGATE_CRASH_AT` names this point.
pub fn hit(point: &str) {
    static CRASH_AT: OnceLock<Option<String>> = OnceLock::new();
    if CRASH_AT
        .get_or_init(|| std::env::var("TUSGATE_CRASH_AT").ok())
        .as_deref()
        == Some(point)
    {
        // Not `eprintln!`: it panics on a closed stderr, which would unwind instead of abort.
        let _ = writeln!(
            std::io::stderr(),
            "tusgate: crashing at {point} (TUSGATE_CRASH_AT)"
        );
        std::process::abort();
    }
}

/// Sleeps if `TUSGATE_PAUSE_AT` names this point.
pub async fn pause(point: &str) {
    static PAUSE_AT: OnceLock<Option<(String, Duration)>> = OnceLock::new();
    let configured = PAUSE_AT.get_or_init(|| {
        let value = std::env::var("TUSGATE_PAUSE_AT").ok()?;
        let (name, millis) = value.rsplit_once(':')?;
        Some((name.to_owned(), Duration::from_millis(millis.parse().ok()?)))
    });
    if let Some((name, duration)) = configured {
        if name == point {
            tokio::time::sleep(*duration).await;
        }
    }
}
