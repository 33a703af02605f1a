//! `prune` and `forget`: drop snapshots, then collect what nothing references.
//!
//! Crash order (each step leaves a consistent store):
//! 1. open one catalog transaction; delete snapshot rows; collect dead blobs
//!    (see `catalog/gc.rs`); decide what happens to the packs that held
//!    them (`plan::PackPlan`); nothing is visible yet;
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
//!
//! `plan` decides (pure: what retention forgets, which packs are deleted or
//! rewritten; a dry run stops there), `execute` does the steps above.

mod execute;
mod plan;

use std::time::Duration;

use crate::damaged::{self, DamagedLeft};
use crate::error::Result;
use crate::lock::WriterLock;
use crate::model::SnapshotRow;
use crate::progress::Progress;
use crate::retention::KeepPolicy;
use crate::select::by_id_prefix_in;
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
    /// data (see `damaged.rs`); non-empty means the purge is
    /// incomplete.
    pub damaged_left: Vec<DamagedLeft>,
    /// Workspaces whose retention was held (see [`PruneOptions::held`])
    /// and that have snapshots, with how many were kept because of it.
    pub held: Vec<(WorkspaceName, u64)>,
}

/// Apply the retention policy per workspace, then collect garbage,
/// counting the packs it rewrites (and their bytes) into `progress`. The
/// caller holds the writer lock (`prune`, and `snapshot --prune` after its
/// run, under the same lock).
pub fn prune(
    store: &Store,
    opts: &PruneOptions,
    lock: &WriterLock,
    progress: &Progress,
) -> Result<GcReport> {
    // Orphan pack files first (packs of failed or crashed runs that no
    // catalog row knows): deleting them needs no catalog write, so on a
    // full disk they make room for the gc transaction itself.
    let early_orphans = if opts.dry_run {
        (0, 0)
    } else {
        execute::remove_orphans_now(store)?
    };
    let mut catalog = store.catalog_for_writing(lock)?;
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
    let mut plan = plan::ForgetPlan::default();
    let now_ns = timespec::now_ns();
    for ws in &names {
        // Retention needs only (row, time): read from the index; full rows
        // only for what is forgotten.
        let snaps = catalog.snapshot_times(ws)?;
        let held = opts.held.contains(ws);
        plan.add_workspace(ws, &snaps, &opts.policy, held, now_ns)?;
    }
    let forget = plan
        .forget
        .iter()
        .map(|row| catalog.snapshot_by_row(*row))
        .collect::<Result<Vec<_>>>()?;
    let tx = catalog.begin_gc()?;
    let (mut report, _) = execute::forget_and_collect(
        store,
        lock,
        tx,
        forget,
        opts.max_unused_percent,
        opts.dry_run,
        progress,
    )?;
    report.kept = plan.kept;
    report.held = plan.held;
    report.orphan_packs_removed += early_orphans.0;
    report.bytes_freed += early_orphans.1;
    Ok(report)
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
    let lock = store.lock(lock_wait, "forget")?;
    let mut catalog = store.catalog_for_writing(&lock)?;
    let mut rows: Vec<SnapshotRow> = Vec::new();
    for id in ids {
        let one = by_id_prefix_in(&catalog, id)?;
        if !rows.iter().any(|r| r.id == one.id) {
            rows.push(one);
        }
    }
    let tx = catalog.begin_gc()?;
    let (mut report, dead) =
        execute::forget_and_collect(store, &lock, tx, rows, 0.0, dry_run, &Progress::default())?;
    if !dry_run {
        // After the commit: the catalog says what is still used.
        let p = damaged::purge(store.dir(), &catalog, &dead)?;
        report.damaged_packs_rewritten = p.packs_rewritten;
        report.damaged_bytes_zeroed = p.bytes_zeroed;
        report.damaged_left = p.left;
    }
    Ok(report)
}
