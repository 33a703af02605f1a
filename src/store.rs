//! A store directory: creation, opening, its locks, recovery after a
//! crash, and shared read access to its catalog and packs.
//!
//! The directory tree is described (and named) in `layout`. A path that
//! exists but is not a store is refused and never written into. `init`
//! creates the catalog last (renamed into place), so a crash during `init`
//! leaves a directory that is recognised as unfinished and re-inited.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::{BlobLocation, Catalog};
use crate::durable;
use crate::error::{Error, Object, Problem, Result};
use crate::id::{Id, TreeId};
use crate::journal;
use crate::layout;
use crate::lock::{self, ReaderLock, ReadersExcluded, WriterLock};
use crate::model::StoreParams;
use crate::pack::{BlobKind, ExpectedRecord, Packs};
use crate::timespec;
use crate::tree::{self, Entry, Tree, TreeBlob};

/// The journal holding the snapshots of a store upgraded from version 1.
const V1_JOURNAL: &str = "00000000000000000000-v1.wsj";

/// An opened store.
pub struct Store {
    dir: PathBuf,
    params: StoreParams,
    packs: Packs,
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
        for p in layout::init_dirs(dir) {
            durable::create_private_dir(&p).map_err(w(&p))?;
        }
        for lock_path in layout::init_lock_files(dir) {
            if !lock_path.exists() {
                drop(durable::create_private_file(&lock_path).map_err(w(&lock_path))?);
            }
        }
        durable::sync_dir(dir).map_err(w(dir))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            durable::sync_dir(parent).map_err(w(parent))?;
        }
        // Last step: the catalog appears atomically, which makes this a store.
        Catalog::create(&layout::catalog_path(dir), params, timespec::now_ns())?;
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
        let catalog = Catalog::open(&layout::catalog_path(dir), false)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            params: catalog.params(),
            packs: Packs::new(dir),
        })
    }

    /// Open a store whose missing packs `fetcher` fetches on first use
    /// (a remote's cache, see `remote::fetch`).
    pub fn open_with_fetcher(
        dir: &Path,
        fetcher: crate::pack::packs::PackFetcher,
    ) -> Result<Store> {
        let mut store = Store::open(dir)?;
        store.packs = Packs::with_fetcher(dir, fetcher);
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn params(&self) -> StoreParams {
        self.params
    }

    pub fn catalog_path(&self) -> PathBuf {
        layout::catalog_path(&self.dir)
    }

    /// The store's pack files: the one way to list, read, write and delete
    /// them.
    pub fn packs(&self) -> &Packs {
        &self.packs
    }

    /// A new catalog connection for a writer (it holds the writer lock).
    pub fn catalog_for_writing(&self, _lock: &WriterLock) -> Result<Catalog> {
        Catalog::open(&self.catalog_path(), true)
    }

    /// A new read-only catalog connection.
    pub fn catalog_for_reading(&self) -> Result<Catalog> {
        Catalog::open(&self.catalog_path(), false)
    }

    /// Take the exclusive writer lock, waiting up to `wait`, then
    /// [`Store::recover`] what crashed or failed writers left.
    pub fn lock(&self, wait: Duration, note: &str) -> Result<WriterLock> {
        let lock = lock::exclusive(&self.dir, &layout::lock_path(&self.dir), wait, note)?;
        self.recover(&lock)?;
        Ok(lock)
    }

    /// Recovery, what every writer does once it holds the lock (and before
    /// anything else): remove the temporary files of dead runs (`tmp/`),
    /// upgrade an old catalog (1, 2 or 3 to 4, recording no chunk tiers),
    /// make sure its indexes exist, and finish the journals of crashed or
    /// failed runs (trimmed to what the catalog
    /// committed) and of an interrupted gc. Also called within a run, after
    /// its writer failed, before a fresh writer starts (`snapshot --prune`
    /// on a full disk, see `snapshot::run_again_locked`).
    pub fn recover(&self, lock: &WriterLock) -> Result<()> {
        layout::clear_tmp(&self.dir)?;
        let mut catalog = self.catalog_for_writing(lock)?;
        if catalog.version() == 1 {
            self.migrate_v1(&mut catalog)?;
        }
        catalog.ensure_indexes()?;
        catalog.upgrade_v2()?;
        self.finish_journals(&catalog)
    }

    /// Upgrade a version-1 catalog: every existing snapshot goes into one
    /// journal, durable before the catalog says version 2. A crash in
    /// between rewrites the same file next time.
    fn migrate_v1(&self, catalog: &mut Catalog) -> Result<()> {
        let path = journal::dir(&self.dir).join(V1_JOURNAL);
        journal::rewrite(&path, &self.params, &catalog.snapshots(None)?)?;
        catalog.migrate_v1(V1_JOURNAL)
    }

    /// Bring the journals in line with the catalog: the open journals of
    /// crashed runs, and the files an interrupted gc was rewriting.
    fn finish_journals(&self, catalog: &Catalog) -> Result<()> {
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
    /// missing (see `lock::readers_shared`).
    pub fn read_guard(&self) -> Result<ReaderLock> {
        lock::readers_shared(&layout::readers_path(&self.dir), Duration::from_secs(60))
    }

    /// The readers' lock, exclusive, if no reader is active (gc only, to
    /// delete pack files).
    pub(crate) fn readers_exclusive_now(&self) -> Result<Option<ReadersExcluded>> {
        lock::readers_exclusive_now(&layout::readers_path(&self.dir))
    }

    /// Read and decode a directory's whole listing through `catalog`: a
    /// version-1 tree, or every piece of an indexed one (`tree::index`).
    pub fn read_tree(&self, catalog: &Catalog, id: &TreeId) -> Result<Tree> {
        match self.read_tree_blob(catalog, id)? {
            TreeBlob::Flat(t) => Ok(t),
            TreeBlob::Index(index) => tree::index::assemble(
                &index,
                |p| self.read_piece(catalog, &p.tree),
                |e, p| e.within(Object::Tree(p.tree)),
            ),
        }
    }

    /// Read and decode a tree blob as stored (either form).
    pub fn read_tree_blob(&self, catalog: &Catalog, id: &TreeId) -> Result<TreeBlob> {
        let raw = self.read_blob(catalog, &id.0, BlobKind::Tree)?;
        tree::decode_blob(&raw).map_err(|e| e.within(Object::Tree(*id)))
    }

    /// Read one piece of an indexed directory (a version-1 tree).
    pub fn read_piece(&self, catalog: &Catalog, id: &TreeId) -> Result<Tree> {
        let raw = self.read_blob(catalog, &id.0, BlobKind::Tree)?;
        Tree::decode(&raw).map_err(|e| e.within(Object::Tree(*id)))
    }

    /// Entry `name` of directory `id`, reading only the piece that holds
    /// it when the directory is indexed.
    pub fn find_entry(&self, catalog: &Catalog, id: &TreeId, name: &[u8]) -> Result<Option<Entry>> {
        match self.read_tree_blob(catalog, id)? {
            TreeBlob::Flat(t) => Ok(t.find(name).cloned()),
            TreeBlob::Index(index) => {
                let Some(i) = index.piece_for(name) else {
                    return Ok(None);
                };
                let p = &index.pieces[i];
                let t = self.read_piece(catalog, &p.tree)?;
                index
                    .check_piece(i, &t)
                    .map_err(|e| e.within(Object::Tree(p.tree)))?;
                Ok(t.find(name).cloned())
            }
        }
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
            loc.ok_or_else(|| Error::corrupt(Problem::NotIndexed).within(kind.object(*id)))?;
        if loc.kind != kind {
            return Err(Error::corrupt(Problem::KindMismatch {
                found: loc.kind.name(),
                expected: kind.name(),
            })
            .within(Object::Blob(*id)));
        }
        let expected = ExpectedRecord {
            id: *id,
            kind,
            stored_len: loc.stored_len,
            raw_len: loc.raw_len,
        };
        let (_, raw) = self.packs.read_record(&loc.pack, loc.offset, &expected)?;
        Ok(raw)
    }
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
    if layout::catalog_path(dir).exists() {
        return Ok(State::Store);
    }
    let mut foreign = Vec::new();
    // Entries named as the old rsync script named its copies.
    let mut old_backups = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::store_read(dir, e))? {
        let e = e.map_err(|e| Error::store_read(dir, e))?;
        let name = e.file_name();
        if layout::is_remote_entry(&name) {
            continue;
        }
        let leftover = layout::is_init_leftover(&name);
        let empty_subdir = e.path().is_dir()
            && fs::read_dir(e.path())
                .map(|mut r| r.next().is_none())
                .unwrap_or(false);
        if !leftover || (e.path().is_dir() && !empty_subdir) {
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str());
            if e.path().is_dir() && crate::old_backup::split_name(bytes).is_some() {
                old_backups.push(crate::escape::escape(bytes));
            }
            foreign.push(crate::escape::escape(bytes));
        }
    }
    if layout::holds_store_data(dir) {
        return Err(Error::CatalogDamaged {
            path: dir.to_path_buf(),
            reason: "catalog.sqlite is missing but packs are here".into(),
        });
    }
    if !old_backups.is_empty() {
        old_backups.sort();
        return Err(Error::OldBackups {
            path: dir.to_path_buf(),
            count: old_backups.len(),
            example: old_backups.swap_remove(0),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_lock_recovers_first_and_is_held_once() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("store");
        assert_eq!(Store::init(&dir).unwrap(), InitOutcome::Created);
        assert_eq!(Store::init(&dir).unwrap(), InitOutcome::AlreadyExists);
        let store = Store::open(&dir).unwrap();
        let leftover = layout::tmp_dir(&dir).join("pack-1-0.tmp");
        fs::write(&leftover, b"a crashed writer's pack").unwrap();
        let lock = store.lock(Duration::ZERO, "test").unwrap();
        assert!(!leftover.exists(), "recovery clears tmp/");
        let second = store.lock(Duration::ZERO, "second");
        assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
        // Readers do not wait for the writer; gc's deletion waits for readers.
        let reader = store.read_guard().unwrap();
        assert!(store.readers_exclusive_now().unwrap().is_none());
        drop(reader);
        assert!(store.readers_exclusive_now().unwrap().is_some());
        store.catalog_for_writing(&lock).unwrap();
        drop(lock);
        store.lock(Duration::ZERO, "third").unwrap();
    }

    #[test]
    fn packs_without_a_catalog_are_damage_and_foreign_files_are_no_store() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        fs::write(dir.join("notes.txt"), b"mine").unwrap();
        assert!(matches!(Store::init(dir), Err(Error::NotAStore { .. })));
        assert!(!dir.join("packs").exists(), "nothing written");
        fs::remove_file(dir.join("notes.txt")).unwrap();
        let pack = layout::pack_path(dir, &crate::id::PackId(Id([7; 32])));
        fs::create_dir_all(pack.parent().unwrap()).unwrap();
        fs::write(&pack, crate::pack::format::PACK_MAGIC).unwrap();
        assert!(matches!(
            Store::open(dir),
            Err(Error::CatalogDamaged { .. })
        ));
    }
}
