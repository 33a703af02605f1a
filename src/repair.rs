//! `repair`: rebuild the catalog from the store's own files.
//!
//! Packs describe themselves (every record carries its kind, lengths and
//! id) and journals hold every committed snapshot, so a lost or damaged
//! `catalog.sqlite` can be rebuilt:
//!
//! 1. take the writer lock; build a fresh catalog beside the old one
//!    (`catalog.sqlite.repair`);
//! 2. read every pack whole; a pack whose footer hash, name and every record
//!    verify is indexed as it is; from any other pack each record whose
//!    payload still hashes to its id is copied into a new pack (headers are
//!    found again by their checksums after damage), and the damaged file is
//!    moved to `damaged/`, never deleted;
//! 3. decode every tree and chunk list and index its references; a
//!    reference to a blob that is in no pack marks the tree broken, and so
//!    every tree above it;
//! 4. insert every snapshot of the old catalog if it still lists them, else
//!    every snapshot found in the journals; one whose root tree is lost
//!    cannot be inserted and is reported; one whose tree is broken is
//!    inserted marked `damaged`;
//! 5. write one fresh journal with every recovered snapshot, move the old
//!    catalog and old journals to `damaged/repair-<time>/`, and rename the
//!    new catalog into place.
//!
//! An interrupted repair leaves the old catalog (or none) in place: run it
//! again. Not recovered: run history (`runs`) and per-snapshot skip lists.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::{ancestors, Catalog, SnapshotRow, StoreParams};
use crate::chunklist;
use crate::durable;
use crate::error::{Error, Result};
use crate::id::{Id, PackId};
use crate::journal;
use crate::lock;
use crate::pack::format::{self, RecordHeader, FOOTER_BYTES, HEADER_BYTES, RECORD_HEADER_BYTES};
use crate::pack::{BlobKind, PackFiles, PackWriter};
use crate::timespec;
use crate::tree::Tree;

/// A pack that did not verify whole.
#[derive(Clone, Debug)]
pub struct DamagedPack {
    pub path: PathBuf,
    pub problem: String,
    /// Records that still verified and were copied into a new pack.
    pub records_saved: u64,
    /// Where the damaged file now is.
    pub moved_to: PathBuf,
}

/// What `repair` did.
#[derive(Debug, Default)]
pub struct RepairReport {
    pub packs: u64,
    pub blobs: u64,
    pub damaged_packs: Vec<DamagedPack>,
    /// References from trees and lists to blobs found in no pack.
    pub missing_refs: u64,
    /// Recovered snapshots (with `damaged` set when data is missing).
    pub snapshots: Vec<SnapshotRow>,
    /// Snapshots whose root tree is in no pack: not recoverable from here.
    pub lost: Vec<SnapshotRow>,
    /// Journal files that did not decode whole.
    pub journal_problems: Vec<String>,
    /// Where the old catalog and journals were moved, if there were any.
    pub moved_aside: Option<PathBuf>,
    /// Where the store parameters came from.
    pub params_from: String,
}

/// Rebuild the catalog of the store at `dir`. A directory that is not
/// recognisably a store ([`crate::store::is_recognisable`]: no catalog, no
/// file with a wsnap pack or journal header) is refused before anything is
/// written, unless `force`.
pub fn repair(dir: &Path, lock_wait: Duration, force: bool) -> Result<RepairReport> {
    match fs::metadata(dir.join("packs")) {
        Ok(m) if m.is_dir() => {}
        Ok(_) | Err(_) if !dir.exists() => {
            return Err(Error::NoStore {
                path: dir.to_path_buf(),
            })
        }
        _ => {
            return Err(Error::NotAStore {
                path: dir.to_path_buf(),
                reason: "it has no packs/ directory, so there is nothing to rebuild from".into(),
            })
        }
    }
    if !force && !crate::store::is_recognisable(dir) {
        return Err(Error::NotAStore {
            path: dir.to_path_buf(),
            reason: "it has no catalog.sqlite and no file in packs/ or journal/ that wsnap wrote, \
                     so repair would create a store here; if this really is a store whose every \
                     file lost its header, pass --force"
                .into(),
        });
    }
    let note = format!(
        "repair started {}",
        timespec::format_local(timespec::now_ns())
    );
    let _lock = lock::exclusive(&dir.join("lock"), lock_wait, &note)?;
    let w = |p: &Path| {
        let p = p.to_path_buf();
        move |e| Error::store_write(p, e)
    };
    let tmp = dir.join("tmp");
    durable::create_private_dir(&tmp).map_err(w(&tmp))?;
    for e in fs::read_dir(&tmp)
        .map_err(|e| Error::store_read(&tmp, e))?
        .flatten()
    {
        fs::remove_file(e.path()).map_err(w(&e.path()))?;
    }
    let now = timespec::now_ns();
    let stamp = chrono::TimeZone::timestamp_nanos(&chrono::Utc, now).format("%Y%m%dT%H%M%S%.fZ");
    let aside = dir.join("damaged").join(format!("repair-{stamp}"));
    let mut report = RepairReport::default();

    // Sources of snapshots and parameters: journals, and the old catalog if
    // it still opens.
    let old_path = dir.join("catalog.sqlite");
    let old = if old_path.exists() {
        // Writable only to fold its WAL into the main file: from here on
        // `catalog.sqlite` alone is complete, so replacing it later never
        // pairs the new file with an old WAL.
        Catalog::open(&old_path, true)
            .ok()
            .filter(|c| c.checkpoint().is_ok())
    } else {
        None
    };
    let mut candidates: BTreeMap<crate::id::SnapshotId, SnapshotRow> = BTreeMap::new();
    let mut params: Option<(StoreParams, String)> = None;
    // A catalog that still lists its snapshots is the truth about which
    // exist: journal records it lacks are of runs that never committed or
    // of snapshots a gc was forgetting.
    let mut trust_catalog = false;
    if let Some(old) = &old {
        params = Some((old.params(), "the old catalog".into()));
        if let Ok(rows) = old.snapshots(None) {
            trust_catalog = true;
            for r in rows {
                let r = SnapshotRow {
                    damaged: false,
                    ..r
                };
                candidates.insert(r.id, r);
            }
        }
    }
    drop(old);
    let journal_files = journal::list(dir)?;
    for path in &journal_files {
        let d = journal::read(path)?;
        if let Some(why) = d.damage {
            report
                .journal_problems
                .push(format!("{}: {why}", crate::escape::path(path)));
        }
        if params.is_none() {
            if let Some(p) = d.params {
                params = Some((p, format!("journal {}", crate::escape::path(path))));
            }
        }
        if !trust_catalog {
            for r in d.records {
                candidates.entry(r.id).or_insert(r);
            }
        }
    }
    let (params, from) = params.unwrap_or((
        StoreParams::DEFAULT,
        "defaults (no journal or catalog said otherwise)".into(),
    ));
    report.params_from = from;

    // A fresh catalog beside the old one.
    let new_path = dir.join("catalog.sqlite.repair");
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", new_path.display()));
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::store_write(&p, e)),
        }
    }
    Catalog::create(&new_path, &params, now)?;
    let mut cat = Catalog::open(&new_path, true)?;
    let packs_dir = dir.join("packs");
    let new_journal = format!("{now:020}-repair.wsj");
    {
        let rb = cat.begin_rebuild()?;
        // Pass 1: packs.
        let mut writer = PackWriter::new(&tmp, &packs_dir);
        for path in pack_files(&packs_dir)? {
            let bytes = fs::read(&path).map_err(|e| Error::store_read(&path, e))?;
            match verify_pack(&path, &bytes) {
                Ok((id, records)) => {
                    let row = rb.add_pack(&id, bytes.len() as u64, records.len() as u64, now)?;
                    for (offset, h) in &records {
                        rb.add_blob(row, *offset, h)?;
                    }
                    report.packs += 1;
                    report.blobs += records.len() as u64;
                }
                Err(problem) => {
                    let mut saved = 0;
                    for (start, h) in salvage(&bytes) {
                        let payload = &bytes[start + RECORD_HEADER_BYTES
                            ..start + RECORD_HEADER_BYTES + h.stored_len as usize];
                        writer.append(h, payload)?;
                        saved += 1;
                    }
                    if let Some(sealed) = writer.seal()? {
                        let row = rb.add_pack(
                            &sealed.id,
                            sealed.size_bytes,
                            sealed.records.len() as u64,
                            now,
                        )?;
                        for (offset, h) in &sealed.records {
                            rb.add_blob(row, *offset, h)?;
                        }
                        report.packs += 1;
                        report.blobs += sealed.records.len() as u64;
                    }
                    let to = aside.join("packs").join(path.file_name().expect("name"));
                    move_aside(&path, &to)?;
                    report.damaged_packs.push(DamagedPack {
                        path,
                        problem,
                        records_saved: saved,
                        moved_to: to,
                    });
                }
            }
        }
        crate::failpoint::crash_point("repair.packs_indexed");

        // Pass 2: references of trees and chunk lists.
        let files = PackFiles::new(&packs_dir);
        let mut broken: HashSet<i64> = HashSet::new();
        for b in rb.ref_blobs()? {
            let refs = files
                .read_blob(&b.pack, b.offset, &b.id)
                .and_then(|(_, raw)| match b.kind {
                    BlobKind::Tree => Tree::decode(&raw).map(|t| t.references()),
                    _ => chunklist::decode(&raw).map(|c| c.iter().map(|c| c.0).collect()),
                });
            match refs {
                Ok(refs) => {
                    let missing = rb.add_refs(b.row, &refs)?;
                    if missing > 0 {
                        report.missing_refs += missing;
                        broken.insert(b.row);
                    }
                }
                Err(_) => {
                    broken.insert(b.row);
                }
            }
        }
        let broken = ancestors(&rb, broken)?;

        // Snapshots.
        for (_, row) in candidates {
            match rb.tree_row(&row.root.0)? {
                Some(root_row) => {
                    let damaged = broken.contains(&root_row);
                    rb.add_snapshot(&row, root_row, &new_journal, damaged)?;
                    report.snapshots.push(SnapshotRow { damaged, ..row });
                }
                None => report.lost.push(row),
            }
        }
        rb.commit()?;
    }
    cat.checkpoint()?;
    drop(cat);
    crate::failpoint::crash_point("repair.catalog_built");

    // One fresh journal with every recovered snapshot, durable before the
    // new catalog (which names it) takes over.
    let jdir = journal::dir(dir);
    let mut recovered = report.snapshots.clone();
    recovered.sort_by_key(|s| (s.started_ns, s.id));
    journal::rewrite(&jdir.join(&new_journal), &params, &recovered)?;
    // The old catalog is kept (hard links), its WAL and index removed, and
    // the new file renamed over it: at every instant `catalog.sqlite` is the
    // old complete file or the new one.
    let mut moved = false;
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", old_path.display()));
        if p.exists() {
            keep_aside(&p, &aside.join(format!("catalog.sqlite{suffix}")))?;
            moved = true;
        }
    }
    for suffix in ["-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", old_path.display()));
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::store_write(&p, e)),
        }
    }
    crate::failpoint::crash_point("repair.old_catalog_kept");
    let file = fs::File::open(&new_path).map_err(|e| Error::store_read(&new_path, e))?;
    durable::commit_file(&file, &new_path, &old_path).map_err(w(&old_path))?;
    crate::failpoint::crash_point("repair.catalog_replaced");
    for path in journal_files {
        move_aside(
            &path,
            &aside.join("journal").join(path.file_name().expect("name")),
        )?;
        moved = true;
    }
    if moved || !report.damaged_packs.is_empty() {
        report.moved_aside = Some(aside);
    }
    report
        .snapshots
        .sort_by(|a, b| (&a.workspace, a.time_ns).cmp(&(&b.workspace, b.time_ns)));
    Ok(report)
}

/// `packs/xx/*.pack`, sorted.
fn pack_files(packs_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for fan in fs::read_dir(packs_dir).map_err(|e| Error::store_read(packs_dir, e))? {
        let fan = fan.map_err(|e| Error::store_read(packs_dir, e))?;
        if !fan.path().is_dir() {
            continue;
        }
        for f in fs::read_dir(fan.path()).map_err(|e| Error::store_read(fan.path(), e))? {
            let f = f.map_err(|e| Error::store_read(fan.path(), e))?;
            if f.file_name().to_str().is_some_and(|n| n.ends_with(".pack")) {
                out.push(f.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A whole, intact pack: its id (matching its file name) and records, every
/// payload decompressed and re-hashed.
fn verify_pack(
    path: &Path,
    bytes: &[u8],
) -> std::result::Result<(PackId, Vec<(u64, RecordHeader)>), String> {
    let (id, records) = format::scan(bytes).map_err(|e| e.detail())?;
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".pack"))
        .and_then(|h| Id::from_hex(h).ok());
    if named != Some(id.0) {
        return Err(format!("its content is pack {id}, not its file name"));
    }
    for (offset, h) in &records {
        let start = *offset as usize + RECORD_HEADER_BYTES;
        format::decode_payload(h, &bytes[start..start + h.stored_len as usize])
            .map_err(|e| format!("record at {offset}: {}", e.detail()))?;
    }
    Ok((id, records))
}

/// Records of a damaged pack that still verify: (header offset, header).
/// After a bad header the next one is searched byte by byte; a false match
/// of the 4-byte header check is caught by the payload hash.
fn salvage(bytes: &[u8]) -> Vec<(usize, RecordHeader)> {
    let mut out = Vec::new();
    let end = bytes.len().saturating_sub(FOOTER_BYTES).max(HEADER_BYTES);
    let end = if bytes.len() >= HEADER_BYTES + FOOTER_BYTES
        && bytes[bytes.len() - FOOTER_BYTES..].starts_with(format::FOOTER_MAGIC)
    {
        end
    } else {
        bytes.len()
    };
    let mut pos = HEADER_BYTES.min(bytes.len());
    while pos + RECORD_HEADER_BYTES <= end {
        let ok = RecordHeader::decode(&bytes[pos..pos + RECORD_HEADER_BYTES])
            .ok()
            .and_then(|h| {
                let p = pos + RECORD_HEADER_BYTES;
                let q = p.checked_add(h.stored_len as usize)?;
                (q <= end && format::decode_payload(&h, &bytes[p..q]).is_ok()).then_some((h, q))
            });
        match ok {
            Some((h, next)) => {
                out.push((pos, h));
                pos = next;
            }
            None => pos += 1,
        }
    }
    out
}

/// A durable second name (or copy) of `from` at `to`; `from` stays.
fn keep_aside(from: &Path, to: &Path) -> Result<()> {
    let d = to.parent().expect("has a parent");
    durable::create_private_dir(d).map_err(|e| Error::store_write(d, e))?;
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).map_err(|e| Error::store_write(to, e))?;
        fs::File::open(to)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::store_write(to, e))?;
    }
    durable::sync_dir(d).map_err(|e| Error::store_write(d, e))
}

fn move_aside(from: &Path, to: &Path) -> Result<()> {
    let d = to.parent().expect("has a parent");
    durable::create_private_dir(d).map_err(|e| Error::store_write(d, e))?;
    fs::rename(from, to).map_err(|e| Error::store_write(from, e))?;
    durable::sync_dir(d).map_err(|e| Error::store_write(d, e))?;
    let src = from.parent().expect("has a parent");
    durable::sync_dir(src).map_err(|e| Error::store_write(src, e))
}
