//! `diff` (what changed between two snapshots) and `log` (every snapshot in
//! which one path changed).
//!
//! Both lean on the canonical trees: equal tree ids mean equal directories,
//! so `diff` walks the two trees side by side and never opens a
//! subdirectory whose id is the same on both sides, and `log` stops
//! descending a path as soon as a directory on it has the id it had in the
//! previous snapshot (the path below is then unchanged too). Unchanged data
//! costs nothing to compare; only trees are read, never file content.
//!
//! A change is one of: added, removed, modified (content or symlink target,
//! and/or mode), type changed (file ↔ dir ↔ symlink). An mtime-only change
//! is not a change. A rename shows as a removal and an addition.

use std::collections::HashMap;

use crate::catalog::Catalog;
use crate::error::{Error, Missing, Result};
use crate::id::TreeId;
use crate::model::SnapshotRow;
use crate::select::{split_path, Selector};
use crate::store::Store;
use crate::timespec;
use crate::tree::{Entry, EntryKind, Tree};

/// File, directory or symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryType {
    File,
    Dir,
    Symlink,
}

impl EntryType {
    pub fn label(self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Dir => "dir",
            EntryType::Symlink => "symlink",
        }
    }
}

/// One side of a change: the entry as a snapshot holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryState {
    pub kind: EntryType,
    /// File bytes (symlink: target length; dir: 0).
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
    /// Symlink target.
    pub target: Option<Vec<u8>>,
}

impl EntryState {
    fn of(e: &Entry) -> EntryState {
        let (kind, target) = match &e.kind {
            EntryKind::File { .. } => (EntryType::File, None),
            EntryKind::Dir { .. } => (EntryType::Dir, None),
            EntryKind::Symlink { target } => (EntryType::Symlink, Some(target.clone())),
        };
        EntryState {
            kind,
            size: e.size,
            mode: e.mode,
            mtime_ns: e.mtime_ns,
            target,
        }
    }
}

/// What happened to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    Modified,
    TypeChanged,
}

impl ChangeKind {
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
            ChangeKind::TypeChanged => "type_changed",
        }
    }
}

/// One changed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Relative to the workspace root (`/`-separated, raw bytes).
    pub path: Vec<u8>,
    pub kind: ChangeKind,
    pub old: Option<EntryState>,
    pub new: Option<EntryState>,
    /// File content, symlink target or directory listing differs (for a
    /// directory of `diff` this is never reported on its own: its changed
    /// children are).
    pub content_changed: bool,
    pub mode_changed: bool,
}

impl Change {
    /// New size minus old size (absent sides count as 0).
    pub fn size_change(&self) -> i64 {
        let s = |e: &Option<EntryState>| e.as_ref().map_or(0, |e| e.size as i64);
        s(&self.new) - s(&self.old)
    }
}

/// What `diff` sums up: the changes by kind, and the bytes by which files
/// grew and shrank (a file that appears or replaces a directory or symlink
/// counts whole; directories and symlinks count 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffSummary {
    pub added: usize,
    pub removed: usize,
    pub modified: usize,
    pub type_changed: usize,
    pub bytes_grown: u64,
    pub bytes_shrunk: u64,
}

impl DiffSummary {
    pub fn of(changes: &[Change]) -> DiffSummary {
        let file_bytes = |e: &Option<EntryState>| {
            e.as_ref()
                .filter(|e| e.kind == EntryType::File)
                .map_or(0, |e| e.size)
        };
        let mut s = DiffSummary::default();
        for c in changes {
            match c.kind {
                ChangeKind::Added => s.added += 1,
                ChangeKind::Removed => s.removed += 1,
                ChangeKind::Modified => s.modified += 1,
                ChangeKind::TypeChanged => s.type_changed += 1,
            }
            s.bytes_grown += file_bytes(&c.new).saturating_sub(file_bytes(&c.old));
            s.bytes_shrunk += file_bytes(&c.old).saturating_sub(file_bytes(&c.new));
        }
        s
    }
}

/// `FROM`/`TO` of `diff`: a snapshot id prefix (hex digits only) or a time
/// (as `--at`: the newest snapshot at or before it).
pub fn parse_selector(s: &str) -> Result<Selector> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Ok(Selector::Id(t.to_string()));
    }
    timespec::parse(t).map(Selector::Time).map_err(|_| {
        Error::invalid(
            "snapshot",
            format!(
                "{s:?}: give a snapshot id (≥ 4 hex digits, see `wsnap list`) or a time \
                 ('YYYY-mm-dd HH:MM[:SS]', RFC 3339, YYYYmmdd_HHMMSS, 'latest')"
            ),
        )
    })
}

/// Trees read so far, by id (`log` revisits the same directories).
struct Trees<'a> {
    store: &'a Store,
    cat: &'a Catalog,
    cache: HashMap<TreeId, Tree>,
    reads: u64,
}

impl Trees<'_> {
    fn get(&mut self, id: &TreeId) -> Result<&Tree> {
        if !self.cache.contains_key(id) {
            let t = self.store.read_tree(self.cat, id)?;
            self.reads += 1;
            if self.cache.len() > 4096 {
                self.cache.clear();
            }
            self.cache.insert(*id, t);
        }
        Ok(&self.cache[id])
    }
}

/// Everything that differs between `from` and `to` (in tree order), and
/// how many trees were read to find it.
pub fn diff(
    store: &Store,
    cat: &Catalog,
    from: &SnapshotRow,
    to: &SnapshotRow,
) -> Result<(Vec<Change>, u64)> {
    let mut out = Vec::new();
    let mut trees = Trees {
        store,
        cat,
        cache: HashMap::new(),
        reads: 0,
    };
    diff_dirs(&mut trees, Some(&from.root), Some(&to.root), b"", &mut out)?;
    Ok((out, trees.reads))
}

/// Compare two directories (either may be absent: everything below the
/// other one is then added or removed).
fn diff_dirs(
    trees: &mut Trees<'_>,
    a: Option<&TreeId>,
    b: Option<&TreeId>,
    rel: &[u8],
    out: &mut Vec<Change>,
) -> Result<()> {
    if a == b {
        return Ok(()); // same id: same directory, nothing below differs
    }
    let ta = match a {
        Some(id) => trees.get(id)?.entries.clone(),
        None => Vec::new(),
    };
    let tb = match b {
        Some(id) => trees.get(id)?.entries.clone(),
        None => Vec::new(),
    };
    let (mut i, mut j) = (0, 0);
    while i < ta.len() || j < tb.len() {
        let ord = match (ta.get(i), tb.get(j)) {
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                diff_entries(trees, Some(&ta[i]), None, rel, out)?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                diff_entries(trees, None, Some(&tb[j]), rel, out)?;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                diff_entries(trees, Some(&ta[i]), Some(&tb[j]), rel, out)?;
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

fn subtree(e: Option<&Entry>) -> Option<&TreeId> {
    match e.map(|e| &e.kind) {
        Some(EntryKind::Dir { tree }) => Some(tree),
        _ => None,
    }
}

fn diff_entries(
    trees: &mut Trees<'_>,
    a: Option<&Entry>,
    b: Option<&Entry>,
    rel: &[u8],
    out: &mut Vec<Change>,
) -> Result<()> {
    let name = a.or(b).expect("one side").name.as_slice();
    let path = crate::tree::join_rel(rel, name);
    let change = compare(a, b);
    if let Some(c) = change {
        // A directory whose only change is inside it is shown by its children.
        let dir_inside_only = c.kind == ChangeKind::Modified
            && c.new.as_ref().is_some_and(|n| n.kind == EntryType::Dir)
            && !c.mode_changed;
        if !dir_inside_only {
            out.push(Change {
                path: path.clone(),
                ..c
            });
        }
    }
    let (sa, sb) = (subtree(a), subtree(b));
    if sa.is_some() || sb.is_some() {
        diff_dirs(trees, sa, sb, &path, out)?;
    }
    Ok(())
}

/// How `a` became `b` (`None`: no change). The path is left empty.
fn compare(a: Option<&Entry>, b: Option<&Entry>) -> Option<Change> {
    let state = |e: Option<&Entry>| e.map(EntryState::of);
    let (kind, content_changed, mode_changed) = match (a, b) {
        (None, None) => return None,
        (None, Some(_)) => (ChangeKind::Added, true, false),
        (Some(_), None) => (ChangeKind::Removed, true, false),
        (Some(x), Some(y)) => {
            let same_type = std::mem::discriminant(&x.kind) == std::mem::discriminant(&y.kind);
            if !same_type {
                (ChangeKind::TypeChanged, true, x.mode != y.mode)
            } else {
                let content = x.kind != y.kind;
                let mode = x.mode != y.mode;
                if !content && !mode {
                    return None;
                }
                (ChangeKind::Modified, content, mode)
            }
        }
    };
    Some(Change {
        path: Vec::new(),
        kind,
        old: state(a),
        new: state(b),
        content_changed,
        mode_changed,
    })
}

/// One snapshot in which the path changed.
#[derive(Clone, Debug)]
pub struct LogEvent {
    pub snapshot: SnapshotRow,
    /// `old` is the state in the previous snapshot, `new` in this one.
    pub change: Change,
}

/// Every snapshot of `snaps` (oldest first) in which `path` changed, and
/// the number of trees read. The first snapshot holding the path gives an
/// `added` event.
pub fn log(
    store: &Store,
    cat: &Catalog,
    snaps: &[SnapshotRow],
    path: &[u8],
) -> Result<(Vec<LogEvent>, u64)> {
    let parts = split_path(path)?;
    if parts.is_empty() {
        return Err(Error::invalid(
            "path",
            "give a path inside the workspace (e.g. src/analysis.py)",
        ));
    }
    let mut trees = Trees {
        store,
        cat,
        cache: HashMap::new(),
        reads: 0,
    };
    // The directory ids along the path in the previous snapshot (root
    // first, as far as they exist) and the entry it held.
    let mut prev_dirs: Vec<TreeId> = Vec::new();
    let mut prev: Option<Entry> = None;
    let mut events = Vec::new();
    for snap in snaps {
        let mut dirs = vec![snap.root];
        let mut unchanged = false;
        let mut entry: Option<Entry> = None;
        for (depth, part) in parts.iter().enumerate() {
            if prev_dirs.get(depth) == dirs.last() {
                unchanged = true; // same directory as before: same entry below it
                break;
            }
            let tree = trees.get(dirs.last().expect("root"))?;
            let Some(e) = tree.find(part) else { break };
            if depth + 1 == parts.len() {
                entry = Some(e.clone());
                break;
            }
            match &e.kind {
                EntryKind::Dir { tree } => dirs.push(*tree),
                _ => break, // a non-directory on the way: the path is absent
            }
        }
        if unchanged {
            continue;
        }
        if let Some(mut c) = compare(prev.as_ref(), entry.as_ref()) {
            c.path = path.to_vec();
            events.push(LogEvent {
                snapshot: snap.clone(),
                change: c,
            });
        }
        prev_dirs = dirs;
        prev = entry;
    }
    if events.is_empty() {
        return Err(Error::NotFound(Missing::History {
            workspace: snaps.first().map(|s| s.workspace.clone()),
            path: path.to_vec(),
        }));
    }
    Ok((events, trees.reads))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(kind: EntryType, size: u64) -> Option<EntryState> {
        Some(EntryState {
            kind,
            size,
            mode: 0o644,
            mtime_ns: 0,
            target: None,
        })
    }

    fn change(kind: ChangeKind, old: Option<EntryState>, new: Option<EntryState>) -> Change {
        Change {
            path: b"f".to_vec(),
            kind,
            old,
            new,
            content_changed: true,
            mode_changed: false,
        }
    }

    #[test]
    fn summary_counts_kinds_and_file_bytes_only() {
        use EntryType::{Dir, File, Symlink};
        let s = DiffSummary::of(&[
            change(ChangeKind::Added, None, state(File, 100)),
            change(ChangeKind::Added, None, state(Dir, 0)),
            change(ChangeKind::Removed, state(File, 30), None),
            change(ChangeKind::Modified, state(File, 50), state(File, 80)),
            change(ChangeKind::Modified, state(File, 50), state(File, 20)),
            change(ChangeKind::TypeChanged, state(Symlink, 9), state(File, 7)),
            change(ChangeKind::TypeChanged, state(File, 5), state(Dir, 0)),
        ]);
        assert_eq!(
            s,
            DiffSummary {
                added: 2,
                removed: 1,
                modified: 2,
                type_changed: 2,
                bytes_grown: 100 + 30 + 7,
                bytes_shrunk: 30 + 30 + 5,
            }
        );
    }
}
