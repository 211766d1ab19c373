//! OPTIONS: protocol discovery, on any path, without authentication or version check. 200
//! rather than 204, as tusd answers, because some old browsers reject a 204 preflight.

use http::{Response, StatusCode};

use super::Ctx;
use super::headers::ChecksumAlgorithm;
use crate::response::{self, Body};

pub(super) fn handle(ctx: &Ctx<'_>) -> Response<Body> {
    let mut response = response::empty(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(
        "tus-version",
        http::HeaderValue::from_static(super::TUS_VERSION),
    );
    headers.insert(
        "tus-checksum-algorithm",
        http::HeaderValue::from_static(ChecksumAlgorithm::ADVERTISED),
    );
    response::set_header(
        &mut response,
        http::HeaderName::from_static("tus-extension"),
        super::extensions(ctx.app),
    );
    if let Some(max) = ctx.app.config.max_size {
        response::set_header(
            &mut response,
            http::HeaderName::from_static("tus-max-size"),
            max,
        );
    }
    response
}
