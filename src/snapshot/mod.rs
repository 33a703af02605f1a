//! The snapshot engine: every workspace under a root into one store.
//!
//! Per workspace: walk the directory tree depth first, comparing each entry
//! with the parent snapshot's tree (the stat cache, see `reuse.rs`); read and
//! chunk only files that changed; build trees bottom-up; commit the snapshot.
//! Workspaces are handed to the writer one after another (each walked in
//! parallel inside, with rayon), so every blob a snapshot references was
//! handed to the writer before that snapshot's commit request: the writer's
//! FIFO order is the durability order (see `writer.rs` for the crash order).
//! Before that, a chunk of workspaces is prewalked in parallel: one that
//! needs no file read (unchanged, the common case of a tick) is walked
//! already and only hands the writer its few new trees and its row, so a
//! tick of many small workspaces uses every core and pays no per-workspace
//! round trip to the writer.
//!
//! Problems with workspace files (unreadable, vanished) are data: they are
//! recorded as skips in the report and the snapshot still commits. Problems
//! writing the store end the run with an error.
//!
//! Here: the options, the report and the run's entry points ([`run`],
//! [`run_sources_locked`], [`run_again_locked`]). `run.rs` takes the
//! sources in order and records the run; `source.rs` says what a run
//! snapshots; `prewalk.rs` walks unchanged workspaces ahead, in parallel;
//! `traverse.rs` walks one workspace; `pipeline.rs` reads, chunks and
//! compresses its files; `writer.rs` is the single writer of packs,
//! journal and catalog.

mod parent;
mod pipeline;
mod prewalk;
mod queued;
pub mod reuse;
mod run;
mod source;
mod traverse;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::lock::WriterLock;
use crate::model::{Skip, SnapshotRow};
use crate::progress::Progress;
use crate::store::Store;
use crate::timespec;
use crate::walk::{Excludes, Rejected};
use crate::workspace::WorkspaceName;

pub use source::{sources, Scan, Source};

/// What to snapshot, and how.
#[derive(Clone, Debug)]
pub struct SnapshotOptions {
    /// `$SCITEX_WORKSPACE_ROOT`: holds `<user>/<project>/` directories.
    pub root: PathBuf,
    /// Only these workspaces; empty means every workspace under `root`.
    pub workspaces: Vec<WorkspaceName>,
    /// Extra gitignore-syntax excludes, on top of `walk::DEFAULT_EXCLUDES`.
    pub excludes: Vec<String>,
    /// Recorded snapshot time; `None` means now.
    pub time_ns: Option<i64>,
    /// How long to wait for another run's lock.
    pub lock_wait: Duration,
    /// Read every file again: no stat cache, no unchanged subtree reused
    /// (`snapshot --reread`; heals a store whose data was lost or damaged
    /// while the live files still exist).
    pub reread: bool,
}

/// The outcome for one workspace.
#[derive(Debug)]
pub enum WorkspaceOutcome {
    Committed {
        row: Box<SnapshotRow>,
        skips: Vec<Skip>,
    },
    Failed {
        reason: String,
    },
}

/// One line of the run's report.
#[derive(Debug)]
pub struct WorkspaceReport {
    pub workspace: WorkspaceName,
    pub outcome: WorkspaceOutcome,
}

/// Workspaces of the previous full run gone from the root now, beyond
/// this percentage of them (and more than one), fail the run: more looks
/// like part of the root unmounted than like deleted projects.
pub const GONE_AT_ONCE_PERCENT: usize = 10;

/// Everything a run did.
#[derive(Debug)]
pub struct RunReport {
    pub started_ns: i64,
    pub finished_ns: i64,
    pub workspaces: Vec<WorkspaceReport>,
    /// Entries under the root that should be user or project directories
    /// and are not (symlinks, files): not followed, not snapshotted,
    /// counted as skipped entries of the run.
    pub rejected: Vec<Rejected>,
    /// User or project directories under the root that cannot be opened
    /// or listed: each is a failure of the run (counted with the failed
    /// workspaces).
    pub unlistable: Vec<Rejected>,
    /// The run covered every workspace under the root (recorded, so
    /// `status` judges this run and not a later run of named workspaces).
    pub covered_root: bool,
    /// Workspaces the previous full run snapshotted that are no longer
    /// under the root (only for a run that covered the root).
    pub gone: Vec<WorkspaceName>,
    /// When the previous full run finished and how many workspaces it
    /// snapshotted (what `gone` is measured against).
    pub previous_full_run: Option<(i64, usize)>,
    /// What failed the run besides its workspaces: no workspace under the
    /// root, or more than [`GONE_AT_ONCE_PERCENT`] of them gone at once.
    pub error: Option<String>,
    /// Writing the store failed (disk full, I/O error): the writer latched
    /// failed and the run stopped there. Workspaces whose snapshot had not
    /// committed are reported `Failed` and listed in `unwritten`; no run
    /// row was recorded. The store is consistent.
    pub store_error: Option<Error>,
    /// The sources not snapshotted because of `store_error`, in run order:
    /// a caller that frees space (`snapshot --prune`) may run them again
    /// with a fresh writer ([`run_again_locked`]).
    pub unwritten: Vec<Source>,
}

impl RunReport {
    /// True when every workspace committed with nothing missing, every
    /// entry under the root was a workspace directory that could be listed,
    /// and the run as a whole did not fail.
    pub fn all_ok(&self) -> bool {
        self.store_error.is_none()
            && self.rejected.is_empty()
            && self.unlistable.is_empty()
            && self.error.is_none()
            && self.workspaces.iter().all(|w| match &w.outcome {
                WorkspaceOutcome::Committed { skips, .. } => skips.iter().all(|s| !s.missing),
                WorkspaceOutcome::Failed { .. } => false,
            })
    }

    /// The workspaces whose retention must be held: those that could not be
    /// read (failed) or whose snapshot is missing entries (skipped). Their
    /// older snapshots may be the only good copy of what was not stored.
    /// Workspaces that failed only because the store could not be written
    /// (`unwritten`) are not held: their data was readable, their older
    /// snapshots are as good as ever, and holding them would make a full
    /// disk permanent (nothing could be pruned to make room).
    pub fn held(&self) -> Vec<WorkspaceName> {
        let unwritten: std::collections::HashSet<&WorkspaceName> =
            self.unwritten.iter().map(|s| &s.workspace).collect();
        let mut out: Vec<WorkspaceName> = self
            .workspaces
            .iter()
            .filter(|w| match &w.outcome {
                WorkspaceOutcome::Committed { skips, .. } => skips.iter().any(|s| s.missing),
                WorkspaceOutcome::Failed { .. } => !unwritten.contains(&w.workspace),
            })
            .map(|w| w.workspace.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The run's figures, as its summary gives them.
    pub fn totals(&self) -> RunTotals {
        let mut t = RunTotals {
            entries_skipped: self.rejected.len() as u64,
            failed: self.unlistable.len() as u64,
            ..RunTotals::default()
        };
        for w in &self.workspaces {
            match &w.outcome {
                WorkspaceOutcome::Committed { row, skips } => {
                    t.ok += 1;
                    t.files += row.stats.files;
                    t.size_bytes += row.stats.size_bytes;
                    t.bytes_added += row.stats.bytes_added;
                    t.entries_skipped += skips.iter().filter(|s| s.missing).count() as u64;
                }
                WorkspaceOutcome::Failed { .. } => t.failed += 1,
            }
        }
        t
    }
}

/// A run's totals over its workspaces ([`RunReport::totals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunTotals {
    /// Workspaces committed.
    pub ok: u64,
    /// Workspaces failed, and user or project directories that could not
    /// be listed (each counts as one).
    pub failed: u64,
    /// Entries missing from the snapshots, and entries under the root that
    /// are not workspace directories.
    pub entries_skipped: u64,
    pub files: u64,
    pub size_bytes: u64,
    pub bytes_added: u64,
}

/// Take the store's writer lock for a snapshot run, waiting up to `wait`;
/// a run that finds it held is told `snapshot started TIME`.
pub fn lock(store: &Store, wait: Duration) -> Result<WriterLock> {
    let note = format!(
        "snapshot started {}",
        timespec::format_local(timespec::now_ns())
    );
    store.lock(wait, &note)
}

/// Snapshot the workspaces of `opts` (every one under the root when none
/// is named) into `store`, taking its lock for the run.
pub fn run(store: &Store, opts: &SnapshotOptions) -> Result<RunReport> {
    let lock = lock(store, opts.lock_wait)?;
    let excludes = Excludes::new(&opts.excludes)?;
    let (sources, scan) = sources(opts)?;
    run::snapshot_sources(
        store,
        &sources,
        &scan,
        &excludes,
        &lock,
        &Progress::default(),
        Vec::new(),
        None,
    )
}

/// Snapshot each source in order, as one run, under a lock the caller
/// holds; `progress` counts files and their bytes as they are walked.
/// Sources of one workspace must come in time order, oldest first: each
/// snapshot's parent (the stat cache) is the one taken before it.
/// `scan` (from [`sources`]: entries under the root that are not
/// workspaces or cannot be listed, and whether the run covers the whole
/// root) is reported and counted in the run's record.
pub fn run_sources_locked(
    store: &Store,
    sources: &[Source],
    scan: &Scan,
    excludes: &[String],
    lock: &WriterLock,
    progress: &Progress,
) -> Result<RunReport> {
    let excludes = Excludes::new(excludes)?;
    run::snapshot_sources(
        store,
        sources,
        scan,
        &excludes,
        lock,
        progress,
        Vec::new(),
        None,
    )
}

/// After a run stopped on a store write failure and space was freed
/// (`snapshot --prune` pruned the other workspaces): snapshot the run's
/// `unwritten` sources with a fresh writer, new pack and journal files,
/// under the same lock. Nothing that failed is retried: the failed
/// writer's files are gone (its temporary pack removed, its journal
/// trimmed by [`Store::recover`], which this calls first), and every
/// new pack is verified by reading it back when sealed, as always. The
/// returned report covers the whole run: `first`'s outcomes for the
/// workspaces it finished, and the run row records them all.
pub fn run_again_locked(
    store: &Store,
    first: RunReport,
    excludes: &[String],
    lock: &WriterLock,
    progress: &Progress,
) -> Result<RunReport> {
    store.recover(lock)?;
    let excludes = Excludes::new(excludes)?;
    let again: std::collections::HashSet<&WorkspaceName> =
        first.unwritten.iter().map(|s| &s.workspace).collect();
    let carried: Vec<WorkspaceReport> = first
        .workspaces
        .into_iter()
        .filter(|w| !again.contains(&w.workspace))
        .collect();
    let sources = first.unwritten;
    // The first pass judged the root (gone, empty): this pass only takes
    // the sources left, and is not recorded as a run over the whole root.
    let scan = Scan {
        root: None,
        rejected: first.rejected,
        unlistable: first.unlistable,
    };
    run::snapshot_sources(
        store,
        &sources,
        &scan,
        &excludes,
        lock,
        progress,
        carried,
        Some(first.started_ns),
    )
}
