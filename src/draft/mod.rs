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
//! How it serves: [`crate::tus`]'s dispatcher counts the request, checks CORS and hands a
//! request with a supported version to [`handler`], which classifies it ([`request`]) and runs
//! it over [`crate::lifecycle`], the same as tus 1.0. A present but unsupported version is a
//! 400 naming the supported ones; with `-enable-experimental-protocol=false` the header is
//! ignored and the request is tus 1.0's.
//!
//! Decisions where the draft leaves room (the README's "IETF resumable upload draft" section
//! says the same for users):
//! - **one upload, two protocols**: an upload is an upload; either protocol may resume one the
//!   other created (a tus 1.0 client resuming a draft upload, or the reverse), because the
//!   capability is the same upload URL and the state underneath is the same. Only concatenation
//!   stays tus 1.0's: a draft append to a final upload is refused as tus refuses it;
//! - **complete means every byte of the length**: as in tus 1.0, an upload whose offset
//!   reaches its known length is finished (and published) at once, even by a request that said
//!   `Upload-Complete: ?0`; its response then says `Upload-Complete: ?1`. A request saying
//!   `?1` whose body ended whole short of the length is the inconsistent-length problem (what
//!   arrived is kept); with no length known, `?1` makes the length what was stored;
//! - **tokens** travel in `Upload-Metadata` (tus 1.0's format), an extension of the draft:
//!   granite-assets signs nothing new, and tus-js-client sends it in its draft modes. Not in the
//!   upload URL's query: URLs end up in logs;
//! - **creation** is POST, PUT or PATCH on the collection (the draft allows any method with
//!   content; tus-js-client and URLSession POST); all three answer 201. PATCH on an upload
//!   resource stays an append;
//! - **responses**: creation 201 with `Location`, append and offset retrieval 204, cancel 204,
//!   OPTIONS 200 with `Upload-Limit`; a completed upload answers an append at its length with a
//!   replay of 204 `Upload-Complete: ?1`; GET on an upload is offset retrieval;
//! - **104** goes out only with `-draft-104` (see [`crate::interim`]).

mod handler;
pub mod headers;
pub mod metadata;
pub mod problem;
pub mod request;
pub mod sf;

pub use handler::{handle, unsupported_version};
