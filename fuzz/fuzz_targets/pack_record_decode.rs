//! `RecordHeader::decode` + `decode_payload` on arbitrary bytes: the input is
//! split into a 48-byte record header and the stored payload after it.
//!
//! Properties:
//! - neither function panics;
//! - a decoded header re-encodes to the same 48 bytes;
//! - when `decode_payload` succeeds, the blob hashes (`Id::of`) to `header.id`.
//!
//! The header carries a BLAKE3 check over its first 44 bytes, which random
//! mutation essentially never satisfies. So each input is tried twice: as
//! given (exercising the check), then with the check field recomputed, so the
//! fuzzer also explores kind / compression / lengths / zstd payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsnap::pack::format::{decode_payload, RecordHeader, RECORD_HEADER_BYTES};
use wsnap::Id;

fn check(header: &[u8], payload: &[u8]) {
    let Ok(h) = RecordHeader::decode(header) else {
        return;
    };
    assert_eq!(
        &h.encode()[..],
        &header[..RECORD_HEADER_BYTES],
        "record header does not re-encode to its bytes"
    );
    if let Ok(raw) = decode_payload(&h, payload) {
        assert_eq!(Id::of(&raw), h.id, "decode_payload returned a blob that does not hash to its id");
        assert_eq!(raw.len(), h.raw_len as usize, "decoded length differs from raw_len");
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.len().min(RECORD_HEADER_BYTES);
    let (header, payload) = data.split_at(split);
    check(header, payload);

    if header.len() == RECORD_HEADER_BYTES {
        let mut fixed = [0u8; RECORD_HEADER_BYTES];
        fixed.copy_from_slice(header);
        let c = Id::of(&fixed[..RECORD_HEADER_BYTES - 4]).0;
        fixed[RECORD_HEADER_BYTES - 4..].copy_from_slice(&c[..4]);
        if fixed[..] != header[..] {
            check(&fixed, payload);
        }
    }
});
