//! Cutting a large directory into pieces, while its entries stream in.
//!
//! A directory of at most [`FLAT_MAX_ENTRIES`] entries and
//! [`FLAT_MAX_BYTES`] encoded is one version-1 tree, byte for byte what
//! earlier versions wrote (so stores dedup across the change). A larger
//! one is cut into pieces: a piece ends after an entry whose name hashes
//! to 0 modulo [`PIECE_FANOUT`] once it holds [`PIECE_MIN_ENTRIES`], or at
//! [`PIECE_MAX_ENTRIES`] / [`PIECE_MAX_BYTES`]. The cuts depend only on
//! the entries, so editing, adding or removing one entry rewrites one piece
//! (two when the entry's name is a cut) and the index; the other pieces
//! are byte-identical and dedup.
//!
//! [`Builder`] takes entries in name order and hands each finished piece to
//! its caller at once, so a walk holds one piece's entries at a time, never
//! the whole directory (past the first [`FLAT_MAX_ENTRIES`]).

use crate::error::Result;
use crate::id::{Id, TreeId};

use super::index::{Piece, TreeIndex};
use super::{encode_entries, encoded_len, references, Entry};

/// Directories of at most this many entries are one version-1 tree (no
/// larger than the largest piece).
pub const FLAT_MAX_ENTRIES: usize = 512;
/// … and at most this many bytes encoded.
pub const FLAT_MAX_BYTES: usize = 64 << 10;
/// A piece ends at a cut name only once it holds this many entries.
pub const PIECE_MIN_ENTRIES: usize = 32;
/// One name in this many is a cut: pieces of ~160 entries on average
/// (~16 KiB, ~7 KiB compressed, for files of one chunk).
pub const PIECE_FANOUT: u32 = 128;
/// A piece ends here whatever the names …
pub const PIECE_MAX_ENTRIES: usize = 512;
/// … or once it holds this many bytes.
pub const PIECE_MAX_BYTES: usize = 64 << 10;

/// Whether a piece may end after an entry named `name`.
fn is_cut(name: &[u8]) -> bool {
    let h = blake3::hash(name);
    let b = h.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) % PIECE_FANOUT == 0
}

/// A blob the builder made: its id, bytes and references.
pub struct Encoded {
    pub id: TreeId,
    pub bytes: Vec<u8>,
    pub refs: Vec<Id>,
}

impl Encoded {
    /// Encode a version-1 tree of `entries`.
    pub fn piece(entries: &[Entry]) -> Encoded {
        let bytes = encode_entries(entries);
        let refs = references(entries);
        Encoded {
            id: TreeId(Id::of(&bytes)),
            bytes,
            refs,
        }
    }
}

/// Builds one directory's tree blob from its entries in name order.
#[derive(Default)]
pub struct Builder {
    /// Entries not yet in a sealed piece.
    held: Vec<Entry>,
    /// Ends (exclusive, within `held`) of pieces complete and about to be
    /// sealed. Nothing is cut (no name hashed) until the directory proves
    /// larger than one flat tree.
    cuts: Vec<usize>,
    /// Entries and bytes of the piece being filled.
    piece_entries: usize,
    piece_bytes: usize,
    total_entries: u64,
    total_bytes: usize,
    split: bool,
    pieces: Vec<Piece>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Add the next entry (after every earlier one in name order). Pieces
    /// that are complete go to `seal`, which stores them (or finds them
    /// stored) and gives back their id.
    pub fn push(
        &mut self,
        entry: Entry,
        seal: &mut impl FnMut(Vec<Entry>) -> Result<TreeId>,
    ) -> Result<()> {
        debug_assert!(self.held.last().is_none_or(|p| p.name < entry.name));
        let len = encoded_len(&entry);
        self.total_entries += 1;
        self.total_bytes += len;
        self.held.push(entry);
        if self.split {
            self.count(self.held.len() - 1, len);
            return self.seal_cuts(seal);
        }
        if self.total_entries > FLAT_MAX_ENTRIES as u64 || self.total_bytes > FLAT_MAX_BYTES {
            // Large after all: the cuts of what was held (no name is hashed
            // in a directory that stays one tree).
            self.split = true;
            for i in 0..self.held.len() {
                let len = encoded_len(&self.held[i]);
                self.count(i, len);
            }
            return self.seal_cuts(seal);
        }
        Ok(())
    }

    /// Count held entry `i` (of `len` bytes) into the piece being filled;
    /// record a cut after it if the piece ends there.
    fn count(&mut self, i: usize, len: usize) {
        self.piece_entries += 1;
        self.piece_bytes += len;
        let cut = (self.piece_entries >= PIECE_MIN_ENTRIES && is_cut(&self.held[i].name))
            || self.piece_entries >= PIECE_MAX_ENTRIES
            || self.piece_bytes >= PIECE_MAX_BYTES;
        if cut {
            self.cuts.push(i + 1);
            self.piece_entries = 0;
            self.piece_bytes = 0;
        }
    }

    /// The name of the first entry not yet in a sealed piece: what a
    /// later piece may still start with.
    pub fn first_held(&self) -> Option<&[u8]> {
        self.held.first().map(|e| e.name.as_slice())
    }

    fn seal_cuts(&mut self, seal: &mut impl FnMut(Vec<Entry>) -> Result<TreeId>) -> Result<()> {
        let mut done = 0;
        for cut in std::mem::take(&mut self.cuts) {
            let rest = self.held.split_off(cut - done);
            let piece = std::mem::replace(&mut self.held, rest);
            done = cut;
            self.seal_one(piece, seal)?;
        }
        Ok(())
    }

    fn seal_one(
        &mut self,
        piece: Vec<Entry>,
        seal: &mut impl FnMut(Vec<Entry>) -> Result<TreeId>,
    ) -> Result<()> {
        let first = piece[0].name.clone();
        let entries = u32::try_from(piece.len()).expect("piece size bounded");
        let tree = seal(piece)?;
        self.pieces.push(Piece {
            tree,
            entries,
            first,
        });
        Ok(())
    }

    /// The directory's own blob: one version-1 tree if it stayed small
    /// (its entries, encoded by the caller: an unchanged directory needs
    /// only the id, not the references), else the index of its pieces (the
    /// last one sealed now).
    pub fn finish(mut self, seal: &mut impl FnMut(Vec<Entry>) -> Result<TreeId>) -> Result<Top> {
        if !self.split {
            return Ok(Top::Flat(self.held));
        }
        self.seal_cuts(seal)?;
        if !self.held.is_empty() {
            let last = std::mem::take(&mut self.held);
            self.seal_one(last, seal)?;
        }
        let index = TreeIndex {
            entries: self.total_entries,
            pieces: self.pieces,
        };
        let bytes = index.encode();
        Ok(Top::Index(Encoded {
            id: TreeId(Id::of(&bytes)),
            bytes,
            refs: index.references(),
        }))
    }
}

/// What [`Builder::finish`] gives: a small directory's entries, or a large
/// one's index, encoded.
pub enum Top {
    Flat(Vec<Entry>),
    Index(Encoded),
}

impl Top {
    /// The blob's id and bytes, and a way to its references.
    pub fn encode(self) -> (TreeId, Vec<u8>, Refs) {
        match self {
            Top::Flat(entries) => {
                let bytes = encode_entries(&entries);
                (TreeId(Id::of(&bytes)), bytes, Refs::Entries(entries))
            }
            Top::Index(e) => (e.id, e.bytes, Refs::Ids(e.refs)),
        }
    }
}

/// The references of a directory's blob, computed only when it is stored.
pub enum Refs {
    Entries(Vec<Entry>),
    Ids(Vec<Id>),
}

impl Refs {
    pub fn ids(self) -> Vec<Id> {
        match self {
            Refs::Entries(e) => references(&e),
            Refs::Ids(ids) => ids,
        }
    }
}

/// Split a whole directory at once: its blob and its pieces (each before
/// the blob that references it). For callers that hold the listing anyway
/// (rewrite) and for tests.
pub fn split(entries: Vec<Entry>) -> (Encoded, Vec<Encoded>) {
    let mut pieces = Vec::new();
    let mut seal = |piece: Vec<Entry>| -> Result<TreeId> {
        let e = Encoded::piece(&piece);
        let id = e.id;
        pieces.push(e);
        Ok(id)
    };
    let mut b = Builder::new();
    for e in entries {
        b.push(e, &mut seal).expect("sealing in memory cannot fail");
    }
    let (id, bytes, refs) = b
        .finish(&mut seal)
        .expect("sealing in memory cannot fail")
        .encode();
    let top = Encoded {
        id,
        bytes,
        refs: refs.ids(),
    };
    (top, pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ChunkId;
    use crate::tree::{decode_blob, index, EntryKind, FileContent, Tree, TreeBlob};
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn entry(name: &str, seed: u64) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            flags: 0,
            mode: 0o644,
            mtime_ns: seed as i64,
            ctime_ns: 5,
            inode: seed,
            uid: 1,
            gid: 2,
            size: seed,
            kind: EntryKind::File {
                content: FileContent::Chunks(vec![ChunkId(Id::of(&seed.to_le_bytes()))]),
            },
        }
    }

    fn dir(n: usize) -> Vec<Entry> {
        let mut v: Vec<Entry> = (0..n)
            .map(|i| entry(&format!("f{i:06}"), i as u64))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Read back a split directory from its blobs.
    fn read_back(top: &Encoded, pieces: &[Encoded]) -> Tree {
        let by_id: HashMap<TreeId, &Encoded> = pieces.iter().map(|p| (p.id, p)).collect();
        match decode_blob(&top.bytes).unwrap() {
            TreeBlob::Flat(t) => t,
            TreeBlob::Index(idx) => {
                index::assemble(&idx, |p| Tree::decode(&by_id[&p.tree].bytes), |e, _| e).unwrap()
            }
        }
    }

    #[test]
    fn small_directories_stay_version_1_byte_for_byte() {
        let entries = dir(FLAT_MAX_ENTRIES);
        let (top, pieces) = split(entries.clone());
        assert!(pieces.is_empty());
        assert_eq!(top.bytes, Tree { entries }.encode());
    }

    #[test]
    fn an_edit_rewrites_one_piece() {
        let entries = dir(20_000);
        let (_, before) = split(entries.clone());
        assert!(
            before.len() > 60 && before.len() < 250,
            "{} pieces",
            before.len()
        );
        let old: std::collections::HashSet<TreeId> = before.iter().map(|p| p.id).collect();
        for edit in [0, 9_999, 19_999] {
            let mut edited = entries.clone();
            edited[edit].size += 1;
            let (_, after) = split(edited.clone());
            let new: Vec<&Encoded> = after.iter().filter(|p| !old.contains(&p.id)).collect();
            assert_eq!(new.len(), 1, "edit at {edit}");
            assert!(new[0].bytes.len() < PIECE_MAX_BYTES + 4096);
            // An insert, and a removal.
            let mut grown = entries.clone();
            grown.insert(edit + 1, entry(&format!("f{edit:06}x"), 7));
            let (_, after) = split(grown);
            let new = after.iter().filter(|p| !old.contains(&p.id)).count();
            assert!(new <= 2, "insert at {edit}: {new} new pieces");
            edited.remove(edit);
            let (_, after) = split(edited);
            let new = after.iter().filter(|p| !old.contains(&p.id)).count();
            assert!(new <= 2, "removal at {edit}: {new} new pieces");
        }
    }

    #[test]
    fn index_lookup_finds_every_name() {
        let entries = dir(5_000);
        let (top, pieces) = split(entries.clone());
        let TreeBlob::Index(idx) = decode_blob(&top.bytes).unwrap() else {
            panic!("not split")
        };
        let by_id: HashMap<TreeId, &Encoded> = pieces.iter().map(|p| (p.id, p)).collect();
        for e in entries.iter().step_by(97) {
            let i = idx.piece_for(&e.name).unwrap();
            let t = Tree::decode(&by_id[&idx.pieces[i].tree].bytes).unwrap();
            assert_eq!(t.find(&e.name), Some(e));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn split_read_back_round_trip(n in 0usize..6_000, seed in any::<u64>()) {
            let entries: Vec<Entry> = {
                let mut v: Vec<Entry> = (0..n)
                    .map(|i| entry(&format!("{:x}-{i}", seed.wrapping_mul(i as u64 + 1)), i as u64))
                    .collect();
                v.sort_by(|a, b| a.name.cmp(&b.name));
                v.dedup_by(|a, b| a.name == b.name);
                v
            };
            let (top, pieces) = split(entries.clone());
            prop_assert_eq!(pieces.is_empty(), entries.len() <= FLAT_MAX_ENTRIES);
            for p in &pieces {
                prop_assert_eq!(Id::of(&p.bytes), p.id.0);
            }
            prop_assert_eq!(Id::of(&top.bytes), top.id.0);
            prop_assert_eq!(read_back(&top, &pieces).entries, entries);
        }
    }
}
