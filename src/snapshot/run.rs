//! One run, once its entry points (`mod.rs`) hold the lock: the sources
//! prewalked a chunk at a time in parallel, then taken in order (a
//! prewalked one only handed to the writer, any other walked whole), the
//! commit answers collected a chunk later, the run row, and the report of
//! a run whose store writes failed.

use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::catalog::CatalogPool;
use crate::error::{Error, ErrorKind, Result};
use crate::escape;
use crate::journal::RunJournal;
use crate::lock::WriterLock;
use crate::model::RunRow;
use crate::progress::Progress;
use crate::store::Store;
use crate::timespec;
use crate::walk::{self, Excludes};
use crate::workspace::WorkspaceName;

use super::pipeline::BlobSink;
use super::{
    prewalk, source, traverse, writer, RunReport, Scan, Source, WorkspaceOutcome, WorkspaceReport,
    GONE_AT_ONCE_PERCENT,
};

/// Sources prewalked together (see [`prewalk::prewalk`]): the results
/// held at once, a few hundred bytes each for an unchanged workspace.
const PREWALK_CHUNK: usize = 256;

/// Snapshot `sources` in order as one run (the entry points above hold
/// the lock): after `carried`, the outcomes of an earlier pass of the same
/// run that began at `run_started_ns`, if there was one.
#[allow(clippy::too_many_arguments)]
pub(super) fn snapshot_sources(
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
/// ([`prewalk::commit_prewalked`]), answered on `answers`.
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
        queued: writer.queued_bytes(),
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
                false => prewalk::prewalk(store, &pinned, excludes, src, base_of(src)),
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
                Some(walked) => prewalk::commit_prewalked(&sink, &writer, walked, progress, &reply)
                    .inspect(|_| asked += 1),
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
