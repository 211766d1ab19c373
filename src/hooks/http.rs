//! The HTTP hook backend (`-hooks-http`): tusd's `pkg/hooks/http` over reqwest.
//!
//! One POST per event with the JSON body, `Content-Type: application/json` and the client
//! request's headers named by `-hooks-http-forward-headers`. Attempts, backoff, timeout and
//! the checks on the answer follow tusd (see the module doc of [`crate::hooks`]).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use super::wire::canonical_header_key;
use super::{HookError, HookResponse};

#[derive(Debug)]
pub(crate) struct HttpBackend {
    client: reqwest::Client,
    url: reqwest::Url,
    attempts: u32,
    backoff: Duration,
    /// (canonical name looked up in the client request, name sent to the endpoint).
    forward_headers: Vec<(String, HeaderName)>,
    timeout: Duration,
    size_limit: u64,
}

pub(crate) struct HttpBackendConfig<'a> {
    pub(crate) url: &'a str,
    pub(crate) attempts: u32,
    pub(crate) backoff: Duration,
    pub(crate) forward_headers: &'a [String],
    pub(crate) timeout: Duration,
    pub(crate) size_limit: u64,
    pub(crate) skip_verify: bool,
}

impl HttpBackend {
    pub(crate) fn new(config: &HttpBackendConfig<'_>) -> Result<HttpBackend, String> {
        let url = parse_url(config.url)?;
        let forward_headers = config
            .forward_headers
            .iter()
            .map(|name| name.trim())
            .filter(|name| !name.is_empty())
            .map(|name| {
                HeaderName::try_from(name)
                    .map(|sent| (canonical_header_key(name), sent))
                    .map_err(|_| {
                        format!("--hooks-http-forward-headers: {name:?} is not a header name")
                    })
            })
            .collect::<Result<_, _>>()?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("tusgate/", env!("CARGO_PKG_VERSION")))
            // Go's transport: 30 s to connect, keep-alive pool, redirects followed (10).
            .connect_timeout(Duration::from_secs(30))
            .danger_accept_invalid_certs(config.skip_verify)
            .build()
            .map_err(|e| format!("cannot set up the HTTP hook client: {e}"))?;
        Ok(HttpBackend {
            client,
            url,
            attempts: config.attempts.max(1),
            backoff: config.backoff,
            forward_headers,
            timeout: config.timeout,
            size_limit: config.size_limit,
        })
    }

    pub(crate) fn url(&self) -> &str {
        self.url.as_str()
    }

    /// One hook call: the whole exchange, retries and backoffs included, within the timeout
    /// (tusd puts them all under one context deadline).
    pub(crate) async fn invoke(
        &self,
        body: Bytes,
        request_headers: &BTreeMap<String, Vec<String>>,
    ) -> Result<HookResponse, HookError> {
        match tokio::time::timeout(self.timeout, self.exchange(body, request_headers)).await {
            Ok(result) => result,
            Err(_) => Err(HookError::Timeout {
                url: self.url.to_string(),
                timeout: self.timeout,
            }),
        }
    }

    async fn exchange(
        &self,
        body: Bytes,
        request_headers: &BTreeMap<String, Vec<String>>,
    ) -> Result<HookResponse, HookError> {
        let mut headers = http::HeaderMap::new();
        for (lookup, sent) in &self.forward_headers {
            for value in request_headers.get(lookup).into_iter().flatten() {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.append(sent.clone(), value);
                }
            }
        }
        // Set after the forwarded ones, as tusd does: it always wins.
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let mut attempt = 1;
        let mut response = loop {
            let sent = self
                .client
                .post(self.url.clone())
                .headers(headers.clone())
                .body(body.clone())
                .send()
                .await;
            // pester (tusd's retrying client) tries again on a transport error or a 5xx, not
            // on 429; the last attempt's answer is used whatever it is.
            let retry = match &sent {
                Ok(response) => response.status().is_server_error(),
                Err(_) => true,
            };
            if !retry || attempt >= self.attempts {
                break sent.map_err(|e| HookError::Transport {
                    url: self.url.to_string(),
                    error: error_chain(&e),
                })?;
            }
            drop(sent);
            attempt += 1;
            tokio::time::sleep(self.backoff).await;
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        // Read one byte past the limit to tell "at the limit" from "over it", like tusd.
        let mut body = Vec::new();
        let cap = usize::try_from(self.size_limit.saturating_add(1)).unwrap_or(usize::MAX);
        while body.len() < cap {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let take = chunk.len().min(cap - body.len());
                    body.extend_from_slice(&chunk[..take]);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(HookError::Transport {
                        url: self.url.to_string(),
                        error: error_chain(&e),
                    });
                }
            }
        }
        if !(200..300).contains(&status) {
            return Err(HookError::Status {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        if body.len() as u64 > self.size_limit {
            return Err(HookError::ResponseTooLarge {
                limit: self.size_limit,
            });
        }
        check_content_type(content_type.as_deref())?;
        serde_json::from_slice(&body).map_err(|e| HookError::InvalidResponse {
            error: e.to_string(),
            output: None,
        })
    }
}

/// The endpoint must be an absolute http(s) URL; tusd would fail every call instead.
fn parse_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("--hooks-http: {url:?} is not a URL ({e})"))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host_str().is_some() => Ok(parsed),
        _ => Err(format!(
            "--hooks-http: {url:?} must be an http:// or https:// URL with a host"
        )),
    }
}

/// tusd requires `Content-Type: application/json` (parameters allowed, any case), parsed
/// like Go's `mime.ParseMediaType`.
fn check_content_type(value: Option<&str>) -> Result<(), HookError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Err(HookError::ContentType(
            "hook response does not contain the 'Content-Type: application/json' header".into(),
        ));
    };
    let mut parts = value.split(';');
    let media_type = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
    };
    let valid_type = media_type
        .split_once('/')
        .is_some_and(|(t, sub)| is_token(t) && is_token(sub));
    let valid_params = parts.all(|param| {
        let param = param.trim();
        param.is_empty()
            || param
                .split_once('=')
                .is_some_and(|(name, value)| is_token(name.trim()) && !value.trim().is_empty())
    });
    if !valid_type || !valid_params {
        return Err(HookError::ContentType(format!(
            "failed to parse Content-Type header: {value:?}"
        )));
    }
    if media_type != "application/json" {
        return Err(HookError::ContentType(format!(
            "expected hook response Content-Type to be application/json, but got '{value}'"
        )));
    }
    Ok(())
}

/// reqwest's errors say "error sending request"; the causes say why (refused, reset, DNS).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("application/json")).is_ok());
        assert!(check_content_type(Some("Application/JSON; charset=utf-8")).is_ok());
        assert!(check_content_type(None).is_err());
        assert!(check_content_type(Some("")).is_err());
        assert!(check_content_type(Some("text/plain")).is_err());
        assert!(check_content_type(Some("application/json; charset")).is_err());
        assert!(check_content_type(Some("json")).is_err());
    }

    #[test]
    fn urls() {
        assert!(parse_url("http://127.0.0.1:8000/hooks").is_ok());
        assert!(parse_url("https://app.example/hooks").is_ok());
        assert!(parse_url("127.0.0.1:8000").is_err());
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("/hooks").is_err());
    }
}
