//! Chunk lists: a large file's chunk ids, split into content-defined groups.
//!
//! Listing every chunk id inline in the tree would make a one-byte edit of a
//! 200 MiB file rewrite ~200 KiB of tree (32 bytes × 6,400 chunk ids) every
//! snapshot. Instead, files with more than [`INLINE_MAX_CHUNKS`] chunks store
//! their ids in list blobs, cut where an id's first two bytes are 0 modulo
//! [`FANOUT`] (on average 64 ids, 2 KiB) or at [`MAX_IDS`]. The cut depends
//! only on the ids, so an edit changes one list and the rest dedup; the tree
//! entry holds only the list ids (1/64 of the size).
//!
//! Encoding, version 1: `"WCLS" u8:version=1 u32:count chunk_id[32]*count`.

use crate::codec::{Reader, Writer};
use crate::error::{Error, Format, Location, Result};
use crate::id::{ChunkId, Id, ListId};

const MAGIC: &[u8; 4] = b"WCLS";
/// Version 1: the first chunk-list encoding.
pub const LIST_VERSION: u8 = 1;
/// Files with at most this many chunks list them inline in the tree.
pub const INLINE_MAX_CHUNKS: usize = 64;
/// Average ids per list.
pub const FANOUT: u16 = 64;
/// Hard cap on ids per list.
pub const MAX_IDS: usize = 512;

fn is_boundary(id: &ChunkId) -> bool {
    u16::from_le_bytes([id.0 .0[0], id.0 .0[1]]) % FANOUT == 0
}

/// One encoded list, ready to store.
pub struct EncodedList {
    pub id: ListId,
    pub bytes: Vec<u8>,
    pub chunks: Vec<Id>,
}

/// Split `chunks` into lists (deterministic in the ids alone).
pub fn split(chunks: &[ChunkId]) -> Vec<EncodedList> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in chunks.iter().enumerate() {
        if is_boundary(c) || i + 1 - start == MAX_IDS || i + 1 == chunks.len() {
            out.push(encode(&chunks[start..=i]));
            start = i + 1;
        }
    }
    out
}

/// Encode one list (exposed for the fuzz target's canonical check).
pub fn encode(ids: &[ChunkId]) -> EncodedList {
    let mut w = Writer::with_capacity(9 + ids.len() * 32);
    w.bytes(MAGIC);
    w.u8(LIST_VERSION);
    w.u32(ids.len() as u32);
    for c in ids {
        w.id(&c.0);
    }
    EncodedList {
        id: ListId(Id::of(&w.buf)),
        bytes: w.buf,
        chunks: ids.iter().map(|c| c.0).collect(),
    }
}

/// Strict decode of a list blob.
pub fn decode(bytes: &[u8]) -> Result<Vec<ChunkId>> {
    let mut r = Reader::new(bytes, "chunk list");
    if r.take(4)? != MAGIC {
        return Err(r.bad_magic());
    }
    let version = r.u8()?;
    if version != LIST_VERSION {
        return Err(Error::UnsupportedFormat {
            what: Format::ChunkList,
            found: i64::from(version),
            supported: i64::from(LIST_VERSION)..=i64::from(LIST_VERSION),
            location: Location::Unknown,
        });
    }
    let n = r.u32()? as usize;
    if n == 0 || n > MAX_IDS || n > r.remaining() / 32 {
        return Err(r.error(format!("chunk count {n} is invalid")));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(ChunkId(r.id()?));
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn split_decode_round_trip(seeds in proptest::collection::vec(any::<u32>(), 1..3000)) {
            let chunks: Vec<ChunkId> = seeds.iter().map(|s| ChunkId(Id::of(&s.to_le_bytes()))).collect();
            let lists = split(&chunks);
            let mut back = Vec::new();
            for l in &lists {
                prop_assert_eq!(Id::of(&l.bytes), l.id.0);
                back.extend(decode(&l.bytes).unwrap());
            }
            prop_assert_eq!(back, chunks);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn an_edit_changes_few_lists() {
        let chunks: Vec<ChunkId> = (0u32..6400)
            .map(|s| ChunkId(Id::of(&s.to_le_bytes())))
            .collect();
        let mut edited = chunks.clone();
        edited[3200] = ChunkId(Id::of(b"edited"));
        let a: std::collections::HashSet<_> = split(&chunks).into_iter().map(|l| l.id).collect();
        let b = split(&edited);
        let new = b.iter().filter(|l| !a.contains(&l.id)).count();
        assert!(new <= 2, "{new} lists changed");
        assert!(b.len() > 50 && b.len() < 200, "{} lists", b.len());
    }
}
