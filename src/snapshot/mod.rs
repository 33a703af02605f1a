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
//! [`run_sources_locked`], [`run_again_locked`]), which take the sources in
//! order and record the run. `source.rs` says what a run snapshots;
//! `traverse.rs` walks one workspace; `pipeline.rs` reads, chunks and
//! compresses its files; `writer.rs` is the single writer of packs, journal
//! and catalog.

mod parent;
mod pipeline;
pub mod reuse;
mod source;
mod traverse;
mod writer;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rayon::prelude::*;

use crate::catalog::CatalogPool;
use crate::error::{Error, ErrorKind, Result};
use crate::escape;
use crate::journal::RunJournal;
use crate::lock::WriterLock;
use crate::model::{RunRow, Skip, SnapshotRow};
use crate::progress::Progress;
use crate::store::Store;
use crate::timespec;
use crate::walk::{self, Excludes, Rejected};
use crate::workspace::WorkspaceName;

use pipeline::BlobSink;
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

/// Sources prewalked together (see [`traverse::prewalk`]): the results
/// held at once, a few hundred bytes each for an unchanged workspace.
const PREWALK_CHUNK: usize = 256;

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
    snapshot_sources(
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
    snapshot_sources(
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
    snapshot_sources(
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

/// Snapshot `sources` in order as one run (the entry points above hold
/// the lock): after `carried`, the outcomes of an earlier pass of the same
/// run that began at `run_started_ns`, if there was one.
#[allow(clippy::too_many_arguments)]
fn snapshot_sources(
    store: &Store,
    sources: &[Source],
    scan: &Scan,
    excludes: &Excludes,
    lock: &WriterLock,
    progress: &Progress,
    carried: Vec<WorkspaceReport>,
    run_started_ns: Option<i64>,
) -> Result<RunReport> {
    // Walks recurse once per directory level: the walk pool's threads
    // have stacks for trees nested tens of thousands deep.
    walk::pool().install(|| {
        run_in_pool(
            store,
            sources,
            scan,
            excludes,
            lock,
            progress,
            carried,
            run_started_ns,
        )
    })
}

/// The commit requests of prewalked workspaces of one chunk
/// ([`traverse::commit_prewalked`]), answered on `answers`.
struct Asked {
    answers: crossbeam_channel::Receiver<Result<()>>,
    count: usize,
    /// Index of the source after the chunk.
    end: usize,
}

/// Wait for the answers to `asked`: the first store write failure ends
/// the run after its chunk (`Some`: where the run stopped, and why; the
/// catalog then says which of the chunk's snapshots committed); any
/// other error is the run's.
fn answered(asked: Option<Asked>) -> Result<Option<(usize, Error)>> {
    let Some(asked) = asked else {
        return Ok(None);
    };
    for _ in 0..asked.count {
        match asked.answers.recv().unwrap_or_else(|_| Err(writer::gone())) {
            Ok(()) => {}
            Err(e) if is_store_write(&e) => return Ok(Some((asked.end, e))),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// True for the errors that end a run's writing but leave the store
/// consistent and the rest of the report meaningful: a failed write or
/// fsync (disk full, I/O error).
fn is_store_write(e: &Error) -> bool {
    e.kind() == ErrorKind::Write
}

/// [`snapshot_sources`], on the walk pool's threads.
#[allow(clippy::too_many_arguments)]
fn run_in_pool(
    store: &Store,
    sources: &[Source],
    scan: &Scan,
    excludes: &Excludes,
    lock: &WriterLock,
    progress: &Progress,
    carried: Vec<WorkspaceReport>,
    run_started_ns: Option<i64>,
) -> Result<RunReport> {
    let rejected = &scan.rejected[..];
    let started_ns = run_started_ns.unwrap_or_else(timespec::now_ns);
    let params = store.params();
    let pending: writer::Pending = Arc::new(Mutex::new(Default::default()));
    let writer = writer::Writer::spawn(
        store.catalog_for_writing(lock)?,
        store.packs().writer(),
        // Named by this writer's own start: a second pass of the run
        // (`run_again_locked`) must not reuse the first writer's file name.
        RunJournal::new(store.dir(), params, timespec::now_ns()),
        pending.clone(),
        params.pack_target_bytes,
    );
    let pool = CatalogPool::new(&store.catalog_path());
    let (gone, previous_full_run) = match &scan.root {
        Some(root) => source::gone_since_previous_full_run(&pool, sources, &scan.unlistable, root)?,
        None => (Vec::new(), None),
    };
    let mut errors = Vec::new();
    if let (Some(root), true) = (&scan.root, sources.is_empty()) {
        errors.push(format!(
            "no workspace under the root {}: is it mounted?",
            escape::path(root)
        ));
    }
    if let Some((at, before)) = previous_full_run {
        if gone.len() > 1 && gone.len() * 100 > before * GONE_AT_ONCE_PERCENT {
            errors.push(format!(
                "{} of the {before} workspaces of the previous full run ({}) are no longer under the root (more than {GONE_AT_ONCE_PERCENT}%): is part of it unmounted?",
                gone.len(),
                timespec::format_local(at)
            ));
        }
    }
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    let sink = BlobSink {
        store,
        lookup: &pool,
        pending: &pending,
        tx: writer.sender(),
        zstd_level: params.zstd_level,
    };
    let mut reports = carried;
    let first_new = reports.len();
    // Workspaces with a snapshot in the writer's group commit queue.
    let mut queued = std::collections::BTreeSet::new();
    let mut failed_at: Option<(usize, Error)> = None;
    // The run's base directory (the root), opened once for all sources
    // below it.
    let base = sources.first().and_then(|s| s.open_base().ok());
    // Prewalks read only what earlier runs committed (the parents of
    // workspaces taken once in this run): through views pinned for a chunk
    // (longer, they would hold back the writer's checkpoints).
    let pinned = CatalogPool::pinned(&store.catalog_path());
    let base_of = |src: &Source| {
        base.as_ref()
            .filter(|_| sources.first().is_some_and(|f| f.base == src.base))
    };
    // A workspace taken twice (an import) walks against its queued
    // parent: only the full walk, which flushes the queue first, does that.
    let mut seen = std::collections::HashSet::new();
    let twice: std::collections::HashSet<&WorkspaceName> = sources
        .iter()
        .filter(|s| !seen.insert(&s.workspace))
        .map(|s| &s.workspace)
        .collect();
    let mut previous: Option<Asked> = None;
    'run: for (c, chunk) in sources.chunks(PREWALK_CHUNK).enumerate() {
        // Prewalk the chunk's workspaces in parallel; those that need no
        // file read (the unchanged ones, most of a tick) are then only
        // handed to the writer, in source order, their commit requests
        // answered together at the end of the chunk.
        let prewalked: Vec<Option<traverse::Walked>> = chunk
            .par_iter()
            .map(|src| match twice.contains(&src.workspace) {
                true => None,
                false => traverse::prewalk(store, &pinned, excludes, src, base_of(src)),
            })
            .collect();
        pinned.unpin()?;
        // The previous chunk's commit requests were answered meanwhile
        // (the writer wrote its groups while this chunk was prewalked).
        if let Some((at, e)) = answered(previous.take())? {
            failed_at = Some((at, e));
            break 'run;
        }
        let (reply, answers) = crossbeam_channel::unbounded();
        let mut asked = 0;
        for (k, (src, pre)) in chunk.iter().zip(prewalked).enumerate() {
            let i = c * PREWALK_CHUNK + k;
            if queued.contains(&src.workspace) {
                // A second source for one workspace (import): its parent is
                // queued; commit it so its trees can be read.
                if let Err(e) = writer.flush() {
                    if !is_store_write(&e) {
                        return Err(e);
                    }
                    failed_at = Some((i, e));
                    break 'run;
                }
                queued.clear();
            }
            let outcome = match pre {
                Some(walked) => {
                    traverse::commit_prewalked(&sink, &writer, walked, progress, &reply)
                        .inspect(|_| asked += 1)
                }
                None => traverse::snapshot_workspace(
                    store,
                    &pool,
                    &sink,
                    &writer,
                    excludes,
                    src,
                    base_of(src),
                    progress,
                ),
            };
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) if is_store_write(&e) => {
                    failed_at = Some((i, e));
                    break 'run;
                }
                Err(e) => return Err(e),
            };
            if matches!(outcome, WorkspaceOutcome::Committed { .. }) {
                queued.insert(src.workspace.clone());
            }
            reports.push(WorkspaceReport {
                workspace: src.workspace.clone(),
                outcome,
            });
        }
        previous = Some(Asked {
            answers,
            count: asked,
            end: c * PREWALK_CHUNK + chunk.len(),
        });
    }
    if failed_at.is_none() {
        failed_at = answered(previous.take())?;
    }
    drop(pinned);
    drop(sink);
    if let Some((at, e)) = failed_at {
        drop(writer); // latched failed: nothing more is written
        return stopped_on_write_error(store, sources, scan, reports, first_new, at, e, started_ns);
    }
    let finished_ns = timespec::now_ns();
    let mut run = RunRow {
        started_ns,
        finished_ns,
        entries_skipped: rejected.len() as u64,
        // A failed user directory counts as one failed workspace: what it
        // holds is unknown.
        workspaces_failed: scan.unlistable.len() as u64,
        error: error.clone(),
        covered_root: scan.root.as_deref().map(crate::catalog::full_run_key),
        ..RunRow::default()
    };
    for r in &reports {
        match &r.outcome {
            WorkspaceOutcome::Committed { skips, .. } => {
                run.workspaces_ok += 1;
                run.entries_skipped += skips.iter().filter(|s| s.missing).count() as u64;
            }
            WorkspaceOutcome::Failed { .. } => run.workspaces_failed += 1,
        }
    }
    let refused = match writer.finish(run) {
        Ok(refused) => refused,
        Err(e) if is_store_write(&e) => {
            let at = sources.len();
            return stopped_on_write_error(
                store, sources, scan, reports, first_new, at, e, started_ns,
            );
        }
        Err(e) => return Err(e),
    };
    // A snapshot the catalog refused (it references a blob the store lacks)
    // failed after all; the rest of its group committed.
    for refused in refused {
        if let Some(r) = reports.iter_mut().find(|r| {
            matches!(&r.outcome, WorkspaceOutcome::Committed { row, .. } if row.id == refused.row.id)
        }) {
            r.outcome = WorkspaceOutcome::Failed {
                reason: refused.reason,
            };
        }
    }
    // Damaged snapshots of the workspaces just taken may be whole again:
    // those runs had no damaged parent, so they stored what was lost.
    let taken: std::collections::HashSet<&WorkspaceName> = reports
        .iter()
        .filter(|r| matches!(r.outcome, WorkspaceOutcome::Committed { .. }))
        .map(|r| &r.workspace)
        .collect();
    let mut catalog = store.catalog_for_writing(lock)?;
    if catalog.has_damaged()? {
        for s in crate::heal::damaged_snapshots(store, &mut catalog, &taken)? {
            tracing::info!(
                "{}: snapshot {} is whole again (its lost data was stored again)",
                s.workspace,
                s.id.0.short()
            );
        }
    }
    Ok(RunReport {
        started_ns,
        finished_ns,
        workspaces: reports,
        rejected: rejected.to_vec(),
        unlistable: scan.unlistable.clone(),
        covered_root: scan.root.is_some(),
        gone,
        previous_full_run,
        error,
        store_error: None,
        unwritten: Vec::new(),
    })
}

/// The report of a run whose writer failed while `sources[at]` was being
/// taken (`at == sources.len()`: at the final commit). `reports[first_new..]`
/// are this pass's outcomes for `sources[..at]` in order. A snapshot the
/// writer had only queued never committed (group commits are all or
/// nothing): the catalog says which did.
#[allow(clippy::too_many_arguments)]
fn stopped_on_write_error(
    store: &Store,
    sources: &[Source],
    scan: &Scan,
    mut reports: Vec<WorkspaceReport>,
    first_new: usize,
    at: usize,
    error: Error,
    started_ns: i64,
) -> Result<RunReport> {
    tracing::debug!("writing the store failed; the run stops: {error}");
    let catalog = store.catalog_for_reading()?;
    let mut unwritten = Vec::new();
    for (r, src) in reports[first_new..].iter_mut().zip(sources) {
        if let WorkspaceOutcome::Committed { row, .. } = &r.outcome {
            if !catalog.has_snapshot(&row.id)? {
                r.outcome = WorkspaceOutcome::Failed {
                    reason: format!("not committed: writing the store failed ({error})"),
                };
                unwritten.push(src.clone());
            }
        }
    }
    for (i, src) in sources.iter().enumerate().skip(at) {
        let reason = if i == at {
            format!("not snapshotted: writing the store failed ({error})")
        } else {
            "not snapshotted: writing the store failed earlier in this run".to_string()
        };
        reports.push(WorkspaceReport {
            workspace: src.workspace.clone(),
            outcome: WorkspaceOutcome::Failed { reason },
        });
        unwritten.push(src.clone());
    }
    Ok(RunReport {
        started_ns,
        finished_ns: timespec::now_ns(),
        workspaces: reports,
        rejected: scan.rejected.clone(),
        unlistable: scan.unlistable.clone(),
        // Not recorded as a run at all (no run row): nothing to judge.
        covered_root: false,
        gone: Vec::new(),
        previous_full_run: None,
        error: None,
        store_error: Some(error),
        unwritten,
    })
}
