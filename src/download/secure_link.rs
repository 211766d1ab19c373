//! nginx's `secure_link` in md5 mode, as the granite-assets template configures it:
//! `secure_link $arg_md5,$arg_expires; secure_link_md5 "$secure_link_expires$uri SECRET"`
//! (`ngx_http_secure_link_module.c`; granite-and-nginx.md §2.1–2.3). Pure: no I/O.

use md5::{Digest, Md5};

/// The outcome nginx puts in `$secure_link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkCheck {
    /// `"1"`: the hash matches and the link has not expired.
    Valid,
    /// `"0"`: the hash matches but `expires < now` (410).
    Expired,
    /// `""`: anything wrong with token, expiry syntax or hash (403). The hash is checked
    /// before the expiry, so a tampered expired link is invalid, not expired.
    Invalid,
}

/// Checks a request: `query` is the raw query string, `uri` the normalised path
/// ([`super::uri::normalize`]), `now` Unix seconds.
pub fn check(query: Option<&[u8]>, uri: &[u8], secret: &[u8], now: i64) -> LinkCheck {
    let query = query.unwrap_or_default();
    // `$arg_md5,$arg_expires` is evaluated first and split at its first comma.
    let mut joined = arg(query, b"md5").unwrap_or_default().to_vec();
    joined.push(b',');
    joined.extend_from_slice(arg(query, b"expires").unwrap_or_default());
    let comma = joined
        .iter()
        .position(|&b| b == b',')
        .unwrap_or(joined.len());
    let (token, expires_text) = (&joined[..comma], &joined[comma + 1..]);

    let Some(expires) = parse_expires(expires_text) else {
        return LinkCheck::Invalid;
    };
    if token.len() > 24 {
        return LinkCheck::Invalid;
    }
    let Some(digest) = decode_base64url(token).filter(|d| d.len() == 16) else {
        return LinkCheck::Invalid;
    };

    let mut md5 = Md5::new();
    md5.update(expires_text);
    md5.update(uri);
    md5.update(b" ");
    md5.update(secret);
    let expected = md5.finalize();
    // Constant time, as nginx since 1.31.2.
    let diff = expected
        .iter()
        .zip(&digest)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        LinkCheck::Invalid
    } else if expires < now {
        LinkCheck::Expired
    } else {
        LinkCheck::Valid
    }
}

/// The token for a path: base64url without padding of the MD5 (what granite-assets signs).
pub fn sign(uri: &[u8], expires: i64, secret: &[u8]) -> String {
    let mut md5 = Md5::new();
    md5.update(expires.to_string());
    md5.update(uri);
    md5.update(b" ");
    md5.update(secret);
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(md5.finalize())
}

/// `$arg_NAME` (`ngx_http_arg`): the name matched case-insensitively at the start of the query
/// or right after `&`, followed by `=`; the first such occurrence wins; the value is the raw
/// bytes up to the next `&` (no `+` or `%` decoding).
pub fn arg<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    let mut start = 0;
    while start + name.len() < query.len() {
        let at_boundary = start == 0 || query[start - 1] == b'&';
        let candidate = &query[start..];
        if at_boundary
            && candidate[..name.len()].eq_ignore_ascii_case(name)
            && candidate[name.len()] == b'='
        {
            let value = &candidate[name.len() + 1..];
            let end = value.iter().position(|&b| b == b'&').unwrap_or(value.len());
            return Some(&value[..end]);
        }
        start += 1;
    }
    None
}

/// `ngx_atotm` plus the module's `> 0` check: ASCII digits only, no sign, no overflow.
fn parse_expires(text: &[u8]) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    (value > 0).then_some(value)
}

/// `ngx_decode_base64url`: stops at the first `=`, rejects characters outside `A-Za-z0-9-_`
/// before it and lengths of 4n+1, ignores unused trailing bits.
fn decode_base64url(src: &[u8]) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    };
    let len = src.iter().position(|&b| b == b'=').unwrap_or(src.len());
    let sextets: Vec<u8> = src[..len]
        .iter()
        .map(|&c| value(c))
        .collect::<Option<_>>()?;
    if len % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(len * 3 / 4);
    for group in sextets.chunks(4) {
        let s = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
        let n = s(0) << 18 | s(1) << 12 | s(2) << 6 | s(3);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..group.len() - 1]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::LinkCheck::{Expired, Invalid, Valid};
    use super::*;

    const SECRET: &[u8] = b"test-secret-key";
    const URI: &[u8] = b"/assets/private/reports/q1.pdf";
    const NOW: i64 = 1_800_000_000;

    fn q(query: &str) -> LinkCheck {
        check(Some(query.as_bytes()), URI, SECRET, NOW)
    }

    #[test]
    fn nginx_documentation_vector() {
        assert_eq!(
            sign(b"/s/link127.0.0.1", 2147483647, b"secret"),
            "_e4Nc3iduzkWRm01TBBNYw"
        );
    }

    /// Server A vectors of `secure_link_vectors.json`.
    #[test]
    fn recorded_vectors() {
        assert_eq!(sign(URI, 4102444800, SECRET), "mCKvpV2I4bco6SPpZvlc-w");
        assert_eq!(q("md5=mCKvpV2I4bco6SPpZvlc-w&expires=4102444800"), Valid);
        assert_eq!(q("md5=qpdgYfUSrB6EEOBg0zuEvw&expires=1000000000"), Expired);
        assert_eq!(q("md5=apdgYfUSrB6EEOBg0zuEvw&expires=1000000000"), Invalid);
        assert_eq!(q("md5=ACKvpV2I4bco6SPpZvlc-w&expires=4102444800"), Invalid);
        assert_eq!(
            q("md5=AAAAAAAAAAAAAAAAAAAAAAAA&expires=4102444800"),
            Invalid
        );
        assert_eq!(q("expires=4102444800"), Invalid);
        assert_eq!(q("md5=mCKvpV2I4bco6SPpZvlc-w"), Invalid);
        assert_eq!(q("md5=&expires=4102444800"), Invalid);
        assert_eq!(check(None, URI, SECRET, NOW), Invalid);
        assert_eq!(q("md5=mCKvpV2I4bco6SPpZvlc-w==&expires=4102444800"), Valid);
        assert_eq!(q("md5=mCKvpV2I4bco6SPpZvlc-w=x&expires=4102444800"), Valid);
        assert_eq!(
            q("md5=mCKvpV2I4bco6SPpZvlc-w%3D%3D&expires=4102444800"),
            Invalid
        );
        assert_eq!(q("md5=mCKvpV2I4bco6SPpZvlc+w&expires=4102444800"), Invalid);
        assert_eq!(q("md5=mCKvpV2I4bco6SPpZvlc-x&expires=4102444800"), Valid);
        assert_eq!(
            q("md5=mCKvpV2I4bco6SPpZvlc%2Dw&expires=4102444800"),
            Invalid
        );
        assert_eq!(q("MD5=mCKvpV2I4bco6SPpZvlc-w&EXPIRES=4102444800"), Valid);
        assert_eq!(q("expires=4102444800&md5=mCKvpV2I4bco6SPpZvlc-w"), Valid);
        assert_eq!(
            q("md5=AAAAAAAAAAAAAAAAAAAAAA&md5=mCKvpV2I4bco6SPpZvlc-w&expires=4102444800"),
            Invalid
        );
        assert_eq!(
            q("md5=mCKvpV2I4bco6SPpZvlc-w&expires=4102444800&download=1&x=y"),
            Valid
        );
        assert_eq!(q("md5=mCKvpV2I4bco6SPpZvlc-w;expires=4102444800"), Invalid);
        assert_eq!(q("xmd5=mCKvpV2I4bco6SPpZvlc-w&expires=4102444800"), Invalid);
    }

    #[test]
    fn expiry_syntax_and_boundary() {
        for expires in [
            "abc",
            "-1",
            "0",
            "+4102444800",
            "99999999999999999999",
            "",
            " 1",
        ] {
            let token = {
                let mut md5 = Md5::new();
                md5.update(expires);
                md5.update(URI);
                md5.update(b" ");
                md5.update(SECRET);
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(md5.finalize())
            };
            assert_eq!(
                q(&format!("md5={token}&expires={expires}")),
                Invalid,
                "{expires:?}"
            );
        }
        let one = sign(URI, 1, SECRET);
        assert_eq!(q(&format!("md5={one}&expires=1")), Expired);
        // `expires == now` is still valid; the hash covers the expiry text as sent.
        let now = sign(URI, NOW, SECRET);
        assert_eq!(q(&format!("md5={now}&expires={NOW}")), Valid);
        let leading_zero = {
            let mut md5 = Md5::new();
            md5.update(b"04102444800");
            md5.update(URI);
            md5.update(b" ");
            md5.update(SECRET);
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(md5.finalize())
        };
        assert_eq!(q(&format!("md5={leading_zero}&expires=04102444800")), Valid);
        assert_eq!(q("md5=mCKvpV2I4bco6SPpZvlc-w&expires=04102444800"), Invalid);
    }

    #[test]
    fn arg_extraction() {
        assert_eq!(arg(b"a=1&md5=x&md5=y", b"md5"), Some(&b"x"[..]));
        assert_eq!(arg(b"amd5=1", b"md5"), None);
        assert_eq!(arg(b"md5", b"md5"), None);
        assert_eq!(arg(b"md5=", b"md5"), Some(&b""[..]));
        assert_eq!(arg(b"Md5=v", b"md5"), Some(&b"v"[..]));
    }
}
