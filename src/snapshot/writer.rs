//! The single writer of a run: owns the open pack and the catalog write
//! connection, fed by a bounded channel and a bound on the blob bytes
//! queued in it ([`QueuedBytes`]), which together bound its memory.
//!
//! Snapshots are committed in groups: a workspace's commit request queues
//! its row, and the queue is written when it holds [`GROUP_ROWS`] rows, when
//! its oldest row has waited [`GROUP_AGE`], or at the end of the run. Packs
//! are shared by the workspaces of a run. An unchanged tick of 10,000
//! workspaces is then a few fsyncs, not four per workspace; a crash loses
//! at most the queued snapshots, which the next run takes again.
//!
//! Crash order, per group:
//! 1. blobs are appended to the open pack (a crash leaves a `tmp/` file);
//! 2. the pack is sealed: fsync → rename → dir fsync (a crash leaves an
//!    orphan pack no row references: garbage for gc);
//! 3. its chunk rows are committed (a crash leaves indexed but unreferenced
//!    chunks: reused by the next run, or collected by gc);
//! 4. the group's journal records are appended and fdatasynced (a crash
//!    leaves records the next writer trims: the catalog lacks them);
//! 5. the group's snapshots commit in one transaction with their new tree
//!    rows and references, and at the end of the run the run row (a crash
//!    before it: no snapshot, nothing dangling).
//!
//! Trees are indexed only in step 5, together with their references, so every
//! indexed tree has complete `tree_refs` (gc relies on it). After the first
//! failure the writer latches failed and every later request gets an error:
//! a failed write or fsync is never retried.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::catalog::{Catalog, PendingTree, SkipList, TreeRefs};
use crate::error::{Error, Problem, Result};
use crate::id::Id;
use crate::journal::RunJournal;
use crate::model::{RunRow, SnapshotRow};
use crate::pack::{BlobKind, PackWriter, RecordHeader};
use crate::snapshot::queued::CloseOnDrop;
pub(crate) use crate::snapshot::queued::QueuedBytes;
use crate::timespec;

/// Ids claimed by some worker in this run and not yet visible in the catalog.
pub(crate) type Pending = Arc<Mutex<HashSet<Id>>>;

pub(crate) enum Msg {
    Blob {
        header: RecordHeader,
        payload: Vec<u8>,
        /// For trees: every id the tree references.
        refs: Vec<Id>,
    },
    Commit {
        row: Box<SnapshotRow>,
        skips: Vec<(Vec<u8>, String)>,
        reply: Sender<Result<()>>,
    },
    /// A tree or chunk list that is already indexed was referenced again:
    /// its references are checked into `tree_refs` at the next group commit
    /// (see `catalog::blobs::complete_refs`).
    Known { id: Id, refs: Vec<Id> },
    /// Write the queued snapshots now (the next source is a workspace with a
    /// queued snapshot: its parent must be readable).
    Flush { reply: Sender<Result<()>> },
    /// The workspace being written failed: forget its trees that no queued
    /// snapshot claimed.
    Discard { reply: Sender<()> },
    Finish {
        run: RunRow,
        reply: Sender<Result<Vec<Refused>>>,
    },
}

/// A snapshot the catalog refused at its group commit (it references a blob
/// the store lacks): that workspace failed; the rest of the group committed.
#[derive(Debug)]
pub(crate) struct Refused {
    pub row: SnapshotRow,
    pub reason: String,
}

pub(crate) struct Writer {
    tx: Sender<Msg>,
    queued: Arc<QueuedBytes>,
    handle: Option<JoinHandle<()>>,
}

/// A group commit is written once it holds this many snapshots…
pub(crate) const GROUP_ROWS: usize = 1000;
/// …or once its oldest snapshot has waited this long.
pub(crate) const GROUP_AGE: Duration = Duration::from_secs(10);

/// Messages in flight: with chunks of at most 128 KiB, 8 MiB of data
/// (the bytes are bounded apart, [`QueuedBytes`]).
const QUEUE: usize = 64;

impl Writer {
    pub fn spawn(
        catalog: Catalog,
        packs: PackWriter,
        journal: RunJournal,
        pending: Pending,
        target_bytes: u64,
    ) -> Writer {
        let (tx, rx) = bounded(QUEUE);
        let queued = Arc::new(QueuedBytes::new());
        let close = CloseOnDrop(queued.clone());
        let checkpointer = Checkpointer::spawn(&catalog);
        let handle = std::thread::Builder::new()
            .name("wsnap-writer".into())
            .spawn(move || {
                let _close = close;
                WriterState {
                    catalog,
                    packs,
                    journal,
                    pending,
                    target_bytes,
                    open_trees: Vec::new(),
                    open_chunks: Vec::new(),
                    sealed_trees: Vec::new(),
                    known_trees: Vec::new(),
                    claimed: 0,
                    group: Vec::new(),
                    group_ends: Vec::new(),
                    refused: Vec::new(),
                    group_since: None,
                    group_rows: crate::failpoint::group_rows().unwrap_or(GROUP_ROWS),
                    failure: None,
                    first_error: None,
                    checkpointer,
                    queued: _close.0.clone(),
                }
                .run(rx)
            })
            .expect("spawning the writer thread");
        Writer {
            tx,
            queued,
            handle: Some(handle),
        }
    }

    pub fn sender(&self) -> Sender<Msg> {
        self.tx.clone()
    }

    /// What a sender of blobs counts them in (see [`QueuedBytes`]).
    pub fn queued_bytes(&self) -> Arc<QueuedBytes> {
        self.queued.clone()
    }

    fn request<T>(&self, make: impl FnOnce(Sender<T>) -> Msg) -> Result<T> {
        let (reply, rx) = bounded(1);
        self.tx.send(make(reply)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())
    }

    pub fn commit(&self, row: SnapshotRow, skips: Vec<(Vec<u8>, String)>) -> Result<()> {
        self.request(|reply| Msg::Commit {
            row: Box::new(row),
            skips,
            reply,
        })?
    }

    /// [`Writer::commit`] without waiting: the answer comes on `reply`
    /// once the writer has queued the row (in order, after every blob sent
    /// before it). `Err` only when the writer is gone.
    pub fn commit_async(
        &self,
        row: SnapshotRow,
        skips: Vec<(Vec<u8>, String)>,
        reply: Sender<Result<()>>,
    ) -> Result<()> {
        self.tx
            .send(Msg::Commit {
                row: Box::new(row),
                skips,
                reply,
            })
            .map_err(|_| gone())
    }

    pub fn flush(&self) -> Result<()> {
        self.request(|reply| Msg::Flush { reply })?
    }

    pub fn discard(&self) -> Result<()> {
        self.request(|reply| Msg::Discard { reply })
    }

    /// Commit what is queued and the run row; returns the snapshots the
    /// catalog refused in this run (each with why), which are not in it.
    pub fn finish(mut self, run: RunRow) -> Result<Vec<Refused>> {
        let r = self.request(|reply| Msg::Finish { run, reply });
        self.join();
        r?
    }

    fn join(&mut self) {
        if let Some(h) = self.handle.take() {
            let (dummy, _) = bounded(0);
            self.tx = dummy; // close our end so the thread's loop ends
            let _ = h.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.join();
    }
}

pub(crate) fn gone() -> Error {
    Error::store_write(
        "writer thread",
        std::io::Error::other("the store writer stopped"),
    )
}

struct OpenTree {
    kind: BlobKind,
    id: Id,
    offset: u64,
    stored_len: u32,
    raw_len: u32,
    refs: Vec<Id>,
}

struct WriterState {
    catalog: Catalog,
    packs: PackWriter,
    journal: RunJournal,
    pending: Pending,
    target_bytes: u64,
    open_trees: Vec<OpenTree>,
    open_chunks: Vec<Id>,
    sealed_trees: Vec<PendingTree>,
    /// Indexed trees referenced again in this group, with their references.
    known_trees: Vec<TreeRefs>,
    /// How many trees of `sealed_trees ++ open_trees` (in that order, which
    /// is arrival order) belong to queued snapshots.
    claimed: usize,
    /// Snapshots waiting for the group commit, with their skip lists.
    group: Vec<(SnapshotRow, SkipList)>,
    /// For each of `group`: where its trees end in `sealed_trees ++
    /// open_trees`, and its known trees in `known_trees` (a workspace's
    /// blobs arrive before its commit request, one workspace at a time).
    group_ends: Vec<(usize, usize)>,
    /// Snapshots the catalog refused in this run.
    refused: Vec<Refused>,
    group_since: Option<Instant>,
    group_rows: usize,
    failure: Option<String>,
    first_error: Option<Error>,
    checkpointer: Option<Checkpointer>,
    queued: Arc<QueuedBytes>,
}

/// The thread that checkpoints the catalog beside the writer: a group
/// commit of a tick writes thousands of WAL frames (index pages spread
/// over every workspace's range at 10,000 workspaces × 288 snapshots), and
/// copying them into the database with its fsyncs at each commit cost
/// the writer, the run's critical path, a third of its time. The writer
/// commits with its automatic checkpoint off and nudges this thread after
/// each group; at the end of the run the thread stops and the writer's
/// final checkpoint folds in what is left. Checkpoints change nothing
/// committed (a crash in one is finished from the WAL).
struct Checkpointer {
    nudge: Sender<()>,
    handle: JoinHandle<()>,
}

impl Checkpointer {
    /// Start it, and turn the writer's automatic checkpoint off; `None`
    /// (the writer checkpoints itself, as SQLite does) if either fails.
    fn spawn(writer: &Catalog) -> Option<Checkpointer> {
        let cat = Catalog::open(writer.path(), true).ok()?;
        writer.without_auto_checkpoints().ok()?;
        let (nudge, nudged) = bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name("wsnap-checkpoint".into())
            .spawn(move || {
                for () in nudged {
                    // Best effort: the end-of-run checkpoint and the next
                    // runs finish what this one could not.
                    if let Err(e) = cat.checkpoint_passive() {
                        tracing::debug!("catalog checkpoint beside the writer failed: {e}");
                    }
                }
            })
            .ok()?;
        Some(Checkpointer { nudge, handle })
    }

    /// A group was committed: checkpoint soon (nudges while one runs
    /// coalesce).
    fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }

    fn stop(self) {
        drop(self.nudge);
        let _ = self.handle.join();
    }
}

impl WriterState {
    fn run(mut self, rx: Receiver<Msg>) {
        for msg in rx {
            match msg {
                Msg::Blob {
                    header,
                    payload,
                    refs,
                } => {
                    if self.failure.is_none() {
                        let r = self.append(header, &payload, refs);
                        self.latch(r);
                    }
                    self.queued.take(payload.len() as u64);
                }
                Msg::Known { id, refs } => {
                    if self.failure.is_none() {
                        self.known_trees.push((id, refs));
                    }
                }
                Msg::Commit { row, skips, reply } => {
                    let r = self.check().and_then(|_| self.queue(*row, skips));
                    let r = self.latch_keep(r);
                    let _ = reply.send(r);
                }
                Msg::Flush { reply } => {
                    let r = self.check().and_then(|_| self.commit_group(None));
                    let r = self.latch_keep(r);
                    let _ = reply.send(r);
                }
                Msg::Discard { reply } => {
                    let keep_sealed = self.claimed.min(self.sealed_trees.len());
                    let keep_open = self.claimed - keep_sealed;
                    let mut pending = self.pending.lock().expect("pending poisoned");
                    for t in self.sealed_trees.drain(keep_sealed..) {
                        pending.remove(&t.id);
                    }
                    for t in self.open_trees.drain(keep_open..) {
                        pending.remove(&t.id);
                    }
                    let _ = reply.send(());
                }
                Msg::Finish { mut run, reply } => {
                    // Snapshots refused by earlier groups failed after all.
                    refuse_in(&mut run, self.refused.len());
                    let r = self
                        .check()
                        .and_then(|_| self.commit_group(Some(&run)))
                        .and_then(|_| self.journal.close());
                    if let Some(c) = self.checkpointer.take() {
                        c.stop();
                    }
                    let r = r
                        // Best effort, never waiting: a reader holding an
                        // old view only makes the checkpoint partial (the
                        // next run finishes it); nothing is lost.
                        .map(|_| match self.catalog.checkpoint_without_waiting() {
                            Ok(true) => {}
                            Ok(false) => tracing::debug!(
                                "catalog checkpoint partial: a reader holds an older view"
                            ),
                            Err(e) => tracing::debug!("catalog checkpoint failed: {e}"),
                        });
                    let r = self.latch_keep(r);
                    let _ = reply.send(r.map(|()| std::mem::take(&mut self.refused)));
                }
            }
        }
    }

    /// The first failure is handed, as it was, to the next request; later
    /// requests get a short reminder.
    fn check(&mut self) -> Result<()> {
        if let Some(e) = self.first_error.take() {
            return Err(e);
        }
        match &self.failure {
            None => Ok(()),
            Some(msg) => Err(Error::store_write(
                "store",
                std::io::Error::other(format!("an earlier write failed: {msg}")),
            )),
        }
    }

    fn latch(&mut self, r: Result<()>) {
        if let Err(e) = r {
            if self.failure.is_none() {
                self.failure = Some(e.to_string());
                self.first_error = Some(e);
            }
        }
    }

    fn latch_keep(&mut self, r: Result<()>) -> Result<()> {
        if let Err(e) = &r {
            if self.failure.is_none() {
                self.failure = Some(e.to_string());
            }
        }
        r
    }

    fn append(&mut self, header: RecordHeader, payload: &[u8], refs: Vec<Id>) -> Result<()> {
        let offset = self.packs.append(header, payload)?;
        match header.kind {
            BlobKind::Tree | BlobKind::ChunkList => self.open_trees.push(OpenTree {
                kind: header.kind,
                id: header.id,
                offset,
                stored_len: header.stored_len,
                raw_len: header.raw_len,
                refs,
            }),
            BlobKind::Chunk => self.open_chunks.push(header.id),
        }
        if self.packs.len_bytes() >= self.target_bytes {
            self.seal_and_index()?;
        }
        Ok(())
    }

    /// Seal the open pack (if any) and index its chunks.
    fn seal_and_index(&mut self) -> Result<()> {
        let Some(sealed) = self.packs.seal()? else {
            return Ok(());
        };
        crate::failpoint::crash_point("snapshot.pack_sealed");
        // The pack is durable; only now may rows point into it.
        self.catalog.insert_pack(&sealed, timespec::now_ns())?;
        crate::failpoint::crash_point("snapshot.pack_indexed");
        for t in self.open_trees.drain(..) {
            self.sealed_trees.push(PendingTree {
                kind: t.kind,
                id: t.id,
                pack: sealed.id,
                offset: t.offset,
                stored_len: t.stored_len,
                raw_len: t.raw_len,
                refs: t.refs,
            });
        }
        let mut pending = self.pending.lock().expect("pending poisoned");
        for id in self.open_chunks.drain(..) {
            pending.remove(&id);
        }
        Ok(())
    }

    /// Queue a workspace's snapshot (every blob it references was received
    /// before this request) and write the group if it is due.
    fn queue(&mut self, row: SnapshotRow, skips: Vec<(Vec<u8>, String)>) -> Result<()> {
        self.group.push((row, skips));
        self.claimed = self.sealed_trees.len() + self.open_trees.len();
        self.group_ends.push((self.claimed, self.known_trees.len()));
        let since = *self.group_since.get_or_insert_with(Instant::now);
        if self.group.len() >= self.group_rows || since.elapsed() >= GROUP_AGE {
            self.commit_group(None)?;
        }
        Ok(())
    }

    /// Write the queued snapshots (and the run row, at the end of the run):
    /// seal the pack, journal the rows, commit them in one transaction.
    fn commit_group(&mut self, run: Option<&RunRow>) -> Result<()> {
        if self.group.is_empty() && run.is_none() {
            return Ok(());
        }
        self.seal_and_index()?;
        let rows: Vec<SnapshotRow> = self.group.iter().map(|(r, _)| r.clone()).collect();
        let mark = self.journal.mark()?;
        if !rows.is_empty() {
            crate::failpoint::crash_point("snapshot.before_commit");
            // The journal records are durable before the catalog rows exist,
            // so a lost catalog can always be rebuilt with every committed
            // snapshot.
            self.journal.append_all(&rows)?;
            crate::failpoint::crash_point("snapshot.journaled");
        }
        match self.catalog.commit_snapshots(
            &self.sealed_trees,
            &self.known_trees,
            &self.group,
            self.journal.name(),
            run,
        ) {
            Ok(()) => {}
            // Some snapshot references a blob the store lacks: take the
            // group's records back and commit snapshot by snapshot, so
            // only the workspaces at fault fail.
            Err(e) if refusal(&e) && !self.group.is_empty() => {
                tracing::warn!("group commit refused ({e}); committing one snapshot at a time");
                self.journal.truncate(mark)?;
                self.commit_one_by_one(run)?;
            }
            Err(e) => return Err(e),
        }
        self.known_trees.clear();
        self.group_ends.clear();
        if !rows.is_empty() {
            crate::failpoint::crash_point("snapshot.committed");
        }
        if let Some(c) = &self.checkpointer {
            c.nudge();
        }
        self.group.clear();
        self.group_since = None;
        self.claimed = 0;
        let mut pending = self.pending.lock().expect("pending poisoned");
        for t in self.sealed_trees.drain(..) {
            pending.remove(&t.id);
        }
        Ok(())
    }

    /// The group, one snapshot per transaction (each journaled first, its
    /// record taken back if the catalog refuses it), then the run row with
    /// the refused snapshots counted as failed.
    fn commit_one_by_one(&mut self, run: Option<&RunRow>) -> Result<()> {
        let group = std::mem::take(&mut self.group);
        let ends = std::mem::take(&mut self.group_ends);
        let (mut tree_from, mut known_from) = (0, 0);
        let mut refused = 0;
        for ((row, skips), (tree_end, known_end)) in group.into_iter().zip(ends) {
            let trees = &self.sealed_trees[tree_from..tree_end];
            let known = &self.known_trees[known_from..known_end];
            (tree_from, known_from) = (tree_end, known_end);
            let mark = self.journal.mark()?;
            self.journal.append_all(std::slice::from_ref(&row))?;
            let one = [(row, skips)];
            match self
                .catalog
                .commit_snapshots(trees, known, &one, self.journal.name(), None)
            {
                Ok(()) => {}
                Err(e) if refusal(&e) => {
                    self.journal.truncate(mark)?;
                    let [(row, _)] = one;
                    tracing::error!("{}: snapshot not committed: {e}", row.workspace);
                    self.refused.push(Refused {
                        row,
                        reason: format!("not committed: {e}"),
                    });
                    refused += 1;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(run) = run {
            let mut run = run.clone();
            refuse_in(&mut run, refused);
            self.catalog
                .commit_snapshots(&[], &[], &[], self.journal.name(), Some(&run))?;
        }
        Ok(())
    }
}

/// Whether the catalog refused a commit for what it references (a blob the
/// store lacks), rather than failing to write.
fn refusal(e: &Error) -> bool {
    matches!(
        e,
        Error::Corrupt {
            problem: Problem::NotStored,
            ..
        }
    )
}

/// Count `n` refused snapshots of `run` as failed workspaces.
fn refuse_in(run: &mut RunRow, n: usize) {
    let n = n as u64;
    run.workspaces_ok = run.workspaces_ok.saturating_sub(n);
    run.workspaces_failed += n;
}
