//! Pack files: immutable, self-describing containers of compressed blobs.
//!
//! `format` knows the bytes (and is the only place that does), `salvage`
//! finds the records of a damaged pack, `writer` appends records and seals a
//! pack durably, and `packs` is the one seam every other module lists,
//! reads, writes and deletes packs through ([`Packs`]). Outside `pack/`,
//! code asks for what it needs (a new record, a verified record, what a
//! record costs on disk) and never sees an offset or a magic number.

pub mod format;
pub mod packs;
pub mod salvage;
pub mod verify;
pub mod writer;

pub use format::{
    new_record, pack_bytes, recompress, record_bytes, scan, verify_pack, verify_record, BlobKind,
    Compression, ExpectedRecord, RecordHeader,
};
pub use packs::Packs;
pub use writer::{PackWriter, SealedPack};
