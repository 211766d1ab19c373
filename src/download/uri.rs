//! nginx's `$uri`: the request path percent-decoded and normalised as
//! `ngx_http_parse_complex_uri` does it (granite-and-nginx.md §2.4). Location choice, the file
//! looked up and the `secure_link` hash all use this form, so it must be byte-exact:
//!
//! - `%XX` is decoded (either case); a bad or truncated escape, or a decoded NUL, is an error;
//! - a decoded byte acts as if typed: `%2F` separates segments and `%2e%2e` is `..`;
//! - `//` runs are merged, `.` segments dropped, `..` removes the previous segment, and going
//!   above `/` is an error;
//! - `+` stays `+`, bytes ≥ 0x80 pass through unchanged (no UTF-8 check, no normalisation).

/// The path cannot be parsed: nginx answers 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadUri;

/// Normalises a raw request path (without the query).
pub fn normalize(raw: &[u8]) -> Result<Vec<u8>, BadUri> {
    let decoded = percent_decode(raw)?;
    if decoded.first() != Some(&b'/') {
        return Err(BadUri);
    }
    let mut out: Vec<u8> = Vec::with_capacity(decoded.len());
    let segments: Vec<&[u8]> = decoded[1..].split(|&b| b == b'/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            b"" | b"." => {}
            b".." => {
                // Remove the previous segment, keeping its leading slash.
                let keep = out.iter().rposition(|&b| b == b'/').ok_or(BadUri)?;
                out.truncate(keep);
            }
            name => {
                out.push(b'/');
                out.extend_from_slice(name);
            }
        }
        // A path ending in `/`, `/.` or `/..` names a directory.
        if i == last && matches!(*segment, b"" | b"." | b"..") {
            out.push(b'/');
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, BadUri> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let high = raw.get(i + 1).copied().and_then(hex).ok_or(BadUri)?;
            let low = raw.get(i + 2).copied().and_then(hex).ok_or(BadUri)?;
            let byte = high << 4 | low;
            if byte == 0 {
                return Err(BadUri);
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, BadUri> {
        normalize(raw.as_bytes()).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn matches_recorded_nginx_normalisation() {
        let ok =
            |raw: &str, expected: &str| assert_eq!(norm(raw).as_deref(), Ok(expected), "{raw}");
        ok(
            "/assets/private/reports/q1.pdf",
            "/assets/private/reports/q1.pdf",
        );
        ok(
            "/assets/private/my%20file.txt",
            "/assets/private/my file.txt",
        );
        ok(
            "/assets/private/caf%C3%A9/%C3%BCn%C3%AF.txt",
            "/assets/private/café/ünï.txt",
        );
        ok("/assets/private/a+b.txt", "/assets/private/a+b.txt");
        ok("/assets/private/a%2Bb.txt", "/assets/private/a+b.txt");
        ok("/assets/private/100%25.txt", "/assets/private/100%.txt");
        ok("/assets/private/100%2525.txt", "/assets/private/100%25.txt");
        ok("/assets/private/what%3F.txt", "/assets/private/what?.txt");
        ok("/assets/private/a%23b.txt", "/assets/private/a#b.txt");
        ok(
            "/assets/private/reports%2Fq1.pdf",
            "/assets/private/reports/q1.pdf",
        );
        ok(
            "/assets/private//reports//q1.pdf",
            "/assets/private/reports/q1.pdf",
        );
        ok(
            "/assets/private/reports/./q1.pdf",
            "/assets/private/reports/q1.pdf",
        );
        ok(
            "/assets/private/../public/hello.txt",
            "/assets/public/hello.txt",
        );
        ok(
            "/assets/public/%2e%2e/private/secret.txt",
            "/assets/private/secret.txt",
        );
        ok(
            "/assets/public/..%2fprivate/secret.txt",
            "/assets/private/secret.txt",
        );
        ok("/assets/private/dir/", "/assets/private/dir/");
        ok("/assets/private/dir/..", "/assets/private/");
        ok("/assets/", "/assets/");
        ok("/", "/");
        assert_eq!(normalize(b"/a/%FF.bin"), Ok(b"/a/\xff.bin".to_vec()));
    }

    #[test]
    fn unparsable_paths_are_errors() {
        for raw in [
            "/assets/../../etc/passwd",
            "/a/%2e%2e/%2e%2e/%2e%2e/x",
            "/a%00b",
            "/a%zz",
            "/a%4",
            "/a%",
            "/..",
        ] {
            assert_eq!(norm(raw), Err(BadUri), "{raw}");
        }
    }
}
