//! Pure parsers and serialisers for the draft's header fields ("Resumable Uploads for HTTP",
//! draft-ietf-httpbis-resumable-upload, `../shared/reference/rufh-draft.md`). No I/O; each is
//! unit tested below.
//!
//! Every field here is a Structured Field (RFC 9651, [`super::sf`]); the draft says a value of
//! the wrong type "MUST cause the entire header field to be ignored", so the parsers return
//! `None` for a malformed field exactly as for an absent one, and the handlers decide what a
//! missing field means for the request at hand (e.g. an append without a usable
//! `Upload-Offset` is a 400).

use http::HeaderMap;

use super::sf::{self, Bare, Member};
use crate::lifecycle::body::{Checksum, ChecksumAlgorithm};

pub const UPLOAD_DRAFT_INTEROP_VERSION: &str = "upload-draft-interop-version";
pub const UPLOAD_COMPLETE: &str = "upload-complete";
pub const UPLOAD_OFFSET: &str = "upload-offset";
pub const UPLOAD_LENGTH: &str = "upload-length";
pub const UPLOAD_LIMIT: &str = "upload-limit";
/// The media type of an append's content (draft §"Media Type"); required from interop 6 on.
pub const PARTIAL_UPLOAD: &str = "application/partial-upload";

/// The interop versions tusgate speaks. Interop 3 (draft -01) used `Upload-Incomplete` with
/// the opposite meaning; from interop 4 on every version sends `Upload-Complete` (tusd
/// v2.10.1 `isIETFDraftUploadComplete`, tus-js-client 4.3.1 `upload.js`), so none of ours
/// needs `Upload-Incomplete`. The differences that matter between ours:
/// - 5 (draft -03, tus-js-client `ietf-draft-03`): no `Upload-Limit`, append content type
///   not checked (tusd does not check it for 3–5);
/// - 6 (drafts -04/-05, tus-js-client `ietf-draft-05`): `application/partial-upload`
///   required, `Upload-Limit` with `expires` where later versions have `max-age`;
/// - 8 (drafts -09..-11, iOS 26.2 URLSession) and 9 (-12 on; only the number changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InteropVersion {
    V5 = 5,
    V6 = 6,
    V8 = 8,
    V9 = 9,
}

impl InteropVersion {
    pub const SUPPORTED: [InteropVersion; 4] = [Self::V9, Self::V8, Self::V6, Self::V5];

    pub fn number(self) -> i64 {
        self as i64
    }

    /// Whether an append must carry `Content-Type: application/partial-upload`.
    pub fn requires_partial_upload_type(self) -> bool {
        self >= Self::V6
    }

    /// The `Upload-Limit` key for the remaining lifetime: `expires` in interop 6 (renamed
    /// to `max-age` in draft -06), none in interop 5 (no `Upload-Limit` before draft -04).
    fn lifetime_key(self) -> Option<&'static str> {
        match self {
            Self::V5 => None,
            Self::V6 => Some("expires"),
            Self::V8 | Self::V9 => Some("max-age"),
        }
    }
}

/// Which protocol a request speaks, decided by `Upload-Draft-Interop-Version` alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// No `Upload-Draft-Interop-Version`: tus 1.0 (src/tus), as before.
    Tus,
    Draft(InteropVersion),
    /// The field is present but names no version we speak (or is not an Integer). The draft
    /// only says a server MUST NOT send 104 for a missing or mismatching version; it does not
    /// say to reject. We answer 400 with the supported list rather than fall back to tus 1.0
    /// (tusd's choice: the request then fails with 412 for lack of `Tus-Resumable`), because a
    /// reason naming the versions is what lets a client developer fix it. Keeps the raw
    /// value for that message.
    UnsupportedDraft(String),
}

fn header_value(headers: &HeaderMap, name: &str) -> Option<Option<String>> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    // Several field lines of one Structured Field are combined with ", " (RFC 9651 §4.2);
    // for an Item that makes the field invalid, as it should.
    let mut joined = String::new();
    for (n, v) in values.enumerate() {
        let Ok(s) = v.to_str() else { return Some(None) };
        if n > 0 {
            joined.push_str(", ");
        }
        joined.push_str(s);
    }
    Some(Some(joined))
}

pub fn protocol(headers: &HeaderMap) -> Protocol {
    let Some(raw) = header_value(headers, UPLOAD_DRAFT_INTEROP_VERSION) else {
        return Protocol::Tus;
    };
    let version = raw
        .as_deref()
        .and_then(sf::parse_item)
        .and_then(|b| match b {
            Bare::Integer(n) => InteropVersion::SUPPORTED
                .into_iter()
                .find(|v| v.number() == n),
            _ => None,
        });
    match version {
        Some(v) => Protocol::Draft(v),
        None => Protocol::UnsupportedDraft(raw.unwrap_or_default()),
    }
}

/// `Upload-Complete`: an Item whose value is a Boolean; anything else is ignored (`None`).
pub fn upload_complete(headers: &HeaderMap) -> Option<bool> {
    match sf::parse_item(&header_value(headers, UPLOAD_COMPLETE)??)? {
        Bare::Boolean(b) => Some(b),
        _ => None,
    }
}

fn non_negative_integer(headers: &HeaderMap, name: &str) -> Option<u64> {
    match sf::parse_item(&header_value(headers, name)??)? {
        Bare::Integer(n) => u64::try_from(n).ok(),
        _ => None,
    }
}

/// `Upload-Offset`: an Item whose value is a non-negative Integer; anything else is ignored.
pub fn upload_offset(headers: &HeaderMap) -> Option<u64> {
    non_negative_integer(headers, UPLOAD_OFFSET)
}

/// `Upload-Length`: an Item whose value is a non-negative Integer; anything else is ignored.
pub fn upload_length(headers: &HeaderMap) -> Option<u64> {
    non_negative_integer(headers, UPLOAD_LENGTH)
}

/// The length a request indicates (draft §"Length"): `Upload-Length`, and/or the current
/// offset plus `Content-Length` when `Upload-Complete: ?1`. Both present and different is
/// the inconsistent-upload-length problem.
pub fn indicated_length(
    upload_length: Option<u64>,
    complete: bool,
    offset: u64,
    content_length: Option<u64>,
) -> Result<Option<u64>, InconsistentLength> {
    let from_content = if complete {
        content_length.and_then(|c| offset.checked_add(c))
    } else {
        None
    };
    match (upload_length, from_content) {
        (Some(a), Some(b)) if a != b => Err(InconsistentLength),
        (a, b) => Ok(a.or(b)),
    }
}

/// Two length indicators disagree (draft §"Inconsistent Length").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InconsistentLength;

/// `Upload-Limit` (draft §"Limits"), all in bytes except `max_age` (seconds from now).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadLimit {
    pub max_size: Option<u64>,
    pub min_size: Option<u64>,
    pub max_append_size: Option<u64>,
    pub min_append_size: Option<u64>,
    pub max_age: Option<u64>,
}

impl UploadLimit {
    /// Parses the field as a receiver must: unknown keys are ignored; a known key whose value
    /// is not an Integer makes the whole field ignored (`None`). A negative Integer is
    /// treated the same way (sizes and ages cannot be negative). `expires` (interop 6) is
    /// read as `max-age`.
    pub fn parse(headers: &HeaderMap) -> Option<UploadLimit> {
        let members = sf::parse_dictionary(&header_value(headers, UPLOAD_LIMIT)??)?;
        let mut limit = UploadLimit::default();
        for (key, member) in members {
            let slot = match key.as_str() {
                "max-size" => &mut limit.max_size,
                "min-size" => &mut limit.min_size,
                "max-append-size" => &mut limit.max_append_size,
                "min-append-size" => &mut limit.min_append_size,
                "max-age" | "expires" => &mut limit.max_age,
                _ => continue,
            };
            match member {
                Member::Item(Bare::Integer(n)) => *slot = Some(u64::try_from(n).ok()?),
                _ => return None,
            }
        }
        Some(limit)
    }

    /// The field value for a response to `version`, or `None` when that version has no
    /// `Upload-Limit` (interop 5). With no limit at all it says `min-size=0`, because the
    /// draft forbids an empty value. Integers above RFC 9651's 15 digits are clamped to the
    /// largest one (a bigger limit is not expressible and means "no limit" in practice).
    pub fn to_header(&self, version: InteropVersion) -> Option<String> {
        let lifetime = version.lifetime_key()?;
        let fields = [
            ("max-size", self.max_size),
            ("min-size", self.min_size),
            ("max-append-size", self.max_append_size),
            ("min-append-size", self.min_append_size),
            (lifetime, self.max_age),
        ];
        let parts: Vec<String> = fields
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={}", v.min(SF_INTEGER_MAX))))
            .collect();
        Some(if parts.is_empty() {
            "min-size=0".to_string()
        } else {
            parts.join(", ")
        })
    }
}

/// `Content-Digest` (RFC 9530; draft §"Content Digests"): the digest of this request's content,
/// in the strongest algorithm both sides know (`sha-256`, then the deprecated `sha` (SHA-1)
/// and `md5`, which tus 1.0's checksum extension also takes). A malformed field, or one with
/// only algorithms we lack (`sha-512`, …), checks nothing: the draft makes digests optional.
pub fn content_digest(headers: &HeaderMap) -> Option<Checksum> {
    let members = sf::parse_dictionary(&header_value(headers, "content-digest")??)?;
    let digest = |name: &str| {
        members.iter().find_map(|(key, member)| match member {
            Member::Item(Bare::ByteSequence(digest)) if key == name => Some(digest.clone()),
            _ => None,
        })
    };
    [
        ("sha-256", ChecksumAlgorithm::Sha256),
        ("sha", ChecksumAlgorithm::Sha1),
        ("md5", ChecksumAlgorithm::Md5),
    ]
    .into_iter()
    .find_map(|(name, algorithm)| {
        Some(Checksum {
            algorithm,
            digest: digest(name)?,
        })
    })
}

/// The largest Integer RFC 9651 can carry (15 digits).
pub const SF_INTEGER_MAX: u64 = 999_999_999_999_999;

/// A Boolean field value (`?1`/`?0`) for `Upload-Complete` in responses.
pub fn sf_bool(b: bool) -> &'static str {
    if b { "?1" } else { "?0" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                *k,
                HeaderValue::from_str(v).expect("test header values are visible ASCII"),
            );
        }
        m
    }

    #[test]
    fn content_digest_takes_the_strongest_known_algorithm() {
        let sha256 = ":47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"; // of ""
        let d = content_digest(&h(&[(
            "content-digest",
            &format!("sha-512=:AAAA:, md5=:1B2M2Y8AsgTpgAmY7PhCfg==:, sha-256={sha256}"),
        )]))
        .expect("a supported digest");
        assert_eq!(d.algorithm, ChecksumAlgorithm::Sha256);
        assert_eq!(d.digest.len(), 32);
        let md5 = content_digest(&h(&[("content-digest", "md5=:1B2M2Y8AsgTpgAmY7PhCfg==:")]))
            .expect("md5");
        assert_eq!(md5.algorithm, ChecksumAlgorithm::Md5);
        assert_eq!(
            content_digest(&h(&[("content-digest", "sha-512=:AAAA:")])),
            None
        );
        assert_eq!(content_digest(&h(&[("content-digest", "sha-256=1")])), None);
        assert_eq!(
            content_digest(&h(&[("content-digest", "sha-256=:@@:")])),
            None
        );
        assert_eq!(content_digest(&h(&[])), None);
    }

    #[test]
    fn protocol_by_interop_version() {
        assert_eq!(protocol(&h(&[])), Protocol::Tus);
        for (raw, v) in [
            ("9", InteropVersion::V9),
            ("8", InteropVersion::V8),
            ("6", InteropVersion::V6),
            ("5", InteropVersion::V5),
            (" 8 ", InteropVersion::V8),
            ("8;x", InteropVersion::V8),
        ] {
            assert_eq!(
                protocol(&h(&[(UPLOAD_DRAFT_INTEROP_VERSION, raw)])),
                Protocol::Draft(v),
                "{raw}"
            );
        }
        for raw in ["7", "3", "10", "", "9.0", "\"9\"", "nine", "-8", "08x"] {
            assert_eq!(
                protocol(&h(&[(UPLOAD_DRAFT_INTEROP_VERSION, raw)])),
                Protocol::UnsupportedDraft(raw.to_string()),
                "{raw:?}"
            );
        }
        // Leading zeros are a valid RFC 9651 Integer.
        assert_eq!(
            protocol(&h(&[(UPLOAD_DRAFT_INTEROP_VERSION, "08")])),
            Protocol::Draft(InteropVersion::V8)
        );
        // Two field lines combine to "8, 9", which is no Item.
        let two = h(&[
            (UPLOAD_DRAFT_INTEROP_VERSION, "8"),
            (UPLOAD_DRAFT_INTEROP_VERSION, "9"),
        ]);
        assert_eq!(protocol(&two), Protocol::UnsupportedDraft("8, 9".into()));
    }

    #[test]
    fn version_differences() {
        assert!(!InteropVersion::V5.requires_partial_upload_type());
        assert!(InteropVersion::V6.requires_partial_upload_type());
        assert!(InteropVersion::V9.requires_partial_upload_type());
    }

    #[test]
    fn upload_complete_is_a_boolean_item() {
        assert_eq!(upload_complete(&h(&[])), None);
        assert_eq!(upload_complete(&h(&[(UPLOAD_COMPLETE, "?1")])), Some(true));
        assert_eq!(upload_complete(&h(&[(UPLOAD_COMPLETE, "?0")])), Some(false));
        assert_eq!(
            upload_complete(&h(&[(UPLOAD_COMPLETE, "?1;a=2")])),
            Some(true)
        );
        for bad in ["1", "true", "?", "?2", "\"?1\"", "?1, ?0", ""] {
            assert_eq!(
                upload_complete(&h(&[(UPLOAD_COMPLETE, bad)])),
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn offsets_and_lengths_are_non_negative_integers() {
        assert_eq!(upload_offset(&h(&[(UPLOAD_OFFSET, "0")])), Some(0));
        assert_eq!(
            upload_offset(&h(&[(UPLOAD_OFFSET, "25000000")])),
            Some(25_000_000)
        );
        assert_eq!(
            upload_length(&h(&[(UPLOAD_LENGTH, "999999999999999")])),
            Some(SF_INTEGER_MAX)
        );
        for bad in ["-1", "+1", "1.0", "abc", "1000000000000000", "1 2", ""] {
            assert_eq!(upload_offset(&h(&[(UPLOAD_OFFSET, bad)])), None, "{bad:?}");
            assert_eq!(upload_length(&h(&[(UPLOAD_LENGTH, bad)])), None, "{bad:?}");
        }
        assert_eq!(upload_offset(&h(&[])), None);
    }

    #[test]
    fn indicated_length_from_either_indicator() {
        assert_eq!(indicated_length(None, false, 0, Some(10)), Ok(None));
        assert_eq!(
            indicated_length(Some(100), false, 0, Some(10)),
            Ok(Some(100))
        );
        assert_eq!(indicated_length(None, true, 0, Some(10)), Ok(Some(10)));
        assert_eq!(indicated_length(None, true, 40, Some(10)), Ok(Some(50)));
        assert_eq!(indicated_length(Some(50), true, 40, Some(10)), Ok(Some(50)));
        assert_eq!(
            indicated_length(Some(51), true, 40, Some(10)),
            Err(InconsistentLength)
        );
        assert_eq!(indicated_length(Some(51), true, 40, None), Ok(Some(51)));
        assert_eq!(indicated_length(None, true, u64::MAX, Some(1)), Ok(None));
    }

    #[test]
    fn upload_limit_parse() {
        let l = UploadLimit::parse(&h(&[(UPLOAD_LIMIT, "max-size=1000, min-size=0, max-append-size=100, min-append-size=10, max-age=3600, future=\"x\"")])).expect("test input is valid");
        assert_eq!(
            l,
            UploadLimit {
                max_size: Some(1000),
                min_size: Some(0),
                max_append_size: Some(100),
                min_append_size: Some(10),
                max_age: Some(3600)
            }
        );
        assert_eq!(
            UploadLimit::parse(&h(&[(UPLOAD_LIMIT, "expires=60")]))
                .expect("test input is valid")
                .max_age,
            Some(60)
        );
        assert_eq!(UploadLimit::parse(&h(&[])), None);
        // A known key with a value of the wrong type invalidates the whole field.
        for bad in [
            "max-size=1.5",
            "max-size",
            "max-size=\"1\"",
            "max-size=(1)",
            "max-size=-1",
            "max-size=1,",
        ] {
            assert_eq!(
                UploadLimit::parse(&h(&[(UPLOAD_LIMIT, bad)])),
                None,
                "{bad:?}"
            );
        }
        // Unknown keys with any type are ignored.
        assert_eq!(
            UploadLimit::parse(&h(&[(UPLOAD_LIMIT, "x=(1 2), y")])),
            Some(UploadLimit::default())
        );
    }

    #[test]
    fn upload_limit_serialise_round_trips() {
        let l = UploadLimit {
            max_size: Some(u64::MAX),
            min_size: None,
            max_append_size: Some(5),
            min_append_size: None,
            max_age: Some(86400),
        };
        let v9 = l
            .to_header(InteropVersion::V9)
            .expect("test input is valid");
        assert_eq!(
            v9,
            "max-size=999999999999999, max-append-size=5, max-age=86400"
        );
        assert_eq!(
            UploadLimit::parse(&h(&[(UPLOAD_LIMIT, &v9)]))
                .expect("test input is valid")
                .max_size,
            Some(SF_INTEGER_MAX)
        );
        assert_eq!(
            l.to_header(InteropVersion::V6)
                .expect("test input is valid"),
            "max-size=999999999999999, max-append-size=5, expires=86400"
        );
        assert_eq!(l.to_header(InteropVersion::V5), None);
        assert_eq!(
            UploadLimit::default()
                .to_header(InteropVersion::V8)
                .expect("test input is valid"),
            "min-size=0"
        );
        assert_eq!(sf_bool(true), "?1");
        assert_eq!(sf_bool(false), "?0");
    }
}
