//! Pure parsers for the tus request headers, written to accept exactly what tusd v2.10
//! accepts (`pkg/handler/unrouted_handler.go`). No I/O here; each is unit tested below.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::Error;
use crate::upload::{Metadata, UploadId};

/// The only value `Tus-Resumable` may have, and the only one `Upload-Defer-Length` may have.
pub const TUS_VERSION: &str = "1.0.0";
/// The `Content-Type` of PATCH bodies and of creation-with-upload bodies.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign, then one or more ASCII digits, no
/// spaces, no overflow. tusd parses every integer header this way, so `+5` and `007` pass.
pub fn parse_go_int(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude: i128 = digits.bytes().try_fold(0i128, |acc, d| {
        let next = acc * 10 + i128::from(d - b'0');
        (next <= i128::from(i64::MAX) + 1).then_some(next)
    })?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).ok()
}

/// A non-negative integer header (`Upload-Length`, `Upload-Offset`).
pub fn parse_size(s: &str) -> Option<u64> {
    parse_go_int(s).and_then(|v| u64::try_from(v).ok())
}

/// `Upload-Metadata`, parsed as leniently as tusd: pairs split on `,`, trimmed, split on single
/// spaces; a pair with more than two parts, an empty key or a value that is not padded
/// standard base64 is skipped; a key alone means an empty value; the last duplicate wins.
/// It never fails.
pub fn parse_metadata(header: &str) -> Metadata {
    let mut meta = Metadata::new();
    for element in header.split(',') {
        let parts: Vec<&str> = element.trim().split(' ').collect();
        let (key, value) = match parts.as_slice() {
            [key] => (*key, String::new()),
            [key, encoded] => match STANDARD.decode(encoded) {
                Ok(bytes) => (*key, String::from_utf8_lossy(&bytes).into_owned()),
                Err(_) => continue,
            },
            _ => continue,
        };
        if !key.is_empty() {
            meta.insert(key.to_owned(), value);
        }
    }
    meta
}

/// The `Upload-Metadata` echo on HEAD: `key base64` joined by `,` without spaces; an empty
/// value becomes `key ` (with the trailing space), as tusd writes it.
pub fn serialize_metadata(meta: &Metadata) -> String {
    let mut out = String::new();
    for (key, value) in meta {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(key);
        out.push(' ');
        STANDARD.encode_string(value.as_bytes(), &mut out);
    }
    out
}

/// What an `Upload-Concat` header on POST asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConcatRequest {
    Partial,
    /// The partial uploads, as ids taken from absolute or relative URLs.
    Final(Vec<UploadId>),
}

/// Most partial uploads one final may combine (tus-js-client's `parallelUploads` uses a handful).
pub const MAX_PARTIALS: usize = 1000;

/// `Upload-Concat`: `partial`, or `final;` followed by space-separated URLs that contain the
/// base path (absolute or relative, trailing `/` tolerated). A URL without the base path is
/// 404 like tusd; one whose id cannot exist is 404 as well. Unlike tusd, a list naming one
/// upload twice or more than [`MAX_PARTIALS`] uploads is refused before anything is read: one
/// short header must not make the server copy the same bytes thousands of times.
pub fn parse_concat(header: &str, base_path: &str) -> Result<ConcatRequest, Error> {
    if header == "partial" {
        return Ok(ConcatRequest::Partial);
    }
    let list = header.strip_prefix("final;").ok_or(Error::InvalidConcat)?;
    let mut ids = Vec::new();
    for url in list.split(' ').map(str::trim).filter(|v| !v.is_empty()) {
        let (_, rest) = url.split_once(base_path).ok_or(Error::UploadNotFound)?;
        let id = UploadId::parse(rest.trim_matches('/')).ok_or(Error::UploadNotFound)?;
        if ids.contains(&id) {
            return Err(Error::ConcatNotAllowed(
                "a final upload may list each partial upload only once",
            ));
        }
        if ids.len() == MAX_PARTIALS {
            return Err(Error::ConcatNotAllowed(
                "a final upload may list at most 1000 partial uploads",
            ));
        }
        ids.push(id);
    }
    if ids.is_empty() {
        return Err(Error::InvalidConcat);
    }
    Ok(ConcatRequest::Final(ids))
}

/// The length a POST declares: `Upload-Length`, or deferred with `Upload-Defer-Length: 1`.
/// Checks run in tusd's order (`validateNewUploadLengthHeaders`).
pub fn parse_creation_length(
    upload_length: Option<&str>,
    defer_length: Option<&str>,
) -> Result<Option<u64>, Error> {
    let upload_length = upload_length.filter(|v| !v.is_empty());
    let defer_length = defer_length.filter(|v| !v.is_empty());
    match (upload_length, defer_length) {
        (Some(_), Some(_)) => Err(Error::AmbiguousUploadLength),
        (None, Some("1")) => Ok(None),
        (None, Some(_)) => Err(Error::InvalidUploadDeferLength),
        (Some(len), None) => parse_size(len).map(Some).ok_or(Error::InvalidUploadLength),
        (None, None) => Err(Error::InvalidUploadLength),
    }
}

pub use crate::lifecycle::body::{Checksum, ChecksumAlgorithm};

pub fn parse_checksum(header: &str) -> Result<Checksum, Error> {
    let (name, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or(Error::InvalidChecksum)?;
    let algorithm = match name.to_ascii_lowercase().as_str() {
        "sha1" => ChecksumAlgorithm::Sha1,
        "md5" => ChecksumAlgorithm::Md5,
        "sha256" => ChecksumAlgorithm::Sha256,
        _ => return Err(Error::UnsupportedChecksumAlgorithm),
    };
    let digest = STANDARD
        .decode(encoded.trim())
        .map_err(|_| Error::InvalidChecksum)?;
    // A digest of the wrong length is well-formed but can never match: the chunk is read and
    // discarded with 460, as for any mismatch (the checksum extension's status for it).
    Ok(Checksum { algorithm, digest })
}

/// Scheme and host for absolute upload URLs, as tusd's `getHostAndProtocol`: the request's own
/// `Host`, or with `behind_proxy` the `X-Forwarded-Host`/`-Proto` headers overridden by
/// `Forwarded`; default ports are then stripped.
pub fn host_and_proto<'a>(
    host: &'a str,
    tls: bool,
    behind_proxy: bool,
    header: impl Fn(&str) -> Option<&'a str>,
) -> (String, &'static str) {
    let mut proto = if tls { "https" } else { "http" };
    let mut host = host;
    if !behind_proxy {
        return (host.to_owned(), proto);
    }
    if let Some(h) = header("x-forwarded-host").filter(|h| !h.is_empty()) {
        host = h;
    }
    match header("x-forwarded-proto") {
        Some("http") => proto = "http",
        Some("https") => proto = "https",
        _ => {}
    }
    if let Some(forwarded) = header("forwarded").filter(|h| !h.is_empty()) {
        // tusd matches `host="?([^;"]+)` and `proto=(https?)` anywhere in the header.
        if let Some(at) = forwarded.find("host=") {
            let value = forwarded[at + 5..].trim_start_matches('"');
            let end = value.find([';', '"']).unwrap_or(value.len());
            if end > 0 {
                host = &value[..end];
            }
        }
        if let Some(at) = forwarded.find("proto=") {
            let value = &forwarded[at + 6..];
            if value.starts_with("https") {
                proto = "https";
            } else if value.starts_with("http") {
                proto = "http";
            }
        }
    }
    let default_port = if proto == "https" { ":443" } else { ":80" };
    (
        host.strip_suffix(default_port).unwrap_or(host).to_owned(),
        proto,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_int_parsing_matches_strconv() {
        assert_eq!(parse_go_int("0"), Some(0));
        assert_eq!(parse_go_int("+5"), Some(5));
        assert_eq!(parse_go_int("007"), Some(7));
        assert_eq!(parse_go_int("-5"), Some(-5));
        assert_eq!(parse_go_int("9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_go_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_go_int("9223372036854775808"), None);
        for bad in ["", "+", "-", " 5", "5 ", "1_000", "0x10", "1e3", "５"] {
            assert_eq!(parse_go_int(bad), None, "{bad:?}");
        }
        assert_eq!(parse_size("-5"), None);
        assert_eq!(parse_size("+12"), Some(12));
    }

    #[test]
    fn metadata_is_parsed_leniently() {
        let meta =
            parse_metadata("name bHVucmpzLnBuZw==,type aW1hZ2UvcG5n, empty,bad !!!,a b c, d");
        assert_eq!(meta.get("name").map(String::as_str), Some("lunrjs.png"));
        assert_eq!(meta.get("type").map(String::as_str), Some("image/png"));
        assert_eq!(meta.get("empty").map(String::as_str), Some(""));
        assert_eq!(meta.get("d").map(String::as_str), Some(""));
        assert!(!meta.contains_key("bad"));
        assert!(!meta.contains_key("a"));
        // Unpadded base64 is not standard base64: dropped, as in Go.
        assert!(parse_metadata("k YQ").is_empty());
        // The last duplicate wins.
        assert_eq!(parse_metadata("k YQ==,k Yg==")["k"], "b");
        // granite-assets separates pairs with ", ".
        let granite = parse_metadata("asset-key cmVwb3J0cy9xMi5wZGY=, visibility cHJpdmF0ZQ==");
        assert_eq!(granite["asset-key"], "reports/q2.pdf");
        assert_eq!(granite["visibility"], "private");
        assert!(parse_metadata("").is_empty());
    }

    #[test]
    fn metadata_echo_has_tusd_format() {
        let mut meta = Metadata::new();
        meta.insert("b".into(), String::new());
        meta.insert("a".into(), "hello".into());
        assert_eq!(serialize_metadata(&meta), "a aGVsbG8=,b ");
        assert_eq!(parse_metadata(&serialize_metadata(&meta)), meta);
    }

    #[test]
    fn concat_header() {
        let a = "0123456789abcdef0123456789abcdef";
        assert!(matches!(
            parse_concat("partial", "/files/"),
            Ok(ConcatRequest::Partial)
        ));
        let header = format!("final;http://tus.io/files/{a} /files/b/");
        let Ok(ConcatRequest::Final(ids)) = parse_concat(&header, "/files/") else {
            panic!("not final")
        };
        assert_eq!(
            ids.iter().map(UploadId::as_str).collect::<Vec<_>>(),
            [a, "b"]
        );
        assert!(matches!(
            parse_concat("final; /files/a", "/files/"),
            Ok(ConcatRequest::Final(_))
        ));
        assert!(matches!(
            parse_concat("final;", "/files/"),
            Err(Error::InvalidConcat)
        ));
        assert!(matches!(
            parse_concat("final; ", "/files/"),
            Err(Error::InvalidConcat)
        ));
        assert!(matches!(
            parse_concat("Partial", "/files/"),
            Err(Error::InvalidConcat)
        ));
        assert!(matches!(
            parse_concat("final;/other/a", "/files/"),
            Err(Error::UploadNotFound)
        ));
        assert!(matches!(
            parse_concat("final;/files/../x", "/files/"),
            Err(Error::UploadNotFound)
        ));
    }

    /// The review's amplification: one header naming the same partial 2,000 times.
    #[test]
    fn concat_refuses_repeats_and_long_lists() {
        let repeated = format!("final;{}", " /files/a".repeat(2));
        assert!(matches!(
            parse_concat(&repeated, "/files/"),
            Err(Error::ConcatNotAllowed(_))
        ));
        let list = |n: usize| {
            let urls: Vec<String> = (0..n).map(|i| format!("/files/p{i}")).collect();
            format!("final;{}", urls.join(" "))
        };
        assert!(matches!(
            parse_concat(&list(MAX_PARTIALS), "/files/"),
            Ok(ConcatRequest::Final(ids)) if ids.len() == MAX_PARTIALS
        ));
        assert!(matches!(
            parse_concat(&list(MAX_PARTIALS + 1), "/files/"),
            Err(Error::ConcatNotAllowed(_))
        ));
    }

    #[test]
    fn creation_length_checks_run_in_tusd_order() {
        assert!(matches!(
            parse_creation_length(Some("5"), None),
            Ok(Some(5))
        ));
        assert!(matches!(parse_creation_length(None, Some("1")), Ok(None)));
        assert!(matches!(
            parse_creation_length(Some("5"), Some("1")),
            Err(Error::AmbiguousUploadLength)
        ));
        assert!(matches!(
            parse_creation_length(Some("x"), Some("bad")),
            Err(Error::AmbiguousUploadLength)
        ));
        assert!(matches!(
            parse_creation_length(None, Some("bad")),
            Err(Error::InvalidUploadDeferLength)
        ));
        assert!(matches!(
            parse_creation_length(Some("-5"), None),
            Err(Error::InvalidUploadLength)
        ));
        assert!(matches!(
            parse_creation_length(None, None),
            Err(Error::InvalidUploadLength)
        ));
    }

    #[test]
    fn checksum_header() {
        let sha1_empty = "2jmj7l5rSw0yVb/vlWAYkK/YBwk=";
        let parsed = parse_checksum(&format!("sha1 {sha1_empty}")).expect("valid");
        assert_eq!(parsed.algorithm, ChecksumAlgorithm::Sha1);
        assert_eq!(parsed.digest.len(), 20);
        assert!(matches!(
            parse_checksum("crc32 AAAA"),
            Err(Error::UnsupportedChecksumAlgorithm)
        ));
        assert!(matches!(
            parse_checksum("sha1"),
            Err(Error::InvalidChecksum)
        ));
        assert!(matches!(
            parse_checksum("sha1 !!!"),
            Err(Error::InvalidChecksum)
        ));
        let short = parse_checksum("md5 AAAA").expect("well-formed");
        assert_eq!(
            short.digest.len(),
            3,
            "kept as sent: it will mismatch (460)"
        );
    }

    #[test]
    fn forwarded_headers_only_behind_proxy() {
        let headers = |name: &str| match name {
            "x-forwarded-host" => Some("proxy.example"),
            "x-forwarded-proto" => Some("https"),
            _ => None,
        };
        assert_eq!(
            host_and_proto("tus.io", false, false, headers),
            ("tus.io".into(), "http")
        );
        assert_eq!(
            host_and_proto("tus.io", false, true, headers),
            ("proxy.example".into(), "https")
        );
        let forwarded = |name: &str| match name {
            "x-forwarded-host" => Some("ignored.example"),
            "forwarded" => Some("for=1.2.3.4; proto=https; host=\"fw.example:443\""),
            _ => None,
        };
        assert_eq!(
            host_and_proto("tus.io", false, true, forwarded),
            ("fw.example".into(), "https")
        );
        let bad_proto = |name: &str| (name == "x-forwarded-proto").then_some("ftp");
        assert_eq!(
            host_and_proto("tus.io:80", false, true, bad_proto),
            ("tus.io".into(), "http")
        );
        // Without the flag no port is stripped either.
        assert_eq!(
            host_and_proto("tus.io:80", false, false, bad_proto),
            ("tus.io:80".into(), "http")
        );
    }
}
