//! `journal::decode` on arbitrary bytes (journals are read back by `repair`
//! and `check`, possibly after a crash tore their tail).
//!
//! Properties:
//! - decode never panics and allocates only what the input holds;
//! - every decoded record is canonical: re-encoding the header and the
//!   records gives back a prefix of the input;
//! - a clean decode (no damage, no torn tail) consumed the whole input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsnap::journal;

fuzz_target!(|data: &[u8]| {
    let d = journal::decode(data);
    let Some(params) = d.params else {
        assert!(d.records.is_empty());
        return;
    };
    let mut again = journal::encode_header(&params);
    for r in &d.records {
        again.extend_from_slice(&journal::encode_record(r));
    }
    assert!(data.starts_with(&again), "journal encoding is not canonical");
    if d.damage.is_none() && !d.torn_tail {
        assert_eq!(again.len(), data.len());
    }
});
