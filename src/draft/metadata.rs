//! What a draft creation says about the upload beyond its bytes, as the upload's metadata
//! (pure, unit tested below):
//! - `Upload-Metadata` in tus 1.0's format, accepted as an extension of the draft: it is how
//!   granite-assets' upload token and its signed fields (`asset-key`, `visibility`,
//!   `content-type`, `upload-expires`, `upload-token`) travel, unchanged, and tus-js-client
//!   sends it in its draft modes too;
//! - `Content-Type` → `filetype` and `Content-Disposition`'s filename → `filename`, as tusd
//!   v2.10.1 does for the draft (`PostFileV2`), so hooks see the same metadata from either
//!   server. What `Upload-Metadata` states explicitly wins. The protocols' own body types
//!   (`application/partial-upload`, `application/offset+octet-stream`) say nothing about the
//!   representation and are not recorded.
//!
//! The token is checked against its signed `content-type`, never against `Content-Type`: the
//! served type of an asset comes from its key, as nginx's does.

use http::HeaderMap;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};

use crate::upload::Metadata;

/// The metadata of a draft creation request.
pub fn from_creation(headers: &HeaderMap) -> Metadata {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let mut metadata = crate::tus::headers::parse_metadata(text("upload-metadata").unwrap_or(""));
    if let Some(media_type) = text(CONTENT_TYPE.as_str()).and_then(media_type) {
        metadata.entry("filetype".into()).or_insert(media_type);
    }
    if let Some(filename) = headers
        .get(CONTENT_DISPOSITION)
        .and_then(|v| disposition_filename(v.as_bytes()))
    {
        metadata.entry("filename".into()).or_insert(filename);
    }
    metadata
}

/// The media type of a `Content-Type` value, lowercased and without parameters; `None` when
/// it is empty, malformed or one of the upload protocols' own body types.
fn media_type(value: &str) -> Option<String> {
    let media_type = value.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = media_type.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !token(kind) || !token(subtype) {
        return None;
    }
    match media_type.as_str() {
        super::headers::PARTIAL_UPLOAD | crate::tus::headers::OFFSET_OCTET_STREAM => None,
        _ => Some(media_type),
    }
}

/// The filename of a `Content-Disposition` value (RFC 6266): `filename*` (RFC 8187, UTF-8
/// only) when present and decodable, else `filename` (token or quoted-string). Names with
/// control characters are dropped.
fn disposition_filename(value: &[u8]) -> Option<String> {
    let value = std::str::from_utf8(value).ok()?;
    let mut plain = None;
    let mut extended = None;
    let mut rest = value.split_once(';')?.1;
    loop {
        rest = rest.trim_start();
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (param, next) = if let Some(quoted) = after.strip_prefix('"') {
            let (unquoted, len) = unquote(quoted)?;
            (unquoted, &quoted[len..])
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        match name.as_str() {
            "filename" => plain = Some(param),
            "filename*" => extended = decode_ext_value(&param),
            _ => {}
        }
        match next.trim_start().strip_prefix(';') {
            Some(more) => rest = more,
            None => break,
        }
    }
    extended
        .or(plain)
        .filter(|name| !name.is_empty() && !name.chars().any(char::is_control))
}

/// The content of a quoted-string whose opening quote is already consumed, and how many bytes
/// it took (closing quote included).
fn unquote(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

/// RFC 8187 `charset'language'percent-encoded`, UTF-8 only.
fn decode_ext_value(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, '\'');
    let charset = parts.next()?;
    let _language = parts.next()?;
    let encoded = parts.next()?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).expect("visible ASCII"));
        }
        m
    }

    #[test]
    fn content_type_and_disposition_become_filetype_and_filename() {
        let m = from_creation(&h(&[
            ("content-type", "Image/JPEG; q=1"),
            (
                "content-disposition",
                r#"inline; filename="file name.jpg"; filename*=UTF-8''file%20n%C3%A4me.jpg"#,
            ),
        ]));
        assert_eq!(m.get("filetype").map(String::as_str), Some("image/jpeg"));
        assert_eq!(m.get("filename").map(String::as_str), Some("file näme.jpg"));
    }

    #[test]
    fn upload_metadata_carries_the_token_and_wins() {
        // "asset-key" = "a/b.txt", "upload-token" = "abc", "filetype" = "text/plain"
        let m = from_creation(&h(&[
            (
                "upload-metadata",
                "asset-key YS9iLnR4dA==,upload-token YWJj,filetype dGV4dC9wbGFpbg==",
            ),
            ("content-type", "image/png"),
        ]));
        assert_eq!(m.get("asset-key").map(String::as_str), Some("a/b.txt"));
        assert_eq!(m.get("upload-token").map(String::as_str), Some("abc"));
        assert_eq!(m.get("filetype").map(String::as_str), Some("text/plain"));
    }

    #[test]
    fn protocol_body_types_and_junk_are_not_recorded() {
        for ct in [
            "application/partial-upload",
            "application/offset+octet-stream",
            "",
            "nonsense",
            "a/b c",
        ] {
            assert!(
                !from_creation(&h(&[("content-type", ct)])).contains_key("filetype"),
                "{ct}"
            );
        }
    }

    #[test]
    fn disposition_variants() {
        let f = |v: &str| disposition_filename(v.as_bytes());
        assert_eq!(f("attachment; filename=a.txt"), Some("a.txt".into()));
        assert_eq!(
            f(r#"inline; filename="a \"b\".txt""#),
            Some(r#"a "b".txt"#.into())
        );
        assert_eq!(
            f(r#"inline; filename*=utf-8'en'%E2%82%AC.txt; filename="e.txt""#),
            Some("€.txt".into())
        );
        // An undecodable filename* falls back to filename.
        assert_eq!(
            f("inline; filename*=iso-8859-1''%A3.txt; filename=p.txt"),
            Some("p.txt".into())
        );
        assert_eq!(f("inline"), None);
        assert_eq!(f(r#"inline; filename="unterminated"#), None);
        assert_eq!(f("inline; filename*=UTF-8''a%0Ab"), None);
        assert_eq!(f("inline; filename="), None);
    }
}
