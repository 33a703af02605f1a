//! One directory of the parent snapshot, as the walk reads it: the stat
//! cache for its entries, and the pieces a large directory may reuse.
//!
//! A small (version-1) directory is read whole. An indexed one is read a
//! piece at a time, in name order, as the walk's batches of names reach
//! it ([`ParentDir::load`]): memory holds a few pieces, not the directory.
//! A tree or piece that cannot be read only costs the stat cache of its
//! entries (they are read again), as before.

use std::collections::{BTreeMap, HashSet};

use crate::catalog::CatalogPool;
use crate::id::TreeId;
use crate::store::Store;
use crate::tree::{Entry, Tree, TreeBlob, TreeIndex};

use super::traverse::Snapped;

pub(super) enum ParentDir {
    None,
    Flat(Tree),
    Index {
        index: TreeIndex,
        /// Pieces read, by position (`None`: unreadable or inconsistent).
        loaded: BTreeMap<usize, Option<Tree>>,
        /// Every piece read back whole so far: a new piece with one of
        /// these ids is stored already.
        readable: HashSet<TreeId>,
    },
}

impl ParentDir {
    /// The parent's directory `id`, if there is one and it reads.
    pub fn open(store: &Store, pool: &CatalogPool, id: Option<TreeId>) -> ParentDir {
        let Some(id) = id else {
            return ParentDir::None;
        };
        match pool.with(|c| store.read_tree_blob(c, &id)) {
            Ok(TreeBlob::Flat(t)) => ParentDir::Flat(t),
            Ok(TreeBlob::Index(index)) => ParentDir::Index {
                index,
                loaded: BTreeMap::new(),
                readable: HashSet::new(),
            },
            Err(_) => ParentDir::None,
        }
    }

    /// Make entries `first..=last` findable; let go of pieces before the
    /// one that would hold `keep` (the first entry the caller still needs).
    pub fn load(
        &mut self,
        store: &Store,
        pool: &CatalogPool,
        first: &[u8],
        last: &[u8],
        keep: &[u8],
    ) {
        let ParentDir::Index {
            index,
            loaded,
            readable,
        } = self
        else {
            return;
        };
        let keep_from = index.piece_for(keep.min(first)).unwrap_or(0);
        *loaded = loaded.split_off(&keep_from);
        let (Some(to), from) = (index.piece_for(last), index.piece_for(first).unwrap_or(0)) else {
            return; // every name sorts before the parent's first entry
        };
        for i in from..=to {
            if loaded.contains_key(&i) {
                continue;
            }
            let p = &index.pieces[i];
            let piece = pool
                .with(|c| store.read_piece(c, &p.tree))
                .ok()
                .filter(|t| index.check_piece(i, t).is_ok());
            if piece.is_some() {
                readable.insert(p.tree);
            }
            loaded.insert(i, piece);
        }
    }

    /// The parent's entry `name`, if loaded (see [`ParentDir::load`]).
    pub fn find(&self, name: &[u8]) -> Option<&Entry> {
        match self {
            ParentDir::None => None,
            ParentDir::Flat(t) => t.find(name),
            ParentDir::Index { index, loaded, .. } => {
                loaded.get(&index.piece_for(name)?)?.as_ref()?.find(name)
            }
        }
    }

    /// The parent's entries of `names` (sorted, loaded): a small
    /// directory's found in one pass along both lists, not one search each.
    pub fn find_sorted(&self, names: &[Vec<u8>]) -> Vec<Option<&Entry>> {
        let ParentDir::Flat(t) = self else {
            return names.iter().map(|n| self.find(n)).collect();
        };
        let mut rest = &t.entries[..];
        names
            .iter()
            .map(|n| {
                while let Some((e, after)) = rest.split_first() {
                    match e.name.as_slice().cmp(n) {
                        std::cmp::Ordering::Less => rest = after,
                        std::cmp::Ordering::Equal => {
                            rest = after;
                            return Some(e);
                        }
                        std::cmp::Ordering::Greater => return None,
                    }
                }
                None
            })
            .collect()
    }

    /// The id of the parent's piece holding exactly `entries`, if loaded:
    /// an unchanged piece is neither encoded nor stored again.
    pub fn same_piece(&self, entries: &[Entry]) -> Option<TreeId> {
        let ParentDir::Index { index, loaded, .. } = self else {
            return None;
        };
        let i = index.piece_for(&entries.first()?.name)?;
        let t = loaded.get(&i)?.as_ref()?;
        (t.entries == entries).then_some(index.pieces[i].tree)
    }

    /// Whether `entries` (the walk's, in name order) are exactly this
    /// small directory's, each the very entry [`ParentDir::find`] gave: then
    /// the directory's tree is the parent's, byte for byte.
    pub fn is_all_of(&self, entries: &[Snapped<'_>]) -> bool {
        let ParentDir::Flat(t) = self else {
            return false;
        };
        entries.len() == t.entries.len()
            && entries
                .iter()
                .zip(&t.entries)
                .all(|(e, p)| matches!(e, Snapped::Same(s) if std::ptr::eq(*s, p)))
    }

    /// Whether a piece with this id was read back from the parent (so the
    /// store has it).
    pub fn has_piece(&self, id: &TreeId) -> bool {
        match self {
            ParentDir::Index { readable, .. } => readable.contains(id),
            _ => false,
        }
    }
}
