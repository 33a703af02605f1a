//! The catalog side of garbage collection, inside one transaction.
//!
//! Liveness is decided locally, so the cost is proportional to what is
//! freed, not to the store: a blob is dead when no snapshot has it as root
//! and no `tree_refs` row points to it (both indexed). Forgetting a snapshot
//! puts its root on a worklist; a dead blob's own references are deleted and
//! its children go on the worklist in turn. Blobs of every kind (chunks,
//! trees, chunk lists) indexed by a run whose snapshot never committed
//! (crash, failed workspace), or by `repair` from such a run's packs, are
//! found by sweeping only the packs created since the last gc
//! (`meta.gc_swept_all_kinds_pack_id`; the whole index once when absent).
//!
//! A dry run walks the same worklist without deleting anything (see
//! `gc_preview`).

use std::collections::{HashMap, HashSet};

use rusqlite::{params, CachedStatement, Connection, OptionalExtension, Transaction};

use super::blobs::PendingTree;
use super::{i64_of, sql_err, Catalog};
use crate::error::{Error, Missing, Object, Problem, Result};
use crate::id::{Id, PackId, SnapshotId};
use crate::model::SnapshotRow;
use crate::pack::{record_bytes, BlobKind, RecordHeader, SealedPack};

/// `meta` key: the newest pack row whose unreferenced blobs of every kind
/// (chunks, trees, chunk lists) have been swept.
const SWEPT_ALL_KINDS: &str = "gc_swept_all_kinds_pack_id";

/// A blob that gc removed from the index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeadBlob {
    pub(crate) id: Id,
    pub(crate) pack_row: i64,
    /// Record bytes in its pack (header + payload).
    pub(crate) bytes: u64,
}

/// How much of a pack is still in use.
#[derive(Clone, Debug)]
pub(crate) struct PackUsage {
    pub(crate) row: i64,
    pub(crate) id: PackId,
    pub(crate) size_bytes: u64,
    pub(crate) live_bytes: u64,
    pub(crate) live_blobs: u64,
}

/// A live blob to move during repack.
#[derive(Clone, Debug)]
pub(crate) struct LiveBlob {
    pub(crate) id: Id,
    pub(crate) kind: BlobKind,
    pub(crate) offset: u64,
    pub(crate) stored_len: u32,
    pub(crate) raw_len: u32,
}

/// An open gc transaction. Dropped without `commit`, it rolls back.
pub(crate) struct GcTx<'a> {
    tx: Transaction<'a>,
    path: std::path::PathBuf,
}

/// What gc's first step needs of the catalog, as the real transaction
/// does it ([`GcTx`]) or as a dry run previews it (`GcPreview`): the
/// same calls, so the preview reports what the run would do.
pub(crate) trait GcStep {
    /// Forget a snapshot; returns its root blob row and its journal file.
    fn delete_snapshot(&mut self, id: &SnapshotId) -> Result<(i64, Option<String>)>;
    /// The blobs that die with the snapshots whose roots are `roots`, and
    /// those nothing references in packs newer than the sweep watermark:
    /// each handed to `on_dead` as it is found (a prune can free hundreds
    /// of thousands; none is held here).
    fn collect_each(&mut self, roots: Vec<i64>, on_dead: &mut dyn FnMut(DeadBlob)) -> Result<()>;
    /// Usage of the given packs once the dead blobs are gone.
    fn pack_usage(&self, rows: &HashSet<i64>) -> Result<Vec<PackUsage>>;
}

impl Catalog {
    /// Start the single gc transaction.
    pub(crate) fn begin_gc(&mut self) -> Result<GcTx<'_>> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_err(&path))?;
        Ok(GcTx { tx, path })
    }
}

/// The index as the worklist of [`collect_from`] sees it.
pub(super) trait Liveness {
    /// Does a snapshot root or a tree of the (remaining) index reference `blob`?
    fn is_live(&mut self, blob: i64) -> Result<bool>;
    /// The blobs `blob` references (a tree's or chunk list's `tree_refs`).
    fn children(&mut self, blob: i64) -> Result<Vec<i64>>;
    /// Drop `blob` and its references; its record if it is indexed.
    fn remove(&mut self, blob: i64) -> Result<Option<DeadBlob>>;
}

/// The worklist: a blob on it that nothing live references dies (handed
/// to `on_dead`), and its children go on the list (again) since it may
/// have been their last reference.
pub(super) fn collect_from(
    index: &mut impl Liveness,
    mut work: Vec<i64>,
    on_dead: &mut dyn FnMut(DeadBlob),
) -> Result<()> {
    let mut seen = HashSet::new();
    while let Some(blob) = work.pop() {
        if !seen.insert(blob) {
            continue;
        }
        if index.is_live(blob)? {
            continue;
        }
        let kids = index.children(blob)?;
        if let Some(d) = index.remove(blob)? {
            on_dead(d);
        }
        // Children whose last reference was this blob may be dead now:
        // check them (again).
        for k in kids {
            seen.remove(&k);
            work.push(k);
        }
    }
    Ok(())
}

/// The blobs of packs newer than the sweep watermark that no tree
/// references: left by runs that never committed (or never swept).
/// Before issue 13 the sweep looked at chunks only, so trees and chunk
/// lists of runs that never committed (and every tree `repair` indexed
/// from such runs) stayed forever below the old watermark. The watermark
/// of the any-kind sweep has its own key: a catalog without it is swept
/// whole once, which collects those too.
pub(super) fn unswept(conn: &Connection, path: &std::path::Path) -> Result<Vec<i64>> {
    let e = sql_err(path);
    let watermark: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [SWEPT_ALL_KINDS],
            |r| r.get(0),
        )
        .optional()
        .map_err(&e)?;
    let watermark: i64 = match watermark {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| super::bad_meta(SWEPT_ALL_KINDS, "not a number"))?,
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT b.id FROM blobs b WHERE b.pack_id > ?1
             AND NOT EXISTS (SELECT 1 FROM tree_refs r WHERE r.blob_id = b.id)",
        )
        .map_err(&e)?;
    let rows = stmt
        .query_map([watermark], |r| r.get::<_, i64>(0))
        .map_err(&e)?;
    rows.collect::<rusqlite::Result<Vec<i64>>>().map_err(&e)
}

/// The blobs `blob` references.
pub(super) fn children_of(stmt: &mut CachedStatement<'_>, blob: i64) -> rusqlite::Result<Vec<i64>> {
    stmt.query_map([blob], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()
}

/// A dead blob from its `blobs` row (pack row, stored length, hash).
pub(super) fn dead_blob((pack_row, stored, hash): (i64, i64, Vec<u8>)) -> Result<DeadBlob> {
    Ok(DeadBlob {
        id: Id::from_slice(&hash)?,
        pack_row,
        bytes: record_bytes(stored.max(0) as u64),
    })
}

/// Usage of the packs `rows` from the index, less what `gone` (pack row →
/// record bytes, count) says has died but is still indexed (a dry run).
pub(super) fn pack_usage_of(
    conn: &Connection,
    path: &std::path::Path,
    rows: &HashSet<i64>,
    gone: &HashMap<i64, (u64, u64)>,
) -> Result<Vec<PackUsage>> {
    let e = sql_err(path);
    let mut stmt = conn
        .prepare_cached(
            "SELECT p.pack_hash, p.size_bytes,
                    COALESCE(SUM(b.stored_len), 0) + COUNT(b.id) * ?2, COUNT(b.id)
             FROM packs p LEFT JOIN blobs b ON b.pack_id = p.id
             WHERE p.id = ?1 GROUP BY p.id",
        )
        .map_err(&e)?;
    let mut out = Vec::new();
    let mut sorted: Vec<i64> = rows.iter().copied().collect();
    sorted.sort_unstable();
    for row in sorted {
        let got: Option<(Vec<u8>, i64, i64, i64)> = stmt
            .query_row(params![row, record_bytes(0) as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .map_err(&e)?;
        if let Some((hash, size, live, n)) = got {
            let (gone_bytes, gone_blobs) = gone.get(&row).copied().unwrap_or((0, 0));
            out.push(PackUsage {
                row,
                id: PackId(Id::from_slice(&hash)?),
                size_bytes: size.max(0) as u64,
                live_bytes: (live.max(0) as u64).saturating_sub(gone_bytes),
                live_blobs: (n.max(0) as u64).saturating_sub(gone_blobs),
            });
        }
    }
    Ok(out)
}

/// The real gc's worklist: rows are deleted as blobs die.
struct Deleting<'t> {
    is_live: CachedStatement<'t>,
    children: CachedStatement<'t>,
    del_refs: CachedStatement<'t>,
    del_blob: CachedStatement<'t>,
    path: &'t std::path::Path,
}

impl Liveness for Deleting<'_> {
    fn is_live(&mut self, blob: i64) -> Result<bool> {
        self.is_live
            .query_row([blob], |r| r.get(0))
            .map_err(sql_err(self.path))
    }

    fn children(&mut self, blob: i64) -> Result<Vec<i64>> {
        children_of(&mut self.children, blob).map_err(sql_err(self.path))
    }

    fn remove(&mut self, blob: i64) -> Result<Option<DeadBlob>> {
        let e = sql_err(self.path);
        self.del_refs.execute([blob]).map_err(&e)?;
        let gone: Option<(i64, i64, Vec<u8>)> = self
            .del_blob
            .query_row([blob], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(&e)?;
        gone.map(dead_blob).transpose()
    }
}

impl GcStep for GcTx<'_> {
    fn delete_snapshot(&mut self, id: &SnapshotId) -> Result<(i64, Option<String>)> {
        GcTx::delete_snapshot(self, id)
    }

    fn collect_each(&mut self, roots: Vec<i64>, on_dead: &mut dyn FnMut(DeadBlob)) -> Result<()> {
        GcTx::collect_each(self, roots, on_dead)
    }

    fn pack_usage(&self, rows: &HashSet<i64>) -> Result<Vec<PackUsage>> {
        GcTx::pack_usage(self, rows)
    }
}

impl GcTx<'_> {
    fn e(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        sql_err(&self.path)
    }

    /// Delete a snapshot row; returns its root blob row and its journal file.
    pub(crate) fn delete_snapshot(&self, id: &SnapshotId) -> Result<(i64, Option<String>)> {
        let row: Option<(i64, Option<String>)> = self
            .tx
            .query_row(
                "DELETE FROM snapshots WHERE snapshot_hash = ?1 RETURNING root_tree_id, journal",
                [&id.0 .0[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.e())?;
        row.ok_or(Error::NotFound(Missing::Forgotten {
            snapshot: *id,
            workspace: None,
        }))
    }

    /// Give the snapshot `old` a new tree (`rewrite`): its row becomes
    /// `new` (id, root, counts, journal file) in place, so it keeps its
    /// catalog row (its skip list and its place in commit order) and the
    /// snapshot is never absent. Returns the old root's blob row and the
    /// journal file that holds the old record, as
    /// [`GcTx::delete_snapshot`] does. `new.root` must be indexed.
    pub(crate) fn replace_snapshot(
        &self,
        old: &SnapshotId,
        new: &SnapshotRow,
        journal: &str,
    ) -> Result<(i64, Option<String>)> {
        let e = self.e();
        let before: Option<(i64, Option<String>)> = self
            .tx
            .query_row(
                "SELECT root_tree_id, journal FROM snapshots WHERE snapshot_hash = ?1",
                [&old.0 .0[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(&e)?;
        let before = before.ok_or(Error::NotFound(Missing::Forgotten {
            snapshot: *old,
            workspace: Some(new.workspace.clone()),
        }))?;
        let root: i64 = self
            .tx
            .query_row(
                "SELECT id FROM blobs WHERE hash = ?1",
                [&new.root.0 .0[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(&e)?
            .ok_or_else(|| {
                Error::corrupt(Problem::NotStored)
                    .within(Object::Tree(new.root))
                    .within(Object::Snapshot(new.id))
            })?;
        let s = new.stats;
        self.tx
            .execute(
                "UPDATE snapshots SET snapshot_hash = ?2, root_tree_id = ?3, files = ?4,
                     dirs = ?5, symlinks = ?6, size_bytes = ?7, excluded = ?8, journal = ?9
                 WHERE snapshot_hash = ?1",
                params![
                    &old.0 .0[..],
                    &new.id.0 .0[..],
                    root,
                    i64_of(s.files),
                    i64_of(s.dirs),
                    i64_of(s.symlinks),
                    i64_of(s.size_bytes),
                    i64_of(s.excluded),
                    journal
                ],
            )
            .map_err(&e)?;
        Ok(before)
    }

    /// Index trees written for this transaction (their packs added with
    /// [`GcTx::add_pack`]) with their references, children before parents.
    pub(crate) fn index_trees(&self, trees: &[PendingTree]) -> Result<()> {
        super::blobs::index_trees(&self.tx, trees, &self.path)
    }

    /// [`GcTx::collect_each`], the dead blobs in a list.
    #[cfg(test)]
    pub(crate) fn collect(&self, roots: Vec<i64>) -> Result<Vec<DeadBlob>> {
        let mut dead = Vec::new();
        self.collect_each(roots, &mut |d| dead.push(d))?;
        Ok(dead)
    }

    /// Remove from the index every blob made unreachable by deleting the
    /// snapshots whose roots are `roots`, plus blobs of any kind that
    /// nothing references in packs newer than the sweep watermark (and
    /// whatever only they referenced); each handed to `on_dead` as it
    /// leaves the index.
    pub(crate) fn collect_each(
        &self,
        roots: Vec<i64>,
        on_dead: &mut dyn FnMut(DeadBlob),
    ) -> Result<()> {
        let e = self.e();
        let mut work = roots;
        work.extend(unswept(&self.tx, &self.path)?);
        let prepare = |sql| self.tx.prepare_cached(sql).map_err(&e);
        let mut index = Deleting {
            is_live: prepare(
                "SELECT EXISTS (SELECT 1 FROM tree_refs WHERE blob_id = ?1)
                     OR EXISTS (SELECT 1 FROM snapshots WHERE root_tree_id = ?1)",
            )?,
            children: prepare("SELECT blob_id FROM tree_refs WHERE tree_id = ?1")?,
            del_refs: prepare("DELETE FROM tree_refs WHERE tree_id = ?1")?,
            del_blob: prepare(
                "DELETE FROM blobs WHERE id = ?1 RETURNING pack_id, stored_len, hash",
            )?,
            path: &self.path,
        };
        collect_from(&mut index, work, on_dead)
    }

    /// Usage of the given packs after `collect`.
    pub(crate) fn pack_usage(&self, rows: &HashSet<i64>) -> Result<Vec<PackUsage>> {
        pack_usage_of(&self.tx, &self.path, rows, &HashMap::new())
    }

    /// Live blobs of a pack, in file order.
    #[cfg(test)]
    pub(crate) fn live_blobs(&self, pack_row: i64) -> Result<Vec<LiveBlob>> {
        let mut out = Vec::new();
        self.for_each_live_blob(pack_row, |b| {
            out.push(b);
            Ok(())
        })?;
        Ok(out)
    }

    /// Hand each live blob of a pack to `f`, in file order, as it is read
    /// (a pack of tiny records holds hundreds of thousands).
    pub(crate) fn for_each_live_blob(
        &self,
        pack_row: i64,
        mut f: impl FnMut(LiveBlob) -> Result<()>,
    ) -> Result<()> {
        let e = self.e();
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT id, hash, kind, offset, stored_len, raw_len FROM blobs
                 WHERE pack_id = ?1 ORDER BY offset",
            )
            .map_err(&e)?;
        let mut rows = stmt.query([pack_row]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let row: i64 = r.get(0).map_err(&e)?;
            let hash: Vec<u8> = r.get(1).map_err(&e)?;
            let kind: u8 = r.get(2).map_err(&e)?;
            let (offset, stored, raw): (i64, i64, i64) = (
                r.get(3).map_err(&e)?,
                r.get(4).map_err(&e)?,
                r.get(5).map_err(&e)?,
            );
            f(LiveBlob {
                id: Id::from_slice(&hash)?,
                kind: BlobKind::from_code(kind).ok_or_else(|| {
                    Error::corrupt_as(format!("unknown kind {kind}")).within(Object::CatalogRow {
                        table: "blobs",
                        row,
                    })
                })?,
                offset: offset.max(0) as u64,
                stored_len: stored as u32,
                raw_len: raw as u32,
            })?;
        }
        Ok(())
    }

    /// Index a pack written by repack (its blobs are moved with `move_blobs`).
    pub(crate) fn add_pack(&self, sealed: &SealedPack, now_ns: i64) -> Result<i64> {
        super::blobs::upsert_pack(
            &self.tx,
            &sealed.id,
            sealed.size_bytes,
            sealed.records.len() as u64,
            now_ns,
        )
        .map_err(self.e())
    }

    /// Point the blobs a repack moved at their new pack (row `pack`): its
    /// records, each at its offset with its (maybe new) stored length.
    pub(crate) fn move_blobs(&self, pack: i64, records: &[(u64, RecordHeader)]) -> Result<()> {
        let e = self.e();
        let mut stmt = self
            .tx
            .prepare_cached(
                "UPDATE blobs SET pack_id = ?1, offset = ?2, stored_len = ?3 WHERE hash = ?4",
            )
            .map_err(&e)?;
        for (offset, h) in records {
            let n = stmt
                .execute(params![pack, *offset as i64, h.stored_len, &h.id.0[..]])
                .map_err(&e)?;
            if n != 1 {
                return Err(Error::corrupt(Problem::NotIndexed).within(Object::Blob(h.id)));
            }
        }
        Ok(())
    }

    /// Delete a pack row; it must hold no blob any more.
    pub(crate) fn delete_pack(&self, row: i64) -> Result<()> {
        let left: i64 = self
            .tx
            .query_row(
                "SELECT COUNT(*) FROM blobs WHERE pack_id = ?1",
                [row],
                |r| r.get(0),
            )
            .map_err(self.e())?;
        if left != 0 {
            return Err(
                Error::corrupt_as(format!("still holds {left} blobs")).within(Object::CatalogRow {
                    table: "packs",
                    row,
                }),
            );
        }
        self.tx
            .execute("DELETE FROM packs WHERE id = ?1", [row])
            .map_err(self.e())?;
        Ok(())
    }

    /// Every pack the catalog knows.
    pub(crate) fn pack_ids(&self) -> Result<HashSet<PackId>> {
        let e = self.e();
        let mut stmt = self.tx.prepare("SELECT pack_hash FROM packs").map_err(&e)?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(&e)?;
        let mut out = HashSet::new();
        for r in rows {
            out.insert(PackId(Id::from_slice(&r.map_err(&e)?)?));
        }
        Ok(out)
    }

    /// Remember that packs up to the newest one have been swept.
    pub(crate) fn mark_swept(&self) -> Result<()> {
        let max: i64 = self
            .tx
            .query_row("SELECT COALESCE(MAX(id), 0) FROM packs", [], |r| r.get(0))
            .map_err(self.e())?;
        // Both keys: `gc_swept_pack_id` for older binaries (chunk sweep),
        // `SWEPT_ALL_KINDS` for this one (every kind).
        for key in ["gc_swept_pack_id", SWEPT_ALL_KINDS] {
            self.tx
                .execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [key, &max.to_string()],
                )
                .map_err(self.e())?;
        }
        Ok(())
    }

    /// Record, in this transaction, the journal files that still hold
    /// records of the snapshots it deletes: they are rewritten after the
    /// commit, or by the next writer if this process dies first.
    pub(crate) fn set_pending_journals(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        super::journals::add_pending_journals(&self.tx, names).map_err(self.e())
    }

    pub(crate) fn commit(self) -> Result<()> {
        let path = self.path.clone();
        self.tx.commit().map_err(sql_err(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{add_chunks, blob, commit, new_catalog, ws};
    use super::*;

    #[test]
    fn forgetting_a_snapshot_frees_only_what_nothing_else_references() {
        let (_dir, mut cat) = new_catalog();
        let (shared, own) = (blob("shared"), blob("own"));
        let pack = add_chunks(&mut cat, &[shared, own]);
        let a = ws("alice", "thesis");
        let old = commit(&mut cat, &a, 10, 10, &[shared, own], &[]);
        let kept = commit(&mut cat, &a, 20, 20, &[shared], &[]);
        {
            let tx = cat.begin_gc().unwrap();
            // The first gc sweeps the whole index: nothing is unreferenced.
            assert!(tx.collect(Vec::new()).unwrap().is_empty());
            tx.mark_swept().unwrap();
            tx.commit().unwrap();
        }

        let tx = cat.begin_gc().unwrap();
        let (root, journal) = tx.delete_snapshot(&old.id).unwrap();
        assert_eq!(journal.as_deref(), Some("test.wsj"));
        let dead = tx.collect(vec![root]).unwrap();
        let mut dead_ids: Vec<_> = dead.iter().map(|d| d.id).collect();
        dead_ids.sort_by_key(|id| id.0);
        let mut expected = vec![own, old.root.0];
        expected.sort_by_key(|id| id.0);
        assert_eq!(dead_ids, expected);

        let own_pack = dead.iter().find(|d| d.id == own).unwrap().pack_row;
        let usage = tx.pack_usage(&HashSet::from([own_pack])).unwrap();
        assert_eq!(usage.len(), 1);
        assert_eq!((usage[0].id, usage[0].live_blobs), (pack.id, 1));
        assert_eq!(usage[0].live_bytes, crate::pack::record_bytes(100));
        let live = tx.live_blobs(own_pack).unwrap();
        assert_eq!(live.iter().map(|b| b.id).collect::<Vec<_>>(), [shared]);
        tx.commit().unwrap();

        assert_eq!(cat.snapshots(None).unwrap(), [kept]);
        assert!(cat.has_blob(&shared).unwrap() && !cat.has_blob(&own).unwrap());
        assert!(cat.dangling_references().unwrap().is_empty());
    }
}
