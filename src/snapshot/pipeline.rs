//! Reading workspace files into chunks, and handing new blobs to the writer.
//!
//! Files are read with plain `read(2)` into the chunker's bounded buffer:
//! never memory-mapped (a file truncated under a map kills the process with
//! SIGBUS) and never whole into memory. Each buffer's chunks are hashed,
//! looked up and compressed in parallel (rayon); only unknown blobs are
//! compressed and sent. A file whose size or times move while it is read is
//! read again, up to [`READ_ATTEMPTS`] times, then stored as read and flagged.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;
use rayon::prelude::*;

use crate::catalog::CatalogPool;
use crate::chunker::{StreamChunker, DEFAULT_BUFFER_BYTES};
use crate::dirfd::{self, Dir, Stat};
use crate::error::Result;
use crate::id::{ChunkId, Id};
use crate::model::StoreParams;
use crate::pack::{self, BlobKind};
use crate::snapshot::writer::{Msg, Pending, QueuedBytes};
use crate::store::Store;

/// How many times a file that changes while read is tried.
pub const READ_ATTEMPTS: usize = 3;

/// Shared by the workers of one run: decides whether a blob is new and, if
/// so, compresses it and sends it to the writer.
pub(crate) struct BlobSink<'a> {
    pub store: &'a Store,
    pub lookup: &'a CatalogPool,
    pub pending: &'a Pending,
    pub tx: Sender<Msg>,
    /// Bounds the blob bytes `tx` holds.
    pub queued: Arc<QueuedBytes>,
    pub zstd_level: i32,
}

impl BlobSink<'_> {
    /// Make sure blob `id` (= hash of `raw`) is stored. Returns the pack
    /// bytes this added (0 when it was already known).
    pub fn put(&self, kind: BlobKind, id: Id, raw: &[u8], refs: Vec<Id>) -> Result<u64> {
        if self.pending.lock().expect("pending poisoned").contains(&id) {
            return Ok(0);
        }
        // Not pending: either never seen in this run, or indexed already
        // (the writer removes ids from `pending` only after committing them).
        if let Some(loc) = self.lookup.with(|c| c.blob_location(&id))? {
            if kind == BlobKind::Chunk {
                return Ok(0);
            }
            // An indexed tree or chunk list referenced again (rare: a
            // directory back to an earlier state, or after damage): it must
            // read back, or this copy replaces it (the writer re-points the
            // index row, see `catalog::blobs::index_trees`); and its references
            // must be complete (a repaired store may lack some).
            if self.store.read_blob_at(&id, kind, Some(loc)).is_ok() {
                if !refs.is_empty() {
                    self.send(Msg::Known { id, refs })?;
                }
                return Ok(0);
            }
        }
        if !self.pending.lock().expect("pending poisoned").insert(id) {
            return Ok(0); // another worker claimed it meanwhile
        }
        let (header, payload) = pack::new_record(kind, id, raw, self.zstd_level);
        let added = pack::record_bytes(payload.len() as u64);
        if !self.queued.add(payload.len() as u64) {
            return Err(writer_stopped());
        }
        self.send(Msg::Blob {
            header,
            payload,
            refs,
        })?;
        Ok(added)
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.tx.send(msg).map_err(|_| writer_stopped())
    }
}

fn writer_stopped() -> crate::error::Error {
    crate::error::Error::store_write(
        "writer thread",
        io::Error::other("the store writer stopped"),
    )
}

/// A file's content as stored.
pub(crate) struct FileContent {
    pub chunks: Vec<ChunkId>,
    /// Bytes stored (what was read).
    pub size: u64,
    /// Metadata of the version that was read.
    pub stat: Stat,
    pub changed_during_read: bool,
}

/// Per-workspace counters updated by workers.
#[derive(Default)]
pub(crate) struct Counters {
    pub bytes_read: AtomicU64,
    pub bytes_added: AtomicU64,
}

/// Read, chunk and store file `name` of `dir`, which `fstatat` described
/// as `seen`. The outer `Result` is a store failure (ends the run); the
/// inner one a failure to read the file (skip it), or
/// [`dirfd::is_replaced`] when the object opened is not the one listed.
pub(crate) fn store_file(
    dir: &Dir,
    name: &[u8],
    seen: &Stat,
    params: &StoreParams,
    sink: &BlobSink<'_>,
    counters: &Counters,
) -> Result<io::Result<FileContent>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Checked to be the regular file that was listed: never a symlink
        // (O_NOFOLLOW), never another object swapped in since.
        let (file, before) = match dir.open_file_as(name, seen) {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        // One byte more than the size, so EOF is seen in the first fill.
        let buffer = (before.size as usize)
            .saturating_add(1)
            .min(DEFAULT_BUFFER_BYTES);
        // The tier is decided here, once per read, from the size before it:
        // a file that grows past a tier's size is cut anew (a one-time
        // re-store of that file; docs/ADMIN.md "Supported scale").
        let mut chunker = StreamChunker::new(&file, params.chunker_for(before.size), buffer);
        let mut cuts = Vec::new();
        let mut chunks = Vec::new();
        let mut added = 0u64;
        loop {
            let buf = match chunker.next_batch(&mut cuts) {
                Ok(Some(buf)) => buf,
                Ok(None) => break,
                Err(e) => {
                    counters
                        .bytes_read
                        .fetch_add(chunker.bytes_read(), Ordering::Relaxed);
                    return Ok(Err(e));
                }
            };
            let put = |r: &std::ops::Range<usize>| -> Result<(ChunkId, u64)> {
                let data = &buf[r.clone()];
                let id = Id::of(data);
                let n = sink.put(BlobKind::Chunk, id, data, Vec::new())?;
                Ok((ChunkId(id), n))
            };
            let batch: Vec<(ChunkId, u64)> = if cuts.len() == 1 {
                vec![put(&cuts[0])?]
            } else {
                cuts.par_iter().map(put).collect::<Result<_>>()?
            };
            for (id, n) in batch {
                chunks.push(id);
                added += n;
            }
        }
        counters
            .bytes_read
            .fetch_add(chunker.bytes_read(), Ordering::Relaxed);
        counters.bytes_added.fetch_add(added, Ordering::Relaxed);
        crate::failpoint::pause_point("snapshot.file_read");
        let after = match dirfd::fstat(&file) {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let stable = before.same_version(&after) && chunker.bytes_read() == before.size;
        if stable || attempt >= READ_ATTEMPTS {
            return Ok(Ok(FileContent {
                chunks,
                size: chunker.bytes_read(),
                stat: if stable { before } else { after },
                changed_during_read: !stable,
            }));
        }
    }
}
