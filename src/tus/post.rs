//! POST on the collection: creation, creation-with-upload, creation-defer-length and final
//! concatenation. The headers are parsed here, in tusd's order (`PostFile`), and the upload is
//! created by [`lifecycle::create`], which checks the rest; nothing is stored for a rejected
//! request, and a request that fails once its upload exists (from the moment it is created and
//! locked) answers with its `Location`.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{Response, StatusCode};
use http_body::Body as HttpBody;

use super::Ctx;
use super::headers::{self, ConcatRequest, OFFSET_OCTET_STREAM, parse_size};
use crate::error::{Error, Result};
use crate::lifecycle::{self, Chunk, NewConcat, NewUpload};
use crate::response::{self, Body};
use crate::upload::UploadInfo;

pub(super) async fn handle<B>(ctx: &Ctx<'_>, body: B) -> Result<Response<Body>>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let app = ctx.app;
    // Any other Content-Type means "no chunk": some clients always send one.
    let contains_chunk = ctx.header(CONTENT_TYPE) == Some(OFFSET_OCTET_STREAM);
    let concat_header = ctx.header("upload-concat").filter(|h| !h.is_empty());
    if concat_header.is_some() && !app.config.concatenation {
        return Err(Error::ConcatenationUnsupported);
    }
    let concat = concat_header
        .map(|h| headers::parse_concat(h, &app.config.base_path))
        .transpose()?;
    let (length, concat) = match concat {
        Some(ConcatRequest::Final(ids)) => (None, NewConcat::Final(ids)),
        other => {
            let length = headers::parse_creation_length(
                ctx.header("upload-length"),
                ctx.header("upload-defer-length"),
            )?;
            let concat = if other == Some(ConcatRequest::Partial) {
                NewConcat::Partial
            } else {
                NewConcat::None
            };
            (length, concat)
        }
    };
    let new = NewUpload {
        length,
        metadata: headers::parse_metadata(ctx.header("upload-metadata").unwrap_or("")),
        concat,
    };
    let chunk = contains_chunk.then(|| Chunk {
        body,
        content_length: ctx.header(CONTENT_LENGTH).and_then(parse_size),
        checksum: None,
        completes: false,
        overflow_invalidates: false,
    });
    // Once the upload exists, a failure (a full disk while its body is stored, a publish that
    // will be retried) still says where it is, as tusd means to ("to even include it in cases
    // of failure"): a client may resume it, and no answer without a Location leaves bytes
    // behind that could still be published.
    let created = std::sync::OnceLock::new();
    let announce = |info: &UploadInfo| {
        let _ = created.set(info.id.clone());
    };
    let outcome = match lifecycle::create(app, &ctx.caller, new, chunk, announce).await {
        Ok(outcome) => outcome,
        Err(err) => {
            let Some(id) = created.get() else {
                return Err(err);
            };
            let mut response = super::error_response(app, &http::Method::POST, err);
            response::set_header(&mut response, LOCATION, ctx.upload_url(id));
            return Ok(response);
        }
    };
    let info = outcome.info;

    let mut response = response::empty(StatusCode::CREATED);
    if contains_chunk {
        response::set_header(
            &mut response,
            http::HeaderName::from_static("upload-offset"),
            info.offset,
        );
    }
    response::set_header(&mut response, LOCATION, ctx.upload_url(&info.id));
    super::set_expires(ctx, &mut response, &info);
    response::apply_hook(&mut response, &outcome.reply);
    Ok(response)
}
