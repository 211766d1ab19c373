//! The draft's operations over the shared upload lifecycle: each parses nothing itself (a
//! request arrives classified, [`super::request::classify`]), calls [`crate::lifecycle`]
//! exactly as tus 1.0 does, and shapes the draft's response. Locks and hand-over, tokens and
//! publish, expiry, hooks, metrics, fsync policy and the store are therefore the same for
//! both protocols, and so is an upload: either protocol can resume it (see the module doc of
//! [`crate::draft`] for what that means).
//!
//! Invariants:
//! - every response carries `Upload-Draft-Interop-Version` with the request's version, and
//!   every success says `Upload-Complete` (whether the upload is complete);
//! - a mismatching offset and inconsistent lengths are RFC 9457 problem documents with
//!   `Upload-Complete: ?0` (and the resource's `Upload-Offset` for the former); every other
//!   failure is the error catalogue's status with its `ERR_*: reason` body;
//! - a creation that fails once its upload exists still answers with its `Location` (the
//!   upload keeps what arrived and can be resumed);
//! - a 104 goes out at most once per creation with content, after the upload exists and
//!   before a byte of its body is read, and only with `-draft-104` where the connection can
//!   carry it.

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body::Body as HttpBody;

use super::headers::{
    InteropVersion, UPLOAD_COMPLETE, UPLOAD_DRAFT_INTEROP_VERSION, UPLOAD_LENGTH, UPLOAD_LIMIT,
    UPLOAD_OFFSET, UploadLimit, sf_bool,
};
use super::problem::{self, Problem};
use super::request::{self, Operation, RequestError, Target};
use crate::error::Error;
use crate::interim::Interim;
use crate::lifecycle::{self, Append, Chunk, DeclaredLength, NewConcat, NewUpload};
use crate::response::{self, Body};
use crate::tus::Ctx;
use crate::upload::{UploadId, UploadInfo};

/// Why a draft request failed.
#[derive(Debug)]
enum Failure {
    /// Refused by the classification, before any I/O.
    Bad {
        status: StatusCode,
        reason: &'static str,
    },
    Problem(Problem),
    Error(Error),
    /// A creation that failed once its upload existed (a body that broke off, inconsistent
    /// lengths found at its end): the response still says where the upload is, as the 104
    /// did, so a client can resume it.
    Created {
        location: String,
        failure: Box<Failure>,
    },
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// Serves one draft request for `id` (`""` = the collection) and returns the response with
/// the draft's common headers; the caller adds CORS.
pub async fn handle<B>(
    ctx: &Ctx<'_>,
    version: InteropVersion,
    method: &Method,
    id: &str,
    body: B,
    interim: Option<Interim>,
) -> Response<Body>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let target = if id.is_empty() {
        Target::Collection
    } else {
        Target::Upload
    };
    let result = match request::classify(version, method, target, ctx.headers) {
        Err(RequestError::Bad { status, reason }) => Err(Failure::Bad { status, reason }),
        Err(RequestError::Problem(p)) => Err(Failure::Problem(p)),
        Ok(op) => run(ctx, version, op, id, body, interim).await,
    };
    let mut response = match result {
        Ok(response) => response,
        Err(failure) => failure_response(ctx, version, method, failure),
    };
    let headers = response.headers_mut();
    headers.insert(
        UPLOAD_DRAFT_INTEROP_VERSION,
        HeaderValue::from(version.number()),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if *method == Method::HEAD {
        response.headers_mut().remove(http::header::CONTENT_LENGTH);
        response = response::strip_body(response);
    }
    response
}

/// A request whose `Upload-Draft-Interop-Version` names no version tusgate speaks: 400 with
/// the supported ones (the raw value echoed at most 32 characters long).
pub fn unsupported_version(app: &crate::app::App, raw: &str) -> Response<Body> {
    let shown: String = raw.chars().take(32).collect();
    app.metrics
        .errors_total
        .with_label_values(&["400", "ERR_UNSUPPORTED_DRAFT_VERSION"])
        .inc();
    let mut response = response::text(
        StatusCode::BAD_REQUEST,
        format!(
            "ERR_UNSUPPORTED_DRAFT_VERSION: Upload-Draft-Interop-Version {shown:?} is not supported; this server speaks 9, 8, 6 and 5\n"
        ),
    );
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn run<B>(
    ctx: &Ctx<'_>,
    version: InteropVersion,
    op: Operation,
    id: &str,
    body: B,
    interim: Option<Interim>,
) -> Result<Response<Body>>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match op {
        Operation::Options => Ok(options(ctx, version)),
        Operation::Create { complete, length } => {
            create(ctx, version, complete, length, body, interim).await
        }
        Operation::RetrieveOffset => retrieve_offset(ctx, version, id).await,
        Operation::Append {
            offset,
            complete,
            upload_length,
        } => append(ctx, id, offset, complete, upload_length, body).await,
        Operation::Cancel => cancel(ctx, id).await,
    }
}

/// Draft §"Limits": discovery. 200, as tus 1.0's OPTIONS (old browsers reject a 204
/// preflight).
fn options(ctx: &Ctx<'_>, version: InteropVersion) -> Response<Body> {
    let mut response = response::empty(StatusCode::OK);
    set_limit(&mut response, version, &limits(ctx, None));
    response
}

/// Draft §"Upload Creation".
async fn create<B>(
    ctx: &Ctx<'_>,
    version: InteropVersion,
    complete: bool,
    length: Option<u64>,
    body: B,
    interim: Option<Interim>,
) -> Result<Response<Body>>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let new = NewUpload {
        length,
        metadata: super::metadata::from_creation(ctx.headers),
        concat: NewConcat::None,
    };
    let chunk = chunk(ctx, body, complete);
    // A creation without content gets its final response at once: a 104 would tell the
    // client nothing sooner, and behind a proxy that mishandles 1xx it would cost the answer.
    let interim = interim
        .filter(|_| ctx.app.config.draft_104 && request::content_length(ctx.headers) != Some(0));
    let created = std::sync::OnceLock::new();
    let announce = |info: &UploadInfo| {
        let _ = created.set(info.id.clone());
        let Some(interim) = &interim else { return };
        let mut headers = HeaderMap::new();
        if let Ok(url) = HeaderValue::try_from(ctx.upload_url(&info.id)) {
            headers.insert(LOCATION, url);
        }
        headers.insert(
            UPLOAD_DRAFT_INTEROP_VERSION,
            HeaderValue::from(version.number()),
        );
        if let Some(limit) = limits(ctx, Some(info)).to_header(version) {
            if let Ok(limit) = HeaderValue::try_from(limit) {
                headers.insert(UPLOAD_LIMIT, limit);
            }
        }
        let status = StatusCode::from_u16(104).expect("104 is a valid status code");
        interim.send(status, &headers);
    };
    let outcome = lifecycle::create(ctx.app, &ctx.caller, new, Some(chunk), announce)
        .await
        .map_err(Failure::Error)
        .and_then(|outcome| {
            check_completed(complete, &outcome.info)?;
            Ok(outcome)
        })
        .map_err(|failure| match created.get() {
            Some(id) => Failure::Created {
                location: ctx.upload_url(id),
                failure: Box::new(failure),
            },
            None => failure,
        })?;
    let info = outcome.info;
    let mut response = response::empty(StatusCode::CREATED);
    response::set_header(&mut response, LOCATION, ctx.upload_url(&info.id));
    set_state(&mut response, &info);
    if !info.is_complete() {
        set_limit(&mut response, version, &limits(ctx, Some(&info)));
    }
    response::apply_hook(&mut response, &outcome.reply);
    Ok(response)
}

/// Draft §"Offset Retrieval": HEAD (or GET) on the upload. 204 with the state; the lock is
/// taken, so a request still streaming into the upload is ended first (hand-over) and the
/// offset sent is one the next append can use.
async fn retrieve_offset(
    ctx: &Ctx<'_>,
    version: InteropVersion,
    id: &str,
) -> Result<Response<Body>> {
    let app = ctx.app;
    let id = UploadId::parse(id).ok_or(Error::UploadNotFound)?;
    let info = {
        let _lock = app.locks.lock(&id).await.map_err(Error::from)?;
        app.store.info(&id).await.map_err(Error::from)?
    };
    lifecycle::check_not_expired(app, &info)?;
    let mut response = response::empty(StatusCode::NO_CONTENT);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    set_state(&mut response, &info);
    if let Some(length) = info.length {
        response::set_header(
            &mut response,
            HeaderName::from_static(UPLOAD_LENGTH),
            length,
        );
    }
    set_limit(&mut response, version, &limits(ctx, Some(&info)));
    Ok(response)
}

/// Draft §"Upload Append".
async fn append<B>(
    ctx: &Ctx<'_>,
    id: &str,
    offset: u64,
    complete: bool,
    indicated_length: Option<u64>,
    body: B,
) -> Result<Response<Body>>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let id = UploadId::parse(id).ok_or(Error::UploadNotFound)?;
    let append = Append {
        offset,
        length: indicated_length.map(DeclaredLength::Indicated),
        chunk: chunk(ctx, body, complete),
    };
    let outcome = lifecycle::append(ctx.app, &ctx.caller, &id, append)
        .await
        .map_err(|e| match e {
            Error::MismatchedOffset { current } => Failure::Problem(Problem::MismatchingOffset {
                expected: current,
                provided: offset,
            }),
            other => Failure::Error(other),
        })?;
    let info = outcome.info;
    check_completed(complete, &info)?;
    let mut response = response::empty(StatusCode::NO_CONTENT);
    set_state(&mut response, &info);
    response::apply_hook(&mut response, &outcome.reply);
    Ok(response)
}

/// The content of a creation or an append, as the draft delivers it: its `Content-Digest` is
/// checked, `Upload-Complete: ?1` ends an upload of unknown length, and a body past the
/// upload's room invalidates it.
fn chunk<B>(ctx: &Ctx<'_>, body: B, complete: bool) -> Chunk<B> {
    Chunk {
        body,
        content_length: request::content_length(ctx.headers),
        checksum: super::headers::content_digest(ctx.headers),
        completes: complete,
        overflow_invalidates: true,
    }
}

/// Draft §"Upload Cancellation".
async fn cancel(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>> {
    if !ctx.app.config.termination {
        return Err(Failure::Bad {
            status: StatusCode::METHOD_NOT_ALLOWED,
            reason: "cancellation (DELETE) is disabled on this server",
        });
    }
    let id = UploadId::parse(id).ok_or(Error::UploadNotFound)?;
    let reply = lifecycle::terminate(ctx.app, &ctx.caller, &id).await?;
    let mut response = response::empty(StatusCode::NO_CONTENT);
    response::apply_hook(&mut response, &reply);
    Ok(response)
}

/// A request that said it completes the upload, whose body ended whole (a body that broke off
/// is an error already) short of the upload's length: the lengths it implied and the upload's
/// disagree. What arrived is kept; the upload stays resumable.
fn check_completed(complete: bool, info: &UploadInfo) -> Result<()> {
    if complete && !info.is_complete() {
        return Err(Failure::Problem(Problem::InconsistentLength));
    }
    Ok(())
}

/// `Upload-Complete` and `Upload-Offset` of an upload as it stands. Complete means every byte
/// of its length is stored: tusgate finishes (and publishes) an upload then, whether or not
/// the request that stored its last byte said `Upload-Complete: ?1`.
fn set_state(response: &mut Response<Body>, info: &UploadInfo) {
    let headers = response.headers_mut();
    headers.insert(
        UPLOAD_COMPLETE,
        HeaderValue::from_static(sf_bool(info.is_complete())),
    );
    headers.insert(UPLOAD_OFFSET, HeaderValue::from(info.offset));
}

fn set_limit(response: &mut Response<Body>, version: InteropVersion, limit: &UploadLimit) {
    if let Some(value) = limit.to_header(version) {
        response::set_header(response, HeaderName::from_static(UPLOAD_LIMIT), value);
    }
}

/// The limits of an upload (or, with `None`, of a new one): `-max-size`, and the remaining
/// lifetime of an incomplete upload under `-upload-expiry`. There are no per-request size
/// limits: any append size works.
fn limits(ctx: &Ctx<'_>, info: Option<&UploadInfo>) -> UploadLimit {
    let max_age = info
        .and_then(|info| lifecycle::expires_at(ctx.app, info))
        .map(|at| {
            at.duration_since(SystemTime::now())
                .map_or(0, |left| left.as_secs())
        });
    UploadLimit {
        max_size: ctx.app.config.max_size,
        max_age,
        ..UploadLimit::default()
    }
}

fn failure_response(
    ctx: &Ctx<'_>,
    version: InteropVersion,
    method: &Method,
    failure: Failure,
) -> Response<Body> {
    let app = ctx.app;
    match failure {
        Failure::Created { location, failure } => {
            let mut response = failure_response(ctx, version, method, *failure);
            response::set_header(&mut response, LOCATION, location);
            response
        }
        Failure::Bad { status, reason } => {
            app.metrics
                .errors_total
                .with_label_values(&[status.as_str(), "ERR_DRAFT_REQUEST"])
                .inc();
            response::text(status, format!("ERR_DRAFT_REQUEST: {reason}\n"))
        }
        Failure::Problem(problem) => problem_response(ctx, problem),
        Failure::Error(Error::InconsistentLength) => {
            problem_response(ctx, Problem::InconsistentLength)
        }
        Failure::Error(Error::ChecksumMismatch) => {
            // tus 1.0's 460 is its checksum extension's own status; the draft names none, and a
            // request whose content fails its Content-Digest is a bad request. Nothing of it
            // was kept, so the client may send it again.
            let err = Error::ChecksumMismatch;
            app.metrics
                .errors_total
                .with_label_values(&["400", err.code()])
                .inc();
            response::text(
                StatusCode::BAD_REQUEST,
                format!(
                    "{}: the content does not match its Content-Digest; nothing of it was kept\n",
                    err.code()
                ),
            )
        }
        Failure::Error(err) => {
            let too_large = err.status() == StatusCode::PAYLOAD_TOO_LARGE;
            let mut response = crate::tus::error_response(app, method, err);
            if too_large {
                // Draft §"Limits": a 413 from the upload's limits says which.
                set_limit(&mut response, version, &limits(ctx, None));
            }
            response
        }
    }
}

fn problem_response(ctx: &Ctx<'_>, problem: Problem) -> Response<Body> {
    let status = problem.status();
    ctx.app
        .metrics
        .errors_total
        .with_label_values(&[status.as_str(), problem_code(&problem)])
        .inc();
    let mut response = response::text(status, problem.body());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(problem::CONTENT_TYPE),
    );
    for (name, value) in problem.headers() {
        response::set_header(&mut response, HeaderName::from_static(name), value);
    }
    response
}

fn problem_code(problem: &Problem) -> &'static str {
    match problem {
        Problem::MismatchingOffset { .. } => "ERR_MISMATCHED_OFFSET",
        Problem::InconsistentLength => "ERR_INCONSISTENT_UPLOAD_LENGTH",
    }
}
