//! Appends records to one open pack and seals it durably.
//!
//! Owned by the single writer thread of a run (no lock around it). A pack is
//! written under `tmp/`, and [`PackWriter::seal`] makes it permanent with the
//! crash order of `durable.rs`: footer → fsync → rename into
//! `packs/xx/<id>.pack` → directory fsync. Only after `seal` returns may the
//! catalog reference its blobs. After any write error the writer latches
//! failed and refuses further work: we never retry a failed write or fsync.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::durable;
use crate::error::{Error, Object, Problem, Result};
use crate::id::{Id, PackId};
use crate::layout;
use crate::pack::format::{self, Footer, RecordHeader, HEADER_BYTES};

/// A pack that is on disk for good, with what it holds.
#[derive(Debug)]
pub struct SealedPack {
    pub id: PackId,
    pub size_bytes: u64,
    /// (offset of the record header, header), in file order.
    pub records: Vec<(u64, RecordHeader)>,
}

struct OpenPack {
    file: BufWriter<File>,
    tmp_path: PathBuf,
    hasher: blake3::Hasher,
    len: u64,
    records: Vec<(u64, RecordHeader)>,
}

/// Writer of new packs.
pub struct PackWriter {
    store: PathBuf,
    tmp_dir: PathBuf,
    open: Option<OpenPack>,
    failed: bool,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl PackWriter {
    /// A writer of packs into the store at `store_dir`: written under its
    /// `tmp/`, sealed into its `packs/` (see `Packs::writer`).
    pub(crate) fn new(store_dir: &Path) -> PackWriter {
        PackWriter {
            store: store_dir.to_path_buf(),
            tmp_dir: layout::tmp_dir(store_dir),
            open: None,
            failed: false,
        }
    }

    /// Bytes in the open pack (0 when none is open).
    pub fn len_bytes(&self) -> u64 {
        self.open.as_ref().map_or(0, |p| p.len)
    }

    pub fn is_empty(&self) -> bool {
        self.open.as_ref().is_none_or(|p| p.records.is_empty())
    }

    fn check_not_failed(&self) -> Result<()> {
        if self.failed {
            Err(Error::store_write(
                &self.tmp_dir,
                std::io::Error::other("an earlier write to the store failed; run stopped"),
            ))
        } else {
            Ok(())
        }
    }

    fn open_pack(&mut self) -> Result<&mut OpenPack> {
        if self.open.is_none() {
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp_path = self
                .tmp_dir
                .join(format!("pack-{}-{n}.tmp", std::process::id()));
            let file = durable::create_private_file(&tmp_path)
                .map_err(|e| Error::store_write(&tmp_path, e))?;
            let mut pack = OpenPack {
                file: BufWriter::with_capacity(1 << 20, file),
                tmp_path,
                hasher: blake3::Hasher::new(),
                len: 0,
                records: Vec::new(),
            };
            let header = format::encode_pack_header();
            write_hashed(&mut pack, &header)?;
            self.open = Some(pack);
        }
        Ok(self.open.as_mut().expect("just opened"))
    }

    /// Append one record; returns the offset of its header.
    pub fn append(&mut self, header: RecordHeader, payload: &[u8]) -> Result<u64> {
        self.check_not_failed()?;
        debug_assert_eq!(payload.len(), header.stored_len as usize);
        let result = (|| {
            let pack = self.open_pack()?;
            let offset = pack.len;
            write_hashed(pack, &header.encode())?;
            write_hashed(pack, payload)?;
            pack.records.push((offset, header));
            Ok(offset)
        })();
        if result.is_err() {
            self.fail();
        }
        result
    }

    /// Seal the open pack, if it holds any record, and make it durable.
    pub fn seal(&mut self) -> Result<Option<SealedPack>> {
        self.check_not_failed()?;
        if self.is_empty() {
            return Ok(None);
        }
        let pack = self.open.take().expect("non-empty pack is open");
        let tmp_path = pack.tmp_path.clone();
        let result = seal_pack(pack, &self.store);
        if result.is_err() {
            self.failed = true;
            // An unsealed pack is garbage: free its space now (on a full
            // disk the same run's prune needs it). After a failure past
            // the rename there is no temporary file left to remove.
            let _ = std::fs::remove_file(&tmp_path);
        }
        result.map(Some)
    }

    fn fail(&mut self) {
        self.failed = true;
        if let Some(p) = self.open.take() {
            let _ = std::fs::remove_file(&p.tmp_path);
        }
    }
}

impl Drop for PackWriter {
    fn drop(&mut self) {
        // An unsealed pack is garbage: nothing references it.
        if let Some(p) = self.open.take() {
            let _ = std::fs::remove_file(&p.tmp_path);
        }
    }
}

fn write_hashed(pack: &mut OpenPack, bytes: &[u8]) -> Result<()> {
    pack.file
        .write_all(bytes)
        .map_err(|e| Error::store_write(&pack.tmp_path, e))?;
    pack.hasher.update(bytes);
    pack.len += bytes.len() as u64;
    Ok(())
}

/// Read the written pack back record by record (memory: one record):
/// every header must be the one written, every payload must decompress and
/// hash to its id, and the whole file must hash to the pack id.
fn read_back(file: &File, id: &PackId, records: &[(u64, RecordHeader)]) -> Result<()> {
    use std::io::Read;
    let bad = |what: &str| Error::corrupt_as(what);
    let unreadable = |e| Error::corrupt(Problem::Unreadable(e));
    let mut r = std::io::BufReader::with_capacity(1 << 20, file);
    std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(0)).map_err(unreadable)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; HEADER_BYTES];
    r.read_exact(&mut buf).map_err(unreadable)?;
    format::decode_pack_header(&buf)?;
    hasher.update(&buf);
    let mut pos = HEADER_BYTES as u64;
    for (offset, want) in records {
        let record = |e: Error| e.within(Object::Record { offset: *offset });
        if *offset != pos {
            return Err(record(bad(&format!("found at offset {pos}"))));
        }
        let n = format::RECORD_HEADER_BYTES + want.stored_len as usize;
        buf.resize(n, 0);
        r.read_exact(&mut buf).map_err(|e| record(unreadable(e)))?;
        hasher.update(&buf);
        let (h, payload) = buf.split_at(format::RECORD_HEADER_BYTES);
        if RecordHeader::decode(h).map_err(record)? != *want {
            return Err(record(bad("its header differs from the one written")));
        }
        format::decode_payload(want, payload).map_err(record)?;
        pos += n as u64;
    }
    let hashed = PackId(Id(*hasher.finalize().as_bytes()));
    if hashed != *id {
        return Err(Error::corrupt(Problem::HashMismatch {
            expected: id.0,
            found: hashed.0,
        })
        .within(Object::Pack(*id)));
    }
    buf.resize(format::FOOTER_BYTES, 0);
    r.read_exact(&mut buf).map_err(unreadable)?;
    let footer = format::Footer::decode(&buf)?;
    if footer.pack_id != *id || footer.record_count != records.len() as u64 {
        return Err(bad("its footer differs from the one written"));
    }
    let mut rest = [0u8; 1];
    if r.read(&mut rest).map_err(unreadable)? != 0 {
        return Err(bad("bytes after the footer"));
    }
    Ok(())
}

fn seal_pack(mut pack: OpenPack, store_dir: &Path) -> Result<SealedPack> {
    let id = PackId(Id(*pack.hasher.finalize().as_bytes()));
    let footer = Footer {
        record_count: pack.records.len() as u64,
        pack_id: id,
    };
    let tmp_path = pack.tmp_path.clone();
    let io = |e| Error::store_write(&tmp_path, e);
    pack.file.write_all(&footer.encode()).map_err(io)?;
    let size_bytes = pack.len + format::FOOTER_BYTES as u64;
    let file = pack
        .file
        .into_inner()
        .map_err(|e| Error::store_write(&tmp_path, e.into_error()))?;
    // Read-back: what the file holds must decode to exactly what we meant
    // to write (every record decompressed and re-hashed) before any catalog
    // row may point into it. Catches a bad buffer, compressor or file system
    // before the damage is referenced.
    crate::failpoint::flip_point("pack.before_read_back", &file);
    if let Err(e) = read_back(&file, &id, &pack.records) {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(Error::store_write(
            &tmp_path,
            std::io::Error::other(format!(
                "the sealed pack does not read back: {}",
                e.detail()
            )),
        ));
    }
    let final_path = layout::pack_path(store_dir, &id);
    let packs_dir = layout::packs_dir(store_dir);
    let fan_dir = final_path.parent().expect("pack path has a parent");
    if !fan_dir.is_dir() {
        durable::create_private_dir(fan_dir).map_err(|e| Error::store_write(fan_dir, e))?;
        durable::sync_dir(&packs_dir).map_err(|e| Error::store_write(&packs_dir, e))?;
    }
    // Crash order: fsync data → rename → fsync dir. A crash before the rename
    // leaves a tmp file (removed by the next writer); after it, a complete pack
    // that no catalog row references yet (an orphan, removed by gc).
    crate::failpoint::crash_point("pack.before_rename");
    let committed = durable::commit_file(&file, &tmp_path, &final_path);
    if let Err(e) = committed {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(Error::store_write(&final_path, e));
    }
    debug_assert!(pack
        .records
        .first()
        .is_none_or(|r| r.0 == HEADER_BYTES as u64));
    Ok(SealedPack {
        id,
        size_bytes,
        records: pack.records,
    })
}
