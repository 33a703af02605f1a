//! `chunklist::decode` on arbitrary bytes (chunk lists are read back from
//! packs for every large file restored).
//!
//! Properties:
//! - decode never panics;
//! - a decoded list has 1..=MAX_IDS ids;
//! - the encoding is canonical: re-encoding the ids gives back the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsnap::chunklist;

fuzz_target!(|data: &[u8]| {
    let Ok(ids) = chunklist::decode(data) else {
        return;
    };
    assert!(!ids.is_empty() && ids.len() <= chunklist::MAX_IDS);
    assert!(chunklist::encode(&ids).bytes == data, "chunk list encoding is not canonical");
});
