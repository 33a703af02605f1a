//! A whole pack file checked where it lies, without loading it: its
//! footer names the pack, and the BLAKE3 of everything before the footer
//! must be that name (packs are named by content). Used for packs that
//! arrive from elsewhere (`pull`, `restore --remote`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};
use crate::id::PackId;

use super::format::{Footer, FOOTER_BYTES};

/// The id of the pack in `file` (`len` bytes, at `path` for messages):
/// an error when it is too short, its footer does not decode, or its
/// content does not hash to the id its footer gives.
pub fn whole_pack_id(file: &mut File, len: u64, path: &Path) -> Result<PackId> {
    if len < FOOTER_BYTES as u64 {
        return Err(Error::invalid(
            "pack",
            format!("{len} bytes is too short for a pack"),
        ));
    }
    let mut foot = [0u8; FOOTER_BYTES];
    file.seek(SeekFrom::Start(len - FOOTER_BYTES as u64))
        .and_then(|_| file.read_exact(&mut foot))
        .map_err(|e| Error::store_read(path, e))?;
    let footer = Footer::decode(&foot)?;
    let mut h = blake3::Hasher::new();
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::store_read(path, e))?;
    h.update_reader(file.take(len - FOOTER_BYTES as u64))
        .map_err(|e| Error::store_read(path, e))?;
    if h.finalize().as_bytes() != &footer.pack_id.0 .0 {
        return Err(Error::invalid(
            "pack",
            "its content does not hash to its pack id",
        ));
    }
    Ok(footer.pack_id)
}
