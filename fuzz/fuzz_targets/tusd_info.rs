//! `tusgate::storage::tusd_info`: any state file that decodes re-encodes to one that decodes
//! to the same upload.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use tusgate::storage::tusd_info::{decode, decode_with_backend, encode, encode_with_backend};

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = decode(data) {
        let again = decode(&encode(&info, BTreeMap::new())).expect("own encoding decodes");
        assert_eq!(again, info);
    }
    if let Ok((info, backend)) = decode_with_backend(data) {
        let bytes = encode_with_backend(&info, BTreeMap::new(), backend.clone());
        let (again, again_backend) = decode_with_backend(&bytes).expect("own encoding decodes");
        assert_eq!(again, info);
        assert_eq!(again_backend, backend);
    }
});
