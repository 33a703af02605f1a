//! Reading snapshots without restoring them: one file's bytes (`cat`), the
//! paths matching a glob in one snapshot or in all of a workspace's
//! (`find`), and a whole subtree (`ls -R`).
//!
//! Same read path as restore: the readers' lock, then one pinned catalog
//! view ([`Reading`]), so a prune committing meanwhile changes nothing read
//! and gc deletes no pack the view names. Chunks are verified against their
//! ids (`reader.rs`); `cat` streams them in order with bounded memory.
//! Trees are walked on the walk pool's large stacks (any depth).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use globset::{GlobBuilder, GlobMatcher};

use crate::catalog::PinnedCatalog;
use crate::error::{Error, Missing, Result};
use crate::escape::Escaped;
use crate::id::TreeId;
use crate::lock::ReaderLock;
use crate::model::SnapshotRow;
use crate::reader::{self, Blobs};
use crate::select::{self, Node, Selector};
use crate::store::Store;
use crate::tree::{join_rel, Entry, EntryKind};
use crate::walk;
use crate::workspace::WorkspaceName;

/// The readers' lock and one pinned catalog view, held while reading.
pub struct Reading<'a> {
    store: &'a Store,
    _readers: ReaderLock,
    pinned: PinnedCatalog,
}

impl<'a> Reading<'a> {
    /// Take the readers' lock, then pin the catalog's current state.
    pub fn new(store: &'a Store) -> Result<Reading<'a>> {
        let readers = store.read_guard()?;
        let pinned = PinnedCatalog::open(&store.catalog_path())?;
        Ok(Reading {
            store,
            _readers: readers,
            pinned,
        })
    }

    /// Verified blobs through this view (the mount's and `serve`'s
    /// readers).
    pub fn blobs(&self) -> Blobs<'_> {
        Blobs::new(self.store, &self.pinned)
    }

    /// Pick one snapshot of `ws` in this view.
    pub fn select(&self, ws: &WorkspaceName, sel: &Selector) -> Result<SnapshotRow> {
        self.pinned.with(|cat| select::select(cat, ws, sel))
    }

    /// Run `f` on the pinned catalog (the SQL of `catalog/`).
    pub fn with_catalog<T>(
        &self,
        f: impl FnOnce(&crate::catalog::Catalog) -> Result<T>,
    ) -> Result<T> {
        self.pinned.with(f)
    }

    /// The store read.
    pub fn store(&self) -> &Store {
        self.store
    }

    /// Every snapshot of `ws` in this view, oldest first.
    pub fn snapshots(&self, ws: &WorkspaceName) -> Result<Vec<SnapshotRow>> {
        let all = self.pinned.with(|cat| cat.snapshots(Some(ws)))?;
        if all.is_empty() {
            return Err(Error::NotFound(Missing::Snapshots(ws.clone())));
        }
        Ok(all)
    }

    /// What `path` names in `snap` (validated as the CLI's paths are).
    pub fn resolve(&self, snap: &SnapshotRow, path: &[u8]) -> Result<Node> {
        self.pinned
            .with(|cat| select::resolve(self.store, cat, snap, path))
    }

    /// Write the file at `path` of `snap` to `out`, chunk by chunk, each
    /// verified; returns the bytes written. A directory or symlink is bad
    /// input; a damaged chunk ends it with the chunk's error (what was
    /// written before stays written). A failed write of `out` is
    /// `Error::TargetWrite` on `out_name`.
    pub fn cat(
        &self,
        snap: &SnapshotRow,
        path: &[u8],
        out: &mut impl Write,
        out_name: &Path,
    ) -> Result<u64> {
        let not_a_file = |what: String| {
            Error::invalid(
                "path",
                format!(
                    "{} in snapshot {} of {} {what}",
                    Escaped(path),
                    snap.id.0.short(),
                    snap.workspace
                ),
            )
        };
        let entry = match self.resolve(snap, path)? {
            Node::Root(_) => return Err(not_a_file("is the snapshot's root directory".into())),
            Node::Entry(e) => e,
        };
        let content = match &entry.kind {
            EntryKind::File { content } => content,
            EntryKind::Dir { .. } => return Err(not_a_file("is a directory, not a file".into())),
            EntryKind::Symlink { target } => {
                return Err(not_a_file(format!(
                    "is a symlink to {}, not a file",
                    Escaped(target)
                )))
            }
        };
        let mut written = 0u64;
        let fed = reader::for_each_chunk(&self.blobs(), content, |data| {
            out.write_all(data).map_err(|source| Error::TargetWrite {
                path: out_name.to_path_buf(),
                source,
            })?;
            written += data.len() as u64;
            Ok(())
        });
        match fed {
            Ok(r) => r?,
            Err(damaged) => {
                tracing::error!(
                    "{} in snapshot {}: {damaged}",
                    Escaped(path),
                    snap.id.0.short()
                );
                return Err(damaged.into_error());
            }
        }
        out.flush().map_err(|source| Error::TargetWrite {
            path: out_name.to_path_buf(),
            source,
        })?;
        Ok(written)
    }

    /// The entries `ls` shows: a directory's listing (each under its
    /// name), or the one entry.
    pub fn list(&self, snap: &SnapshotRow, path: &[u8]) -> Result<Listing> {
        let entries = self
            .pinned
            .with(|cat| select::list_entries(self.store, cat, snap, path))?;
        Ok(Listing {
            entries: entries.into_iter().map(|e| (e.name.clone(), e)).collect(),
            damaged: Vec::new(),
        })
    }

    /// Every entry below `path` of `snap` (or the entry itself if it is
    /// not a directory), depth first in name order, with its path relative
    /// to `path`. Directories that cannot be read are listed in `damaged`.
    pub fn list_recursive(&self, snap: &SnapshotRow, path: &[u8]) -> Result<Listing> {
        let mut out = Listing::default();
        let entries = match self.resolve(snap, path)? {
            Node::Root(t) => t.entries,
            Node::Entry(e) => match &e.kind {
                EntryKind::Dir { tree } => {
                    self.blobs()
                        .tree(tree)
                        .map_err(reader::Unreadable::into_error)?
                        .entries
                }
                _ => {
                    out.entries.push((e.name.clone(), e));
                    return Ok(out);
                }
            },
        };
        walk::pool().install(|| self.walk_entries(&entries, b"", &mut out));
        Ok(out)
    }

    fn walk_entries(&self, entries: &[Entry], rel: &[u8], out: &mut Listing) {
        for e in entries {
            let p = join_rel(rel, &e.name);
            out.entries.push((p.clone(), e.clone()));
            if let EntryKind::Dir { tree } = &e.kind {
                match self.blobs().tree(tree) {
                    Ok(t) => self.walk_entries(&t.entries, &p, out),
                    Err(err) => out.damaged.push((p, err.to_string())),
                }
            }
        }
    }

    /// The paths of `snaps` matching `pattern` (every path without one).
    /// A directory whose tree id was walked already at the same path (in
    /// an earlier snapshot) is not read again: its matches are reused.
    pub fn find(&self, snaps: &[SnapshotRow], pattern: Option<&Pattern>) -> Result<FindReport> {
        let mut report = FindReport::default();
        let mut memo: HashMap<(Vec<u8>, TreeId), Arc<Listing>> = HashMap::new();
        for snap in snaps {
            let found = walk::pool().install(|| self.find_in(&snap.root, b"", pattern, &mut memo));
            for (p, why) in &found.damaged {
                report.damaged.push((snap.clone(), p.clone(), why.clone()));
            }
            if !found.entries.is_empty() {
                report.found.push((snap.clone(), found));
            }
        }
        Ok(report)
    }

    fn find_in(
        &self,
        tree: &TreeId,
        rel: &[u8],
        pattern: Option<&Pattern>,
        memo: &mut HashMap<(Vec<u8>, TreeId), Arc<Listing>>,
    ) -> Arc<Listing> {
        if let Some(hit) = memo.get(&(rel.to_vec(), *tree)) {
            return hit.clone();
        }
        let mut out = Listing::default();
        match self.blobs().tree(tree) {
            Err(e) => out.damaged.push((rel.to_vec(), e.to_string())),
            Ok(t) => {
                for e in &t.entries {
                    let p = join_rel(rel, &e.name);
                    if pattern.is_none_or(|m| m.matches(&p, &e.name)) {
                        out.entries.push((p.clone(), e.clone()));
                    }
                    if let EntryKind::Dir { tree } = &e.kind {
                        let sub = self.find_in(tree, &p, pattern, memo);
                        out.entries.extend(sub.entries.iter().cloned());
                        out.damaged.extend(sub.damaged.iter().cloned());
                    }
                }
            }
        }
        let out = Arc::new(out);
        memo.insert((rel.to_vec(), *tree), out.clone());
        out
    }
}

/// Entries with their paths, and the directories that could not be read.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub entries: Vec<(Vec<u8>, Entry)>,
    pub damaged: Vec<(Vec<u8>, String)>,
}

/// What `find` found: per snapshot with at least one match, its matches;
/// and the directories it could not read.
#[derive(Debug, Default)]
pub struct FindReport {
    pub found: Vec<(SnapshotRow, Arc<Listing>)>,
    pub damaged: Vec<(SnapshotRow, Vec<u8>, String)>,
}

/// A `find` pattern: a glob (`*`, `?`, `[…]`, `{a,b}`, `**`). Without a
/// `/` it matches an entry's name at any depth (as `find -name`); with one
/// it matches the whole path from the snapshot's root, where `*` does not
/// cross a `/` and `**` does.
#[derive(Clone, Debug)]
pub struct Pattern {
    glob: GlobMatcher,
    whole_path: bool,
}

impl Pattern {
    pub fn new(pattern: &str) -> Result<Pattern> {
        let whole_path = pattern.contains('/');
        let text = pattern.trim_start_matches('/');
        let glob = GlobBuilder::new(text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| Error::invalid("pattern", format!("{pattern:?}: {}", e.kind())))?;
        Ok(Pattern {
            glob: glob.compile_matcher(),
            whole_path,
        })
    }

    /// Does the entry `name` at `path` (from the snapshot's root) match?
    pub fn matches(&self, path: &[u8], name: &[u8]) -> bool {
        let subject = if self.whole_path { path } else { name };
        self.glob.is_match(Path::new(OsStr::from_bytes(subject)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_or_whole_paths() {
        let p = Pattern::new("*.csv").unwrap();
        assert!(p.matches(b"data/a.csv", b"a.csv"));
        assert!(p.matches(b"a.csv", b"a.csv"));
        assert!(!p.matches(b"a.csv/x", b"x"));
        let p = Pattern::new("data/*.csv").unwrap();
        assert!(p.matches(b"data/a.csv", b"a.csv"));
        assert!(
            !p.matches(b"data/sub/a.csv", b"a.csv"),
            "* stays in one directory"
        );
        assert!(
            !p.matches(b"x/data/a.csv", b"a.csv"),
            "anchored at the root"
        );
        let p = Pattern::new("/**/secret*").unwrap();
        assert!(p.matches(b"a/b/secret.key", b"secret.key"));
        assert!(p.matches(b"secret", b"secret"));
        let raw = Pattern::new("caf*").unwrap();
        assert!(raw.matches(b"caf\xe9", b"caf\xe9"), "non-UTF-8 names match");
        for bad in ["a[", "{a,b", "a[z-a]"] {
            let e = Pattern::new(bad).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Input, "{bad}: {e}");
        }
    }
}
