//! What `list` selects at any store size: the snapshots of one workspace
//! in a time range (and the newest N of those), and the workspaces of one
//! user. Each is a range of an index (`snapshots_by_time`, the `(user,
//! project)` key), never a scan of the table, so `list USER/PROJECT` costs
//! the same in a store of 10 snapshots and of 2.88 million.

use rusqlite::params;

use super::{sql_err, Catalog};
use crate::error::Result;
use crate::model::SnapshotRow;
use crate::workspace::WorkspaceName;

/// Which snapshots of a workspace `list` shows: recorded time within
/// `since_ns..=until_ns` (both inclusive; `None` is unbounded), then the
/// `last` newest of those.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub last: Option<u64>,
}

/// The WHERE and ORDER BY of [`Catalog::snapshots_filtered`].
const FILTERED: &str =
    "WHERE w.user = ?1 AND w.project = ?2 AND s.time_ns >= ?3 AND s.time_ns <= ?4
     ORDER BY s.time_ns DESC, s.id DESC LIMIT ?5";

/// The query of [`Catalog::user_workspaces`].
const USER_WORKSPACES: &str = "SELECT user, project FROM workspaces w
     WHERE w.user = ?1
       AND EXISTS (SELECT 1 FROM snapshots s WHERE s.workspace_id = w.id)
     ORDER BY project";

impl Catalog {
    /// Every snapshot row numbered above `after` (rows are numbered in
    /// commit order): its number, recorded time and the bytes it added,
    /// handed to `f` in order. A range of the primary key: `serve` reads
    /// the whole table once, then only what was committed since.
    pub fn snapshot_additions_after(
        &self,
        after: i64,
        mut f: impl FnMut(i64, i64, u64),
    ) -> Result<()> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, time_ns, bytes_added FROM snapshots WHERE id > ?1 ORDER BY id",
            )
            .map_err(&e)?;
        let mut rows = stmt.query([after]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let id: i64 = r.get(0).map_err(&e)?;
            let t: i64 = r.get(1).map_err(&e)?;
            let added: i64 = r.get(2).map_err(&e)?;
            f(id, t, added.max(0) as u64);
        }
        Ok(())
    }

    /// The snapshots of `workspace` that `filter` lets through, oldest
    /// first: one range of the `(workspace_id, time_ns)` index, read from
    /// its newest end and stopped after `last` rows, so the cost follows
    /// what is shown, not how many snapshots the workspace has.
    pub fn snapshots_filtered(
        &self,
        workspace: &WorkspaceName,
        filter: &SnapshotFilter,
    ) -> Result<Vec<SnapshotRow>> {
        // SQLite reads a negative LIMIT as "no limit".
        let limit = filter
            .last
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut rows = self.select_snapshots(
            FILTERED,
            params![
                workspace.user,
                workspace.project,
                filter.since_ns.unwrap_or(i64::MIN),
                filter.until_ns.unwrap_or(i64::MAX),
                limit
            ],
        )?;
        rows.reverse();
        Ok(rows)
    }

    /// The workspaces of `user` that have snapshots, by project: a range of
    /// the `(user, project)` index, not a scan of every workspace.
    pub fn user_workspaces(&self, user: &[u8]) -> Result<Vec<WorkspaceName>> {
        let e = sql_err(&self.path);
        let mut stmt = self.conn.prepare_cached(USER_WORKSPACES).map_err(&e)?;
        let rows = stmt
            .query_map([user], |r| {
                Ok(WorkspaceName {
                    user: r.get(0)?,
                    project: r.get(1)?,
                })
            })
            .map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, new_catalog, ws};
    use super::{SnapshotFilter, FILTERED, USER_WORKSPACES};

    /// `list`'s filters: inclusive bounds, then the newest N, oldest first.
    #[test]
    fn filtered_snapshots_are_a_range_then_the_newest() {
        let (_dir, mut cat) = new_catalog();
        let (a, b) = (ws("alice", "thesis"), ws("alice", "notes"));
        let rows: Vec<_> = [10, 20, 30, 40]
            .iter()
            .map(|&t| commit(&mut cat, &a, t, t, &[], &[]))
            .collect();
        commit(&mut cat, &b, 25, 25, &[], &[]);
        commit(&mut cat, &ws("bob", "x"), 25, 25, &[], &[]);
        let f = |since, until, last| {
            cat.snapshots_filtered(
                &a,
                &SnapshotFilter {
                    since_ns: since,
                    until_ns: until,
                    last,
                },
            )
            .unwrap()
            .iter()
            .map(|r| r.time_ns)
            .collect::<Vec<_>>()
        };
        assert_eq!(f(None, None, None), [10, 20, 30, 40]);
        assert_eq!(
            f(Some(20), Some(30), None),
            [20, 30],
            "both bounds inclusive"
        );
        assert_eq!(f(Some(21), Some(29), None), Vec::<i64>::new());
        assert_eq!(f(None, None, Some(2)), [30, 40]);
        assert_eq!(f(None, Some(35), Some(2)), [20, 30]);
        assert_eq!(f(Some(15), None, Some(9)), [20, 30, 40]);
        assert_eq!(
            cat.snapshots_filtered(&a, &SnapshotFilter::default())
                .unwrap(),
            rows
        );
        assert_eq!(cat.user_workspaces(b"alice").unwrap(), [b.clone(), a]);
        assert_eq!(cat.user_workspaces(b"carol").unwrap(), []);
    }

    /// `list USER/PROJECT` and `list USER` stay index lookups at any store
    /// size: no scan of the snapshot or workspace table, no sort.
    #[test]
    fn list_queries_search_the_indexes() {
        let (_dir, cat) = new_catalog();
        let plan = |sql: &str| {
            let mut stmt = cat
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
            let rows = stmt
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap();
            rows.join("\n")
        };
        let filtered = plan(&cat.snapshot_query(FILTERED));
        assert!(
            filtered.contains(
                "SEARCH s USING INDEX snapshots_by_time (workspace_id=? AND time_ns>? AND time_ns<?)"
            ),
            "{filtered}"
        );
        let users = plan(USER_WORKSPACES);
        assert!(users.contains("SEARCH w USING"), "{users}");
        for p in [&filtered, &users] {
            assert!(!p.contains("SCAN"), "{p}");
            assert!(!p.contains("TEMP B-TREE"), "{p}");
        }
    }
}
