//! HEAD on an upload: where it stands. Exactly tusd's headers (including `Content-Length` equal
//! to `Upload-Length`), plus `Upload-Expires` for an incomplete upload that will expire.

use http::header::{CACHE_CONTROL, CONTENT_LENGTH, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use super::Ctx;
use super::headers::serialize_metadata;
use crate::error::{Error, Result};
use crate::response::{self, Body};
use crate::upload::{Concat, UploadId};

pub(super) async fn handle(ctx: &Ctx<'_>, raw_id: &str) -> Result<Response<Body>> {
    let app = ctx.app;
    let id = UploadId::parse(raw_id).ok_or(Error::UploadNotFound)?;
    let info = {
        let _lock = app.locks.lock(&id).await?;
        app.store.info(&id).await?
    };
    crate::lifecycle::check_not_expired(app, &info)?;

    let mut response = response::empty(StatusCode::OK);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response::set_header(
        &mut response,
        HeaderName::from_static("upload-offset"),
        info.offset,
    );
    match &info.concat {
        Concat::None => {}
        Concat::Partial => {
            response
                .headers_mut()
                .insert("upload-concat", HeaderValue::from_static("partial"));
        }
        Concat::Final(ids) => {
            let urls: Vec<String> = ids.iter().map(|id| ctx.upload_url(id)).collect();
            response::set_header(
                &mut response,
                HeaderName::from_static("upload-concat"),
                format!("final;{}", urls.join(" ")),
            );
        }
    }
    // Never echo a token (uploads created before tokens were dropped at creation still
    // carry theirs): whoever sees an upload URL could replay it.
    let mut metadata = info.metadata.clone();
    metadata.remove("upload-token");
    if !metadata.is_empty() {
        response::set_header(
            &mut response,
            HeaderName::from_static("upload-metadata"),
            serialize_metadata(&metadata),
        );
    }
    match info.length {
        None => {
            response
                .headers_mut()
                .insert("upload-defer-length", HeaderValue::from_static("1"));
        }
        Some(length) => {
            response::set_header(
                &mut response,
                HeaderName::from_static("upload-length"),
                length,
            );
            response::set_header(&mut response, CONTENT_LENGTH, length);
        }
    }
    super::set_expires(ctx, &mut response, &info);
    Ok(response)
}
