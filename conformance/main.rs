//! The tus conformance suite: black-box tests of a running server, organised by tusd v2.10's
//! behaviour matrix (`shared/reference/tusd-behaviour.md` §2) and the tus 1.0 spec sections.
//! The same cases run against tusgate and against tusd itself (`CONFORMANCE_TARGET=tusd`), so
//! they describe real tusd behaviour; where tusgate differs on purpose the test says so through
//! [`differs`] and README.md lists the difference.

// Shared with the `publish` target, which uses parts this one does not.
#[allow(dead_code)]
mod harness;

mod body;
mod checksum;
mod concat;
mod connections;
mod core;
mod cors;
mod delete;
mod draft;
mod expiration;
mod get;
mod head;
mod interim;
mod logging;
mod metrics;
mod options;
mod patch;
mod post;
mod proxy;

use harness::Target;

/// Picks the expectation for the target: tusd's, or tusgate's deliberate difference.
pub(crate) fn differs<T>(tusd: T, tusgate: T) -> T {
    match harness::target() {
        Target::Tusd => tusd,
        Target::Tusgate => tusgate,
    }
}

pub(crate) fn is_tusgate() -> bool {
    harness::target() == Target::Tusgate
}
