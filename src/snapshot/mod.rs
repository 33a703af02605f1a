//! The snapshot engine: every workspace under a root into one store.
//!
//! Per workspace: walk the directory tree depth first, comparing each entry
//! with the parent snapshot's tree (the stat cache, see `reuse.rs`); read and
//! chunk only files that changed; build trees bottom-up; commit the snapshot.
//! Workspaces are taken one after another (each in parallel inside, with
//! rayon), so every blob a snapshot references was handed to the writer
//! before that snapshot's commit request: the writer's FIFO order is the
//! durability order (see `writer.rs` for the crash order).
//!
//! Problems with workspace files (unreadable, vanished) are data: they are
//! recorded as skips in the report and the snapshot still commits. Problems
//! writing the store end the run with an error.

mod pipeline;
pub mod reuse;
mod writer;

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rayon::prelude::*;

use crate::catalog::{CatalogPool, RunRow, SnapshotRow, SnapshotStats};
use crate::chunker::ChunkerParams;
use crate::chunklist;
use crate::codec::Writer as Enc;
use crate::dirfd::{self, Dir, Kind, Stat};
use crate::error::{Error, ErrorKind, Result};
use crate::escape;
use crate::id::ChunkId;
use crate::id::{Id, SnapshotId, TreeId};
use crate::journal::RunJournal;
use crate::lock::WriterLock;
use crate::pack::BlobKind;
use crate::progress::Progress;
use crate::store::Store;
use crate::timespec;
use crate::tree::{Entry, EntryKind, FileContent, Tree, FLAG_CHANGED_DURING_READ};
use crate::walk::{self, Excludes, Rejected};
use crate::workspace::WorkspaceName;

use pipeline::{BlobSink, Counters};
use reuse::StatKey;

/// What to snapshot, and how.
#[derive(Clone, Debug)]
pub struct SnapshotOptions {
    /// `$SCITEX_WORKSPACE_ROOT`: holds `<user>/<project>/` directories.
    pub root: PathBuf,
    /// Only these workspaces; empty means every workspace under `root`.
    pub workspaces: Vec<WorkspaceName>,
    /// Extra gitignore-syntax excludes, on top of [`walk::DEFAULT_EXCLUDES`].
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

/// An entry that could not be stored as it is (unreadable, vanished,
/// changed while read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// Path relative to the workspace root.
    pub path: Vec<u8>,
    pub reason: String,
    /// True when the entry is missing from the snapshot; false when it was
    /// stored but is worth a warning (changed while being read).
    pub missing: bool,
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
}

/// Snapshot the workspaces of `opts` into `store`, taking its lock.
pub fn run(store: &Store, opts: &SnapshotOptions) -> Result<RunReport> {
    let note = format!(
        "snapshot started {}",
        timespec::format_local(timespec::now_ns())
    );
    let lock = store.lock(opts.lock_wait, &note)?;
    run_locked(store, opts, &lock)
}

/// [`run`] for a caller that already holds the store lock.
pub fn run_locked(store: &Store, opts: &SnapshotOptions, lock: &WriterLock) -> Result<RunReport> {
    let excludes = Excludes::new(&opts.excludes)?;
    let (sources, scan) = sources(opts)?;
    run_inner(
        store,
        &sources,
        &scan,
        &excludes,
        lock,
        &Progress::default(),
    )
}

/// One directory to snapshot as a workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub workspace: WorkspaceName,
    /// Where the walk starts: a directory the admin named (`--root`, an
    /// import's old backup root), opened by path.
    pub base: PathBuf,
    /// The components below `base` whose contents become the snapshot
    /// (`[user, project]` for a normal run, `[name]` for an old rsync copy),
    /// each opened with `O_NOFOLLOW`: a symlink there is refused.
    pub below: Vec<Vec<u8>>,
    /// Recorded snapshot time; `None` means when its walk started.
    pub time_ns: Option<i64>,
    /// Take no parent snapshot (no stat cache): read every file.
    pub reread: bool,
}

impl Source {
    /// `<root>/<user>/<project>` of a normal run.
    pub fn workspace(root: &Path, ws: WorkspaceName, time_ns: Option<i64>) -> Source {
        Source {
            base: root.to_path_buf(),
            below: vec![ws.user.clone(), ws.project.clone()],
            workspace: ws,
            time_ns,
            reread: false,
        }
    }

    /// The directory as a path, for messages only (never opened by it).
    pub fn dir(&self) -> PathBuf {
        self.below
            .iter()
            .fold(self.base.clone(), |p, c| p.join(OsStr::from_bytes(c)))
    }

    /// Open the directory: `base` by path, each component below it with
    /// `O_NOFOLLOW`. `Err` says, escaped, why it is not a directory.
    fn open(&self) -> std::result::Result<Dir, String> {
        let mut dir = Dir::open_path(&self.base, true)
            .map_err(|e| format!("{}: {e}", escape::path(&self.base)))?;
        let mut at = self.base.clone();
        for c in &self.below {
            at.push(OsStr::from_bytes(c));
            dir = walk::open_workspace_dir(&dir, c)
                .map_err(|why| format!("{} {why}", escape::path(&at)))?;
        }
        Ok(dir)
    }
}

/// What a run found under the root besides its workspaces.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// The root, when the run covers every workspace under it; `None` for
    /// a run of named workspaces or an import.
    pub root: Option<PathBuf>,
    /// Entries that are not workspace directories (see [`RunReport::rejected`]).
    pub rejected: Vec<Rejected>,
    /// Directories that cannot be listed (see [`RunReport::unlistable`]).
    pub unlistable: Vec<Rejected>,
}

/// What [`run`] would snapshot: the named workspaces (or every one under
/// the root), each from `<root>/<user>/<project>` at `opts.time_ns`; and
/// what else the root holds (a [`Scan`] with the root set when no
/// workspace was named).
pub fn sources(opts: &SnapshotOptions) -> Result<(Vec<Source>, Scan)> {
    let (workspaces, scan) = if opts.workspaces.is_empty() {
        let found = walk::discover(&opts.root)?;
        (
            found.workspaces,
            Scan {
                root: Some(opts.root.clone()),
                rejected: found.rejected,
                unlistable: found.unlistable,
            },
        )
    } else {
        (opts.workspaces.clone(), Scan::default())
    };
    let sources = workspaces
        .into_iter()
        .map(|ws| Source {
            reread: opts.reread,
            ..Source::workspace(&opts.root, ws, opts.time_ns)
        })
        .collect();
    Ok((sources, scan))
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
    run_inner(store, sources, scan, &excludes, lock, progress)
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
    walk::pool().install(|| {
        run_in_pool(
            store,
            &sources,
            &scan,
            &excludes,
            lock,
            progress,
            carried,
            Some(first.started_ns),
        )
    })
}

fn run_inner(
    store: &Store,
    sources: &[Source],
    scan: &Scan,
    excludes: &Excludes,
    lock: &WriterLock,
    progress: &Progress,
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
            Vec::new(),
            None,
        )
    })
}

/// When the previous full run finished, and how many workspaces it
/// snapshotted.
type PreviousFullRun = (i64, usize);

/// For a run over the whole of `root`: the workspaces the previous full
/// run of that root snapshotted that are not among `sources` now (those under an
/// unlistable directory are failed, not gone), and when that run finished
/// and how many it snapshotted.
fn gone_since_previous_full_run(
    pool: &CatalogPool,
    sources: &[Source],
    unlistable: &[Rejected],
    root: &Path,
) -> Result<(Vec<WorkspaceName>, Option<PreviousFullRun>)> {
    let key = crate::catalog::full_run_key(root);
    let previous = pool.with(|c| match c.last_full_run(&key)? {
        Some(run) => Ok(Some((
            run.finished_ns,
            c.workspaces_started_between(run.started_ns, run.finished_ns)?,
        ))),
        None => Ok(None),
    })?;
    let Some((finished_ns, before)) = previous else {
        return Ok((Vec::new(), None));
    };
    let now: std::collections::HashSet<&WorkspaceName> =
        sources.iter().map(|s| &s.workspace).collect();
    let failed = |w: &WorkspaceName| {
        let full = [&w.user[..], b"/", &w.project[..]].concat();
        unlistable
            .iter()
            .any(|u| u.path == w.user || u.path == full)
    };
    let gone = before
        .iter()
        .filter(|w| !now.contains(w) && !failed(w))
        .cloned()
        .collect();
    Ok((gone, Some((finished_ns, before.len()))))
}

/// True for the errors that end a run's writing but leave the store
/// consistent and the rest of the report meaningful: a failed write or
/// fsync (disk full, I/O error).
fn is_store_write(e: &Error) -> bool {
    e.kind() == ErrorKind::Write
}

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
        Some(root) => gone_since_previous_full_run(&pool, sources, &scan.unlistable, root)?,
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
    for (i, src) in sources.iter().enumerate() {
        if queued.contains(&src.workspace) {
            // A second source for one workspace (import): its parent is
            // queued; commit it so its trees can be read.
            if let Err(e) = writer.flush() {
                if !is_store_write(&e) {
                    return Err(e);
                }
                failed_at = Some((i, e));
                break;
            }
            queued.clear();
        }
        let outcome =
            match snapshot_workspace(store, &pool, &sink, &writer, excludes, src, progress) {
                Ok(o) => o,
                Err(e) if is_store_write(&e) => {
                    failed_at = Some((i, e));
                    break;
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

fn snapshot_workspace(
    store: &Store,
    pool: &CatalogPool,
    sink: &BlobSink<'_>,
    writer: &writer::Writer,
    excludes: &Excludes,
    src: &Source,
    progress: &Progress,
) -> Result<WorkspaceOutcome> {
    let ws = &src.workspace;
    let failed = |reason: String| Ok(WorkspaceOutcome::Failed { reason });
    let dir = match src.open() {
        Ok(d) => d,
        Err(why) => return failed(why),
    };
    let last = pool.with(|c| c.last_taken(ws))?;
    let previous_files = last.as_ref().map_or(0, |p| p.stats.files);
    let parent = match src.reread {
        true => None,
        false => last,
    };
    tracing::debug!(
        "{ws}: walking {}{}",
        escape::path(&src.dir()),
        parent.as_ref().map_or(String::new(), |p| format!(
            ", parent snapshot {}",
            p.id.0.short()
        ))
    );
    let started_ns = timespec::now_ns();
    let ctx = WalkCtx {
        store,
        pool,
        sink,
        excludes,
        params: store.params().chunker,
        progress,
        parent_started_ns: parent.as_ref().map_or(i64::MIN, |p| p.started_ns),
        counters: Counters::default(),
        stats: Stats::default(),
        skips: Mutex::new(Vec::new()),
    };
    let root = match snap_dir(&ctx, dir, b"", parent.as_ref().map(|p| p.root), 0) {
        Ok((Some(root), _)) => root,
        Ok((None, _)) => {
            writer.discard()?;
            let skips = ctx.skips.into_inner().expect("skips poisoned");
            let why = skips
                .first()
                .map_or("unreadable".into(), |s| s.reason.clone());
            return failed(format!("{}: {why}", escape::path(&src.dir())));
        }
        Err(e) => {
            let _ = writer.discard();
            return Err(e);
        }
    };
    let mut skips = ctx.skips.into_inner().expect("skips poisoned");
    skips.sort_by(|a, b| a.path.cmp(&b.path));
    let s = &ctx.stats;
    let files = s.files.load(Ordering::Relaxed);
    if files == 0 && previous_files > 0 {
        // Everything deleted or excluded at once (`--exclude '*'`, a wiped
        // project): committed as it is, but the whole workspace counts as
        // one entry missing, so the run says so and exits 1.
        skips.insert(
            0,
            Skip {
                path: b".".to_vec(),
                reason: format!(
                    "no files left (the previous snapshot had {previous_files}; {} entries excluded now): deleted, or everything excluded?",
                    s.excluded.load(Ordering::Relaxed)
                ),
                missing: true,
            },
        );
    }
    let time_ns = src.time_ns.unwrap_or(started_ns);
    let stats = SnapshotStats {
        files,
        dirs: s.dirs.load(Ordering::Relaxed),
        symlinks: s.symlinks.load(Ordering::Relaxed),
        size_bytes: s.size_bytes.load(Ordering::Relaxed),
        bytes_added: ctx.counters.bytes_added.load(Ordering::Relaxed),
        bytes_read: ctx.counters.bytes_read.load(Ordering::Relaxed),
        skipped: skips.iter().filter(|k| k.missing).count() as u64,
        special: s.special.load(Ordering::Relaxed),
        excluded: s.excluded.load(Ordering::Relaxed),
    };
    let row = SnapshotRow {
        id: snapshot_id(ws, time_ns, started_ns, &root),
        workspace: ws.clone(),
        time_ns,
        started_ns,
        finished_ns: timespec::now_ns(),
        root,
        stats,
        damaged: false,
    };
    let skip_rows = skips
        .iter()
        .map(|k| (k.path.clone(), k.reason.clone()))
        .collect();
    writer.commit(row.clone(), skip_rows)?;
    Ok(WorkspaceOutcome::Committed {
        row: Box::new(row),
        skips,
    })
}

/// The snapshot's id: BLAKE3 of its identifying fields.
pub(crate) fn snapshot_id(
    ws: &WorkspaceName,
    time_ns: i64,
    started_ns: i64,
    root: &TreeId,
) -> SnapshotId {
    let mut e = Enc::default();
    e.bytes(b"wsnap snapshot v1\0");
    e.u32(ws.user.len() as u32);
    e.bytes(&ws.user);
    e.u32(ws.project.len() as u32);
    e.bytes(&ws.project);
    e.i64(time_ns);
    e.i64(started_ns);
    e.id(&root.0);
    SnapshotId(Id::of(&e.buf))
}

#[derive(Default)]
struct Stats {
    files: AtomicU64,
    dirs: AtomicU64,
    symlinks: AtomicU64,
    size_bytes: AtomicU64,
    special: AtomicU64,
    excluded: AtomicU64,
}

struct WalkCtx<'a> {
    store: &'a Store,
    pool: &'a CatalogPool,
    sink: &'a BlobSink<'a>,
    excludes: &'a Excludes,
    params: ChunkerParams,
    progress: &'a Progress,
    parent_started_ns: i64,
    counters: Counters,
    stats: Stats,
    skips: Mutex<Vec<Skip>>,
}

impl WalkCtx<'_> {
    fn skip(&self, rel: &[u8], reason: String, missing: bool) {
        self.skips.lock().expect("skips poisoned").push(Skip {
            path: rel.to_vec(),
            reason,
            missing,
        });
    }
}

fn entry_from(name: Vec<u8>, st: &Stat, size: u64, kind: EntryKind) -> Entry {
    Entry {
        name,
        flags: 0,
        mode: st.perm(),
        mtime_ns: st.mtime_ns,
        ctime_ns: st.ctime_ns,
        inode: st.ino,
        uid: st.uid,
        gid: st.gid,
        size,
        kind,
    }
}

/// Snapshot one directory, open as `dir`, `depth` levels below the
/// workspace root; its tree is `None` when it could not be listed (recorded
/// as a skip). `Err` only for store failures.
///
/// Also gives back the handle: below [`walk::HELD_LEVELS`] a level lets go
/// of its handle while a subdirectory is walked and takes it back from the
/// subdirectory's `..` (see [`snap_deep`]). `None` when that failed.
fn snap_dir(
    ctx: &WalkCtx<'_>,
    dir: Dir,
    rel: &[u8],
    parent: Option<TreeId>,
    depth: usize,
) -> Result<(Option<TreeId>, Option<Dir>)> {
    // A parent tree we cannot read only costs us the stat cache.
    let parent_tree = parent.and_then(|id| ctx.pool.with(|c| ctx.store.read_tree(c, &id)).ok());
    let mut names = match dir.names() {
        Ok(names) => names,
        Err(e) => {
            ctx.skip(rel, format!("cannot be listed: {e}"), true);
            return Ok((None, Some(dir)));
        }
    };
    names.sort_unstable();
    let (entries, dir) = if depth < walk::HELD_LEVELS {
        let entries: Vec<Option<Entry>> = names
            .par_iter()
            .map(|name| snap_entry(ctx, &dir, rel, name, parent_tree.as_ref(), depth))
            .collect::<Result<_>>()?;
        (entries.into_iter().flatten().collect(), Some(dir))
    } else {
        snap_deep(ctx, dir, rel, &names, parent_tree.as_ref(), depth)?
    };
    let tree = Tree { entries };
    let (id, bytes) = tree.encode_with_id();
    if Some(id) != parent {
        let added = ctx
            .sink
            .put(BlobKind::Tree, id.0, &bytes, tree.references())?;
        ctx.counters.bytes_added.fetch_add(added, Ordering::Relaxed);
    }
    Ok((Some(id), dir))
}

/// The entries of a directory nested [`walk::HELD_LEVELS`] or more deep,
/// one at a time, holding no descriptor of this level while a subdirectory
/// is walked: the subdirectory's `..` gives it back, checked to be this very
/// directory (device and inode). So a tree of any depth needs a bounded
/// number of descriptors. If the directory was moved meanwhile, its
/// remaining entries are recorded as skipped and the handle is lost
/// (`None`): the level above, which lent nothing, finds out the same way.
fn snap_deep(
    ctx: &WalkCtx<'_>,
    dir: Dir,
    rel: &[u8],
    names: &[Vec<u8>],
    parent_tree: Option<&Tree>,
    depth: usize,
) -> Result<(Vec<Entry>, Option<Dir>)> {
    let me = match dir.stat() {
        Ok(s) => s,
        Err(e) => {
            ctx.skip(rel, format!("cannot be read: {e}"), true);
            return Ok((Vec::new(), Some(dir)));
        }
    };
    let mut entries = Vec::new();
    let mut cur = Some(dir);
    for (i, name) in names.iter().enumerate() {
        let Some(d) = cur.take() else {
            ctx.skip(
                rel,
                format!(
                    "moved while its subdirectories were walked; {} entries not stored",
                    names.len() - i
                ),
                true,
            );
            break;
        };
        let child_rel = crate::tree::join_rel(rel, name);
        let parent_entry = parent_tree.and_then(|t| t.find(name));
        let opened = match d.stat_at(name) {
            Ok(seen) if seen.kind() == Kind::Dir && !ctx.excludes.is_excluded(&child_rel, true) => {
                d.open_dir_as(name, &seen).ok()
            }
            _ => None,
        };
        let Some((sub, now)) = opened else {
            // Not a directory (or swapped, or gone): the ordinary path,
            // which looks again and records what it finds.
            entries.extend(snap_entry(ctx, &d, rel, name, parent_tree, depth)?);
            cur = Some(d);
            continue;
        };
        drop(d);
        let parent_sub = parent_entry.and_then(|e| match e.kind {
            EntryKind::Dir { tree } => Some(tree),
            _ => None,
        });
        let (tree, back) = snap_dir(ctx, sub, &child_rel, parent_sub, depth + 1)?;
        cur = back
            .and_then(|b| b.parent().ok())
            .filter(|p| p.stat().is_ok_and(|s| s.same_object(&me)));
        if let Some(tree) = tree {
            ctx.stats.dirs.fetch_add(1, Ordering::Relaxed);
            entries.push(entry_from(name.clone(), &now, 0, EntryKind::Dir { tree }));
        }
    }
    Ok((entries, cur))
}

/// What became of one directory entry.
enum Taken {
    Stored(Entry),
    /// Not stored: deleted, excluded, special, or skipped (recorded).
    Nothing,
    /// The object opened was not the one `fstatat` listed (swapped since):
    /// look again.
    Replaced,
}

/// Snapshot entry `name` of `dir`. An entry whose object keeps being
/// swapped between its `fstatat` and its open is looked at again, up to
/// [`pipeline::READ_ATTEMPTS`] times, then skipped: what is stored is
/// always what was listed, never what a symlink swapped in points to.
fn snap_entry(
    ctx: &WalkCtx<'_>,
    dir: &Dir,
    dir_rel: &[u8],
    name: &[u8],
    parent: Option<&Tree>,
    depth: usize,
) -> Result<Option<Entry>> {
    let rel = crate::tree::join_rel(dir_rel, name);
    if crate::tree::validate_name(name).is_err() {
        ctx.skip(&rel, "name cannot be stored".into(), true);
        return Ok(None);
    }
    let parent_entry = parent.and_then(|t| t.find(name));
    for _ in 0..pipeline::READ_ATTEMPTS {
        let seen = match dir.stat_at(name) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None), // deleted mid-walk
            Err(e) => {
                ctx.skip(&rel, e.to_string(), true);
                return Ok(None);
            }
        };
        match take_entry(ctx, dir, name, &rel, &seen, parent_entry, depth)? {
            Taken::Stored(e) => return Ok(Some(e)),
            Taken::Nothing => return Ok(None),
            Taken::Replaced => continue,
        }
    }
    ctx.skip(
        &rel,
        format!(
            "replaced by another object while being read ({} tries); not stored",
            pipeline::READ_ATTEMPTS
        ),
        true,
    );
    Ok(None)
}

/// Store the object `seen` (what `fstatat(dir, name)` said).
fn take_entry(
    ctx: &WalkCtx<'_>,
    dir: &Dir,
    name: &[u8],
    rel: &[u8],
    seen: &Stat,
    parent_entry: Option<&Entry>,
    depth: usize,
) -> Result<Taken> {
    let kind = seen.kind();
    if ctx.excludes.is_excluded(rel, kind == Kind::Dir) {
        ctx.stats.excluded.fetch_add(1, Ordering::Relaxed);
        return Ok(Taken::Nothing);
    }
    // An open or read that failed: gone, swapped, or unreadable (skipped).
    let failed = |e: io::Error| {
        if e.kind() == io::ErrorKind::NotFound {
            Taken::Nothing // deleted mid-walk
        } else if dirfd::is_replaced(&e) || dirfd::is_not_followed(&e) {
            Taken::Replaced
        } else {
            ctx.skip(rel, e.to_string(), true);
            Taken::Nothing
        }
    };
    match kind {
        Kind::Dir => {
            let (sub, now) = match dir.open_dir_as(name, seen) {
                Ok(x) => x,
                Err(e) => return Ok(failed(e)),
            };
            let parent_sub = parent_entry.and_then(|e| match e.kind {
                EntryKind::Dir { tree } => Some(tree),
                _ => None,
            });
            Ok(match snap_dir(ctx, sub, rel, parent_sub, depth + 1)?.0 {
                Some(tree) => {
                    ctx.stats.dirs.fetch_add(1, Ordering::Relaxed);
                    Taken::Stored(entry_from(name.to_vec(), &now, 0, EntryKind::Dir { tree }))
                }
                None => Taken::Nothing,
            })
        }
        Kind::Symlink => {
            let target = match dir.read_link(name) {
                Ok(t) => t,
                // EINVAL: no longer a symlink.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(Taken::Replaced),
                Err(e) => return Ok(failed(e)),
            };
            if target.is_empty() || target.len() > crate::tree::MAX_TARGET_BYTES {
                ctx.skip(rel, "symlink target too long".into(), true);
                return Ok(Taken::Nothing);
            }
            ctx.stats.symlinks.fetch_add(1, Ordering::Relaxed);
            let size = target.len() as u64;
            Ok(Taken::Stored(entry_from(
                name.to_vec(),
                seen,
                size,
                EntryKind::Symlink { target },
            )))
        }
        Kind::Special => {
            // FIFOs, sockets, devices: counted, never opened.
            ctx.stats.special.fetch_add(1, Ordering::Relaxed);
            Ok(Taken::Nothing)
        }
        Kind::File => {
            let key = StatKey {
                size: seen.size,
                mtime_ns: seen.mtime_ns,
                ctime_ns: seen.ctime_ns,
                inode: seen.ino,
            };
            if let Some(p) =
                parent_entry.filter(|p| reuse::can_reuse(p, &key, ctx.parent_started_ns))
            {
                ctx.stats.files.fetch_add(1, Ordering::Relaxed);
                ctx.stats.size_bytes.fetch_add(p.size, Ordering::Relaxed);
                ctx.progress.add(1, p.size);
                return Ok(Taken::Stored(entry_from(
                    name.to_vec(),
                    seen,
                    p.size,
                    p.kind.clone(),
                )));
            }
            let content =
                match pipeline::store_file(dir, name, seen, ctx.params, ctx.sink, &ctx.counters)? {
                    Ok(c) => c,
                    Err(e) => return Ok(failed(e)),
                };
            ctx.stats.files.fetch_add(1, Ordering::Relaxed);
            ctx.stats
                .size_bytes
                .fetch_add(content.size, Ordering::Relaxed);
            ctx.progress.add(1, content.size);
            let file_content = file_content(ctx, content.chunks)?;
            let mut e = entry_from(
                name.to_vec(),
                &content.stat,
                content.size,
                EntryKind::File {
                    content: file_content,
                },
            );
            if content.changed_during_read {
                e.flags |= FLAG_CHANGED_DURING_READ;
                ctx.skip(
                    rel,
                    format!(
                        "changed while being read ({} tries); stored as last read",
                        pipeline::READ_ATTEMPTS
                    ),
                    false,
                );
            }
            Ok(Taken::Stored(e))
        }
    }
}

/// Inline chunk ids for small files; chunk lists for large ones.
fn file_content(ctx: &WalkCtx<'_>, chunks: Vec<ChunkId>) -> Result<FileContent> {
    if chunks.len() <= chunklist::INLINE_MAX_CHUNKS {
        return Ok(FileContent::Chunks(chunks));
    }
    let mut lists = Vec::new();
    for l in chunklist::split(&chunks) {
        let added = ctx
            .sink
            .put(BlobKind::ChunkList, l.id.0, &l.bytes, l.chunks)?;
        ctx.counters.bytes_added.fetch_add(added, Ordering::Relaxed);
        lists.push(l.id);
    }
    Ok(FileContent::Lists(lists))
}
