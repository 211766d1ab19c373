//! DELETE on an upload: the termination extension. Works on complete and incomplete uploads;
//! a published asset is left in place (it belongs to the application once published).

use http::{Response, StatusCode};

use super::Ctx;
use crate::error::{Error, Result};
use crate::response::{self, Body};
use crate::upload::UploadId;

pub(super) async fn handle(ctx: &Ctx<'_>, raw_id: &str) -> Result<Response<Body>> {
    let app = ctx.app;
    let id = UploadId::parse(raw_id).ok_or(Error::UploadNotFound)?;
    let _lock = app.locks.lock(&id).await?;
    let info = app.store.info(&id).await?;
    app.store.terminate(&info).await?;
    app.metrics.uploads_terminated.inc();
    tracing::info!(%id, "upload terminated");
    Ok(response::empty(StatusCode::NO_CONTENT))
}
