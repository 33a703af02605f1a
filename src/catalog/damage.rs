//! Damage marks: blobs `check` found damaged or missing leave the index,
//! the snapshots reaching them are marked `damaged` (never a stat-cache
//! parent), and the mark is cleared once a run has stored the lost data
//! again (`heal.rs`).

use rusqlite::{params, OptionalExtension};

use super::blobs::{complete_refs, TreeRefs};
use super::{sql_err, Catalog};
use crate::error::Result;
use crate::id::{Id, SnapshotId};
use crate::model::SnapshotRow;

impl Catalog {
    /// Record what `check` found damaged or missing: `blobs` leave the index
    /// (with their `tree_refs` rows), so the next snapshot that holds them
    /// stores them again instead of reusing a bad copy; `snapshots` (those
    /// reaching any of `blobs`) are marked damaged, so none is a stat-cache
    /// parent. A tree that is some snapshot's root stays indexed (the row
    /// needs it); its snapshots are marked. One transaction; returns how
    /// many blobs left the index.
    pub fn record_damage(&mut self, blobs: &[Id], snapshots: &[SnapshotId]) -> Result<u64> {
        let e = sql_err(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        let mut dropped = 0;
        {
            let mut find = tx
                .prepare(
                    "SELECT b.id, EXISTS (SELECT 1 FROM snapshots s WHERE s.root_tree_id = b.id)
                     FROM blobs b WHERE b.hash = ?1",
                )
                .map_err(&e)?;
            let mut refs = tx
                .prepare("DELETE FROM tree_refs WHERE blob_id = ?1 OR tree_id = ?1")
                .map_err(&e)?;
            let mut del = tx.prepare("DELETE FROM blobs WHERE id = ?1").map_err(&e)?;
            for id in blobs {
                let row: Option<(i64, bool)> = find
                    .query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(&e)?;
                if let Some((row, false)) = row {
                    refs.execute([row]).map_err(&e)?;
                    del.execute([row]).map_err(&e)?;
                    dropped += 1;
                }
            }
            let mut mark = tx
                .prepare("UPDATE snapshots SET damaged = 1 WHERE snapshot_hash = ?1")
                .map_err(&e)?;
            for s in snapshots {
                mark.execute([&s.0 .0[..]]).map_err(&e)?;
            }
        }
        tx.commit().map_err(&e)?;
        Ok(dropped)
    }

    /// Whether any snapshot is marked damaged (an index lookup).
    pub fn has_damaged(&self) -> Result<bool> {
        if self.version < 2 {
            return Ok(false);
        }
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM snapshots WHERE damaged = 1)",
                [],
                |r| r.get(0),
            )
            .map_err(sql_err(&self.path))
    }

    /// Snapshots `repair` marked damaged, oldest first.
    pub fn damaged_snapshots(&self) -> Result<Vec<SnapshotRow>> {
        if self.version < 2 {
            return Ok(Vec::new());
        }
        self.select_snapshots(
            "WHERE s.damaged = 1 ORDER BY w.user, w.project, s.time_ns, s.id",
            params![],
        )
    }

    /// Snapshot `id` is whole again: every blob it reaches is indexed, and
    /// `trees` (each with all its references) are linked in `tree_refs`.
    /// Clears its `damaged` flag, in one transaction.
    pub fn mark_whole(&mut self, id: &SnapshotId, trees: &[TreeRefs]) -> Result<()> {
        let e = sql_err(&self.path);
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(&e)?;
        complete_refs(&tx, trees, &path)?;
        tx.execute(
            "UPDATE snapshots SET damaged = 0 WHERE snapshot_hash = ?1",
            [&id.0 .0[..]],
        )
        .map_err(&e)?;
        tx.commit().map_err(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{add_chunks, blob, commit, new_catalog, ws};

    #[test]
    fn damage_is_recorded_and_healed() {
        let (_dir, mut cat) = new_catalog();
        let (good, bad) = (blob("good"), blob("bad"));
        add_chunks(&mut cat, &[good, bad]);
        let a = ws("alice", "thesis");
        let hit = commit(&mut cat, &a, 10, 10, &[good, bad], &[]);
        let spared = commit(&mut cat, &a, 20, 20, &[good], &[]);
        assert!(!cat.has_damaged().unwrap());

        // The damaged chunk leaves the index; the root tree stays (its
        // snapshot row needs it) and its snapshot is marked.
        let dropped = cat.record_damage(&[bad, hit.root.0], &[hit.id]).unwrap();
        assert_eq!(dropped, 1);
        assert!(!cat.has_blob(&bad).unwrap());
        assert!(cat.has_blob(&hit.root.0).unwrap());
        assert!(cat.has_damaged().unwrap());
        let damaged = cat.damaged_snapshots().unwrap();
        assert_eq!(damaged.len(), 1);
        assert_eq!((damaged[0].id, damaged[0].damaged), (hit.id, true));
        assert!(cat.dangling_references().unwrap().is_empty());

        // Stored again by a later run: the snapshot is whole once its tree
        // links the chunk again.
        add_chunks(&mut cat, &[bad]);
        cat.mark_whole(&hit.id, &[(hit.root.0, vec![good, bad])])
            .unwrap();
        assert!(!cat.has_damaged().unwrap());
        assert_eq!(cat.snapshots(Some(&a)).unwrap(), [hit, spared]);
    }
}
