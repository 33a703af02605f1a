//! A store directory: paths, creation, opening, and shared read access.
//!
//! ```text
//! STORE/                0700
//!   catalog.sqlite      the index (SQLite, WAL); never delete -wal/-shm by hand
//!   packs/xx/<id>.pack  immutable pack files, 0600
//!   tmp/                packs being written; garbage after a crash
//!   lock                flock target; holds the writer's pid
//!   readers             flock target: shared by readers, exclusive while gc deletes packs
//! ```
//!
//! A path that exists but is not a store is refused and never written into.
//! `init` creates the catalog last (renamed into place), so a crash during
//! `init` leaves a directory that is recognised as unfinished and re-inited.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::{BlobLocation, Catalog};
use crate::durable;
use crate::error::{Error, Result};
use crate::id::{Id, TreeId};
use crate::journal;
use crate::lock::{self, LockGuard};
use crate::model::StoreParams;
use crate::pack::{BlobKind, PackFiles};
use crate::timespec;
use crate::tree::Tree;

const CATALOG: &str = "catalog.sqlite";
/// The journal holding the snapshots of a store upgraded from version 1.
const V1_JOURNAL: &str = "00000000000000000000-v1.wsj";
/// Entries a store directory may hold before its catalog exists (crashed init).
const INIT_LEFTOVERS: &[&str] = &[
    "packs",
    "tmp",
    "journal",
    "lock",
    "readers",
    "catalog.sqlite.tmp",
];

/// An opened store.
pub struct Store {
    dir: PathBuf,
    params: StoreParams,
    packs: PackFiles,
}

/// What `Store::init` found.
#[derive(Debug, PartialEq, Eq)]
pub enum InitOutcome {
    Created,
    AlreadyExists,
}

impl Store {
    /// Create a store at `dir` (absent or empty), or report that one exists.
    pub fn init(dir: &Path) -> Result<InitOutcome> {
        Self::init_with(dir, &StoreParams::DEFAULT)
    }

    /// [`Store::init`] with explicit parameters (tests, benchmarks).
    pub fn init_with(dir: &Path, params: &StoreParams) -> Result<InitOutcome> {
        params.chunker.validate()?;
        match classify(dir)? {
            State::Store => {
                Store::open(dir)?;
                return Ok(InitOutcome::AlreadyExists);
            }
            State::Absent | State::Empty => {}
        }
        let w = |p: &Path| {
            let p = p.to_path_buf();
            move |e| Error::store_write(p, e)
        };
        durable::create_private_dir(dir).map_err(w(dir))?;
        for sub in ["packs", "tmp"] {
            let p = dir.join(sub);
            durable::create_private_dir(&p).map_err(w(&p))?;
        }
        for name in ["lock", "readers"] {
            let lock_path = dir.join(name);
            if !lock_path.exists() {
                drop(durable::create_private_file(&lock_path).map_err(w(&lock_path))?);
            }
        }
        durable::sync_dir(dir).map_err(w(dir))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            durable::sync_dir(parent).map_err(w(parent))?;
        }
        // Last step: the catalog appears atomically, which makes this a store.
        Catalog::create(&dir.join(CATALOG), params, timespec::now_ns())?;
        Ok(InitOutcome::Created)
    }

    /// Open an existing store (reads only; writers also take [`Store::lock`]).
    pub fn open(dir: &Path) -> Result<Store> {
        match classify(dir)? {
            State::Store => {}
            State::Absent | State::Empty => {
                return Err(Error::NoStore {
                    path: dir.to_path_buf(),
                })
            }
        }
        let catalog = Catalog::open(&dir.join(CATALOG), false)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            params: catalog.params(),
            packs: PackFiles::new(&dir.join("packs")),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn params(&self) -> StoreParams {
        self.params
    }

    pub fn catalog_path(&self) -> PathBuf {
        self.dir.join(CATALOG)
    }

    pub fn packs_dir(&self) -> PathBuf {
        self.dir.join("packs")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    pub fn packs(&self) -> &PackFiles {
        &self.packs
    }

    /// A new catalog connection.
    pub fn catalog(&self, writable: bool) -> Result<Catalog> {
        Catalog::open(&self.catalog_path(), writable)
    }

    /// Take the exclusive writer lock, waiting up to `wait`. Then, as the
    /// only writer: clear `tmp/` (leftovers of a crashed writer), upgrade a
    /// version-1 catalog, and finish the journals of crashed runs.
    pub fn lock(&self, wait: Duration, note: &str) -> Result<LockGuard> {
        let guard = lock::exclusive(&self.dir.join("lock"), wait, note)?;
        self.tidy_locked(&guard)?;
        Ok(guard)
    }

    /// What every writer does once it holds the lock: remove temporary
    /// files of dead runs (`tmp/`), upgrade an old catalog, finish the
    /// journals of crashed or failed runs (trimmed to what the catalog
    /// committed) and of an interrupted gc. Also called within a run, after
    /// its writer failed, before a fresh writer starts (`snapshot --prune`
    /// on a full disk, see `snapshot::run_again_locked`).
    pub fn tidy_locked(&self, _lock: &LockGuard) -> Result<()> {
        let tmp = self.tmp_dir();
        if let Ok(rd) = fs::read_dir(&tmp) {
            for e in rd.flatten() {
                fs::remove_file(e.path()).map_err(|e2| Error::store_write(e.path(), e2))?;
            }
        }
        let mut catalog = self.catalog(true)?;
        if catalog.version() == 1 {
            // Every existing snapshot goes into one journal, durable before
            // the catalog says version 2. A crash in between rewrites the
            // same file next time.
            let path = journal::dir(&self.dir).join(V1_JOURNAL);
            journal::rewrite(&path, &self.params, &catalog.snapshots(None)?)?;
            catalog.migrate_v1(V1_JOURNAL)?;
        }
        catalog.ensure_indexes()?;
        journal::reconcile(&self.dir, &self.params, |id| catalog.has_snapshot(id))?;
        let pending = catalog.pending_journals()?;
        if !pending.is_empty() {
            journal::keep_committed(&self.dir, &self.params, &pending, |id| {
                catalog.has_snapshot(id)
            })?;
            catalog.clear_pending_journals()?;
        }
        Ok(())
    }

    /// Hold the readers' lock while reading packs (restore, ls, check, diff,
    /// log): gc will not delete a pack file meanwhile. On a read-only store
    /// it is taken through a read-only descriptor, or skipped if the file is
    /// missing (see [`lock::readers_shared`]).
    pub fn read_guard(&self) -> Result<LockGuard> {
        lock::readers_shared(&self.dir.join("readers"), Duration::from_secs(60))
    }

    /// The readers' lock, exclusive, if no reader is active (gc only).
    pub(crate) fn readers_exclusive_now(&self) -> Result<Option<LockGuard>> {
        lock::readers_exclusive_now(&self.dir.join("readers"))
    }

    /// Read and decode a tree through `catalog`.
    pub fn read_tree(&self, catalog: &Catalog, id: &TreeId) -> Result<Tree> {
        let raw = self.read_blob(catalog, &id.0, BlobKind::Tree)?;
        Tree::decode(&raw).map_err(|e| Error::corrupt(format!("tree {id}: {e}")))
    }

    /// Read one blob, verified against its id.
    pub fn read_blob(&self, catalog: &Catalog, id: &Id, kind: BlobKind) -> Result<Vec<u8>> {
        let loc = catalog.blob_location(id)?;
        self.read_blob_at(id, kind, loc)
    }

    /// Read one blob whose location was looked up already (so the catalog
    /// connection is not held while the pack is read and decompressed).
    pub fn read_blob_at(
        &self,
        id: &Id,
        kind: BlobKind,
        loc: Option<BlobLocation>,
    ) -> Result<Vec<u8>> {
        let loc =
            loc.ok_or_else(|| Error::corrupt(format!("{kind:?} {id} is not in the catalog")))?;
        if loc.kind != kind {
            return Err(Error::corrupt(format!(
                "blob {id} is a {:?}, expected {kind:?}",
                loc.kind
            )));
        }
        let (header, raw) =
            self.packs
                .read_blob_sized(&loc.pack, loc.offset, loc.stored_len, id)?;
        if header.kind != kind || header.raw_len != loc.raw_len {
            return Err(Error::corrupt(format!(
                "blob {id}: pack record disagrees with catalog"
            )));
        }
        Ok(raw)
    }
}

/// Whether `dir` holds files wsnap wrote: a pack (`packs/xx/*.pack`
/// starting with the pack magic) or a snapshot journal (`journal/*.wsj`
/// starting with the journal magic). Then a missing or unreadable catalog is
/// damage to repair, not a foreign directory; a `packs/` folder of someone
/// else's files is not.
pub(crate) fn holds_store_data(dir: &Path) -> bool {
    let starts_with = |p: &Path, magic: &[u8]| {
        let mut head = vec![0u8; magic.len()];
        fs::File::open(p)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok_and(|()| head == magic)
    };
    let has = |d: &Path, suffix: &str, magic: &[u8]| {
        fs::read_dir(d).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                e.file_name().to_str().is_some_and(|n| n.ends_with(suffix))
                    && starts_with(&e.path(), magic)
            })
        })
    };
    let packs = fs::read_dir(dir.join("packs")).is_ok_and(|rd| {
        rd.flatten().any(|fan| {
            fan.file_name().len() == 2 && has(&fan.path(), ".pack", crate::pack::format::PACK_MAGIC)
        })
    });
    packs || has(&dir.join("journal"), ".wsj", crate::journal::JOURNAL_MAGIC)
}

/// Whether `dir` is recognisably a store, whole or damaged: it has a
/// catalog, or files wsnap wrote (a pack or journal header; see
/// `holds_store_data`). `repair` writes only into such a
/// directory (unless forced).
pub fn is_recognisable(dir: &Path) -> bool {
    dir.join(CATALOG).exists() || holds_store_data(dir)
}

enum State {
    Absent,
    Empty,
    Store,
}

fn classify(dir: &Path) -> Result<State> {
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::Absent),
        Err(e) => return Err(Error::store_read(dir, e)),
    };
    if !meta.is_dir() {
        return Err(Error::NotAStore {
            path: dir.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    if dir.join(CATALOG).exists() {
        return Ok(State::Store);
    }
    let mut foreign = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::store_read(dir, e))? {
        let e = e.map_err(|e| Error::store_read(dir, e))?;
        let name = e.file_name();
        let leftover = INIT_LEFTOVERS.iter().any(|n| name == *n);
        let empty_subdir = e.path().is_dir()
            && fs::read_dir(e.path())
                .map(|mut r| r.next().is_none())
                .unwrap_or(false);
        if !leftover || (e.path().is_dir() && !empty_subdir) {
            foreign.push(crate::escape::escape(
                std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()),
            ));
        }
    }
    if holds_store_data(dir) {
        return Err(Error::CatalogDamaged {
            path: dir.to_path_buf(),
            reason: "catalog.sqlite is missing but packs are here".into(),
        });
    }
    if foreign.is_empty() {
        Ok(State::Empty)
    } else {
        foreign.sort();
        foreign.truncate(3);
        Err(Error::NotAStore {
            path: dir.to_path_buf(),
            reason: format!("it has no catalog.sqlite but holds {}", foreign.join(", ")),
        })
    }
}
