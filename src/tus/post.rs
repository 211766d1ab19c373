//! POST on the collection: creation, creation-with-upload, creation-defer-length and final
//! concatenation. Checks run in tusd's order (`PostFile`); nothing is stored for a rejected
//! request.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{Response, StatusCode};
use http_body::Body as HttpBody;

use super::Ctx;
use super::headers::{self, ConcatRequest, OFFSET_OCTET_STREAM};
use super::write::{concatenate, finish_if_complete, write_chunk};
use crate::error::{Error, Result};
use crate::response::{self, Body};
use crate::upload::{Concat, Target, UploadId, UploadInfo};

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

    let mut partials = Vec::new();
    let (length, concat) = match concat {
        Some(ConcatRequest::Final(ids)) => {
            if contains_chunk {
                return Err(Error::ModifyFinal);
            }
            let mut size = 0u64;
            for id in &ids {
                let partial = app.store.info(id).await?;
                if !partial.is_complete() {
                    return Err(Error::UploadNotFinished);
                }
                size = size.saturating_add(partial.offset);
                partials.push(partial);
            }
            (Some(size), Concat::Final(ids))
        }
        other => {
            let length = headers::parse_creation_length(
                ctx.header("upload-length"),
                ctx.header("upload-defer-length"),
            )?;
            let concat = if other == Some(ConcatRequest::Partial) {
                Concat::Partial
            } else {
                Concat::None
            };
            (length, concat)
        }
    };
    if let (Some(max), Some(length)) = (app.config.max_size, length) {
        if length > max {
            return Err(Error::MaxSizeExceeded);
        }
    }
    let mut metadata = headers::parse_metadata(ctx.header("upload-metadata").unwrap_or(""));
    let target = app.config.tokens.check_creation(&metadata)?;
    // The token did its job. Kept, it would be echoed by HEAD to anyone holding the upload
    // URL (URLs are logged) and could be replayed until it expires.
    metadata.remove("upload-token");
    check_partials_in_scope(&partials, target.as_ref())?;
    if let (Some(target), false) = (&target, concat == Concat::Partial) {
        app.store.check_publishable(&target.path).await?;
        if app.config.overwrite == crate::storage::Overwrite::Keep
            && app.store.open_asset(target.path.as_bytes()).await.is_ok()
        {
            return Err(Error::AssetExists);
        }
    }

    let partial = concat == Concat::Partial;
    let mut info = UploadInfo::new(UploadId::generate(), length, metadata, concat);
    // A partial never publishes on its own; it remembers its token's target as its scope.
    if partial {
        info.scope = target;
    } else {
        info.target = target;
    }
    app.store.create(&info).await?;
    app.metrics.uploads_created.inc();
    let url = ctx.upload_url(&info.id);
    tracing::info!(id = %info.id, size = ?length, %url, "upload created");

    let lock = app.locks.lock(&info.id).await?;
    let mut response = response::empty(StatusCode::CREATED);
    if !partials.is_empty() {
        info = concatenate(ctx, info, partials, lock).await?;
    } else if contains_chunk {
        info = write_chunk(ctx, info, body, lock, None).await?;
        response::set_header(
            &mut response,
            http::HeaderName::from_static("upload-offset"),
            info.offset,
        );
    } else {
        info = finish_if_complete(ctx, info, lock).await?;
    }
    response::set_header(&mut response, LOCATION, url);
    super::set_expires(ctx, &mut response, &info);
    Ok(response)
}

/// A final may combine only uploads created as partials under the same token scope: the same
/// key, visibility and content type, or, for a tokenless final, tokenless partials. Anything
/// else would let one token holder read another's upload by concatenating it into their own
/// asset.
fn check_partials_in_scope(partials: &[UploadInfo], target: Option<&Target>) -> Result<()> {
    for partial in partials {
        if partial.concat != Concat::Partial {
            return Err(Error::ConcatNotAllowed(
                "a final upload may only list uploads created with Upload-Concat: partial",
            ));
        }
        if partial.scope.as_ref() != target {
            return Err(Error::ConcatNotAllowed(
                "a final upload may only list partial uploads created with the same upload token scope (asset-key, visibility, content-type)",
            ));
        }
    }
    Ok(())
}
