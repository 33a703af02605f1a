//! File contents from the store, verified: the one home of "a file's
//! chunks" for restore and `cat` (in order, [`for_each_chunk`]) and for the
//! mount (by offset, [`FileIndex`]).
//!
//! Every blob is looked up through one pinned catalog view
//! ([`PinnedCatalog`]: the caller holds the readers' lock, so gc deletes no
//! pack that view names), read with `pread`, decompressed and verified
//! against its id (`Store::read_blob_at`). A blob that cannot be read or
//! decoded is [`Unreadable`]: it fails the file that needs it, not the run.
//!
//! A large file's chunk ids are in chunk lists (`chunklist.rs`); a list
//! says which chunks, not how long they are. [`FileIndex`] learns each
//! chunk's length from the catalog (`raw_len`, no pack read) list by list,
//! only as far as a read needs, and keeps the cumulative offsets: a read at
//! offset N is two binary searches, never a decode from the start.

use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::catalog::PinnedCatalog;
use crate::chunklist;
use crate::error::{Error, Problem, Result};
use crate::id::{ChunkId, Id, ListId, TreeId};
use crate::pack::BlobKind;
use crate::store::Store;
use crate::tree::{FileContent, Tree, TreeBlob};

/// A blob a file or directory needs that cannot be read or decoded: that
/// file or directory is lost (restore records it as damage, the mount
/// answers EIO for it), the rest goes on.
#[derive(Debug)]
pub struct Unreadable {
    pub kind: BlobKind,
    pub id: Id,
    pub error: Box<Error>,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} {} unreadable: {}",
            self.kind,
            self.id.short(),
            self.error
        )
    }
}

impl Unreadable {
    fn new(kind: BlobKind, id: Id, error: Error) -> Unreadable {
        Unreadable {
            kind,
            id,
            error: Box::new(error),
        }
    }

    /// The error itself (for a caller that stops at the first damage).
    pub fn into_error(self) -> Error {
        *self.error
    }
}

/// Verified blobs of a store through one pinned catalog view.
#[derive(Clone, Copy)]
pub struct Blobs<'a> {
    pub store: &'a Store,
    pub catalog: &'a PinnedCatalog,
}

impl<'a> Blobs<'a> {
    pub fn new(store: &'a Store, catalog: &'a PinnedCatalog) -> Blobs<'a> {
        Blobs { store, catalog }
    }

    /// Look the blob up under the catalog lock, read it outside it.
    pub fn read(&self, id: &Id, kind: BlobKind) -> std::result::Result<Vec<u8>, Unreadable> {
        self.catalog
            .with(|cat| cat.blob_location(id))
            .and_then(|loc| self.store.read_blob_at(id, kind, loc))
            .map_err(|e| Unreadable::new(kind, *id, e))
    }

    /// A directory's whole listing (every piece of an indexed one).
    pub fn tree(&self, id: &TreeId) -> std::result::Result<Tree, Unreadable> {
        let raw = self.read(&id.0, BlobKind::Tree)?;
        let bad = |id: &TreeId, e| Unreadable::new(BlobKind::Tree, id.0, e);
        match crate::tree::decode_blob(&raw).map_err(|e| bad(id, e))? {
            TreeBlob::Flat(t) => Ok(t),
            TreeBlob::Index(index) => crate::tree::index::assemble(
                &index,
                |p| {
                    let raw = self.read(&p.tree.0, BlobKind::Tree)?;
                    Tree::decode(&raw).map_err(|e| bad(&p.tree, e))
                },
                |e, p| bad(&p.tree, e),
            ),
        }
    }

    /// The chunk ids of one chunk list.
    pub fn list(&self, id: &ListId) -> std::result::Result<Vec<ChunkId>, Unreadable> {
        let raw = self.read(&id.0, BlobKind::ChunkList)?;
        chunklist::decode(&raw).map_err(|e| Unreadable::new(BlobKind::ChunkList, id.0, e))
    }

    /// The length of each chunk, from the catalog alone (no pack read).
    pub fn chunk_lens(&self, ids: &[ChunkId]) -> std::result::Result<Vec<u64>, Unreadable> {
        self.catalog
            .with(|cat| {
                let mut out = Vec::with_capacity(ids.len());
                for c in ids {
                    let loc = cat.blob_location(&c.0);
                    let len = match loc {
                        Ok(Some(l)) if l.kind == BlobKind::Chunk => u64::from(l.raw_len),
                        Ok(Some(l)) => {
                            let e = Error::corrupt(Problem::KindMismatch {
                                found: l.kind.name(),
                                expected: BlobKind::Chunk.name(),
                            });
                            return Ok(Err(Unreadable::new(BlobKind::Chunk, c.0, e)));
                        }
                        Ok(None) => {
                            let e = Error::corrupt(Problem::NotIndexed)
                                .within(BlobKind::Chunk.object(c.0));
                            return Ok(Err(Unreadable::new(BlobKind::Chunk, c.0, e)));
                        }
                        Err(e) => return Ok(Err(Unreadable::new(BlobKind::Chunk, c.0, e))),
                    };
                    out.push(len);
                }
                Ok(Ok(out))
            })
            .unwrap_or_else(|e| Err(Unreadable::new(BlobKind::Chunk, Id([0; 32]), e)))
    }
}

/// Chunks of one file read in parallel by [`for_each_chunk`] (at most
/// 8 maximum-size chunks in memory: 1 MiB for files cut with the base
/// sizes, 32 MiB at the most a large-file tier allows).
pub const BATCH: usize = 8;

/// Feed a file's chunks, verified, to `write` in order, reading a few in
/// parallel (memory stays bounded whatever the file's size). `Err` means a
/// damaged blob (this file is lost); `Ok(Err)` is a failure of `write`.
pub fn for_each_chunk(
    blobs: &Blobs<'_>,
    content: &FileContent,
    mut write: impl FnMut(&[u8]) -> Result<()>,
) -> std::result::Result<Result<()>, Unreadable> {
    let mut feed = |chunks: &[ChunkId]| -> std::result::Result<Result<()>, Unreadable> {
        for batch in chunks.chunks(BATCH) {
            let data: Vec<_> = if batch.len() == 1 {
                vec![blobs.read(&batch[0].0, BlobKind::Chunk)]
            } else {
                batch
                    .par_iter()
                    .map(|c| blobs.read(&c.0, BlobKind::Chunk))
                    .collect()
            };
            for d in data {
                if let Err(e) = write(&d?) {
                    return Ok(Err(e));
                }
            }
        }
        Ok(Ok(()))
    };
    match content {
        FileContent::Chunks(chunks) => feed(chunks),
        FileContent::Lists(lists) => {
            for l in lists {
                let chunks = blobs.list(l)?;
                if let Err(e) = feed(&chunks)? {
                    return Ok(Err(e));
                }
            }
            Ok(Ok(()))
        }
    }
}

/// One chunk of a file and where it lies in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkAt {
    pub id: ChunkId,
    /// Offset of its first byte in the file.
    pub start: u64,
    pub len: u64,
}

/// The chunks of one list (or of a file's inline ids), with their offsets.
#[derive(Debug)]
struct Segment {
    chunks: Vec<ChunkId>,
    /// End offset (in the file) of each chunk: strictly increasing.
    ends: Vec<u64>,
    start: u64,
}

impl Segment {
    fn new(chunks: Vec<ChunkId>, lens: &[u64], start: u64) -> Segment {
        let mut ends = Vec::with_capacity(lens.len());
        let mut at = start;
        for l in lens {
            at += l;
            ends.push(at);
        }
        Segment {
            chunks,
            ends,
            start,
        }
    }

    fn end(&self) -> u64 {
        self.ends.last().copied().unwrap_or(self.start)
    }

    fn at(&self, offset: u64) -> Option<ChunkAt> {
        let i = self.ends.partition_point(|&e| e <= offset);
        let end = *self.ends.get(i)?;
        let start = if i == 0 { self.start } else { self.ends[i - 1] };
        Some(ChunkAt {
            id: self.chunks[i],
            start,
            len: end - start,
        })
    }
}

/// Where each byte of a file is: the chunk holding offset N, found by
/// binary search over cumulative offsets. Lists are loaded (one list blob
/// and its chunks' lengths from the catalog) only up to the furthest
/// offset asked for, and kept: shared by every reader of the file.
#[derive(Debug)]
pub struct FileIndex {
    content: FileContent,
    loaded: Mutex<Vec<Arc<Segment>>>,
}

impl FileIndex {
    pub fn new(content: FileContent) -> FileIndex {
        FileIndex {
            content,
            loaded: Mutex::new(Vec::new()),
        }
    }

    /// How many segments the file has (inline ids: one; else one per list).
    fn segments(&self) -> usize {
        match &self.content {
            FileContent::Chunks(_) => 1,
            FileContent::Lists(l) => l.len(),
        }
    }

    /// The chunk holding byte `offset`, or `None` past the end.
    pub fn locate(
        &self,
        blobs: &Blobs<'_>,
        offset: u64,
    ) -> std::result::Result<Option<ChunkAt>, Unreadable> {
        let mut loaded = self.loaded.lock().expect("file index poisoned");
        loop {
            let end = loaded.last().map_or(0, |s| s.end());
            if offset < end {
                break;
            }
            if loaded.len() == self.segments() {
                return Ok(None);
            }
            let (chunks, start) = match &self.content {
                FileContent::Chunks(c) => (c.clone(), 0),
                FileContent::Lists(l) => (blobs.list(&l[loaded.len()])?, end),
            };
            let lens = blobs.chunk_lens(&chunks)?;
            loaded.push(Arc::new(Segment::new(chunks, &lens, start)));
        }
        let i = loaded.partition_point(|s| s.end() <= offset);
        Ok(loaded[i].at(offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> ChunkId {
        ChunkId(Id::of(&n.to_le_bytes()))
    }

    #[test]
    fn a_segment_finds_the_chunk_of_every_offset() {
        let s = Segment::new(vec![id(0), id(1), id(2)], &[10, 5, 7], 100);
        assert_eq!(s.end(), 122);
        let at = |o| s.at(o).map(|c| (c.id, c.start, c.len));
        assert_eq!(at(100), Some((id(0), 100, 10)));
        assert_eq!(at(109), Some((id(0), 100, 10)));
        assert_eq!(at(110), Some((id(1), 110, 5)));
        assert_eq!(at(115), Some((id(2), 115, 7)));
        assert_eq!(at(121), Some((id(2), 115, 7)));
        assert_eq!(at(122), None);
    }
}
