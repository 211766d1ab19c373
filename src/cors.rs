//! CORS for the tus endpoint, on by default and exactly as tusd does it (`pkg/handler/config.go`
//! `DefaultCorsConfig` and the middleware): browsers running tus-js-client or Uppy work out of
//! the box, and every response, errors included, carries the headers a browser needs to read it.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, HeaderMap,
    HeaderValue, VARY,
};

const DEFAULT_ALLOW_METHODS: &str = "POST, HEAD, PATCH, OPTIONS, GET, DELETE";
const DEFAULT_ALLOW_HEADERS: &str = "Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Incomplete, Upload-Complete, Upload-Draft-Interop-Version";
const DEFAULT_EXPOSE_HEADERS: &str = "Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Incomplete, Upload-Complete, Upload-Draft-Interop-Version";
/// Headers tusd's lists lack: the extensions of ours clients may send or read (checksum,
/// `Upload-Expires`), and the IETF draft's filename and limits.
const TUSGATE_ALLOW_HEADERS: &str = "Upload-Checksum, Content-Disposition";
const TUSGATE_EXPOSE_HEADERS: &str = "Upload-Expires, Tus-Checksum-Algorithm, Upload-Limit";

/// The CORS settings (`-cors-*` flags).
#[derive(Debug, Clone)]
pub struct CorsConfig {
    allow_origin: regex::Regex,
    allow_credentials: bool,
    allow_methods: HeaderValue,
    allow_headers: HeaderValue,
    expose_headers: HeaderValue,
    max_age: HeaderValue,
}

impl CorsConfig {
    /// tusd's defaults, with the `-cors-allow-*`/`-cors-expose-headers` values appended (as tusd
    /// appends them) and `origin` an unanchored regular expression.
    pub fn new(
        origin: &str,
        allow_credentials: bool,
        extra_methods: &str,
        extra_allow_headers: &str,
        extra_expose_headers: &str,
        max_age: &str,
    ) -> Result<Self, String> {
        let allow_origin = regex::Regex::new(origin)
            .map_err(|e| format!("invalid regular expression for -cors-allow-origin: {e}"))?;
        let join = |base: &str, extra: &str| {
            let value = if extra.is_empty() {
                base.to_owned()
            } else {
                format!("{base}, {extra}")
            };
            HeaderValue::try_from(value)
                .map_err(|_| format!("invalid header value in CORS flags: {extra:?}"))
        };
        Ok(CorsConfig {
            allow_origin,
            allow_credentials,
            allow_methods: join(DEFAULT_ALLOW_METHODS, extra_methods)?,
            allow_headers: join(
                &format!("{DEFAULT_ALLOW_HEADERS}, {TUSGATE_ALLOW_HEADERS}"),
                extra_allow_headers,
            )?,
            expose_headers: join(
                &format!("{DEFAULT_EXPOSE_HEADERS}, {TUSGATE_EXPOSE_HEADERS}"),
                extra_expose_headers,
            )?,
            max_age: HeaderValue::try_from(max_age)
                .map_err(|_| "invalid -cors-max-age".to_owned())?,
        })
    }

    /// The CORS headers for a request with this `Origin`, or `None` if the origin is not allowed
    /// (the caller answers 403 `ERR_ORIGIN_NOT_ALLOWED`).
    pub fn headers_for(&self, origin: &HeaderValue, preflight: bool) -> Option<HeaderMap> {
        let allowed = origin.to_str().is_ok_and(|o| self.allow_origin.is_match(o));
        if !allowed {
            return None;
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(VARY, HeaderValue::from_static("Origin"));
        if self.allow_credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if preflight {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, self.allow_headers.clone());
            headers.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        } else {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, self.expose_headers.clone());
        }
        Some(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> CorsConfig {
        CorsConfig::new(".*", false, "", "", "", "86400").expect("valid")
    }

    #[test]
    fn preflight_gets_tusd_defaults() {
        let h = default()
            .headers_for(&HeaderValue::from_static("https://app"), true)
            .expect("allowed");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], DEFAULT_ALLOW_METHODS);
        assert!(
            h[ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap_or("")
                .starts_with(DEFAULT_ALLOW_HEADERS)
        );
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "86400");
        assert!(!h.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
        assert!(!h.contains_key(ACCESS_CONTROL_EXPOSE_HEADERS));
    }

    #[test]
    fn actual_requests_expose_headers_and_extras_are_appended() {
        let cors = CorsConfig::new("^https://ok$", true, "PUT", "X-Token", "X-Extra", "10")
            .expect("valid");
        assert!(
            cors.headers_for(&HeaderValue::from_static("https://evil"), false)
                .is_none()
        );
        let h = cors
            .headers_for(&HeaderValue::from_static("https://ok"), false)
            .expect("allowed");
        assert!(
            h[ACCESS_CONTROL_EXPOSE_HEADERS]
                .to_str()
                .unwrap_or("")
                .ends_with(", X-Extra")
        );
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        let p = cors
            .headers_for(&HeaderValue::from_static("https://ok"), true)
            .expect("allowed");
        assert!(
            p[ACCESS_CONTROL_ALLOW_METHODS]
                .to_str()
                .unwrap_or("")
                .ends_with(", PUT")
        );
        assert!(
            p[ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap_or("")
                .ends_with(", X-Token")
        );
    }

    #[test]
    fn bad_regex_is_a_startup_error() {
        assert!(CorsConfig::new("(", false, "", "", "", "1").is_err());
    }
}
