//! `prune` and `forget`: drop snapshots, then collect what nothing references.
//!
//! Crash order (each step leaves a consistent store):
//! 1. open one catalog transaction; delete snapshot rows; collect dead blobs
//!    (see `catalog/gc.rs`); nothing is visible yet;
//! 2. repack: copy the live records of mostly-dead packs into new packs,
//!    each verified (decompressed and re-hashed) on the way, sealed and
//!    fsynced (a crash here leaves orphan packs: removed by the next gc);
//! 3. point moved blobs at the new packs, delete emptied pack rows, commit
//!    (a crash before this leaves the old state intact);
//! 4. only then delete the old pack files (a crash here leaves orphan
//!    files, which are not in the catalog: removed by the next gc).
//!
//! Pack files unknown to the catalog are removed only under the exclusive
//! lock, which every writer holds, so no pack of a running snapshot is
//! mistaken for an orphan.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::time::Duration;

use crate::catalog::GcTx;
use crate::damaged::{self, DamagedLeft};
use crate::durable;
use crate::error::{Error, Result};
use crate::id::{Id, PackId, SnapshotId};
use crate::journal;
use crate::lock::LockGuard;
use crate::model::SnapshotRow;
use crate::pack::format::{self, RecordHeader};
use crate::pack::{pack_path, PackWriter};
use crate::progress::Progress;
use crate::retention::{self, KeepPolicy};
use crate::select::by_id_prefix;
use crate::store::Store;
use crate::timespec;
use crate::workspace::WorkspaceName;

/// Default share of dead bytes above which a pack is rewritten.
pub const DEFAULT_MAX_UNUSED_PERCENT: f64 = 10.0;

/// What `prune` should do.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Only these workspaces; empty means every workspace in the store.
    pub workspaces: Vec<WorkspaceName>,
    pub policy: KeepPolicy,
    /// Rewrite packs whose dead share exceeds this (0–100).
    pub max_unused_percent: f64,
    /// Decide and estimate, change nothing.
    pub dry_run: bool,
    /// Workspaces whose retention is held: none of their snapshots is
    /// forgotten (`snapshot --prune` after a run that could not read them
    /// whole: their older snapshots may be the only good copy of what was
    /// skipped). Every other workspace is pruned as usual.
    pub held: Vec<WorkspaceName>,
}

/// What a prune or forget did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct GcReport {
    pub dry_run: bool,
    pub forgotten: Vec<SnapshotRow>,
    pub kept: u64,
    pub blobs_deleted: u64,
    /// Bytes of dead records removed from the index.
    pub dead_bytes: u64,
    pub packs_deleted: u64,
    pub packs_rewritten: u64,
    pub packs_written: u64,
    pub orphan_packs_removed: u64,
    /// Pack bytes freed on disk (estimated in a dry run).
    pub bytes_freed: u64,
    /// A reader was active, so old pack files were left for the next gc.
    pub pack_deletion_deferred: bool,
    /// `forget` only: damaged packs under `damaged/` rewritten with the
    /// forgotten (and other unused) data zeroed, and the bytes zeroed.
    pub damaged_packs_rewritten: u64,
    pub damaged_bytes_zeroed: u64,
    /// `forget` only: bytes under `damaged/` that may still hold forgotten
    /// data (see [`crate::damaged`]); non-empty means the purge is
    /// incomplete.
    pub damaged_left: Vec<DamagedLeft>,
    /// Workspaces whose retention was held (see [`PruneOptions::held`])
    /// and that have snapshots, with how many were kept because of it.
    pub held: Vec<(WorkspaceName, u64)>,
}

/// Apply the retention policy per workspace, then collect garbage.
pub fn prune(store: &Store, opts: &PruneOptions, lock_wait: Duration) -> Result<GcReport> {
    let lock = store.lock(lock_wait, "prune")?;
    prune_locked(store, opts, &lock)
}

/// [`prune`] for a caller that already holds the store lock
/// (`snapshot --prune`).
pub fn prune_locked(store: &Store, opts: &PruneOptions, lock: &LockGuard) -> Result<GcReport> {
    prune_locked_with_progress(store, opts, lock, &Progress::default())
}

/// [`prune_locked`], counting the packs it rewrites (and their bytes) into
/// `progress`.
pub fn prune_locked_with_progress(
    store: &Store,
    opts: &PruneOptions,
    _lock: &LockGuard,
    progress: &Progress,
) -> Result<GcReport> {
    // Orphan pack files first (packs of failed or crashed runs that no
    // catalog row knows): deleting them needs no catalog write, so on a
    // full disk they make room for the gc transaction itself.
    let early_orphans = if opts.dry_run {
        (0, 0)
    } else {
        remove_orphans_now(store)?
    };
    let mut catalog = store.catalog(true)?;
    // One workspace at a time: memory holds one workspace's snapshots and
    // the ones to forget, never the whole table (2.9 M rows at 10,000
    // workspaces × 288).
    let names = if opts.workspaces.is_empty() {
        catalog.workspaces()?
    } else {
        let mut w = opts.workspaces.clone();
        w.sort();
        w.dedup();
        w
    };
    let mut forget = Vec::new();
    let mut kept = 0;
    let mut held = Vec::new();
    // `keep-within` counts back from now (never from the newest snapshot,
    // which a wrong clock or `--time` can put in the future).
    let now_ns = timespec::now_ns();
    for ws in &names {
        // Retention needs only (row, time): read from the index; full rows
        // only for what is forgotten.
        let snaps = catalog.snapshot_times(ws)?;
        if opts.held.contains(ws) {
            if !snaps.is_empty() {
                kept += snaps.len() as u64;
                held.push((ws.clone(), snaps.len() as u64));
            }
            continue;
        }
        if snaps.is_empty() {
            return Err(Error::NotFound(format!("no snapshots of workspace {ws}")));
        }
        for d in retention::decide(&snaps, &opts.policy, now_ns) {
            if d.keep {
                kept += 1;
            } else {
                forget.push(catalog.snapshot_by_row(d.item)?);
            }
        }
    }
    let tx = catalog.begin_gc()?;
    let (mut report, _) = collect(
        store,
        tx,
        forget,
        opts.max_unused_percent,
        opts.dry_run,
        progress,
    )?;
    report.kept = kept;
    report.held = held;
    report.orphan_packs_removed += early_orphans.0;
    report.bytes_freed += early_orphans.1;
    Ok(report)
}

/// Remove the pack files the catalog does not know, if no reader is active
/// (a reader's pinned view may still use a pack a gc has just dropped from
/// the catalog). Caller holds the exclusive lock.
fn remove_orphans_now(store: &Store) -> Result<(u64, u64)> {
    let Some(_readers) = store.readers_exclusive_now()? else {
        return Ok((0, 0));
    };
    let known: HashSet<PackId> = store
        .catalog(false)?
        .all_packs()?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    remove_orphans(store, &known)
}

/// Forget exactly these snapshots (ids or unique prefixes), then collect
/// garbage, rewriting every pack that held their now-dead data so the bytes
/// are really gone from disk, in `packs/` and in `damaged/` (what cannot be
/// told apart there is listed in [`GcReport::damaged_left`]).
pub fn forget(
    store: &Store,
    ids: &[String],
    dry_run: bool,
    lock_wait: Duration,
) -> Result<GcReport> {
    let _lock = store.lock(lock_wait, "forget")?;
    let mut catalog = store.catalog(true)?;
    let all = catalog.snapshots(None)?;
    let mut rows: Vec<SnapshotRow> = Vec::new();
    for id in ids {
        let one = by_id_prefix(&all, id, "")?;
        if !rows.iter().any(|r| r.id == one.id) {
            rows.push(one.clone());
        }
    }
    let tx = catalog.begin_gc()?;
    let (mut report, dead) = collect(store, tx, rows, 0.0, dry_run, &Progress::default())?;
    if !dry_run {
        // After the commit: the catalog says what is still used.
        let p = damaged::purge(store.dir(), &catalog, &dead)?;
        report.damaged_packs_rewritten = p.packs_rewritten;
        report.damaged_bytes_zeroed = p.bytes_zeroed;
        report.damaged_left = p.left;
    }
    Ok(report)
}

fn collect(
    store: &Store,
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
    let usage = tx.pack_usage(&touched)?;
    let threshold = max_unused_percent.clamp(0.0, 100.0) / 100.0;
    let mut delete = Vec::new();
    let mut rewrite = Vec::new();
    for u in usage {
        let overhead = (format::HEADER_BYTES + format::FOOTER_BYTES) as u64;
        let unused = u.size_bytes.saturating_sub(u.live_bytes + overhead) as f64;
        if u.live_blobs == 0 {
            delete.push(u);
        } else if unused > threshold * u.size_bytes as f64 {
            rewrite.push(u);
        }
    }
    report.packs_deleted = delete.len() as u64;
    report.packs_rewritten = rewrite.len() as u64;
    if dry_run {
        report.bytes_freed = delete.iter().map(|u| u.size_bytes).sum::<u64>()
            + rewrite
                .iter()
                .map(|u| u.size_bytes.saturating_sub(u.live_bytes))
                .sum::<u64>();
        return Ok((report, dead_ids)); // tx dropped: rolled back
    }

    // Step 2: repack live records into new packs, verified on the way.
    let mut writer = PackWriter::new(&store.tmp_dir(), &store.packs_dir());
    let mut moves: Vec<(crate::id::Id, u64)> = Vec::new();
    let mut sealed = Vec::new();
    let target = store.params().pack_target_bytes;
    progress.expect(
        rewrite.len() as u64,
        rewrite.iter().map(|u| u.size_bytes).sum(),
    );
    for u in &rewrite {
        for b in tx.live_blobs(u.row)? {
            let (header, raw) = store.packs().read_blob(&u.id, b.offset, &b.id)?;
            if header.kind != b.kind
                || header.raw_len != b.raw_len
                || header.stored_len != b.stored_len
            {
                return Err(Error::corrupt(format!(
                    "repack: blob {} disagrees with the catalog",
                    b.id
                )));
            }
            // Re-store the verified bytes with the same compression.
            let (compression, payload) = match header.compression {
                format::Compression::None => (format::Compression::None, raw),
                format::Compression::Zstd => format::compress(&raw, store.params().zstd_level),
            };
            let h = RecordHeader {
                kind: header.kind,
                compression,
                raw_len: header.raw_len,
                stored_len: payload.len() as u32,
                id: b.id,
            };
            let offset = writer.append(h, &payload)?;
            moves.push((b.id, offset));
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
    // Step 3: one commit switches every reference.
    let now = timespec::now_ns();
    let mut all_moves = HashMap::new();
    for (pack, blobs) in &sealed {
        let row = tx.add_pack(pack, now)?;
        for (id, offset) in blobs {
            all_moves.insert(*id, (row, *offset));
        }
    }
    tx.move_blobs(&all_moves)?;
    let mut old_files = Vec::new();
    for u in delete.iter().chain(rewrite.iter()) {
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
    // by the next writer (`Store::lock`), and `repair` never brings a
    // forgotten snapshot back.
    if !pending.is_empty() {
        journal::drop_records(store.dir(), &store.params(), &journals)?;
        crate::failpoint::crash_point("gc.journal_rewritten");
        store.catalog(true)?.clear_pending_journals()?;
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
        remove_pack(store, &id)?;
        crate::failpoint::crash_point("gc.old_pack_removed");
        freed += size;
    }
    let (orphans, orphan_bytes) = remove_orphans(store, &known)?;
    report.orphan_packs_removed = orphans;
    report.bytes_freed = (freed + orphan_bytes).saturating_sub(written);
    Ok((report, dead_ids))
}

fn remove_pack(store: &Store, id: &PackId) -> Result<()> {
    let path = pack_path(&store.packs_dir(), id);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::store_write(&path, e)),
    }
    let dir = path.parent().expect("pack has a directory");
    durable::sync_dir(dir).map_err(|e| Error::store_write(dir, e))
}

/// Delete pack files the catalog does not know (left by a crash after a
/// pack's rename and before its commit). Caller holds the exclusive lock.
fn remove_orphans(store: &Store, known: &HashSet<PackId>) -> Result<(u64, u64)> {
    let packs = store.packs_dir();
    let mut n = 0;
    let mut bytes = 0;
    let Ok(fans) = fs::read_dir(&packs) else {
        return Ok((0, 0));
    };
    for fan in fans.flatten() {
        let Ok(files) = fs::read_dir(fan.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name();
            let Some(hex) = name.to_str().and_then(|s| s.strip_suffix(".pack")) else {
                continue;
            };
            let Ok(id) = crate::id::Id::from_hex(hex) else {
                continue;
            };
            if !known.contains(&PackId(id)) {
                bytes += f.metadata().map(|m| m.len()).unwrap_or(0);
                remove_pack(store, &PackId(id))?;
                crate::failpoint::crash_point("gc.orphan_removed");
                n += 1;
            }
        }
    }
    Ok((n, bytes))
}
