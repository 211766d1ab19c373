//! The upload state file in tusd's format (`<id>.info`: JSON with Go's field names), so uploads
//! that were in flight under tusd keep resuming after the switch and tusd could read ours.
//!
//! tusgate's own state (publish target and phase) goes into extra top-level fields, which Go's
//! JSON decoder ignores.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::upload::{Concat, Metadata, Phase, Target, UploadId, UploadInfo};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FileInfo {
    #[serde(rename = "ID")]
    id: String,
    size: i64,
    #[serde(default)]
    size_is_deferred: bool,
    /// Stale in tusd's filestore (written at creation only); the data file's size is the truth.
    #[serde(default)]
    offset: i64,
    #[serde(rename = "MetaData", default)]
    meta_data: Option<Metadata>,
    #[serde(default)]
    is_partial: bool,
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    partial_uploads: Option<Vec<String>>,
    #[serde(default)]
    storage: Option<BTreeMap<String, String>>,
    #[serde(
        rename = "TusgateTarget",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    target: Option<Target>,
    #[serde(
        rename = "TusgateScope",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    scope: Option<Target>,
    #[serde(rename = "TusgatePhase", default, skip_serializing_if = "is_receiving")]
    phase: Phase,
    /// Backend-private state (the S3 backend's parts and tail), never user metadata.
    #[serde(
        rename = "TusgateBackend",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    backend: Option<serde_json::Value>,
}

fn is_receiving(phase: &Phase) -> bool {
    *phase == Phase::Receiving
}

/// Serialises `info` with the backend's `storage` map (tusd: Type, Path, InfoPath).
pub fn encode(info: &UploadInfo, storage: BTreeMap<String, String>) -> Vec<u8> {
    encode_with_backend(info, storage, None)
}

/// [`encode`], plus backend-private state under `TusgateBackend`.
pub fn encode_with_backend(
    info: &UploadInfo,
    storage: BTreeMap<String, String>,
    backend: Option<serde_json::Value>,
) -> Vec<u8> {
    let (is_partial, is_final, partial_uploads) = match &info.concat {
        Concat::None => (false, false, None),
        Concat::Partial => (true, false, None),
        Concat::Final(ids) => (
            false,
            true,
            Some(ids.iter().map(|id| id.to_string()).collect()),
        ),
    };
    let file_info = FileInfo {
        id: info.id.to_string(),
        size: info
            .length
            .map_or(0, |len| i64::try_from(len).unwrap_or(i64::MAX)),
        size_is_deferred: info.length.is_none(),
        offset: i64::try_from(info.offset).unwrap_or(i64::MAX),
        meta_data: Some(info.metadata.clone()),
        is_partial,
        is_final,
        partial_uploads,
        storage: Some(storage),
        target: info.target.clone(),
        scope: info.scope.clone(),
        phase: info.phase,
        backend,
    };
    // Serialising plain strings, integers and maps cannot fail.
    serde_json::to_vec(&file_info).unwrap_or_default()
}

/// Parses a state file. The offset in it is only a hint; callers replace it with the truth.
pub fn decode(bytes: &[u8]) -> Result<UploadInfo, String> {
    decode_with_backend(bytes).map(|(info, _)| info)
}

/// [`decode`], also returning the backend-private state.
pub fn decode_with_backend(
    bytes: &[u8],
) -> Result<(UploadInfo, Option<serde_json::Value>), String> {
    let file_info: FileInfo = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let backend = file_info.backend.clone();
    let id =
        UploadId::parse(&file_info.id).ok_or_else(|| format!("invalid ID {:?}", file_info.id))?;
    let concat = if file_info.is_final {
        let ids = file_info.partial_uploads.unwrap_or_default();
        let ids = ids
            .iter()
            .map(|raw| UploadId::parse(raw).ok_or_else(|| format!("invalid partial ID {raw:?}")))
            .collect::<Result<_, _>>()?;
        Concat::Final(ids)
    } else if file_info.is_partial {
        Concat::Partial
    } else {
        Concat::None
    };
    let length = if file_info.size_is_deferred {
        None
    } else {
        Some(u64::try_from(file_info.size).map_err(|_| "negative Size".to_owned())?)
    };
    let info = UploadInfo {
        id,
        length,
        offset: u64::try_from(file_info.offset).unwrap_or(0),
        metadata: file_info.meta_data.unwrap_or_default(),
        concat,
        target: file_info.target,
        scope: file_info.scope,
        phase: file_info.phase,
        updated: None,
    };
    Ok((info, backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.info` exactly as tusd v2.10's filestore writes it.
    const TUSD_INFO: &str = r#"{"ID":"2b7d9a2f6f1e4c0b8a4e3c1d2f0a9b8c","Size":11,"SizeIsDeferred":false,"Offset":0,"MetaData":{"filename":"hello.txt","empty":""},"IsPartial":false,"IsFinal":false,"PartialUploads":null,"Storage":{"InfoPath":"/data/2b7d9a2f6f1e4c0b8a4e3c1d2f0a9b8c.info","Path":"/data/2b7d9a2f6f1e4c0b8a4e3c1d2f0a9b8c","Type":"filestore"}}"#;

    #[test]
    fn reads_tusd_state() {
        let info = decode(TUSD_INFO.as_bytes()).expect("tusd info parses");
        assert_eq!(info.id.as_str(), "2b7d9a2f6f1e4c0b8a4e3c1d2f0a9b8c");
        assert_eq!(info.length, Some(11));
        assert_eq!(info.metadata["filename"], "hello.txt");
        assert_eq!(info.metadata["empty"], "");
        assert_eq!(info.concat, Concat::None);
        assert_eq!(info.phase, Phase::Receiving);
    }

    #[test]
    fn a_decoded_backend_state_re_encodes_exactly() {
        // Found by fuzz/fuzz_targets/tusd_info.rs: without serde_json's float_roundtrip, a
        // number like this one decoded, re-encoded and decoded again came back 1 ulp off.
        let data = include_bytes!("../../fuzz/corpus/tusd_info/float-roundtrip");
        let (info, backend) = decode_with_backend(data).expect("decodes");
        let bytes = encode_with_backend(&info, BTreeMap::new(), backend.clone());
        let (again, again_backend) = decode_with_backend(&bytes).expect("own encoding decodes");
        assert_eq!((again, again_backend), (info, backend));
    }

    #[test]
    fn round_trips_with_tusd_field_names() {
        let id = UploadId::generate();
        let partial = UploadId::generate();
        let mut info = UploadInfo::new(id, None, Metadata::new(), Concat::Final(vec![partial]));
        info.target = Some(Target {
            path: "public/a.txt".into(),
            content_type: "text/plain".into(),
        });
        info.phase = Phase::Publishing;
        let bytes = encode(&info, BTreeMap::from([("Type".into(), "filestore".into())]));
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        for field in [
            "\"ID\"",
            "\"SizeIsDeferred\":true",
            "\"IsFinal\":true",
            "\"PartialUploads\"",
            "\"MetaData\"",
        ] {
            assert!(text.contains(field), "{field} missing in {text}");
        }
        assert_eq!(decode(&bytes).expect("decodes"), info);
    }

    #[test]
    fn rejects_ids_that_could_name_paths() {
        let evil = TUSD_INFO.replace("2b7d9a2f6f1e4c0b8a4e3c1d2f0a9b8c\",\"Size", "../x\",\"Size");
        assert!(decode(evil.as_bytes()).is_err());
    }
}
