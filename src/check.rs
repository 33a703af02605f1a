//! `check`: is every byte the catalog promises really in the packs?
//!
//! Without `read_data`: every pack the catalog lists exists with its size,
//! every indexed blob's record header is where the catalog says, with the
//! same id, kind and lengths; every reference and snapshot root is indexed;
//! pack files the catalog does not know are reported. With `read_data`:
//! every pack is read whole, its footer hash (its id) verified, and every
//! indexed blob decompressed and re-hashed, and every id a tree or chunk
//! list names looked up in the index (`tree_refs` holds only what was
//! found, so this is what sees a reference to data the store lacks). Each
//! damaged or missing blob is named with the snapshots and paths it breaks.
//! First of all, SQLite's own check of the catalog file (`quick_check`;
//! `integrity_check` with `read_data`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::chunklist;
use crate::error::{Error, Object, Result};
use crate::escape::{self, Escaped};
use crate::id::{Id, SnapshotId};
use crate::journal;
use crate::model::SnapshotRow;
use crate::pack::{self, BlobKind, ExpectedRecord};
use crate::progress::Progress;
use crate::store::Store;
use crate::tree::{EntryKind, FileContent, TreeBlob, TreeIndex};

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What is wrong, naming the pack or blob.
    pub problem: String,
    /// Snapshots (short id and workspace) and paths it breaks.
    pub affects: Vec<String>,
}

/// Everything `check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub packs: u64,
    pub blobs: u64,
    pub snapshots: u64,
    pub bytes_read: u64,
    pub findings: Vec<Finding>,
    /// Pack files the catalog does not know (left by a crash; removed by prune).
    pub orphan_packs: Vec<PathBuf>,
    /// What was done about damaged or missing blobs (see [`Recorded`]).
    pub recorded: Option<Recorded>,
}

/// Damage `check` recorded in the catalog, so no later snapshot reuses it:
/// damaged chunks and chunk lists left the index (the next snapshot of a
/// file holding them stores them again) and the snapshots reaching them are
/// marked damaged (never a stat-cache parent; whole again once their data
/// is stored again, see `heal.rs`).
#[derive(Debug)]
pub enum Recorded {
    Done {
        blobs_unindexed: u64,
        snapshots_marked: u64,
    },
    /// The writer lock could not be taken (another run, a read-only store):
    /// nothing recorded; run `check --read-data` again.
    NotRecorded(Error),
}

/// Check `store`.
pub fn check(store: &Store, read_data: bool) -> Result<CheckReport> {
    check_with_progress(store, read_data, &Progress::default())
}

/// [`check`], counting the packs it has checked (and their bytes) into
/// `progress`.
pub fn check_with_progress(
    store: &Store,
    read_data: bool,
    progress: &Progress,
) -> Result<CheckReport> {
    let (mut report, bad_blobs, bad_snapshots) = check_pinned(store, read_data, progress)?;
    if !bad_blobs.is_empty() {
        report.recorded = Some(record(store, &bad_blobs, &bad_snapshots));
    }
    Ok(report)
}

/// Record damage, under the writer lock if it is free right now (never
/// waiting: this runs after the readers' lock is released, and a run
/// holding the writer lock may be waiting for readers).
fn record(store: &Store, blobs: &[Id], snapshots: &[SnapshotId]) -> Recorded {
    let done = store
        .lock(std::time::Duration::ZERO, "check: recording damaged blobs")
        .and_then(|lock| {
            store
                .catalog_for_writing(&lock)?
                .record_damage(blobs, snapshots)
        });
    match done {
        Ok(n) => Recorded::Done {
            blobs_unindexed: n,
            snapshots_marked: snapshots.len() as u64,
        },
        Err(e) => Recorded::NotRecorded(e),
    }
}

type Checked = (CheckReport, Vec<Id>, Vec<SnapshotId>);

fn check_pinned(store: &Store, read_data: bool, progress: &Progress) -> Result<Checked> {
    // Readers' lock, then one pinned view: gc deletes no pack this view
    // names, and a prune committing meanwhile changes nothing we compare.
    let _readers = store.read_guard()?;
    let cat = store.catalog_for_reading()?;
    cat.pin_view()?;
    let mut report = CheckReport::default();
    let mut damaged: BTreeMap<Id, String> = BTreeMap::new();
    let mut problems: Vec<String> = Vec::new();
    // SQLite's own check first: a corrupt page makes every query below
    // unreliable (and restores fail), whatever the packs hold. Reported
    // alone: nothing read through such a catalog can be trusted.
    let sqlite = cat.integrity(read_data);
    if !sqlite.is_empty() {
        report.findings = sqlite
            .into_iter()
            .map(|p| Finding {
                problem: format!(
                    "catalog {}: SQLite reports {p}; rebuild it from the packs with `wsnap repair`",
                    escape::path(&store.catalog_path())
                ),
                affects: Vec::new(),
            })
            .collect();
        return Ok((report, Vec::new(), Vec::new()));
    }
    // Trees and chunk lists read with --read-data, with what they reference.
    let mut decoded: Vec<(Id, Vec<Id>)> = Vec::new();
    let mut indexes: Vec<(Id, TreeIndex)> = Vec::new();

    let packs = cat.all_packs()?;
    crate::failpoint::pause_point("check.packs_listed");
    report.packs = packs.len() as u64;
    progress.expect(report.packs, packs.iter().map(|(_, size)| size).sum());
    let mut known = HashSet::new();
    for (pack, size) in &packs {
        progress.add(1, *size);
        known.insert(*pack);
        let path = store.packs().path_of(pack);
        let blobs = cat.blobs_in_pack(pack)?;
        report.blobs += blobs.len() as u64;
        let actual = match store.packs().size(pack) {
            Ok(n) => n,
            Err(e) => {
                problems.push(format!(
                    "pack {} is missing: {}",
                    escape::path(&path),
                    e.detail()
                ));
                for b in blobs {
                    damaged.insert(b.0, format!("its pack {} is missing", pack.0.short()));
                }
                continue;
            }
        };
        if actual != *size {
            problems.push(format!(
                "pack {} has {actual} bytes, catalog says {size}",
                escape::path(&path)
            ));
        }
        let records = blobs.into_iter().map(ExpectedRecord::located);
        if read_data {
            let bytes = match store.packs().read_whole(pack) {
                Ok(b) => b,
                Err(e) => {
                    problems.push(format!(
                        "pack {} unreadable: {}",
                        escape::path(&path),
                        e.detail()
                    ));
                    continue;
                }
            };
            report.bytes_read += bytes.len() as u64;
            if let Err(e) = pack::scan(&bytes) {
                problems.push(e.within(Object::PackFile(path.clone())).detail());
            }
            for (offset, expected) in records {
                match check_record(&bytes, offset, &expected, &mut indexes) {
                    Ok(Some(refs)) => decoded.push((expected.id, refs)),
                    Ok(None) => {}
                    Err(e) => {
                        damaged.insert(expected.id, e.detail());
                    }
                }
            }
        } else {
            for (offset, expected) in records {
                match store.packs().read_header(pack, offset) {
                    Ok(h) if h.agrees_with(&expected) => {}
                    Ok(h) => {
                        let e = expected.unlike(&h).within(Object::Record { offset });
                        damaged.insert(expected.id, e.detail());
                    }
                    Err(e) => {
                        damaged.insert(expected.id, e.detail());
                    }
                }
            }
        }
    }
    for r in cat.dangling_references()? {
        problems.push(r);
    }
    // Every id a decoded tree or list names must be indexed: `tree_refs`
    // only holds the references that were found, so this is the check that
    // sees a reference to data the store lacks.
    // Trees no snapshot reaches (a crashed run's, indexed by `repair`)
    // may name blobs that never were stored: garbage for the next prune,
    // not damage; so these count only where a snapshot uses them (below).
    let mut unstored = HashSet::new();
    for (tree, refs) in &decoded {
        for r in refs {
            if !damaged.contains_key(r) && !cat.has_blob(r)? {
                damaged.insert(*r, format!("referenced by {} but not stored", tree.short()));
                unstored.insert(*r);
            }
        }
    }
    check_indexes(store, &cat, &indexes, &mut damaged)?;
    match store.packs().list() {
        Ok(files) => {
            report.orphan_packs = files
                .into_iter()
                .filter(|f| f.id.is_none_or(|id| !known.contains(&id)))
                .map(|f| f.path)
                .collect();
        }
        Err(e) => problems.push(format!("pack files cannot be listed: {}", e.detail())),
    }
    report.snapshots = cat.snapshot_count()?;
    for s in cat.damaged_snapshots()? {
        problems.push(format!(
            "snapshot {} of {} is marked damaged: data of it is missing (found by `repair` or `check`), so it restores only in part",
            s.id.0.short(),
            s.workspace
        ));
    }
    problems.extend(check_journals(store, &cat)?);
    let mut users = BTreeSet::new();
    let affects = if damaged.is_empty() {
        BTreeMap::new()
    } else {
        // Only now, with damage to explain, every snapshot is loaded.
        let snapshots = cat.snapshots(None)?;
        let bad = damaged.keys().copied().collect();
        who_uses(store, &cat, &snapshots, &bad, &mut users)
    };
    damaged.retain(|id, _| !unstored.contains(id) || affects.contains_key(id));
    let bad_blobs: Vec<Id> = damaged.keys().copied().collect();
    for p in problems {
        report.findings.push(Finding {
            problem: p,
            affects: Vec::new(),
        });
    }
    for (id, why) in damaged {
        report.findings.push(Finding {
            problem: format!("blob {id}: {why}"),
            affects: affects
                .get(&id)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        });
    }
    Ok((report, bad_blobs, users.into_iter().collect()))
}

/// Journal records `check` holds in memory at once (~40 bytes each); more
/// are checked in passes over ranges of the id space.
const JOURNAL_RECORDS_HELD: u64 = 1_000_000;

/// Journals against the catalog: every snapshot has exactly one record, and
/// no finished journal holds a snapshot the catalog does not have (`repair`
/// would bring it back). Runs beside writers: a snapshot appends its record
/// before its catalog commit, a prune drops records after its commit, so
/// the catalog view is taken first and mismatches are confirmed against a
/// fresh view taken after the journals were read.
fn check_journals(store: &Store, cat: &Catalog) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    if cat.version() < 2 {
        return Ok(problems);
    }
    // The catalog's view is taken before the journals are read (a snapshot
    // is journaled before it commits, so every snapshot in this view has
    // its record on disk by then), and streamed after.
    let view = store.catalog_for_reading()?;
    view.pin_view()?;
    let pending = view.pending_journals()?;
    // Every record as (snapshot id, journal file index), sorted, then merged
    // with the catalog's snapshots streamed in id order: ~40 bytes per
    // record, and at most `JOURNAL_RECORDS_HELD` records at a time: a store
    // with more is checked range by range of the id space (each pass
    // reading the journals again, keeping only its range's records).
    let paths = journal::list(store.dir())?;
    let bytes: u64 = paths
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    // A record takes at least `journal::MIN_RECORD_BYTES`: at most this many.
    let most = bytes / journal::MIN_RECORD_BYTES;
    let held = crate::failpoint::check_records_held().unwrap_or(JOURNAL_RECORDS_HELD);
    let passes = most.div_ceil(held).clamp(1, 256) as u32;
    let fresh = store.catalog_for_reading()?;
    let mut suspects: Vec<(SnapshotId, String)> = Vec::new();
    let mut not_in_catalog: Vec<SnapshotId> = Vec::new();
    let mut files: Vec<(String, bool)> = Vec::new();
    for pass in 0..passes {
        // This pass's ids: those whose first two bytes are in [lo, hi).
        let bound = |k: u32| (u64::from(k) * 65536 / u64::from(passes)) as u32;
        let (lo, hi) = (bound(pass), bound(pass + 1));
        let in_range = |id: &SnapshotId| {
            let two = u32::from(id.0 .0[0]) << 8 | u32::from(id.0 .0[1]);
            (lo..hi).contains(&two)
        };
        // Sized once (growing by doubling would hold up to twice the
        // records' memory).
        let mut recorded: Vec<(SnapshotId, u32)> =
            Vec::with_capacity(usize::try_from(most / u64::from(passes) + 1).unwrap_or(0));
        for (idx, path) in paths.iter().enumerate() {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            // Records a writer is about to commit, or a gc is about to drop.
            let open = name.ends_with(".open") || pending.contains(&name);
            let d = match (pass, path.exists()) {
                (0, _) | (_, true) => journal::read(path)?,
                // Gone since the first pass: a run that finished renamed
                // its `.open` file; a journal whose snapshots were all
                // forgotten was removed (a fresh view confirms below).
                (_, false) => match path
                    .to_str()
                    .and_then(|p| p.strip_suffix(".open"))
                    .map(Path::new)
                    .filter(|p| p.exists())
                {
                    Some(closed) => journal::read(closed)?,
                    None => continue,
                },
            };
            if pass == 0 {
                if let Some(e) = &d.damage {
                    problems.push(e.detail());
                } else if d.torn_tail && !open {
                    problems.push(format!("journal {}: cut short", escape::path(path)));
                }
                let base = name.strip_suffix(".open").unwrap_or(&name).to_string();
                files.push((base, open));
            }
            let idx = u32::try_from(idx).expect("fewer than 4 G journal files");
            recorded.extend(
                d.records
                    .into_iter()
                    .filter(|r| in_range(&r.id))
                    .map(|r| (r.id, idx)),
            );
        }
        recorded.sort_unstable();
        let mut at = 0;
        // Records of ids before `upto` that the catalog does not list.
        let mut skip_unlisted = |at: &mut usize, upto: Option<&SnapshotId>| {
            while *at < recorded.len() && upto.is_none_or(|u| recorded[*at].0 < *u) {
                let id = recorded[*at].0;
                let mut closed = false;
                while *at < recorded.len() && recorded[*at].0 == id {
                    closed |= !files[recorded[*at].1 as usize].1;
                    *at += 1;
                }
                if closed {
                    not_in_catalog.push(id);
                }
            }
        };
        let (lo_id, hi_id) = ((lo as u16).to_be_bytes(), (hi as u16).to_be_bytes());
        let hi_id = (hi < 65536).then_some(&hi_id[..]);
        view.for_each_snapshot_journal_in(&lo_id, hi_id, |id, journal| {
            skip_unlisted(&mut at, Some(&id));
            let start = at;
            while at < recorded.len() && recorded[at].0 == id {
                at += 1;
            }
            let mine = &recorded[start..at];
            let problem = match journal {
                None => Some("no journal file recorded in the catalog".to_string()),
                Some(j) if !mine.iter().any(|(_, f)| files[*f as usize].0 == j) => {
                    Some(format!("its record is missing from journal {j}"))
                }
                Some(_) if mine.len() > 1 => Some(format!("recorded in {} journals", mine.len())),
                Some(_) => None,
            };
            if let Some(p) = problem {
                suspects.push((id, p));
            }
            Ok(())
        })?;
        skip_unlisted(&mut at, None);
    }
    // Confirm against a view taken after the journals were read.
    for (id, p) in suspects {
        if fresh.has_snapshot(&id)? {
            problems.push(format!(
                "snapshot {}: {p}; a lost catalog could not be rebuilt with it (run check again if a prune was running)",
                id.0.short()
            ));
        }
    }
    for id in not_in_catalog {
        if !fresh.has_snapshot(&id)? {
            problems.push(format!(
                "journal records snapshot {} that the catalog does not have: `repair` would bring it back",
                id.0.short()
            ));
        }
    }
    Ok(problems)
}

/// Check the record the catalog describes as `expected` at `offset` of a
/// whole pack's `bytes`: its header, and its decompressed, re-hashed data.
/// A tree or chunk list gives back the ids it references.
/// A large directory's index is kept in `indexes`, for [`check_indexes`].
fn check_record(
    bytes: &[u8],
    offset: u64,
    expected: &ExpectedRecord,
    indexes: &mut Vec<(Id, TreeIndex)>,
) -> Result<Option<Vec<Id>>> {
    let raw = pack::verify_record(bytes, offset, expected)?;
    match expected.kind {
        BlobKind::Tree => match crate::tree::decode_blob(&raw)? {
            TreeBlob::Flat(t) => Ok(Some(t.references())),
            TreeBlob::Index(index) => {
                let refs = index.references();
                indexes.push((expected.id, index));
                Ok(Some(refs))
            }
        },
        BlobKind::ChunkList => {
            let chunks = chunklist::decode(&raw)?;
            Ok(Some(chunks.into_iter().map(|c| c.0).collect()))
        }
        BlobKind::Chunk => Ok(None),
    }
}

/// Each large directory's pieces against its index (entry counts, first
/// names, order across pieces): every piece decodes on its own, so only
/// this sees pieces that do not fit together. Pieces found damaged or
/// missing already are not read again; an index whose pieces do not fit
/// is damaged.
fn check_indexes(
    store: &Store,
    cat: &Catalog,
    indexes: &[(Id, TreeIndex)],
    damaged: &mut BTreeMap<Id, String>,
) -> Result<()> {
    for (id, index) in indexes {
        for (i, p) in index.pieces.iter().enumerate() {
            if damaged.contains_key(&p.tree.0) || !cat.has_blob(&p.tree.0)? {
                continue;
            }
            let fits = store
                .read_piece(cat, &p.tree)
                .and_then(|t| index.check_piece(i, &t));
            if let Err(e) = fits {
                damaged.insert(*id, format!("piece {}: {}", p.tree.0.short(), e.detail()));
                break;
            }
        }
    }
    Ok(())
}

/// For each damaged id: the snapshots and paths whose data uses it.
fn who_uses(
    store: &Store,
    cat: &Catalog,
    snapshots: &[SnapshotRow],
    bad: &BTreeSet<Id>,
    users: &mut BTreeSet<SnapshotId>,
) -> BTreeMap<Id, BTreeSet<String>> {
    let mut out: BTreeMap<Id, BTreeSet<String>> = BTreeMap::new();
    for s in snapshots {
        let before = out.values().map(BTreeSet::len).sum::<usize>();
        let label = format!("snapshot {} of {}", s.id.0.short(), s.workspace);
        let mut stack = vec![(s.root.0, String::new())];
        while let Some((tree_id, path)) = stack.pop() {
            let shown = if path.is_empty() {
                "/".to_string()
            } else {
                path.clone()
            };
            if bad.contains(&tree_id) {
                out.entry(tree_id)
                    .or_default()
                    .insert(format!("{label}: {shown} (directory)"));
                continue;
            }
            let tree = match store.read_tree_blob(cat, &crate::id::TreeId(tree_id)) {
                Ok(TreeBlob::Flat(tree)) => tree,
                // A large directory's pieces: each is part of `path`.
                Ok(TreeBlob::Index(index)) => {
                    stack.extend(index.pieces.iter().map(|p| (p.tree.0, path.clone())));
                    continue;
                }
                Err(_) => continue,
            };
            for e in &tree.entries {
                let p = format!("{path}/{}", Escaped(&e.name));
                match &e.kind {
                    EntryKind::Dir { tree } => stack.push((tree.0, p)),
                    EntryKind::File { content } => {
                        let mut ids: Vec<Id> = Vec::new();
                        match content {
                            FileContent::Chunks(c) => ids.extend(c.iter().map(|c| c.0)),
                            FileContent::Lists(l) => {
                                for list in l {
                                    ids.push(list.0);
                                    if let Ok(raw) =
                                        store.read_blob(cat, &list.0, BlobKind::ChunkList)
                                    {
                                        if let Ok(c) = chunklist::decode(&raw) {
                                            ids.extend(c.iter().map(|c| c.0));
                                        }
                                    }
                                }
                            }
                        }
                        for id in ids.into_iter().filter(|i| bad.contains(i)) {
                            out.entry(id).or_default().insert(format!("{label}: {p}"));
                        }
                    }
                    EntryKind::Symlink { .. } => {}
                }
            }
        }
        if out.values().map(BTreeSet::len).sum::<usize>() > before {
            users.insert(s.id);
        }
    }
    out
}
