//! Naming a snapshot and a path inside it: `--at TIME` / `--snapshot ID`
//! (an id or a unique prefix), and `a/b/c` resolved through the trees.
//! Used by restore, ls, cat, diff, log and forget; reads only the catalog
//! and trees.

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::escape::Escaped;
use crate::model::SnapshotRow;
use crate::store::Store;
use crate::timespec::{self, TimeSpec};
use crate::tree::{validate_name, Entry, EntryKind, Tree};
use crate::workspace::WorkspaceName;

/// How the user names a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Newest snapshot at or before a time (or the newest of all).
    Time(TimeSpec),
    /// Hex id or unique prefix (at least 4 digits).
    Id(String),
}

/// Pick one snapshot of `ws`.
pub fn select(catalog: &Catalog, ws: &WorkspaceName, sel: &Selector) -> Result<SnapshotRow> {
    let all = catalog.snapshots(Some(ws))?;
    if all.is_empty() {
        return Err(Error::NotFound(format!(
            "no snapshots of workspace {ws} in this store (see `wsnap list`)"
        )));
    }
    match sel {
        Selector::Time(TimeSpec::Latest) => Ok(all.last().expect("non-empty").clone()),
        Selector::Time(TimeSpec::At(t)) => {
            // `all` is ordered by (time, id): the last one at or before t.
            match all.iter().rev().find(|s| s.time_ns <= *t) {
                Some(s) => Ok(s.clone()),
                None => {
                    let oldest = &all[0];
                    Err(Error::NotFound(format!(
                        "no snapshot of {ws} at or before {}; the oldest is {} ({})",
                        timespec::format_local(*t),
                        timespec::format_local(oldest.time_ns),
                        oldest.id.0.short()
                    )))
                }
            }
        }
        Selector::Id(prefix) => by_id_prefix(&all, prefix, &format!("of {ws} ")).cloned(),
    }
}

/// The one snapshot among `all` whose id starts with `prefix` (at least 4
/// hex digits). `scope` completes "no snapshot {scope}has id …".
pub fn by_id_prefix<'a>(
    all: &'a [SnapshotRow],
    prefix: &str,
    scope: &str,
) -> Result<&'a SnapshotRow> {
    let p = prefix.to_ascii_lowercase();
    if p.len() < 4 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid(
            "snapshot id",
            format!("{prefix:?}: give at least 4 hex digits, as `wsnap list` shows"),
        ));
    }
    let hits: Vec<&SnapshotRow> = all
        .iter()
        .filter(|s| s.id.0.to_hex().starts_with(&p))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::NotFound(format!(
            "no snapshot {scope}has id {prefix}"
        ))),
        _ => Err(Error::invalid(
            "snapshot id",
            format!(
                "{prefix} matches {} snapshots; give more digits",
                hits.len()
            ),
        )),
    }
}

/// Split a user-given path inside a snapshot into validated components.
pub fn split_path(path: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        if c.is_empty() || c == b"." {
            continue;
        }
        validate_name(c).map_err(|_| {
            Error::invalid(
                "path",
                format!(
                    "{:?}: components may not be '..' or contain NUL",
                    Escaped(path)
                ),
            )
        })?;
        out.push(c);
    }
    Ok(out)
}

/// What a path inside a snapshot names.
#[derive(Clone, Debug)]
pub enum Node {
    /// The snapshot's root directory.
    Root(Tree),
    /// An entry below the root.
    Entry(Entry),
}

/// Find `path` in snapshot `snap`.
pub fn resolve(store: &Store, catalog: &Catalog, snap: &SnapshotRow, path: &[u8]) -> Result<Node> {
    let parts = split_path(path)?;
    let mut tree = store.read_tree(catalog, &snap.root)?;
    let mut node = Node::Root(tree.clone());
    for (i, part) in parts.iter().enumerate() {
        let entry = tree.find(part).cloned().ok_or_else(|| {
            Error::NotFound(format!(
                "{} not found in snapshot {} of {}",
                Escaped(path),
                snap.id.0.short(),
                snap.workspace
            ))
        })?;
        if i + 1 < parts.len() {
            match &entry.kind {
                EntryKind::Dir { tree: t } => tree = store.read_tree(catalog, t)?,
                _ => {
                    return Err(Error::NotFound(format!(
                        "{}: {} is not a directory",
                        Escaped(path),
                        Escaped(part)
                    )))
                }
            }
        }
        node = Node::Entry(entry);
    }
    Ok(node)
}

/// The entries `ls` shows: a directory's listing, or the one entry.
pub fn list_entries(
    store: &Store,
    catalog: &Catalog,
    snap: &SnapshotRow,
    path: &[u8],
) -> Result<Vec<Entry>> {
    match resolve(store, catalog, snap, path)? {
        Node::Root(t) => Ok(t.entries),
        Node::Entry(e) => match &e.kind {
            EntryKind::Dir { tree } => Ok(store.read_tree(catalog, tree)?.entries),
            _ => Ok(vec![e]),
        },
    }
}
