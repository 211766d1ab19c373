//! Properties of the pure parsers over generated inputs (proptest), through the public API
//! only: `Range` results against a model of nginx's rules, nginx path normalisation,
//! `Upload-Metadata` and `.info` round trips. The unit tests next to each parser pin recorded
//! cases; these look for the inputs nobody wrote down. The fuzz targets in `fuzz/` check the
//! same invariants on nightly, over arbitrary bytes.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use tusgate::download::uri::normalize;
use tusgate::range::{MAX_RANGES, RangeRequest, parse};
use tusgate::storage::tusd_info::{decode, decode_with_backend, encode, encode_with_backend};
use tusgate::tus::headers::{parse_metadata, serialize_metadata};
use tusgate::upload::{Concat, Phase, Target, UploadId, UploadInfo};

// --- Range ------------------------------------------------------------------------------

/// One well-formed part of a byte range set: `first-last`, `first-` or `-suffix`.
#[derive(Debug, Clone)]
enum Part {
    FirstLast(u64, u64),
    From(u64),
    Suffix(u64),
}

/// Parts of a representation of up to 1000 bytes, mostly short and sometimes past its end or
/// reversed, so that every outcome is common (a simulation of the first property's inputs
/// gave about 43% multipart, 24% single, 19% unsatisfiable and 14% whole file).
fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        6 => (0u64..1100, -5i64..60)
            .prop_map(|(a, d)| Part::FirstLast(a, a.saturating_add_signed(d))),
        2 => (0u64..1100).prop_map(Part::From),
        2 => (0u64..100).prop_map(Part::Suffix),
    ]
}

/// The header for `parts`, with the spaces nginx tolerates around numbers when `spaced`.
fn header(parts: &[Part], spaced: bool) -> String {
    let sp = if spaced { " " } else { "" };
    let list: Vec<String> = parts
        .iter()
        .map(|p| match p {
            Part::FirstLast(a, b) => format!("{sp}{a}{sp}-{sp}{b}{sp}"),
            Part::From(a) => format!("{sp}{a}{sp}-{sp}"),
            Part::Suffix(n) => format!("{sp}-{n}{sp}"),
        })
        .collect();
    format!("bytes={}", list.join(","))
}

/// What nginx makes of well-formed parts (`ngx_http_range_parse` after the syntax): each
/// part clamped to the representation; a part that is empty and starts at 0 declines the
/// header, other empty parts are dropped; one satisfiable part past the cap declines it; no
/// satisfiable part is 416; parts adding up to more than the representation decline it.
fn model(parts: &[Part], len: u64) -> RangeRequest {
    let mut ranges = Vec::new();
    for p in parts {
        let (start, end) = match *p {
            Part::FirstLast(a, b) => (a, if b >= len { len } else { b + 1 }),
            Part::From(a) => (a, len),
            Part::Suffix(n) => (len.saturating_sub(n), len),
        };
        if start < end {
            ranges.push(start..end);
            if ranges.len() > MAX_RANGES {
                return RangeRequest::Full;
            }
        } else if start == 0 {
            return RangeRequest::Full;
        }
    }
    let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    match ranges.len() {
        0 => RangeRequest::Unsatisfiable,
        _ if total > len => RangeRequest::Full,
        1 => RangeRequest::Single(ranges.remove(0)),
        _ => RangeRequest::Multi(ranges),
    }
}

/// Every range returned is non-empty and inside `0..len`; a multi-range has 2 to
/// `MAX_RANGES` parts that add up to at most `len`.
fn assert_within(result: &RangeRequest, len: u64) {
    match result {
        RangeRequest::Full | RangeRequest::Unsatisfiable => {}
        RangeRequest::Single(r) => assert!(r.start < r.end && r.end <= len, "{r:?} of {len}"),
        RangeRequest::Multi(ranges) => {
            assert!((2..=MAX_RANGES).contains(&ranges.len()), "{}", ranges.len());
            for r in ranges {
                assert!(r.start < r.end && r.end <= len, "{r:?} of {len}");
            }
            assert!(ranges.iter().map(|r| r.end - r.start).sum::<u64>() <= len);
        }
    }
}

proptest! {
    /// Well-formed headers: the parser agrees with the model, so a 416 comes only when no part
    /// is satisfiable, a 206 holds exactly the satisfiable parts in order (Single when there is
    /// one, Multi when more), and more than `MAX_RANGES` of them send the whole file.
    #[test]
    fn range_follows_nginx_rules(
        len in prop_oneof![1 => Just(0u64), 9 => 1u64..1000],
        parts in vec(part(), 1..8),
        spaced in any::<bool>(),
    ) {
        let result = parse(&header(&parts, spaced), len);
        assert_within(&result, len);
        prop_assert_eq!(result, model(&parts, len));
    }

    /// One-byte parts that fit the representation: up to `MAX_RANGES` of them are a multipart
    /// answer of exactly those parts, one more and the whole file is sent.
    #[test]
    fn range_part_cap(n in 2usize..(2 * MAX_RANGES), gap in 1u64..4) {
        let len = n as u64 * gap;
        let parts: Vec<Part> = (0..n as u64).map(|i| Part::FirstLast(i * gap, i * gap)).collect();
        let result = parse(&header(&parts, false), len);
        if n <= MAX_RANGES {
            let expected: Vec<_> = (0..n as u64).map(|i| i * gap..i * gap + 1).collect();
            prop_assert_eq!(result, RangeRequest::Multi(expected));
        } else {
            prop_assert_eq!(result, RangeRequest::Full);
        }
    }

    /// Anything else after `bytes=`: whatever comes out is within bounds.
    #[test]
    fn range_results_lie_within_the_representation(
        len in 0u64..400,
        spec in "[0-9 ,-]{0,60}",
    ) {
        assert_within(&parse(&format!("bytes={spec}"), len), len);
    }
}

// --- URI normalisation ------------------------------------------------------------------

fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a", "bc", "é", "a b", "", ".", "..", "%2e", "%2E%2e", "%2F", "x%2fy", "%20", "...", ".a",
        "a.", "+",
    ])
}

proptest! {
    /// A normalised path starts with `/` and has no empty, `.` or `..` segment (a trailing `/`
    /// for a directory aside); normalising it again changes nothing. (Only for outputs without
    /// `%`: nginx decodes once, so `%2525` → `%25` is right and a second pass would decode on.)
    #[test]
    fn normalized_paths_are_canonical(segments in vec(segment(), 0..12)) {
        let raw = format!("/{}", segments.join("/"));
        if let Ok(out) = normalize(raw.as_bytes()) {
            prop_assert_eq!(out.first(), Some(&b'/'));
            let inner = out[1..].strip_suffix(b"/").unwrap_or(&out[1..]);
            if !inner.is_empty() {
                for s in inner.split(|&b| b == b'/') {
                    prop_assert!(!matches!(s, b"" | b"." | b".."), "{:?}", String::from_utf8_lossy(&out));
                }
            }
            let text = String::from_utf8_lossy(&out).into_owned();
            prop_assert!(!text.contains("/../") && !text.contains("/./") && !text.contains("//"));
            prop_assert!(!out.contains(&b'%'));
            prop_assert_eq!(normalize(&out), Ok(out.clone()));
        }
    }

    /// The same over arbitrary bytes after the leading `/`, where `%` may survive decoding.
    #[test]
    fn normalizing_any_path_is_stable(rest in vec(any::<u8>(), 0..40)) {
        let mut raw = vec![b'/'];
        raw.extend(rest.iter().copied().filter(|&b| b != 0));
        if let Ok(out) = normalize(&raw) {
            prop_assert_eq!(out.first(), Some(&b'/'));
            if !out.contains(&b'%') {
                prop_assert_eq!(normalize(&out), Ok(out.clone()));
            }
        }
    }
}

// --- Upload-Metadata --------------------------------------------------------------------

proptest! {
    /// HEAD echoes what POST stored: on keys without whitespace or commas and any values,
    /// parsing the serialisation gives the map back.
    #[test]
    fn metadata_round_trips(meta in btree_map("[^\\s,]{1,16}", any::<String>(), 0..8)) {
        prop_assert_eq!(parse_metadata(&serialize_metadata(&meta)), meta);
    }

    /// Whatever a client sent, what is stored survives its own echo.
    #[test]
    fn parsed_metadata_survives_its_echo(header in any::<String>()) {
        let meta = parse_metadata(&header);
        prop_assert_eq!(parse_metadata(&serialize_metadata(&meta)), meta);
    }
}

// --- .info ------------------------------------------------------------------------------

fn upload_id() -> impl Strategy<Value = UploadId> {
    "[0-9a-f]{32}|[0-9a-f]{32}\\+[A-Za-z0-9_-]{1,20}"
        .prop_map(|raw| UploadId::parse(&raw).expect("generated ids are valid"))
}

/// Sizes and offsets as tusd's `int64` fields hold them.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..1_000_000, Just(i64::MAX as u64)]
}

fn upload_info() -> impl Strategy<Value = UploadInfo> {
    let concat = prop_oneof![
        Just(Concat::None),
        Just(Concat::Partial),
        vec(upload_id(), 0..4).prop_map(Concat::Final),
    ];
    let target = option::of(
        ("[a-z]{1,8}/[^\\x00]{1,30}", "[a-z]{1,10}/[a-z0-9.+-]{1,20}")
            .prop_map(|(path, content_type)| Target { path, content_type }),
    );
    let phase = prop_oneof![
        Just(Phase::Receiving),
        Just(Phase::Publishing),
        Just(Phase::Published),
    ];
    let metadata = btree_map(any::<String>(), any::<String>(), 0..5);
    (
        upload_id(),
        option::of(size()),
        size(),
        metadata,
        concat,
        (target.clone(), target),
        phase,
    )
        .prop_map(
            |(id, length, offset, metadata, concat, (target, scope), phase)| UploadInfo {
                id,
                length,
                offset,
                metadata,
                concat,
                target,
                scope,
                phase,
                // Not in `.info`: backends take it from the data (on disk, its mtime).
                updated: None,
            },
        )
}

proptest! {
    /// A state file decodes to the upload it was written from (offsets included: the caller
    /// replaces them with the data file's size, but the file keeps what it was given).
    #[test]
    fn info_round_trips(
        info in upload_info(),
        storage in btree_map("[A-Za-z]{1,8}", ".*", 0..3),
    ) {
        prop_assert_eq!(decode(&encode(&info, storage)).expect("decodes"), info);
    }

    /// Backend-private state comes back unchanged too.
    #[test]
    fn info_round_trips_with_backend_state(
        info in upload_info(),
        parts in option::of(btree_map("[a-z]{1,8}", any::<u64>(), 0..4)),
    ) {
        let backend = parts.map(|p| serde_json::json!({ "parts": p }));
        let bytes = encode_with_backend(&info, BTreeMap::new(), backend.clone());
        let (decoded, decoded_backend) = decode_with_backend(&bytes).expect("decodes");
        prop_assert_eq!(decoded, info);
        prop_assert_eq!(decoded_backend, backend);
    }
}
