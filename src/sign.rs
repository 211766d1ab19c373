//! `tusgate sign`: what granite-assets' `build_upload_url` and `build_download_url` produce,
//! for operators trying the stack without the Python app. Same formulas, same output shapes;
//! the formatting is pure and unit tested, `main` does the printing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::download::secure_link;
use crate::tokens::{self, Secret};

/// granite's `Upload-Metadata`: five pairs in granite's order, joined by `", "`.
pub fn upload_metadata(
    secret: &Secret,
    key: &str,
    content_type: &str,
    visibility: &str,
    expires: u64,
) -> String {
    let token = tokens::sign(secret, expires, key, visibility, content_type);
    [
        ("asset-key", key),
        ("content-type", content_type),
        ("visibility", visibility),
        ("upload-expires", &expires.to_string()),
        ("upload-token", &token),
    ]
    .iter()
    .map(|(name, value)| format!("{name} {}", STANDARD.encode(value)))
    .collect::<Vec<_>>()
    .join(", ")
}

/// A curl command that creates the upload and sends `file` in the same request
/// (creation-with-upload), or only creates it when no file is given.
pub fn upload_command(endpoint: &str, metadata: &str, file: Option<(&str, u64)>) -> String {
    let mut command =
        format!("curl -i -X POST -H 'Tus-Resumable: 1.0.0' -H 'Upload-Metadata: {metadata}'");
    match file {
        Some((path, size)) => command.push_str(&format!(
            " -H 'Upload-Length: {size}' -H 'Content-Type: application/offset+octet-stream' --data-binary @'{path}'"
        )),
        None => command.push_str(" -H 'Upload-Length: <size in bytes>'"),
    }
    command.push_str(&format!(" '{endpoint}'"));
    command
}

/// granite's download URL: public ones are plain, private ones carry `md5` and `expires` over
/// the URL's path with the key raw, as granite computes them. The printed path is
/// percent-encoded the way HTTP clients send it (granite leaves that to the client), so the URL
/// works with curl as printed; the server decodes it before checking the hash.
pub fn download_url(
    base_url: &str,
    prefix: &str,
    key: &str,
    signing: Option<(&Secret, i64)>,
) -> String {
    let base = base_url.trim_end_matches('/');
    let url = format!("{base}/{prefix}/{}", encode_path(key));
    let Some((secret, expires)) = signing else {
        return url;
    };
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    let base_path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let uri_path = format!("{base_path}/{prefix}/{key}");
    let md5 = secure_link::sign(uri_path.as_bytes(), expires, secret.expose());
    format!("{url}?md5={md5}&expires={expires}")
}

/// Percent-encodes what may not appear raw in a URL path (`/` and RFC 3986 `pchar`s stay).
fn encode_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_url_matches_the_contract_example() {
        let secret = Secret::new("test-secret-key");
        assert_eq!(
            download_url(
                "https://media.example.com/assets/",
                "private",
                "reports/q1.pdf",
                Some((&secret, 4102444800))
            ),
            "https://media.example.com/assets/private/reports/q1.pdf?md5=mCKvpV2I4bco6SPpZvlc-w&expires=4102444800"
        );
        assert_eq!(
            download_url("http://h/assets", "public", "a.txt", None),
            "http://h/assets/public/a.txt"
        );
        // The hash is over the raw key (granite's `my file.txt` vector); the path is encoded.
        assert_eq!(
            download_url(
                "http://h/assets",
                "private",
                "my file+ü.txt",
                Some((&secret, 4102444800))
            )
            .split('?')
            .next(),
            Some("http://h/assets/private/my%20file+%C3%BC.txt")
        );
    }

    #[test]
    fn upload_metadata_is_what_the_server_accepts() {
        let secret = Secret::new("test-upload-secret");
        let header = upload_metadata(
            &secret,
            "reports/q2.pdf",
            "application/pdf",
            "private",
            4102444800,
        );
        assert!(header.starts_with("asset-key cmVwb3J0cy9xMi5wZGY=, content-type "));
        let parsed = crate::tus::headers::parse_metadata(&header);
        assert_eq!(
            parsed["upload-token"],
            "7de452f8c7ee82ff52600b1aa33574e0c71baa279504204100cd9bdeea809aca"
        );
        let tokens = tokens::UploadTokens::new(Some(secret), false, tokens::Prefixes::default());
        let target = tokens.check_creation(&parsed).ok().flatten();
        assert_eq!(
            target.map(|t| t.path),
            Some("private/reports/q2.pdf".to_owned())
        );
    }

    #[test]
    fn upload_command_with_a_file() {
        let cmd = upload_command("http://localhost:8080/files/", "m", Some(("a.pdf", 3)));
        assert_eq!(
            cmd,
            "curl -i -X POST -H 'Tus-Resumable: 1.0.0' -H 'Upload-Metadata: m' -H 'Upload-Length: 3' -H 'Content-Type: application/offset+octet-stream' --data-binary @'a.pdf' 'http://localhost:8080/files/'"
        );
    }
}
