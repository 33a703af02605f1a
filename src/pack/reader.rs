//! Reads single blobs out of sealed packs and verifies them.
//!
//! Blobs are read with `pread` (`read_exact_at`) rather than through a memory
//! map: a map's touched pages count against the process's RSS when a restore
//! streams gigabytes, and a damaged (truncated) pack must give an error, not a
//! SIGBUS. Open files are cached; the cache is bounded.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::id::{Id, PackId};
use crate::pack::format::{self, RecordHeader, RECORD_HEADER_BYTES};
use crate::pack::pack_path;

const MAX_OPEN_PACKS: usize = 256;

/// Read access to the store's pack files.
pub struct PackFiles {
    dir: PathBuf,
    open: Mutex<HashMap<PackId, Arc<File>>>,
}

impl PackFiles {
    pub fn new(packs_dir: &Path) -> PackFiles {
        PackFiles {
            dir: packs_dir.to_path_buf(),
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn path_of(&self, pack: &PackId) -> PathBuf {
        pack_path(&self.dir, pack)
    }

    fn file(&self, pack: &PackId) -> Result<Arc<File>> {
        let mut open = self.open.lock().expect("pack cache lock poisoned");
        if let Some(f) = open.get(pack) {
            return Ok(f.clone());
        }
        let path = self.path_of(pack);
        let f = Arc::new(File::open(&path).map_err(|e| Error::store_read(&path, e))?);
        if open.len() >= MAX_OPEN_PACKS {
            open.clear();
        }
        open.insert(*pack, f.clone());
        Ok(f)
    }

    /// Read the blob whose record header starts at `offset` in `pack`,
    /// decompress it and check it is `expected`.
    pub fn read_blob(
        &self,
        pack: &PackId,
        offset: u64,
        expected: &Id,
    ) -> Result<(RecordHeader, Vec<u8>)> {
        let file = self.file(pack)?;
        let path = || self.path_of(pack);
        let mut hbuf = [0u8; RECORD_HEADER_BYTES];
        file.read_exact_at(&mut hbuf, offset).map_err(|e| {
            Error::corrupt(format!(
                "pack {}: header at {offset}: {e}",
                crate::escape::path(&path())
            ))
        })?;
        let header = RecordHeader::decode(&hbuf).map_err(|e| {
            Error::corrupt(format!(
                "pack {} at {offset}: {e}",
                crate::escape::path(&path())
            ))
        })?;
        if header.id != *expected {
            return Err(Error::corrupt(format!(
                "pack {} at {offset} holds blob {}, catalog expects {}",
                crate::escape::path(&path()),
                header.id,
                expected
            )));
        }
        let mut stored = vec![0u8; header.stored_len as usize];
        file.read_exact_at(&mut stored, offset + RECORD_HEADER_BYTES as u64)
            .map_err(|e| {
                Error::corrupt(format!(
                    "pack {}: blob {expected}: {e}",
                    crate::escape::path(&path())
                ))
            })?;
        let raw = format::decode_payload(&header, &stored)?;
        Ok((header, raw))
    }

    /// [`PackFiles::read_blob`] when the catalog gave the stored length:
    /// header and payload in one `pread` (half the system calls of a
    /// restore). The header must still agree, length included.
    pub fn read_blob_sized(
        &self,
        pack: &PackId,
        offset: u64,
        stored_len: u32,
        expected: &Id,
    ) -> Result<(RecordHeader, Vec<u8>)> {
        let file = self.file(pack)?;
        let path = || self.path_of(pack);
        let mut buf = vec![0u8; RECORD_HEADER_BYTES + stored_len as usize];
        file.read_exact_at(&mut buf, offset).map_err(|e| {
            Error::corrupt(format!(
                "pack {}: blob {expected} at {offset}: {e}",
                crate::escape::path(&path())
            ))
        })?;
        let (hbuf, stored) = buf.split_at(RECORD_HEADER_BYTES);
        let header = RecordHeader::decode(hbuf).map_err(|e| {
            Error::corrupt(format!(
                "pack {} at {offset}: {e}",
                crate::escape::path(&path())
            ))
        })?;
        if header.id != *expected || header.stored_len != stored_len {
            return Err(Error::corrupt(format!(
                "pack {} at {offset} holds blob {} of {} bytes, catalog expects {} of {stored_len}",
                crate::escape::path(&path()),
                header.id,
                header.stored_len,
                expected
            )));
        }
        let raw = format::decode_payload(&header, stored)?;
        Ok((header, raw))
    }
}
