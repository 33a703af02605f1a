//! Carrying out a gc in its crash order (see the module doc of `gc`):
//! forget snapshot rows and collect dead blobs in one catalog transaction,
//! repack, commit, then delete the old pack files and orphans.

use std::collections::{BTreeMap, HashSet};

use crate::catalog::{GcPreview, GcStep, GcTx, PackUsage};
use crate::error::Result;
use crate::id::{Id, PackId, SnapshotId};
use crate::journal;
use crate::lock::WriterLock;
use crate::model::SnapshotRow;
use crate::pack::{self, ExpectedRecord, SealedPack};
use crate::progress::Progress;
use crate::store::Store;
use crate::timespec;

use super::plan::PackPlan;
use super::GcReport;

/// What step 1 took out of the catalog, inside the transaction: the root
/// blob rows of the snapshots whose rows went (or got another tree), and
/// the journal files that still hold their records.
#[derive(Default)]
pub(super) struct Dropped {
    roots: Vec<i64>,
    journals: BTreeMap<String, HashSet<SnapshotId>>,
}

impl Dropped {
    /// Snapshot `id`'s row no longer holds root blob `root`; its record in
    /// `journal` is to be dropped after the commit.
    pub(super) fn add(&mut self, id: SnapshotId, (root, journal): (i64, Option<String>)) {
        self.roots.push(root);
        if let Some(j) = journal {
            self.journals.entry(j).or_default().insert(id);
        }
    }
}

/// Step 1 (see the module doc of `gc`), for the real run or a dry run,
/// once snapshot rows are `dropped`: collect what they alone used, plan
/// what happens to the packs that held it. Inside the transaction: nothing
/// is visible. Dead blobs are counted as they are found, not listed; their
/// ids are kept only if `ids` (`forget` and `rewrite` purge `damaged/` of
/// them; a prune freeing 440,000 blobs does not need 17 MB of ids).
struct Decided {
    dead_ids: HashSet<Id>,
    journals: BTreeMap<String, HashSet<SnapshotId>>,
    plan: PackPlan,
}

fn decide(
    step: &mut impl GcStep,
    dropped: Dropped,
    max_unused_percent: f64,
    ids: DeadIds,
    report: &mut GcReport,
) -> Result<Decided> {
    let Dropped { roots, journals } = dropped;
    let mut touched: HashSet<i64> = HashSet::new();
    let mut dead_ids: HashSet<Id> = HashSet::new();
    step.collect_each(roots, &mut |d| {
        report.blobs_deleted += 1;
        report.dead_bytes += d.bytes;
        touched.insert(d.pack_row);
        if ids == DeadIds::Keep {
            dead_ids.insert(d.id);
        }
    })?;
    let plan = PackPlan::new(step.pack_usage(&touched)?, max_unused_percent);
    report.packs_deleted = plan.delete.len() as u64;
    report.packs_rewritten = plan.rewrite.len() as u64;
    Ok(Decided {
        dead_ids,
        journals,
        plan,
    })
}

/// Whether gc keeps the ids of the blobs that died (to purge `damaged/`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum DeadIds {
    Keep,
    Drop,
}

/// What forgetting `forget` would do, decided on a read-only view: the
/// same first step as the real run, then nothing is written.
pub(super) fn preview(
    mut view: GcPreview<'_>,
    forget: Vec<SnapshotRow>,
    max_unused_percent: f64,
) -> Result<GcReport> {
    let mut dropped = Dropped::default();
    for s in &forget {
        dropped.add(s.id, view.delete_snapshot(&s.id)?);
    }
    let mut report = GcReport {
        dry_run: true,
        forgotten: forget,
        ..GcReport::default()
    };
    let d = decide(
        &mut view,
        dropped,
        max_unused_percent,
        DeadIds::Drop,
        &mut report,
    )?;
    report.bytes_freed = d.plan.estimated_bytes_freed();
    Ok(report)
}

/// Forget the snapshots `forget` inside `tx` and collect what they alone
/// used; repack, commit and delete old packs. Returns the report and, if
/// `ids` says keep, the ids of the blobs that died (empty otherwise).
pub(super) fn forget_and_collect(
    store: &Store,
    lock: &WriterLock,
    tx: GcTx<'_>,
    forget: Vec<SnapshotRow>,
    max_unused_percent: f64,
    ids: DeadIds,
    progress: &Progress,
) -> Result<(GcReport, HashSet<Id>)> {
    let mut dropped = Dropped::default();
    for s in &forget {
        dropped.add(s.id, tx.delete_snapshot(&s.id)?);
    }
    let mut report = GcReport {
        forgotten: forget,
        ..GcReport::default()
    };
    let dead = collect(
        store,
        lock,
        tx,
        dropped,
        max_unused_percent,
        ids,
        progress,
        &mut report,
    )?;
    Ok((report, dead))
}

/// Steps 1 (rest) to 4 once snapshot rows are `dropped` inside `tx`:
/// collect what they alone used, plan, repack, commit, drop their journal
/// records, delete old packs. Fills in `report`; returns the ids of the
/// blobs that died if `ids` says keep (empty otherwise).
#[allow(clippy::too_many_arguments)]
pub(super) fn collect(
    store: &Store,
    lock: &WriterLock,
    mut tx: GcTx<'_>,
    dropped: Dropped,
    max_unused_percent: f64,
    ids: DeadIds,
    progress: &Progress,
    report: &mut GcReport,
) -> Result<HashSet<Id>> {
    let Decided {
        dead_ids,
        journals,
        plan,
    } = decide(&mut tx, dropped, max_unused_percent, ids, report)?;
    crate::failpoint::crash_point("gc.collected");

    // Step 2: repack live records into new packs, verified on the way. On
    // a full disk the copies may not fit until the wholly dead packs are
    // gone: then commit without the rewrite, delete those, and repack in a
    // second transaction (the packs to rewrite meanwhile keep their dead
    // records, unreferenced, as any pack below the threshold does).
    let sealed = match repack(store, &tx, &plan.rewrite, progress) {
        Ok(sealed) => sealed,
        Err(e) if e.is_disk_full() && !plan.delete.is_empty() => {
            tracing::info!(
                "disk full while repacking: deleting {} wholly dead packs first",
                plan.delete.len()
            );
            // The packs sealed before the failure are orphans: step 4 of
            // the first commit removes them with the dead packs.
            commit_and_sweep(store, lock, tx, Vec::new(), &plan.delete, &journals, report)?;
            if report.pack_deletion_deferred {
                return Err(e); // a reader holds the old packs: no room made
            }
            let mut catalog = store.catalog_for_writing(lock)?;
            let tx = catalog.begin_gc()?;
            let rows: HashSet<i64> = plan.rewrite.iter().map(|u| u.row).collect();
            let usage = tx.pack_usage(&rows)?;
            let sealed = repack(store, &tx, &usage, progress)?;
            commit_and_sweep(store, lock, tx, sealed, &usage, &BTreeMap::new(), report)?;
            return Ok(dead_ids);
        }
        Err(e) => return Err(e),
    };
    let mut remove = plan.delete;
    remove.extend(plan.rewrite);
    commit_and_sweep(store, lock, tx, sealed, &remove, &journals, report)?;
    Ok(dead_ids)
}

/// Steps 3 and 4: point the blobs of `sealed` at their new packs, drop the
/// rows of the packs in `remove`, commit, rewrite the journals that held
/// forgotten snapshots, then delete the old pack files and orphans (unless
/// a reader still works from an older view). Adds to `report`.
fn commit_and_sweep(
    store: &Store,
    lock: &WriterLock,
    tx: GcTx<'_>,
    sealed: Vec<SealedPack>,
    remove: &[PackUsage],
    journals: &BTreeMap<String, HashSet<SnapshotId>>,
    report: &mut GcReport,
) -> Result<()> {
    // Each new pack's records are the blobs moved into it.
    let now = timespec::now_ns();
    for pack in &sealed {
        let row = tx.add_pack(pack, now)?;
        tx.move_blobs(row, &pack.records)?;
    }
    let mut old_files = Vec::new();
    for u in remove {
        tx.delete_pack(u.row)?;
        old_files.push((u.id, u.size_bytes));
    }
    report.packs_written += sealed.len() as u64;
    let known = {
        let mut k = tx.pack_ids()?;
        for p in &sealed {
            k.insert(p.id);
        }
        k
    };
    tx.mark_swept()?;
    let pending: Vec<String> = journals.keys().cloned().collect();
    tx.set_pending_journals(&pending)?;
    crate::failpoint::crash_point("gc.before_commit");
    tx.commit()?;
    crate::failpoint::crash_point("gc.committed");
    // The journals lose the forgotten snapshots after the catalog does; the
    // commit recorded which files to rewrite, so a crash here is finished
    // by the next writer (`Store::recover`), and `repair` never brings a
    // forgotten snapshot back.
    if !pending.is_empty() {
        journal::drop_records(store.dir(), &store.params(), journals)?;
        crate::failpoint::crash_point("gc.journal_rewritten");
        store.catalog_for_writing(lock)?.clear_pending_journals()?;
    }
    // Step 4: the catalog no longer references the old packs: delete them,
    // unless a reader (restore, ls) still works from an older catalog view;
    // then they stay as orphans, deleted by the next gc.
    let written: u64 = sealed.iter().map(|p| p.size_bytes).sum();
    let Some(_readers) = store.readers_exclusive_now()? else {
        report.pack_deletion_deferred = true;
        return Ok(());
    };
    let mut freed: u64 = 0;
    for (id, size) in old_files {
        store.packs().remove(&id)?;
        crate::failpoint::crash_point("gc.old_pack_removed");
        freed += size;
    }
    let (orphans, orphan_bytes) = remove_orphans(store, &known)?;
    report.orphan_packs_removed += orphans;
    report.bytes_freed += (freed + orphan_bytes).saturating_sub(written);
    Ok(())
}

/// Copy the live records of the packs `rewrite` into new packs: each read
/// (checked against the catalog, decompressed and re-hashed), stored again
/// with the same compression at the store's level (a blob written at
/// another level, or by another zstd build, may come out shorter or
/// longer: the catalog takes its new length), and sealed durably at the
/// store's pack size. The live blobs are streamed from the index, and the
/// new packs' own records say which blobs moved where (no map of them).
fn repack(
    store: &Store,
    tx: &GcTx<'_>,
    rewrite: &[PackUsage],
    progress: &Progress,
) -> Result<Vec<SealedPack>> {
    let mut writer = store.packs().writer();
    let mut sealed = Vec::new();
    let target = store.params().pack_target_bytes;
    progress.expect(
        rewrite.len() as u64,
        rewrite.iter().map(|u| u.size_bytes).sum(),
    );
    for u in rewrite {
        tx.for_each_live_blob(u.row, |b| {
            let expected = ExpectedRecord {
                id: b.id,
                kind: b.kind,
                stored_len: b.stored_len,
                raw_len: b.raw_len,
            };
            let (header, raw) = store.packs().read_record(&u.id, b.offset, &expected)?;
            let (header, payload) = pack::recompress(&header, raw, store.params().zstd_level);
            writer.append(header, &payload)?;
            if writer.len_bytes() >= target {
                sealed.push(writer.seal()?.expect("non-empty"));
                crate::failpoint::crash_point("gc.repack_sealed");
            }
            Ok(())
        })?;
        progress.add(1, u.size_bytes);
    }
    if let Some(p) = writer.seal()? {
        sealed.push(p);
        crate::failpoint::crash_point("gc.repack_sealed");
    }
    Ok(sealed)
}

/// Remove the pack files the catalog does not know, if no reader is active
/// (a reader's pinned view may still use a pack a gc has just dropped from
/// the catalog). Caller holds the exclusive lock.
pub(super) fn remove_orphans_now(store: &Store) -> Result<(u64, u64)> {
    let Some(_readers) = store.readers_exclusive_now()? else {
        return Ok((0, 0));
    };
    let known: HashSet<PackId> = store
        .catalog_for_reading()?
        .all_packs()?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    remove_orphans(store, &known)
}

/// Delete pack files the catalog does not know (left by a crash after a
/// pack's rename and before its commit): (files, bytes). Caller holds the
/// exclusive lock and the readers' lock exclusively.
fn remove_orphans(store: &Store, known: &HashSet<PackId>) -> Result<(u64, u64)> {
    let mut n = 0;
    let mut bytes = 0;
    for f in store.packs().list()? {
        let Some(id) = f.id else { continue };
        if !known.contains(&id) {
            bytes += f.size_bytes;
            store.packs().remove(&id)?;
            crate::failpoint::crash_point("gc.orphan_removed");
            n += 1;
        }
    }
    Ok((n, bytes))
}
