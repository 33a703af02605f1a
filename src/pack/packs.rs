//! The one seam for pack I/O: [`Packs`] lists, reads (whole, one record or
//! one header), writes (through [`PackWriter`]) and deletes the store's
//! pack files. Restore (through `Store::read_blob`), check, gc, repair,
//! status and the snapshot writer go through it, and nothing else touches
//! `packs/` (`stats` reads no pack at all), so a second
//! place for packs (object storage) is a second implementation of this
//! method set, not edits across the crate.
//!
//! Today the packs are the files `packs/xx/<id>.pack` of the store
//! directory (see `layout`). Blobs are read with `pread` (`read_exact_at`)
//! rather than through a memory map: a map's touched pages count against
//! the process's RSS when a restore streams gigabytes, and a damaged
//! (truncated) pack must give an error, not a SIGBUS. Open files are
//! cached; the cache is bounded.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::durable;
use crate::error::{Error, Object, Problem, Result};
use crate::id::{Id, PackId};
use crate::layout::{self, PackFile};
use crate::pack::format::{self, ExpectedRecord, RecordHeader, RECORD_HEADER_BYTES};
use crate::pack::writer::PackWriter;

const MAX_OPEN_PACKS: usize = 256;

/// Where a missing pack can be fetched from (a remote's cache store:
/// `remote::fetch`): called with the pack and the path it belongs at, it
/// puts the pack there durably.
pub type PackFetcher = Box<dyn Fn(&PackId, &Path) -> Result<()> + Send + Sync>;

/// The store's pack files.
pub struct Packs {
    store: PathBuf,
    open: Mutex<HashMap<PackId, Arc<File>>>,
    /// For a cache of a remote: fetch a pack on first use. One fetch at a
    /// time (the lock); most packs are fetched ahead, in parallel.
    fetcher: Option<Mutex<PackFetcher>>,
}

impl Packs {
    /// The packs of the store at `store_dir`.
    pub(crate) fn new(store_dir: &Path) -> Packs {
        Packs {
            store: store_dir.to_path_buf(),
            open: Mutex::new(HashMap::new()),
            fetcher: None,
        }
    }

    /// The packs of a cache store, fetched by `fetcher` when missing.
    pub(crate) fn with_fetcher(store_dir: &Path, fetcher: PackFetcher) -> Packs {
        Packs {
            fetcher: Some(Mutex::new(fetcher)),
            ..Packs::new(store_dir)
        }
    }

    /// Where pack `pack` is (for messages).
    pub fn path_of(&self, pack: &PackId) -> PathBuf {
        layout::pack_path(&self.store, pack)
    }

    /// Every pack file there is, and anything else found among them (see
    /// [`layout::list_packs`]).
    pub fn list(&self) -> Result<Vec<PackFile>> {
        layout::list_packs(&self.store)
    }

    /// A writer of new packs: written under `tmp/`, sealed durably into
    /// place (see [`PackWriter`]).
    pub fn writer(&self) -> PackWriter {
        PackWriter::new(&self.store)
    }

    /// The size of pack `pack`; an error if it is missing or cannot be read.
    pub fn size(&self, pack: &PackId) -> Result<u64> {
        let path = self.path_of(pack);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| Error::store_read(&path, e))
    }

    /// The whole of pack `pack` (to verify all of it).
    pub fn read_whole(&self, pack: &PackId) -> Result<Vec<u8>> {
        let path = self.path_of(pack);
        fs::read(&path).map_err(|e| Error::store_read(&path, e))
    }

    /// The whole of a listed file, whatever its name (`repair`).
    pub fn read_listed(&self, file: &PackFile) -> Result<Vec<u8>> {
        fs::read(&file.path).map_err(|e| Error::store_read(&file.path, e))
    }

    fn file(&self, pack: &PackId) -> Result<Arc<File>> {
        let mut open = self.open.lock().expect("pack cache lock poisoned");
        if let Some(f) = open.get(pack) {
            return Ok(f.clone());
        }
        let path = self.path_of(pack);
        let f = match (File::open(&path), &self.fetcher) {
            (Ok(f), _) => f,
            (Err(e), Some(fetch)) if e.kind() == std::io::ErrorKind::NotFound => {
                let fetch = fetch.lock().expect("pack fetcher poisoned");
                if !path.exists() {
                    fetch(pack, &path)?;
                }
                File::open(&path).map_err(|e| Error::store_read(&path, e))?
            }
            (Err(e), _) => return Err(Error::store_read(&path, e)),
        };
        let f = Arc::new(f);
        if open.len() >= MAX_OPEN_PACKS {
            open.clear();
        }
        open.insert(*pack, f.clone());
        Ok(f)
    }

    /// The record header at `offset` of `pack` (`check` without reading
    /// the data).
    pub fn read_header(&self, pack: &PackId, offset: u64) -> Result<RecordHeader> {
        let file = self.file(pack)?;
        let mut hbuf = [0u8; RECORD_HEADER_BYTES];
        file.read_exact_at(&mut hbuf, offset)
            .map_err(|e| Error::corrupt(Problem::Unreadable(e)))
            .and_then(|()| RecordHeader::decode(&hbuf))
            .map_err(self.at(pack, offset))
    }

    /// Damage found in the record at `offset` of `pack`: says where.
    fn at(&self, pack: &PackId, offset: u64) -> impl Fn(Error) -> Error {
        let path = self.path_of(pack);
        move |e| {
            e.within(Object::Record { offset })
                .within(Object::PackFile(path.clone()))
        }
    }

    /// Read the blob whose record header starts at `offset` in `pack`,
    /// decompress it and check it is `expected` (its lengths unknown: the
    /// header is read first).
    pub fn read_blob(
        &self,
        pack: &PackId,
        offset: u64,
        expected: &Id,
    ) -> Result<(RecordHeader, Vec<u8>)> {
        let file = self.file(pack)?;
        let header = self.read_header(pack, offset)?;
        let at = self.at(pack, offset);
        if header.id != *expected {
            return Err(at(Error::corrupt(Problem::UnlikeCatalog {
                found: format!("{} {}", header.kind.name(), header.id),
                expected: format!("blob {expected}"),
            })));
        }
        let mut stored = vec![0u8; header.stored_len as usize];
        file.read_exact_at(&mut stored, offset + RECORD_HEADER_BYTES as u64)
            .map_err(|e| {
                at(Error::corrupt(Problem::Unreadable(e)).within(header.kind.object(*expected)))
            })?;
        let raw = format::decode_payload(&header, &stored).map_err(at)?;
        Ok((header, raw))
    }

    /// Read the record the catalog describes as `expected` at `offset` of
    /// `pack`: header and payload in one `pread` (half the system calls of
    /// a restore). The header must agree with `expected` (id, kind and
    /// lengths); the blob is decompressed and verified against its id.
    pub fn read_record(
        &self,
        pack: &PackId,
        offset: u64,
        expected: &ExpectedRecord,
    ) -> Result<(RecordHeader, Vec<u8>)> {
        let file = self.file(pack)?;
        let at = self.at(pack, offset);
        let mut buf = vec![0u8; RECORD_HEADER_BYTES + expected.stored_len as usize];
        file.read_exact_at(&mut buf, offset).map_err(|e| {
            at(Error::corrupt(Problem::Unreadable(e)).within(expected.kind.object(expected.id)))
        })?;
        let (hbuf, stored) = buf.split_at(RECORD_HEADER_BYTES);
        let header = RecordHeader::decode(hbuf).map_err(&at)?;
        if !header.agrees_with(expected) {
            return Err(at(expected.unlike(&header)));
        }
        let raw = format::decode_payload(&header, stored).map_err(at)?;
        Ok((header, raw))
    }

    /// Delete pack `pack` durably (its directory fsynced); a pack already
    /// gone is fine. Callers make sure nothing needs it: the catalog no
    /// longer names it and no reader is active (`lock::ReadersExcluded`).
    pub fn remove(&self, pack: &PackId) -> Result<()> {
        self.open
            .lock()
            .expect("pack cache lock poisoned")
            .remove(pack);
        let path = self.path_of(pack);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::store_write(&path, e)),
        }
        let dir = path.parent().expect("pack has a directory");
        durable::sync_dir(dir).map_err(|e| Error::store_write(dir, e))
    }

    /// Delete a listed file durably, whatever its name (`repair`, after
    /// keeping it aside).
    pub fn remove_listed(&self, file: &PackFile) -> Result<()> {
        if let Some(id) = &file.id {
            self.open
                .lock()
                .expect("pack cache lock poisoned")
                .remove(id);
        }
        durable::remove(&file.path).map_err(|e| Error::store_write(&file.path, e))
    }

    /// Give a listed file a durable second name `to` outside the packs (a
    /// hard link, or a copy); the file stays (`repair` keeps damaged packs
    /// under `damaged/`).
    pub fn keep_aside(&self, file: &PackFile, to: &Path) -> Result<()> {
        let d = to.parent().expect("has a parent");
        durable::create_private_dir(d).map_err(|e| Error::store_write(d, e))?;
        durable::link_or_copy(&file.path, to).map_err(|e| Error::store_write(to, e))
    }
}
