//! `Tree::decode` on arbitrary bytes (tree blobs are read back from packs).
//!
//! Properties:
//! - decode never panics;
//! - the encoding is canonical: whenever decode succeeds, `encode()` gives
//!   back exactly the input bytes (so one directory state has one TreeId);
//! - every decoded name passes `validate_name` (restore joins them to paths).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsnap::tree::{validate_name, Tree};

fuzz_target!(|data: &[u8]| {
    let Ok(tree) = Tree::decode(data) else {
        return;
    };
    let encoded = tree.encode();
    assert!(
        encoded == data,
        "tree encoding is not canonical:\n input  {:02x?}\n encode {:02x?}",
        data,
        encoded
    );
    for e in &tree.entries {
        assert!(validate_name(&e.name).is_ok(), "decoded bad name {:?}", e.name);
    }
    for w in tree.entries.windows(2) {
        assert!(w[0].name < w[1].name, "entries not strictly sorted");
    }
});
