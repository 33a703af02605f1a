//! `TreeIndex::decode` / `tree::decode_blob` on arbitrary bytes (the index
//! of a large directory's pieces, tree version 2, read back from packs).
//!
//! Properties:
//! - decode never panics;
//! - the encoding is canonical: whenever the index decodes, `encode()`
//!   gives back exactly the input bytes (so one directory state has one id);
//! - pieces hold ≥ 1 entry each and add up to the index's count; first
//!   names are valid and strictly increasing, and `piece_for` of each
//!   piece's first name is that piece;
//! - `decode_blob` agrees with the decoder of the version it dispatches to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsnap::tree::{decode_blob, validate_name, Tree, TreeBlob, TreeIndex};

fuzz_target!(|data: &[u8]| {
    match decode_blob(data) {
        Ok(TreeBlob::Flat(t)) => assert_eq!(Tree::decode(data).ok(), Some(t)),
        Ok(TreeBlob::Index(i)) => assert_eq!(TreeIndex::decode(data).ok(), Some(i)),
        Err(_) => {}
    }
    let Ok(index) = TreeIndex::decode(data) else {
        return;
    };
    let encoded = index.encode();
    assert!(
        encoded == data,
        "tree index encoding is not canonical:\n input  {:02x?}\n encode {:02x?}",
        data,
        encoded
    );
    let sum: u64 = index.pieces.iter().map(|p| u64::from(p.entries)).sum();
    assert_eq!(sum, index.entries);
    for (i, p) in index.pieces.iter().enumerate() {
        assert!(p.entries >= 1);
        assert!(validate_name(&p.first).is_ok(), "decoded bad name {:?}", p.first);
        assert_eq!(index.piece_for(&p.first), Some(i));
    }
    for w in index.pieces.windows(2) {
        assert!(w[0].first < w[1].first, "pieces not strictly sorted");
    }
});
