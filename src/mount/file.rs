//! Reading through the mount: bounded caches of verified chunks and of
//! directory listings, and open files.
//!
//! A read at offset N asks the file's [`FileIndex`] for the chunk holding
//! N (binary search over cumulative offsets), takes it from the chunk cache
//! or reads it (verified against its id) through the generation the file
//! was opened in, and copies the asked range; a read spanning chunks takes
//! each in turn. Concurrent readers of one missing chunk wait for one read
//! of it (`quick_cache`'s guard), and the cache is bounded by bytes.

use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::id::{ChunkId, TreeId};
use crate::pack::BlobKind;
use crate::reader::{Blobs, FileIndex, Unreadable};
use crate::store::Store;
use crate::tree::Tree;

use super::view::Gen;

/// Default bound of the chunk cache.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;
/// Bound of the directory listing cache.
pub const TREE_CACHE_BYTES: u64 = 32 << 20;

#[derive(Clone)]
struct ByLen;

impl Weighter<ChunkId, Arc<Vec<u8>>> for ByLen {
    fn weight(&self, _: &ChunkId, v: &Arc<Vec<u8>>) -> u64 {
        v.len() as u64 + 64
    }
}

impl Weighter<TreeId, Arc<Tree>> for ByLen {
    fn weight(&self, _: &TreeId, t: &Arc<Tree>) -> u64 {
        // A rough size: each entry's fixed fields, name and ids.
        t.entries
            .iter()
            .map(|e| {
                let ids = match &e.kind {
                    crate::tree::EntryKind::File {
                        content: crate::tree::FileContent::Chunks(c),
                    } => c.len(),
                    crate::tree::EntryKind::File {
                        content: crate::tree::FileContent::Lists(l),
                    } => l.len(),
                    _ => 1,
                };
                (120 + e.name.len() + 32 * ids) as u64
            })
            .sum::<u64>()
            + 64
    }
}

/// Verified chunks and decoded listings, each bounded by bytes.
pub struct Caches {
    chunks: Cache<ChunkId, Arc<Vec<u8>>, ByLen>,
    trees: Cache<TreeId, Arc<Tree>, ByLen>,
}

impl Caches {
    pub fn new(chunk_bytes: u64) -> Caches {
        let avg_chunk = 32 << 10;
        Caches {
            chunks: Cache::with_weighter(
                (chunk_bytes / avg_chunk).max(16) as usize,
                chunk_bytes.max(1),
                ByLen,
            ),
            trees: Cache::with_weighter(4096, TREE_CACHE_BYTES, ByLen),
        }
    }

    /// Chunk `id`, from the cache or read (and verified) through `blobs`.
    pub fn chunk(&self, blobs: &Blobs<'_>, id: &ChunkId) -> Result<Arc<Vec<u8>>, Unreadable> {
        self.chunks
            .get_or_insert_with(id, || blobs.read(&id.0, BlobKind::Chunk).map(Arc::new))
    }

    /// Listing `id`, from the cache or read (and verified) through `blobs`.
    pub fn tree(&self, blobs: &Blobs<'_>, id: &TreeId) -> Result<Arc<Tree>, Unreadable> {
        self.trees
            .get_or_insert_with(id, || blobs.tree(id).map(Arc::new))
    }
}

/// A file opened through the mount.
pub struct OpenFile {
    /// The generation it was opened in: its view and readers' lock.
    pub gen: Arc<Gen>,
    pub index: Arc<FileIndex>,
    pub size: u64,
    pub ino: u64,
}

impl OpenFile {
    /// Up to `len` bytes from `offset` (fewer at the end of the file).
    pub fn read(
        &self,
        store: &Store,
        caches: &Caches,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, Unreadable> {
        let end = self.size.min(offset.saturating_add(u64::from(len)));
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let blobs = Blobs::new(store, &self.gen.catalog);
        let mut pos = offset;
        while pos < end {
            let Some(at) = self.index.locate(&blobs, pos)? else {
                break;
            };
            let data = caches.chunk(&blobs, &at.id)?;
            if data.len() as u64 != at.len {
                // The catalog's length and the verified bytes disagree:
                // offsets after this chunk would be wrong.
                return Err(Unreadable {
                    kind: BlobKind::Chunk,
                    id: at.id.0,
                    error: Box::new(crate::error::Error::corrupt_as(format!(
                        "chunk holds {} bytes, the catalog says {}",
                        data.len(),
                        at.len
                    ))),
                });
            }
            let from = (pos - at.start) as usize;
            let to = ((end - at.start) as usize).min(data.len());
            out.extend_from_slice(&data[from..to]);
            pos = at.start + to as u64;
        }
        Ok(out)
    }
}
