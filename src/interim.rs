//! Interim (1xx) responses sent before a request's final response: the draft's
//! `104 (Upload Resumption Supported)`, which tells a client where to resume an upload whose
//! creation is still streaming (issue 13). hyper 1.x has no server API for them.
//!
//! STUB: [`Interim::send`] always answers `false` (not sent); the connection layer does not
//! attach an [`Interim`] to requests yet. The draft allows a server to skip the 104.

use http::{HeaderMap, StatusCode};

/// A request's handle for sending interim responses on its connection, found in the
/// request's extensions when the connection can carry them.
#[derive(Debug, Clone, Default)]
pub struct Interim(());

impl Interim {
    /// Sends an informational response (`status` is 1xx) with `headers` ahead of the final
    /// response. Returns whether it was sent (queued in order on the connection).
    pub fn send(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        let _ = (status, headers);
        false
    }
}
