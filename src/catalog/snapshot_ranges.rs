//! Snapshots found without reading every one: an id prefix as a range of
//! the id index (`forget`), a workspace's snapshot at a time as one index
//! step (`import-rsync`), and every snapshot streamed in index order
//! (`list`). At 10,000 workspaces × 288 snapshots these are what keep those
//! commands under a second and their memory at one row (issue #18).

use rusqlite::params;

use super::{sql_err, Catalog};
use crate::error::Result;
use crate::model::SnapshotRow;
use crate::workspace::WorkspaceName;

impl Catalog {
    /// Every snapshot, by workspace (user, project) then time and id, each
    /// handed to `f` as it is read: memory stays one row whatever the
    /// store holds (`list` of everything). Read in index order, workspace
    /// by workspace, so nothing is sorted.
    pub fn for_each_snapshot(&self, f: impl FnMut(SnapshotRow) -> Result<()>) -> Result<()> {
        self.each_snapshot(
            // CROSS JOIN keeps the workspaces outside: their name index, then
            // each one's `(workspace_id, time_ns)` range, is the order asked.
            "FROM workspaces w
             CROSS JOIN snapshots s ON s.workspace_id = w.id
             JOIN blobs b ON b.id = s.root_tree_id
             ORDER BY w.user, w.project, s.time_ns, s.id",
            &[],
            f,
        )
    }

    /// Snapshots whose id starts with the bytes `lo` (a hex prefix, padded
    /// with 0 to whole bytes) and sorts before `hi` (the prefix plus one,
    /// `None` past `ff…`): at most `limit`, from the `snapshot_hash` index
    /// (a range, not a scan of every snapshot); and how many there are when
    /// `limit` were found.
    pub(crate) fn snapshots_in_id_range(
        &self,
        lo: &[u8],
        hi: Option<&[u8]>,
        limit: u32,
    ) -> Result<(Vec<SnapshotRow>, u64)> {
        let e = sql_err(&self.path);
        let (range, args): (&str, Vec<&dyn rusqlite::ToSql>) = match &hi {
            Some(hi) => (
                "s.snapshot_hash >= ?1 AND s.snapshot_hash < ?2",
                vec![&lo, hi],
            ),
            None => ("s.snapshot_hash >= ?1", vec![&lo]),
        };
        let rows = self.select_snapshots(&format!("WHERE {range} LIMIT {limit}"), &args[..])?;
        if rows.len() < limit as usize {
            let n = rows.len() as u64;
            return Ok((rows, n));
        }
        let n: i64 = self
            .conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM snapshots s WHERE {range}"))
            .and_then(|mut q| q.query_row(&args[..], |r| r.get(0)))
            .map_err(&e)?;
        Ok((rows, n.max(0) as u64))
    }

    /// Whether workspace `ws` has a snapshot recorded at exactly `time_ns`
    /// (one step of the `(workspace_id, time_ns)` index).
    pub fn has_snapshot_at(&self, ws: &WorkspaceName, time_ns: i64) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM snapshots s JOIN workspaces w ON w.id = s.workspace_id
                 WHERE w.user = ?1 AND w.project = ?2 AND s.time_ns = ?3",
            )
            .map_err(sql_err(&self.path))?;
        stmt.exists(params![ws.user, ws.project, time_ns])
            .map_err(sql_err(&self.path))
    }
}
