//! `pack::format::scan` (whole pack: header, records, footer) and
//! `Footer::decode` on arbitrary bytes.
//!
//! Properties:
//! - neither function panics;
//! - a decoded footer re-encodes to its 48 bytes;
//! - when scan succeeds: the pack id is BLAKE3 of everything before the
//!   footer, records are in order, do not overlap, stay inside the body and
//!   tile it exactly, each record header re-encodes to the bytes at its
//!   offset, and their number matches the footer.
//!
//! The pack id and each record header's check are hashes, which random
//! mutation never gets right, so each input is also scanned once more after
//! `fix_up` recomputes them (walking the records the way scan does).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsnap::pack::format::{scan, Footer, FOOTER_BYTES, HEADER_BYTES, RECORD_HEADER_BYTES};
use wsnap::Id;

fn check(bytes: &[u8]) {
    if bytes.len() >= FOOTER_BYTES {
        let tail = &bytes[bytes.len() - FOOTER_BYTES..];
        if let Ok(f) = Footer::decode(tail) {
            assert_eq!(&f.encode()[..], tail, "footer does not re-encode to its bytes");
        }
    }
    let _ = Footer::decode(bytes);

    let Ok((pack_id, records)) = scan(bytes) else {
        return;
    };
    let body_end = bytes.len() - FOOTER_BYTES;
    assert_eq!(pack_id.0, Id::of(&bytes[..body_end]), "pack id is not the body hash");
    let footer = Footer::decode(&bytes[body_end..]).expect("scan accepted a bad footer");
    assert_eq!(footer.pack_id, pack_id);
    assert_eq!(footer.record_count, records.len() as u64);
    let mut pos = HEADER_BYTES;
    for (off, h) in &records {
        assert_eq!(*off as usize, pos, "records do not tile the body");
        let hb = &bytes[pos..pos + RECORD_HEADER_BYTES];
        assert_eq!(&h.encode()[..], hb, "record header does not re-encode");
        pos += RECORD_HEADER_BYTES + h.stored_len as usize;
        assert!(pos <= body_end, "record runs past the body");
    }
    assert_eq!(pos, body_end, "records do not end at the footer");
}

/// Recompute every record header check and the footer's pack id.
fn fix_up(bytes: &mut [u8]) {
    if bytes.len() < HEADER_BYTES + FOOTER_BYTES {
        return;
    }
    let body_end = bytes.len() - FOOTER_BYTES;
    let mut pos = HEADER_BYTES;
    while body_end - pos >= RECORD_HEADER_BYTES {
        let h = &mut bytes[pos..pos + RECORD_HEADER_BYTES];
        let c = Id::of(&h[..RECORD_HEADER_BYTES - 4]).0;
        h[RECORD_HEADER_BYTES - 4..].copy_from_slice(&c[..4]);
        let stored = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        match pos
            .checked_add(RECORD_HEADER_BYTES)
            .and_then(|p| p.checked_add(stored))
        {
            Some(next) if next <= body_end => pos = next,
            _ => break,
        }
    }
    let id = Id::of(&bytes[..body_end]).0;
    bytes[body_end + 16..].copy_from_slice(&id);
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut fixed = data.to_vec();
    fix_up(&mut fixed);
    if fixed != data {
        check(&fixed);
    }
});
