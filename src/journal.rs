//! The snapshot journal: every committed snapshot's row, kept outside the
//! catalog, so `wsnap repair` can rebuild a lost or damaged catalog from the
//! store's files alone (packs hold the blobs; journals hold the snapshots).
//!
//! ```text
//! STORE/journal/<run>.wsj        records of one finished run
//! STORE/journal/<run>.wsj.open   the same while the run is going (or crashed)
//! ```
//!
//! Crash order, per snapshot: its record is appended and fdatasynced *before*
//! the catalog commits it, so every committed snapshot has a record. A crash
//! between the two leaves a record the catalog lacks, only ever in a `.open`
//! file: the next writer [`reconcile`]s such files (keeps the records the
//! catalog has, renames the file). `prune`/`forget` commit the catalog first,
//! naming in that same transaction the journal files to rewrite
//! (`meta.journals_pending`), then drop the forgotten records; a crash in
//! between is finished by the next writer ([`keep_committed`]). So a
//! forgotten snapshot never comes back through `repair`, and a committed
//! one is never missing from the journals.
//!
//! The catalog stays the truth while it is healthy; journals are read only
//! by `repair` and compared by `check`.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::catalog::{SnapshotRow, SnapshotStats, StoreParams};
use crate::chunker::ChunkerParams;
use crate::codec::{Reader, Writer as Enc};
use crate::durable;
use crate::error::{Error, Result};
use crate::id::{SnapshotId, TreeId};
use crate::workspace::WorkspaceName;

pub const JOURNAL_MAGIC: &[u8; 4] = b"WSNJ";
pub const JOURNAL_VERSION: u8 = 1;
/// Bytes of the file header.
pub const HEADER_BYTES: usize = 4 + 1 + 3 + 4 * 3 + 4 + 8 + 8;
/// Largest record payload: two names of at most 1024 bytes plus fixed fields.
pub const MAX_RECORD_BYTES: u32 = 4096;
const CHECK_BYTES: usize = 8;

/// The journal directory of a store.
pub fn dir(store_dir: &Path) -> PathBuf {
    crate::layout::journal_dir(store_dir)
}

/// File header: the store's fixed parameters, so a repaired catalog gets the
/// chunker of the data it indexes.
pub fn encode_header(params: &StoreParams) -> Vec<u8> {
    let mut e = Enc::with_capacity(HEADER_BYTES);
    e.bytes(JOURNAL_MAGIC);
    e.u8(JOURNAL_VERSION);
    e.bytes(&[0, 0, 0]);
    e.u32(params.chunker.min_bytes);
    e.u32(params.chunker.avg_bytes);
    e.u32(params.chunker.max_bytes);
    e.u32(params.zstd_level as u32);
    e.u64(params.pack_target_bytes);
    let check = blake3::hash(&e.buf);
    e.bytes(&check.as_bytes()[..CHECK_BYTES]);
    e.buf
}

fn decode_header(bytes: &[u8]) -> Result<StoreParams> {
    let mut r = Reader::new(bytes, "journal header");
    let body = r.take(HEADER_BYTES - CHECK_BYTES)?;
    let check = r.take(CHECK_BYTES)?;
    if &blake3::hash(body).as_bytes()[..CHECK_BYTES] != check {
        return Err(Error::corrupt("journal header checksum mismatch"));
    }
    let mut r = Reader::new(body, "journal header");
    if r.take(4)? != JOURNAL_MAGIC {
        return Err(Error::corrupt("not a wsnap journal (bad magic)"));
    }
    let v = r.u8()?;
    if v != JOURNAL_VERSION {
        return Err(r.error(format!("journal version {v}, expected {JOURNAL_VERSION}")));
    }
    if r.take(3)? != [0, 0, 0] {
        return Err(r.error("reserved bytes are not zero"));
    }
    let chunker = ChunkerParams {
        min_bytes: r.u32()?,
        avg_bytes: r.u32()?,
        max_bytes: r.u32()?,
    };
    chunker
        .validate()
        .map_err(|_| Error::corrupt("journal header: invalid chunker parameters"))?;
    let zstd_level = r.u32()? as i32;
    let pack_target_bytes = r.u64()?;
    r.finish()?;
    Ok(StoreParams {
        chunker,
        zstd_level,
        pack_target_bytes,
    })
}

/// The smallest record: one-byte user and project names.
pub const MIN_RECORD_BYTES: u64 =
    4 + (32 + 4 + 1 + 4 + 1 + 3 * 8 + 32 + 9 * 8) + CHECK_BYTES as u64;

/// One record: `u32:len payload[len] check[8]`, check = BLAKE3(len ‖ payload).
pub fn encode_record(row: &SnapshotRow) -> Vec<u8> {
    let mut p = Enc::with_capacity(256);
    p.id(&row.id.0);
    p.u32(row.workspace.user.len() as u32);
    p.bytes(&row.workspace.user);
    p.u32(row.workspace.project.len() as u32);
    p.bytes(&row.workspace.project);
    p.i64(row.time_ns);
    p.i64(row.started_ns);
    p.i64(row.finished_ns);
    p.id(&row.root.0);
    let s = row.stats;
    for v in [
        s.files,
        s.dirs,
        s.symlinks,
        s.size_bytes,
        s.bytes_added,
        s.bytes_read,
        s.skipped,
        s.special,
        s.excluded,
    ] {
        p.u64(v);
    }
    let mut e = Enc::with_capacity(p.buf.len() + 12);
    e.u32(p.buf.len() as u32);
    e.bytes(&p.buf);
    let check = blake3::hash(&e.buf);
    e.bytes(&check.as_bytes()[..CHECK_BYTES]);
    e.buf
}

fn decode_payload(payload: &[u8]) -> Result<SnapshotRow> {
    let mut r = Reader::new(payload, "journal record");
    let id = SnapshotId(r.id()?);
    let name = |r: &mut Reader<'_>| -> Result<Vec<u8>> {
        let n = r.u32()? as usize;
        Ok(r.take(n)?.to_vec())
    };
    let user = name(&mut r)?;
    let project = name(&mut r)?;
    let workspace = WorkspaceName::new(&user, &project)
        .map_err(|_| Error::corrupt("journal record: invalid workspace name"))?;
    let time_ns = r.i64()?;
    let started_ns = r.i64()?;
    let finished_ns = r.i64()?;
    let root = TreeId(r.id()?);
    let mut n = [0u64; 9];
    for v in &mut n {
        *v = r.u64()?;
    }
    r.finish()?;
    let row = SnapshotRow {
        id,
        workspace,
        time_ns,
        started_ns,
        finished_ns,
        root,
        stats: SnapshotStats {
            files: n[0],
            dirs: n[1],
            symlinks: n[2],
            size_bytes: n[3],
            bytes_added: n[4],
            bytes_read: n[5],
            skipped: n[6],
            special: n[7],
            excluded: n[8],
        },
        damaged: false,
    };
    if crate::snapshot::snapshot_id(&row.workspace, row.time_ns, row.started_ns, &row.root) != id {
        return Err(Error::corrupt(format!(
            "journal record {}: fields do not hash to its id",
            id.0.short()
        )));
    }
    Ok(row)
}

/// What one journal file holds.
#[derive(Debug, Default)]
pub struct Decoded {
    pub params: Option<StoreParams>,
    pub records: Vec<SnapshotRow>,
    /// Why decoding stopped early, if it did. A record cut short at the very
    /// end of a `.open` file is a crash's torn append, not damage.
    pub damage: Option<String>,
    pub torn_tail: bool,
}

/// Decode a whole journal file. Never panics; stops at the first record that
/// does not check out (its length cannot be trusted past that point).
pub fn decode(bytes: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    if bytes.len() < HEADER_BYTES {
        out.torn_tail = true;
        return out;
    }
    match decode_header(&bytes[..HEADER_BYTES]) {
        Ok(p) => out.params = Some(p),
        Err(e) => {
            out.damage = Some(e.detail());
            return out;
        }
    }
    let mut pos = HEADER_BYTES;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < 4 {
            out.torn_tail = true;
            break;
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        if len > MAX_RECORD_BYTES {
            out.damage = Some(format!("record at offset {pos} claims {len} bytes"));
            break;
        }
        let end = 4 + len as usize + CHECK_BYTES;
        if rest.len() < end {
            out.torn_tail = true;
            break;
        }
        let body = &rest[..4 + len as usize];
        if blake3::hash(body).as_bytes()[..CHECK_BYTES] != rest[4 + len as usize..end] {
            out.damage = Some(format!("record at offset {pos}: checksum mismatch"));
            break;
        }
        match decode_payload(&body[4..]) {
            Ok(row) => out.records.push(row),
            Err(e) => {
                out.damage = Some(format!("record at offset {pos}: {}", e.detail()));
                break;
            }
        }
        pos += end;
    }
    out
}

/// A journal file name: `<name>.wsj` or `<name>.wsj.open`.
pub fn is_journal_name(name: &str) -> bool {
    name.ends_with(".wsj") || name.ends_with(".wsj.open")
}

/// Every journal file of a store, sorted by name.
pub fn list(store_dir: &Path) -> Result<Vec<PathBuf>> {
    let d = dir(store_dir);
    let rd = match fs::read_dir(&d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::store_read(&d, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::store_read(&d, e))?;
        if e.file_name().to_str().is_some_and(is_journal_name) {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Read one journal file.
pub fn read(path: &Path) -> Result<Decoded> {
    let bytes = fs::read(path).map_err(|e| Error::store_read(path, e))?;
    Ok(decode(&bytes))
}

/// The journal of one writer run: created at the first snapshot commit as
/// `<name>.wsj.open`, renamed to `<name>.wsj` when the run finishes.
pub struct RunJournal {
    dir: PathBuf,
    name: String,
    params: StoreParams,
    file: Option<File>,
}

impl RunJournal {
    pub fn new(store_dir: &Path, params: StoreParams, started_ns: i64) -> RunJournal {
        RunJournal {
            dir: dir(store_dir),
            name: format!("{started_ns:020}-{}.wsj", std::process::id()),
            params,
            file: None,
        }
    }

    /// The name the catalog records for this run's snapshots.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn open_path(&self) -> PathBuf {
        self.dir.join(format!("{}.open", self.name))
    }

    /// Append the records of a (group) commit and make them durable with one
    /// `fdatasync`.
    pub fn append_all(&mut self, rows: &[SnapshotRow]) -> Result<()> {
        if self.file.is_none() {
            durable::ensure_private_dir(&self.dir).map_err(|e| Error::store_write(&self.dir, e))?;
            let path = self.open_path();
            let mut f =
                durable::create_private_file(&path).map_err(|e| Error::store_write(&path, e))?;
            f.write_all(&encode_header(&self.params))
                .map_err(|e| Error::store_write(&path, e))?;
            durable::sync_file(&f).map_err(|e| Error::store_write(&path, e))?;
            durable::sync_dir(&self.dir).map_err(|e| Error::store_write(&self.dir, e))?;
            self.file = Some(f);
        }
        let path = self.open_path();
        let f = self.file.as_mut().expect("opened above");
        let mut buf = Vec::new();
        for row in rows {
            buf.extend_from_slice(&encode_record(row));
        }
        f.write_all(&buf)
            .map_err(|e| Error::store_write(&path, e))?;
        durable::sync_data(f).map_err(|e| Error::store_write(&path, e))
    }

    /// Where the next record goes: the length of the open file (`None`
    /// before the first record, when the file does not exist yet).
    pub fn mark(&self) -> Result<Option<u64>> {
        match &self.file {
            None => Ok(None),
            Some(f) => f
                .metadata()
                .map(|m| Some(m.len()))
                .map_err(|e| Error::store_read(self.open_path(), e)),
        }
    }

    /// Take back the records appended since `mark` (the catalog refused
    /// their snapshots): the file is cut there and the cut made durable.
    /// A crash before the cut leaves records the catalog lacks, which the
    /// next writer trims, as after any crash between journal and commit.
    pub fn truncate(&mut self, mark: Option<u64>) -> Result<()> {
        let path = self.open_path();
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let len = mark.unwrap_or(encode_header(&self.params).len() as u64);
        // The next record goes where the cut is, not where writing stopped.
        durable::cut(f, len).map_err(|e| Error::store_write(&path, e))
    }

    /// The run is over: `<name>.wsj.open` becomes `<name>.wsj`.
    pub fn close(&mut self) -> Result<()> {
        if self.file.take().is_none() {
            return Ok(());
        }
        let from = self.open_path();
        let to = self.dir.join(&self.name);
        durable::rename(&from, &to).map_err(|e| Error::store_write(&from, e))
    }
}

/// Replace journal file `path` by one holding `records` (deleted when empty),
/// atomically: tmp → fsync → rename → dir fsync.
pub fn rewrite(path: &Path, params: &StoreParams, records: &[SnapshotRow]) -> Result<()> {
    let d = path.parent().expect("journal file has a directory");
    if records.is_empty() {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::store_write(path, e)),
        }
        return durable::sync_dir(d).map_err(|e| Error::store_write(d, e));
    }
    durable::ensure_private_dir(d).map_err(|e| Error::store_write(d, e))?;
    let tmp = d.join(format!(
        "{}.tmp",
        path.file_name().expect("file name").to_string_lossy()
    ));
    let _ = fs::remove_file(&tmp);
    let mut f = durable::create_private_file(&tmp).map_err(|e| Error::store_write(&tmp, e))?;
    let mut buf = encode_header(params);
    for r in records {
        buf.extend_from_slice(&encode_record(r));
    }
    f.write_all(&buf).map_err(|e| Error::store_write(&tmp, e))?;
    durable::commit_file(&f, &tmp, path).map_err(|e| Error::store_write(path, e))
}

/// Remove forgotten snapshots from their journals (gc, right *after* its
/// catalog commit, which names these files in `meta.journals_pending`; a
/// crash before this finishes is completed by [`keep_committed`]).
/// `by_file`: journal file name → ids to drop.
pub fn drop_records(
    store_dir: &Path,
    params: &StoreParams,
    by_file: &std::collections::BTreeMap<String, HashSet<SnapshotId>>,
) -> Result<()> {
    let d = dir(store_dir);
    for (name, ids) in by_file {
        let path = d.join(name);
        if !path.exists() {
            continue;
        }
        let decoded = read(&path)?;
        if let Some(why) = &decoded.damage {
            return Err(Error::corrupt(format!(
                "journal {}: {why}; run `wsnap check`",
                crate::escape::path(&path)
            )));
        }
        let keep: Vec<SnapshotRow> = decoded
            .records
            .into_iter()
            .filter(|r| !ids.contains(&r.id))
            .collect();
        rewrite(&path, params, &keep)?;
    }
    Ok(())
}

/// Rewrite the journal files `names` keeping only the records the catalog
/// has (a gc that died between its commit and its journal rewrite).
pub fn keep_committed(
    store_dir: &Path,
    params: &StoreParams,
    names: &[String],
    committed: impl Fn(&SnapshotId) -> Result<bool>,
) -> Result<()> {
    let d = dir(store_dir);
    for name in names {
        let path = d.join(name);
        if !path.exists() {
            continue;
        }
        trim_to(&path, params, &committed)?;
    }
    Ok(())
}

/// Rewrite journal `path` keeping only the records `committed` accepts;
/// returns them.
fn trim_to(
    path: &Path,
    params: &StoreParams,
    committed: &impl Fn(&SnapshotId) -> Result<bool>,
) -> Result<Vec<SnapshotRow>> {
    let mut keep = Vec::new();
    for r in read(path)?.records {
        if committed(&r.id)? {
            keep.push(r);
        }
    }
    rewrite(path, params, &keep)?;
    Ok(keep)
}

/// Finish the `.open` journals of crashed runs: keep the records whose
/// snapshot the catalog has (`committed`), write them as `<name>.wsj`, and
/// delete the `.open` file. Called by every writer under the lock.
pub fn reconcile(
    store_dir: &Path,
    params: &StoreParams,
    committed: impl Fn(&SnapshotId) -> Result<bool>,
) -> Result<u64> {
    let d = dir(store_dir);
    if let Ok(rd) = fs::read_dir(&d) {
        for e in rd.flatten() {
            if e.file_name().to_str().is_some_and(|n| n.ends_with(".tmp")) {
                // A rewrite that died before its rename.
                fs::remove_file(e.path()).map_err(|err| Error::store_write(e.path(), err))?;
            }
        }
    }
    let mut n = 0;
    for path in list(store_dir)? {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let Some(final_name) = name.strip_suffix(".open") else {
            continue;
        };
        // Two atomic steps, so at every instant exactly one file holds the
        // run's records: trim the `.open` file in place, then rename it.
        let keep = trim_to(&path, params, &committed)?;
        crate::failpoint::crash_point("journal.reconcile_trimmed");
        if !keep.is_empty() {
            let to = path.with_file_name(final_name);
            durable::rename(&path, &to).map_err(|e| Error::store_write(&path, e))?;
        }
        n += 1;
    }
    Ok(n)
}

/// Open for appending without truncation (tests that tear a journal).
#[doc(hidden)]
pub fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;
    use proptest::prelude::*;

    fn row(user: &[u8], project: &[u8], t: i64, root: [u8; 32], n: u64) -> SnapshotRow {
        let ws = WorkspaceName::new(user, project).unwrap();
        let root = TreeId(Id(root));
        SnapshotRow {
            id: crate::snapshot::snapshot_id(&ws, t, t + 1, &root),
            workspace: ws,
            time_ns: t,
            started_ns: t + 1,
            finished_ns: t + 2,
            root,
            stats: SnapshotStats {
                files: n,
                size_bytes: n.wrapping_mul(7),
                ..SnapshotStats::default()
            },
            damaged: false,
        }
    }

    #[test]
    fn the_smallest_record_is_min_record_bytes() {
        let r = row(b"u", b"p", 5, [7; 32], 3);
        assert_eq!(encode_record(&r).len() as u64, MIN_RECORD_BYTES);
        let r = row(b"user", b"project", 5, [7; 32], 3);
        assert!(encode_record(&r).len() as u64 > MIN_RECORD_BYTES);
    }

    proptest! {
        #[test]
        fn round_trip(recs in proptest::collection::vec(
            (proptest::collection::vec(1u8..=255, 1..20), any::<i64>(), any::<[u8; 32]>(), any::<u64>()), 0..8)) {
            let rows: Vec<SnapshotRow> = recs.iter()
                .filter(|(u, ..)| !u.contains(&b'/') && u.as_slice() != b"." && u.as_slice() != b"..")
                .map(|(u, t, root, n)| row(u, b"p", t / 4, *root, *n))
                .collect();
            let mut bytes = encode_header(&StoreParams::DEFAULT);
            for r in &rows { bytes.extend_from_slice(&encode_record(r)); }
            let d = decode(&bytes);
            prop_assert_eq!(d.params, Some(StoreParams::DEFAULT));
            prop_assert!(d.damage.is_none() && !d.torn_tail);
            prop_assert_eq!(d.records, rows);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn torn_tail_and_flipped_byte() {
        let rows = [
            row(b"a", b"b", 5, [1; 32], 3),
            row(b"a", b"c", 6, [2; 32], 4),
        ];
        let mut bytes = encode_header(&StoreParams::DEFAULT);
        for r in &rows {
            bytes.extend_from_slice(&encode_record(r));
        }
        let full = bytes.len();
        let d = decode(&bytes[..full - 3]);
        assert!(d.torn_tail && d.damage.is_none());
        assert_eq!(d.records, rows[..1]);
        for i in HEADER_BYTES..full {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            let d = decode(&b);
            assert!(d.damage.is_some() || d.torn_tail, "flip at {i} undetected");
            assert!(d.records.len() < 2);
        }
    }
}
