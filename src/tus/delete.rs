//! DELETE on an upload: the termination extension (see [`lifecycle::terminate`]).

use http::{Response, StatusCode};

use super::Ctx;
use crate::error::{Error, Result};
use crate::lifecycle;
use crate::response::{self, Body};
use crate::upload::UploadId;

pub(super) async fn handle(ctx: &Ctx<'_>, raw_id: &str) -> Result<Response<Body>> {
    let id = UploadId::parse(raw_id).ok_or(Error::UploadNotFound)?;
    let reply = lifecycle::terminate(ctx.app, &ctx.caller, &id).await?;
    let mut response = response::empty(StatusCode::NO_CONTENT);
    response::apply_hook(&mut response, &reply);
    Ok(response)
}
