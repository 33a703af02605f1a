//! Read-only queries for the monitoring and history commands (`status`,
//! `stats`): the last run, each workspace's newest snapshot, the blob table
//! and the reference graph. Every query here is answered by an index or by
//! one sequential scan; none writes.

use std::collections::HashMap;

use rusqlite::OptionalExtension;

use super::{sql_err, Catalog, RunRow};
use crate::error::{Error, Result};
use crate::pack::BlobKind;
use crate::workspace::WorkspaceName;

/// One workspace as the catalog knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceSummary {
    pub workspace: WorkspaceName,
    pub snapshots: u64,
    /// Recorded time of its newest snapshot.
    pub newest_time_ns: i64,
}

/// An indexed blob's size, by catalog row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobSize {
    pub row: i64,
    pub kind: BlobKind,
    pub stored_len: u32,
    pub raw_len: u32,
}

/// A snapshot reduced to what `stats` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotRoot {
    pub workspace_row: i64,
    pub time_ns: i64,
    pub size_bytes: u64,
    /// `blobs` row of the root tree.
    pub root_row: i64,
}

impl Catalog {
    /// The most recently finished `snapshot` run, if any.
    pub fn last_run(&self) -> Result<Option<RunRow>> {
        self.select_run("ORDER BY finished_ns DESC, id DESC LIMIT 1", [])
    }

    /// The newest run that covered the whole root `key` names (see
    /// [`super::full_run_key`]); `None` when no such run is recorded.
    pub fn last_full_run(&self, key: &str) -> Result<Option<RunRow>> {
        let e = sql_err(&self.path);
        let id: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(&e)?;
        let Some(id) = id else {
            return Ok(None);
        };
        let id: i64 = id
            .parse()
            .map_err(|_| Error::corrupt(format!("catalog meta {key} is not a number")))?;
        let run = self.select_run("WHERE id = ?1", [id])?;
        match run {
            Some(r) => Ok(Some(RunRow {
                covered_root: Some(key.to_string()),
                ..r
            })),
            None => Err(Error::corrupt(format!(
                "catalog meta {key} names run {id}, which is not in the runs table"
            ))),
        }
    }

    fn select_run(&self, filter: &str, p: impl rusqlite::Params) -> Result<Option<RunRow>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT started_ns, finished_ns, workspaces_ok, workspaces_failed, entries_skipped, error
                     FROM runs {filter}"
                ),
                p,
                |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                    Ok(RunRow {
                        started_ns: r.get(0)?,
                        finished_ns: r.get(1)?,
                        workspaces_ok: n(2)?,
                        workspaces_failed: n(3)?,
                        entries_skipped: n(4)?,
                        error: r.get(5)?,
                        covered_root: None,
                    })
                },
            )
            .optional()
            .map_err(sql_err(&self.path))
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

    /// Every workspace with at least one snapshot: count and newest time.
    /// One scan of the `(workspace_id, time_ns)` index.
    pub fn workspace_summaries(&self) -> Result<Vec<WorkspaceSummary>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT w.user, w.project, COUNT(*), MAX(s.time_ns)
                 FROM snapshots s JOIN workspaces w ON w.id = s.workspace_id
                 GROUP BY s.workspace_id ORDER BY w.user, w.project",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(WorkspaceSummary {
                    workspace: WorkspaceName {
                        user: r.get(0)?,
                        project: r.get(1)?,
                    },
                    snapshots: r.get::<_, i64>(2)?.max(0) as u64,
                    newest_time_ns: r.get(3)?,
                })
            })
            .map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }

    /// Workspaces whose newest snapshots recorded skipped entries, with the
    /// time of the oldest snapshot in that unbroken streak (taken after the
    /// newest snapshot that skipped nothing): `snapshot --prune` holds their
    /// retention since then. Reads only snapshots with skips (usually
    /// none), each with one step of the `(workspace_id, time_ns)` index.
    pub fn skipping_since(&self) -> Result<Vec<(WorkspaceName, i64)>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT w.user, w.project, MIN(s.time_ns) FROM snapshots s
                 JOIN workspaces w ON w.id = s.workspace_id
                 WHERE s.skipped > 0 AND s.time_ns > COALESCE(
                     (SELECT MAX(t.time_ns) FROM snapshots t
                      WHERE t.workspace_id = s.workspace_id AND t.skipped = 0),
                     -9223372036854775808)
                 GROUP BY s.workspace_id ORDER BY w.user, w.project",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    WorkspaceName {
                        user: r.get(0)?,
                        project: r.get(1)?,
                    },
                    r.get(2)?,
                ))
            })
            .map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }

    /// Start of the first recorded run that started after `ns`, if any.
    pub fn first_run_after(&self, ns: i64) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT MIN(started_ns) FROM runs WHERE started_ns > ?1",
                [ns],
                |r| r.get(0),
            )
            .map_err(sql_err(&self.path))
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

    /// Call `f` with every indexed blob's kind and sizes, in row order
    /// (streamed: nothing is collected here).
    pub fn for_each_blob_size(&self, mut f: impl FnMut(BlobSize)) -> Result<()> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare("SELECT id, kind, stored_len, raw_len FROM blobs ORDER BY id")
            .map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let row: i64 = r.get(0).map_err(&e)?;
            let k: u8 = r.get(1).map_err(&e)?;
            let kind = BlobKind::from_code(k)
                .ok_or_else(|| Error::corrupt(format!("catalog: blob row {row} has kind {k}")))?;
            let len = |i: usize| -> Result<u32> {
                let v: i64 = r.get(i).map_err(&e)?;
                u32::try_from(v).map_err(|_| Error::corrupt(format!("blob row {row}: length {v}")))
            };
            f(BlobSize {
                row,
                kind,
                stored_len: len(2)?,
                raw_len: len(3)?,
            });
        }
        Ok(())
    }

    /// Blob rows a tree or chunk list references (primary-key lookup).
    pub fn referenced_rows(&self, tree_row: i64) -> Result<Vec<i64>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT blob_id FROM tree_refs WHERE tree_id = ?1")
            .map_err(&e)?;
        let rows = stmt.query_map([tree_row], |r| r.get(0)).map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<i64>>>().map_err(e)
    }

    /// Call `f` with every snapshot's workspace row, time, logical size and
    /// root row, ordered by workspace then time (streamed).
    pub fn for_each_snapshot_root(
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

    /// Every workspace's name by row.
    pub fn workspace_names(&self) -> Result<HashMap<i64, WorkspaceName>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare("SELECT id, user, project FROM workspaces")
            .map_err(&e)?;
        let names = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    WorkspaceName {
                        user: r.get(1)?,
                        project: r.get(2)?,
                    },
                ))
            })
            .map_err(&e)?
            .collect::<rusqlite::Result<HashMap<_, _>>>()
            .map_err(&e)?;
        Ok(names)
    }
}
