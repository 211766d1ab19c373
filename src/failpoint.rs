//! Crash injection for the crash tests of finalize: with `TUSGATE_CRASH_AT=<point>` in the
//! environment the process aborts the moment it reaches that point, without unwinding or
//! flushing anything, as a power cut or SIGKILL would leave it. Unset (always, in production)
//! this is one cached environment lookup.

use std::io::Write;
use std::sync::OnceLock;

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
