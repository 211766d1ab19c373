//! "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload, the IETF successor of
//! tus 1.0; issue 13) beside tus 1.0 on the same endpoint, chosen per request by the
//! `Upload-Draft-Interop-Version` header ([`headers::protocol`]).
//!
//! Named `draft` rather than `rufh`: everything here is keyed on a draft interop version
//! (9, 8, 6, 5), and the published RFC will drop that header, so it will need its own
//! dispatch; the name says what this code is until then.
//!
//! What it owns: the draft's wire format (pure: [`sf`] for RFC 9651 structured fields,
//! [`headers`] for the draft's fields, [`problem`] for RFC 9457 problem documents) and the
//! classification of a draft request into an operation ([`request`]).
//!
//! STATUS (issue 13, branch `ietf-draft`, to be continued):
//! - done: step 1, the pure parsing and problem documents, and the pure request
//!   classification (creation by POST on the collection only; PUT/PATCH creation, which the
//!   draft allows, is not offered: PATCH on an upload is append, and no client we target
//!   creates by PUT), all unit tested;
//! - not done: the handlers (creation, offset retrieval, append, cancel, OPTIONS) over
//!   `src/lifecycle` and their routing in `src/app.rs`; the token carried in `Upload-Metadata`
//!   as an extension; `Content-Type`/`Content-Disposition` → asset type and filename; the
//!   conformance module `conformance/draft.rs`; 104 interim responses; tus-js-client's
//!   draft modes; tusd comparisons; S3 end to end; the README section.
//! - open: the current draft (-15) defines no "completed upload" problem type (drafts -04
//!   on mention one in their change logs); appending to a completed upload is for the
//!   handlers to decide (the draft allows replaying the final response).
//! - open: OPTIONS *with* `Upload-Complete` is classified 405 (it would be a creation with
//!   no content by OPTIONS; the draft only defines discovery without it).

pub mod headers;
pub mod problem;
pub mod request;
pub mod sf;
