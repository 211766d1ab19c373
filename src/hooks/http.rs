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
pub(crate) fn parse_url(url: &str) -> Result<reqwest::Url, String> {
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
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    /// What the test endpoint answers: status, content type, body, delay before answering.
    #[derive(Clone)]
    pub(crate) struct Answer {
        pub(crate) status: u16,
        pub(crate) content_type: Option<&'static str>,
        pub(crate) body: String,
        pub(crate) delay: Duration,
    }

    pub(crate) fn json(status: u16, body: &str) -> Answer {
        Answer {
            status,
            content_type: Some("application/json"),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    /// One request the endpoint received.
    #[derive(Debug, Clone)]
    pub(crate) struct Received {
        pub(crate) at: Instant,
        pub(crate) headers: http::HeaderMap,
        pub(crate) body: Bytes,
    }

    /// A real HTTP/1.1 server on 127.0.0.1 answering from a script (the last answer
    /// repeats) and recording every request.
    pub(crate) struct Endpoint {
        pub(crate) url: String,
        pub(crate) received: Arc<Mutex<Vec<Received>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Endpoint {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    pub(crate) async fn endpoint(script: Vec<Answer>) -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let script = Arc::new(script);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = Arc::clone(&log);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: http::Request<hyper::body::Incoming>| {
                            let log = Arc::clone(&log);
                            let script = Arc::clone(&script);
                            async move {
                                let at = Instant::now();
                                let (parts, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let answer = {
                                    let mut log = log.lock().expect("lock");
                                    log.push(Received {
                                        at,
                                        headers: parts.headers,
                                        body,
                                    });
                                    script[(log.len() - 1).min(script.len() - 1)].clone()
                                };
                                tokio::time::sleep(answer.delay).await;
                                let mut response = http::Response::builder().status(answer.status);
                                if let Some(ct) = answer.content_type {
                                    response = response.header("content-type", ct);
                                }
                                Ok::<_, std::convert::Infallible>(
                                    response
                                        .body(Full::new(Bytes::from(answer.body)))
                                        .expect("response"),
                                )
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Endpoint {
            url,
            received,
            task,
        }
    }

    pub(crate) fn backend(
        url: &str,
        attempts: u32,
        backoff_ms: u64,
        timeout_ms: u64,
    ) -> HttpBackend {
        HttpBackend::new(&HttpBackendConfig {
            url,
            attempts,
            backoff: Duration::from_millis(backoff_ms),
            forward_headers: &["Authorization".to_owned(), "x-CUSTOM".to_owned()],
            timeout: Duration::from_millis(timeout_ms),
            size_limit: 64,
            skip_verify: false,
        })
        .expect("backend")
    }

    fn headers() -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([
            ("Authorization".to_owned(), vec!["Bearer t".to_owned()]),
            ("X-Custom".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
            ("Content-Type".to_owned(), vec!["text/plain".to_owned()]),
            ("Cookie".to_owned(), vec!["secret".to_owned()]),
        ])
    }

    #[tokio::test]
    async fn posts_the_body_with_forwarded_headers_and_reads_the_answer() {
        let server = endpoint(vec![json(
            200,
            r#"{"RejectUpload":true,"HTTPResponse":{"Body":"no"}}"#,
        )])
        .await;
        let response = backend(&server.url, 3, 10, 5000)
            .invoke(Bytes::from_static(b"{\"Type\":\"pre-create\"}"), &headers())
            .await
            .expect("answer");
        assert!(response.reject_upload);
        assert_eq!(response.http_response.body, "no");
        let received = server.received.lock().expect("lock").clone();
        assert_eq!(received.len(), 1);
        let r = &received[0];
        assert_eq!(&r.body[..], b"{\"Type\":\"pre-create\"}");
        assert_eq!(
            r.headers["content-type"], "application/json",
            "ours wins over a forwarded one"
        );
        assert_eq!(r.headers["authorization"], "Bearer t");
        let custom: Vec<_> = r.headers.get_all("x-custom").iter().collect();
        assert_eq!(custom, ["a", "b"]);
        assert!(
            r.headers.get("cookie").is_none(),
            "only the named headers are forwarded"
        );
    }

    #[tokio::test]
    async fn a_5xx_is_retried_after_the_backoff_until_the_attempts_run_out() {
        let server = endpoint(vec![
            json(500, "down"),
            json(503, "still down"),
            json(200, "{}"),
        ])
        .await;
        let response = backend(&server.url, 3, 200, 5000)
            .invoke(Bytes::new(), &headers())
            .await;
        assert_eq!(
            response.expect("third attempt answers"),
            HookResponse::default()
        );
        let received = server.received.lock().expect("lock").clone();
        assert_eq!(received.len(), 3);
        for pair in received.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(
                gap >= Duration::from_millis(200) && gap < Duration::from_millis(1000),
                "{gap:?}"
            );
        }

        let server = endpoint(vec![json(502, "bad gateway")]).await;
        let error = backend(&server.url, 2, 10, 5000)
            .invoke(Bytes::new(), &headers())
            .await;
        assert!(
            matches!(&error, Err(HookError::Status { status: 502, body }) if body == "bad gateway"),
            "{error:?}"
        );
        assert_eq!(
            server.received.lock().expect("lock").len(),
            2,
            "attempts, not retries"
        );
    }

    #[tokio::test]
    async fn other_statuses_are_not_retried() {
        for status in [429, 404, 302, 400] {
            let server = endpoint(vec![json(status, "nope"), json(200, "{}")]).await;
            let error = backend(&server.url, 3, 10, 5000)
                .invoke(Bytes::new(), &headers())
                .await;
            if status == 302 {
                // A redirect without Location is the answer itself.
                assert!(
                    matches!(error, Err(HookError::Status { status: 302, .. })),
                    "{error:?}"
                );
            } else {
                assert!(
                    matches!(&error, Err(HookError::Status { status: s, .. }) if *s == status),
                    "{error:?}"
                );
            }
            assert_eq!(server.received.lock().expect("lock").len(), 1, "{status}");
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_retried_then_reported() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
        drop(listener);
        let started = Instant::now();
        let error = backend(&url, 3, 150, 5000)
            .invoke(Bytes::new(), &headers())
            .await;
        let elapsed = started.elapsed();
        assert!(
            matches!(&error, Err(HookError::Transport { error, .. }) if error.contains("onnection refused")),
            "{error:?}"
        );
        assert!(
            elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
            "two backoffs: {elapsed:?}"
        );
        let message = error.expect_err("error").to_string();
        assert!(
            message.starts_with(&format!("Post \"{url}\": ")),
            "{message}"
        );
    }

    #[tokio::test]
    async fn the_timeout_covers_the_whole_call() {
        let slow = Answer {
            delay: Duration::from_secs(5),
            ..json(200, "{}")
        };
        let server = endpoint(vec![slow]).await;
        let started = Instant::now();
        let error = backend(&server.url, 3, 10, 300)
            .invoke(Bytes::new(), &headers())
            .await;
        assert!(matches!(error, Err(HookError::Timeout { .. })), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // Retries do not extend it: 500s with a long backoff end at the deadline too.
        let server = endpoint(vec![json(500, "")]).await;
        let started = Instant::now();
        let error = backend(&server.url, 10, 200, 500)
            .invoke(Bytes::new(), &headers())
            .await;
        assert!(matches!(error, Err(HookError::Timeout { .. })), "{error:?}");
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(1500),
            "{elapsed:?}"
        );
        assert_eq!(server.received.lock().expect("lock").len(), 3);
    }

    #[tokio::test]
    async fn answers_are_checked_as_tusd_checks_them() {
        let exactly = format!("{{\"Body\":\"{}\"}}", "x".repeat(64 - 11));
        assert_eq!(exactly.len(), 64);
        let cases: Vec<(Answer, &str)> = vec![
            (json(200, &exactly), "ok"),
            (
                json(200, &format!("{exactly} ")),
                "exceeded maximum size of 64 bytes",
            ),
            // The status is checked before the size, and its body is cut at limit + 1.
            (
                json(400, &"y".repeat(100)),
                "unexpected response code from hook endpoint (400): yyyyy",
            ),
            (
                Answer {
                    content_type: None,
                    ..json(200, "{}")
                },
                "does not contain the 'Content-Type: application/json' header",
            ),
            (
                Answer {
                    content_type: Some("text/json"),
                    ..json(200, "{}")
                },
                "expected hook response Content-Type to be application/json, but got 'text/json'",
            ),
            (
                Answer {
                    content_type: Some("application/json; charset=utf-8"),
                    ..json(204, "")
                },
                "failed to parse hook response",
            ),
            (json(201, "null"), "ok"),
            (
                json(200, "{\"RejectUpload\": 1}"),
                "failed to parse hook response",
            ),
        ];
        for (answer, expected) in cases {
            let server = endpoint(vec![answer]).await;
            let result = backend(&server.url, 1, 10, 5000)
                .invoke(Bytes::new(), &headers())
                .await;
            match result {
                Ok(_) => assert_eq!(expected, "ok"),
                Err(e) => {
                    let message = e.to_string();
                    assert!(message.contains(expected), "{message} / {expected}");
                    if let HookError::Status { body, .. } = e {
                        assert_eq!(body.len(), 65);
                    }
                }
            }
        }
    }

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
