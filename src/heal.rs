//! Damaged snapshots become whole again once their lost data is stored.
//!
//! `repair` marks a snapshot `damaged` when blobs it reaches are in no pack.
//! A damaged snapshot is never a parent (see `Catalog::last_taken`), so the
//! next snapshot of its workspace reads every file again and stores what
//! was lost, while the live files still hold it. After such a run, each
//! damaged snapshot of the workspaces it covered is walked: if every blob it
//! reaches is indexed again, its trees get their complete references in
//! `tree_refs` (so gc sees the stored-again blobs as live) and its flag is
//! cleared, in one transaction. A snapshot still missing something stays
//! damaged. Reads trees only (never chunks): the cost is the size of the
//! damaged snapshots' trees, paid only when there are any.

use std::collections::HashSet;

use crate::catalog::{Catalog, TreeRefs};
use crate::chunklist;
use crate::error::Result;
use crate::id::{Id, TreeId};
use crate::model::SnapshotRow;
use crate::pack::BlobKind;
use crate::store::Store;
use crate::tree::{EntryKind, FileContent, TreeBlob};
use crate::workspace::WorkspaceName;

/// Clear the flag of every damaged snapshot of `workspaces` whose data is
/// all stored again; returns those now whole. Needs the writer lock.
pub fn damaged_snapshots(
    store: &Store,
    catalog: &mut Catalog,
    workspaces: &HashSet<&WorkspaceName>,
) -> Result<Vec<SnapshotRow>> {
    let mut healed = Vec::new();
    for snap in catalog.damaged_snapshots()? {
        if !workspaces.contains(&snap.workspace) {
            continue;
        }
        if let Some(trees) = whole_trees(store, catalog, &snap.root)? {
            catalog.mark_whole(&snap.id, &trees)?;
            healed.push(snap);
        }
    }
    Ok(healed)
}

/// Every tree and chunk list reachable from `root`, with its references,
/// if every blob reachable is indexed and its trees and lists decode;
/// `None` as soon as one is missing.
fn whole_trees(store: &Store, catalog: &Catalog, root: &TreeId) -> Result<Option<Vec<TreeRefs>>> {
    if !catalog.has_blob(&root.0)? {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut todo = vec![(root.0, BlobKind::Tree)];
    while let Some((id, kind)) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Ok(raw) = store.read_blob(catalog, &id, kind) else {
            return Ok(None);
        };
        let refs: Vec<Id> = match kind {
            BlobKind::Tree => match crate::tree::decode_blob(&raw) {
                Ok(TreeBlob::Flat(tree)) => {
                    for e in &tree.entries {
                        match &e.kind {
                            EntryKind::Dir { tree } => todo.push((tree.0, BlobKind::Tree)),
                            EntryKind::File {
                                content: FileContent::Lists(lists),
                            } => todo.extend(lists.iter().map(|l| (l.0, BlobKind::ChunkList))),
                            _ => {}
                        }
                    }
                    tree.references()
                }
                // A large directory: its pieces are trees too.
                Ok(TreeBlob::Index(index)) => {
                    todo.extend(index.pieces.iter().map(|p| (p.tree.0, BlobKind::Tree)));
                    index.references()
                }
                Err(_) => return Ok(None),
            },
            _ => match chunklist::decode(&raw) {
                Ok(chunks) => chunks.into_iter().map(|c| c.0).collect(),
                Err(_) => return Ok(None),
            },
        };
        for r in &refs {
            if !catalog.has_blob(r)? {
                return Ok(None);
            }
        }
        out.push((id, refs));
    }
    Ok(Some(out))
}
