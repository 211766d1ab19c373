//! The tus 1.0 protocol: the dispatcher below does what tusd's middleware and router do, in
//! tusd's order, then hands the request to one handler per method:
//!
//! 1. `X-HTTP-Method-Override` replaces the method (POST only, as tusd);
//! 2. the request is counted; CORS is checked (a disallowed origin is 403);
//! 3. `OPTIONS` answers discovery on any path;
//! 4. methods other than GET/HEAD need `Tus-Resumable: 1.0.0` (else 412);
//! 5. routing: the collection takes POST, an upload takes HEAD/PATCH/GET/DELETE, anything
//!    else is 405.
//!
//! A request with `Upload-Draft-Interop-Version` is the IETF draft's, served by
//! [`crate::draft`] after step 2 (the method override applies, as in tusd, because
//! tus-js-client's `overridePatchMethod` works in its draft modes too; no `Tus-Resumable`).
//!
//! Every tus 1.0 response, errors included, carries `Tus-Resumable` and `X-Content-Type-Options`,
//! and the CORS headers when the request had an allowed `Origin`.

mod delete;
mod get;
mod head;
pub mod headers;
mod options;
mod patch;
mod post;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HOST, HeaderMap, HeaderName, HeaderValue, ORIGIN};
use http::{Method, Request, Response};
use http_body::Body as HttpBody;

use crate::app::App;
use crate::draft::{self, headers::Protocol};
use crate::error::Error;
use crate::hooks::HttpRequest;
use crate::interim::Interim;
use crate::lifecycle::Caller;
use crate::response::{self, Body};
use crate::upload::{UploadId, UploadInfo};

pub use headers::TUS_VERSION;

/// `Tus-Extension`: tusd's list in tusd's order, then what tusd lacks.
pub fn extensions(app: &App) -> String {
    let mut list = vec!["creation", "creation-with-upload"];
    if app.config.termination {
        list.push("termination");
    }
    if app.config.concatenation {
        list.push("concatenation");
    }
    list.push("creation-defer-length");
    list.push("checksum");
    if app.config.upload_expiry.is_some() {
        list.push("expiration");
    }
    list.join(",")
}

/// What every handler gets: the app and the parts of the request it may look at.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub app: &'a Arc<App>,
    pub headers: &'a HeaderMap,
    authority: Option<&'a str>,
    /// The request as hooks describe it.
    pub caller: Caller,
}

impl<'a> Ctx<'a> {
    /// A request header as text; absent and non-text values are both `None`.
    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The absolute URL of an upload, as tusd builds it (see [`headers::host_and_proto`]).
    pub fn upload_url(&self, id: &UploadId) -> String {
        let host = self.header(HOST).or(self.authority).unwrap_or("");
        // Every connection is TLS when the server terminates it (tusd: `r.TLS != nil`).
        let tls = self.app.config.tls.is_some();
        let (host, proto) =
            headers::host_and_proto(host, tls, self.app.config.behind_proxy, |name| {
                self.header(name)
            });
        format!("{proto}://{host}{}{id}", self.app.config.base_path)
    }
}

/// Adds `Upload-Expires` for an incomplete, expiring upload.
pub fn set_expires(ctx: &Ctx<'_>, response: &mut Response<Body>, info: &UploadInfo) {
    if let Some(at) = crate::lifecycle::expires_at(ctx.app, info) {
        response::set_header(
            response,
            HeaderName::from_static("upload-expires"),
            httpdate::fmt_http_date(at),
        );
    }
}

/// Handles a request whose path is under the base path; `rest` is the path after it.
pub async fn handle<B>(app: &Arc<App>, request: Request<B>, rest: &str) -> Response<Body>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let mut method = parts.method.clone();
    if method == Method::POST {
        if let Some(over) = parts
            .headers
            .get("x-http-method-override")
            .filter(|v| !v.is_empty())
        {
            if let Ok(over) = Method::from_bytes(over.as_bytes()) {
                method = over;
            }
        }
    }
    app.metrics.count_request(&method);

    let cors_headers = match (&app.config.cors, parts.headers.get(ORIGIN)) {
        (Some(cors), Some(origin)) if !origin.is_empty() => {
            match cors.headers_for(origin, method == Method::OPTIONS) {
                Some(headers) => Some(headers),
                None => return error_response(app, &method, Error::OriginNotAllowed),
            }
        }
        _ => None,
    };

    let caller = Caller::new(&app.hooks, || {
        let remote = parts
            .extensions
            .get::<crate::server::RemoteAddr>()
            .and_then(|r| r.0);
        HttpRequest::from_parts(&method, &parts.uri, parts.version, &parts.headers, remote)
    });
    let ctx = Ctx {
        app,
        headers: &parts.headers,
        authority: parts.uri.authority().map(|a| a.as_str()),
        caller,
    };
    let id = rest.trim_matches('/');
    let protocol = if app.config.draft {
        draft::headers::protocol(&parts.headers)
    } else {
        Protocol::Tus
    };
    match protocol {
        Protocol::Tus => {}
        Protocol::Draft(version) => {
            let interim = parts.extensions.get::<Interim>().cloned();
            let response = draft::handle(&ctx, version, &method, id, body, interim).await;
            return with_cors(response, cors_headers);
        }
        Protocol::UnsupportedDraft(raw) => {
            return with_cors(draft::unsupported_version(app, &raw), cors_headers);
        }
    }
    let result = if method == Method::OPTIONS {
        Ok(options::handle(&ctx))
    } else if method != Method::GET
        && method != Method::HEAD
        && ctx.header("tus-resumable") != Some(TUS_VERSION)
    {
        Err(Error::UnsupportedVersion)
    } else if id.is_empty() {
        match method {
            Method::POST => post::handle(&ctx, body).await,
            _ => Err(Error::MethodNotAllowed { allow: "POST" }),
        }
    } else {
        let upload_methods = Error::MethodNotAllowed {
            allow: "GET, HEAD, PATCH, DELETE",
        };
        match method {
            Method::HEAD => head::handle(&ctx, id).await,
            Method::PATCH => patch::handle(&ctx, id, body).await,
            Method::GET if app.config.download => get::handle(&ctx, id).await,
            Method::DELETE if app.config.termination => delete::handle(&ctx, id).await,
            _ => Err(upload_methods),
        }
    };
    let mut response = match result {
        Ok(response) => response,
        Err(err) => error_response(app, &method, err),
    };
    let headers = response.headers_mut();
    headers.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Some(cors_headers) = cors_headers {
        headers.extend(cors_headers);
    }
    response
}

/// A draft response with the CORS headers of an allowed `Origin`, as every tus 1.0 one has.
fn with_cors(mut response: Response<Body>, cors_headers: Option<HeaderMap>) -> Response<Body> {
    if let Some(cors_headers) = cors_headers {
        response.headers_mut().extend(cors_headers);
    }
    response
}

/// The response for a failed request: tusd's `ERR_CODE: message` body (none for HEAD).
pub(crate) fn error_response(app: &App, method: &Method, err: Error) -> Response<Body> {
    let status = err.status();
    match &err {
        Error::Storage(source) => tracing::error!(error = %source, "storage failure"),
        Error::StorageFull => tracing::warn!("storage full: request refused"),
        _ => {}
    }
    app.metrics
        .errors_total
        .with_label_values(&[status.as_str(), err.code()])
        .inc();
    let mut response = response::text(status, err.body());
    if let Some(reply) = err.hook_reply() {
        response::apply_hook(&mut response, reply);
    }
    if let Error::UnsupportedVersion = err {
        // The spec requires it; tusd omits it (a documented difference).
        response
            .headers_mut()
            .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    }
    match err {
        Error::MismatchedOffset { current } => {
            response::set_header(
                &mut response,
                HeaderName::from_static("upload-offset"),
                current,
            );
        }
        // The holder is busy (a long publish); the request may simply be repeated.
        Error::UploadLocked => {
            response::set_header(&mut response, http::header::RETRY_AFTER, 1);
        }
        _ => {}
    }
    if let Error::MethodNotAllowed { allow } = err {
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static(allow));
        response.headers_mut().remove(http::header::CONTENT_TYPE);
    }
    if *method == Method::HEAD {
        response.headers_mut().remove(http::header::CONTENT_LENGTH);
        response = response::strip_body(response);
    }
    response
}
