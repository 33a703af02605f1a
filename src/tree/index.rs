//! Tree indexes (tree version 2): a large directory as pieces.
//!
//! A directory above [`super::split::FLAT_MAX_ENTRIES`] entries is stored as
//! pieces, each a version-1 tree holding a run of its sorted entries, and
//! one index blob listing them in order with their first names and entry
//! counts. A reader wanting the whole listing reads every piece
//! ([`assemble`]); one looking up a name reads only the piece that holds it
//! ([`TreeIndex::piece_for`]).
//!
//! Encoding, version 2 (all integers little-endian):
//!
//! ```text
//! index := "WTRE" u8:version=2 u64:entries u32:count piece*count
//! piece := tree_id[32] u32:entries u16:name_len first_name
//! ```
//!
//! `count` ≥ 1; each piece holds ≥ 1 entry and the counts add up to
//! `entries`; first names are valid names, strictly increasing. A piece
//! must be a version-1 tree whose first entry is its `first_name`, whose
//! last entry sorts before the next piece's `first_name`, and which holds
//! `entries` entries: checked when it is read ([`TreeIndex::check_piece`]).

use crate::codec::{Reader, Writer};
use crate::error::{Error, Problem, Result};
use crate::id::{Id, TreeId};

use super::{validate_name, Tree, MAGIC};

/// Version 2: the index of a large directory's pieces.
pub const INDEX_VERSION: u8 = 2;

/// Smallest encoded piece reference, to bound counts before allocating.
const MIN_PIECE_BYTES: usize = 32 + 4 + 2 + 1;

/// One piece of a large directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The piece's blob: a version-1 tree.
    pub tree: TreeId,
    /// Entries it holds (≥ 1).
    pub entries: u32,
    /// Name of its first entry.
    pub first: Vec<u8>,
}

/// The pieces of a large directory, in name order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeIndex {
    /// Entries of the whole directory.
    pub entries: u64,
    pub pieces: Vec<Piece>,
}

impl TreeIndex {
    /// Canonical bytes. Pieces must be in order and valid.
    pub fn encode(&self) -> Vec<u8> {
        let names: usize = self.pieces.iter().map(|p| p.first.len()).sum();
        let mut w = Writer::with_capacity(17 + self.pieces.len() * 38 + names);
        w.bytes(MAGIC);
        w.u8(INDEX_VERSION);
        w.u64(self.entries);
        w.u32(u32::try_from(self.pieces.len()).expect("piece count fits u32"));
        for p in &self.pieces {
            w.id(&p.tree.0);
            w.u32(p.entries);
            w.u16(u16::try_from(p.first.len()).expect("name length checked"));
            w.bytes(&p.first);
        }
        w.buf
    }

    /// Strict decode: rejects bad magic, other versions, no pieces, empty
    /// pieces, counts that do not add up, invalid or unsorted first names,
    /// trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<TreeIndex> {
        let mut r = Reader::new(bytes, "tree index");
        if r.take(4)? != MAGIC {
            return Err(r.bad_magic());
        }
        let version = r.u8()?;
        if version != INDEX_VERSION {
            return Err(r.error(format!("version {version} where an index belongs")));
        }
        let entries = r.u64()?;
        let count = r.u32()? as usize;
        if count == 0 || count > r.remaining() / MIN_PIECE_BYTES {
            return Err(r.error(format!("piece count {count} is invalid")));
        }
        let mut pieces: Vec<Piece> = Vec::with_capacity(count);
        let mut sum = 0u64;
        for _ in 0..count {
            let tree = TreeId(r.id()?);
            let n = r.u32()?;
            if n == 0 {
                return Err(r.error("an empty piece"));
            }
            sum += u64::from(n);
            let name_len = usize::from(r.u16()?);
            let first = r.take(name_len)?.to_vec();
            validate_name(&first)?;
            if pieces.last().is_some_and(|p| p.first >= first) {
                return Err(r.error("pieces not strictly sorted"));
            }
            pieces.push(Piece {
                tree,
                entries: n,
                first,
            });
        }
        if sum != entries {
            return Err(r.error(format!(
                "pieces hold {sum} entries, the index says {entries}"
            )));
        }
        r.finish()?;
        Ok(TreeIndex { entries, pieces })
    }

    /// The pieces' ids, deduplicated (what the index references).
    pub fn references(&self) -> Vec<Id> {
        let mut out: Vec<Id> = self.pieces.iter().map(|p| p.tree.0).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The piece that would hold `name`: the last one whose first name is
    /// not after it (`None`: `name` sorts before every entry).
    pub fn piece_for(&self, name: &[u8]) -> Option<usize> {
        self.pieces
            .partition_point(|p| p.first.as_slice() <= name)
            .checked_sub(1)
    }

    /// Fail unless `tree`, read as piece `i`, is what the index says.
    pub fn check_piece(&self, i: usize, tree: &Tree) -> Result<()> {
        let p = &self.pieces[i];
        let bad = |detail: String| {
            Err(Error::corrupt(Problem::Malformed {
                what: "tree piece",
                offset: 0,
                detail,
            }))
        };
        if tree.entries.len() as u64 != u64::from(p.entries) {
            return bad(format!(
                "{} entries where its index says {}",
                tree.entries.len(),
                p.entries
            ));
        }
        if tree.entries.first().map(|e| e.name.as_slice()) != Some(p.first.as_slice()) {
            return bad("its first entry is not the one its index names".into());
        }
        if let (Some(next), Some(last)) = (self.pieces.get(i + 1), tree.entries.last()) {
            if last.name >= next.first {
                return bad("its entries run into the next piece's".into());
            }
        }
        Ok(())
    }
}

/// The whole listing of an indexed directory: every piece read (by
/// `read`, which decodes a version-1 tree) and checked against the index
/// (`bad` turns such an error into the caller's, naming the piece).
pub fn assemble<E>(
    index: &TreeIndex,
    mut read: impl FnMut(&Piece) -> std::result::Result<Tree, E>,
    bad: impl Fn(Error, &Piece) -> E,
) -> std::result::Result<Tree, E> {
    // The count is read from disk: reserve no more than a sane amount.
    let mut entries = Vec::with_capacity(index.entries.min(1 << 16) as usize);
    for (i, p) in index.pieces.iter().enumerate() {
        let t = read(p)?;
        index.check_piece(i, &t).map_err(|e| bad(e, p))?;
        entries.extend(t.entries);
    }
    Ok(Tree { entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(n: u32, first: &[u8]) -> Piece {
        Piece {
            tree: TreeId(Id::of(first)),
            entries: n,
            first: first.to_vec(),
        }
    }

    proptest::proptest! {
        #[test]
        fn encode_decode_round_trip(
            names in proptest::collection::btree_set(
                proptest::collection::vec(1u8..=255, 1..30), 1..50),
            counts in proptest::collection::vec(1u32..1000, 50),
        ) {
            let pieces: Vec<Piece> = names
                .into_iter()
                .filter(|n| validate_name(n).is_ok())
                .zip(counts)
                .map(|(first, n)| piece(n, &first))
                .collect();
            proptest::prop_assume!(!pieces.is_empty());
            let idx = TreeIndex {
                entries: pieces.iter().map(|p| u64::from(p.entries)).sum(),
                pieces,
            };
            let bytes = idx.encode();
            let back = TreeIndex::decode(&bytes).unwrap();
            proptest::prop_assert_eq!(&back, &idx);
            proptest::prop_assert_eq!(back.encode(), bytes);
            for (i, p) in idx.pieces.iter().enumerate() {
                proptest::prop_assert_eq!(idx.piece_for(&p.first), Some(i));
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = TreeIndex::decode(&bytes);
            let mut v2 = b"WTRE\x02".to_vec();
            v2.extend_from_slice(&bytes);
            let _ = super::super::decode_blob(&v2);
        }
    }

    #[test]
    fn round_trip_and_lookup() {
        let idx = TreeIndex {
            entries: 6,
            pieces: vec![piece(1, b"a"), piece(2, b"m"), piece(3, b"t")],
        };
        let bytes = idx.encode();
        assert_eq!(TreeIndex::decode(&bytes).unwrap(), idx);
        assert_eq!(idx.piece_for(b"0"), None);
        assert_eq!(idx.piece_for(b"a"), Some(0));
        assert_eq!(idx.piece_for(b"lz"), Some(0));
        assert_eq!(idx.piece_for(b"m"), Some(1));
        assert_eq!(idx.piece_for(b"zzz"), Some(2));
    }

    #[test]
    fn rejects_what_is_not_canonical() {
        let bad = [
            TreeIndex {
                entries: 3,
                pieces: vec![piece(1, b"a"), piece(1, b"m")],
            },
            TreeIndex {
                entries: 2,
                pieces: vec![piece(1, b"m"), piece(1, b"a")],
            },
            TreeIndex {
                entries: 1,
                pieces: vec![piece(1, b"a"), piece(0, b"b")],
            },
            TreeIndex {
                entries: 0,
                pieces: vec![],
            },
            TreeIndex {
                entries: 1,
                pieces: vec![piece(1, b"..")],
            },
        ];
        for idx in bad {
            assert!(TreeIndex::decode(&idx.encode()).is_err(), "{idx:?}");
        }
    }
}
