//! `chunker::LargeFileTiers::decode` on arbitrary text (`meta.chunker_tiers`
//! is read from the catalog every time a store is opened).
//!
//! Properties:
//! - decode never panics;
//! - what it accepts is canonical (encodes back to the same text) and
//!   valid over the base parameters (every tier FastCDC accepts, growing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsnap::chunker::{ChunkerParams, LargeFileTiers};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = ChunkerParams::DEFAULT;
    if let Ok(t) = LargeFileTiers::decode(text, &base) {
        assert_eq!(t.encode(), text, "tiers text is not canonical");
        assert!(!t.is_empty());
        t.validate(&base).unwrap();
    }
});
