//! Upload tokens, checked inline at creation: what the pre-create hook of the tusd + hooks
//! stack did, with the same formula granite-assets signs with.
//!
//! `Upload-Metadata` carries `asset-key`, `content-type`, `visibility`, `upload-expires` and
//! `upload-token`; the token is the lowercase hex HMAC-SHA256 (key: the upload secret) of
//! `"{expires}:{key}:{visibility}:{content_type}"`. Like the documented hook: a missing or
//! wrong token is 403, an expired one 400 (`now > expires`, so `now == expires` is still
//! valid). The digest is compared in constant time.
//!
//! The signed payload must name one (key, visibility, content type) and no other. `expires` is
//! digits and `visibility` is `public` or `private`, so the only freedom left is where the key
//! ends and the content type begins: a content type with a `:` (never valid in a media type,
//! RFC 9110 §8.3.1) could move the split, and a token for key `x:public`, private, `text/plain`
//! would pass as key `x`, public, `private:text/plain`. Refusing a `:` in the content type
//! makes the split unique — the content type is after the last `:`, the visibility before
//! it — so any key is safe, and granite-assets' tokens are unchanged.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;
use crate::keys::validate_key;
use crate::upload::{Metadata, Target};

/// A secret that never shows up in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The directory names of the two visibilities under the assets root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    pub public: String,
    pub private: String,
}

impl Default for Prefixes {
    fn default() -> Self {
        Prefixes {
            public: "public".into(),
            private: "private".into(),
        }
    }
}

/// Whether and how creation requests are checked.
#[derive(Debug, Clone)]
pub struct UploadTokens {
    secret: Option<Secret>,
    /// Requests without `upload-token` are accepted as plain tusd uploads.
    allow_without_token: bool,
    prefixes: Prefixes,
}

impl UploadTokens {
    pub fn new(secret: Option<Secret>, allow_without_token: bool, prefixes: Prefixes) -> Self {
        UploadTokens {
            secret,
            allow_without_token,
            prefixes,
        }
    }

    /// Whether tokens can be checked at all (an upload secret is configured).
    pub fn has_secret(&self) -> bool {
        self.secret.is_some()
    }

    pub fn prefixes(&self) -> &Prefixes {
        &self.prefixes
    }

    /// Whether anyone may create an upload without a token (`--allow-uploads-without-token`).
    pub fn allows_tokenless(&self) -> bool {
        self.allow_without_token
    }

    /// Checks a creation request's metadata. `Ok(Some(target))`: a tokened upload, for the
    /// target its token was signed for (a partial upload never publishes there itself, but a
    /// final may only combine partials of the same target). `Ok(None)`: an upload without
    /// token, where that is allowed.
    pub fn check_creation(&self, metadata: &Metadata) -> Result<Option<Target>, Error> {
        self.check(metadata, true)
    }

    /// The target of an upload created under tusd, whose pre-create hook accepted its token
    /// (tusd's `.info` has the metadata, token included, but no target): the token is checked
    /// again, all but its expiry, which only bounds creation. `None` if there is no valid
    /// token, and the upload stays what it was under tusd.
    pub fn legacy_target(&self, metadata: &Metadata) -> Option<Target> {
        metadata.get("upload-token")?;
        self.check(metadata, false).ok().flatten()
    }

    fn check(&self, metadata: &Metadata, check_expiry: bool) -> Result<Option<Target>, Error> {
        let token = metadata.get("upload-token");
        let secret = match (&self.secret, token) {
            (_, None) if self.allow_without_token => return Ok(None),
            (Some(secret), Some(_)) => secret,
            (None, Some(_)) => {
                return Err(Error::UploadTokenInvalid(
                    "this server has no upload secret configured, so it cannot check upload-token"
                        .into(),
                ));
            }
            (_, None) => {
                return Err(Error::UploadTokenInvalid(
                    "missing upload-token in Upload-Metadata; create the upload with the headers from build_upload_url()".into(),
                ));
            }
        };
        let token = token.map(String::as_str).unwrap_or_default();
        let field = |name: &str| metadata.get(name).map(String::as_str);
        let expires = field("upload-expires")
            .and_then(|e| e.parse::<u64>().ok())
            .ok_or_else(|| {
                Error::InvalidUploadRequest("upload-expires must be a Unix time in seconds".into())
            })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if check_expiry && now > expires {
            return Err(Error::UploadTokenExpired(format!(
                "the upload token expired {} s ago; request a new upload URL",
                now - expires
            )));
        }
        let key = field("asset-key").unwrap_or("");
        let visibility = field("visibility").unwrap_or("private");
        let content_type = field("content-type").unwrap_or("");
        if content_type.contains(':') || content_type.chars().any(char::is_control) {
            return Err(Error::InvalidUploadRequest(
                "content-type must be a media type: no ':' and no control characters".into(),
            ));
        }
        if !verify(secret, expires, key, visibility, content_type, token) {
            return Err(Error::UploadTokenInvalid(
                "upload-token does not match asset-key, visibility, content-type and upload-expires; check UPLOAD_SECRET".into(),
            ));
        }
        let prefix = match visibility {
            "public" => &self.prefixes.public,
            "private" => &self.prefixes.private,
            _ => {
                return Err(Error::InvalidUploadRequest(
                    "visibility must be public or private".into(),
                ));
            }
        };
        validate_key(key).map_err(Error::InvalidUploadRequest)?;
        Ok(Some(Target {
            path: format!("{prefix}/{key}"),
            content_type: content_type.to_owned(),
        }))
    }
}

/// The token granite-assets computes (lowercase hex HMAC-SHA256).
pub fn sign(
    secret: &Secret,
    expires: u64,
    key: &str,
    visibility: &str,
    content_type: &str,
) -> String {
    crate::upload::hex(
        &mac(secret, expires, key, visibility, content_type)
            .finalize()
            .into_bytes(),
    )
}

fn mac(
    secret: &Secret,
    expires: u64,
    key: &str,
    visibility: &str,
    content_type: &str,
) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose()).expect("HMAC takes any key length");
    mac.update(format!("{expires}:{key}:{visibility}:{content_type}").as_bytes());
    mac
}

/// Constant-time check of a lowercase hex token.
fn verify(
    secret: &Secret,
    expires: u64,
    key: &str,
    visibility: &str,
    content_type: &str,
    token: &str,
) -> bool {
    let Some(digest) = decode_lower_hex(token) else {
        return false;
    };
    mac(secret, expires, key, visibility, content_type)
        .verify_slice(&digest)
        .is_ok()
}

fn decode_lower_hex(s: &str) -> Option<Vec<u8>> {
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    if s.len() != 64 {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new("test-upload-secret")
    }

    #[test]
    fn matches_the_granite_assets_vector() {
        assert_eq!(
            sign(
                &secret(),
                4102444800,
                "reports/q2.pdf",
                "private",
                "application/pdf"
            ),
            "7de452f8c7ee82ff52600b1aa33574e0c71baa279504204100cd9bdeea809aca"
        );
    }

    fn metadata(expires: u64, key: &str, visibility: &str, token: &str) -> Metadata {
        [
            ("asset-key", key),
            ("content-type", "application/pdf"),
            ("visibility", visibility),
            ("upload-expires", &expires.to_string()),
            ("upload-token", token),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn tokens() -> UploadTokens {
        UploadTokens::new(Some(secret()), false, Prefixes::default())
    }

    #[test]
    fn valid_token_publishes_under_the_visibility_prefix() {
        let token = sign(
            &secret(),
            4102444800,
            "reports/q2.pdf",
            "private",
            "application/pdf",
        );
        let target =
            tokens().check_creation(&metadata(4102444800, "reports/q2.pdf", "private", &token));
        assert_eq!(
            target.ok().flatten(),
            Some(Target {
                path: "private/reports/q2.pdf".into(),
                content_type: "application/pdf".into()
            })
        );
    }

    #[test]
    fn expired_is_400_and_bad_or_missing_is_403() {
        let past = 1_000_000_000;
        let token = sign(&secret(), past, "k", "public", "application/pdf");
        let err = tokens()
            .check_creation(&metadata(past, "k", "public", &token))
            .err();
        assert_eq!(err.map(|e| e.status().as_u16()), Some(400));

        let good = sign(&secret(), 4102444800, "k", "public", "application/pdf");
        for (key, vis, tok) in [
            ("other", "public", good.as_str()),
            ("k", "private", good.as_str()),
            ("k", "public", &good.to_uppercase()),
            ("k", "public", "nothex"),
        ] {
            let err = tokens()
                .check_creation(&metadata(4102444800, key, vis, tok))
                .err();
            assert_eq!(
                err.map(|e| e.status().as_u16()),
                Some(403),
                "{key} {vis} {tok}"
            );
        }
        let mut no_token = metadata(4102444800, "k", "public", "");
        no_token.remove("upload-token");
        assert_eq!(
            tokens()
                .check_creation(&no_token)
                .err()
                .map(|e| e.status().as_u16()),
            Some(403)
        );
    }

    #[test]
    fn tokenless_uploads_need_the_opt_in() {
        let open = UploadTokens::new(None, true, Prefixes::default());
        assert_eq!(open.check_creation(&Metadata::new()).ok(), Some(None));
    }

    #[test]
    fn signed_but_unservable_keys_are_400() {
        for key in ["a//b", "100%.txt", "../escape"] {
            let token = sign(&secret(), 4102444800, key, "public", "application/pdf");
            let err = tokens()
                .check_creation(&metadata(4102444800, key, "public", &token))
                .err();
            assert_eq!(err.map(|e| e.status().as_u16()), Some(400), "{key}");
        }
        let token = sign(&secret(), 4102444800, "k", "secret", "application/pdf");
        let err = tokens()
            .check_creation(&metadata(4102444800, "k", "secret", &token))
            .err();
        assert_eq!(err.map(|e| e.status().as_u16()), Some(400));
    }

    /// The review's forgery: a token for (`x:public`, private, `text/plain`) presented as
    /// (`x`, public, `private:text/plain`) has the same payload. The `:` in the content type is
    /// refused, so the private upload cannot become public.
    #[test]
    fn a_colon_in_the_content_type_cannot_move_the_key_split() {
        let token = sign(&secret(), 4102444800, "x:public", "private", "text/plain");
        let forged: Metadata = [
            ("asset-key", "x"),
            ("content-type", "private:text/plain"),
            ("visibility", "public"),
            ("upload-expires", "4102444800"),
            ("upload-token", token.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let err = tokens().check_creation(&forged).err();
        assert_eq!(err.map(|e| e.status().as_u16()), Some(400));
        // The honest request still works, colon in the key and all.
        let mut honest = forged.clone();
        honest.insert("asset-key".into(), "x:public".into());
        honest.insert("content-type".into(), "text/plain".into());
        honest.insert("visibility".into(), "private".into());
        let target = tokens().check_creation(&honest).ok().flatten();
        assert_eq!(target.map(|t| t.path), Some("private/x:public".to_owned()));
    }

    /// Splits a payload the only way it can be split once content types have no `:`.
    fn split_payload(payload: &str) -> Option<(u64, &str, &str, &str)> {
        let (expires, rest) = payload.split_once(':')?;
        let (rest, content_type) = rest.rsplit_once(':')?;
        let (key, visibility) = rest.rsplit_once(':')?;
        Some((expires.parse().ok()?, key, visibility, content_type))
    }

    proptest::proptest! {
        /// Every accepted (expires, key, visibility, content type) has a payload that splits
        /// back into exactly itself, so no token can be valid for two different uploads.
        #[test]
        fn token_payloads_are_unique(
            expires in proptest::prelude::any::<u64>(),
            key in "[a-z:/ .-]{1,24}",
            public in proptest::prelude::any::<bool>(),
            content_type in "[a-z/+.; =-]{0,24}",
        ) {
            let visibility = if public { "public" } else { "private" };
            let payload = format!("{expires}:{key}:{visibility}:{content_type}");
            proptest::prop_assert_eq!(
                split_payload(&payload),
                Some((expires, key.as_str(), visibility, content_type.as_str()))
            );
        }
    }

    #[test]
    fn secrets_do_not_debug_print() {
        assert_eq!(format!("{:?}", secret()), "Secret(<redacted>)");
    }
}
