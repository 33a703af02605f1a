//! The encrypted object format of a remote, version 1 (integers
//! little-endian; FORMAT.md, *Remote objects*, is the reference):
//!
//! ```text
//! object  := header segment+
//! header  := "WSNAPRO\0" u8:version=1 u8:reserved=0 u16:reserved=0
//!            u32:segment_size u64:plaintext_len nonce_base[16]      (40 bytes)
//! segment := XChaCha20-Poly1305(data key, nonce_i, aad_i, plaintext_i) (len_i + 16 bytes)
//! n       := max(1, ceil(plaintext_len / segment_size)); plaintext_i is bytes
//!            [i·segment_size, min((i+1)·segment_size, plaintext_len)) of the plaintext
//! nonce_i := nonce_base ‖ u64:i                                      (24 bytes)
//! aad_i   := "wsnap remote object v1\0" ‖ header ‖ u32:len(name) ‖ name ‖ u64:i ‖ u8:last
//! ```
//!
//! Every segment authenticates the whole header, the object's name (so an
//! object copied over another's name fails), its index (reordering) and
//! whether it is the last one (truncation at a segment boundary); the
//! object's exact size follows from the header, so any other truncation or
//! extension fails too. `nonce_base` is random per object (128 bits): a
//! (key, nonce) pair is never reused. Segments make streaming and range
//! reads possible with bounded memory.

use std::ops::Range;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::XNonce;

use super::crypto::{random, Keys};

pub const OBJECT_MAGIC: &[u8; 8] = b"WSNAPRO\0";
/// The object format version this build writes and reads.
pub const OBJECT_VERSION: u8 = 1;
pub const HEADER_BYTES: usize = 40;
pub const TAG_BYTES: usize = 16;
/// Segment size written: 1 MiB.
pub const SEGMENT_BYTES: u32 = 1 << 20;
/// Bounds a decoder accepts (allocations are bounded by them).
pub const MIN_SEGMENT_BYTES: u32 = 1;
pub const MAX_SEGMENT_BYTES: u32 = 16 << 20;
pub const MAX_PLAINTEXT_BYTES: u64 = 1 << 48;
const AAD_PREFIX: &[u8] = b"wsnap remote object v1\0";

/// Why an object does not open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectError {
    /// Another format version (the header is not authenticated yet: a
    /// damaged version byte reads as this too).
    Version(u8),
    /// Not an object of ours, cut short, altered, or sealed under another
    /// name or key.
    Damaged(String),
}

impl std::fmt::Display for ObjectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectError::Version(v) => write!(f, "format version {v}"),
            ObjectError::Damaged(d) => f.write_str(d),
        }
    }
}

fn damaged(s: impl Into<String>) -> ObjectError {
    ObjectError::Damaged(s.into())
}

/// A decoded header (not yet authenticated: that happens with the first
/// segment opened).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub segment_size: u32,
    pub plaintext_len: u64,
    pub nonce_base: [u8; 16],
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut h = [0u8; HEADER_BYTES];
        h[..8].copy_from_slice(OBJECT_MAGIC);
        h[8] = OBJECT_VERSION;
        h[12..16].copy_from_slice(&self.segment_size.to_le_bytes());
        h[16..24].copy_from_slice(&self.plaintext_len.to_le_bytes());
        h[24..40].copy_from_slice(&self.nonce_base);
        h
    }

    pub fn decode(b: &[u8]) -> Result<Header, ObjectError> {
        if b.len() < HEADER_BYTES {
            return Err(damaged(format!("{} bytes, shorter than a header", b.len())));
        }
        if &b[..8] != OBJECT_MAGIC {
            return Err(damaged("no object header (magic)"));
        }
        if b[8] != OBJECT_VERSION {
            return Err(ObjectError::Version(b[8]));
        }
        if b[9..12] != [0, 0, 0] {
            return Err(damaged("reserved header bytes are not zero"));
        }
        let segment_size = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes"));
        let plaintext_len = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&segment_size) {
            return Err(damaged(format!(
                "segment size {segment_size} out of bounds"
            )));
        }
        if plaintext_len > MAX_PLAINTEXT_BYTES {
            return Err(damaged(format!(
                "plaintext length {plaintext_len} out of bounds"
            )));
        }
        Ok(Header {
            segment_size,
            plaintext_len,
            nonce_base: b[24..40].try_into().expect("16 bytes"),
        })
    }

    /// Number of segments.
    pub fn segments(&self) -> u64 {
        self.plaintext_len
            .div_ceil(u64::from(self.segment_size))
            .max(1)
    }

    /// Plaintext bytes of segment `i`.
    pub fn plain_len(&self, i: u64) -> u64 {
        let s = u64::from(self.segment_size);
        (self.plaintext_len - (i * s).min(self.plaintext_len)).min(s)
    }

    /// Where segment `i` is in the object.
    pub fn segment_range(&self, i: u64) -> Range<u64> {
        let s = u64::from(self.segment_size) + TAG_BYTES as u64;
        let start = HEADER_BYTES as u64 + i * s;
        start..start + self.plain_len(i) + TAG_BYTES as u64
    }

    /// The object's size in bytes.
    pub fn object_len(&self) -> u64 {
        HEADER_BYTES as u64 + self.plaintext_len + self.segments() * TAG_BYTES as u64
    }

    /// The segments holding plaintext bytes `plain` (non-empty, within the
    /// plaintext), and where they are in the object.
    pub fn segments_for(&self, plain: &Range<u64>) -> (Range<u64>, Range<u64>) {
        let s = u64::from(self.segment_size);
        let first = plain.start / s;
        let last = (plain.end.max(plain.start + 1) - 1) / s;
        let bytes = self.segment_range(first).start..self.segment_range(last).end;
        (first..last + 1, bytes)
    }
}

fn nonce(h: &Header, i: u64) -> XNonce {
    let mut n = [0u8; 24];
    n[..16].copy_from_slice(&h.nonce_base);
    n[16..].copy_from_slice(&i.to_le_bytes());
    XNonce::from(n)
}

fn aad(header: &[u8; HEADER_BYTES], name: &str, i: u64, last: bool) -> Vec<u8> {
    let mut a = Vec::with_capacity(AAD_PREFIX.len() + HEADER_BYTES + 4 + name.len() + 9);
    a.extend_from_slice(AAD_PREFIX);
    a.extend_from_slice(header);
    a.extend_from_slice(&(name.len() as u32).to_le_bytes());
    a.extend_from_slice(name.as_bytes());
    a.extend_from_slice(&i.to_le_bytes());
    a.push(u8::from(last));
    a
}

/// Seals one object segment by segment (streaming): [`Sealer::header`]
/// first, then [`Sealer::seal_next`] with each segment's plaintext in order.
pub struct Sealer<'k> {
    keys: &'k Keys,
    name: String,
    header: Header,
    header_bytes: [u8; HEADER_BYTES],
    next: u64,
}

impl<'k> Sealer<'k> {
    /// A sealer for an object `name` of `plaintext_len` bytes, with a fresh
    /// random nonce base.
    pub fn new(keys: &'k Keys, name: &str, plaintext_len: u64, segment_size: u32) -> Sealer<'k> {
        assert!((MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&segment_size));
        let header = Header {
            segment_size,
            plaintext_len,
            nonce_base: random::<16>(),
        };
        Sealer {
            keys,
            name: name.to_string(),
            header_bytes: header.encode(),
            header,
            next: 0,
        }
    }

    pub fn header(&self) -> &[u8; HEADER_BYTES] {
        &self.header_bytes
    }

    /// Plaintext bytes the next segment must have; `None` when done.
    pub fn next_len(&self) -> Option<usize> {
        (self.next < self.header.segments()).then(|| self.header.plain_len(self.next) as usize)
    }

    /// Seal the next segment in place: `buf` holds its plaintext and ends
    /// up holding the ciphertext and tag.
    pub fn seal_next(&mut self, buf: &mut Vec<u8>) {
        let want = self.next_len().expect("no segment left to seal");
        assert_eq!(buf.len(), want, "segment {} length", self.next);
        let i = self.next;
        let last = i + 1 == self.header.segments();
        let a = aad(&self.header_bytes, &self.name, i, last);
        self.keys
            .cipher
            .encrypt_in_place(&nonce(&self.header, i), &a, buf)
            .expect("a segment is far below the AEAD's size limit");
        self.next += 1;
    }
}

/// The size of an object holding `plaintext_len` bytes sealed in segments
/// of `segment_size`.
pub fn sealed_len(plaintext_len: u64, segment_size: u32) -> u64 {
    Header {
        segment_size,
        plaintext_len,
        nonce_base: [0; 16],
    }
    .object_len()
}

/// Seal a whole plaintext held in memory (small objects).
pub fn seal(keys: &Keys, name: &str, plaintext: &[u8], segment_size: u32) -> Vec<u8> {
    let mut s = Sealer::new(keys, name, plaintext.len() as u64, segment_size);
    let mut out = Vec::with_capacity(
        HEADER_BYTES + plaintext.len() + s.header.segments() as usize * TAG_BYTES,
    );
    out.extend_from_slice(s.header());
    let mut at = 0;
    while let Some(n) = s.next_len() {
        let mut buf = plaintext[at..at + n].to_vec();
        s.seal_next(&mut buf);
        out.extend_from_slice(&buf);
        at += n;
    }
    out
}

/// Opens an object's segments once its header is known.
pub struct Opener<'k> {
    keys: &'k Keys,
    name: String,
    header: Header,
    header_bytes: [u8; HEADER_BYTES],
}

impl<'k> Opener<'k> {
    /// From the object's first [`HEADER_BYTES`] (or more).
    pub fn new(keys: &'k Keys, name: &str, head: &[u8]) -> Result<Opener<'k>, ObjectError> {
        let header = Header::decode(head)?;
        Ok(Opener {
            keys,
            name: name.to_string(),
            header,
            header_bytes: head[..HEADER_BYTES].try_into().expect("checked"),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Open segment `i` in place: `buf` holds its ciphertext and tag, and
    /// ends up holding its plaintext.
    pub fn open_segment(&self, i: u64, buf: &mut Vec<u8>) -> Result<(), ObjectError> {
        if i >= self.header.segments() {
            return Err(damaged(format!(
                "segment {i} of {}",
                self.header.segments()
            )));
        }
        let want = self.header.plain_len(i) as usize + TAG_BYTES;
        if buf.len() != want {
            return Err(damaged(format!(
                "segment {i} has {} bytes, expected {want}",
                buf.len()
            )));
        }
        let last = i + 1 == self.header.segments();
        let a = aad(&self.header_bytes, &self.name, i, last);
        self.keys
            .cipher
            .decrypt_in_place(&nonce(&self.header, i), &a, buf)
            .map_err(|_| damaged(format!("segment {i} fails authentication")))
    }

    /// Open consecutive segments `segments` held back to back in `bytes`
    /// (a range read of [`Header::segments_for`]).
    pub fn open_segments(
        &self,
        segments: Range<u64>,
        bytes: &[u8],
    ) -> Result<Vec<u8>, ObjectError> {
        let mut out = Vec::new();
        let mut at = 0usize;
        for i in segments {
            let n = self.header.plain_len(i) as usize + TAG_BYTES;
            let chunk = bytes
                .get(at..at + n)
                .ok_or_else(|| damaged(format!("segment {i} cut short")))?;
            let mut buf = chunk.to_vec();
            self.open_segment(i, &mut buf)?;
            out.extend_from_slice(&buf);
            at += n;
        }
        if at != bytes.len() {
            return Err(damaged("bytes after the last segment read"));
        }
        Ok(out)
    }
}

/// Open a whole object held in memory.
pub fn open(keys: &Keys, name: &str, object: &[u8]) -> Result<Vec<u8>, ObjectError> {
    let o = Opener::new(keys, name, object)?;
    let h = *o.header();
    if object.len() as u64 != h.object_len() {
        return Err(damaged(format!(
            "{} bytes, the header says {}",
            object.len(),
            h.object_len()
        )));
    }
    o.open_segments(0..h.segments(), &object[HEADER_BYTES..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> Keys {
        Keys::from_master(&[9; 32])
    }

    #[test]
    fn an_empty_object_has_one_segment_and_opens() {
        let k = keys();
        let o = seal(&k, "x", b"", SEGMENT_BYTES);
        assert_eq!(o.len(), HEADER_BYTES + TAG_BYTES);
        assert_eq!(open(&k, "x", &o).unwrap(), b"");
        assert!(open(&k, "y", &o).is_err(), "bound to its name");
        assert!(open(&Keys::from_master(&[8; 32]), "x", &o).is_err());
    }

    #[test]
    fn range_reads_open_only_the_segments_they_need() {
        let k = keys();
        let plain: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let o = seal(&k, "p", &plain, 1000);
        let op = Opener::new(&k, "p", &o).unwrap();
        let want = 2_500u64..4_100;
        let (segs, bytes) = op.header().segments_for(&want);
        assert_eq!(segs, 2..5);
        let got = op
            .open_segments(segs.clone(), &o[bytes.start as usize..bytes.end as usize])
            .unwrap();
        let off = (want.start - segs.start * 1000) as usize;
        assert_eq!(&got[off..off + 1600], &plain[2500..4100]);
    }

    #[test]
    fn a_header_from_another_version_says_so() {
        let k = keys();
        let mut o = seal(&k, "x", b"abc", 16);
        o[8] = 2;
        assert_eq!(open(&k, "x", &o), Err(ObjectError::Version(2)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_plaintext_round_trips_at_any_segment_size(
            plain in proptest::collection::vec(any::<u8>(), 0..5000),
            seg in 1u32..3000,
        ) {
            let k = keys();
            let o = seal(&k, "data/n", &plain, seg);
            prop_assert_eq!(o.len() as u64, Header::decode(&o).unwrap().object_len());
            prop_assert_eq!(open(&k, "data/n", &o).unwrap(), plain);
        }

        #[test]
        fn any_bit_flip_or_truncation_fails(
            plain in proptest::collection::vec(any::<u8>(), 0..3000),
            seg in 1u32..1500,
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
            cut in any::<prop::sample::Index>(),
        ) {
            let k = keys();
            let o = seal(&k, "n", &plain, seg);
            let mut flipped = o.clone();
            let i = at.index(o.len());
            flipped[i] ^= 1 << bit;
            prop_assert!(open(&k, "n", &flipped).is_err(), "flip at {} opened", i);
            let short = &o[..cut.index(o.len())];
            prop_assert!(open(&k, "n", short).is_err());
            let mut longer = o.clone();
            longer.push(0);
            prop_assert!(open(&k, "n", &longer).is_err());
        }
    }
}
