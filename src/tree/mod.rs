//! Trees: one directory's listing, canonically encoded.
//!
//! Entries are sorted by name bytes and every field has one encoding, so the
//! same directory state always yields the same bytes and the same [`TreeId`]:
//! an unchanged directory costs no new blob. Names are raw bytes (any byte but
//! `/` and NUL). Decoding is strict and never panics: it is the first thing
//! that touches bytes read back from disk (see `fuzz/`), and its output
//! decides paths the restore writes to, so names are validated here.
//!
//! A directory of more than [`split::FLAT_MAX_ENTRIES`] entries (or
//! [`split::FLAT_MAX_BYTES`] encoded) is stored as pieces, each a version-1
//! tree of a run of its entries cut where a hash of the name says
//! ([`split`]), listed by an index blob (version 2, [`index`]): an edit
//! rewrites one piece and the index, not the whole listing.
//!
//! Encoding, version 1 (all integers little-endian):
//!
//! ```text
//! tree    := "WTRE" u8:version=1 u32:count entry*count
//! entry   := u16:name_len name u8:kind u8:flags u32:mode i64:mtime_ns
//!            i64:ctime_ns u64:inode u32:uid u32:gid u64:size payload
//! payload := file:    u8:layout u32:n id[32]*n   (layout 0: chunk ids,
//!                                               1: chunk-list ids)
//!          | dir:     tree_id[32]
//!          | symlink: u32:len target
//! ```

use crate::codec::{Reader, Writer};
use crate::error::{Error, Format, Location, Problem, Result};
use crate::id::{ChunkId, Id, ListId, TreeId};
use crate::workspace::check_name;

pub mod index;
pub mod split;

pub use index::{Piece, TreeIndex};

const MAGIC: &[u8; 4] = b"WTRE";
/// Version 1: a directory's listing (a whole small directory, or one
/// piece of a large one). Version 2 is the index of pieces ([`index`]).
pub const TREE_VERSION: u8 = 1;

pub use crate::workspace::MAX_NAME_BYTES;
/// Longest symlink target accepted (PATH_MAX).
pub const MAX_TARGET_BYTES: usize = 4096;
/// Smallest possible encoded entry, used to bound counts before allocating.
const MIN_ENTRY_BYTES: usize = 2 + 1 + 1 + 1 + 4 + 8 + 8 + 8 + 4 + 4 + 8 + 4 + 1;

/// Entry flag: the file changed while it was read; never reuse its chunks
/// from the stat cache.
pub const FLAG_CHANGED_DURING_READ: u8 = 1;
const KNOWN_FLAGS: u8 = FLAG_CHANGED_DURING_READ;

/// Where a file's bytes are: its chunks in order, directly or through
/// chunk lists (large files, see `chunklist.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileContent {
    Chunks(Vec<ChunkId>),
    Lists(Vec<ListId>),
}

/// What an entry is, with its references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File { content: FileContent },
    Dir { tree: TreeId },
    Symlink { target: Vec<u8> },
}

impl EntryKind {
    fn code(&self) -> u8 {
        match self {
            EntryKind::File { .. } => 1,
            EntryKind::Dir { .. } => 2,
            EntryKind::Symlink { .. } => 3,
        }
    }
}

/// One directory entry with the metadata we restore and the stat-cache
/// fields (ctime, inode) that let the next snapshot skip reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub flags: u8,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub uid: u32,
    pub gid: u32,
    /// File size in bytes (symlink: target length; dir: 0).
    pub size: u64,
    pub kind: EntryKind,
}

/// A directory listing, entries sorted by name bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    pub entries: Vec<Entry>,
}

/// A tree blob as stored: a whole directory (version 1), or the index of
/// a large directory's pieces (version 2, see [`index`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeBlob {
    Flat(Tree),
    Index(TreeIndex),
}

impl TreeBlob {
    /// Ids the blob references: a flat tree's chunks, lists and subtrees;
    /// an index's pieces.
    pub fn references(&self) -> Vec<Id> {
        match self {
            TreeBlob::Flat(t) => t.references(),
            TreeBlob::Index(i) => i.references(),
        }
    }
}

/// Strict decode of a tree blob of either version.
pub fn decode_blob(bytes: &[u8]) -> Result<TreeBlob> {
    match bytes.get(..5) {
        Some([b'W', b'T', b'R', b'E', index::INDEX_VERSION]) => {
            TreeIndex::decode(bytes).map(TreeBlob::Index)
        }
        Some([b'W', b'T', b'R', b'E', TREE_VERSION]) | None => {
            Tree::decode(bytes).map(TreeBlob::Flat)
        }
        Some([b'W', b'T', b'R', b'E', v]) => Err(unsupported(*v)),
        Some(_) => Tree::decode(bytes).map(TreeBlob::Flat),
    }
}

/// The references of tree blob `bytes` (either version), for the
/// catalog's `tree_refs`.
pub fn references_of(bytes: &[u8]) -> Result<Vec<Id>> {
    decode_blob(bytes).map(|b| b.references())
}

/// A tree of a version this build does not read (a newer wsnap's).
fn unsupported(version: u8) -> Error {
    Error::UnsupportedFormat {
        what: Format::Tree,
        found: i64::from(version),
        supported: i64::from(TREE_VERSION)..=i64::from(index::INDEX_VERSION),
        location: Location::Unknown,
    }
}

/// `dir/name` as a path relative to a workspace or snapshot root (`name`
/// alone at the root, where `dir` is empty): what reports and skips show.
pub fn join_rel(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(dir.len() + 1 + name.len());
    v.extend_from_slice(dir);
    if !dir.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

/// Check a name read from the store (a tree entry's) before it is joined
/// to a path (`workspace::check_name`); a bad one is corrupt data.
pub fn validate_name(name: &[u8]) -> Result<()> {
    check_name(name).map_err(|why| {
        Error::corrupt(Problem::BadName {
            name: name[..name.len().min(64)].to_vec(),
            why,
        })
    })
}

/// The version-1 encoding of `entries` (sorted, valid): a whole small
/// directory, or one piece of a large one.
pub fn encode_entries(entries: &[Entry]) -> Vec<u8> {
    let bytes: usize = entries.iter().map(encoded_len).sum();
    let mut w = Writer::with_capacity(9 + bytes);
    w.bytes(MAGIC);
    w.u8(TREE_VERSION);
    w.u32(u32::try_from(entries.len()).expect("tree entry count fits u32"));
    for e in entries {
        encode_entry(&mut w, e);
    }
    w.buf
}

/// Ids `entries` reference (chunks, chunk lists and subtrees), deduplicated.
pub fn references(entries: &[Entry]) -> Vec<Id> {
    let mut out = Vec::new();
    for e in entries {
        match &e.kind {
            EntryKind::File {
                content: FileContent::Chunks(c),
            } => out.extend(c.iter().map(|c| c.0)),
            EntryKind::File {
                content: FileContent::Lists(l),
            } => out.extend(l.iter().map(|l| l.0)),
            EntryKind::Dir { tree } => out.push(tree.0),
            EntryKind::Symlink { .. } => {}
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Bytes `e` takes in a version-1 tree.
pub fn encoded_len(e: &Entry) -> usize {
    let payload = match &e.kind {
        EntryKind::File {
            content: FileContent::Chunks(c),
        } => 5 + 32 * c.len(),
        EntryKind::File {
            content: FileContent::Lists(l),
        } => 5 + 32 * l.len(),
        EntryKind::Dir { .. } => 32,
        EntryKind::Symlink { target } => 4 + target.len(),
    };
    2 + e.name.len() + 1 + 1 + 4 + 8 + 8 + 8 + 4 + 4 + 8 + payload
}

fn encode_entry(w: &mut Writer, e: &Entry) {
    debug_assert!(validate_name(&e.name).is_ok());
    w.u16(u16::try_from(e.name.len()).expect("name length checked"));
    w.bytes(&e.name);
    w.u8(e.kind.code());
    w.u8(e.flags);
    w.u32(e.mode);
    w.i64(e.mtime_ns);
    w.i64(e.ctime_ns);
    w.u64(e.inode);
    w.u32(e.uid);
    w.u32(e.gid);
    w.u64(e.size);
    match &e.kind {
        EntryKind::File { content } => {
            let ids: Vec<&Id> = match content {
                FileContent::Chunks(c) => {
                    w.u8(0);
                    c.iter().map(|c| &c.0).collect()
                }
                FileContent::Lists(l) => {
                    w.u8(1);
                    l.iter().map(|l| &l.0).collect()
                }
            };
            w.u32(u32::try_from(ids.len()).expect("id count fits u32"));
            for id in ids {
                w.id(id);
            }
        }
        EntryKind::Dir { tree } => w.id(&tree.0),
        EntryKind::Symlink { target } => {
            w.u32(u32::try_from(target.len()).expect("target length checked"));
            w.bytes(target);
        }
    }
}

impl Tree {
    /// Sort entries into canonical order. Names must be unique.
    pub fn from_unsorted(mut entries: Vec<Entry>) -> Tree {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Tree { entries }
    }

    /// Find an entry by name (binary search).
    pub fn find(&self, name: &[u8]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Ids this tree references (chunks and subtrees), deduplicated.
    pub fn references(&self) -> Vec<Id> {
        references(&self.entries)
    }

    /// Canonical bytes (version 1, one blob). Entries must already be
    /// sorted and valid. A large directory is stored as pieces instead
    /// ([`split`]); each piece is encoded by this.
    pub fn encode(&self) -> Vec<u8> {
        encode_entries(&self.entries)
    }

    /// Encode and hash.
    pub fn encode_with_id(&self) -> (TreeId, Vec<u8>) {
        let bytes = self.encode();
        (TreeId(Id::of(&bytes)), bytes)
    }

    /// Strict decode of a version-1 tree (a whole small directory, or one
    /// piece of a large one): rejects bad magic, other versions, unknown
    /// kinds or flags, invalid or unsorted or duplicate names, oversized
    /// fields, trailing bytes. A blob that may be either form is read with
    /// [`decode_blob`].
    pub fn decode(bytes: &[u8]) -> Result<Tree> {
        let mut r = Reader::new(bytes, "tree");
        if r.take(4)? != MAGIC {
            return Err(r.bad_magic());
        }
        let version = r.u8()?;
        if version == index::INDEX_VERSION {
            return Err(r.error("a tree index where a directory listing (version 1) belongs"));
        }
        if version != TREE_VERSION {
            return Err(unsupported(version));
        }
        let count = r.u32()? as usize;
        if count > r.remaining() / MIN_ENTRY_BYTES {
            return Err(r.error(format!("entry count {count} exceeds the data")));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        for _ in 0..count {
            let name_len = usize::from(r.u16()?);
            let name = r.take(name_len)?.to_vec();
            validate_name(&name)?;
            if let Some(prev) = entries.last() {
                if prev.name >= name {
                    return Err(r.error("entries not strictly sorted"));
                }
            }
            let kind_code = r.u8()?;
            let flags = r.u8()?;
            if flags & !KNOWN_FLAGS != 0 {
                return Err(r.error(format!("unknown entry flags {flags:#x}")));
            }
            let mode = r.u32()?;
            if mode & !0o7777 != 0 {
                return Err(r.error(format!("mode {mode:o} has non-permission bits")));
            }
            let mtime_ns = r.i64()?;
            let ctime_ns = r.i64()?;
            let inode = r.u64()?;
            let uid = r.u32()?;
            let gid = r.u32()?;
            let size = r.u64()?;
            let kind = match kind_code {
                1 => {
                    let layout = r.u8()?;
                    let n = r.u32()? as usize;
                    if n > r.remaining() / 32 {
                        return Err(r.error(format!("id count {n} exceeds the data")));
                    }
                    let mut ids = Vec::with_capacity(n);
                    for _ in 0..n {
                        ids.push(r.id()?);
                    }
                    let content = match layout {
                        0 => FileContent::Chunks(ids.into_iter().map(ChunkId).collect()),
                        1 if n > 0 => FileContent::Lists(ids.into_iter().map(ListId).collect()),
                        _ => return Err(r.error(format!("bad file layout {layout} with {n} ids"))),
                    };
                    EntryKind::File { content }
                }
                2 => EntryKind::Dir {
                    tree: TreeId(r.id()?),
                },
                3 => {
                    let n = r.u32()? as usize;
                    if n == 0 || n > MAX_TARGET_BYTES {
                        return Err(r.error(format!("symlink target of {n} bytes")));
                    }
                    let target = r.take(n)?.to_vec();
                    if target.contains(&0) {
                        return Err(r.error("symlink target contains NUL"));
                    }
                    EntryKind::Symlink { target }
                }
                k => return Err(r.error(format!("unknown entry kind {k}"))),
            };
            entries.push(Entry {
                name,
                flags,
                mode,
                mtime_ns,
                ctime_ns,
                inode,
                uid,
                gid,
                size,
                kind,
            });
        }
        r.finish()?;
        Ok(Tree { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry_strategy() -> impl Strategy<Value = Entry> {
        let name = proptest::collection::vec(any::<u8>(), 1..40)
            .prop_filter("valid name", |n| validate_name(n).is_ok());
        let kind = prop_oneof![
            proptest::collection::vec(any::<[u8; 32]>(), 0..5).prop_map(|v| EntryKind::File {
                content: FileContent::Chunks(v.into_iter().map(|b| ChunkId(Id(b))).collect())
            }),
            proptest::collection::vec(any::<[u8; 32]>(), 1..5).prop_map(|v| EntryKind::File {
                content: FileContent::Lists(v.into_iter().map(|b| ListId(Id(b))).collect())
            }),
            any::<[u8; 32]>().prop_map(|b| EntryKind::Dir {
                tree: TreeId(Id(b))
            }),
            proptest::collection::vec(1u8..=255, 1..100)
                .prop_map(|target| EntryKind::Symlink { target }),
        ];
        (
            name,
            kind,
            0u32..0o7777,
            any::<i64>(),
            any::<i64>(),
            any::<u64>(),
            any::<(u32, u32)>(),
            any::<u64>(),
            0u8..=1,
        )
            .prop_map(
                |(name, kind, mode, mtime_ns, ctime_ns, inode, (uid, gid), size, flags)| Entry {
                    name,
                    flags,
                    mode,
                    mtime_ns,
                    ctime_ns,
                    inode,
                    uid,
                    gid,
                    size,
                    kind,
                },
            )
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(entries in proptest::collection::vec(entry_strategy(), 0..20)) {
            let mut entries = entries;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            entries.dedup_by(|a, b| a.name == b.name);
            let tree = Tree { entries };
            let bytes = tree.encode();
            let back = Tree::decode(&bytes).unwrap();
            prop_assert_eq!(&back, &tree);
            prop_assert_eq!(back.encode(), bytes);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Tree::decode(&bytes);
        }
    }

    #[test]
    fn rejects_hostile_names() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b", b"/etc"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        let e = Entry {
            name: b"ok".to_vec(),
            flags: 0,
            mode: 0o644,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            kind: EntryKind::File {
                content: FileContent::Chunks(vec![]),
            },
        };
        let mut bytes = Tree {
            entries: vec![e.clone()],
        }
        .encode();
        // Overwrite "ok" with ".." in place: same length, now hostile.
        let pos = bytes.windows(2).position(|w| w == b"ok").unwrap();
        bytes[pos..pos + 2].copy_from_slice(b"..");
        assert!(Tree::decode(&bytes).is_err());
        // Duplicate names are not canonical.
        let dup = Tree {
            entries: vec![e.clone(), e],
        }
        .encode();
        assert!(Tree::decode(&dup).is_err());
    }
}
