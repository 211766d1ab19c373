//! The JSON of hooks, byte for byte as tusd (Go's `encoding/json`) writes and reads it.
//!
//! Writing: Go escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings (`\u003c`…), which
//! serde_json does not; [`to_go_json`] adds that, so a hook endpoint that compares or signs
//! bodies sees tusd's bytes. Everything else already agrees (field order is declaration
//! order, map keys are sorted, `\b \f \n \r \t` short escapes and lowercase `\u00XX`).
//!
//! Reading: Go's decoder matches object keys to fields case-insensitively
//! (`rejectUpload` sets `RejectUpload`), ignores unknown keys, applies duplicate keys in
//! order (the last wins), leaves a field unchanged on `null` (but `null` makes a map nil),
//! accepts a top-level `null` as "no changes", and fails on a wrong type. The hand-written
//! `Deserialize` impls below do the same, so a response tusd accepts is accepted here.
//! Not reproduced: Go's Unicode case folding beyond ASCII (`K` for the Kelvin sign), and
//! invalid UTF-8 in a response (Go substitutes U+FFFD, serde_json refuses the response).

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use serde::Serialize;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{FileInfoChanges, HookResponse, HttpResponse};

/// Go's `json.Marshal` of `value`.
pub(crate) fn to_go_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // The hook types serialise infallibly (strings, integers, booleans, string maps).
    value
        .serialize(&mut serializer)
        .expect("hook JSON serialises");
    out
}

/// Compact JSON with Go's HTML-safe string escaping.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Go's `http.CanonicalHeaderKey`: `upload-length` becomes `Upload-Length`. A name with a
/// byte that is not a token character is returned unchanged, as Go does.
pub(crate) fn canonical_header_key(name: &str) -> String {
    const TOKEN_SPECIALS: &[u8] = b"!#$%&'*+-.^_`|~";
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || TOKEN_SPECIALS.contains(&b))
    {
        return name.to_owned();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// A `map[string]string`: `null` values become `""`, as Go stores them.
struct GoStringMap(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for GoStringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, Option<String>>::deserialize(deserializer)?;
        Ok(GoStringMap(
            map.into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
        ))
    }
}

/// Implements Go's struct decoding for a struct with `Default`: each entry names the JSON
/// field, the Rust field, its type and what `null` does (`keep`: nothing; `nil`: set `None`).
macro_rules! go_struct {
    ($ty:ident, $expecting:literal, { $($json:literal => $field:ident : $fty:ty, $null:ident;)* }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct GoVisitor;
                impl<'de> Visitor<'de> for GoVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_unit<E: serde::de::Error>(self) -> Result<$ty, E> {
                        Ok(<$ty>::default())
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        let mut out = <$ty>::default();
                        while let Some(key) = map.next_key::<String>()? {
                            $(
                                if key.eq_ignore_ascii_case($json) {
                                    let value = map.next_value::<Option<$fty>>()?;
                                    go_struct!(@set $null, out.$field, value);
                                    continue;
                                }
                            )*
                            map.next_value::<IgnoredAny>()?;
                        }
                        Ok(out)
                    }
                }
                deserializer.deserialize_any(GoVisitor)
            }
        }
    };
    (@set keep, $place:expr, $value:ident) => {
        if let Some(value) = $value {
            $place = value.into();
        }
    };
    (@set nil, $place:expr, $value:ident) => {
        $place = $value.map(|GoStringMap(map)| map);
    };
}

impl From<GoStringMap> for BTreeMap<String, String> {
    fn from(map: GoStringMap) -> Self {
        map.0
    }
}

go_struct!(HookResponse, "a hook response object", {
    "HTTPResponse" => http_response: HttpResponse, keep;
    "RejectUpload" => reject_upload: bool, keep;
    "RejectTermination" => reject_termination: bool, keep;
    "ChangeFileInfo" => change_file_info: FileInfoChanges, keep;
    "StopUpload" => stop_upload: bool, keep;
});

go_struct!(HttpResponse, "an HTTPResponse object", {
    "StatusCode" => status_code: i64, keep;
    "Body" => body: String, keep;
    "Header" => header: GoStringMap, keep;
});

go_struct!(FileInfoChanges, "a ChangeFileInfo object", {
    "ID" => id: String, keep;
    "MetaData" => metadata: GoStringMap, nil;
    "Storage" => storage: GoStringMap, nil;
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escapes_html_characters() {
        let out = to_go_json(&serde_json::json!({"a": "x<y>&z\u{2028}\u{2029}\u{8}\u{c}\u{1}é"}));
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            r#"{"a":"x\u003cy\u003e\u0026z\u2028\u2029\b\f\u0001é"}"#
        );
    }

    #[test]
    fn canonical_keys() {
        assert_eq!(canonical_header_key("upload-length"), "Upload-Length");
        assert_eq!(canonical_header_key("x-FOO-bar"), "X-Foo-Bar");
        assert_eq!(canonical_header_key("x_foo"), "X_foo");
        assert_eq!(canonical_header_key("www-authenticate"), "Www-Authenticate");
        assert_eq!(canonical_header_key("bad key"), "bad key");
        assert_eq!(canonical_header_key(""), "");
    }

    fn parse(json: &str) -> Result<HookResponse, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn responses_decode_as_go_does() {
        assert_eq!(parse("{}").expect("empty"), HookResponse::default());
        assert_eq!(parse("null").expect("null"), HookResponse::default());
        let r = parse(
            r#"{"rejectupload":true,"unknown":[1,{"x":null}],"HTTPResponse":{"statusCode":403,
                "body":"no","HEADER":{"X-A":"1","X-B":null}},"StopUpload":null,
                "ChangeFileInfo":{"id":"abc","MetaData":{},"Storage":null}}"#,
        )
        .expect("valid");
        assert!(r.reject_upload && !r.stop_upload && !r.reject_termination);
        assert_eq!(r.http_response.status_code, 403);
        assert_eq!(r.http_response.body, "no");
        assert_eq!(r.http_response.header["X-A"], "1");
        assert_eq!(r.http_response.header["X-B"], "");
        assert_eq!(r.change_file_info.id, "abc");
        assert_eq!(r.change_file_info.metadata, Some(BTreeMap::new()));
        assert_eq!(r.change_file_info.storage, None);
        // Duplicate keys apply in order.
        let r = parse(r#"{"RejectUpload":true,"rejectUpload":false}"#).expect("valid");
        assert!(!r.reject_upload);
    }

    #[test]
    fn wrong_types_and_shapes_fail_as_in_go() {
        for bad in [
            r#"{"RejectUpload":"yes"}"#,
            r#"{"HTTPResponse":{"StatusCode":400.5}}"#,
            r#"{"HTTPResponse":{"StatusCode":"400"}}"#,
            r#"{"HTTPResponse":{"Header":{"A":1}}}"#,
            r#"[]"#,
            r#""x""#,
            r#"{} trailing"#,
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
