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
//! On a full disk step 2 may not fit until step 4 has freed the wholly
//! dead packs: then steps 3–4 run first without the rewrite (the packs to
//! rewrite keep their dead records, unreferenced, meanwhile), and steps
//! 2–4 again in a second transaction for the rewrite alone.
//!
//! Pack files unknown to the catalog are removed only under the exclusive
//! lock, which every writer holds, so no pack of a running snapshot is
//! mistaken for an orphan.
//!
//! `rewrite` uses the same steps with one change to step 1: the rewritten
//! snapshots' rows get their new trees in place (the trees indexed in the
//! same transaction) instead of being deleted, so a snapshot is either old
//! or new at every instant, never absent (`replace`).
//!
//! `plan` decides (pure: what retention forgets, which packs are deleted or
//! rewritten), `execute` does the steps above. A dry run
//! ([`prune_dry_run`], [`forget_dry_run`]) takes no lock and writes
//! nothing: step 1 on a read-only view of the catalog (see
//! `catalog::GcPreview`), then it stops.

mod execute;
mod plan;

use std::time::Duration;

use crate::catalog::{Catalog, PendingTree};
use crate::damaged;
pub use crate::damaged::DamagedLeft;
use crate::error::Result;
use crate::lock::WriterLock;
use crate::model::SnapshotRow;
use crate::pack::SealedPack;
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
    /// Snapshots left in the workspaces considered: by `prune`, those its
    /// policy keeps; by `forget`, the other snapshots of the workspaces
    /// the forgotten ones belonged to.
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

/// The retention decision over `catalog`: the snapshots to forget (full
/// rows) and the plan's counts.
fn retention(
    catalog: &Catalog,
    opts: &PruneOptions,
) -> Result<(Vec<SnapshotRow>, plan::ForgetPlan<i64>)> {
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
    let mut plan = plan::ForgetPlan::<i64>::default();
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
    Ok((forget, plan))
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
    let early_orphans = execute::remove_orphans_now(store)?;
    let mut catalog = store.catalog_for_writing(lock)?;
    let (forget, plan) = retention(&catalog, opts)?;
    let tx = catalog.begin_gc()?;
    let (mut report, _) = execute::forget_and_collect(
        store,
        lock,
        tx,
        forget,
        opts.max_unused_percent,
        execute::DeadIds::Drop,
        progress,
    )?;
    report.kept = plan.kept;
    report.held = plan.held;
    report.orphan_packs_removed += early_orphans.0;
    report.bytes_freed += early_orphans.1;
    Ok(report)
}

/// What [`prune`] would do, decided on a read-only view of the catalog
/// (one read transaction): no lock is taken and nothing is written, so it
/// answers while a writer runs or the store is being copied under `flock`.
/// Orphan pack files (removed by every real prune) are not counted.
pub fn prune_dry_run(store: &Store, opts: &PruneOptions) -> Result<GcReport> {
    let catalog = store.catalog_for_reading()?;
    let view = catalog.begin_gc_preview()?;
    // The retention decision reads through the same transaction as the
    // preview, so both see one state of the catalog.
    let (forget, plan) = retention(view.catalog(), opts)?;
    let mut report = execute::preview(view, forget, opts.max_unused_percent)?;
    report.kept = plan.kept;
    report.held = plan.held;
    Ok(report)
}

/// The snapshots `ids` (ids or unique prefixes) name, each once, and how
/// many other snapshots their workspaces keep.
fn chosen(catalog: &Catalog, ids: &[String]) -> Result<(Vec<SnapshotRow>, u64)> {
    let mut rows: Vec<SnapshotRow> = Vec::new();
    for id in ids {
        let one = by_id_prefix_in(catalog, id)?;
        if !rows.iter().any(|r| r.id == one.id) {
            rows.push(one);
        }
    }
    // Only the forgotten snapshots' workspaces are read (their retained
    // snapshots), never the whole table.
    let mut workspaces: Vec<&WorkspaceName> = rows.iter().map(|r| &r.workspace).collect();
    workspaces.sort();
    workspaces.dedup();
    let mut left = 0;
    for ws in workspaces {
        let chosen_here = rows.iter().filter(|r| &r.workspace == ws).count();
        left += (catalog.snapshot_times(ws)?.len() - chosen_here) as u64;
    }
    Ok((rows, left))
}

/// Forget exactly these snapshots (ids or unique prefixes), then collect
/// garbage, rewriting every pack that held their now-dead data so the bytes
/// are really gone from disk, in `packs/` and in `damaged/` (what cannot be
/// told apart there is listed in [`GcReport::damaged_left`]).
pub fn forget(store: &Store, ids: &[String], lock_wait: Duration) -> Result<GcReport> {
    let lock = store.lock(lock_wait, "forget")?;
    let mut catalog = store.catalog_for_writing(&lock)?;
    let (rows, left) = chosen(&catalog, ids)?;
    let tx = catalog.begin_gc()?;
    let (mut report, dead) = execute::forget_and_collect(
        store,
        &lock,
        tx,
        rows,
        0.0,
        execute::DeadIds::Keep,
        &Progress::default(),
    )?;
    report.kept = left;
    // After the commit: the catalog says what is still used.
    let p = damaged::purge(store.dir(), &catalog, &dead)?;
    report.damaged_packs_rewritten = p.packs_rewritten;
    report.damaged_bytes_zeroed = p.bytes_zeroed;
    report.damaged_left = p.left;
    Ok(report)
}

/// What [`forget`] would do, on a read-only view as [`prune_dry_run`].
pub fn forget_dry_run(store: &Store, ids: &[String]) -> Result<GcReport> {
    let catalog = store.catalog_for_reading()?;
    let view = catalog.begin_gc_preview()?;
    let (rows, left) = chosen(view.catalog(), ids)?;
    let mut report = execute::preview(view, rows, 0.0)?;
    report.kept = left;
    Ok(report)
}

/// Remove the pack files no catalog row names (what a crashed run or gc
/// left), if no reader holds a view: (files, bytes). The caller holds the
/// writer lock and has written no pack yet.
pub(crate) fn remove_orphans(store: &Store, _lock: &WriterLock) -> Result<(u64, u64)> {
    execute::remove_orphans_now(store)
}

/// A snapshot that gets another tree (`rewrite`): its row becomes `new`.
/// When the catalog has `new` already (a rewrite killed after journaling,
/// then `repair`: both came back), `old` is only forgotten.
#[derive(Clone, Debug)]
pub(crate) struct Replacement {
    pub old: SnapshotRow,
    pub new: SnapshotRow,
    pub new_exists: bool,
}

/// Trees written for the replacements, in sealed packs: children before
/// parents, each with every id it references.
#[derive(Debug, Default)]
pub(crate) struct NewTrees {
    pub packs: Vec<SealedPack>,
    pub trees: Vec<PendingTree>,
}

/// Give snapshots new trees, then collect garbage exactly as [`forget`]
/// does: in one transaction the new trees are indexed and each old row
/// becomes its new one (records of the new rows are in journal file
/// `journal` already: the caller wrote them first), then every pack holding
/// what only the old trees used is rewritten, the old records leave their
/// journals, and `damaged/` is purged. The caller holds the writer lock.
pub(crate) fn replace(
    store: &Store,
    lock: &WriterLock,
    new_trees: &NewTrees,
    replacements: &[Replacement],
    journal: &str,
    progress: &Progress,
) -> Result<GcReport> {
    let mut catalog = store.catalog_for_writing(lock)?;
    let tx = catalog.begin_gc()?;
    let now = timespec::now_ns();
    for p in &new_trees.packs {
        tx.add_pack(p, now)?;
    }
    tx.index_trees(&new_trees.trees)?;
    let mut dropped = execute::Dropped::default();
    for r in replacements {
        let was = if r.new_exists {
            tx.delete_snapshot(&r.old.id)?
        } else {
            tx.replace_snapshot(&r.old.id, &r.new, journal)?
        };
        dropped.add(r.old.id, was);
    }
    let mut report = GcReport::default();
    let dead = execute::collect(
        store,
        lock,
        tx,
        dropped,
        0.0,
        execute::DeadIds::Keep,
        progress,
        &mut report,
    )?;
    // After the commit, as `forget`: the catalog says what is still used.
    let p = damaged::purge(store.dir(), &catalog, &dead)?;
    report.damaged_packs_rewritten = p.packs_rewritten;
    report.damaged_bytes_zeroed = p.bytes_zeroed;
    report.damaged_left = p.left;
    Ok(report)
}
