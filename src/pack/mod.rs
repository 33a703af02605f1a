//! Pack files: immutable, self-describing containers of compressed blobs.
//!
//! `format` knows the bytes (and is the only place that does), `writer`
//! appends records and seals a pack durably, `reader` fetches one blob and
//! verifies it against its id.

pub mod format;
pub mod reader;
pub mod writer;

pub use format::{BlobKind, Compression, RecordHeader};
pub use reader::PackFiles;
pub use writer::{PackWriter, SealedPack};

use std::path::{Path, PathBuf};

use crate::id::PackId;

/// Where pack `id` lives under the store's `packs/` directory.
pub fn pack_path(packs_dir: &Path, id: &PackId) -> PathBuf {
    let hex = id.0.to_hex();
    packs_dir.join(&hex[..2]).join(format!("{hex}.pack"))
}
