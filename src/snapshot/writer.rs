//! The single writer of a run: owns the open pack and the catalog write
//! connection, fed by a bounded channel (which also bounds memory).
//!
//! Crash order, per snapshot:
//! 1. blobs are appended to the open pack (a crash leaves a `tmp/` file);
//! 2. the pack is sealed: fsync → rename → dir fsync (a crash leaves an
//!    orphan pack no row references: garbage for gc);
//! 3. its chunk rows are committed (a crash leaves indexed but unreferenced
//!    chunks: reused by the next run, or collected by gc);
//! 4. the snapshot commits in one transaction with its new tree rows and
//!    their references (a crash before it: no snapshot, nothing dangling).
//!
//! Trees are indexed only in step 4, together with their references, so every
//! indexed tree has complete `tree_refs` (gc relies on it). After the first
//! failure the writer latches failed and every later request gets an error:
//! a failed write or fsync is never retried.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::catalog::{Catalog, PendingTree, RunRow, SnapshotRow};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::journal::RunJournal;
use crate::pack::{BlobKind, PackWriter, RecordHeader};
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
    /// The workspace being written failed: forget its unindexed trees.
    Discard { reply: Sender<()> },
    Finish {
        run: RunRow,
        reply: Sender<Result<()>>,
    },
}

pub(crate) struct Writer {
    tx: Sender<Msg>,
    handle: Option<JoinHandle<()>>,
}

/// Messages in flight; with chunks of at most 128 KiB this bounds queued
/// data to 8 MiB.
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
        let handle = std::thread::Builder::new()
            .name("wsnap-writer".into())
            .spawn(move || {
                WriterState {
                    catalog,
                    packs,
                    journal,
                    pending,
                    target_bytes,
                    open_trees: Vec::new(),
                    open_chunks: Vec::new(),
                    sealed_trees: Vec::new(),
                    failure: None,
                    first_error: None,
                }
                .run(rx)
            })
            .expect("spawning the writer thread");
        Writer {
            tx,
            handle: Some(handle),
        }
    }

    pub fn sender(&self) -> Sender<Msg> {
        self.tx.clone()
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

    pub fn discard(&self) -> Result<()> {
        self.request(|reply| Msg::Discard { reply })
    }

    pub fn finish(mut self, run: RunRow) -> Result<()> {
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

fn gone() -> Error {
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
    failure: Option<String>,
    first_error: Option<Error>,
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
                }
                Msg::Commit { row, skips, reply } => {
                    let r = self.check().and_then(|_| self.commit(&row, &skips));
                    let r = self.latch_keep(r);
                    let _ = reply.send(r);
                }
                Msg::Discard { reply } => {
                    let mut pending = self.pending.lock().expect("pending poisoned");
                    for t in self.open_trees.drain(..) {
                        pending.remove(&t.id);
                    }
                    for t in self.sealed_trees.drain(..) {
                        pending.remove(&t.id);
                    }
                    let _ = reply.send(());
                }
                Msg::Finish { run, reply } => {
                    let r = self
                        .check()
                        .and_then(|_| self.seal_and_index())
                        .and_then(|_| self.journal.close())
                        .and_then(|_| self.catalog.insert_run(&run))
                        // Best effort: a reader holding an old snapshot only
                        // makes the checkpoint partial; nothing is lost.
                        .map(|_| {
                            let _ = self.catalog.checkpoint();
                        });
                    let r = self.latch_keep(r);
                    let _ = reply.send(r);
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

    fn commit(&mut self, row: &SnapshotRow, skips: &[(Vec<u8>, String)]) -> Result<()> {
        self.seal_and_index()?;
        crate::failpoint::crash_point("snapshot.before_commit");
        // The journal record is durable before the catalog row exists, so a
        // lost catalog can always be rebuilt with every committed snapshot.
        self.journal.append(row)?;
        crate::failpoint::crash_point("snapshot.journaled");
        self.catalog
            .commit_snapshot(&self.sealed_trees, row, skips, self.journal.name())?;
        crate::failpoint::crash_point("snapshot.committed");
        let mut pending = self.pending.lock().expect("pending poisoned");
        for t in self.sealed_trees.drain(..) {
            pending.remove(&t.id);
        }
        Ok(())
    }
}
