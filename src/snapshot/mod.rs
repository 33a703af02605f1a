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
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rayon::prelude::*;

use crate::catalog::{CatalogPool, RunRow, SnapshotRow, SnapshotStats};
use crate::chunker::ChunkerParams;
use crate::chunklist;
use crate::codec::Writer as Enc;
use crate::error::Result;
use crate::escape;
use crate::id::ChunkId;
use crate::id::{Id, SnapshotId, TreeId};
use crate::journal::RunJournal;
use crate::lock::LockGuard;
use crate::pack::{BlobKind, PackWriter};
use crate::progress::Progress;
use crate::store::Store;
use crate::timespec;
use crate::tree::{Entry, EntryKind, FileContent, Tree, FLAG_CHANGED_DURING_READ};
use crate::walk::{self, Excludes};
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

/// Everything a run did.
#[derive(Debug)]
pub struct RunReport {
    pub started_ns: i64,
    pub finished_ns: i64,
    pub workspaces: Vec<WorkspaceReport>,
}

impl RunReport {
    /// True when every workspace committed with nothing missing.
    pub fn all_ok(&self) -> bool {
        self.workspaces.iter().all(|w| match &w.outcome {
            WorkspaceOutcome::Committed { skips, .. } => skips.iter().all(|s| !s.missing),
            WorkspaceOutcome::Failed { .. } => false,
        })
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
pub fn run_locked(store: &Store, opts: &SnapshotOptions, lock: &LockGuard) -> Result<RunReport> {
    let excludes = Excludes::new(&opts.excludes)?;
    run_inner(
        store,
        &sources(opts)?,
        &excludes,
        lock,
        &Progress::default(),
    )
}

/// One directory to snapshot as a workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub workspace: WorkspaceName,
    /// Whose contents become the snapshot: `<root>/<user>/<project>` for a
    /// normal run, any directory for an import (e.g. an old rsync copy).
    pub dir: PathBuf,
    /// Recorded snapshot time; `None` means when its walk started.
    pub time_ns: Option<i64>,
}

/// What [`run`] would snapshot: the named workspaces (or every one under
/// the root), each from `<root>/<user>/<project>` at `opts.time_ns`.
pub fn sources(opts: &SnapshotOptions) -> Result<Vec<Source>> {
    let workspaces = if opts.workspaces.is_empty() {
        walk::discover(&opts.root)?
    } else {
        opts.workspaces.clone()
    };
    Ok(workspaces
        .into_iter()
        .map(|ws| Source {
            dir: ws.dir_under(&opts.root),
            workspace: ws,
            time_ns: opts.time_ns,
        })
        .collect())
}

/// Snapshot each source in order, as one run, under a lock the caller
/// holds; `progress` counts files and their bytes as they are walked.
/// Sources of one workspace must come in time order, oldest first: each
/// snapshot's parent (the stat cache) is the one taken before it.
pub fn run_sources_locked(
    store: &Store,
    sources: &[Source],
    excludes: &[String],
    lock: &LockGuard,
    progress: &Progress,
) -> Result<RunReport> {
    run_inner(store, sources, &Excludes::new(excludes)?, lock, progress)
}

fn run_inner(
    store: &Store,
    sources: &[Source],
    excludes: &Excludes,
    _lock: &LockGuard,
    progress: &Progress,
) -> Result<RunReport> {
    let started_ns = timespec::now_ns();
    let params = store.params();
    let pending: writer::Pending = Arc::new(Mutex::new(Default::default()));
    let writer = writer::Writer::spawn(
        store.catalog(true)?,
        PackWriter::new(&store.tmp_dir(), &store.packs_dir()),
        RunJournal::new(store.dir(), params, started_ns),
        pending.clone(),
        params.pack_target_bytes,
    );
    let pool = CatalogPool::new(&store.catalog_path());
    let sink = BlobSink {
        lookup: &pool,
        pending: &pending,
        tx: writer.sender(),
        zstd_level: params.zstd_level,
    };
    let mut reports = Vec::with_capacity(sources.len());
    // Workspaces with a snapshot in the writer's group commit queue.
    let mut queued = std::collections::BTreeSet::new();
    for src in sources {
        if queued.contains(&src.workspace) {
            // A second source for one workspace (import): its parent is
            // queued; commit it so its trees can be read.
            writer.flush()?;
            queued.clear();
        }
        let outcome = snapshot_workspace(store, &pool, &sink, &writer, excludes, src, progress)?;
        if matches!(outcome, WorkspaceOutcome::Committed { .. }) {
            queued.insert(src.workspace.clone());
        }
        reports.push(WorkspaceReport {
            workspace: src.workspace.clone(),
            outcome,
        });
    }
    drop(sink);
    let finished_ns = timespec::now_ns();
    let mut run = RunRow {
        started_ns,
        finished_ns,
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
    writer.finish(run)?;
    Ok(RunReport {
        started_ns,
        finished_ns,
        workspaces: reports,
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
    let (ws, dir) = (&src.workspace, &src.dir);
    let failed = |reason: String| Ok(WorkspaceOutcome::Failed { reason });
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return failed(format!("{} is not a directory", escape::path(dir))),
        Err(e) => return failed(format!("{}: {e}", escape::path(dir))),
    }
    if let Err(e) = fs::read_dir(dir) {
        return failed(format!("{}: {e}", escape::path(dir)));
    }
    let parent = pool.with(|c| c.last_taken(ws))?;
    tracing::debug!(
        "{ws}: walking {}{}",
        escape::path(dir),
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
    let root = match snap_dir(&ctx, dir, b"", parent.as_ref().map(|p| p.root)) {
        Ok(Some(root)) => root,
        Ok(None) => {
            writer.discard()?;
            let skips = ctx.skips.into_inner().expect("skips poisoned");
            let why = skips
                .first()
                .map_or("unreadable".into(), |s| s.reason.clone());
            return failed(format!("{}: {why}", escape::path(dir)));
        }
        Err(e) => {
            let _ = writer.discard();
            return Err(e);
        }
    };
    let mut skips = ctx.skips.into_inner().expect("skips poisoned");
    skips.sort_by(|a, b| a.path.cmp(&b.path));
    let s = &ctx.stats;
    let time_ns = src.time_ns.unwrap_or(started_ns);
    let stats = SnapshotStats {
        files: s.files.load(Ordering::Relaxed),
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

fn join_rel(rel: &[u8], name: &[u8]) -> Vec<u8> {
    if rel.is_empty() {
        name.to_vec()
    } else {
        let mut v = Vec::with_capacity(rel.len() + 1 + name.len());
        v.extend_from_slice(rel);
        v.push(b'/');
        v.extend_from_slice(name);
        v
    }
}

fn ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

fn entry_from(name: Vec<u8>, m: &Metadata, size: u64, kind: EntryKind) -> Entry {
    Entry {
        name,
        flags: 0,
        mode: m.mode() & 0o7777,
        mtime_ns: ns(m.mtime(), m.mtime_nsec()),
        ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        inode: m.ino(),
        uid: m.uid(),
        gid: m.gid(),
        size,
        kind,
    }
}

/// Snapshot one directory; `Ok(None)` when it could not be read (recorded
/// as a skip). `Err` only for store failures.
fn snap_dir(
    ctx: &WalkCtx<'_>,
    abs: &Path,
    rel: &[u8],
    parent: Option<TreeId>,
) -> Result<Option<TreeId>> {
    // A parent tree we cannot read only costs us the stat cache.
    let parent_tree = parent.and_then(|id| ctx.pool.with(|c| ctx.store.read_tree(c, &id)).ok());
    let rd = match fs::read_dir(abs) {
        Ok(rd) => rd,
        Err(e) => {
            let vanished = e.kind() == io::ErrorKind::NotFound;
            ctx.skip(
                rel,
                if vanished {
                    "vanished during the walk".into()
                } else {
                    e.to_string()
                },
                !vanished,
            );
            return Ok(None);
        }
    };
    let mut names = Vec::new();
    for de in rd {
        match de {
            Ok(de) => names.push(de),
            Err(e) => {
                ctx.skip(rel, format!("listing incomplete: {e}"), true);
                break;
            }
        }
    }
    names.sort_unstable_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    let entries: Vec<Option<Entry>> = names
        .par_iter()
        .map(|de| snap_entry(ctx, abs, rel, de, parent_tree.as_ref()))
        .collect::<Result<_>>()?;
    let tree = Tree {
        entries: entries.into_iter().flatten().collect(),
    };
    let (id, bytes) = tree.encode_with_id();
    if Some(id) != parent {
        let added = ctx
            .sink
            .put(BlobKind::Tree, id.0, &bytes, tree.references())?;
        ctx.counters.bytes_added.fetch_add(added, Ordering::Relaxed);
    }
    Ok(Some(id))
}

fn snap_entry(
    ctx: &WalkCtx<'_>,
    dir_abs: &Path,
    dir_rel: &[u8],
    de: &fs::DirEntry,
    parent: Option<&Tree>,
) -> Result<Option<Entry>> {
    let file_name = de.file_name();
    let name = file_name.as_bytes();
    let abs = dir_abs.join(OsStr::from_bytes(name));
    let rel = join_rel(dir_rel, name);
    if crate::tree::validate_name(name).is_err() {
        ctx.skip(&rel, "name cannot be stored".into(), true);
        return Ok(None);
    }
    // DirEntry::metadata is fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW): one
    // stat per entry, with no path walk.
    let meta = match de.metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None), // deleted mid-walk
        Err(e) => {
            ctx.skip(&rel, e.to_string(), true);
            return Ok(None);
        }
    };
    let ft = meta.file_type();
    if ctx.excludes.is_excluded(&rel, ft.is_dir()) {
        ctx.stats.excluded.fetch_add(1, Ordering::Relaxed);
        return Ok(None);
    }
    let parent_entry = parent.and_then(|t| t.find(name));
    if ft.is_dir() {
        let parent_sub = parent_entry.and_then(|e| match e.kind {
            EntryKind::Dir { tree } => Some(tree),
            _ => None,
        });
        return Ok(snap_dir(ctx, &abs, &rel, parent_sub)?.map(|tree| {
            ctx.stats.dirs.fetch_add(1, Ordering::Relaxed);
            entry_from(name.to_vec(), &meta, 0, EntryKind::Dir { tree })
        }));
    }
    if ft.is_symlink() {
        return match fs::read_link(&abs) {
            Ok(target) => {
                let target = target.into_os_string().into_vec();
                if target.is_empty() || target.len() > crate::tree::MAX_TARGET_BYTES {
                    ctx.skip(&rel, "symlink target too long".into(), true);
                    return Ok(None);
                }
                ctx.stats.symlinks.fetch_add(1, Ordering::Relaxed);
                let size = target.len() as u64;
                Ok(Some(entry_from(
                    name.to_vec(),
                    &meta,
                    size,
                    EntryKind::Symlink { target },
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                ctx.skip(&rel, e.to_string(), true);
                Ok(None)
            }
        };
    }
    if ft.is_fifo() || ft.is_socket() || ft.is_block_device() || ft.is_char_device() {
        ctx.stats.special.fetch_add(1, Ordering::Relaxed);
        return Ok(None);
    }
    if !ft.is_file() {
        ctx.stats.special.fetch_add(1, Ordering::Relaxed);
        return Ok(None);
    }
    let key = StatKey {
        size: meta.size(),
        mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        inode: meta.ino(),
    };
    if let Some(p) = parent_entry.filter(|p| reuse::can_reuse(p, &key, ctx.parent_started_ns)) {
        ctx.stats.files.fetch_add(1, Ordering::Relaxed);
        ctx.stats.size_bytes.fetch_add(p.size, Ordering::Relaxed);
        ctx.progress.add(1, p.size);
        let mut e = entry_from(name.to_vec(), &meta, p.size, p.kind.clone());
        e.flags = 0;
        return Ok(Some(e));
    }
    match pipeline::store_file(&abs, ctx.params, ctx.sink, &ctx.counters)? {
        Ok(content) => {
            ctx.stats.files.fetch_add(1, Ordering::Relaxed);
            ctx.stats
                .size_bytes
                .fetch_add(content.size, Ordering::Relaxed);
            ctx.progress.add(1, content.size);
            let file_content = file_content(ctx, content.chunks)?;
            let mut e = entry_from(
                name.to_vec(),
                &content.meta,
                content.size,
                EntryKind::File {
                    content: file_content,
                },
            );
            if content.changed_during_read {
                e.flags |= FLAG_CHANGED_DURING_READ;
                ctx.skip(
                    &rel,
                    format!(
                        "changed while being read ({} tries); stored as last read",
                        pipeline::READ_ATTEMPTS
                    ),
                    false,
                );
            }
            Ok(Some(e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None), // deleted mid-walk
        Err(e) => {
            ctx.skip(&rel, e.to_string(), true);
            Ok(None)
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
