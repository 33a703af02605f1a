//! Carrying out a gc in its crash order (see the module doc of `gc`):
//! forget snapshot rows and collect dead blobs in one catalog transaction,
//! repack, commit, then delete the old pack files and orphans.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::catalog::{GcTx, PackUsage};
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

/// Forget the snapshots `forget` inside `tx` and collect what they alone
/// used; unless `dry_run`, repack, commit and delete old packs. Returns the
/// report and the ids of the blobs that died.
pub(super) fn forget_and_collect(
    store: &Store,
    lock: &WriterLock,
    tx: GcTx<'_>,
    forget: Vec<SnapshotRow>,
    max_unused_percent: f64,
    dry_run: bool,
    progress: &Progress,
) -> Result<(GcReport, HashSet<Id>)> {
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    // Step 1: forget, collect, plan (inside the transaction: invisible).
    let mut roots = Vec::with_capacity(forget.len());
    let mut journals: BTreeMap<String, HashSet<SnapshotId>> = BTreeMap::new();
    for s in &forget {
        let (root, journal) = tx.delete_snapshot(&s.id)?;
        roots.push(root);
        if let Some(j) = journal {
            journals.entry(j).or_default().insert(s.id);
        }
    }
    report.forgotten = forget;
    let dead = tx.collect(roots)?;
    crate::failpoint::crash_point("gc.collected");
    report.blobs_deleted = dead.len() as u64;
    let dead_ids: HashSet<Id> = dead.iter().map(|d| d.id).collect();
    report.dead_bytes = dead.iter().map(|d| d.bytes).sum();
    let touched: HashSet<i64> = dead.iter().map(|d| d.pack_row).collect();
    let plan = PackPlan::new(tx.pack_usage(&touched)?, max_unused_percent);
    report.packs_deleted = plan.delete.len() as u64;
    report.packs_rewritten = plan.rewrite.len() as u64;
    if dry_run {
        report.bytes_freed = plan.estimated_bytes_freed();
        return Ok((report, dead_ids)); // tx dropped: rolled back
    }

    // Step 2: repack live records into new packs, verified on the way.
    let sealed = repack(store, &tx, &plan.rewrite, progress)?;

    // Step 3: one commit switches every reference.
    let now = timespec::now_ns();
    let mut all_moves = HashMap::new();
    for (pack, blobs) in &sealed {
        let row = tx.add_pack(pack, now)?;
        for (id, offset, stored_len) in blobs {
            all_moves.insert(*id, (row, *offset, *stored_len));
        }
    }
    tx.move_blobs(&all_moves)?;
    let mut old_files = Vec::new();
    for u in plan.delete.iter().chain(plan.rewrite.iter()) {
        tx.delete_pack(u.row)?;
        old_files.push((u.id, u.size_bytes));
    }
    report.packs_written = sealed.len() as u64;
    let known = {
        let mut k = tx.pack_ids()?;
        for (p, _) in &sealed {
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
        journal::drop_records(store.dir(), &store.params(), &journals)?;
        crate::failpoint::crash_point("gc.journal_rewritten");
        store.catalog_for_writing(lock)?.clear_pending_journals()?;
    }
    // Step 4: the catalog no longer references the old packs: delete them,
    // unless a reader (restore, ls) still works from an older catalog view;
    // then they stay as orphans, deleted by the next gc.
    let written: u64 = sealed.iter().map(|(p, _)| p.size_bytes).sum();
    let Some(_readers) = store.readers_exclusive_now()? else {
        report.pack_deletion_deferred = true;
        return Ok((report, dead_ids));
    };
    let mut freed: u64 = 0;
    for (id, size) in old_files {
        store.packs().remove(&id)?;
        crate::failpoint::crash_point("gc.old_pack_removed");
        freed += size;
    }
    let (orphans, orphan_bytes) = remove_orphans(store, &known)?;
    report.orphan_packs_removed = orphans;
    report.bytes_freed = (freed + orphan_bytes).saturating_sub(written);
    Ok((report, dead_ids))
}

/// New packs, each with the blobs moved into it (id, offset, stored
/// length: compressing again may not give the bytes it had).
type Repacked = Vec<(SealedPack, Vec<(Id, u64, u32)>)>;

/// Copy the live records of the packs `rewrite` into new packs: each read
/// (checked against the catalog, decompressed and re-hashed), stored again
/// with the same compression at the store's level (a blob written at
/// another level, or by another zstd build, may come out shorter or
/// longer: the catalog takes its new length), and sealed durably at the
/// store's pack size.
fn repack(
    store: &Store,
    tx: &GcTx<'_>,
    rewrite: &[PackUsage],
    progress: &Progress,
) -> Result<Repacked> {
    let mut writer = store.packs().writer();
    let mut moves: Vec<(Id, u64, u32)> = Vec::new();
    let mut sealed = Vec::new();
    let target = store.params().pack_target_bytes;
    progress.expect(
        rewrite.len() as u64,
        rewrite.iter().map(|u| u.size_bytes).sum(),
    );
    for u in rewrite {
        for b in tx.live_blobs(u.row)? {
            let expected = ExpectedRecord {
                id: b.id,
                kind: b.kind,
                stored_len: b.stored_len,
                raw_len: b.raw_len,
            };
            let (header, raw) = store.packs().read_record(&u.id, b.offset, &expected)?;
            let (header, payload) = pack::recompress(&header, raw, store.params().zstd_level);
            let offset = writer.append(header, &payload)?;
            moves.push((b.id, offset, header.stored_len));
            if writer.len_bytes() >= target {
                sealed.push((
                    writer.seal()?.expect("non-empty"),
                    std::mem::take(&mut moves),
                ));
                crate::failpoint::crash_point("gc.repack_sealed");
            }
        }
        progress.add(1, u.size_bytes);
    }
    if let Some(p) = writer.seal()? {
        sealed.push((p, std::mem::take(&mut moves)));
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
