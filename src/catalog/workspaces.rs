//! The workspace table: one row per user/project pair a snapshot was ever
//! committed for, and what the commands ask about workspaces as a whole.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::{sql_err, Catalog};
use crate::error::Result;
use crate::workspace::WorkspaceName;

/// One workspace as the catalog knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceSummary {
    pub workspace: WorkspaceName,
    pub snapshots: u64,
    /// Recorded time of its newest snapshot.
    pub newest_time_ns: i64,
}

impl Catalog {
    /// The user/project pairs that have snapshots.
    pub fn workspaces(&self) -> Result<Vec<WorkspaceName>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT user, project FROM workspaces w
                 WHERE EXISTS (SELECT 1 FROM snapshots s WHERE s.workspace_id = w.id)
                 ORDER BY user, project",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(WorkspaceName {
                    user: r.get(0)?,
                    project: r.get(1)?,
                })
            })
            .map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
    }

    /// Every workspace with at least one snapshot: count and newest time.
    /// Per workspace in name order (no sort): its range of the
    /// `snapshots_by_time` index counted, and one step for the newest.
    pub fn workspace_summaries(&self) -> Result<Vec<WorkspaceSummary>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT user, project, n, newest FROM (
                     SELECT w.user, w.project,
                            (SELECT COUNT(*) FROM snapshots s WHERE s.workspace_id = w.id) AS n,
                            (SELECT MAX(s.time_ns) FROM snapshots s WHERE s.workspace_id = w.id)
                                AS newest
                     FROM workspaces w ORDER BY w.user, w.project)
                 WHERE n > 0",
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

    /// Every workspace's name by row.
    pub(crate) fn workspace_names(&self) -> Result<HashMap<i64, WorkspaceName>> {
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

pub(super) fn ensure_workspace(
    tx: &rusqlite::Transaction<'_>,
    w: &WorkspaceName,
) -> rusqlite::Result<i64> {
    // Looked up first: a tick's workspaces exist already (an `INSERT OR
    // IGNORE` would cost a write attempt per snapshot).
    let mut find =
        tx.prepare_cached("SELECT id FROM workspaces WHERE user = ?1 AND project = ?2")?;
    if let Some(id) = find
        .query_row(params![w.user, w.project], |r| r.get(0))
        .optional()?
    {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO workspaces (user, project) VALUES (?1, ?2)")?
        .execute(params![w.user, w.project])?;
    Ok(tx.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, new_catalog, ws};
    use super::*;

    #[test]
    fn workspaces_are_those_with_snapshots() {
        let (_dir, mut cat) = new_catalog();
        let (a, b) = (ws("alice", "thesis"), ws("bob", "notes"));
        assert_eq!(cat.workspaces().unwrap(), []);
        commit(&mut cat, &b, 5, 5, &[], &[]);
        commit(&mut cat, &a, 10, 10, &[], &[]);
        commit(&mut cat, &a, 30, 30, &[], &[]);
        assert_eq!(cat.workspaces().unwrap(), [a.clone(), b.clone()]);
        assert_eq!(
            cat.workspace_summaries().unwrap(),
            [
                WorkspaceSummary {
                    workspace: a.clone(),
                    snapshots: 2,
                    newest_time_ns: 30,
                },
                WorkspaceSummary {
                    workspace: b.clone(),
                    snapshots: 1,
                    newest_time_ns: 5,
                },
            ]
        );
        let mut names: Vec<_> = cat.workspace_names().unwrap().into_values().collect();
        names.sort();
        assert_eq!(names, [a, b]);
    }
}
