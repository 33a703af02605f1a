//! The snapshot table: committing snapshots (with their skip lists, the
//! trees they add and the run that made them, in one transaction) and
//! choosing them (per workspace, by time, by how they were taken).

use rusqlite::{params, Connection, OptionalExtension};

use super::blobs::{complete_refs, index_trees, PendingTree, TreeRefs};
use super::runs::insert_run;
use super::schema::OLDEST_READABLE;
use super::workspaces::ensure_workspace;
use super::{i64_of, sql_err, Catalog, FORMAT_VERSION};
use crate::error::{Error, Format, Location, Missing, Object, Problem, Result};
use crate::id::{Id, SnapshotId, TreeId};
use crate::model::{RunRow, SnapshotRow, SnapshotStats};
use crate::workspace::WorkspaceName;

/// A snapshot's skipped entries: (path, reason).
pub type SkipList = Vec<(Vec<u8>, String)>;

/// A snapshot reduced to what `stats` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotRoot {
    pub(crate) workspace_row: i64,
    pub(crate) time_ns: i64,
    pub(crate) size_bytes: u64,
    /// `blobs` row of the root tree.
    pub(crate) root_row: i64,
}

impl Catalog {
    /// Commit one snapshot: index its new trees with their references, then
    /// insert the snapshot row and its skip list. One transaction; fails
    /// (and commits nothing) if any reference is not indexed.
    pub fn commit_snapshot(
        &mut self,
        trees: &[PendingTree],
        row: &SnapshotRow,
        skips: &[(Vec<u8>, String)],
        journal: &str,
    ) -> Result<()> {
        self.commit_snapshots(trees, &[], &[(row.clone(), skips.to_vec())], journal, None)
    }

    /// Group commit: index `trees` with their references, insert every
    /// snapshot of `snaps` with its skip list, and the `run` row if given,
    /// in one transaction (one fsync). Fails, committing nothing, if any
    /// reference or root is not indexed.
    pub fn commit_snapshots(
        &mut self,
        trees: &[PendingTree],
        known_trees: &[TreeRefs],
        snaps: &[(SnapshotRow, SkipList)],
        journal: &str,
        run: Option<&RunRow>,
    ) -> Result<()> {
        if self.version != FORMAT_VERSION {
            // Readable, but a writer upgrades it before anything is added.
            return Err(Error::UnsupportedFormat {
                what: Format::Catalog,
                found: self.version,
                supported: OLDEST_READABLE..=FORMAT_VERSION,
                location: Location::File(self.path.clone()),
            });
        }
        let path = self.path.clone();
        let e = sql_err(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        index_trees(&tx, trees, &path)?;
        complete_refs(&tx, known_trees, &path)?;
        for (row, skips) in snaps {
            let ws = ensure_workspace(&tx, &row.workspace).map_err(&e)?;
            let root: Option<i64> = tx
                .prepare_cached("SELECT id FROM blobs WHERE hash = ?1")
                .and_then(|mut q| q.query_row([&row.root.0 .0[..]], |r| r.get(0)).optional())
                .map_err(&e)?;
            let root = root.ok_or_else(|| {
                Error::corrupt(Problem::NotStored)
                    .within(Object::Tree(row.root))
                    .within(Object::Snapshot(row.id))
            })?;
            insert_snapshot(&tx, row, ws, root, journal).map_err(&e)?;
            let snap = tx.last_insert_rowid();
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO snapshot_skips (snapshot_id, path, reason) VALUES (?1, ?2, ?3)",
                )
                .map_err(&e)?;
            for (p, reason) in skips {
                ins.execute(params![snap, p, reason]).map_err(&e)?;
            }
        }
        if let Some(run) = run {
            insert_run(&tx, run).map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }

    /// Snapshots, oldest first; of one workspace or of all.
    pub fn snapshots(&self, workspace: Option<&WorkspaceName>) -> Result<Vec<SnapshotRow>> {
        match workspace {
            // Two statements, not one with `?1 IS NULL OR …`: SQLite cannot
            // use an index for that, and scanned every snapshot of the store
            // for each workspace (166 s at 2.9 M snapshots, per workspace).
            Some(w) => self.select_snapshots(
                "WHERE w.user = ?1 AND w.project = ?2 ORDER BY s.time_ns, s.id",
                params![w.user, w.project],
            ),
            None => self.select_snapshots("ORDER BY w.user, w.project, s.time_ns, s.id", params![]),
        }
    }

    pub(super) fn select_snapshots(
        &self,
        tail: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<SnapshotRow>> {
        let mut out = Vec::new();
        self.each_snapshot(
            &format!(
                "FROM snapshots s
                 JOIN workspaces w ON w.id = s.workspace_id
                 JOIN blobs b ON b.id = s.root_tree_id
                 {tail}"
            ),
            args,
            |row| {
                out.push(row);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The snapshots of `from_tail` (the query from its `FROM` on, naming
    /// the tables `s`, `w` and `b`), each handed to `f` as it is read.
    pub(super) fn each_snapshot(
        &self,
        from_tail: &str,
        args: &[&dyn rusqlite::ToSql],
        mut f: impl FnMut(SnapshotRow) -> Result<()>,
    ) -> Result<()> {
        let damaged = if self.version >= 2 { "s.damaged" } else { "0" };
        let sql = format!(
            "SELECT s.snapshot_hash, w.user, w.project, s.time_ns, s.started_ns, s.finished_ns,
                          b.hash, s.files, s.dirs, s.symlinks, s.size_bytes, s.bytes_added,
                          s.bytes_read, s.skipped, s.special, s.excluded, {damaged}
                   {from_tail}"
        );
        let e = sql_err(&self.path);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(&e)?;
        let mut rows = stmt.query(args).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let n = |i: usize| -> Result<u64> { Ok(r.get::<_, i64>(i).map_err(&e)?.max(0) as u64) };
            let blob = |i: usize| -> Result<Vec<u8>> { r.get::<_, Vec<u8>>(i).map_err(&e) };
            let int = |i: usize| -> Result<i64> { r.get::<_, i64>(i).map_err(&e) };
            f(SnapshotRow {
                id: SnapshotId(Id::from_slice(&blob(0)?)?),
                workspace: WorkspaceName {
                    user: blob(1)?,
                    project: blob(2)?,
                },
                time_ns: int(3)?,
                started_ns: int(4)?,
                finished_ns: int(5)?,
                root: TreeId(Id::from_slice(&blob(6)?)?),
                stats: SnapshotStats {
                    files: n(7)?,
                    dirs: n(8)?,
                    symlinks: n(9)?,
                    size_bytes: n(10)?,
                    bytes_added: n(11)?,
                    bytes_read: n(12)?,
                    skipped: n(13)?,
                    special: n(14)?,
                    excluded: n(15)?,
                },
                damaged: int(16)? != 0,
            })?;
        }
        Ok(())
    }

    /// The query of [`Catalog::select_snapshots`] with `tail` (its WHERE
    /// and ORDER BY).
    #[cfg(test)]
    pub(super) fn snapshot_query(&self, tail: &str) -> String {
        let damaged = if self.version >= 2 { "s.damaged" } else { "0" };
        format!(
            "SELECT s.snapshot_hash, w.user, w.project, s.time_ns, s.started_ns, s.finished_ns,
                          b.hash, s.files, s.dirs, s.symlinks, s.size_bytes, s.bytes_added,
                          s.bytes_read, s.skipped, s.special, s.excluded, {damaged}
                   FROM snapshots s
                   JOIN workspaces w ON w.id = s.workspace_id
                   JOIN blobs b ON b.id = s.root_tree_id
                   {tail}"
        )
    }

    /// The most recently taken snapshot of a workspace that is not marked
    /// damaged: the stat-cache parent. A damaged snapshot references data
    /// the store lacks, so nothing of it (chunk ids of unchanged files,
    /// unchanged subtrees) may be reused; the next snapshot reads its files
    /// again and stores what was lost while the live files still exist.
    pub fn last_taken(&self, workspace: &WorkspaceName) -> Result<Option<SnapshotRow>> {
        let undamaged = if self.version >= 2 {
            "AND s.damaged = 0"
        } else {
            ""
        };
        let mut one = self.select_snapshots(
            &format!(
                "WHERE w.user = ?1 AND w.project = ?2 {undamaged}
                 ORDER BY s.started_ns DESC, s.time_ns DESC, s.id DESC LIMIT 1"
            ),
            params![workspace.user, workspace.project],
        )?;
        Ok(one.pop())
    }

    /// Row ids and times of a workspace's snapshots, oldest first, from the
    /// `snapshots_by_time` index alone (no snapshot row is read): what
    /// retention needs.
    pub(crate) fn snapshot_times(&self, workspace: &WorkspaceName) -> Result<Vec<(i64, i64)>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.id, s.time_ns FROM snapshots s
                 JOIN workspaces w ON w.id = s.workspace_id
                 WHERE w.user = ?1 AND w.project = ?2
                 ORDER BY s.time_ns, s.id",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map(params![workspace.user, workspace.project], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
    }

    /// The snapshot with catalog row id `row`.
    pub(crate) fn snapshot_by_row(&self, row: i64) -> Result<SnapshotRow> {
        self.select_snapshots("WHERE s.id = ?1", params![row])?
            .pop()
            .ok_or(Error::NotFound(Missing::SnapshotRow(row)))
    }

    /// Skip list of a snapshot.
    pub fn skips(&self, id: &SnapshotId) -> Result<Vec<(Vec<u8>, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT k.path, k.reason FROM snapshot_skips k JOIN snapshots s ON s.id = k.snapshot_id
                 WHERE s.snapshot_hash = ?1",
            )
            .map_err(sql_err(&self.path))?;
        let rows = stmt
            .query_map([&id.0 .0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_err(&self.path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql_err(&self.path))
    }

    /// How many snapshots the catalog lists.
    pub fn snapshot_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get(0))
            .map_err(sql_err(&self.path))?;
        Ok(n.max(0) as u64)
    }

    /// Whether the catalog has the snapshot.
    pub fn has_snapshot(&self, id: &SnapshotId) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM snapshots WHERE snapshot_hash = ?1")
            .map_err(sql_err(&self.path))?;
        stmt.exists([&id.0 .0[..]]).map_err(sql_err(&self.path))
    }

    /// Workspaces with a snapshot whose walk started between `from_ns` and
    /// `to_ns` (those one run committed: runs hold the writer lock, so no
    /// other run's snapshot starts inside its window). Reads the snapshot
    /// table backwards from the newest row and stops at the first one
    /// started before `from_ns`.
    pub fn workspaces_started_between(
        &self,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<std::collections::BTreeSet<WorkspaceName>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.started_ns, w.user, w.project FROM snapshots s
                 JOIN workspaces w ON w.id = s.workspace_id ORDER BY s.id DESC",
            )
            .map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        let mut out = std::collections::BTreeSet::new();
        while let Some(r) = rows.next().map_err(&e)? {
            let started: i64 = r.get(0).map_err(&e)?;
            if started < from_ns {
                break;
            }
            if started <= to_ns {
                out.insert(WorkspaceName {
                    user: r.get(1).map_err(&e)?,
                    project: r.get(2).map_err(&e)?,
                });
            }
        }
        Ok(out)
    }

    /// Workspaces whose newest snapshots recorded skipped entries, with the
    /// time of the oldest snapshot in that unbroken streak (taken after the
    /// newest snapshot that skipped nothing): `snapshot --prune` holds their
    /// retention since then. Reads only snapshots with skips (usually
    /// none, from the `snapshots_skipping` index) and, per workspace that
    /// has some, its newest snapshots back to the last one without skips
    /// (the `(workspace_id, time_ns)` index).
    pub fn skipping_since(&self) -> Result<Vec<(WorkspaceName, i64)>> {
        let e = sql_err(&self.path);
        let mut skipping = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT workspace_id FROM snapshots WHERE skipped > 0 ORDER BY workspace_id",
            )
            .map_err(&e)?;
        let workspaces = skipping
            .query_map([], |r| r.get::<_, i64>(0))
            .map_err(&e)?
            .collect::<rusqlite::Result<Vec<i64>>>()
            .map_err(&e)?;
        // Per workspace: the newest snapshot without skips (walking back
        // over the streak only; `MAX()` with this filter would read them
        // all), then the oldest skipping one after it, if any.
        let mut last_clean = self
            .conn
            .prepare_cached(
                "SELECT time_ns FROM snapshots WHERE workspace_id = ?1 AND skipped = 0
                 ORDER BY time_ns DESC LIMIT 1",
            )
            .map_err(&e)?;
        let mut since = self
            .conn
            .prepare_cached(
                "SELECT MIN(s.time_ns), w.user, w.project FROM snapshots s
                 JOIN workspaces w ON w.id = s.workspace_id
                 WHERE s.workspace_id = ?1 AND s.skipped > 0 AND s.time_ns > ?2",
            )
            .map_err(&e)?;
        let mut out = Vec::new();
        for ws in workspaces {
            let clean: i64 = last_clean
                .query_row([ws], |r| r.get(0))
                .optional()
                .map_err(&e)?
                .unwrap_or(i64::MIN);
            let (first, user, project): (Option<i64>, Option<Vec<u8>>, Option<Vec<u8>>) = since
                .query_row(params![ws, clean], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(&e)?;
            if let (Some(first), Some(user), Some(project)) = (first, user, project) {
                out.push((WorkspaceName { user, project }, first));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Snapshots whose walk started at or after `started_ns` (those of the
    /// last run): workspace and skip list. Snapshot rows are numbered in
    /// commit order, so this reads the table backwards and stops at the
    /// first older row: the cost follows the size of the last run.
    #[allow(clippy::type_complexity)]
    pub fn snapshots_started_since(
        &self,
        started_ns: i64,
    ) -> Result<Vec<(WorkspaceName, Vec<(Vec<u8>, String)>)>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.id, s.started_ns, w.user, w.project FROM snapshots s
                 JOIN workspaces w ON w.id = s.workspace_id ORDER BY s.id DESC",
            )
            .map_err(&e)?;
        let mut skips = self
            .conn
            .prepare_cached("SELECT path, reason FROM snapshot_skips WHERE snapshot_id = ?1")
            .map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(&e)? {
            let started: i64 = r.get(1).map_err(&e)?;
            if started < started_ns {
                break;
            }
            let id: i64 = r.get(0).map_err(&e)?;
            let ws = WorkspaceName {
                user: r.get(2).map_err(&e)?,
                project: r.get(3).map_err(&e)?,
            };
            let list = skips
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(&e)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(&e)?;
            out.push((ws, list));
        }
        out.sort();
        Ok(out)
    }

    /// Call `f` with every snapshot's workspace row, time, logical size and
    /// root row, ordered by workspace then time (streamed).
    pub(crate) fn for_each_snapshot_root(
        &self,
        mut f: impl FnMut(SnapshotRoot) -> Result<()>,
    ) -> Result<()> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT workspace_id, time_ns, size_bytes, root_tree_id FROM snapshots
                 ORDER BY workspace_id, time_ns, id",
            )
            .map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            f(SnapshotRoot {
                workspace_row: r.get(0).map_err(&e)?,
                time_ns: r.get(1).map_err(&e)?,
                size_bytes: r.get::<_, i64>(2).map_err(&e)?.max(0) as u64,
                root_row: r.get(3).map_err(&e)?,
            })?;
        }
        Ok(())
    }
}

/// Insert a snapshot row (its workspace and root tree rows are known).
pub(super) fn insert_snapshot(
    conn: &Connection,
    row: &SnapshotRow,
    workspace_row: i64,
    root_row: i64,
    journal: &str,
) -> rusqlite::Result<()> {
    let s = row.stats;
    conn.prepare_cached(
        "INSERT INTO snapshots (snapshot_hash, workspace_id, time_ns, started_ns, finished_ns,
             root_tree_id, files, dirs, symlinks, size_bytes, bytes_added, bytes_read,
             skipped, special, excluded, journal, damaged)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        &row.id.0 .0[..],
        workspace_row,
        row.time_ns,
        row.started_ns,
        row.finished_ns,
        root_row,
        i64_of(s.files),
        i64_of(s.dirs),
        i64_of(s.symlinks),
        i64_of(s.size_bytes),
        i64_of(s.bytes_added),
        i64_of(s.bytes_read),
        i64_of(s.skipped),
        i64_of(s.special),
        i64_of(s.excluded),
        journal,
        row.damaged
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{add_chunks, blob, commit, new_catalog, snapshot_of, ws};
    use crate::error::{Error, ErrorKind, Object, Problem};

    #[test]
    fn snapshots_are_listed_per_workspace_oldest_first() {
        let (_dir, mut cat) = new_catalog();
        let (a, b) = (ws("alice", "thesis"), ws("bob", "notes"));
        let late = commit(&mut cat, &a, 30, 30, &[], &[]);
        let other = commit(&mut cat, &b, 20, 20, &[], &[]);
        let early = commit(&mut cat, &a, 10, 10, &[], &[]);

        assert_eq!(
            cat.snapshots(Some(&a)).unwrap(),
            [early.clone(), late.clone()]
        );
        assert_eq!(cat.snapshots(Some(&ws("carol", "x"))).unwrap(), []);
        // All: by workspace, then by time.
        assert_eq!(
            cat.snapshots(None).unwrap(),
            [early.clone(), late.clone(), other]
        );
        assert_eq!(cat.snapshot_count().unwrap(), 3);
        assert!(cat.has_snapshot(&late.id).unwrap());
        assert!(!cat
            .has_snapshot(&crate::model::snapshot_id(&a, 1, 1, &late.root))
            .unwrap());

        let times = cat.snapshot_times(&a).unwrap();
        assert_eq!(times.iter().map(|t| t.1).collect::<Vec<_>>(), [10, 30]);
        assert_eq!(cat.snapshot_by_row(times[0].0).unwrap(), early);
        assert_eq!(
            cat.snapshot_by_row(-1).unwrap_err().kind(),
            ErrorKind::Input
        );
    }

    #[test]
    fn the_parent_is_the_last_taken_undamaged_snapshot() {
        let (_dir, mut cat) = new_catalog();
        let a = ws("alice", "thesis");
        assert_eq!(cat.last_taken(&a).unwrap(), None);
        // Taken last (started latest) although recorded with an older time.
        let backdated = commit(&mut cat, &a, 5, 50, &[], &[]);
        let newer_time = commit(&mut cat, &a, 40, 40, &[], &[]);
        assert_eq!(cat.last_taken(&a).unwrap(), Some(backdated.clone()));
        assert_eq!(
            cat.snapshots(Some(&a)).unwrap(),
            [backdated.clone(), newer_time.clone()]
        );

        cat.record_damage(&[], &[backdated.id]).unwrap();
        assert_eq!(cat.last_taken(&a).unwrap(), Some(newer_time));
    }

    #[test]
    fn a_commit_stores_the_skip_list_and_finds_the_last_runs_snapshots() {
        let (_dir, mut cat) = new_catalog();
        let (a, b) = (ws("alice", "thesis"), ws("bob", "notes"));
        let skip = (b"data/locked.csv".to_vec(), "permission denied".to_string());
        commit(&mut cat, &a, 10, 10, &[], &[]);
        let skipping = commit(&mut cat, &a, 20, 20, &[], std::slice::from_ref(&skip));
        commit(&mut cat, &b, 21, 21, &[], &[]);

        assert_eq!(cat.skips(&skipping.id).unwrap(), vec![skip.clone()]);
        assert_eq!(
            cat.snapshots_started_since(20).unwrap(),
            [(a.clone(), vec![skip.clone()]), (b.clone(), vec![])]
        );
        assert_eq!(
            cat.workspaces_started_between(20, 20)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![a.clone()]
        );
        assert_eq!(cat.workspaces_started_between(11, 30).unwrap().len(), 2);
        // Skipping since its first snapshot after the last one without skips.
        assert_eq!(cat.skipping_since().unwrap(), [(a.clone(), 20)]);
        commit(&mut cat, &a, 30, 30, &[], &[]);
        assert_eq!(cat.skipping_since().unwrap(), []);
        // A streak after a clean snapshot: since its first; earlier skips
        // (before the clean one) do not count. A workspace that never had
        // a clean snapshot: since its first.
        let c = ws("carol", "data");
        for (t, s) in [(10, true), (20, false), (30, true), (40, true)] {
            let skips = if s { vec![skip.clone()] } else { vec![] };
            commit(&mut cat, &b, t, t, &[], &skips);
            commit(&mut cat, &c, t + 1, t + 1, &[], std::slice::from_ref(&skip));
        }
        assert_eq!(cat.skipping_since().unwrap(), [(b.clone(), 30), (c, 11)]);
    }

    #[test]
    fn a_commit_with_an_unindexed_reference_commits_nothing() {
        let (_dir, mut cat) = new_catalog();
        let a = ws("alice", "thesis");
        let stored = blob("stored");
        add_chunks(&mut cat, &[stored]);
        let row = commit(&mut cat, &a, 10, 10, &[stored], &[]);
        assert!(cat.has_blob(&row.root.0).unwrap());

        let missing = blob("never stored");
        let (tree, dangling) = snapshot_of(&mut cat, &a, 20, 20, &[stored, missing]);
        let err = cat
            .commit_snapshot(std::slice::from_ref(&tree), &dangling, &[], "test.wsj")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store, "{err}");
        // What the writer takes for a refusal (`snapshot/writer.rs`).
        match &err {
            Error::Corrupt {
                at,
                problem: Problem::NotStored,
            } => assert_eq!(at, &[Object::Blob(tree.id), Object::Blob(missing)]),
            e => panic!("{e:?}"),
        }
        assert!(!cat.has_blob(&tree.id).unwrap(), "the tree was not indexed");
        assert_eq!(cat.snapshots(Some(&a)).unwrap(), [row]);
        assert_eq!(cat.snapshot_count().unwrap(), 1);
    }
}
