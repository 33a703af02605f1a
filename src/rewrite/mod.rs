//! `rewrite`: take paths out of stored snapshots (a leaked secret) without
//! forgetting the snapshots. Each snapshot of a workspace in which an
//! exclude pattern matches gets a new tree without the matching paths; its
//! time, start, end, skip list and damaged mark stay, its counters drop
//! what was removed, and its id changes (ids hash the root tree). Then
//! exactly what `forget` does to forgotten data happens to the old trees'
//! data: every pack that held what only they used is rewritten, so the
//! bytes are gone from every store file (`damaged/` included).
//!
//! Patterns are `snapshot --exclude`'s (gitignore syntax, `walk::Excludes`),
//! matched against the path inside the workspace; a snapshot in which
//! nothing matches keeps its id and is reported unchanged.
//!
//! Crash order (under the writer lock; each step leaves all old or all
//! new snapshots visible, never neither):
//! 0. remove pack files no catalog row names (a crashed rewrite's old
//!    packs may hold the very data being purged);
//! 1. filter the trees (`filter.rs`), appending new trees to a new pack;
//!    seal it: fsync → rename → dir fsync (a crash leaves a `tmp/` file or
//!    an orphan pack: removed by the next writer or gc);
//! 2. append the new snapshots' records to a new journal
//!    (`journal/<now>-<pid>.wsj.open`) and fdatasync (a crash leaves records
//!    the catalog lacks: the next writer trims them);
//! 3. one catalog transaction (`gc::replace`): index the new trees, give
//!    each old snapshot row its new tree and id in place, collect what only
//!    the old trees used, rewrite the packs that held it, name the old
//!    records' journals in `journals_pending`, commit (a crash before:
//!    the old snapshots, orphan packs; after: the new ones);
//! 4. drop the old records from their journals (a crash before: the next
//!    writer does it from `journals_pending`), delete the old packs,
//!    purge `damaged/`;
//! 5. rename the journal `.open` → `.wsj` (a crash before: the next
//!    writer's reconcile keeps its committed records and renames it).
//!
//! New ids are a function of the old snapshot and the patterns, so running
//! the same rewrite again after any crash gives the same ids; a snapshot
//! whose new version is already in the catalog (a crash after step 2
//! followed by `repair` of a lost catalog, which brings both back) is then
//! only forgotten.

mod filter;

use std::collections::HashSet;
use std::time::Duration;

use crate::catalog::{PendingTree, PinnedCatalog};
use crate::error::{Error, Missing, Result};
use crate::gc::{self, GcReport, NewTrees, Replacement};
use crate::id::{Id, SnapshotId, TreeId};
use crate::journal::RunJournal;
use crate::model::{snapshot_id, SnapshotRow};
use crate::pack::{self, BlobKind, PackWriter};
use crate::progress::Progress;
use crate::select::by_id_prefix;
use crate::store::Store;
use crate::timespec;
use crate::tree::Tree;
use crate::walk::{self, Excludes};
use crate::workspace::WorkspaceName;

use filter::{Filter, NewTree, Trees};

/// Which snapshots of the workspace to rewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    /// Ids or unique prefixes (at least 4 hex digits).
    Ids(Vec<String>),
}

/// What `rewrite` should do.
#[derive(Clone, Debug)]
pub struct RewriteOptions {
    pub workspace: WorkspaceName,
    /// Gitignore-syntax patterns, as `snapshot --exclude` takes them (the
    /// default excludes are not added).
    pub excludes: Vec<String>,
    pub snapshots: Selection,
    /// Find what would change; write nothing and take only a read view.
    pub dry_run: bool,
    /// How long to wait for the writer lock.
    pub lock_wait: Duration,
}

/// A path taken out of a snapshot (a directory with everything below it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedPath {
    /// Relative to the workspace (raw bytes).
    pub path: Vec<u8>,
    pub is_dir: bool,
}

/// One snapshot rewritten (or, in a dry run, that would be).
#[derive(Clone, Debug)]
pub struct Rewritten {
    pub old: SnapshotRow,
    pub new: SnapshotRow,
    /// Sorted by path.
    pub removed: Vec<RemovedPath>,
    /// `new` was in the catalog already (a rewrite killed after its journal,
    /// then `repair`): `old` was only forgotten.
    pub merged: bool,
}

/// What `rewrite` did.
#[derive(Debug, Default)]
pub struct RewriteReport {
    pub dry_run: bool,
    /// Oldest first.
    pub rewritten: Vec<Rewritten>,
    /// Selected snapshots in which nothing matched: left as they are.
    pub unchanged: Vec<SnapshotRow>,
    /// Patterns (as given, `!` re-includes aside) that removed nothing from
    /// any selected snapshot: a typo, or nothing left to purge.
    pub unmatched: Vec<String>,
    /// New tree blobs written, and the pack bytes they took.
    pub trees_written: u64,
    pub tree_pack_bytes: u64,
    /// The garbage collection of the old trees' data (empty in a dry run).
    pub gc: GcReport,
}

impl RewriteReport {
    /// Pack bytes freed on disk, net of the new trees' packs.
    pub fn freed_bytes(&self) -> u64 {
        self.gc.bytes_freed.saturating_sub(self.tree_pack_bytes)
    }
}

/// Take the paths matching `opts.excludes` out of the selected snapshots of
/// `opts.workspace` (see the module doc). A dry run takes the readers' lock
/// and one pinned view; otherwise the writer lock, waiting
/// `opts.lock_wait`.
pub fn rewrite(store: &Store, opts: &RewriteOptions, progress: &Progress) -> Result<RewriteReport> {
    let excludes = Excludes::only(&opts.excludes)?;
    if opts.dry_run {
        let _readers = store.read_guard()?;
        let view = PinnedCatalog::open(&store.catalog_path())?;
        let snaps = selected(&view, opts)?;
        let mut trees = StoreTrees::new(store, &view, None);
        let mut report = plan(&view, &excludes, opts, &snaps, &mut trees)?;
        report.dry_run = true;
        report.trees_written = trees.count;
        return Ok(report);
    }
    let lock = store.lock(opts.lock_wait, "rewrite")?;
    // What a crashed gc or rewrite left (old packs the catalog no longer
    // names may hold the very data being purged), before this run writes
    // packs of its own.
    let orphans = gc::remove_orphans(store, &lock)?;
    // Under the writer lock nothing changes this view but us.
    let view = PinnedCatalog::open(&store.catalog_path())?;
    let snaps = selected(&view, opts)?;
    let mut trees = StoreTrees::new(store, &view, Some(store.packs().writer()));
    // Step 1: new trees, durable in new packs.
    let mut report = plan(&view, &excludes, opts, &snaps, &mut trees)?;
    let new_trees = trees.seal()?;
    report.trees_written = new_trees.trees.len() as u64;
    report.tree_pack_bytes = new_trees.packs.iter().map(|p| p.size_bytes).sum();
    crate::failpoint::crash_point("rewrite.trees_sealed");
    drop(view);
    report.gc.orphan_packs_removed = orphans.0;
    report.gc.bytes_freed = orphans.1;
    if report.rewritten.is_empty() {
        return Ok(report);
    }
    // Step 2: the new rows' records, durable before the catalog has them.
    let mut journal = RunJournal::new(store.dir(), store.params(), timespec::now_ns());
    let records: Vec<SnapshotRow> = report
        .rewritten
        .iter()
        .filter(|r| !r.merged)
        .map(|r| r.new.clone())
        .collect();
    if !records.is_empty() {
        journal.append_all(&records)?;
    }
    crate::failpoint::crash_point("rewrite.journaled");
    // Steps 3 and 4: one commit switches every snapshot; then gc.
    let replacements: Vec<Replacement> = report
        .rewritten
        .iter()
        .map(|r| Replacement {
            old: r.old.clone(),
            new: r.new.clone(),
            new_exists: r.merged,
        })
        .collect();
    report.gc = gc::replace(
        store,
        &lock,
        &new_trees,
        &replacements,
        journal.name(),
        progress,
    )?;
    report.gc.orphan_packs_removed += orphans.0;
    report.gc.bytes_freed += orphans.1;
    crate::failpoint::crash_point("rewrite.collected");
    // Step 5.
    journal.close()?;
    Ok(report)
}

/// The selected snapshots of the workspace, oldest first.
fn selected(view: &PinnedCatalog, opts: &RewriteOptions) -> Result<Vec<SnapshotRow>> {
    let ws = &opts.workspace;
    let all = view.with(|c| c.snapshots(Some(ws)))?;
    if all.is_empty() {
        return Err(Error::NotFound(Missing::Snapshots(ws.clone())));
    }
    match &opts.snapshots {
        Selection::All => Ok(all),
        Selection::Ids(ids) => {
            let mut picked = HashSet::new();
            for id in ids {
                picked.insert(by_id_prefix(&all, id, Some(ws))?.id);
            }
            Ok(all.into_iter().filter(|s| picked.contains(&s.id)).collect())
        }
    }
}

/// One snapshot filtered (what leaves the walk threads).
struct Outcome {
    root: TreeId,
    removed: Vec<RemovedPath>,
    /// The pattern that removed each of `removed`.
    patterns: Vec<String>,
    minus: filter::Counts,
}

/// Filter every selected snapshot; new trees go to `trees`.
fn plan(
    view: &PinnedCatalog,
    excludes: &Excludes,
    opts: &RewriteOptions,
    snaps: &[SnapshotRow],
    trees: &mut StoreTrees<'_>,
) -> Result<RewriteReport> {
    // One level of recursion per directory: on the walk threads' deep
    // stacks, as snapshot and restore.
    let outcomes = walk::pool().install(|| -> Result<Vec<Outcome>> {
        let mut f = Filter::new(excludes, &mut *trees);
        let mut out = Vec::with_capacity(snaps.len());
        for s in snaps {
            let r = f.root(s.root)?;
            out.push(Outcome {
                root: r.tree,
                removed: r
                    .removed
                    .iter()
                    .map(|x| RemovedPath {
                        path: x.path.clone(),
                        is_dir: x.is_dir,
                    })
                    .collect(),
                patterns: r.removed.iter().map(|x| x.pattern.clone()).collect(),
                minus: r.minus,
            });
        }
        Ok(out)
    })?;
    let mut report = RewriteReport::default();
    let mut used: HashSet<String> = HashSet::new();
    let mut all_removed: HashSet<(Vec<u8>, bool)> = HashSet::new();
    let mut made: HashSet<SnapshotId> = HashSet::new();
    for (old, o) in snaps.iter().zip(outcomes) {
        if o.root == old.root {
            report.unchanged.push(old.clone());
            continue;
        }
        used.extend(o.patterns);
        let mut new = old.clone();
        new.root = o.root;
        new.id = snapshot_id(&new.workspace, new.time_ns, new.started_ns, &o.root);
        let st = &mut new.stats;
        st.files = st.files.saturating_sub(o.minus.files);
        st.dirs = st.dirs.saturating_sub(o.minus.dirs);
        st.symlinks = st.symlinks.saturating_sub(o.minus.symlinks);
        st.size_bytes = st.size_bytes.saturating_sub(o.minus.size_bytes);
        st.excluded += o.removed.len() as u64;
        // Already in the catalog, or made twice here (two old snapshots of
        // one workspace, time and start: what `repair` brings back after a
        // rewrite killed before its journal rewrite): one row, the others
        // forgotten.
        let merged = !made.insert(new.id) || view.with(|c| c.has_snapshot(&new.id))?;
        all_removed.extend(o.removed.iter().map(|r| (r.path.clone(), r.is_dir)));
        report.rewritten.push(Rewritten {
            old: old.clone(),
            new,
            removed: o.removed,
            merged,
        });
    }
    report.unmatched = unmatched(&opts.excludes, &used, &all_removed)?;
    Ok(report)
}

/// Patterns that removed nothing. The matcher names the last matching
/// pattern only, so one shadowed by a later pattern is looked at alone
/// against what was removed.
fn unmatched(
    patterns: &[String],
    used: &HashSet<String>,
    removed: &HashSet<(Vec<u8>, bool)>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in patterns {
        if used.contains(p) || p.trim_start().starts_with('!') {
            continue;
        }
        let alone = Excludes::only(std::slice::from_ref(p))?;
        if !removed
            .iter()
            .any(|(path, is_dir)| alone.is_excluded(path, *is_dir))
            && !out.contains(p)
        {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Trees read through the pinned view; new ones counted (dry run) or
/// appended to new packs, sealed at the store's pack size.
struct StoreTrees<'a> {
    store: &'a Store,
    view: &'a PinnedCatalog,
    writer: Option<PackWriter>,
    /// Trees appended to the open pack: (id, offset, stored, raw, refs).
    open: Vec<(TreeId, u64, u32, u32, Vec<Id>)>,
    done: NewTrees,
    count: u64,
}

impl<'a> StoreTrees<'a> {
    fn new(store: &'a Store, view: &'a PinnedCatalog, writer: Option<PackWriter>) -> Self {
        StoreTrees {
            store,
            view,
            writer,
            open: Vec::new(),
            done: NewTrees::default(),
            count: 0,
        }
    }

    /// Seal the open pack, if any: its trees are then durable.
    fn seal_open(&mut self) -> Result<()> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let Some(sealed) = w.seal()? else {
            return Ok(());
        };
        for (id, offset, stored_len, raw_len, refs) in self.open.drain(..) {
            self.done.trees.push(PendingTree {
                kind: BlobKind::Tree,
                id: id.0,
                pack: sealed.id,
                offset,
                stored_len,
                raw_len,
                refs,
            });
        }
        self.done.packs.push(sealed);
        Ok(())
    }

    fn seal(mut self) -> Result<NewTrees> {
        self.seal_open()?;
        Ok(self.done)
    }
}

impl Trees for &mut StoreTrees<'_> {
    fn read(&mut self, id: &TreeId) -> Result<Tree> {
        self.view.with(|c| self.store.read_tree(c, id))
    }

    fn put(&mut self, t: NewTree) -> Result<()> {
        // A directory back to a state some snapshot has stored already.
        if self.view.with(|c| c.has_blob(&t.id.0))? {
            return Ok(());
        }
        self.count += 1;
        let level = self.store.params().zstd_level;
        let target = self.store.params().pack_target_bytes;
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let (header, payload) = pack::new_record(BlobKind::Tree, t.id.0, &t.bytes, level);
        let offset = w.append(header, &payload)?;
        self.open
            .push((t.id, offset, header.stored_len, header.raw_len, t.refs));
        if w.len_bytes() >= target {
            self.seal_open()?;
        }
        Ok(())
    }
}
