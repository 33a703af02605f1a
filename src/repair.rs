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
//!    found again by their checksums after damage; a record whose own header
//!    is damaged is found at the offset the old catalog gives, if it still
//!    opens), and the damaged file is moved to `damaged/`, never deleted;
//! 3. decode every tree and chunk list and index its references; a
//!    reference to a blob that is in no pack marks the tree broken, and so
//!    every tree above it;
//! 4. insert every snapshot of the old catalog if it still lists them, else
//!    every snapshot found in the journals; one whose root tree is lost
//!    cannot be inserted and is reported; one whose tree is broken is
//!    inserted marked `damaged`;
//! 5. write one fresh journal with every recovered snapshot, move the old
//!    catalog and old journals to `damaged/repair-<time>/`, and rename the
//!    new catalog into place; then delete old catalog copies under
//!    `damaged/` beyond the newest [`KEPT_CATALOG_COPIES`].
//!
//! An interrupted repair leaves the old catalog (or none) in place: run it
//! again. Not recovered: run history (`runs`) and per-snapshot skip lists.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::{ancestors, Catalog};
use crate::chunklist;
use crate::durable;
use crate::error::{Error, Result};
use crate::id::PackId;
use crate::journal;
use crate::layout::{self, PackFile};
use crate::lock;
use crate::model::{SnapshotRow, StoreParams};
use crate::pack::{self, salvage, BlobKind, ExpectedRecord, Packs, RecordHeader};
use crate::timespec;

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
    /// Records of damaged packs found through the old catalog (their header
    /// was damaged, their payload intact) and saved.
    pub salvaged_by_old_catalog: u64,
    /// Copies of old catalogs removed from `damaged/` beyond the newest
    /// [`KEPT_CATALOG_COPIES`].
    pub old_catalogs_removed: Vec<PathBuf>,
}

/// How many copies of old catalogs `repair` keeps under
/// `damaged/repair-*/` (the newest ones). Each repair adds one; older ones
/// are deleted after the new catalog is in place. Damaged packs and old
/// journals are never deleted by `repair`.
pub const KEPT_CATALOG_COPIES: usize = 3;

/// Rebuild the catalog of the store at `dir`. A directory that is not
/// recognisably a store (`layout::is_recognisable`: no catalog, no
/// file with a wsnap pack or journal header) is refused before anything is
/// written, unless `force`.
pub fn repair(dir: &Path, lock_wait: Duration, force: bool) -> Result<RepairReport> {
    match fs::metadata(layout::packs_dir(dir)) {
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
    if !force && !layout::is_recognisable(dir) {
        return Err(Error::UnrecognisedStore {
            path: dir.to_path_buf(),
        });
    }
    let note = format!(
        "repair started {}",
        timespec::format_local(timespec::now_ns())
    );
    let _lock = lock::exclusive(dir, &layout::lock_path(dir), lock_wait, &note)?;
    layout::clear_tmp(dir)?;
    let now = timespec::now_ns();
    let aside = layout::repair_aside_dir(dir, now);
    let mut report = RepairReport::default();

    // Sources of snapshots and parameters: journals, and the old catalog if
    // it still opens.
    let old_path = layout::catalog_path(dir);
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
    let journal_files = journal::list(dir)?;
    for path in &journal_files {
        let d = journal::read(path)?;
        if let Some(e) = d.damage {
            report.journal_problems.push(e.detail());
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
    let new_path = layout::repair_catalog_path(dir);
    for suffix in ["", "-wal", "-shm"] {
        let p = layout::with_suffix(&new_path, suffix);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::store_write(&p, e)),
        }
    }
    Catalog::create(&new_path, &params, now)?;
    let mut cat = Catalog::open(&new_path, true)?;
    let packs = Packs::new(dir);
    let new_journal = format!("{now:020}-repair.wsj");
    {
        let rb = cat.begin_rebuild()?;
        // Pass 1: packs.
        let mut writer = packs.writer();
        let files = packs.list()?;
        for file in files
            .into_iter()
            .filter(|f| layout::has_pack_suffix(&f.path))
        {
            let bytes = packs.read_listed(&file)?;
            match verify_pack(&file, &bytes) {
                Ok((id, records)) => {
                    let row = rb.add_pack(&id, bytes.len() as u64, records.len() as u64, now)?;
                    for (offset, h) in &records {
                        rb.add_blob(row, *offset, h)?;
                    }
                    report.packs += 1;
                    report.blobs += records.len() as u64;
                }
                Err(e) => {
                    let mut saved = 0;
                    let mut found = salvage::salvage(&bytes);
                    // Records whose header is damaged but whose payload is
                    // intact: the old catalog, if it still opens, says where
                    // they are; each is kept only if it hashes to its id.
                    if let (Some(old), Some(pack)) = (&old, file.id) {
                        if let Ok(known) = old.blobs_in_pack(&pack) {
                            let known: Vec<_> =
                                known.into_iter().map(ExpectedRecord::located).collect();
                            let extra = salvage::salvage_known(&bytes, &found, &known);
                            report.salvaged_by_old_catalog += extra.len() as u64;
                            found.extend(extra);
                            found.sort_by_key(|(start, _)| *start);
                        }
                    }
                    for (start, h) in found {
                        writer.append(h, salvage::payload(&bytes, start, &h))?;
                        saved += 1;
                    }
                    // The damaged file gets its second name under `damaged/`
                    // before the salvage pack is sealed: when every record
                    // was saved (only the footer or padding was damaged) the
                    // salvage pack is the intact original, has its very name
                    // and replaces it in `packs/`. A crash from here on
                    // leaves the damaged file in both places (or the intact
                    // one in `packs/`): the next repair does it again.
                    let to = layout::aside_pack_path(&aside, &file.path);
                    packs.keep_aside(&file, &to)?;
                    let mut replaced = false;
                    if let Some(sealed) = writer.seal()? {
                        replaced = Some(sealed.id) == file.id;
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
                    if !replaced {
                        packs.remove_listed(&file)?;
                    }
                    report.damaged_packs.push(DamagedPack {
                        path: file.path,
                        problem: e.detail(),
                        records_saved: saved,
                        moved_to: to,
                    });
                }
            }
        }
        drop(old);
        crate::failpoint::crash_point("repair.packs_indexed");

        // Pass 2: references of trees and chunk lists.
        let mut broken: HashSet<i64> = HashSet::new();
        for b in rb.ref_blobs()? {
            let refs = packs
                .read_blob(&b.pack, b.offset, &b.id)
                .and_then(|(_, raw)| match b.kind {
                    BlobKind::Tree => crate::tree::references_of(&raw),
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
    let old_files = layout::catalog_files(dir);
    for (p, to) in old_files.iter().zip(layout::catalog_files(&aside)) {
        if p.exists() {
            keep_aside(p, &to)?;
            moved = true;
        }
    }
    for p in &old_files[1..] {
        match fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::store_write(p, e)),
        }
    }
    crate::failpoint::crash_point("repair.old_catalog_kept");
    let file = fs::File::open(&new_path).map_err(|e| Error::store_read(&new_path, e))?;
    durable::commit_file(&file, &new_path, &old_path)
        .map_err(|e| Error::store_write(&old_path, e))?;
    crate::failpoint::crash_point("repair.catalog_replaced");
    for path in journal_files {
        move_aside(&path, &layout::aside_journal_path(&aside, &path))?;
        moved = true;
    }
    if moved || !report.damaged_packs.is_empty() {
        report.moved_aside = Some(aside);
    }
    // Only now that the new catalog is in place: older copies of old
    // catalogs beyond the newest KEPT_CATALOG_COPIES go (packs and journals
    // under `damaged/` are never deleted here).
    report.old_catalogs_removed = trim_catalog_copies(&layout::damaged_dir(dir))?;
    report
        .snapshots
        .sort_by(|a, b| (&a.workspace, a.time_ns).cmp(&(&b.workspace, b.time_ns)));
    Ok(report)
}

/// A whole, intact pack: its id (matching its file name) and records, every
/// payload decompressed and re-hashed.
fn verify_pack(file: &PackFile, bytes: &[u8]) -> Result<(PackId, Vec<(u64, RecordHeader)>)> {
    let (id, records) = pack::verify_pack(bytes)?;
    if file.id != Some(id) {
        return Err(Error::corrupt_as(format!(
            "its content is pack {id}, not its file name"
        )));
    }
    Ok((id, records))
}

/// Delete old catalog copies (`catalog.sqlite`, `-wal`, `-shm`) under
/// `damaged/repair-*/` beyond the newest [`KEPT_CATALOG_COPIES`]; a
/// directory left empty goes too. Returns the catalog files deleted.
fn trim_catalog_copies(damaged: &Path) -> Result<Vec<PathBuf>> {
    let with_catalog: Vec<PathBuf> = layout::repair_dirs(damaged)?
        .into_iter()
        .filter(|d| layout::catalog_path(d).exists())
        .collect();
    let excess = with_catalog.len().saturating_sub(KEPT_CATALOG_COPIES);
    let mut removed = Vec::new();
    for d in &with_catalog[..excess] {
        let [main, wal, shm] = layout::catalog_files(d);
        for p in [wal, shm, main] {
            match fs::remove_file(&p) {
                Ok(()) => removed.push(p),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::store_write(&p, e)),
            }
        }
        durable::sync_dir(d).map_err(|e| Error::store_write(d, e))?;
        // Only an empty directory: packs and journals in it stay.
        if fs::remove_dir(d).is_ok() {
            durable::sync_dir(damaged).map_err(|e| Error::store_write(damaged, e))?;
        }
    }
    Ok(removed)
}

/// A durable second name (or copy) of `from` at `to`; `from` stays.
fn keep_aside(from: &Path, to: &Path) -> Result<()> {
    let d = to.parent().expect("has a parent");
    durable::create_private_dir(d).map_err(|e| Error::store_write(d, e))?;
    durable::link_or_copy(from, to).map_err(|e| Error::store_write(to, e))
}

fn move_aside(from: &Path, to: &Path) -> Result<()> {
    let d = to.parent().expect("has a parent");
    durable::create_private_dir(d).map_err(|e| Error::store_write(d, e))?;
    durable::rename(from, to).map_err(|e| Error::store_write(from, e))
}
