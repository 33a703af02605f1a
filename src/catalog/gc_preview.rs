//! A dry run of gc's first step: the same worklist as `gc` walks, over a
//! read transaction that may be on a read-only connection. Instead of
//! deleting rows it remembers the forgotten snapshots and the dead blobs,
//! and a row counts as gone when it is remembered. It writes nothing (no
//! catalog write, no SQLite write lock), so it runs beside a writer or a
//! `flock` held while the store is copied, and reports what the real run
//! would do (the counts are compared with a real run's in
//! `tests/prune.rs`).

use std::collections::{HashMap, HashSet};

use rusqlite::{CachedStatement, OptionalExtension, Transaction};

use super::gc::{
    children_of, collect_from, dead_blob, pack_usage_of, unswept, DeadBlob, GcStep, Liveness,
    PackUsage,
};
use super::{sql_err, Catalog};
use crate::error::{Error, Missing, Result};
use crate::id::SnapshotId;

/// A dry run of a gc: one read transaction (a consistent view) on a
/// connection that may be read-only; forgotten snapshots and dead blobs
/// are remembered, not deleted.
pub(crate) struct GcPreview<'a> {
    tx: Transaction<'a>,
    catalog: &'a Catalog,
    path: std::path::PathBuf,
    /// Row ids of the snapshots this dry run forgets.
    forgotten: HashSet<i64>,
    /// Row ids of the blobs found dead, and per pack row their record
    /// bytes and count.
    dead: HashSet<i64>,
    dead_in_pack: HashMap<i64, (u64, u64)>,
}

impl Catalog {
    /// Start a dry run of gc: a read transaction (deferred: it takes no
    /// write lock, and works on a read-only connection), which this
    /// catalog's own queries share until the preview is dropped.
    pub(crate) fn begin_gc_preview(&self) -> Result<GcPreview<'_>> {
        let path = self.path.clone();
        let tx = self.conn.unchecked_transaction().map_err(sql_err(&path))?;
        Ok(GcPreview {
            tx,
            catalog: self,
            path,
            forgotten: HashSet::new(),
            dead: HashSet::new(),
            dead_in_pack: HashMap::new(),
        })
    }
}

/// A dry run's worklist: a `tree_refs` row from a dead tree, or a
/// snapshot this run forgets, no longer counts.
struct Remembering<'t, 'p> {
    referrers: CachedStatement<'t>,
    rooted_by: CachedStatement<'t>,
    children: CachedStatement<'t>,
    blob: CachedStatement<'t>,
    path: &'t std::path::Path,
    forgotten: &'p HashSet<i64>,
    dead: &'p mut HashSet<i64>,
    dead_in_pack: &'p mut HashMap<i64, (u64, u64)>,
}

impl Liveness for Remembering<'_, '_> {
    fn is_live(&mut self, blob: i64) -> Result<bool> {
        let e = sql_err(self.path);
        // Stop at the first referrer still alive (usually the first row).
        let mut trees = self.referrers.query([blob]).map_err(&e)?;
        while let Some(r) = trees.next().map_err(&e)? {
            if !self.dead.contains(&r.get::<_, i64>(0).map_err(&e)?) {
                return Ok(true);
            }
        }
        let mut snapshots = self.rooted_by.query([blob]).map_err(&e)?;
        while let Some(r) = snapshots.next().map_err(&e)? {
            if !self.forgotten.contains(&r.get::<_, i64>(0).map_err(&e)?) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn children(&mut self, blob: i64) -> Result<Vec<i64>> {
        children_of(&mut self.children, blob).map_err(sql_err(self.path))
    }

    fn remove(&mut self, blob: i64) -> Result<Option<DeadBlob>> {
        self.dead.insert(blob);
        let row: Option<(i64, i64, Vec<u8>)> = self
            .blob
            .query_row([blob], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(sql_err(self.path))?;
        let Some(row) = row else { return Ok(None) };
        let d = dead_blob(row)?;
        let slot = self.dead_in_pack.entry(d.pack_row).or_default();
        slot.0 += d.bytes;
        slot.1 += 1;
        Ok(Some(d))
    }
}

impl<'a> GcPreview<'a> {
    /// The catalog, read inside this preview's transaction.
    pub(crate) fn catalog(&self) -> &'a Catalog {
        self.catalog
    }
}

impl GcStep for GcPreview<'_> {
    fn delete_snapshot(&mut self, id: &SnapshotId) -> Result<(i64, Option<String>)> {
        // A version-1 catalog (read as it is: readers never upgrade) has
        // no journals.
        let journal = if self.catalog.version() >= 2 {
            "journal"
        } else {
            "NULL"
        };
        let row: Option<(i64, i64, Option<String>)> = self
            .tx
            .query_row(
                &format!(
                    "SELECT id, root_tree_id, {journal} FROM snapshots WHERE snapshot_hash = ?1"
                ),
                [&id.0 .0[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sql_err(&self.path))?;
        match row {
            Some((row, root, journal)) if self.forgotten.insert(row) => Ok((root, journal)),
            _ => Err(Error::NotFound(Missing::Forgotten {
                snapshot: *id,
                workspace: None,
            })),
        }
    }

    fn collect_each(&mut self, roots: Vec<i64>, on_dead: &mut dyn FnMut(DeadBlob)) -> Result<()> {
        let e = sql_err(&self.path);
        let mut work = roots;
        work.extend(unswept(&self.tx, &self.path)?);
        let prepare = |sql| self.tx.prepare_cached(sql).map_err(&e);
        let mut index = Remembering {
            referrers: prepare("SELECT tree_id FROM tree_refs WHERE blob_id = ?1")?,
            rooted_by: prepare("SELECT id FROM snapshots WHERE root_tree_id = ?1")?,
            children: prepare("SELECT blob_id FROM tree_refs WHERE tree_id = ?1")?,
            blob: prepare("SELECT pack_id, stored_len, hash FROM blobs WHERE id = ?1")?,
            path: &self.path,
            forgotten: &self.forgotten,
            dead: &mut self.dead,
            dead_in_pack: &mut self.dead_in_pack,
        };
        collect_from(&mut index, work, on_dead)
    }

    fn pack_usage(&self, rows: &HashSet<i64>) -> Result<Vec<PackUsage>> {
        pack_usage_of(&self.tx, &self.path, rows, &self.dead_in_pack)
    }
}
