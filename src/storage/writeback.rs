//! Writeback while an upload's body streams in (local disk, `-fsync` other than `never`).
//!
//! The completion fdatasync must find little left to write: without help the kernel starts
//! writing a file's dirty pages only when its background threshold or a timer says so, so a
//! 1 GiB upload's writeback started at its last byte, and the upload's last response waited
//! for all of it. Instead, every time the file grows past a window boundary, the windows it
//! completed are handed to the kernel's writeback at once, while the next ones arrive.
//!
//! Invariants:
//! - Which windows to start is derived from offsets only (the file's size before and after a
//!   write, see [`completed_windows`]): no per-upload memory, so an upload continued by many
//!   PATCHes, another instance or a restarted process is treated the same.
//! - This is a hint, never the promise: durability still comes from the completion fdatasync
//!   alone, so a failed or skipped hint costs time, never data.
//! - At most one hint per upload is in flight: the next waits for the previous one, so a body
//!   faster than the disk is slowed to the disk's pace by its own upload rather than piling up
//!   dirty pages for every other writer.
//!
//! The primitive is `posix_fadvise(POSIX_FADV_DONTNEED)`, which on Linux starts writeback of
//! the range's dirty pages exactly as `sync_file_range(SYNC_FILE_RANGE_WRITE)` does
//! (`__filemap_fdatawrite_range(..., WB_SYNC_NONE)`). `sync_file_range` itself has no safe
//! wrapper (rustix 1.1 and nix 0.32 lack it, and the crate forbids `unsafe`). The difference:
//! pages of the range that are already clean are also dropped from the page cache; a window is
//! hinted right after it is written, when its pages are dirty, so little is dropped, and an
//! upload server rarely reads back what it just received.

use std::fs::File;
use std::num::NonZeroU64;
use std::ops::Range;

use tokio::task::JoinHandle;

/// Writeback is started per window of this many bytes (aligned to multiples of it).
pub const WINDOW_BYTES: u64 = 8 << 20;

/// The byte range of the whole windows that a file growing from `from` to `to` bytes completed:
/// the windows `[k·w, (k+1)·w)` with `from < (k+1)·w ≤ to`. A window begun by an earlier write
/// (an earlier PATCH, another process) counts for the write that completes it; the tail after
/// the last boundary waits for a later write or the completion fdatasync. `None` when no
/// boundary was crossed.
pub fn completed_windows(from: u64, to: u64, window: u64) -> Option<Range<u64>> {
    let start = from / window * window;
    let end = to / window * window;
    (end > start).then_some(start..end)
}

/// Starts writeback of a file's windows as it grows (see the module doc).
#[derive(Debug)]
pub struct Writeback {
    window: u64,
    in_flight: Option<JoinHandle<()>>,
}

impl Writeback {
    pub fn new(window: u64) -> Self {
        Writeback {
            window,
            in_flight: None,
        }
    }

    /// The file grew from `from` to `to` bytes: starts writeback of the windows that completed,
    /// on the blocking pool (submitting can wait for the device's queue), once the previous
    /// hint has been submitted.
    pub async fn grew(&mut self, file: &File, from: u64, to: u64) {
        let Some(range) = completed_windows(from, to, self.window) else {
            return;
        };
        if let Some(previous) = self.in_flight.take() {
            let _ = previous.await;
        }
        // A descriptor of its own: the write path keeps using `file` meanwhile.
        let Ok(file) = file.try_clone() else {
            return;
        };
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let len = NonZeroU64::new(range.end - range.start);
            let started =
                rustix::fs::fadvise(&file, range.start, len, rustix::fs::Advice::DontNeed);
            if let Err(e) = started {
                tracing::debug!(error = %e, "could not start writeback of an upload window");
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 8;

    #[test]
    fn nothing_until_a_boundary_is_crossed() {
        assert_eq!(completed_windows(0, 0, W), None);
        assert_eq!(completed_windows(0, 7, W), None);
        assert_eq!(completed_windows(3, 7, W), None);
        assert_eq!(completed_windows(8, 15, W), None);
    }

    #[test]
    fn reaching_a_boundary_completes_the_window_before_it() {
        assert_eq!(completed_windows(0, 8, W), Some(0..8));
        assert_eq!(completed_windows(7, 8, W), Some(0..8));
        assert_eq!(completed_windows(8, 16, W), Some(8..16));
    }

    #[test]
    fn a_window_begun_earlier_belongs_to_the_write_that_completes_it() {
        // A PATCH that resumes at 5 and writes to 20: the window 0..8 begun by an earlier
        // PATCH (or process) and 8..16 complete now; 16..20 waits.
        assert_eq!(completed_windows(5, 20, W), Some(0..16));
        // The next PATCH completes 16..24 and 24..32.
        assert_eq!(completed_windows(20, 35, W), Some(16..32));
    }

    #[test]
    fn consecutive_writes_hint_every_window_exactly_once() {
        // Whatever the write sizes, the ranges tile [0, last boundary) without gap or overlap.
        for step in [1, 3, 7, 8, 9, 16, 17, 100] {
            let mut covered = 0;
            let mut offset = 0;
            while offset < 200 {
                let next = offset + step;
                if let Some(range) = completed_windows(offset, next, W) {
                    assert_eq!(range.start, covered, "step {step}");
                    covered = range.end;
                }
                offset = next;
            }
            assert_eq!(covered, offset / W * W, "step {step}");
        }
    }
}
