//! Naming a snapshot and a path inside it: `--at TIME` / `--snapshot ID`
//! (an id or a unique prefix), and `a/b/c` resolved through the trees.
//! Used by restore, ls, cat, diff, log and forget; reads only the catalog
//! and trees. Also which snapshots `list` shows ([`Scope`], [`list`]).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

pub use crate::catalog::SnapshotFilter;

use crate::catalog::Catalog;
use crate::error::{Error, Missing, Result};
use crate::escape::Escaped;
use crate::model::SnapshotRow;
use crate::store::Store;
use crate::timespec::TimeSpec;
use crate::tree::{Entry, EntryKind, Tree};
use crate::workspace::{check_name, WorkspaceName};

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
    choose(&all, ws, sel).cloned()
}

/// Pick one of `all`, the snapshots of `ws` ordered by (time, id), as the
/// catalog returns them.
pub fn choose<'a>(
    all: &'a [SnapshotRow],
    ws: &WorkspaceName,
    sel: &Selector,
) -> Result<&'a SnapshotRow> {
    if all.is_empty() {
        return Err(Error::NotFound(Missing::Snapshots(ws.clone())));
    }
    match sel {
        Selector::Time(TimeSpec::Latest) => Ok(all.last().expect("non-empty")),
        Selector::Time(TimeSpec::At(t)) => {
            // `all` is ordered by (time, id): the last one at or before t.
            match all.iter().rev().find(|s| s.time_ns <= *t) {
                Some(s) => Ok(s),
                None => Err(Error::NotFound(Missing::SnapshotAt {
                    workspace: ws.clone(),
                    at_ns: *t,
                    oldest: (all[0].time_ns, all[0].id),
                })),
            }
        }
        Selector::Id(prefix) => by_id_prefix(all, prefix, Some(ws)),
    }
}

/// The one snapshot among `all` (the snapshots of `workspace`, if given)
/// whose id starts with `prefix` (at least 4 hex digits).
pub fn by_id_prefix<'a>(
    all: &'a [SnapshotRow],
    prefix: &str,
    workspace: Option<&WorkspaceName>,
) -> Result<&'a SnapshotRow> {
    let p = checked_prefix(prefix)?;
    let hits: Vec<&SnapshotRow> = all
        .iter()
        .filter(|s| s.id.0.to_hex().starts_with(&p))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        _ => Err(not_one(prefix, hits.len() as u64, workspace)),
    }
}

/// The one snapshot of the whole store whose id starts with `prefix` (at
/// least 4 hex digits): a range of the catalog's id index, so the cost
/// does not grow with the store. Same answers and messages as
/// [`by_id_prefix`] over every snapshot.
pub fn by_id_prefix_in(catalog: &Catalog, prefix: &str) -> Result<SnapshotRow> {
    let p = checked_prefix(prefix)?;
    let (lo, hi) = id_range(&p);
    let (mut rows, n) = catalog.snapshots_in_id_range(&lo, hi.as_deref(), 2)?;
    match (rows.pop(), n) {
        (Some(one), 1) => Ok(one),
        _ => Err(not_one(prefix, n, None)),
    }
}

/// `prefix` lower-cased, once it is at least 4 hex digits.
fn checked_prefix(prefix: &str) -> Result<String> {
    let p = prefix.to_ascii_lowercase();
    if p.len() < 4 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid(
            "snapshot id",
            format!("{prefix:?}: give at least 4 hex digits, as `wsnap list` shows"),
        ));
    }
    Ok(p)
}

/// The error for a prefix that matches `n` snapshots, `n` ≠ 1.
fn not_one(prefix: &str, n: u64, workspace: Option<&WorkspaceName>) -> Error {
    match n {
        0 => Error::NotFound(Missing::SnapshotId {
            prefix: prefix.to_string(),
            workspace: workspace.cloned(),
        }),
        _ => Error::invalid(
            "snapshot id",
            format!("{prefix} matches {n} snapshots; give more digits"),
        ),
    }
}

/// The workspaces `list` covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every workspace of the store.
    All,
    /// Every project of one user.
    User(Vec<u8>),
    /// One workspace.
    Workspace(WorkspaceName),
}

impl Scope {
    /// `USER` or `USER/PROJECT` as given on the command line.
    pub fn parse(s: &OsStr) -> Result<Scope> {
        let b = s.as_bytes();
        let user = b.strip_suffix(b"/").unwrap_or(b);
        if !user.contains(&b'/') {
            check_name(user).map_err(|why| {
                Error::invalid(
                    "user",
                    format!("{:?}: {why} (give USER or USER/PROJECT)", Escaped(b)),
                )
            })?;
            return Ok(Scope::User(user.to_vec()));
        }
        Ok(Scope::Workspace(WorkspaceName::parse(s)?))
    }
}

/// The snapshots `list` shows: those of `scope` that `filter` lets
/// through, by user, project, then time, each handed to `f` as it is read
/// (memory stays one workspace's rows, one row for the whole store
/// unfiltered, 2.88 M snapshots at 10,000 × 288). Each workspace is one
/// index range ([`Catalog::snapshots_filtered`]); without a filter, the
/// whole store is one query in index order ([`Catalog::for_each_snapshot`]).
/// A user or workspace without any snapshot is an error, found before `f`
/// sees a row ([`Missing::User`], [`Missing::Snapshots`]); one whose
/// snapshots all lie outside the filter gives no row.
pub fn for_each_listed(
    catalog: &Catalog,
    scope: &Scope,
    filter: &SnapshotFilter,
    mut f: impl FnMut(SnapshotRow) -> Result<()>,
) -> Result<()> {
    let unfiltered = *filter == SnapshotFilter::default();
    let workspaces = match scope {
        Scope::All if unfiltered => return catalog.for_each_snapshot(f),
        Scope::All => catalog.workspaces()?,
        Scope::User(user) => {
            let w = catalog.user_workspaces(user)?;
            if w.is_empty() {
                return Err(Error::NotFound(Missing::User(user.clone())));
            }
            w
        }
        Scope::Workspace(ws) => {
            let rows = catalog.snapshots_filtered(ws, filter)?;
            if rows.is_empty() && !catalog.user_workspaces(&ws.user)?.contains(ws) {
                return Err(Error::NotFound(Missing::Snapshots(ws.clone())));
            }
            return rows.into_iter().try_for_each(f);
        }
    };
    for ws in &workspaces {
        catalog
            .snapshots_filtered(ws, filter)?
            .into_iter()
            .try_for_each(&mut f)?;
    }
    Ok(())
}

/// [`for_each_listed`]'s rows in one list.
pub fn list(catalog: &Catalog, scope: &Scope, filter: &SnapshotFilter) -> Result<Vec<SnapshotRow>> {
    let mut out = Vec::new();
    for_each_listed(catalog, scope, filter, |s| {
        out.push(s);
        Ok(())
    })?;
    Ok(out)
}

/// The ids starting with the hex digits `p` (lower case) are the byte
/// strings from `lo` (`p` padded with `0` to whole bytes) up to, not
/// including, `hi` (`p` plus one, padded alike; `None` when `p` is all
/// `f`: no upper bound).
fn id_range(p: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let bytes = |digits: &[u8]| -> Vec<u8> {
        let mut d = digits.to_vec();
        if d.len() % 2 == 1 {
            d.push(b'0');
        }
        d.chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).expect("hex"), 16).expect("hex"))
            .collect()
    };
    let mut next = p.as_bytes().to_vec();
    let hi = loop {
        match next.pop() {
            None => break None, // all `f`
            Some(b'f') => continue,
            Some(c) => {
                let d =
                    u8::from_str_radix(std::str::from_utf8(&[c]).expect("hex"), 16).expect("hex");
                next.push(b"0123456789abcdef"[d as usize + 1]);
                next.resize(p.len(), b'0');
                break Some(bytes(&next));
            }
        }
    };
    (bytes(p.as_bytes()), hi)
}

/// Split a user-given path inside a snapshot into validated components.
pub fn split_path(path: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        if c.is_empty() || c == b"." {
            continue;
        }
        check_name(c).map_err(|_| {
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

/// Find `path` in snapshot `snap`. Reads one piece per directory on the
/// way, not whole listings, when directories are large (indexed).
pub fn resolve(store: &Store, catalog: &Catalog, snap: &SnapshotRow, path: &[u8]) -> Result<Node> {
    let parts = split_path(path)?;
    if parts.is_empty() {
        return Ok(Node::Root(store.read_tree(catalog, &snap.root)?));
    }
    let mut dir = snap.root;
    let mut found = None;
    for (i, part) in parts.iter().enumerate() {
        let entry = store.find_entry(catalog, &dir, part)?.ok_or_else(|| {
            Error::NotFound(Missing::Path {
                workspace: snap.workspace.clone(),
                snapshot: snap.id,
                path: path.to_vec(),
            })
        })?;
        if i + 1 < parts.len() {
            match &entry.kind {
                EntryKind::Dir { tree: t } => dir = *t,
                _ => {
                    return Err(Error::NotFound(Missing::NotADirectory {
                        path: path.to_vec(),
                        component: part.to_vec(),
                    }))
                }
            }
        }
        found = Some(entry);
    }
    Ok(Node::Entry(found.expect("a path of at least one part")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::id::{Id, SnapshotId, TreeId};
    use crate::model::SnapshotStats;

    fn row(hex_id: &str, time_ns: i64) -> SnapshotRow {
        let mut id = [0u8; 32];
        for (i, b) in id.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex_id[2 * i..2 * i + 2], 16).unwrap();
        }
        SnapshotRow {
            id: SnapshotId(Id(id)),
            workspace: WorkspaceName::new(b"alice", b"thesis").unwrap(),
            time_ns,
            started_ns: time_ns,
            finished_ns: time_ns,
            root: TreeId(Id([0; 32])),
            stats: SnapshotStats::default(),
            damaged: false,
        }
    }

    fn hex(prefix: &str) -> String {
        format!("{prefix:0<64}")
    }

    fn history() -> Vec<SnapshotRow> {
        vec![
            row(&hex("aaaa01"), 100),
            row(&hex("aaaa02"), 200),
            row(&hex("bbbb01"), 300),
        ]
    }

    fn ws() -> WorkspaceName {
        WorkspaceName::new(b"alice", b"thesis").unwrap()
    }

    #[test]
    fn time_picks_the_newest_at_or_before_it() {
        let all = history();
        let at = |t| choose(&all, &ws(), &Selector::Time(TimeSpec::At(t))).map(|s| s.time_ns);
        assert_eq!(at(100).unwrap(), 100);
        assert_eq!(at(299).unwrap(), 200);
        assert_eq!(at(10_000).unwrap(), 300);
        let e = at(99).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Input);
        assert!(e.to_string().contains("the oldest is"), "{e}");
        let latest = choose(&all, &ws(), &Selector::Time(TimeSpec::Latest)).unwrap();
        assert_eq!(latest.time_ns, 300);
    }

    #[test]
    fn an_id_prefix_must_be_unique_hex_and_four_digits_long() {
        let all = history();
        let by = |p: &str| by_id_prefix(&all, p, None).map(|s| s.time_ns);
        assert_eq!(by("bbbb").unwrap(), 300);
        assert_eq!(by("AAAA02").unwrap(), 200, "case does not matter");
        let e = by("aaaa").unwrap_err();
        assert!(e.to_string().contains("matches 2 snapshots"), "{e}");
        assert!(by("abc").unwrap_err().to_string().contains("at least 4"));
        assert!(by("xyzw").unwrap_err().to_string().contains("at least 4"));
        assert_eq!(by("cccc").unwrap_err().kind(), ErrorKind::Input);
    }

    #[test]
    fn an_id_prefix_is_a_range_of_ids() {
        let r = |p: &str| id_range(p);
        assert_eq!(r("abcd"), (vec![0xab, 0xcd], Some(vec![0xab, 0xce])));
        assert_eq!(r("abc"), (vec![0xab, 0xc0], Some(vec![0xab, 0xd0])));
        assert_eq!(r("ab9f"), (vec![0xab, 0x9f], Some(vec![0xab, 0xa0])));
        assert_eq!(r("0fff"), (vec![0x0f, 0xff], Some(vec![0x10, 0x00])));
        assert_eq!(r("ffff"), (vec![0xff, 0xff], None));
        assert_eq!(r("fffff"), (vec![0xff, 0xff, 0xf0], None));
        // Every id starting with the prefix is in the range, its
        // neighbours are not.
        for (p, inside, outside) in [
            ("abc", "abc000", "abbfff"),
            ("abc", "abcfff", "abd000"),
            ("0fff", "0fff00", "100000"),
            ("fffff", "fffff0", "ffffef"),
        ] {
            let (lo, hi) = r(p);
            let id = |h: &str| {
                (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect::<Vec<u8>>()
            };
            let within = |v: &[u8]| v >= &lo[..] && hi.as_deref().is_none_or(|h| v < h);
            assert!(within(&id(inside)), "{p}: {inside}");
            assert!(!within(&id(outside)), "{p}: {outside}");
        }
    }

    #[test]
    fn no_snapshot_at_all_is_not_found() {
        let e = choose(&[], &ws(), &Selector::Time(TimeSpec::Latest)).unwrap_err();
        assert!(e.to_string().contains("no snapshots of workspace"), "{e}");
    }

    #[test]
    fn paths_split_into_validated_components() {
        assert_eq!(split_path(b"a/b/c").unwrap(), [&b"a"[..], b"b", b"c"]);
        assert_eq!(split_path(b"/a//./b/").unwrap(), [&b"a"[..], b"b"]);
        assert!(split_path(b"").unwrap().is_empty());
        assert!(split_path(b"a/../b").is_err());
        assert!(split_path(b"a\0b").is_err());
    }
}
