//! One workspace's walk: depth first through directory handles, each entry
//! compared with the parent snapshot's tree (the stat cache, see
//! `reuse.rs`), only changed files read and chunked (`pipeline.rs`), trees
//! built bottom-up and handed to the writer, then the snapshot's commit
//! requested. Problems with the workspace's files are recorded as skips;
//! only store failures are errors. A prewalk (`prewalk.rs`) runs the same
//! walk without a blob sink.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::catalog::CatalogPool;
use crate::dirfd::{Dir, Kind, Stat};
use crate::error::Result;
use crate::escape;
use crate::id::TreeId;
use crate::model::{snapshot_id, Skip, SnapshotRow, SnapshotStats, StoreParams};
use crate::pack::BlobKind;
use crate::progress::Progress;
use crate::store::Store;
use crate::timespec;
use crate::tree::{split, Entry, EntryKind};
use crate::walk::{self, Excludes};

mod entry;

use entry::snap_entry;
pub(super) use entry::Snapped;

use super::parent::ParentDir;
use super::pipeline::{BlobSink, Counters};
use super::writer;
use super::{Source, WorkspaceOutcome};

/// A prewalk lists directories of fewer entries than this on its own
/// thread (see `prewalk.rs`).
const PREWALK_PAR_MIN: usize = 64;

/// Snapshot one source: walk it against its parent snapshot (none with
/// `reread`), hand its blobs and then its snapshot row to the writer.
/// `Failed` when its directory cannot be opened or listed; `Err` only for
/// store failures. `base` is the source's base directory, when the run
/// opened it already (see [`Source::open_in`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn snapshot_workspace(
    store: &Store,
    pool: &CatalogPool,
    sink: &BlobSink<'_>,
    writer: &writer::Writer,
    excludes: &Excludes,
    src: &Source,
    base: Option<&Dir>,
    progress: &Progress,
) -> Result<WorkspaceOutcome> {
    let ws = &src.workspace;
    let failed = |reason: String| Ok(WorkspaceOutcome::Failed { reason });
    let dir = match src.open_in(base) {
        Ok(d) => d,
        Err(why) => return failed(why.to_string()),
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
    let ctx = WalkCtx::new(
        store,
        pool,
        Some(sink),
        excludes,
        Some(progress),
        parent.as_ref(),
    );
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
    let walked = ctx.finish(src, root, started_ns, previous_files);
    let skip_rows = walked
        .skips
        .iter()
        .map(|k| (k.path.clone(), k.reason.clone()))
        .collect();
    writer.commit(walked.row.clone(), skip_rows)?;
    Ok(WorkspaceOutcome::Committed {
        row: Box::new(walked.row),
        skips: walked.skips,
    })
}

/// A workspace walked to its end, not yet handed to the writer.
pub(super) struct Walked {
    pub row: SnapshotRow,
    pub skips: Vec<Skip>,
    /// Trees a prewalk made that the store may lack, each after the trees
    /// it references: handed to the writer before the row (see
    /// `prewalk.rs`; empty after a full walk, which stored them).
    pub trees: Vec<NewTree>,
}

/// A tree recorded by a prewalk: its id, encoding and references.
pub(super) type NewTree = (TreeId, Vec<u8>, Vec<crate::id::Id>);

#[derive(Default)]
struct Stats {
    files: AtomicU64,
    dirs: AtomicU64,
    symlinks: AtomicU64,
    size_bytes: AtomicU64,
    special: AtomicU64,
    excluded: AtomicU64,
}

pub(super) struct WalkCtx<'a> {
    store: &'a Store,
    pool: &'a CatalogPool,
    /// Where new blobs go; `None` in a prewalk, which records new trees in
    /// `trees` and gives up (`needs_read`) at the first file to read.
    sink: Option<&'a BlobSink<'a>>,
    excludes: &'a Excludes,
    params: StoreParams,
    /// `None` in a prewalk: its files are counted when it commits.
    progress: Option<&'a Progress>,
    parent_started_ns: i64,
    counters: Counters,
    stats: Stats,
    pub(super) skips: Mutex<Vec<Skip>>,
    trees: Mutex<Vec<NewTree>>,
    /// Set by a prewalk that met a file to read: it gave up.
    pub(super) needs_read: AtomicBool,
}

impl<'a> WalkCtx<'a> {
    pub(super) fn new(
        store: &'a Store,
        pool: &'a CatalogPool,
        sink: Option<&'a BlobSink<'a>>,
        excludes: &'a Excludes,
        progress: Option<&'a Progress>,
        parent: Option<&SnapshotRow>,
    ) -> WalkCtx<'a> {
        WalkCtx {
            store,
            pool,
            sink,
            excludes,
            params: store.params(),
            progress,
            parent_started_ns: parent.map_or(i64::MIN, |p| p.started_ns),
            counters: Counters::default(),
            stats: Stats::default(),
            skips: Mutex::new(Vec::new()),
            trees: Mutex::new(Vec::new()),
            needs_read: AtomicBool::new(false),
        }
    }

    fn skip(&self, rel: &[u8], reason: String, missing: bool) {
        self.skips.lock().expect("skips poisoned").push(Skip {
            path: rel.to_vec(),
            reason,
            missing,
        });
    }

    /// The snapshot row of a walk of `src` that began at `started_ns` and
    /// made tree `root`, with its skips (sorted by path).
    pub(super) fn finish(
        self,
        src: &Source,
        root: TreeId,
        started_ns: i64,
        previous_files: u64,
    ) -> Walked {
        let mut skips = self.skips.into_inner().expect("skips poisoned");
        skips.sort_by(|a, b| a.path.cmp(&b.path));
        let s = &self.stats;
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
        let ws = &src.workspace;
        let time_ns = src.time_ns.unwrap_or(started_ns);
        let stats = SnapshotStats {
            files,
            dirs: s.dirs.load(Ordering::Relaxed),
            symlinks: s.symlinks.load(Ordering::Relaxed),
            size_bytes: s.size_bytes.load(Ordering::Relaxed),
            bytes_added: self.counters.bytes_added.load(Ordering::Relaxed),
            bytes_read: self.counters.bytes_read.load(Ordering::Relaxed),
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
        Walked {
            row,
            skips,
            trees: self.trees.into_inner().expect("trees poisoned"),
        }
    }

    /// Hand a new tree blob to the writer (a prewalk keeps it for later).
    fn store_tree(&self, t: split::Encoded) -> Result<()> {
        match self.sink {
            Some(sink) => {
                let added = sink.put(BlobKind::Tree, t.id.0, &t.bytes, t.refs)?;
                self.counters
                    .bytes_added
                    .fetch_add(added, Ordering::Relaxed);
            }
            None => self
                .trees
                .lock()
                .expect("trees poisoned")
                .push((t.id, t.bytes, t.refs)),
        }
        Ok(())
    }

    /// Count `n` files of `bytes` in the progress (not in a prewalk).
    fn progress(&self, n: u64, bytes: u64) {
        if let Some(p) = self.progress {
            p.add(n, bytes);
        }
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

/// Names a walk takes at a time from a directory (in name order): a large
/// directory is handled, and its pieces stored, batch by batch.
const BATCH: usize = 2048;

/// Snapshot one directory, open as `dir`, `depth` levels below the
/// workspace root; its tree is `None` when it could not be listed (recorded
/// as a skip). `Err` only for store failures.
///
/// Entries are taken in name order, [`BATCH`] names at a time, and go into
/// a [`split::Builder`]: a large directory's pieces are stored as they
/// fill, so memory holds its names and a batch of entries, not the whole
/// listing (the parent's is read the same way, see [`ParentDir`]).
///
/// Also gives back the handle: below [`walk::HELD_LEVELS`] a level lets go
/// of its handle while a subdirectory is walked and takes it back from the
/// subdirectory's `..` (see [`snap_deep`]). `None` when that failed.
pub(super) fn snap_dir(
    ctx: &WalkCtx<'_>,
    dir: Dir,
    rel: &[u8],
    parent: Option<TreeId>,
    depth: usize,
) -> Result<(Option<TreeId>, Option<Dir>)> {
    let mut names = match dir.names() {
        Ok(names) => names,
        Err(e) => {
            ctx.skip(rel, format!("cannot be listed: {e}"), true);
            return Ok((None, Some(dir)));
        }
    };
    names.sort_unstable();
    // A parent tree we cannot read only costs us the stat cache.
    let mut parent_dir = ParentDir::open(ctx.store, ctx.pool, parent);
    let mut builder = split::Builder::new();
    let deep = depth >= walk::HELD_LEVELS;
    let me = match deep {
        true => match dir.stat() {
            Ok(s) => Some(s),
            Err(e) => {
                ctx.skip(rel, format!("cannot be read: {e}"), true);
                names.clear();
                None
            }
        },
        false => None,
    };
    let mut cur = Some(dir);
    let mut left = names.len();
    let whole = names.len() <= BATCH; // one batch: the whole directory
    for batch in names.chunks(BATCH) {
        left -= batch.len();
        let keep = builder.first_held().unwrap_or(&batch[0]).to_vec();
        let last = batch.last().expect("chunks are not empty");
        parent_dir.load(ctx.store, ctx.pool, &batch[0], last, &keep);
        let entries = match (&me, cur.as_ref()) {
            (Some(me), _) => {
                let (entries, gave_up) =
                    snap_deep(ctx, &mut cur, me, rel, batch, left, &parent_dir, depth)?;
                if gave_up {
                    break;
                }
                entries
            }
            (None, Some(dir)) => {
                let found = parent_dir.find_sorted(batch);
                let entry = |i: usize| snap_entry(ctx, dir, rel, &batch[i], found[i], depth);
                // A prewalk only stats: a small directory costs less than
                // handing its entries to other threads (prewalks of other
                // workspaces keep them busy).
                let entries: Vec<Option<Snapped>> =
                    if ctx.sink.is_none() && batch.len() < PREWALK_PAR_MIN {
                        (0..batch.len()).map(entry).collect::<Result<_>>()?
                    } else {
                        (0..batch.len())
                            .into_par_iter()
                            .map(entry)
                            .collect::<Result<_>>()?
                    };
                let entries: Vec<Snapped> = entries.into_iter().flatten().collect();
                if let (Some(id), true) = (parent, whole) {
                    if parent_dir.is_all_of(&entries) {
                        // Every entry is the parent's own, and nothing else:
                        // the parent's tree, neither encoded nor hashed.
                        return Ok((Some(id), cur));
                    }
                }
                entries.into_iter().map(Snapped::into_owned).collect()
            }
            (None, None) => unreachable!("a held level keeps its handle"),
        };
        for e in entries {
            builder.push(e, &mut |piece| store_piece(ctx, &parent_dir, piece))?;
        }
    }
    let top = builder.finish(&mut |piece| store_piece(ctx, &parent_dir, piece))?;
    let (id, bytes, refs) = top.encode();
    if Some(id) != parent {
        let refs = refs.ids();
        ctx.store_tree(split::Encoded { id, bytes, refs })?;
    }
    Ok((Some(id), cur))
}

/// A finished piece of a large directory: the parent's id when it is the
/// parent's piece unchanged, else encoded and stored (unless the parent
/// has it under the same id).
fn store_piece(ctx: &WalkCtx<'_>, parent: &ParentDir, entries: Vec<Entry>) -> Result<TreeId> {
    if let Some(id) = parent.same_piece(&entries) {
        return Ok(id);
    }
    let piece = split::Encoded::piece(&entries);
    let id = piece.id;
    if !parent.has_piece(&id) {
        ctx.store_tree(piece)?;
    }
    Ok(id)
}

/// The entries `names` (a batch of them) of a directory nested
/// [`walk::HELD_LEVELS`] or more deep, one at a time, holding no descriptor
/// of this level while a subdirectory is walked: the subdirectory's `..`
/// gives it back (into `cur`), checked to be this very directory (`me`:
/// device and inode). So a tree of any depth needs a bounded number of
/// descriptors. If the directory was moved meanwhile, its remaining entries
/// (those of the batch and `left` more) are recorded as skipped and the
/// handle is lost (`cur` is `None`, and the `bool` says the walk of this
/// directory gave up): the level above, which lent nothing, finds out the
/// same way.
#[allow(clippy::too_many_arguments)]
fn snap_deep(
    ctx: &WalkCtx<'_>,
    cur: &mut Option<Dir>,
    me: &Stat,
    rel: &[u8],
    names: &[Vec<u8>],
    left: usize,
    parent: &ParentDir,
    depth: usize,
) -> Result<(Vec<Entry>, bool)> {
    let mut entries = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let Some(d) = cur.take() else {
            ctx.skip(
                rel,
                format!(
                    "moved while its subdirectories were walked; {} entries not stored",
                    names.len() - i + left
                ),
                true,
            );
            return Ok((entries, true));
        };
        let child_rel = crate::tree::join_rel(rel, name);
        let parent_entry = parent.find(name);
        let opened = match d.stat_at(name) {
            Ok(seen) if seen.kind() == Kind::Dir && !ctx.excludes.is_excluded(&child_rel, true) => {
                d.open_dir_as(name, &seen).ok()
            }
            _ => None,
        };
        let Some((sub, now)) = opened else {
            // Not a directory (or swapped, or gone): the ordinary path,
            // which looks again and records what it finds.
            entries.extend(
                snap_entry(ctx, &d, rel, name, parent_entry, depth)?.map(Snapped::into_owned),
            );
            *cur = Some(d);
            continue;
        };
        drop(d);
        let parent_sub = parent_entry.and_then(|e| match e.kind {
            EntryKind::Dir { tree } => Some(tree),
            _ => None,
        });
        let (tree, back) = snap_dir(ctx, sub, &child_rel, parent_sub, depth + 1)?;
        *cur = back
            .and_then(|b| b.parent().ok())
            .filter(|p| p.stat().is_ok_and(|s| s.same_object(me)));
        if let Some(tree) = tree {
            ctx.stats.dirs.fetch_add(1, Ordering::Relaxed);
            entries.push(entry_from(name.clone(), &now, 0, EntryKind::Dir { tree }));
        }
    }
    Ok((entries, false))
}
