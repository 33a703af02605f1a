//! The remote's decoders on arbitrary bytes: the encrypted object format
//! (`remote::object`: header, whole-object open, range opens) and the
//! pointer (`remote::pointer::Pointer::decode`, the plaintext of `latest`).
//!
//! Properties:
//! - nothing panics, whatever the bytes (allocations are bounded by the
//!   header's checked segment size and by the input);
//! - a decoded header re-encodes to its bytes; its geometry is consistent;
//! - random bytes never open as an object (they would have to forge a
//!   Poly1305 tag);
//! - the input sealed as a plaintext (segment size from its first bytes)
//!   opens to itself, and with any one bit flipped (position from the
//!   input) or cut short it does not;
//! - a decoded pointer re-encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsnap::remote::object::{self, Header, Opener, HEADER_BYTES};
use wsnap::remote::pointer::Pointer;
use wsnap::remote::Keys;

fuzz_target!(|data: &[u8]| {
    let keys = Keys::from_master(&[7; 32]);
    if let Ok(h) = Header::decode(data) {
        assert_eq!(&h.encode()[..], &data[..HEADER_BYTES]);
        assert!(h.object_len() >= HEADER_BYTES as u64 + 16);
        if h.plaintext_len > 0 {
            let end = h.plaintext_len.min(1 + data.len() as u64);
            let (segs, bytes) = h.segments_for(&(0..end));
            assert!(segs.start < segs.end && bytes.start < bytes.end);
        }
        let o = Opener::new(&keys, "data/x", data).expect("header decoded");
        let _ = o.open_segments(0..1, &data[HEADER_BYTES..]);
    }
    assert!(object::open(&keys, "data/x", data).is_err());

    // Seal the input, then damage it.
    let seg = u32::from(u16::from_le_bytes([
        data.first().copied().unwrap_or(1),
        data.get(1).copied().unwrap_or(0),
    ]))
    .max(1);
    let sealed = object::seal(&keys, "n", data, seg);
    assert_eq!(object::open(&keys, "n", &sealed).as_deref(), Ok(data));
    let at = data
        .get(2..10)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
        .unwrap_or(0)
        % sealed.len();
    let mut flipped = sealed.clone();
    flipped[at] ^= 1 << (at % 8);
    assert!(object::open(&keys, "n", &flipped).is_err());
    assert!(object::open(&keys, "n", &sealed[..at]).is_err());
    assert!(object::open(&keys, "m", &sealed).is_err());

    if let Ok(p) = Pointer::decode(data) {
        assert_eq!(Pointer::decode(&p.encode()), Ok(p));
    }
});
