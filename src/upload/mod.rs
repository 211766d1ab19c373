//! What an upload is, independent of HTTP and of where its bytes live: its id, its length,
//! its metadata, its place in a concatenation and, for tokened uploads, where it publishes.

pub mod lock;

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Upload metadata as tusd keeps it: decoded values, one per key. A `BTreeMap` so the
/// `Upload-Metadata` echo is deterministic (tusd's order is random).
pub type Metadata = BTreeMap<String, String>;

/// An upload id: 32 lowercase hex characters for uploads we create. Ids arriving in requests
/// are checked against a conservative alphabet before they touch any storage path, which also
/// admits ids of uploads an earlier tusd created (tusd's s3store ids contain `+`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UploadId(String);

/// Longest id accepted from a request: tusd s3store ids are 32 hex + `+` + a multipart id.
const MAX_ID_LEN: usize = 512;

impl UploadId {
    /// A fresh id: 128 bits from the operating system's CSPRNG, as lowercase hex.
    pub fn generate() -> Self {
        let mut raw = [0u8; 16];
        // getrandom only fails when the OS has no entropy source at all; nothing can work then.
        getrandom::fill(&mut raw).expect("the operating system's random source is unavailable");
        UploadId(hex(&raw))
    }

    /// Validates an id taken from a request path or an `Upload-Concat` URL. `None` means no
    /// upload can have this id (the caller answers 404).
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = !raw.is_empty()
            && raw.len() <= MAX_ID_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+'));
        valid.then(|| UploadId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UploadId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        UploadId::parse(&value).ok_or_else(|| format!("invalid upload id {value:?}"))
    }
}

impl From<UploadId> for String {
    fn from(id: UploadId) -> Self {
        id.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UploadId({})", self.0)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// An upload's role in the concatenation extension.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Concat {
    #[default]
    None,
    /// Created with `Upload-Concat: partial`: never published on its own.
    Partial,
    /// Created with `Upload-Concat: final;…`: the concatenation of these uploads, in order.
    Final(Vec<UploadId>),
}

/// Where a finished tokened upload is published: `<visibility prefix>/<key>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The storage-relative path, already validated (`public/reports/q1.pdf`).
    pub path: String,
    /// The `content-type` the token was signed for.
    pub content_type: String,
}

/// Where an upload is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Phase {
    /// Receiving bytes (or complete without a target).
    #[default]
    Receiving,
    /// All bytes are stored and publishing to the target has begun; a restart finishes it.
    Publishing,
    /// Published at the target; the upload's own data is gone.
    Published,
}

/// The state of one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    pub id: UploadId,
    /// `None` while the length is deferred (`Upload-Defer-Length: 1`).
    pub length: Option<u64>,
    /// Bytes stored so far.
    pub offset: u64,
    pub metadata: Metadata,
    pub concat: Concat,
    pub target: Option<Target>,
    /// For a partial upload created with a token (partials never publish, so they have no
    /// target): the target that token was signed for. A final upload may only combine partials
    /// of its own token's scope, and a tokenless final only tokenless partials, so nobody can
    /// concatenate someone else's upload into an asset of theirs.
    pub scope: Option<Target>,
    pub phase: Phase,
    /// When bytes last arrived (or the upload was created): the expiry clock starts here.
    pub updated: Option<SystemTime>,
}

impl UploadInfo {
    /// A new, empty upload.
    pub fn new(id: UploadId, length: Option<u64>, metadata: Metadata, concat: Concat) -> Self {
        UploadInfo {
            id,
            length,
            offset: 0,
            metadata,
            concat,
            target: None,
            scope: None,
            phase: Phase::Receiving,
            updated: None,
        }
    }

    /// All declared bytes are stored.
    pub fn is_complete(&self) -> bool {
        self.length == Some(self.offset)
    }

    /// Bytes still expected, `None` while the length is deferred.
    pub fn remaining(&self) -> Option<u64> {
        self.length.map(|len| len.saturating_sub(self.offset))
    }

    /// Every byte is stored but the upload is not published at its target yet: a crash (or a
    /// failed publish) came between the last byte and the end of the publish. Completing it
    /// again finishes the job.
    pub fn awaits_publish(&self) -> bool {
        self.is_complete()
            && match self.target {
                Some(_) => self.phase != Phase::Published,
                // Without a target only a backend that writes the upload's object after its
                // last byte (S3) reports this phase, until the object is there.
                None => self.phase == Phase::Publishing,
            }
    }

    pub fn is_final(&self) -> bool {
        matches!(self.concat, Concat::Final(_))
    }

    /// Created with an upload token: its bytes become an asset (or part of one) and are only
    /// ever read through the asset URL and its signature.
    pub fn is_tokened(&self) -> bool {
        // The token itself counts too: uploads created under tusd carry it in their metadata.
        self.target.is_some() || self.scope.is_some() || self.metadata.contains_key("upload-token")
    }

    /// Takes over an upload created under tusd with an upload token: from now on it publishes
    /// at `target` (a partial keeps it as its scope), and the token is forgotten.
    pub fn adopt_token_target(&mut self, target: Target) {
        match self.concat {
            Concat::Partial => self.scope = Some(target),
            Concat::None | Concat::Final(_) => self.target = Some(target),
        }
        self.metadata.remove("upload-token");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_32_lowercase_hex_and_unique() {
        let a = UploadId::generate();
        let b = UploadId::generate();
        assert_eq!(a.as_str().len(), 32);
        assert!(
            a.as_str()
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn request_ids_cannot_name_paths() {
        for bad in [
            "", "..", "a/b", "a\\b", ".info", "a.info", "%2e", "a b", "é",
        ] {
            assert!(UploadId::parse(bad).is_none(), "{bad:?} accepted");
        }
        let long = "a".repeat(MAX_ID_LEN + 1);
        assert!(UploadId::parse(&long).is_none());
        for good in [
            "0123456789abcdef0123456789abcdef",
            "abc+multipart-id_x",
            "A",
        ] {
            assert!(UploadId::parse(good).is_some(), "{good:?} rejected");
        }
    }

    #[test]
    fn hex_encodes() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
